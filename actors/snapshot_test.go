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
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/testseed"
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

// snapGrains snapshots every event counts alone: no SnapshotSpacing, which
// TestGrainSnapshotSpacing covers.
func snapGrains(snaps actors.SnapshotStore, every int) actors.GrainConfig {
	cfg := refGrains()
	cfg.Snapshots, cfg.SnapshotEvery, cfg.SnapshotSpacing = snaps, every, 0
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
	seed := testseed.Seed(t, 0)
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
	sent := map[string]*cairnv1.CommandEnvelope{}
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
					env.Commands = []*cairnv1.Command{cmdtest.CreateGraph()}
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
					sent[envs[i].GetCommandId()] = envs[i]
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
		// A stopping grain's last snapshot does not prune: one more than
		// SnapshotKeep until the next write after an activation.
		if len(infos) > cfg.SnapshotKeep+1 {
			t.Fatalf("seed %d: %d snapshots kept, want at most %d", seed, len(infos), cfg.SnapshotKeep+1)
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
		// Retries of earlier commands are answered as before; the same ids
		// with other commands are refused (the window kept their content
		// hashes across the restart).
		for range 5 {
			if len(acceptedIDs) == 0 {
				break
			}
			id := acceptedIDs[r.IntN(len(acceptedIDs))]
			orig := accepted[id]
			wantRefused(t, m.exec(cmdtest.Envelope(graph, id, cmdtest.AddNode("never"))), cmdtest.CodePrecondition, "command_id")
			dup := m.exec(sent[id])
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
	if !bytes.Equal(marshalSnap(t, aggregate.Export(s, nil)), marshalSnap(t, &full)) {
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
	seed := testseed.Seed(t, 0)
	r := rand.New(rand.NewPCG(seed, seed^0x7177))
	gen := generator{r: r}
	w := newSnapWorld(t)
	const graph = "tt"
	m := startMember(t, w.store, snapGrains(w.snaps, 1+r.IntN(20)))
	m.mustExec(cmdtest.Envelope(graph, "c0", cmdtest.CreateGraph()))
	for k := range 150 {
		m.exec(&cairnv1.CommandEnvelope{GraphId: graph, CommandId: fmt.Sprint("c", k+1), Commands: []*cairnv1.Command{gen.command(false).cmd}})
		// Another graph interleaves in the stream.
		if k%10 == 0 {
			m.exec(cmdtest.Envelope("other", fmt.Sprint("o", k), cmdtest.CreateGraph()))
		}
	}
	m.stop()
	recs := readGraph(t, w.store, graph)
	last := recs[len(recs)-1].Seq
	for range 25 {
		seq := 1 + uint64(r.IntN(int(last)+5))
		want := aggregate.NewState(graph)
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
				if err := aggregate.Apply(want, ev.Event); err != nil {
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
			if !bytes.Equal(marshalSnap(t, aggregate.Export(got, nil)), marshalSnap(t, aggregate.Export(want, nil))) || head != chain.Head() || gotSeq != wantSeq {
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
	m.mustExec(cmdtest.Envelope(graph, "c0", cmdtest.CreateGraph()))
	var goods []persistence.SnapshotInfo
	for round := range 3 {
		for i := range 5 {
			m.mustExec(cmdtest.Envelope(graph, fmt.Sprint("r", round, "-", i), cmdtest.AddNode(fmt.Sprint("n", round, "-", i), cmdtest.Comp("round", fmt.Sprint(round)))))
		}
		m.idle()
		infos, err := w.snaps.List(context.Background(), persistence.KindAggregate, graph)
		if err != nil || len(infos) != round+1 {
			t.Fatalf("after round %d: %d snapshots (%v), want %d", round, len(infos), err, round+1)
		}
		goods = append(goods, infos[0])
	}
	snaps.closed.Store(true) // from here on the grain writes no snapshot
	m.mustExec(cmdtest.Envelope(graph, "tail", cmdtest.AddNode("tail")))
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
	// A good format-2 payload, of another graph.
	otherGraph := func() []byte {
		st := aggregate.NewState("other")
		cmdtest.MustDecide(t, st, cmdtest.Envelope("other", "o1", cmdtest.CreateGraph(), cmdtest.AddNode("n0-0", cmdtest.Comp("round", "0"))))
		b, err := aggregate.Marshal(st, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	// What format 1 stored for the same state and window: a
	// cairn.v1.GraphSnapshot message, canonical as Export makes it.
	format1 := make([][]byte, len(goods))
	for i, b := range payloads {
		st, recent, err := aggregate.Unmarshal(b)
		if err != nil {
			t.Fatalf("good snapshot %s: %v", goods[i].Name, err)
		}
		format1[i] = marshalSnap(t, aggregate.Export(st, recent))
	}
	putFormat1 := func(t *testing.T, i int) {
		info := goods[i]
		info.Format = 1
		put(t, w.snaps, info, format1[i])
	}
	wrongHead := older.Head // a real CID of the chain, at another position
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T)
		all     bool  // corrupt every snapshot, not only the newest
		why     error // what CheckAggregateSnapshot says of the newest, when not nil
	}{
		{"truncated", func(t *testing.T) { rawPut(t, w.snaps.Objects(), newest, compressed[:len(compressed)/2]) }, false, nil},
		{"bit-flipped", func(t *testing.T) {
			flipped := slices.Clone(compressed)
			flipped[len(flipped)/2] ^= 0x10
			rawPut(t, w.snaps.Objects(), newest, flipped)
		}, false, nil},
		{"wrong head CID", func(t *testing.T) {
			info := newest
			info.Head = wrongHead
			put(t, w.snaps, info, good)
		}, false, nil},
		{"wrong position", func(t *testing.T) {
			info := newest
			info.Position++
			put(t, w.snaps, info, good)
		}, false, nil},
		{"unknown format version", func(t *testing.T) {
			info := newest
			info.Format = actors.AggregateSnapshotFormat + 1
			put(t, w.snaps, info, good)
		}, false, actors.ErrInvalidSnapshot},
		{"graph id mismatch", func(t *testing.T) { put(t, w.snaps, newest, otherGraph) }, false, actors.ErrInvalidSnapshot},
		{"undecodable payload", func(t *testing.T) { put(t, w.snaps, newest, []byte("\xff\xff\xff not a snapshot")) }, false, actors.ErrInvalidSnapshot},
		{"payload truncated", func(t *testing.T) { put(t, w.snaps, newest, good[:len(good)/2]) }, false, actors.ErrInvalidSnapshot},
		{"payload bit-flipped", func(t *testing.T) { // caught by the checksum
			flipped := slices.Clone(good)
			flipped[len(flipped)/2] ^= 0x10
			put(t, w.snaps, newest, flipped)
		}, false, actors.ErrInvalidSnapshot},
		{"format-1 snapshot", func(t *testing.T) { putFormat1(t, 2) }, false, actors.ErrInvalidSnapshot},
		{"format-1 payload labelled format 2", func(t *testing.T) { put(t, w.snaps, newest, format1[2]) }, false, actors.ErrInvalidSnapshot},
		{"every snapshot bad", func(t *testing.T) {
			for _, info := range goods {
				put(t, w.snaps, info, []byte("\x0a\x05junk"))
			}
		}, true, actors.ErrInvalidSnapshot},
		{"every snapshot of format 1", func(t *testing.T) {
			for i := range goods {
				putFormat1(t, i)
			}
		}, true, actors.ErrInvalidSnapshot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Start from the three good snapshots.
			for i, info := range goods {
				put(t, w.snaps, info, payloads[i])
			}
			tc.corrupt(t)
			infos, err := w.snaps.List(context.Background(), persistence.KindAggregate, graph)
			if err != nil || len(infos) != len(goods) {
				t.Fatalf("%d snapshots (%v), want %d", len(infos), err, len(goods))
			}
			err = actors.CheckAggregateSnapshot(context.Background(), w.snaps, w.store, graph, infos[0])
			if err == nil || tc.why != nil && !errors.Is(err, tc.why) {
				t.Fatalf("CheckAggregateSnapshot(%s) = %v, want an error (%v)", infos[0].Name, err, tc.why)
			}
			t.Logf("refused: %v", err)
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
	// Migration: with only format-1 snapshots, the grain rebuilds the
	// state from the stream and, as it stops, writes a format-2 snapshot of
	// the head, which the next activation loads with nothing to replay.
	for i := range goods {
		putFormat1(t, i)
	}
	snaps.closed.Store(false)
	if got, head, _ := probe(t, m, graph); !bytes.Equal(marshalSnap(t, got), want) || head != wantHead {
		t.Fatal("state rebuilt past format-1 snapshots differs from a full replay")
	}
	m.idle()
	infos, err := w.snaps.List(context.Background(), persistence.KindAggregate, graph)
	if err != nil || len(infos) == 0 {
		t.Fatalf("no snapshot after the rebuild (%v)", err)
	}
	if infos[0].Format != actors.AggregateSnapshotFormat || infos[0].Position != wantHead.N {
		t.Fatalf("newest snapshot after the rebuild: format %d at position %d, want format %d at %d",
			infos[0].Format, infos[0].Position, actors.AggregateSnapshotFormat, wantHead.N)
	}
	before := m.grains.Stats()
	if got, head, _ := probe(t, m, graph); !bytes.Equal(marshalSnap(t, got), want) || head != wantHead {
		t.Fatal("state from the migrated snapshot differs from a full replay")
	}
	if st := statsDelta(m.grains.Stats(), before); st.SnapshotLoads != 1 || st.SnapshotFallbacks != 0 || st.ReplayedEvents != 0 {
		t.Fatalf("stats %+v; want the format-2 snapshot loaded with nothing to replay", st)
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

// The snapshot interval is SnapshotEvery for states of up to SnapshotEvery
// × SnapshotSizeDivisor nodes and edges, and grows with the state beyond.
func TestSnapshotInterval(t *testing.T) {
	cfg := actors.DefaultGrainConfig()
	if cfg.SnapshotEvery != 1000 || cfg.SnapshotSizeDivisor != 16 {
		t.Fatalf("defaults: every %d, divisor %d", cfg.SnapshotEvery, cfg.SnapshotSizeDivisor)
	}
	for _, tc := range []struct{ items, want int }{
		{0, 1000}, {1, 1000}, {15_999, 1000}, {16_000, 1000}, {16_016, 1001}, {100_000, 6250}, {4_000_000, 250_000},
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
		m.mustExec(cmdtest.Envelope(graph, fmt.Sprint("c", k), cmd))
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
	exec(cmdtest.CreateGraph())
	for i := range 9 {
		exec(cmdtest.AddNode(fmt.Sprint("n", i)))
	}
	written(1)
	if got := positions(); !slices.Equal(got, []uint64{10}) {
		t.Fatalf("snapshots at positions %v, want [10]", got)
	}
	// 20 nodes: from now on an interval of 20 events, not 10.
	for i := 9; i < 20; i++ {
		exec(cmdtest.AddNode(fmt.Sprint("n", i)))
	}
	for i := 0; k < 30; i++ { // positions 22 to 30
		exec(cmdtest.SetComps(fmt.Sprint("n", i), cmdtest.Comp("k", fmt.Sprint(i))))
	}
	written(2)
	if got := positions(); !slices.Equal(got, []uint64{30, 10}) {
		t.Fatalf("snapshots at positions %v, want [30 10]", got)
	}
	if n := m.grains.Stats().SnapshotsWritten; n != 2 {
		t.Fatalf("%d snapshots written, want 2", n)
	}
}

// slowSnapshots is the real snapshot store with writes that take at least
// delay: a costly snapshot.
type slowSnapshots struct {
	*persistence.Snapshots
	delay time.Duration
}

func (s slowSnapshots) Put(ctx context.Context, info persistence.SnapshotInfo, data []byte) (persistence.SnapshotInfo, error) {
	time.Sleep(s.delay) // the cost of a big snapshot, not a wait for something
	return s.Snapshots.Put(ctx, info, data)
}

// A grain whose snapshot took a while starts its next one no sooner than
// SnapshotSpacing times that after it started, however many events are
// due: the commands in between are not followed by snapshots, and the
// grain's last snapshot as it stops covers them. Without the spacing the
// first command after the write is.
func TestGrainSnapshotSpacing(t *testing.T) {
	const delay = 400 * time.Millisecond
	for _, spacing := range []int{10, 0} {
		t.Run(fmt.Sprint("spacing=", spacing), func(t *testing.T) {
			w := newSnapWorld(t)
			const graph = "spaced"
			cfg := snapGrains(slowSnapshots{w.snaps, delay}, 1)
			cfg.SnapshotSizeDivisor, cfg.SnapshotSpacing = 1, spacing
			m := startMember(t, w.store, cfg)
			start := time.Now()
			m.mustExec(cmdtest.Envelope(graph, "c0", cmdtest.CreateGraph()))
			eventually(t, "the first snapshot written", 10*time.Second, func() bool { return m.grains.Stats().SnapshotsWritten >= 1 })
			for i := range 5 {
				m.mustExec(cmdtest.Envelope(graph, fmt.Sprint("c", i+1), cmdtest.AddNode(fmt.Sprint("n", i))))
			}
			if took := time.Since(start); spacing > 0 && took >= time.Duration(spacing)*delay {
				t.Skipf("the commands took %s, longer than the spacing: this machine is too slow for the test", took)
			}
			m.idle() // the last snapshot, at position 6
			infos, err := w.snaps.List(context.Background(), persistence.KindAggregate, graph)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			var positions []uint64
			for _, info := range infos {
				positions = append(positions, info.Position)
			}
			slices.Sort(positions)
			if spacing > 0 && !slices.Equal(positions, []uint64{1, 6}) {
				t.Fatalf("snapshots at positions %v, want [1 6]: none between while the spacing runs", positions)
			}
			if spacing == 0 && (len(positions) < 3 || positions[1] >= 6) {
				t.Fatalf("snapshots at positions %v, want one after the first command that followed the first write", positions)
			}
		})
	}
}

// TestGrainSnapshotLentBuffer: a graph whose aggregate encodes to over a
// megabyte is encoded into a buffer the snapshot store lends (outside the
// Go heap, internal/offheap), given back once written; the snapshot
// decodes to the graph.
func TestGrainSnapshotLentBuffer(t *testing.T) {
	w := newSnapWorld(t)
	const graph, nodes = "big", 80_000
	m := startMember(t, w.store, snapGrains(w.snaps, nodes)) // one snapshot, after the last batch
	m.mustExec(cmdtest.Envelope(graph, "create", cmdtest.CreateGraph()))
	for b := range nodes / aggregate.MaxCommands {
		cmds := make([]*cairnv1.Command, aggregate.MaxCommands)
		for i := range cmds {
			cmds[i] = cmdtest.AddNode(fmt.Sprintf("node-%06d", b*aggregate.MaxCommands+i), cmdtest.Comp("k", "v"))
		}
		m.mustExec(cmdtest.Envelope(graph, fmt.Sprint("b", b), cmds...))
	}
	eventually(t, "a snapshot written", 30*time.Second, func() bool { return m.grains.Stats().SnapshotsWritten >= 1 })
	infos, err := w.snaps.List(context.Background(), persistence.KindAggregate, graph)
	if err != nil || len(infos) == 0 {
		t.Fatalf("list: %v, %d snapshots", err, len(infos))
	}
	if infos[0].Size < 1<<20 {
		t.Fatalf("the snapshot is %d bytes, want over a megabyte (a lent buffer)", infos[0].Size)
	}
	eventually(t, "the buffer given back", 10*time.Second, func() bool {
		lent, held := w.snaps.Buffers().Stats()
		return lent == 0 && held >= infos[0].Size
	})
	data, err := w.snaps.Get(context.Background(), infos[0])
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := aggregate.Unmarshal(data)
	if err != nil {
		t.Fatalf("the snapshot does not decode: %v", err)
	}
	if got := len(cmdtest.TakeSnapshot(s).Nodes); got != nodes {
		t.Fatalf("the snapshot holds %d nodes, want %d", got, nodes)
	}
}
