package actors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// marshalSnap is the deterministic encoding snapshots are compared by.
func marshalSnap(t testing.TB, snap *cairnv1.GraphSnapshot) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(snap)
	if err != nil {
		t.Fatalf("marshal snapshot: %v", err)
	}
	return b
}

// randomState decides n random envelopes on a new state of graph and
// returns it with the replies a grain would remember for the accepted ones.
func randomState(r *rand.Rand, graph string, n int) (*actors.State, []*cairnv1.CommandReply) {
	gen := generator{r: r}
	s := actors.NewState(graph)
	var recent []*cairnv1.CommandReply
	pos := uint64(0)
	for k := range n {
		env := &cairnv1.CommandEnvelope{GraphId: graph, CommandId: fmt.Sprint("c", k)}
		if k == 0 {
			env.Commands = []*cairnv1.Command{createGraph()}
		} else {
			for range 1 + r.IntN(3) {
				env.Commands = append(env.Commands, gen.command(k > n*9/10).cmd)
			}
		}
		if actors.ValidateEnvelope(env) != nil {
			continue
		}
		evs, err := actors.DecideEnvelope(s, env)
		if err != nil {
			continue
		}
		pos += uint64(len(evs))
		recent = append(recent, &cairnv1.CommandReply{CommandId: env.GetCommandId(), HeadCid: fmt.Sprint("cid-", pos), Seq: uint64(k + 1), Position: pos, TxId: fmt.Sprint("tx", k)})
	}
	return s, recent
}

// roundTrip encodes s, marshals, unmarshals and decodes it.
func roundTrip(t testing.TB, s *actors.State, recent []*cairnv1.CommandReply) (*actors.State, []*cairnv1.CommandReply) {
	t.Helper()
	var snap cairnv1.GraphSnapshot
	if err := proto.Unmarshal(marshalSnap(t, actors.EncodeState(s, recent)), &snap); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	got, rec, err := actors.DecodeState(&snap)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return got, rec
}

// A state decoded from its snapshot is the same state: same encoding, same
// nodes, edges and interned components, and it decides every later command
// as the original does, events in the same order (a node removal emits its
// edge removals in the order the node holds its edges).
func TestEncodeDecodeState(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	for round := range 40 {
		s, recent := randomState(r, "g", 1+r.IntN(120))
		got, rec := roundTrip(t, s, recent)
		if !bytes.Equal(marshalSnap(t, actors.EncodeState(got, rec)), marshalSnap(t, actors.EncodeState(s, recent))) {
			t.Fatalf("seed %d round %d: re-encoded snapshot differs", seed, round)
		}
		if d := diffSnapshots(takeSnapshot(got), takeSnapshot(s)); d != "" {
			t.Fatalf("seed %d round %d: decoded state differs: %s", seed, round, d)
		}
		for _, id := range got.NodeIDs() {
			cs, _, _ := got.Node(id)
			for _, c := range cs {
				if got.Interned(c.GetType(), c.GetValue()) != c {
					t.Fatalf("seed %d round %d: node %s holds a component that is not the interned copy", seed, round, id)
				}
			}
		}
		gen := generator{r: r}
		for k := range 60 {
			env := &cairnv1.CommandEnvelope{GraphId: "g", CommandId: fmt.Sprint("after", k), Commands: []*cairnv1.Command{gen.command(true).cmd}}
			if actors.ValidateEnvelope(env) != nil {
				continue
			}
			want, werr := actors.DecideEnvelope(s, env)
			have, gerr := actors.DecideEnvelope(got, env)
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Fatalf("seed %d round %d: %v decided %v on the original, %v on the decoded state", seed, round, env.GetCommands(), werr, gerr)
			}
			if len(want) != len(have) {
				t.Fatalf("seed %d round %d: %d events, want %d", seed, round, len(have), len(want))
			}
			for i := range want {
				if !proto.Equal(want[i], have[i]) {
					t.Fatalf("seed %d round %d: %v: event %d is %v, want %v", seed, round, env.GetCommands(), i, have[i], want[i])
				}
			}
		}
	}
}

// The idempotency window survives a snapshot in order, and a smaller window
// keeps the newest replies.
func TestResultWindowExport(t *testing.T) {
	var replies []*cairnv1.CommandReply
	for i := range 10 {
		replies = append(replies, &cairnv1.CommandReply{CommandId: fmt.Sprint("c", i), Seq: uint64(i + 1)})
	}
	ids := func(rs []*cairnv1.CommandReply) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.GetCommandId())
		}
		return strings.Join(out, ",")
	}
	if got := ids(actors.RecentList(20, replies)); got != ids(replies) {
		t.Fatalf("window of 20: %s", got)
	}
	if got := ids(actors.RecentList(4, replies)); got != "c6,c7,c8,c9" {
		t.Fatalf("window of 4: %s, want c6,c7,c8,c9", got)
	}
	// A full ring that wrapped exports oldest first too.
	if got := ids(actors.RecentList(3, actors.RecentList(4, replies))); got != "c7,c8,c9" {
		t.Fatalf("window of 3 from 4: %s", got)
	}
}

