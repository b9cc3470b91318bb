package actors_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/internal/graphgen"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// history writes random transactions of a few graphs straight to the event
// store (sealed as a grain seals them) and remembers them, to replay any
// prefix onto a reference read model.
type history struct {
	t      *testing.T
	r      *rand.Rand
	store  *persistence.Store
	graphs []*histGraph
	txs    []histTx // in stream order
}

type histGraph struct {
	id      string
	cfg     graphgen.Config
	chain   *graphgen.Chain
	pending []*cairnv1.Event // the generated graph, not written yet
	churn   *graphgen.Churn
	live    []*cairnv1.EdgeAdded // churn edges not removed
	last    uint64
}

type histTx struct {
	graph string
	seq   uint64
	time  time.Time
	tx    *cairnv1.Transaction
	evs   []*cairnv1.Event
	ns    []uint64
	cids  []string
}

func newHistory(t *testing.T, seed uint64, store *persistence.Store, graphs, nodes int) *history {
	t.Helper()
	h := &history{t: t, r: rand.New(rand.NewPCG(seed, seed^0x5eed)), store: store}
	for i := range graphs {
		cfg := graphgen.Big().Scaled(nodes)
		cfg.Graph, cfg.TxEvents, cfg.Seed = "g"+strconv.Itoa(i), 64, seed+uint64(i)
		hg := &histGraph{id: cfg.Graph, cfg: cfg, chain: graphgen.NewChain(cfg.Graph), churn: cfg.Churn(seed + uint64(i))}
		if err := cfg.Generate(func(evs []*cairnv1.Event) error { hg.pending = append(hg.pending, evs...); return nil }); err != nil {
			t.Fatal(err)
		}
		h.graphs = append(h.graphs, hg)
	}
	return h
}

// write appends n transactions of 1..maxEvents events to random graphs.
func (h *history) write(n, maxEvents int) uint64 {
	h.t.Helper()
	ctx := context.Background()
	var last uint64
	for range n {
		hg := h.graphs[h.r.IntN(len(h.graphs))]
		k := 1 + h.r.IntN(maxEvents)
		var evs []*cairnv1.Event
		if len(hg.pending) > 0 {
			k = min(k, len(hg.pending))
			evs, hg.pending = hg.pending[:k], hg.pending[k:]
		} else {
			for _, ev := range hg.churn.Next(k) {
				if ea := ev.GetEdgeAdded(); ea != nil {
					hg.live = append(hg.live, ea)
				}
				evs = append(evs, ev)
				if len(hg.live) > 0 && h.r.IntN(4) == 0 {
					i := h.r.IntN(len(hg.live))
					ea := hg.live[i]
					hg.live = slices.Delete(hg.live, i, i+1)
					evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{
						EdgeId: ea.GetEdgeId(), Source: ea.GetSource(), Target: ea.GetTarget()}}})
				}
			}
		}
		tx, err := hg.chain.Seal(evs, time.Now().UnixNano())
		if err != nil {
			h.t.Fatal(err)
		}
		seq, err := h.store.Append(ctx, hg.id, hg.last, tx)
		if err != nil {
			h.t.Fatalf("append to %s: %v", hg.id, err)
		}
		hg.last, last = seq, seq
		ht := histTx{graph: hg.id, seq: seq, tx: tx, evs: evs}
		for _, rec := range tx.GetEvents() {
			env, err := persistence.DecodeEnvelope(rec.GetDagCbor())
			if err != nil {
				h.t.Fatal(err)
			}
			c, err := cid.Cast(rec.GetCid())
			if err != nil {
				h.t.Fatal(err)
			}
			ht.ns, ht.cids = append(ht.ns, env.N), append(ht.cids, c.String())
		}
		h.txs = append(h.txs, ht)
	}
	return last
}

// fillTimes reads the stream times of the transactions written.
func (h *history) fillTimes() {
	h.t.Helper()
	times := map[uint64]time.Time{}
	if _, err := h.store.ReadAll(context.Background(), 1, func(r persistence.Record) error { times[r.Seq] = r.Time; return nil }); err != nil {
		h.t.Fatal(err)
	}
	for i := range h.txs {
		h.txs[i].time = times[h.txs[i].seq]
	}
}

