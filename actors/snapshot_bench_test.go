package actors_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/graphgen"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

const (
	// activationEvents is the history of BenchmarkActivation's graph:
	// activationNodes nodes, then component changes on them.
	activationEvents = 1_000_000
	activationNodes  = 10_000
	// activationTail is how many events follow the snapshot.
	activationTail = 500
)

// publisher publishes pre-sealed transactions straight to the stream, as
// the grain's appends would store them, many in flight.
type publisher struct {
	b     *testing.B
	js    jetstream.JetStream
	subj  string
	chain *graphgen.Chain
	state *aggregate.State // the aggregate the published events fold to
	acks  []jetstream.PubAckFuture
	txs   int
	last  uint64 // stream sequence of the last acknowledged transaction
}

func (p *publisher) publish(events []*cairnv1.Event) {
	for _, ev := range events {
		if err := aggregate.Apply(p.state, ev); err != nil {
			p.b.Fatal(err)
		}
	}
	tx, err := p.chain.Seal(events, time.Now().UnixNano())
	if err != nil {
		p.b.Fatal(err)
	}
	data, err := proto.Marshal(tx)
	if err != nil {
		p.b.Fatal(err)
	}
	ack, err := p.js.PublishAsync(p.subj, data)
	if err != nil {
		p.b.Fatal(err)
	}
	p.acks = append(p.acks, ack)
	p.txs++
	if len(p.acks) >= 4096 {
		p.wait()
	}
}

// wait waits for every publish in flight.
func (p *publisher) wait() {
	for _, a := range p.acks {
		select {
		case pa := <-a.Ok():
			p.last = max(p.last, pa.Sequence)
		case err := <-a.Err():
			p.b.Fatal(err)
		case <-time.After(30 * time.Second):
			p.b.Fatal("publish not acknowledged")
		}
	}
	p.acks = p.acks[:0]
}

// benchMember is a cluster member hosting graph grains, for benchmarks.
type benchMember struct {
	b      *testing.B
	grains *actors.GraphGrains
	member *cairncluster.Member
	cancel context.CancelFunc
}

func startBenchMember(b *testing.B, store actors.EventStore, cfg actors.GrainConfig) *benchMember {
	ctx, cancel := context.WithCancel(context.Background())
	grains, err := actors.NewGraphKind(ctx, store, cfg)
	if err != nil {
		b.Fatal(err)
	}
	cm, err := cairncluster.Start(cairncluster.DefaultConfig(), grains.Kind())
	if err != nil {
		b.Fatal(err)
	}
	return &benchMember{b: b, grains: grains, member: cm, cancel: cancel}
}

func (m *benchMember) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.grains.StopAll(ctx, m.member.System().Root); err != nil {
		m.b.Error(err)
	}
	if err := m.member.Close(ctx); err != nil {
		m.b.Error(err)
	}
	m.cancel()
}

// activate activates graph's grain (when it is not active) and returns its
// head once it is loaded.
func (m *benchMember) activate(graph string) persistence.Head {
	head, _, err := actors.PingGrain(m.member.System().Root, m.pid(graph))
	if err != nil {
		m.b.Fatal(err)
	}
	return head
}

// probe returns the state and head of graph's grain, activating it.
func (m *benchMember) probe(graph string) (*cairnv1.GraphSnapshot, persistence.Head) {
	snap, head, _, err := actors.ProbeGrain(m.member.System().Root, m.pid(graph))
	if err != nil {
		m.b.Fatal(err)
	}
	return snap, head
}

// pid returns the PID of graph's live activation.
func (m *benchMember) pid(graph string) *actor.PID {
	var pid *actor.PID
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		pid = m.member.Cluster().Get(graph, actors.GraphKind)
		if pid != nil {
			if _, alive := m.member.System().ProcessRegistry.Get(pid); alive {
				break
			}
		}
		if time.Now().After(deadline) {
			m.b.Fatalf("no live activation for %s", graph)
		}
	}
	return pid
}