// validSnapshot is a small consistent snapshot the table test breaks.
func validSnapshot(t testing.TB) *cairnv1.GraphSnapshot {
	t.Helper()
	s := actors.NewState("g")
	for _, env := range []*cairnv1.CommandEnvelope{
		envelope("g", "c1", createGraph()),
		envelope("g", "c2", addNode("a", comp("color", "red")), addNodeCats("b", "lib"), addNode("c", comp("color", "red"))),
		envelope("g", "c3", connect("ab", "a", "b", comp("w", "1")), connect("bc", "b", "c"), connect("cc", "c", "c")),
	} {
		if _, err := actors.DecideEnvelope(s, env); err != nil {
			t.Fatalf("decide %s: %v", env.GetCommandId(), err)
		}
	}
	recent := []*cairnv1.CommandReply{{CommandId: "c1", Seq: 1, Position: 1}, {CommandId: "c2", Seq: 2, Position: 4}, {CommandId: "c3", Seq: 3, Position: 7}}
	var snap cairnv1.GraphSnapshot
	if err := proto.Unmarshal(marshalSnap(t, actors.EncodeState(s, recent)), &snap); err != nil {
		t.Fatal(err)
	}
	return &snap
}

// DecodeState refuses snapshots that do not hold together, naming the
// problem.
func TestDecodeStateRefuses(t *testing.T) {
	// Nodes a, b, c; edges ab (0), bc (1), cc (2).
	for _, tc := range []struct {
		name   string
		break_ func(s *cairnv1.GraphSnapshot)
		want   string
	}{
		{"no graph id", func(s *cairnv1.GraphSnapshot) { s.GraphId = "" }, "no graph id"},
		{"deleted, never created", func(s *cairnv1.GraphSnapshot) { s.Created, s.Deleted, s.Nodes, s.Edges = false, true, nil, nil }, "never created"},
		{"nodes of a graph not created", func(s *cairnv1.GraphSnapshot) { s.Created = false }, "not created"},
		{"duplicate node", func(s *cairnv1.GraphSnapshot) { s.Nodes[1].Id = "a" }, `duplicate node "a"`},
		{"nodes unsorted", func(s *cairnv1.GraphSnapshot) { s.Nodes[0], s.Nodes[1] = s.Nodes[1], s.Nodes[0] }, "not sorted"},
		{"empty node id", func(s *cairnv1.GraphSnapshot) { s.Nodes[0].Id = "" }, "node 0 has no id"},
		{"duplicate edge", func(s *cairnv1.GraphSnapshot) { s.Edges[1].Id = "ab" }, `duplicate edge "ab"`},
		{"edges unsorted", func(s *cairnv1.GraphSnapshot) { s.Edges[0].Id = "zz" }, "not sorted"},
		{"dangling source", func(s *cairnv1.GraphSnapshot) { s.Edges[0].Source = "x" }, `lists edge "ab"`},
		{"dangling endpoint", func(s *cairnv1.GraphSnapshot) {
			s.Nodes = s.Nodes[1:] // a gone, with its list
		}, `edge "ab" has a missing endpoint`},
		{"edge index out of range", func(s *cairnv1.GraphSnapshot) { s.Nodes[0].Edges = []uint32{7} }, "edge index 7 of 3"},
		{"edge listed at one endpoint only", func(s *cairnv1.GraphSnapshot) { s.Nodes[0].Edges = nil }, `edge "ab" is listed by 1 of its endpoints, want 2`},
		{"edge listed twice", func(s *cairnv1.GraphSnapshot) { s.Nodes[2].Edges = append(s.Nodes[2].Edges, 2) }, "twice"},
		{"edge listed by a stranger", func(s *cairnv1.GraphSnapshot) { s.Nodes[0].Edges = append(s.Nodes[0].Edges, 2) }, `node "a" lists edge "cc"`},
		{"two components of a type", func(s *cairnv1.GraphSnapshot) {
			s.Nodes[0].Components = append(s.Nodes[0].Components, comp("color", "blue"))
		}, `two components of type "color"`},
		{"null component", func(s *cairnv1.GraphSnapshot) { s.Edges[0].Components = []*cairnv1.Component{nil} }, "is null"},
		{"duplicate command id", func(s *cairnv1.GraphSnapshot) { s.Recent[1].CommandId = "c1" }, `command "c1" twice`},
		{"empty command id", func(s *cairnv1.GraphSnapshot) { s.Recent[0].CommandId = "" }, "no command id"},
		{"refusal in the window", func(s *cairnv1.GraphSnapshot) { s.Recent[0].Error = &cairnv1.Error{} }, "not a first acceptance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := validSnapshot(t)
			if _, _, err := actors.DecodeState(proto.Clone(snap).(*cairnv1.GraphSnapshot)); err != nil {
				t.Fatalf("valid snapshot refused: %v", err)
			}
			tc.break_(snap)
			_, _, err := actors.DecodeState(snap)
			if !errors.Is(err, actors.ErrInvalidSnapshot) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidSnapshot naming %q", err, tc.want)
			}
		})
	}
}