// reference folds graph's transactions up to seq (and, with position, the
// events of the transaction at seq up to that position) onto a fresh read
// model. It returns it with the last transaction folded and the last event.
func (h *history) reference(graph string, seq, position uint64) (*readmodel.Graph, uint64, uint64, string) {
	h.t.Helper()
	g, err := readmodel.New(graph, readmodel.DefaultConfig())
	if err != nil {
		h.t.Fatal(err)
	}
	var asOf, pos uint64
	var head string
	for _, tx := range h.txs {
		if tx.graph != graph || tx.seq > seq {
			continue
		}
		if position != 0 && tx.seq == seq {
			for i, ev := range tx.evs {
				if tx.ns[i] > position {
					break
				}
				if err := g.Apply(tx.seq, ev); err != nil {
					h.t.Fatalf("reference: seq %d event %d: %v", tx.seq, i, err)
				}
				asOf, pos, head = tx.seq, tx.ns[i], tx.cids[i]
			}
			continue
		}
		if err := g.ApplyTx(tx.seq, tx.evs); err != nil {
			h.t.Fatalf("reference: seq %d: %v", tx.seq, err)
		}
		asOf, pos, head = tx.seq, tx.ns[len(tx.ns)-1], tx.cids[len(tx.cids)-1]
	}
	return g, asOf, pos, head
}

// probes are the queries compared on each graph.
func probes(graph string) []*cairnv1.QueryRequest {
	q := func(req *cairnv1.QueryRequest) *cairnv1.QueryRequest {
		req.GraphId = graph
		return req
	}
	out := []*cairnv1.QueryRequest{
		q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}}),
		q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_CountComponents{CountComponents: &cairnv1.CountComponents{}}}),
		q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_TopDegree{TopDegree: &cairnv1.TopDegree{K: 5}}}),
		q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "c1"}, Limit: 1000}}}),
		q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_ComponentType{ComponentType: "t2"}, Limit: 1000}}}),
		q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Component{Component: &cairnv1.Component{Type: "t3", Value: []byte("7")}}, Limit: 1000}}}),
		q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ShortestPath{ShortestPath: &cairnv1.ShortestPath{FromNodeId: "n1", ToNodeId: "n2", Direction: cairnv1.Direction_DIRECTION_BOTH}}}),
	}
	for _, n := range []string{"n0", "n1", "n5", "n17", "x0", "x3"} {
		out = append(out,
			q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: n}}}),
			q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ListNeighbors{ListNeighbors: &cairnv1.ListNeighbors{NodeId: n, Direction: cairnv1.Direction_DIRECTION_BOTH, Limit: 1000}}}),
			q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_KHop{KHop: &cairnv1.KHop{NodeId: n, Depth: 2, Direction: cairnv1.Direction_DIRECTION_OUT}}}),
			q(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetComponent{GetComponent: &cairnv1.GetComponent{NodeId: n, Limit: 1000}}}))
	}
	return out
}