// idle stops the grains, as passivation does, and waits until they are
// gone.
func (m *benchMember) idle() {
	if err := m.grains.StopAll(context.Background(), m.member.System().Root); err != nil {
		m.b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for m.grains.Active() > 0 {
		if time.Now().After(deadline) {
			m.b.Fatal("grains did not passivate")
		}
		time.Sleep(5 * time.Millisecond) // polling, benchmark only
	}
}

// changes returns n component changes on the graph's nodes.
func changes(k, n int) []*cairnv1.Event {
	out := make([]*cairnv1.Event, n)
	for i := range out {
		j := k + i
		nc := &cairnv1.NodeComponentsChanged{NodeId: graphgen.NodeID(j * 7919 % activationNodes),
			Set: []*cairnv1.Component{{Type: "t" + strconv.Itoa(j%10), Value: []byte(strconv.Itoa(j % 100))}}}
		out[i] = &cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: nc}}
	}
	return out
}

// BenchmarkActivation activates a graph grain whose history holds
// 1,000,000 events (10,000 nodes, then component changes: a long history
// and a small state), by a full replay and from a snapshot taken 500
// events before the head plus the tail, with 10 events per transaction
// and, with -actors.big, also with 1 (1,000,000 messages: minutes to
// publish).
func BenchmarkActivation(b *testing.B) {
	sizes := []int{10}
	if *bigProjection {
		sizes = append(sizes, 1)
	}
	for _, txEvents := range sizes {
		b.Run(fmt.Sprintf("tx=%d", txEvents), func(b *testing.B) { benchActivation(b, txEvents) })
	}
}

func benchActivation(b *testing.B, txEvents int) {
	srv := natstest.Start(b)
	store := srv.Store()
	ctx := context.Background()
	snaps, err := persistence.OpenSnapshots(ctx, srv.JetStream(), persistence.DefaultSnapshotConfig())
	if err != nil {
		b.Fatal(err)
	}
	const graph = "act"
	js, err := jetstream.New(srv.Conn(), jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		b.Fatal(err)
	}
	p := &publisher{b: b, js: js, subj: store.Subject(graph), chain: graphgen.NewChain(graph), state: aggregate.NewState(graph)}
	start := time.Now()
	gen := graphgen.Config{Graph: graph, Nodes: activationNodes, Types: 10, Values: 100, PerNode: 3, Categories: 5, EdgeTypes: 1, TxEvents: txEvents, Seed: 1}
	if err := gen.Generate(func(events []*cairnv1.Event) error { p.publish(events); return nil }); err != nil {
		b.Fatal(err)
	}
	done := 1 + activationNodes
	for done < activationEvents-activationTail {
		n := min(txEvents, activationEvents-activationTail-done)
		p.publish(changes(done, n))
		done += n
	}
	p.wait()
	// The snapshot, as a grain writes it, before the tail.
	head := p.chain.Head()
	data, err := aggregate.Marshal(p.state, nil)
	if err != nil {
		b.Fatal(err)
	}
	info, err := snaps.Put(ctx, persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: graph, Seq: p.last, Position: head.N, Head: head.CID,
		Format: actors.AggregateSnapshotFormat}, data)
	if err != nil {
		b.Fatal(err)
	}
	for done < activationEvents {
		n := min(txEvents, activationEvents-done)
		p.publish(changes(done, n))
		done += n
	}
	p.wait()
	if p.chain.Head().N != activationEvents {
		b.Fatalf("history of %d events, want %d", p.chain.Head().N, activationEvents)
	}
	b.Logf("published %d events in %d transactions in %s; snapshot %d bytes (%d stored) at position %d",
		p.chain.Head().N, p.txs, time.Since(start).Round(time.Millisecond), info.Size, info.Stored, info.Position)

	closed := &gate{Snapshots: snaps}
	closed.closed.Store(true) // activations must not move the snapshot
	for _, mode := range []struct {
		name  string
		snaps actors.SnapshotStore
	}{{"replay", nil}, {"snapshot", closed}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := quickGrains()
			cfg.AppendTimeout = time.Minute
			cfg.Snapshots = mode.snaps
			m := startBenchMember(b, store, cfg)
			defer m.stop()
			var total time.Duration
			var took []time.Duration
			var replayed uint64
			for b.Loop() {
				before := m.grains.Stats()
				t0 := time.Now()
				h := m.activate(graph)
				d := time.Since(t0)
				total += d
				took = append(took, d)
				b.StopTimer()
				snap, _ := m.probe(graph)
				if h != p.chain.Head() || len(snap.GetNodes()) != activationNodes {
					b.Fatalf("activated at position %d with %d nodes", h.N, len(snap.GetNodes()))
				}
				replayed = m.grains.Stats().ReplayedEvents - before.ReplayedEvents
				m.idle()
				b.StartTimer()
			}
			slices.Sort(took)
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/activation")
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(replayed), "events-replayed")
			b.ReportMetric(float64(p.chain.Head().N), "events")
			b.ReportMetric(float64(p.txs), "transactions")
		})
	}
}