// DecodeState never panics, and what it accepts encodes and decodes again
// to the same snapshot.
func FuzzDecodeState(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		s, recent := randomState(r, "g", 30)
		f.Add(marshalSnap(f, actors.EncodeState(s, recent)))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var snap cairnv1.GraphSnapshot
		if proto.Unmarshal(data, &snap) != nil {
			return
		}
		s, recent, err := actors.DecodeState(&snap)
		if err != nil {
			return
		}
		again, rec := roundTrip(t, s, recent)
		if !bytes.Equal(marshalSnap(t, actors.EncodeState(again, rec)), marshalSnap(t, actors.EncodeState(s, recent))) {
			t.Fatal("an accepted snapshot does not survive a round trip")
		}
	})
}

// UnmarshalState reads the wire bytes itself: whatever bytes it is given,
// it never panics, and it decides as it does on the canonical encoding of
// what proto.Unmarshal reads from them (unknown fields, fields repeated,
// unpacked lists, wrong wire types), refusing bytes proto.Unmarshal
// refuses.
func FuzzUnmarshalState(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		s, recent := randomState(r, "g", 30)
		f.Add(marshalSnap(f, actors.EncodeState(s, recent)))
	}
	f.Add(unpackedSnapshot(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, recent, err := actors.UnmarshalState(data)
		var snap cairnv1.GraphSnapshot
		if proto.Unmarshal(data, &snap) != nil {
			if err == nil {
				t.Fatal("accepted bytes proto.Unmarshal refuses")
			}
			return
		}
		canon, cerr := proto.Marshal(&snap)
		if cerr != nil {
			t.Fatal(cerr)
		}
		s2, recent2, err2 := actors.UnmarshalState(canon)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("bytes: %v; their canonical encoding: %v", err, err2)
		}
		if err == nil && !bytes.Equal(marshalSnap(t, actors.EncodeState(s, recent)), marshalSnap(t, actors.EncodeState(s2, recent2))) {
			t.Fatal("bytes and their canonical encoding decode to different states")
		}
	})
}

// unpackedSnapshot is validSnapshot's encoding with its nodes' edge lists
// unpacked, an unknown field in every node and at the top, and the last
// node's id written twice (the last one counts).
func unpackedSnapshot(t testing.TB) []byte {
	var snap cairnv1.GraphSnapshot
	if err := proto.Unmarshal(validSnapshotBytes(t), &snap); err != nil {
		t.Fatal(err)
	}
	nodes := snap.Nodes
	snap.Nodes = nil
	out := protowire.AppendTag(marshalSnap(t, &snap), 99, protowire.VarintType)
	out = protowire.AppendVarint(out, 7)
	for i, sn := range nodes {
		edges := sn.Edges
		sn.Edges = nil
		b, err := proto.Marshal(sn)
		if err != nil {
			t.Fatal(err)
		}
		if i == len(nodes)-1 {
			b = append(protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "zz-overwritten"), b...)
		}
		for _, e := range edges {
			b = protowire.AppendVarint(protowire.AppendTag(b, 4, protowire.VarintType), uint64(e))
		}
		b = protowire.AppendVarint(protowire.AppendTag(b, 42, protowire.VarintType), 1)
		out = protowire.AppendBytes(protowire.AppendTag(out, 6, protowire.BytesType), b)
	}
	return out
}

func TestUnmarshalStateWireForms(t *testing.T) {
	want, wantRecent, err := actors.UnmarshalState(validSnapshotBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	got, gotRecent, err := actors.UnmarshalState(unpackedSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshalSnap(t, actors.EncodeState(got, gotRecent)), marshalSnap(t, actors.EncodeState(want, wantRecent))) {
		t.Fatal("unpacked lists, unknown fields or a repeated id decode to another state")
	}
	// Bytes in a bigger buffer, with room before and after them.
	valid := validSnapshotBytes(t)
	buf := make([]byte, 7+len(valid), 7+len(valid)+100)
	copy(buf[7:], valid)
	inside, insideRecent, err := actors.UnmarshalState(buf[7:])
	if err != nil || !bytes.Equal(marshalSnap(t, actors.EncodeState(inside, insideRecent)), marshalSnap(t, actors.EncodeState(want, wantRecent))) {
		t.Fatalf("bytes inside a bigger buffer: %v, or another state", err)
	}
	if _, _, err := actors.UnmarshalState([]byte{0x32, 0x05, 0x0a}); !errors.Is(err, actors.ErrInvalidSnapshot) {
		t.Fatalf("truncated bytes: err = %v, want ErrInvalidSnapshot", err)
	}
	bad := validSnapshotBytes(t)
	i := bytes.Index(bad, []byte("ab"))
	bad[i] = 0xff // not UTF-8
	if _, _, err := actors.UnmarshalState(bad); !errors.Is(err, actors.ErrInvalidSnapshot) || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("invalid UTF-8: err = %v, want ErrInvalidSnapshot", err)
	}
}

func validSnapshotBytes(t testing.TB) []byte {
	t.Helper()
	return marshalSnap(t, validSnapshot(t))
}

