package actors_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/snaptest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/viewer/layout"
	"github.com/cairn-graph/cairn/viewer/scene"
)

// viewerSide is what another process showing the graph holds: its own
// NATS connection (over TCP), its own store over it and its own actor
// system.
type viewerSide struct {
	store *persistence.Store
	snaps *persistence.Snapshots
	root  *actor.RootContext
}

func newViewerSide(t *testing.T, srv *natstest.Server) *viewerSide {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("cairn-view-test"))
	if err != nil {
		t.Fatalf("connect over TCP: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snaps, err := persistence.OpenSnapshots(ctx, js, persistence.DefaultSnapshotConfig())
	if err != nil {
		t.Fatalf("snapshots: %v", err)
	}
	st, err := persistence.LookupStore(ctx, js, persistence.DefaultStoreConfig(), persistence.WithObjects(snaps.Objects()))
	if err != nil {
		t.Fatalf("look up store: %v", err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	t.Cleanup(func() { system.Shutdown() })
	return &viewerSide{store: st, snaps: snaps, root: system.Root}
}

func (v *viewerSide) start(t *testing.T, x *scene.Exchange, cfg actors.RenderConfig) *actors.Render {
	t.Helper()
	cfg.Source = v.store
	r, err := actors.StartRender(v.root, x, cfg)
	if err != nil {
		t.Fatalf("start render: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop render: %v", err)
		}
	})
	return r
}

// frameAt acquires Frames, as a GL loop does, until one is at seq; it
// fails the test after 10 s or when the render stops.
func frameAt(t *testing.T, x *scene.Exchange, r *actors.Render, seq uint64) *scene.Frame {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if f := x.Acquire(); f != nil && f.Seq >= seq {
			if f.Seq != seq {
				t.Fatalf("frame at seq %d, want %d", f.Seq, seq)
			}
			return f
		}
		select {
		case <-x.Published():
		case <-r.Done():
			t.Fatalf("render stopped: %v", r.Err())
		case <-deadline:
			t.Fatalf("no frame at seq %d within 10 s (stats %+v)", seq, r.Stats())
		}
	}
}

func slotOf(t *testing.T, f *scene.Frame, id string) int {
	t.Helper()
	for i, s := range f.ID[:f.Nodes] {
		if s == id {
			return i
		}
	}
	t.Fatalf("seq %d: no slot holds %q", f.Seq, id)
	return -1
}

// TestRenderFollowsAGraph writes a graph through real grains and shows it
// from another connection and actor system: the frames carry the counts,
// seq and head CID of each reply; a removal hides its slots and a later
// add reuses the lowest.
func TestRenderFollowsAGraph(t *testing.T) {
	srv, store := newStore(t)
	m := startMember(t, store, quickGrains())
	v := newViewerSide(t, srv)
	m.mustExec(cmdtest.Envelope("g", "c1", cmdtest.CreateGraph()))
	x := scene.NewExchange()
	r := v.start(t, x, actors.RenderConfig{Graph: "g"})

	rep := m.mustExec(cmdtest.Envelope("g", "c2", cmdtest.AddNodeCats("a", "person"), cmdtest.AddNodeCats("b", "place"),
		cmdtest.AddNode("c"), cmdtest.Connect("ab", "a", "b"), cmdtest.Connect("bc", "b", "c")))
	f := frameAt(t, x, r, rep.GetSeq())
	if f.Head != rep.GetHeadCid() || f.Graph != "g" || f.LiveNodes != 3 || f.LiveEdges != 2 || f.Nodes != 3 || f.Edges != 2 {
		t.Fatalf("frame %d head %s: %d/%d nodes, %d/%d edges; want head %s, 3 nodes, 2 edges",
			f.Seq, f.Head, f.LiveNodes, f.Nodes, f.LiveEdges, f.Edges, rep.GetHeadCid())
	}
	if f.Time.UnixNano() == 0 || f.LayoutSeq != f.Seq {
		t.Fatalf("frame time %v, layout seq %d", f.Time, f.LayoutSeq)
	}
	a := slotOf(t, f, "a")
	if f.Deg[slotOf(t, f, "b")] != 2 || f.Color[a] != scene.Color(scene.Hue([]byte("person"))) || f.Size[a] == 0 {
		t.Fatalf("frame %d: degree of b %d, colour of a %08x", f.Seq, f.Deg[slotOf(t, f, "b")], f.Color[a])
	}

	rep = m.mustExec(cmdtest.Envelope("g", "c3", cmdtest.RemoveNode("a"))) // and its edge ab
	f = frameAt(t, x, r, rep.GetSeq())
	if f.LiveNodes != 2 || f.LiveEdges != 1 || f.Nodes != 3 || f.ID[a] != "" || f.Size[a] != 0 || f.Color[a]>>24 != 0 {
		t.Fatalf("after removing a: %d/%d nodes, %d edges, slot %d holds %q size %v colour %08x",
			f.LiveNodes, f.Nodes, f.LiveEdges, a, f.ID[a], f.Size[a], f.Color[a])
	}
	dead := 0
	for e := range f.Edges {
		if f.Ends[2*e] == f.Ends[2*e+1] {
			dead++
		}
	}
	if dead != 1 {
		t.Fatalf("%d degenerate edge slots, want 1", dead)
	}

	rep = m.mustExec(cmdtest.Envelope("g", "c4", cmdtest.AddNode("d")))
	f = frameAt(t, x, r, rep.GetSeq())
	if got := slotOf(t, f, "d"); got != a || f.Nodes != 3 || f.LiveNodes != 3 {
		t.Fatalf("d in slot %d of %d, want the freed slot %d", got, f.Nodes, a)
	}
	if st := r.Stats(); st.Seq != rep.GetSeq() || st.Transactions != 4 {
		t.Fatalf("stats %+v, want seq %d after 4 transactions", st, rep.GetSeq())
	}
}