// canon returns the part of a reply that does not depend on when the
// adjacency was compacted: neighbours sorted by edge id, a path as its cost
// and length, reached nodes sorted; as_of_seq, cached and the error's
// message left out.
func canon(rep *cairnv1.QueryReply) string {
	rep = proto.Clone(rep).(*cairnv1.QueryReply)
	rep.AsOfSeq, rep.Cached = 0, false
	if e := rep.GetError(); e != nil {
		return fmt.Sprintf("error %v at %q", e.GetCode(), e.GetField())
	}
	if n := rep.GetNeighbors(); n != nil {
		slices.SortFunc(n.Neighbors, func(a, b *cairnv1.Neighbor) int { return strings.Compare(a.GetEdgeId(), b.GetEdgeId()) })
	}
	if p := rep.GetPath(); p != nil {
		rep.Result = &cairnv1.QueryReply_Path{Path: &cairnv1.PathResult{Cost: p.GetCost(), EdgeIds: make([]string, len(p.GetEdgeIds()))}}
	}
	if k := rep.GetKHop(); k != nil {
		slices.SortFunc(k.Nodes, func(a, b *cairnv1.ReachedNode) int { return strings.Compare(a.GetNodeId(), b.GetNodeId()) })
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rep)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// snapEnv is an event store with a snapshot store on one embedded server.
type snapEnv struct {
	srv   *natstest.Server
	store *persistence.Store
	snaps *persistence.Snapshots
	// keepBuffers sets ProjectionConfig.KeepSnapshotBuffers.
	keepBuffers bool
}

func newSnapEnv(t *testing.T) *snapEnv {
	t.Helper()
	srv := natstest.Start(t)
	ctx := context.Background()
	snaps, err := persistence.OpenSnapshots(ctx, srv.JetStream(), persistence.DefaultSnapshotConfig())
	if err != nil {
		t.Fatal(err)
	}
	store, err := persistence.OpenStore(ctx, srv.JetStream(), persistence.DefaultStoreConfig(), persistence.WithObjects(snaps.Objects()))
	if err != nil {
		t.Fatal(err)
	}
	return &snapEnv{srv: srv, store: store, snaps: snaps}
}

// manifest reads and decodes the stored manifest info names.
func (env *snapEnv) manifest(t *testing.T, info persistence.SnapshotInfo) actors.Manifest {
	t.Helper()
	data, err := env.snaps.Get(context.Background(), info)
	if err != nil {
		t.Fatal(err)
	}
	var m actors.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// open starts projections over env with snapshots every `every` events
// (0: snapshots off) and waits until they have applied up to seq.
func (env *snapEnv) open(t *testing.T, shards, every int, seq uint64) *actors.Projections {
	t.Helper()
	return env.openTuned(t, shards, every, seq, func(*actors.ProjectionConfig) {})
}

// openTuned is open with the configuration changed by tune.
func (env *snapEnv) openTuned(t *testing.T, shards, every int, seq uint64, tune func(*actors.ProjectionConfig)) *actors.Projections {
	t.Helper()
	system := quietSystem()
	t.Cleanup(system.Shutdown)
	cfg := actors.DefaultProjectionConfig()
	cfg.Shards, cfg.Store, cfg.KeepSnapshotBuffers = shards, env.store, env.keepBuffers
	if every > 0 {
		cfg.Snapshots, cfg.SnapshotEvery, cfg.SnapshotKeep, cfg.SnapshotSpacing = env.snaps, every, 3, 0
	}
	tune(&cfg)
	p, err := actors.NewProjections(system, env.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	waitApplied(t, p, seq)
	return p
}

func waitApplied(t *testing.T, p *actors.Projections, seq uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("projections applied up to seq %d", seq), 30*time.Second, func() bool { return p.Health().AppliedSeq >= seq })
}

func closeProjections(t *testing.T, p *actors.Projections) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// sameAnswers compares the probes' answers of got and want on every graph
// of h, head included.
func sameAnswers(t *testing.T, h *history, got, want actors.Querier, what string) {
	t.Helper()
	ctx := context.Background()
	for _, hg := range h.graphs {
		for _, req := range probes(hg.id) {
			a, b := got.Query(ctx, req), want.Query(ctx, req)
			if ca, cb := canon(a), canon(b); ca != cb {
				t.Fatalf("%s: graph %s query %v:\ngot  %v\nwant %v", what, hg.id, req.GetQuery(), a, b)
			}
		}
	}
}

// TestProjectionSnapshotRestart: projections restarted from their
// snapshots plus the stream's tail answer as one rebuilt from scratch, for
// random streams and snapshot intervals, and resume from the manifest.
func TestProjectionSnapshotRestart(t *testing.T) {
	seed := testseed.Seed(t, 0)
	r := rand.New(rand.NewPCG(seed, 1))
	env := newSnapEnv(t)
	h := newHistory(t, seed, env.store, 3, 60+r.IntN(60))
	every := 20 + r.IntN(300)
	shards := 1 + r.IntN(3)
	t.Logf("snapshot every %d events, %d shards", every, shards)
	last := h.write(20+r.IntN(40), 40)
	p := env.open(t, shards, every, last)
	for range 2 + r.IntN(3) {
		last = h.write(5+r.IntN(30), 40)
		waitApplied(t, p, last)
	}
	closeProjections(t, p)
	if hs := p.Health().Snapshots; hs.Rounds == 0 || hs.LastSeq != last {
		t.Fatalf("after close: %+v, want rounds and the last at seq %d", hs, last)
	}
	for cycle := range 3 {
		tail := h.write(r.IntN(20), 40) // maybe none
		last = max(last, tail)
		p = env.open(t, 1+r.IntN(3), every, last)
		hs := p.Health().Snapshots
		if hs.RestoredSeq == 0 || hs.Fallbacks != 0 || hs.RestoredGraphs == 0 {
			t.Fatalf("cycle %d: restart did not resume from a manifest: %+v", cycle, hs)
		}
		fresh := env.open(t, 2, 0, last)
		if fh := fresh.Health().Snapshots; fh.RestoredSeq != 0 {
			t.Fatalf("projections without snapshots restored: %+v", fh)
		}
		sameAnswers(t, h, p, fresh, fmt.Sprintf("cycle %d (resumed from seq %d, stream at %d)", cycle, hs.RestoredSeq, last))
		// A write after the restart lands on the restored read model.
		last = h.write(1+r.IntN(10), 40)
		waitApplied(t, p, last)
		waitApplied(t, fresh, last)
		sameAnswers(t, h, p, fresh, fmt.Sprintf("cycle %d after writes", cycle))
		closeProjections(t, fresh)
		closeProjections(t, p)
	}
	// Old manifests were pruned.
	ms, err := env.snaps.List(context.Background(), persistence.KindManifest, actors.ManifestSeries)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) > 3 {
		t.Fatalf("%d manifests kept, want at most 3", len(ms))
	}
}

// TestProjectionSnapshotReusedBuffer: with KeepSnapshotBuffers, the rounds after the first encode a
// large graph (its snapshot over a megabyte) into the buffer of its
// previous round; what they store restores to what a rebuild holds.
func TestProjectionSnapshotReusedBuffer(t *testing.T) {
	testSnapshotBuffers(t, true)
}

// TestProjectionSnapshotLentBuffer: without KeepSnapshotBuffers, a large
// graph is encoded into a buffer the snapshot store lends (outside the Go
// heap, internal/offheap), given back after each round and lent again;
// what the rounds store restores to what a rebuild holds.
func TestProjectionSnapshotLentBuffer(t *testing.T) {
	testSnapshotBuffers(t, false)
}

func testSnapshotBuffers(t *testing.T, keep bool) {
	env := newSnapEnv(t)
	env.keepBuffers = keep
	cfg := graphgen.Big().Scaled(12_000)
	var events []*cairnv1.Event
	if err := cfg.Generate(func(evs []*cairnv1.Event) error { events = append(events, evs...); return nil }); err != nil {
		t.Fatal(err)
	}
	chain, churn := graphgen.NewChain(cfg.Graph), cfg.Churn(3)
	last := appendAll(t, env.store, chain, cfg.Graph, 0, events, 1000)
	p := env.open(t, 2, 2000, last)
	for i := range 3 {
		rounds := p.Health().Snapshots.Rounds
		last = appendAll(t, env.store, chain, cfg.Graph, last, churn.Next(2500), 500)
		waitApplied(t, p, last)
		eventually(t, fmt.Sprintf("snapshot round %d after the catch-up", i+1), 30*time.Second, func() bool { return p.Health().Snapshots.Rounds > rounds })
	}
	last = appendAll(t, env.store, chain, cfg.Graph, last, churn.Next(300), 100)
	waitApplied(t, p, last)
	closeProjections(t, p)
	if hs := p.Health().Snapshots; hs.LastSeq != last || hs.LastBytes < 1<<20 {
		t.Fatalf("after close: %+v, want the last round at seq %d and over a megabyte", hs, last)
	}
	switch lent, held := env.snaps.Buffers().Stats(); {
	case keep && held != 0:
		t.Fatalf("KeepSnapshotBuffers: the store mapped %d bytes of buffers, want none", held)
	case !keep && (lent != 0 || held < 1<<20):
		t.Fatalf("after the rounds the store holds %d bytes of buffers, %d of them lent; want one buffer, given back", held, lent)
	}
	restored := env.open(t, 1, 2000, last)
	if hs := restored.Health().Snapshots; hs.RestoredSeq != last || hs.Fallbacks != 0 {
		t.Fatalf("restart: %+v, want seq %d restored with no fallback", hs, last)
	}
	fresh := env.open(t, 1, 0, last)
	ctx := context.Background()
	for _, req := range probes(cfg.Graph) {
		a, b := restored.Query(ctx, req), fresh.Query(ctx, req)
		if ca, cb := canon(a), canon(b); ca != cb {
			t.Fatalf("query %v:\nrestored %v\nrebuilt  %v", req.GetQuery(), a, b)
		}
	}
}

// TestProjectionSnapshotFallback: a bad read-model snapshot (truncated,
// bit-flipped, wrong head, unknown format, missing) makes the restart fall
// back to the older manifest, then to a full rebuild; answers stay right.
func TestProjectionSnapshotFallback(t *testing.T) {
	seed := testseed.Seed(t, 0)
	env := newSnapEnv(t)
	ctx := context.Background()
	h := newHistory(t, seed, env.store, 2, 50)
	last := h.write(30, 30)
	p := env.open(t, 2, 1_000_000, last) // one round: when it catches up
	closeProjections(t, p)
	older := p.Health().Snapshots.LastSeq
	last = h.write(10, 30)
	p = env.open(t, 2, 1_000_000, last)
	closeProjections(t, p)
	newest := p.Health().Snapshots.LastSeq
	if older == 0 || newest <= older {
		t.Fatalf("manifests at seq %d and %d, want two", older, newest)
	}
	last = h.write(5, 30)
	fresh := env.open(t, 1, 0, last)

	manifest := func(seq uint64) (persistence.SnapshotInfo, actors.Manifest) {
		ms, err := env.snaps.List(ctx, persistence.KindManifest, actors.ManifestSeries)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range ms {
			if info.Seq == seq {
				return info, env.manifest(t, info)
			}
		}
		t.Fatalf("no manifest at seq %d", seq)
		return persistence.SnapshotInfo{}, actors.Manifest{}
	}
	// changed returns the manifest's snapshot of a graph that the newest
	// round wrote (not one it reused from the older round).
	info, m := manifest(newest)
	var target actors.ManifestGraph
	for _, g := range m.Graphs {
		if g.Seq > older {
			target = g
		}
	}
	if target.Name == "" {
		t.Fatalf("manifest %+v names no snapshot newer than seq %d", m, older)
	}
	snapInfo := func(g actors.ManifestGraph) persistence.SnapshotInfo {
		c, err := cid.Decode(g.Head)
		if err != nil {
			t.Fatal(err)
		}
		return persistence.SnapshotInfo{Kind: persistence.KindReadModel, Graph: g.Graph, Seq: g.Seq, Position: g.Position, Head: c, Format: g.Format, Name: g.Name}
	}
	orig, err := env.snaps.Get(ctx, snapInfo(target))
	if err != nil {
		t.Fatal(err)
	}
	origManifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	put := func(si persistence.SnapshotInfo, data []byte) {
		t.Helper()
		if _, err := env.snaps.Put(ctx, si, data); err != nil {
			t.Fatal(err)
		}
	}
	putManifest := func(m actors.Manifest) {
		t.Helper()
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		put(persistence.SnapshotInfo{Kind: persistence.KindManifest, Graph: actors.ManifestSeries, Seq: info.Seq, Format: actors.ManifestFormat}, data)
	}
	// otherHead is a CID of the graph's chain that is not its head at the
	// snapshot.
	var otherHead string
	for _, tx := range h.txs {
		if tx.graph == target.Graph && tx.cids[0] != target.Head {
			otherHead = tx.cids[0]
			break
		}
	}
	flipped := slices.Clone(orig)
	flipped[len(flipped)/2] ^= 0x10
	for _, tc := range []struct {
		name  string
		spoil func()
	}{
		{"truncated", func() { put(snapInfo(target), orig[:len(orig)/2]) }},
		{"bit-flipped", func() { put(snapInfo(target), flipped) }},
		{"wrong head", func() {
			bad := target
			bad.Head = otherHead
			put(snapInfo(bad), orig)
			mm := m
			mm.Graphs = slices.Clone(m.Graphs)
			for i := range mm.Graphs {
				if mm.Graphs[i].Graph == target.Graph {
					mm.Graphs[i] = bad
				}
			}
			putManifest(mm)
		}},
		{"unknown format", func() {
			bad := target
			bad.Format = 99
			put(snapInfo(bad), orig)
			mm := m
			mm.Graphs = slices.Clone(m.Graphs)
			for i := range mm.Graphs {
				if mm.Graphs[i].Graph == target.Graph {
					mm.Graphs[i] = bad
				}
			}
			putManifest(mm)
		}},
		{"missing", func() {
			if err := env.snaps.Delete(ctx, snapInfo(target)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		tc.spoil()
		p := env.open(t, 2, 1_000_000, last)
		hs := p.Health().Snapshots
		if hs.Fallbacks != 1 || hs.RestoredSeq != older {
			t.Fatalf("%s: restored %+v, want one fallback to the manifest at seq %d", tc.name, hs, older)
		}
		sameAnswers(t, h, p, fresh, tc.name)
		closeProjections(t, p)
		// Undo: the original snapshot and manifest, and not the round
		// the restart took when it caught up.
		put(snapInfo(target), orig)
		put(persistence.SnapshotInfo{Kind: persistence.KindManifest, Graph: actors.ManifestSeries, Seq: info.Seq, Format: actors.ManifestFormat}, origManifest)
		dropManifestsAfter(t, env.snaps, newest)
	}
	// Both manifests spoiled: a full rebuild.
	_, om := manifest(older)
	for _, g := range om.Graphs {
		put(snapInfo(g), []byte("not a snapshot"))
	}
	put(snapInfo(target), orig[:10])
	p = env.open(t, 2, 1_000_000, last)
	if hs := p.Health().Snapshots; hs.Fallbacks != 2 || hs.RestoredSeq != 0 {
		t.Fatalf("both manifests bad: %+v, want two fallbacks and a rebuild", hs)
	}
	sameAnswers(t, h, p, fresh, "full rebuild")
}

// dropManifestsAfter deletes the manifests after seq.
func dropManifestsAfter(t *testing.T, snaps *persistence.Snapshots, seq uint64) {
	t.Helper()
	ms, err := snaps.List(context.Background(), persistence.KindManifest, actors.ManifestSeries)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range ms {
		if info.Seq > seq {
			if err := snaps.Delete(context.Background(), info); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestProjectionArchivedPrefix: a graph whose first transactions were
// archived out of the stream is folded from the archive first; time travel
// reaches into the archive; without an event store the graph stops, saying
// why.
func TestProjectionArchivedPrefix(t *testing.T) {
	seed := testseed.Seed(t, 0)
	env := newSnapEnv(t)
	ctx := context.Background()
	h := newHistory(t, seed, env.store, 2, 40)
	last := h.write(30, 20)
	graph := h.graphs[0].id
	var seqs []uint64
	for _, tx := range h.txs {
		if tx.graph == graph {
			seqs = append(seqs, tx.seq)
		}
	}
	if len(seqs) < 3 {
		t.Skipf("graph %s has %d transactions", graph, len(seqs))
	}
	before := seqs[len(seqs)/2]
	res, err := env.store.Archive(ctx, graph, before, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Transactions == 0 {
		t.Fatalf("archive before seq %d moved nothing: %+v", before, res)
	}
	p := env.open(t, 2, 0, last)
	if st := p.Stopped(); len(st) != 0 {
		t.Fatalf("stopped: %v", st)
	}
	for _, hg := range h.graphs {
		ref, _, pos, head := h.reference(hg.id, last, 0)
		for _, req := range probes(hg.id) {
			got, want := p.Query(ctx, req), actors.RunQuery(ref, req)
			if canon(got) != canon(&cairnv1.QueryReply{Error: want.GetError(), Result: want.GetResult(), HeadCid: got.GetHeadCid(), Position: got.GetPosition()}) {
				t.Fatalf("graph %s query %v:\ngot  %v\nwant %v", hg.id, req.GetQuery(), got, want)
			}
			if got.GetError() == nil && (got.GetHeadCid() != head || got.GetPosition() != pos) {
				t.Fatalf("graph %s: head %s at %d, want %s at %d", hg.id, got.GetHeadCid(), got.GetPosition(), head, pos)
			}
		}
	}
	// A view inside the archived part.
	at := seqs[1]
	ref, _, _, _ := h.reference(graph, at, 0)
	for _, req := range probes(graph) {
		req.AsOf = &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: at}}
		got, want := p.Query(ctx, req), actors.RunQuery(ref, req)
		if canon(got) != canon(&cairnv1.QueryReply{Error: want.GetError(), Result: want.GetResult(), HeadCid: got.GetHeadCid(), Position: got.GetPosition()}) {
			t.Fatalf("as of seq %d: query %v:\ngot  %v\nwant %v", at, req.GetQuery(), got, want)
		}
	}

	// Without an event store the archived prefix cannot be read.
	system := quietSystem()
	t.Cleanup(system.Shutdown)
	blind, err := actors.NewProjections(system, env.store, actors.DefaultProjectionConfig())
	if err != nil {
		t.Fatal(err)
	}
	blind.Start()
	t.Cleanup(func() { _ = blind.Close(context.Background()) })
	waitApplied(t, blind, last)
	st := blind.Stopped()[graph]
	if st == nil || !strings.Contains(st.Error(), "no event store") {
		t.Fatalf("graph %s without a store: stopped %v, want the archived prefix named", graph, st)
	}
}

// A round that took a while puts the next one due by its interval off for
// SnapshotSpacing times that: writes after the first round are covered
// only by the round Close takes. Without the spacing a round follows
// them at once.
func TestProjectionSnapshotSpacing(t *testing.T) {
	const delay = 300 * time.Millisecond
	rounds := map[int]uint64{}
	for _, spacing := range []int{10, 0} {
		t.Run(fmt.Sprint("spacing=", spacing), func(t *testing.T) {
			seed := testseed.Seed(t, 0)
			env := newSnapEnv(t)
			h := newHistory(t, seed, env.store, 1, 30)
			last := h.write(3, 10)
			start := time.Now()
			p := env.openTuned(t, 1, 1, last, func(c *actors.ProjectionConfig) {
				c.Snapshots, c.SnapshotSpacing = slowSnapshots{env.snaps, delay}, spacing
			})
			eventually(t, "the first round", 10*time.Second, func() bool { return p.Health().Snapshots.Rounds >= 1 })
			last = h.write(3, 10)
			waitApplied(t, p, last)
			if took := time.Since(start); spacing > 0 && took >= time.Duration(spacing)*delay {
				t.Skipf("the writes took %s, longer than the spacing: this machine is too slow for the test", took)
			}
			closeProjections(t, p)
			hs := p.Health().Snapshots
			if hs.LastSeq != last {
				t.Fatalf("the last round at seq %d, want %d (Close's)", hs.LastSeq, last)
			}
			rounds[spacing] = hs.Rounds
		})
	}
	if r, ok := rounds[10]; ok && r != 2 {
		t.Errorf("spacing 10: %d rounds, want 2 (the first and Close's)", r)
	}
	if r := rounds[0]; r < 3 {
		t.Errorf("spacing 0: %d rounds, want a round after the first write that followed the first round too", r)
	}
}