// snapWorld is an embedded server with the event store and the snapshot
// store on it.
type snapWorld struct {
	srv   *natstest.Server
	store *persistence.Store
	snaps *persistence.Snapshots
}

func newSnapWorld(t *testing.T) snapWorld {
	t.Helper()
	srv, store := newStore(t)
	snaps, err := persistence.OpenSnapshots(context.Background(), srv.JetStream(), persistence.DefaultSnapshotConfig())
	if err != nil {
		t.Fatalf("open snapshots: %v", err)
	}
	return snapWorld{srv: srv, store: store, snaps: snaps}
}

// gate is the real snapshot store with writes that can be switched off, to
// stop a grain the way a crash does: without its last snapshot.
type gate struct {
	*persistence.Snapshots
	closed atomic.Bool
}

func (g *gate) Put(ctx context.Context, info persistence.SnapshotInfo, data []byte) (persistence.SnapshotInfo, error) {
	if g.closed.Load() {
		return info, errors.New("snapshot writes are switched off")
	}
	return g.Snapshots.Put(ctx, info, data)
}

// probe activates graph's grain on m and returns its state.
func probe(t *testing.T, m *member, graph string) (*cairnv1.GraphSnapshot, persistence.Head, uint64) {
	t.Helper()
	pid := livePID(t, m, graph)
	snap, head, seq, err := actors.ProbeGrain(m.member.System().Root, pid)
	if err != nil {
		t.Fatalf("probe %s: %v", graph, err)
	}
	return snap, head, seq
}

// livePID returns the PID of graph's activation on m, activating it: the
// cluster may hand out the PID of an activation that just stopped for a
// moment.
func livePID(t *testing.T, m *member, graph string) *actor.PID {
	t.Helper()
	var pid *actor.PID
	eventually(t, "a live activation of "+graph, 10*time.Second, func() bool {
		pid = m.member.Cluster().Get(graph, actors.GraphKind)
		if pid == nil {
			return false
		}
		_, alive := m.member.System().ProcessRegistry.Get(pid)
		return alive
	})
	return pid
}

// idle stops every grain of m, as passivation does (each writes its last
// snapshot), and waits until they are gone. (Passivation by timeout would
// race with the test's next command: one that reaches a grain as it stops
// is lost.)
func (m *member) idle() {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.grains.StopAll(ctx, m.member.System().Root); err != nil {
		m.t.Fatalf("stop grains: %v", err)
	}
	eventually(m.t, "the grains stop", 10*time.Second, func() bool { return m.grains.Active() == 0 })
}

// reference is graph's state by a full replay on ref, a member without
// snapshots whose grains passivate quickly.
func reference(t *testing.T, ref *member, graph string) ([]byte, persistence.Head, uint64) {
	t.Helper()
	ref.idle()
	snap, head, seq := probe(t, ref, graph)
	ref.idle()
	return marshalSnap(t, snap), head, seq
}

func refGrains() actors.GrainConfig { return quickGrains() }

func snapGrains(snaps actors.SnapshotStore, every int) actors.GrainConfig {
	cfg := refGrains()
	cfg.Snapshots, cfg.SnapshotEvery = snaps, every
	return cfg
}

// statsDelta is what happened between two readings of the counters.
func statsDelta(after, before actors.GrainStats) actors.GrainStats {
	return actors.GrainStats{
		Activations: after.Activations - before.Activations, SnapshotLoads: after.SnapshotLoads - before.SnapshotLoads,
		SnapshotFallbacks: after.SnapshotFallbacks - before.SnapshotFallbacks, ReplayedEvents: after.ReplayedEvents - before.ReplayedEvents,
		ReplayedTransactions: after.ReplayedTransactions - before.ReplayedTransactions,
	}
}