// TestRenderSlowViewerCoalesces writes many transactions while the viewer
// acquires nothing: the render folds them all (its reader is never held
// back by the viewer) and publishes one merged Frame when the viewer comes
// back.
func TestRenderSlowViewerCoalesces(t *testing.T) {
	m, v := newGraphG(t)
	x := scene.NewExchange()
	r := v.start(t, x, actors.RenderConfig{Graph: "g", MaxQueued: 8})
	var last *cairnv1.CommandReply
	const n = 150
	for i := range n {
		last = m.mustExec(cmdtest.Envelope("g", fmt.Sprint("c", i+1), cmdtest.AddNode(fmt.Sprint("n", i))))
	}
	eventually(t, "the render folds every transaction without a viewer", 10*time.Second, func() bool { return r.Stats().Seq == last.GetSeq() })
	st := r.Stats()
	if st.Frames != 1 || st.Transactions != n+1 {
		t.Fatalf("stats %+v: want %d transactions folded into 1 frame (no credit since)", st, n+1)
	}
	first := x.Acquire() // the first Frame, published at once
	if first == nil || first.Seq >= last.GetSeq() {
		t.Fatalf("first frame %v", first)
	}
	f := frameAt(t, x, r, last.GetSeq())
	if f.LiveNodes != n || f.Nodes != n {
		t.Fatalf("merged frame: %d/%d nodes, want %d", f.LiveNodes, f.Nodes, n)
	}
	if st := r.Stats(); st.Frames != 2 {
		t.Fatalf("%d frames for %d transactions, want 2", st.Frames, n+1)
	}
	// Both buffers now hold room for the graph: the next Frame uploads
	// only the new node's slot.
	last = m.mustExec(cmdtest.Envelope("g", "one-more", cmdtest.AddNode("one-more")))
	f = frameAt(t, x, r, last.GetSeq())
	want := []scene.Range{{Lo: n, Hi: n + 1}}
	if f.Full || fmt.Sprint(f.NodeDirty) != fmt.Sprint(want) || fmt.Sprint(f.PosDirty) != fmt.Sprint(want) || len(f.EdgeDirty) != 0 {
		t.Fatalf("frame after one add: full %v, node ranges %v, pos ranges %v, edge ranges %v; want %v",
			f.Full, f.NodeDirty, f.PosDirty, f.EdgeDirty, want)
	}
}