// BenchmarkSnapshotWrite measures what an aggregate snapshot costs: how
// long it blocks the grain (aggregate.Marshal, the state's arrays as they
// are, which the grain runs in the actor), the compressed Put (time, size
// and ratio) and reading it back (Get, then aggregate.Unmarshal with its
// checks), for a 100,000-node graph with a window of 10,000 replies, and
// with -actors.big for graphgen.Big (1,000,000 nodes, 3,000,000 edges).
// fold-ms is what a snapshot saves at best: folding the graph's events
// with Apply, in memory (a replay from the stream costs more).
func BenchmarkSnapshotWrite(b *testing.B) {
	cfg := graphgen.Big().Scaled(100_000)
	if *bigProjection {
		cfg = graphgen.Big()
	}
	cfg.Graph = "snap"
	s := aggregate.NewState(cfg.Graph)
	var fold time.Duration
	events := 0
	if err := cfg.Generate(func(evs []*cairnv1.Event) error {
		t0 := time.Now()
		for _, ev := range evs {
			if err := aggregate.Apply(s, ev); err != nil {
				return err
			}
		}
		fold += time.Since(t0)
		events += len(evs)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	recent := aggregate.NewWindow(10_000)
	for i := range 10_000 {
		recent.Put(&cairnv1.CommandReply{CommandId: "cmd-" + strconv.Itoa(i), HeadCid: "bafyreib2rxk3rkhh5ylyxj3x3gathrt4eauhwrkdn4r2bjeuunnc4njo4y", Seq: uint64(i + 1), Position: uint64(i + 1), TxId: "tx" + strconv.Itoa(i)})
	}
	srv := natstest.Start(b)
	snaps, err := persistence.OpenSnapshots(context.Background(), srv.JetStream(), persistence.DefaultSnapshotConfig())
	if err != nil {
		b.Fatal(err)
	}
	var blocked, put, get, decode time.Duration
	var size, stored int64
	var got *aggregate.State
	var gotRecent []*cairnv1.CommandReply
	seq := uint64(0)
	for b.Loop() {
		seq++
		t0 := time.Now()
		data, err := aggregate.Marshal(s, recent)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		info, err := snaps.Put(context.Background(), persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: cfg.Graph, Seq: seq,
			Format: actors.AggregateSnapshotFormat}, data)
		if err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		back, err := snaps.Get(context.Background(), info)
		if err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		got, gotRecent, err = aggregate.Unmarshal(back)
		if err != nil {
			b.Fatal(err)
		}
		t5 := time.Now()
		if got.NodeCount() != s.NodeCount() || got.EdgeCount() != s.EdgeCount() || len(gotRecent) != recent.Len() {
			b.Fatal("decoded state differs")
		}
		blocked, put, get, decode = blocked+t2.Sub(t0), put+t3.Sub(t2), get+t4.Sub(t3), decode+t5.Sub(t4)
		size, stored = info.Size, info.Stored
		if _, err := snaps.Prune(context.Background(), persistence.KindAggregate, cfg.Graph, 1); err != nil {
			b.Fatal(err)
		}
	}
	// The last decoded state, checked whole once, outside the timings.
	if !proto.Equal(aggregate.Export(got, gotRecent), aggregate.Export(s, recent.List())) {
		b.Fatal("decoded state differs")
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(blocked), "blocked-ms")
	b.ReportMetric(ms(put), "put-ms")
	b.ReportMetric(ms(get), "get-ms")
	b.ReportMetric(ms(decode), "decode-ms")
	b.ReportMetric(float64(fold.Microseconds())/1000, "fold-ms")
	b.ReportMetric(float64(events), "events")
	b.ReportMetric(float64(size)/1e6, "raw-MB")
	b.ReportMetric(float64(stored)/1e6, "stored-MB")
	b.ReportMetric(float64(size)/float64(max(stored, 1)), "ratio")
	b.ReportMetric(float64(s.NodeCount()), "nodes")
	b.ReportMetric(float64(s.EdgeCount()), "edges")
}