// Random command streams with random snapshot intervals, the grain stopped
// now and then (cleanly, or as by a crash that loses its last snapshot):
// each activation from snapshot + tail holds the state a full replay
// builds, idempotency window included, so retries of earlier commands are
// still answered as duplicates and later commands are decided the same.
func TestSnapshotRecoveryMatchesReplay(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, seed^0xa11ce))
	gen := generator{r: r}
	w := newSnapWorld(t)
	snaps := &gate{Snapshots: w.snaps}
	every := 1 + r.IntN(50)
	cfg := snapGrains(snaps, every)
	cfg.SnapshotSizeDivisor = 1 + r.IntN(8) // intervals that grow with the state
	t.Logf("snapshot every max(%d, items/%d) events", every, cfg.SnapshotSizeDivisor)
	cfg.SnapshotKeep = 1 + r.IntN(3)
	const graph = "prop"
	accepted := map[string]*cairnv1.CommandReply{}
	var acceptedIDs []string
	k := 0
	m := startMember(t, w.store, cfg)
	ref := startMember(t, w.store, refGrains())
	for restart := range 4 {
		for range 30 + r.IntN(60) {
			burst := 1 + r.IntN(6)
			var envs []*cairnv1.CommandEnvelope
			for range burst {
				env := &cairnv1.CommandEnvelope{GraphId: graph, CommandId: fmt.Sprint("cmd-", k)}
				if k == 0 {
					env.Commands = []*cairnv1.Command{createGraph()}
				} else {
					for range 1 + r.IntN(3) {
						env.Commands = append(env.Commands, gen.command(false).cmd)
					}
				}
				k++
				envs = append(envs, env)
			}
			for i, f := range m.sendAll(graph, envs) {
				rep := m.answer(f)
				if rep.GetError() == nil {
					accepted[envs[i].GetCommandId()] = rep
					acceptedIDs = append(acceptedIDs, envs[i].GetCommandId())
				}
			}
		}
		// Passivate, as by a crash (the last snapshot is lost) or cleanly.
		crash := r.IntN(2) == 0
		snaps.closed.Store(crash)
		m.idle()
		snaps.closed.Store(false)
		infos, err := w.snaps.List(context.Background(), persistence.KindAggregate, graph)
		if err != nil {
			t.Fatalf("seed %d: list snapshots: %v", seed, err)
		}
		if len(infos) > cfg.SnapshotKeep {
			t.Fatalf("seed %d: %d snapshots kept, want at most %d", seed, len(infos), cfg.SnapshotKeep)
		}
		want, wantHead, wantSeq := reference(t, ref, graph)

		before := m.grains.Stats()
		got, head, seq := probe(t, m, graph)
		if !bytes.Equal(marshalSnap(t, got), want) || head != wantHead || seq != wantSeq {
			t.Fatalf("seed %d restart %d (crash %v): state from snapshot + tail differs from a full replay (head %d/%d, seq %d/%d)",
				seed, restart, crash, head.N, wantHead.N, seq, wantSeq)
		}
		st := statsDelta(m.grains.Stats(), before)
		if len(infos) > 0 {
			tail := wantHead.N - infos[0].Position
			if st.SnapshotLoads != 1 || st.SnapshotFallbacks != 0 || st.ReplayedEvents != tail {
				t.Fatalf("seed %d restart %d: stats %+v; want one snapshot load replaying %d events after %s", seed, restart, st, tail, infos[0].Name)
			}
			if !crash && tail != 0 {
				t.Fatalf("seed %d restart %d: a clean stop left %d events after the last snapshot", seed, restart, tail)
			}
		}
		t.Logf("restart %d (crash %v): %d snapshots, newest at position %d of %d; replayed %d events", restart, crash, len(infos),
			func() uint64 {
				if len(infos) == 0 {
					return 0
				}
				return infos[0].Position
			}(), wantHead.N, st.ReplayedEvents)
		// Retries of earlier commands are answered as before.
		for range 5 {
			if len(acceptedIDs) == 0 {
				break
			}
			id := acceptedIDs[r.IntN(len(acceptedIDs))]
			orig := accepted[id]
			dup := m.exec(envelope(graph, id, addNode("never")))
			if !dup.GetDuplicate() || dup.GetSeq() != orig.GetSeq() || dup.GetHeadCid() != orig.GetHeadCid() || dup.GetPosition() != orig.GetPosition() {
				t.Fatalf("seed %d restart %d: retry of %s = %v, want a duplicate of %v", seed, restart, id, dup, orig)
			}
		}
	}
	// The last activation's later decisions are a full replay's: the stream
	// still folds and verifies.
	m.idle()
	want, _, _ := reference(t, ref, graph)
	s, _, _, err := actors.StateAt(context.Background(), w.store, w.snaps, graph, 0)
	if err != nil {
		t.Fatalf("seed %d: state at head: %v", seed, err)
	}
	var full cairnv1.GraphSnapshot
	if err := proto.Unmarshal(want, &full); err != nil {
		t.Fatal(err)
	}
	full.Recent = nil
	if !bytes.Equal(marshalSnap(t, actors.EncodeState(s, nil)), marshalSnap(t, &full)) {
		t.Fatalf("seed %d: StateAt(head) differs from a full replay", seed)
	}
	if _, err := w.store.Verify(context.Background(), graph); err != nil {
		t.Fatalf("seed %d: verify: %v", seed, err)
	}
}

// sendAll sends envs in order and returns their futures.
func (m *member) sendAll(graph string, envs []*cairnv1.CommandEnvelope) []*actor.Future {
	pid := livePID(m.t, m, graph)
	out := make([]*actor.Future, len(envs))
	for i, env := range envs {
		out[i] = m.member.System().Root.RequestFuture(pid, env, 10*time.Second)
	}
	return out
}