// TestRenderReplayStopsAt replays a graph one transaction per Frame up to a
// sequence and reports when it got there.
func TestRenderReplayStopsAt(t *testing.T) {
	srv, store := newStore(t)
	m := startMember(t, store, quickGrains())
	v := newViewerSide(t, srv)
	var seqs []uint64
	seqs = append(seqs, m.mustExec(cmdtest.Envelope("g", "c0", cmdtest.CreateGraph())).GetSeq())
	for i := range 10 {
		seqs = append(seqs, m.mustExec(cmdtest.Envelope("g", fmt.Sprint("c", i+1), cmdtest.AddNode(fmt.Sprint("n", i)))).GetSeq())
	}
	stop := seqs[7]
	x := scene.NewExchange()
	r := v.start(t, x, actors.RenderConfig{Graph: "g", StopAt: stop, TxPerFrame: 1, Scene: []scene.Option{scene.WithFade(2)}})
	// Every transaction its own Frame, then one more to end the fade-in
	// of the node added last.
	want := append(seqs[:8:8], stop)
	var got []uint64
	deadline := time.After(10 * time.Second)
	for len(got) < len(want) {
		if f := x.Acquire(); f != nil {
			got = append(got, f.Seq)
			continue
		}
		select {
		case <-x.Published():
		case <-deadline:
			t.Fatalf("frames at %v, want %v (stats %+v)", got, want, r.Stats())
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames at %v, want %v", got, want)
	}
	waitReached(t, r)
	if st := r.Stats(); st.Seq != stop || st.Transactions != 8 || st.Published != stop {
		t.Fatalf("stats %+v, want 8 transactions folded through %d", st, stop)
	}
}

// TestRenderResyncsFromKeyframe starts a render far behind the graph's
// head with a read-model snapshot near it: the render jumps to it instead
// of folding everything, and shows the same graph.
func TestRenderResyncsFromKeyframe(t *testing.T) {
	m, v := newGraphG(t)
	const n = 60
	last := growGraph(m, n, func(i int) []*cairnv1.Command {
		if i == 0 {
			return nil
		}
		return []*cairnv1.Command{cmdtest.Connect(fmt.Sprint("e", i), fmt.Sprint("n", i-1), fmt.Sprint("n", i))}
	}, func(i int, rep *cairnv1.CommandReply) {
		if i == 49 {
			snaptest.PutReadModel(t, v.store, v.snaps, "g", rep.GetSeq())
		}
	})
	x := scene.NewExchange()
	r := v.start(t, x, actors.RenderConfig{Graph: "g", Snapshots: v.snaps, MaxLag: 5})
	var f *scene.Frame
	eventually(t, "the render reaches the head", 10*time.Second, func() bool {
		if g := x.Acquire(); g != nil {
			f = g
		}
		return f != nil && f.Seq == last.GetSeq()
	})
	st := r.Stats()
	if st.Resyncs != 1 || st.Transactions >= n {
		t.Fatalf("stats %+v: want 1 resync and fewer than %d transactions folded", st, n)
	}
	if f.LiveNodes != n || f.LiveEdges != n-1 || f.Head != last.GetHeadCid() {
		t.Fatalf("after the resync: %d nodes, %d edges, head %s; want %d, %d, %s", f.LiveNodes, f.LiveEdges, f.Head, n, n-1, last.GetHeadCid())
	}
}

// TestRenderLayoutKeyframes saves position keyframes while following a
// graph, then starts a second render from the newest one: it folds only
// the tail and ends with the very slots of a fold from the beginning.
func TestRenderLayoutKeyframes(t *testing.T) {
	m, v := newGraphG(t)
	const n = 35
	last := growGraph(m, n, func(i int) []*cairnv1.Command {
		if i%4 != 3 {
			return nil
		}
		return []*cairnv1.Command{cmdtest.RemoveNode(fmt.Sprint("n", i-2))} // frees a slot for the next add
	}, nil)
	x1 := scene.NewExchange()
	r1 := v.start(t, x1, actors.RenderConfig{Graph: "g", Snapshots: v.snaps, LayoutEvery: 10})
	f1 := frameAt(t, x1, r1, last.GetSeq())
	eventually(t, "a layout keyframe saved", 10*time.Second, func() bool { return r1.Stats().Layouts >= 1 })

	x2 := scene.NewExchange()
	r2 := v.start(t, x2, actors.RenderConfig{Graph: "g", Snapshots: v.snaps, FromSnapshot: true, StopAt: last.GetSeq()})
	waitReached(t, r2)
	f2 := x2.Acquire()
	infos, err := v.snaps.List(context.Background(), persistence.KindLayout, "g")
	if err != nil || len(infos) == 0 {
		t.Fatalf("layout keyframes %v: %v", infos, err)
	}
	newest := slices.MaxFunc(infos, func(a, b persistence.SnapshotInfo) int { return cmp.Compare(a.Seq, b.Seq) })
	// Only this graph writes: its transactions are consecutive sequences.
	if st := r2.Stats(); st.Transactions != last.GetSeq()-newest.Seq {
		t.Fatalf("stats %+v: want the %d transactions after the keyframe at seq %d folded", st, last.GetSeq()-newest.Seq, newest.Seq)
	}
	if f2 == nil || f2.Seq != f1.Seq || f2.Head != f1.Head || fmt.Sprint(f2.ID) != fmt.Sprint(f1.ID) ||
		fmt.Sprint(f2.Ends) != fmt.Sprint(f1.Ends) || fmt.Sprint(f2.Pos) != fmt.Sprint(f1.Pos) || f2.LiveNodes != f1.LiveNodes {
		t.Fatalf("started from a keyframe: %+v\nwant the slots of a full fold: %+v", f2, f1)
	}
}

// TestRenderLayoutKeyframeCarriesTheLayout lays a growing graph out with
// the real ForceAtlas2 layout, saving position keyframes, then starts a
// second render from the newest keyframe before the end: with the
// layout's whole state in the keyframe it folds the tail into exactly the
// positions of the fold from the beginning.
func TestRenderLayoutKeyframeCarriesTheLayout(t *testing.T) {
	m, v := newGraphG(t)
	const n = 45
	last := growGraph(m, n, func(i int) []*cairnv1.Command {
		var cmds []*cairnv1.Command
		for k, j := range []int{i / 2, i - 1, i * 7 % (i + 1)} {
			if j < i && (j != i-1 || i%3 != 0) && !slices.Contains([]int{i / 2, i - 1}[:min(k, 2)], j) {
				cmds = append(cmds, cmdtest.Connect(fmt.Sprint("e", i, "-", j), fmt.Sprint("n", i), fmt.Sprint("n", j)))
			}
		}
		return cmds
	}, nil)
	newPlacer := layoutPlacer(t, layout.WithWorkers(2))
	x1 := scene.NewExchange()
	r1 := v.start(t, x1, actors.RenderConfig{Graph: "g", Snapshots: v.snaps, LayoutEvery: 8, NewPlacer: newPlacer})
	f1 := frameAt(t, x1, r1, last.GetSeq())
	eventually(t, "a layout keyframe saved", 10*time.Second, func() bool { return r1.Stats().Layouts >= 1 })

	x2 := scene.NewExchange()
	r2 := v.start(t, x2, actors.RenderConfig{Graph: "g", Snapshots: v.snaps, FromSnapshot: true, StopAt: last.GetSeq(), NewPlacer: newPlacer})
	waitReached(t, r2)
	f2 := x2.Acquire()
	st := r2.Stats()
	if st.Transactions == 0 || st.Transactions >= last.GetSeq() {
		t.Fatalf("stats %+v: want a start from a keyframe before seq %d, and a tail folded", st, last.GetSeq())
	}
	if f2 == nil || f2.Seq != f1.Seq || fmt.Sprint(f2.ID) != fmt.Sprint(f1.ID) || fmt.Sprint(f2.Ends) != fmt.Sprint(f1.Ends) {
		t.Fatalf("started from a keyframe: %+v\nwant the slots of a full fold: %+v", f2, f1)
	}
	if !slices.Equal(f2.Pos, f1.Pos) {
		for i := range f1.Pos {
			if i < len(f2.Pos) && f2.Pos[i] != f1.Pos[i] {
				t.Fatalf("after %d transactions from a keyframe, slot %d is at %v, a full fold puts it at %v", st.Transactions, i/2, f2.Pos[i], f1.Pos[i])
			}
		}
		t.Fatalf("positions: %d values, want %d", len(f2.Pos), len(f1.Pos))
	}
}

// TestRenderLayoutOnlyResyncsToPositionKeyframe lets a LayoutOnly render
// start far behind a graph that has a read-model snapshot and position
// keyframes near its head: it jumps to a position keyframe, never to the
// read-model snapshot, and ends on the very slots and positions of a fold
// from the beginning.
func TestRenderLayoutOnlyResyncsToPositionKeyframe(t *testing.T) {
	m, v := newGraphG(t)
	const n = 60
	last := growGraph(m, n, func(i int) []*cairnv1.Command {
		if i == 0 {
			return nil
		}
		return []*cairnv1.Command{cmdtest.Connect(fmt.Sprint("e", i), fmt.Sprint("n", i/2), fmt.Sprint("n", i))}
	}, func(i int, rep *cairnv1.CommandReply) {
		if i == 55 {
			snaptest.PutReadModel(t, v.store, v.snaps, "g", rep.GetSeq())
		}
	})
	newPlacer := layoutPlacer(t)
	x1 := scene.NewExchange()
	r1 := v.start(t, x1, actors.RenderConfig{Graph: "g", Snapshots: v.snaps, LayoutEvery: 4, NewPlacer: newPlacer})
	f1 := frameAt(t, x1, r1, last.GetSeq())
	eventually(t, "a position keyframe saved", 10*time.Second, func() bool { return r1.Stats().Layouts >= 1 })
	if err := r1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	x2 := scene.NewExchange()
	r2 := v.start(t, x2, actors.RenderConfig{Graph: "g", Snapshots: v.snaps, LayoutOnly: true, MaxLag: 5, NewPlacer: newPlacer})
	f2 := frameAt(t, x2, r2, last.GetSeq())
	st := r2.Stats()
	if st.Resyncs != 1 || st.Transactions >= n {
		t.Fatalf("stats %+v: want 1 resync to a position keyframe and fewer than %d transactions folded", st, n)
	}
	if fmt.Sprint(f2.ID) != fmt.Sprint(f1.ID) || fmt.Sprint(f2.Ends) != fmt.Sprint(f1.Ends) || !slices.Equal(f2.Pos, f1.Pos) {
		t.Fatalf("after a resync to a position keyframe (%d transactions folded): not the slots and positions of a full fold", st.Transactions)
	}
}

// TestRenderStopsAtABrokenChain shows a graph whose second transaction
// does not link to the first: the render shows the first, then stops with
// a chain error naming the second, and folds nothing past it.
func TestRenderStopsAtABrokenChain(t *testing.T) {
	srv, store := newStore(t)
	v := newViewerSide(t, srv)
	ctx := context.Background()
	seal := func(id string, head persistence.Head, evs ...*cairnv1.Event) (*cairnv1.Transaction, persistence.Head) {
		ts := time.Now().UnixNano()
		recs, h, err := persistence.Seal("g", id, ts, head, evs)
		if err != nil {
			t.Fatal(err)
		}
		return &cairnv1.Transaction{GraphId: "g", TxId: id, TimestampUnixNano: ts, Events: recs,
			Commands: []*cairnv1.CommandRecord{{CommandId: id, EventCount: uint32(len(evs))}}}, h
	}
	added := func(id string) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id}}}
	}
	tx1, _ := seal("t1", persistence.Head{}, &cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{GraphId: "g"}}}, added("a"))
	tx2, _ := seal("t2", persistence.Head{}, added("b")) // links to nothing: position 1 again
	seq1, err := store.Append(ctx, "g", 0, tx1)
	if err != nil {
		t.Fatal(err)
	}
	seq2, err := store.Append(ctx, "g", seq1, tx2)
	if err != nil {
		t.Fatal(err)
	}
	x := scene.NewExchange()
	r := v.start(t, x, actors.RenderConfig{Graph: "g"})
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("render did not stop: %+v", r.Stats())
	}
	var ce *persistence.ChainError
	if err := r.Err(); !errors.Is(err, persistence.ErrChainBroken) || !errors.As(err, &ce) || ce.Seq != seq2 {
		t.Fatalf("render stopped with %v, want a chain error at seq %d", err, seq2)
	}
	if st := r.Stats(); st.Seq != seq1 || st.Transactions != 1 {
		t.Fatalf("stats %+v: want only seq %d folded", st, seq1)
	}
	if f := x.Acquire(); f == nil || f.Seq != seq1 || f.LiveNodes != 1 {
		t.Fatalf("last frame %+v, want seq %d with node a", f, seq1)
	}
}

