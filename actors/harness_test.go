package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// member is one real cluster member hosting graph grains over a real event
// store; each test starts its own.
type member struct {
	t      *testing.T
	store  actors.EventStore
	grains *actors.GraphGrains
	member *cairncluster.Member
	disp   *actors.Dispatcher
	cancel context.CancelFunc
	closed bool
}

// startMember starts a member over store; it is stopped in t.Cleanup unless
// the test stops it first.
func startMember(t *testing.T, store actors.EventStore, cfg actors.GrainConfig) *member {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	grains, err := actors.NewGraphKind(ctx, store, cfg)
	if err != nil {
		cancel()
		t.Fatalf("graph kind: %v", err)
	}
	cm, err := cairncluster.Start(cairncluster.DefaultConfig(), grains.Kind())
	if err != nil {
		cancel()
		t.Fatalf("start member: %v", err)
	}
	m := &member{t: t, store: store, grains: grains, member: cm, disp: actors.NewDispatcher(cm.Cluster(), 10*time.Second), cancel: cancel}
	t.Cleanup(m.stop)
	return m
}

// stop drains the grains and leaves the cluster.
func (m *member) stop() {
	if m.closed {
		return
	}
	m.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.grains.StopAll(ctx, m.member.System().Root); err != nil {
		m.t.Errorf("stop grains: %v", err)
	}
	if err := m.member.Close(ctx); err != nil {
		m.t.Errorf("close member: %v", err)
	}
	m.cancel()
}

func (m *member) exec(env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	return m.disp.Execute(context.Background(), env)
}

// send sends env to graph's grain without waiting for the answer; envelopes
// sent one after another from one goroutine reach the grain in that order.
//
// It does not use Cluster.RequestFuture: protoactor caches that method's call
// options, root context included, in a package variable set by the first
// cluster that calls it, so with a cluster per test the answers of every
// later test go to an actor system that is gone.
func (m *member) send(graph string, env *cairnv1.CommandEnvelope) *actor.Future {
	m.t.Helper()
	pid := m.member.Cluster().Get(graph, actors.GraphKind)
	if pid == nil {
		m.t.Fatalf("no activation for graph %s", graph)
	}
	return m.member.System().Root.RequestFuture(pid, env, 10*time.Second)
}

// answer waits for the reply to a send.
func (m *member) answer(f *actor.Future) *cairnv1.CommandReply {
	m.t.Helper()
	res, err := f.Result()
	if err != nil {
		m.t.Fatalf("no answer: %v", err)
	}
	rep, ok := res.(*cairnv1.CommandReply)
	if !ok {
		m.t.Fatalf("answer is a %T", res)
	}
	return rep
}

// mustExec runs env and fails the test when it is refused.
func (m *member) mustExec(env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	m.t.Helper()
	rep := m.exec(env)
	if rep.GetError() != nil {
		m.t.Fatalf("command %s refused: %v", env.GetCommandId(), aggregate.ErrorFromProto(rep.GetError()))
	}
	if rep.GetCommandId() != env.GetCommandId() || rep.GetSeq() == 0 || rep.GetHeadCid() == "" || rep.GetPosition() == 0 || rep.GetTxId() == "" {
		m.t.Fatalf("command %s: incomplete reply %v", env.GetCommandId(), rep)
	}
	return rep
}

// wantRefused checks that rep refuses its command with code at field.
func wantRefused(t *testing.T, rep *cairnv1.CommandReply, code cairnv1.ErrorCode, field string) {
	t.Helper()
	if rep.GetError() == nil {
		t.Fatalf("command %s accepted (%v), want %v at %q", rep.GetCommandId(), rep, code, field)
	}
	if rep.GetError().GetCode() != code || rep.GetError().GetField() != field {
		t.Fatalf("command %s refused with %v, want %v at %q", rep.GetCommandId(), aggregate.ErrorFromProto(rep.GetError()), code, field)
	}
	if rep.GetSeq() != 0 || rep.GetHeadCid() != "" {
		t.Fatalf("refused command %s has a position: %v", rep.GetCommandId(), rep)
	}
}

// newStore starts an embedded JetStream server for t and opens the event
// store on it.
func newStore(t *testing.T) (*natstest.Server, *persistence.Store) {
	t.Helper()
	srv := natstest.Start(t)
	return srv, srv.Store()
}

// readGraph reads every transaction of graph.
func readGraph(t *testing.T, store *persistence.Store, graph string) []persistence.Record {
	t.Helper()
	var recs []persistence.Record
	if _, err := store.Read(context.Background(), graph, 1, func(r persistence.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatalf("read %s: %v", graph, err)
	}
	return recs
}

// fold replays graph from the stream onto a new state, checking the chain.
// It returns the state, the chain's head and the records.
func fold(t *testing.T, store *persistence.Store, graph string) (*aggregate.State, persistence.Head, []persistence.Record) {
	t.Helper()
	s := aggregate.NewState(graph)
	chain := persistence.NewChain(graph)
	recs := readGraph(t, store, graph)
	for _, r := range recs {
		evs, err := chain.Check(r.Seq, r.Tx)
		if err != nil {
			t.Fatalf("chain: %v", err)
		}
		for i, ev := range evs {
			if err := aggregate.Apply(s, ev.Event); err != nil {
				t.Fatalf("seq %d event %d (position %d): %v", r.Seq, i, ev.Envelope.N, err)
			}
		}
	}
	return s, chain.Head(), recs
}

// commandSeqs maps every command id in recs to the stream sequences of the
// transactions that hold it.
func commandSeqs(recs []persistence.Record) map[string][]uint64 {
	m := make(map[string][]uint64)
	for _, r := range recs {
		for _, c := range r.Tx.GetCommands() {
			m[c.GetCommandId()] = append(m[c.GetCommandId()], r.Seq)
		}
	}
	return m
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		<-tick.C
	}
}

// quickGrains is the default grain configuration with short timeouts, so
// that a failing test fails fast.
func quickGrains() actors.GrainConfig {
	cfg := actors.DefaultGrainConfig()
	cfg.AppendTimeout = 5 * time.Second
	return cfg
}