// StateAt at random sequences, with and without snapshots, equals a fold of
// the stream up to that sequence.
func TestStateAt(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, seed^0x7177))
	gen := generator{r: r}
	w := newSnapWorld(t)
	const graph = "tt"
	m := startMember(t, w.store, snapGrains(w.snaps, 1+r.IntN(20)))
	m.mustExec(envelope(graph, "c0", createGraph()))
	for k := range 150 {
		m.exec(&cairnv1.CommandEnvelope{GraphId: graph, CommandId: fmt.Sprint("c", k+1), Commands: []*cairnv1.Command{gen.command(false).cmd}})
		// Another graph interleaves in the stream.
		if k%10 == 0 {
			m.exec(envelope("other", fmt.Sprint("o", k), createGraph()))
		}
	}
	m.stop()
	recs := readGraph(t, w.store, graph)
	last := recs[len(recs)-1].Seq
	for range 25 {
		seq := 1 + uint64(r.IntN(int(last)+5))
		want := actors.NewState(graph)
		chain := persistence.NewChain(graph)
		var wantSeq uint64
		for _, rec := range recs {
			if rec.Seq > seq {
				break
			}
			evs, err := chain.Check(rec.Seq, rec.Tx)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if err := actors.Apply(want, ev.Event); err != nil {
					t.Fatal(err)
				}
			}
			wantSeq = rec.Seq
		}
		for _, snaps := range []actors.SnapshotStore{nil, w.snaps} {
			got, head, gotSeq, err := actors.StateAt(context.Background(), w.store, snaps, graph, seq)
			if err != nil {
				t.Fatalf("seed %d: state at %d: %v", seed, seq, err)
			}
			if !bytes.Equal(marshalSnap(t, actors.EncodeState(got, nil)), marshalSnap(t, actors.EncodeState(want, nil))) || head != chain.Head() || gotSeq != wantSeq {
				t.Fatalf("seed %d: state at %d (snapshots %v) differs from the fold: head %d/%d seq %d/%d", seed, seq, snaps != nil, head.N, chain.Head().N, gotSeq, wantSeq)
			}
		}
	}
}

// rawPut writes data under info's object name with the metadata of the good
// snapshot good, as corruption on disk would leave it.
func rawPut(t *testing.T, obj jetstream.ObjectStore, good persistence.SnapshotInfo, data []byte) {
	t.Helper()
	ctx := context.Background()
	res, err := obj.GetInfo(ctx, good.Name)
	if err != nil {
		t.Fatalf("info %s: %v", good.Name, err)
	}
	if _, err := obj.PutBytes(ctx, good.Name, data); err != nil {
		t.Fatalf("raw put %s: %v", good.Name, err)
	}
	if err := obj.UpdateMeta(ctx, good.Name, jetstream.ObjectMeta{Name: good.Name, Metadata: res.Metadata}); err != nil {
		t.Fatalf("restore metadata of %s: %v", good.Name, err)
	}
}

// Every kind of bad snapshot is passed over with a warning and a count: the
// next older good one is used (and only the transactions after it are
// replayed), and with none good the whole history. The state is a full
// replay's in every case.
func TestBadSnapshotsFallBack(t *testing.T) {
	w := newSnapWorld(t)
	const graph = "g"
	// Three good snapshots, at three points of the history, each written
	// as the grain passivates; then a tail after the newest, passivated as
	// by a crash: no snapshot.
	snaps := &gate{Snapshots: w.snaps}
	m := startMember(t, w.store, snapGrains(snaps, 1_000_000))
	m.mustExec(envelope(graph, "c0", createGraph()))
	var goods []persistence.SnapshotInfo
	for round := range 3 {
		for i := range 5 {
			m.mustExec(envelope(graph, fmt.Sprint("r", round, "-", i), addNode(fmt.Sprint("n", round, "-", i), comp("round", fmt.Sprint(round)))))
		}
		m.idle()
		infos, err := w.snaps.List(context.Background(), persistence.KindAggregate, graph)
		if err != nil || len(infos) != round+1 {
			t.Fatalf("after round %d: %d snapshots (%v), want %d", round, len(infos), err, round+1)
		}
		goods = append(goods, infos[0])
	}
	snaps.closed.Store(true) // from here on the grain writes no snapshot
	m.mustExec(envelope(graph, "tail", addNode("tail")))
	m.idle()
	want, wantHead, _ := reference(t, startMember(t, w.store, refGrains()), graph)
	newest, older := goods[2], goods[1]
	payload := func(info persistence.SnapshotInfo) []byte {
		b, err := w.snaps.Get(context.Background(), info)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	payloads := make([][]byte, len(goods))
	for i, info := range goods {
		payloads[i] = payload(info)
	}
	good := payloads[2]
	compressed, err := w.snaps.Objects().GetBytes(context.Background(), newest.Name)
	if err != nil {
		t.Fatal(err)
	}
	otherGraph := func() []byte {
		var s cairnv1.GraphSnapshot
		if err := proto.Unmarshal(good, &s); err != nil {
			t.Fatal(err)
		}
		s.GraphId = "other"
		return marshalSnap(t, &s)
	}()
	wrongHead := older.Head // a real CID of the chain, at another position
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T)
		all     bool // corrupt every snapshot, not only the newest
	}{
		{"truncated", func(t *testing.T) { rawPut(t, w.snaps.Objects(), newest, compressed[:len(compressed)/2]) }, false},
		{"bit-flipped", func(t *testing.T) {
			flipped := slices.Clone(compressed)
			flipped[len(flipped)/2] ^= 0x10
			rawPut(t, w.snaps.Objects(), newest, flipped)
		}, false},
		{"wrong head CID", func(t *testing.T) {
			info := newest
			info.Head = wrongHead
			put(t, w.snaps, info, good)
		}, false},
		{"wrong position", func(t *testing.T) {
			info := newest
			info.Position++
			put(t, w.snaps, info, good)
		}, false},
		{"unknown format version", func(t *testing.T) {
			info := newest
			info.Format = actors.AggregateSnapshotFormat + 1
			put(t, w.snaps, info, good)
		}, false},
		{"graph id mismatch", func(t *testing.T) { put(t, w.snaps, newest, otherGraph) }, false},
		{"undecodable proto", func(t *testing.T) { put(t, w.snaps, newest, []byte("\xff\xff\xff not a snapshot")) }, false},
		{"every snapshot bad", func(t *testing.T) {
			for _, info := range goods {
				put(t, w.snaps, info, []byte("\x0a\x05junk"))
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Start from the three good snapshots.
			for i, info := range goods {
				put(t, w.snaps, info, payloads[i])
			}
			tc.corrupt(t)
			before := m.grains.Stats()
			got, head, _ := probe(t, m, graph)
			if !bytes.Equal(marshalSnap(t, got), want) || head != wantHead {
				t.Fatalf("state differs from a full replay")
			}
			st := statsDelta(m.grains.Stats(), before)
			if tc.all {
				if st.SnapshotFallbacks != 3 || st.SnapshotLoads != 0 || st.ReplayedEvents != wantHead.N {
					t.Fatalf("stats %+v; want 3 fallbacks and a full replay of %d events", st, wantHead.N)
				}
			} else if st.SnapshotFallbacks != 1 || st.SnapshotLoads != 1 || st.ReplayedEvents != wantHead.N-older.Position {
				t.Fatalf("stats %+v; want 1 fallback and a replay of the %d events after %s", st, wantHead.N-older.Position, older.Name)
			}
			m.idle()
		})
	}
}