// growGraph adds nodes n0 … n(n-1) to graph g, one transaction each with
// more(i)'s commands after the add, calls after (when not nil) with each
// reply, and returns the last.
func growGraph(m *member, n int, more func(i int) []*cairnv1.Command, after func(i int, rep *cairnv1.CommandReply)) *cairnv1.CommandReply {
	var last *cairnv1.CommandReply
	for i := range n {
		cmds := append([]*cairnv1.Command{cmdtest.AddNode(fmt.Sprint("n", i))}, more(i)...)
		last = m.mustExec(cmdtest.Envelope("g", fmt.Sprint("c", i+1), cmds...))
		if after != nil {
			after(i, last)
		}
	}
	return last
}

// layoutPlacer makes the real ForceAtlas2 layout of graph g.
func layoutPlacer(t *testing.T, opts ...layout.Option) func() scene.Placer {
	return func() scene.Placer {
		l, err := layout.New(layout.DefaultParams(), layout.SeedFor("g"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
}

// newGraphG starts a member on an embedded NATS, creates graph g on it and
// returns it with a viewer side on its own connection.
func newGraphG(t *testing.T) (*member, *viewerSide) {
	srv, store := newStore(t)
	m := startMember(t, store, quickGrains())
	v := newViewerSide(t, srv)
	m.mustExec(cmdtest.Envelope("g", "c0", cmdtest.CreateGraph()))
	return m, v
}

// waitReached waits up to 10 s for r to report its stop reached, and
// fails the test when it stops or does not.
func waitReached(t *testing.T, r *actors.Render) {
	t.Helper()
	select {
	case <-r.Reached():
	case <-r.Done():
		t.Fatalf("render stopped: %v", r.Err())
	case <-time.After(10 * time.Second):
		t.Fatalf("stop not reached: %+v", r.Stats())
	}
}