// put stores data as the snapshot info (whose Name is recomputed).
func put(t *testing.T, snaps *persistence.Snapshots, info persistence.SnapshotInfo, data []byte) {
	t.Helper()
	info.Name = ""
	if _, err := snaps.Put(context.Background(), info, data); err != nil {
		t.Fatalf("put %s: %v", info.Name, err)
	}
}

// A rolled-back batch leaves every node's edges in the order they had, so
// that a grain's state (and its snapshots) stays the state a replay of the
// stored events builds.
func TestRollbackKeepsEdgeOrder(t *testing.T) {
	s := actors.NewState("g")
	mustDecide(t, s, envelope("g", "c1", createGraph(), addNode("a"), addNode("b"), addNode("c")))
	mustDecide(t, s, envelope("g", "c2", connect("e1", "a", "b"), connect("e2", "a", "c"), connect("e3", "b", "a"),
		connect("e4", "a", "a"), connect("e5", "c", "a"), connect("e6", "b", "c")))
	before := marshalSnap(t, actors.EncodeState(s, nil))
	s.Begin()
	mustDecide(t, s, envelope("g", "c3", disconnect("e2"), disconnect("e1")))
	mustDecide(t, s, envelope("g", "c4", disconnect("e4"), removeNode("c")))
	s.Rollback(0)
	s.Commit()
	if !bytes.Equal(marshalSnap(t, actors.EncodeState(s, nil)), before) {
		t.Fatal("the rolled-back state differs from the state before the batch")
	}
}

// A capture shares the state's edge lists, which the state goes on
// changing (edges added and removed, batches rolled back): what it encodes
// later is still the state as it was when captured, and so is a second
// capture taken in between. States decoded from a snapshot (whose lists are
// carved from one slab) behave the same.
func TestCaptureIsolatedFromLaterChanges(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, seed^0xca9))
	for round := range 20 {
		s, _ := randomState(r, "g", 200+r.IntN(200))
		if round%2 == 1 {
			s, _ = roundTrip(t, s, nil)
		}
		gen := generator{r: r}
		want := []byte(nil)
		var rest func() ([]byte, error)
		k := 0
		var wantLater []byte
		var restLater func() ([]byte, error)
		for step := range 3 {
			switch step {
			case 0:
				want, rest = marshalSnap(t, actors.EncodeState(s, nil)), actors.CaptureState(s, nil)
			case 1:
				wantLater, restLater = marshalSnap(t, actors.EncodeState(s, nil)), actors.CaptureState(s, nil)
			}
			for range 50 + r.IntN(100) {
				env := &cairnv1.CommandEnvelope{GraphId: "g", CommandId: fmt.Sprint("m", k)}
				k++
				for range 1 + r.IntN(4) {
					env.Commands = append(env.Commands, gen.command(r.IntN(4) == 0).cmd)
				}
				if actors.ValidateEnvelope(env) != nil {
					continue
				}
				s.Begin()
				_, err := actors.DecideEnvelope(s, env)
				if err == nil && r.IntN(3) == 0 {
					s.Rollback(0)
				}
				s.Commit()
			}
		}
		if got, err := rest(); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("seed %d round %d: the first capture changed with the state", seed, round)
		}
		if got, err := restLater(); err != nil || !bytes.Equal(got, wantLater) {
			t.Fatalf("seed %d round %d: the second capture changed with the state", seed, round)
		}
	}
}

// The snapshot interval is SnapshotEvery for states of up to SnapshotEvery
// × SnapshotSizeDivisor nodes and edges, and grows with the state beyond.
func TestSnapshotInterval(t *testing.T) {
	cfg := actors.DefaultGrainConfig()
	if cfg.SnapshotEvery != 1000 || cfg.SnapshotSizeDivisor != 4 {
		t.Fatalf("defaults: every %d, divisor %d", cfg.SnapshotEvery, cfg.SnapshotSizeDivisor)
	}
	for _, tc := range []struct{ items, want int }{
		{0, 1000}, {1, 1000}, {3999, 1000}, {4000, 1000}, {4004, 1001}, {100_000, 25_000}, {4_000_000, 1_000_000},
	} {
		if got := cfg.SnapshotInterval(tc.items); got != tc.want {
			t.Errorf("interval of %d items = %d, want %d", tc.items, got, tc.want)
		}
	}
	cfg.SnapshotSizeDivisor = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "divisor") {
		t.Fatalf("a zero divisor: err = %v", err)
	}
}

// A grain writes its snapshots at the interval of its state's size: every
// SnapshotEvery events while it is small, less often once it holds more
// nodes and edges than SnapshotEvery × SnapshotSizeDivisor.
func TestGrainSnapshotCadence(t *testing.T) {
	w := newSnapWorld(t)
	const graph = "cad"
	cfg := snapGrains(w.snaps, 10)
	cfg.SnapshotSizeDivisor = 1
	m := startMember(t, w.store, cfg)
	k := 0
	exec := func(cmd *cairnv1.Command) {
		m.mustExec(envelope(graph, fmt.Sprint("c", k), cmd))
		k++
	}
	positions := func() []uint64 {
		infos, err := w.snaps.List(context.Background(), persistence.KindAggregate, graph)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		var out []uint64
		for _, info := range infos {
			out = append(out, info.Position)
		}
		return out
	}
	written := func(n uint64) {
		eventually(t, fmt.Sprint(n, " snapshots written"), 10*time.Second, func() bool { return m.grains.Stats().SnapshotsWritten >= n })
	}
	// Small: 9 nodes, a snapshot after the 10th event.
	exec(createGraph())
	for i := range 9 {
		exec(addNode(fmt.Sprint("n", i)))
	}
	written(1)
	if got := positions(); !slices.Equal(got, []uint64{10}) {
		t.Fatalf("snapshots at positions %v, want [10]", got)
	}
	// 20 nodes: from now on an interval of 20 events, not 10.
	for i := 9; i < 20; i++ {
		exec(addNode(fmt.Sprint("n", i)))
	}
	for i := 0; k < 30; i++ { // positions 22 to 30
		exec(setComps(fmt.Sprint("n", i), comp("k", fmt.Sprint(i))))
	}
	written(2)
	if got := positions(); !slices.Equal(got, []uint64{30, 10}) {
		t.Fatalf("snapshots at positions %v, want [30 10]", got)
	}
	if n := m.grains.Stats().SnapshotsWritten; n != 2 {
		t.Fatalf("%d snapshots written, want 2", n)
	}
}

// The bytes a grain writes for a snapshot, marshalled straight from its
// capture, are the deterministic encoding of EncodeState's message.
func TestMarshalStateMatchesProto(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, seed^0x3a5))
	states := []func() (*actors.State, []*cairnv1.CommandReply){
		func() (*actors.State, []*cairnv1.CommandReply) { return actors.NewState("empty"), nil },
		func() (*actors.State, []*cairnv1.CommandReply) {
			s, rec, err := actors.DecodeState(validSnapshot(t))
			if err != nil {
				t.Fatal(err)
			}
			return s, rec
		},
	}
	states = append(states, func() (*actors.State, []*cairnv1.CommandReply) {
		s := actors.NewState("meta")
		create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "t",
			Metadata: map[string]string{"b": "2", "a": "1", "c": ""}}}}
		for _, env := range []*cairnv1.CommandEnvelope{
			envelope("meta", "c1", create, addNode("x", comp("empty", ""), comp("k", "v")), addNode("y"), connect("xy", "x", "y")),
			envelope("meta", "c2", deleteGraph()),
		} {
			if _, err := actors.DecideEnvelope(s, env); err != nil {
				t.Fatalf("decide %s: %v", env.GetCommandId(), err)
			}
		}
		return s, []*cairnv1.CommandReply{{CommandId: "c1", Seq: 1, Position: 5}}
	})
	for range 20 {
		states = append(states, func() (*actors.State, []*cairnv1.CommandReply) { return randomState(r, "g", 50+r.IntN(300)) })
	}
	for i, mk := range states {
		s, recent := mk()
		got, err := actors.MarshalState(s, recent)
		if err != nil {
			t.Fatal(err)
		}
		if want := marshalSnap(t, actors.EncodeState(s, recent)); !bytes.Equal(got, want) {
			t.Fatalf("seed %d state %d: %d bytes marshalled from the capture differ from the %d of proto", seed, i, len(got), len(want))
		}
	}
}
