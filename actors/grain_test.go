package actors_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Commands go to JetStream; a new member on the same stream replays them
// into the same state, and goes on from there.
func TestGrainReplaysAfterRestart(t *testing.T) {
	_, store := newStore(t)
	m1 := startMember(t, store, quickGrains())
	var last *cairnv1.CommandReply
	replies := map[string]*cairnv1.CommandReply{}
	envs := map[string]*cairnv1.CommandEnvelope{}
	for _, env := range []*cairnv1.CommandEnvelope{
		cmdtest.Envelope("g", "c1", cmdtest.CreateGraph()),
		cmdtest.Envelope("g", "c2", cmdtest.AddNode("libstdc++6", cmdtest.Comp("version", "13")), cmdtest.AddNode("Zürich", cmdtest.Comp("kind", "city")),
			cmdtest.AddNodeCats("user:42/alice", "person", "admin"), cmdtest.AddNode("python3.11", cmdtest.Comp("version", "13"))),
		cmdtest.Envelope("g", "c3", cmdtest.Connect("e1", "libstdc++6", "python3.11", cmdtest.Comp("w", "1")), cmdtest.Connect("e2", "Zürich", "Zürich"),
			cmdtest.Connect("e3", "user:42/alice", "Zürich")),
		cmdtest.Envelope("g", "c4", cmdtest.SetComps("Zürich", cmdtest.Comp("kind", "town"), cmdtest.Comp("pop", "400k")), cmdtest.RemoveComps("libstdc++6", "version")),
		cmdtest.Envelope("g", "c5", cmdtest.RemoveNode("Zürich")), // cascades e2 and e3
		cmdtest.Envelope("g", "c6", cmdtest.Disconnect("e1"), cmdtest.AddNode("n7")),
	} {
		last = m1.mustExec(env)
		replies[env.GetCommandId()] = last
		envs[env.GetCommandId()] = env
	}
	// 1 + 4 + 3 + 2 + 3 (Zürich and its edges e2, e3) + 2
	if last.GetPosition() != 15 {
		t.Fatalf("last position = %d, want 15", last.GetPosition())
	}
	// The state the member built, decided locally as a reference.
	want := aggregate.NewState("g")
	cmdtest.MustDecide(t, want, cmdtest.Envelope("g", "c1", cmdtest.CreateGraph()))
	cmdtest.MustDecide(t, want, cmdtest.Envelope("g", "c2", cmdtest.AddNode("libstdc++6", cmdtest.Comp("version", "13")), cmdtest.AddNode("Zürich", cmdtest.Comp("kind", "city")),
		cmdtest.AddNodeCats("user:42/alice", "person", "admin"), cmdtest.AddNode("python3.11", cmdtest.Comp("version", "13"))))
	cmdtest.MustDecide(t, want, cmdtest.Envelope("g", "c3", cmdtest.Connect("e1", "libstdc++6", "python3.11", cmdtest.Comp("w", "1")), cmdtest.Connect("e2", "Zürich", "Zürich"),
		cmdtest.Connect("e3", "user:42/alice", "Zürich")))
	cmdtest.MustDecide(t, want, cmdtest.Envelope("g", "c4", cmdtest.SetComps("Zürich", cmdtest.Comp("kind", "town"), cmdtest.Comp("pop", "400k")), cmdtest.RemoveComps("libstdc++6", "version")))
	cmdtest.MustDecide(t, want, cmdtest.Envelope("g", "c5", cmdtest.RemoveNode("Zürich")))
	cmdtest.MustDecide(t, want, cmdtest.Envelope("g", "c6", cmdtest.Disconnect("e1"), cmdtest.AddNode("n7")))

	m1.stop()

	got, head, recs := fold(t, store, "g")
	if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(got), cmdtest.TakeSnapshot(want)); d != "" {
		t.Fatalf("folded stream differs from the decided state: %s", d)
	}
	if head.CID.String() != last.GetHeadCid() || head.N != last.GetPosition() || recs[len(recs)-1].Seq != last.GetSeq() {
		t.Fatalf("stream head %d %s seq %d, last reply %v", head.N, head.CID, recs[len(recs)-1].Seq, last)
	}
	if len(recs) != 6 {
		t.Fatalf("%d transactions, want 6", len(recs))
	}

	m2 := startMember(t, store, quickGrains())
	// The new grain knows the state...
	wantRefused(t, m2.exec(cmdtest.Envelope("g", "d1", cmdtest.AddNode("libstdc++6"))), cmdtest.CodeExists, "commands[0].add_node.node_id")
	wantRefused(t, m2.exec(cmdtest.Envelope("g", "d2", cmdtest.Connect("e9", "n7", "Zürich"))), cmdtest.CodeNotFound, "commands[0].connect_nodes.target")
	wantRefused(t, m2.exec(cmdtest.Envelope("g", "d3", cmdtest.RemoveComps("python3.11", "color"))), cmdtest.CodeNotFound, "commands[0].remove_node_components.types[0]")
	wantRefused(t, m2.exec(cmdtest.Envelope("g", "d4", cmdtest.CreateGraph())), cmdtest.CodeExists, "commands[0].create_graph.graph_id")
	// ...and the command ids, with their original answers and content: the
	// same envelope is a duplicate, another under the same id is refused.
	for id, orig := range replies {
		wantRefused(t, m2.exec(cmdtest.Envelope("g", id, cmdtest.AddNode("never-"+id))), cmdtest.CodePrecondition, "command_id")
		dup := m2.exec(envs[id])
		if dup.GetError() != nil || !dup.GetDuplicate() || dup.GetSeq() != orig.GetSeq() || dup.GetHeadCid() != orig.GetHeadCid() ||
			dup.GetPosition() != orig.GetPosition() || dup.GetTxId() != orig.GetTxId() {
			t.Fatalf("retry of %s after restart = %v, want a duplicate of %v", id, dup, orig)
		}
	}
	// ...and continues the chain.
	next := m2.mustExec(cmdtest.Envelope("g", "d5", cmdtest.Connect("e9", "n7", "python3.11")))
	if next.GetPosition() != last.GetPosition()+1 || next.GetSeq() <= last.GetSeq() || next.GetDuplicate() {
		t.Fatalf("next reply %v after %v", next, last)
	}
	res, err := store.Verify(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	if res.Transactions != 7 || res.Head.CID.String() != next.GetHeadCid() {
		t.Fatalf("verify: %+v, last reply %v", res, next)
	}
}

func TestIdempotentRetry(t *testing.T) {
	_, store := newStore(t)
	m := startMember(t, store, quickGrains())
	m.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
	first := m.mustExec(cmdtest.Envelope("g", "add-a", cmdtest.AddNode("a"), cmdtest.AddNode("b")))
	if first.GetDuplicate() {
		t.Fatal("the first answer is marked duplicate")
	}
	// The same id with other commands is refused, naming the id: it is
	// not the retry of the first envelope.
	reused := m.exec(cmdtest.Envelope("g", "add-a", cmdtest.AddNode("a"), cmdtest.AddNode("b"), cmdtest.AddNode("c")))
	wantRefused(t, reused, cmdtest.CodePrecondition, "command_id")
	if !strings.Contains(reused.GetError().GetMessage(), `"add-a"`) {
		t.Fatalf("refusal %v does not name the command id", reused.GetError())
	}
	second := m.exec(cmdtest.Envelope("g", "add-a", cmdtest.AddNode("a"), cmdtest.AddNode("b")))
	if second.GetError() != nil || !second.GetDuplicate() || second.GetSeq() != first.GetSeq() ||
		second.GetHeadCid() != first.GetHeadCid() || second.GetPosition() != first.GetPosition() || second.GetTxId() != first.GetTxId() {
		t.Fatalf("retry = %v, want a duplicate of %v", second, first)
	}
	recs := readGraph(t, store, "g")
	if seqs := commandSeqs(recs)["add-a"]; len(seqs) != 1 || seqs[0] != first.GetSeq() {
		t.Fatalf("command add-a is stored at %v, want once at %d", seqs, first.GetSeq())
	}
	if len(recs) != 2 {
		t.Fatalf("%d transactions, want 2", len(recs))
	}

	// A refused command is not remembered: its retry is decided afresh, and
	// succeeds once the graph allows it.
	wantRefused(t, m.exec(cmdtest.Envelope("g", "link", cmdtest.Connect("ac", "a", "c"))), cmdtest.CodeNotFound, "commands[0].connect_nodes.target")
	wantRefused(t, m.exec(cmdtest.Envelope("g", "link", cmdtest.Connect("ac", "a", "c"))), cmdtest.CodeNotFound, "commands[0].connect_nodes.target")
	m.mustExec(cmdtest.Envelope("g", "add-c", cmdtest.AddNode("c")))
	linked := m.mustExec(cmdtest.Envelope("g", "link", cmdtest.Connect("ac", "a", "c")))
	if linked.GetDuplicate() {
		t.Fatal("a command that was refused before is answered as a duplicate")
	}
}

// The same envelope sent from 10 goroutines at once is one transaction, and
// every sender gets its answer.
func TestConcurrentDuplicates(t *testing.T) {
	_, store := newStore(t)
	m := startMember(t, store, quickGrains())
	m.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
	for round := range 5 {
		id := fmt.Sprint("dup-", round)
		env := cmdtest.Envelope("g", id, cmdtest.AddNode(fmt.Sprint("n", round)), cmdtest.AddNode(fmt.Sprint("m", round)))
		replies := make([]*cairnv1.CommandReply, 10)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range replies {
			wg.Go(func() {
				<-start
				replies[i] = m.exec(cmdtest.Envelope(env.GetGraphId(), env.GetCommandId(), env.GetCommands()...))
			})
		}
		close(start)
		wg.Wait()
		for i, r := range replies {
			if r.GetError() != nil || r.GetSeq() != replies[0].GetSeq() || r.GetHeadCid() != replies[0].GetHeadCid() ||
				r.GetPosition() != replies[0].GetPosition() || r.GetSeq() == 0 {
				t.Fatalf("round %d: reply %d = %v, reply 0 = %v", round, i, r, replies[0])
			}
		}
		if seqs := commandSeqs(readGraph(t, store, "g"))[id]; len(seqs) != 1 || seqs[0] != replies[0].GetSeq() {
			t.Fatalf("round %d: command stored at %v, want once at %d", round, seqs, replies[0].GetSeq())
		}
	}
	if recs := readGraph(t, store, "g"); len(recs) != 6 {
		t.Fatalf("%d transactions, want 6", len(recs))
	}
}

// Envelopes that arrive while an append is in flight go out together; each
// is answered alone.
func TestGroupCommit(t *testing.T) {
	_, store := newStore(t)
	m := startMember(t, store, quickGrains())
	create := m.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph(), cmdtest.AddNode("anchor")))

	type cmd struct {
		env   *cairnv1.CommandEnvelope
		field string // the refusal expected, "" for none, "?" for either
	}
	var cmds []cmd
	for i := range 140 {
		c := cmd{env: cmdtest.Envelope("g", fmt.Sprint("add-", i), cmdtest.AddNode(fmt.Sprint("n", i), cmdtest.Comp("color", "red")))}
		if i < 20 {
			c.field = "?" // raced by again-i below
		}
		cmds = append(cmds, c)
	}
	for i := range 40 { // edges to a node that never exists
		cmds = append(cmds, cmd{env: cmdtest.Envelope("g", fmt.Sprint("ghost-", i), cmdtest.Connect(fmt.Sprint("e", i), "anchor", "ghost")),
			field: "commands[0].connect_nodes.target"})
	}
	for i := range 20 { // ids add-i also adds: one of each pair wins
		cmds = append(cmds, cmd{env: cmdtest.Envelope("g", fmt.Sprint("again-", i), cmdtest.AddNode(fmt.Sprint("n", i), cmdtest.Comp("color", "red"))), field: "?"})
	}
	replies := make([]*cairnv1.CommandReply, len(cmds))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range cmds {
		wg.Go(func() {
			<-start
			replies[i] = m.exec(c.env)
		})
	}
	close(start)
	wg.Wait()

	recs := readGraph(t, store, "g")
	stored := commandSeqs(recs)
	acked, positions := 0, map[uint64]string{}
	winners := map[string]int{} // node id -> acked adds
	for i, c := range cmds {
		r := replies[i]
		id := c.env.GetCommandId()
		node := c.env.GetCommands()[0].GetAddNode().GetNodeId()
		switch {
		case r.GetError() == nil:
			if c.field != "" && c.field != "?" {
				t.Fatalf("%s accepted: %v", id, r)
			}
			acked++
			winners[node]++
			if prev, dup := positions[r.GetPosition()]; dup {
				t.Fatalf("%s and %s share position %d", id, prev, r.GetPosition())
			}
			positions[r.GetPosition()] = id
			if seqs := stored[id]; len(seqs) != 1 || seqs[0] != r.GetSeq() {
				t.Fatalf("acked %s is stored at %v, want once at %d", id, seqs, r.GetSeq())
			}
		case c.field == "":
			t.Fatalf("valid %s refused: %v", id, aggregate.ErrorFromProto(r.GetError()))
		case c.field == "?":
			wantRefused(t, r, cmdtest.CodeExists, "commands[0].add_node.node_id")
		default:
			wantRefused(t, r, cmdtest.CodeNotFound, c.field)
		}
		if r.GetError() != nil && len(stored[id]) != 0 {
			t.Fatalf("refused %s is stored", id)
		}
	}
	for i := range 140 {
		if n := winners[fmt.Sprint("n", i)]; n != 1 {
			t.Fatalf("node n%d added by %d acked commands, want 1", i, n)
		}
	}
	if acked != 140 {
		t.Fatalf("%d commands acked, want 140", acked)
	}
	// Group commit happened: fewer transactions than acked commands.
	if txs := len(recs) - 1; txs >= acked {
		t.Fatalf("%d transactions for %d acked commands: no group commit", txs, acked)
	} else {
		t.Logf("%d acked commands in %d transactions", acked, txs)
	}
	res, err := store.Verify(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 142 || res.Transactions != len(recs) || recs[0].Seq != create.GetSeq() {
		t.Fatalf("verify: %+v", res)
	}
	s, _, _ := fold(t, store, "g")
	if s.NodeCount() != 141 || s.EdgeCount() != 0 || s.DistinctComponents() != 1 {
		t.Fatalf("folded: %d nodes, %d edges, %d components", s.NodeCount(), s.EdgeCount(), s.DistinctComponents())
	}
}

// Two members, each with its own activation of one graph, write to it at
// once. The store's optimistic concurrency keeps the chain linear; no acked
// command is lost or stored twice; a stale writer reloads and decides again
// or answers CONFLICT, and a client retry with the same id then succeeds.
func TestTwoWritersOneGraph(t *testing.T) {
	srv, store := newStore(t)
	a := startMember(t, store, quickGrains())
	b := startMember(t, srv.Store(), quickGrains()) // its own connection
	a.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))

	const writers, perWriter = 3, 20
	type result struct {
		id        string
		node      string
		rep       *cairnv1.CommandReply
		conflicts int
	}
	var (
		mu      sync.Mutex
		results []result
	)
	// Rounds: in each, every writer of both members sends its next two
	// commands at once, so that the members keep overtaking each other.
	for i := range perWriter {
		var wg sync.WaitGroup
		for mi, m := range []*member{a, b} {
			for w := range writers {
				wg.Go(func() {
					node := fmt.Sprintf("m%d-w%d-%d", mi, w, i)
					shared := fmt.Sprintf("shared-%d-%d", w, i) // both members add these
					for _, c := range []struct{ id, node string }{{node, node}, {fmt.Sprintf("m%d-%s", mi, shared), shared}} {
						res := result{id: c.id, node: c.node}
						for attempt := 0; ; attempt++ {
							res.rep = m.exec(cmdtest.Envelope("g", c.id, cmdtest.AddNode(c.node)))
							if res.rep.GetError().GetCode() != cmdtest.CodeConflict || attempt == 50 {
								break
							}
							res.conflicts++ // retry with the same id, as a client should
						}
						mu.Lock()
						results = append(results, res)
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
	}

	_, _, recs := fold(t, store, "g") // fails on any event that does not fit: a lost update
	if _, err := store.Verify(context.Background(), "g"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	stored := commandSeqs(recs)
	acked, conflicts, sharedWins := 0, 0, map[string]int{}
	for _, r := range results {
		conflicts += r.conflicts
		switch {
		case r.rep.GetError() == nil:
			acked++
			seqs := stored[r.id]
			if len(seqs) != 1 || seqs[0] != r.rep.GetSeq() {
				t.Fatalf("acked %s is stored at %v, want once at %d (reply %v)", r.id, seqs, r.rep.GetSeq(), r.rep)
			}
			sharedWins[r.node]++
		case r.rep.GetError().GetCode() == cmdtest.CodeExists && r.node != r.id:
			// The other member added this shared node first.
			if len(stored[r.id]) != 0 {
				t.Fatalf("refused %s is stored", r.id)
			}
		default:
			t.Fatalf("%s: %v", r.id, aggregate.ErrorFromProto(r.rep.GetError()))
		}
	}
	for node, n := range sharedWins {
		if n != 1 {
			t.Fatalf("node %s added by %d acked commands", node, n)
		}
	}
	if want := 2*writers*perWriter + writers*perWriter; acked != want {
		t.Fatalf("%d acked, want %d (every own node and each shared node once)", acked, want)
	}
	// Every stored command was acked by someone: nothing unanswered was written.
	for id := range stored {
		if id == "create" {
			continue
		}
		if !slices.ContainsFunc(results, func(r result) bool { return r.id == id && r.rep.GetError() == nil }) {
			t.Fatalf("stored command %s was never acked", id)
		}
	}
	// The members' transactions interleave in the stream, at least once a
	// round: each wrote after the other had, and found out by a conflict.
	switches, prev := 0, "m0"
	for _, r := range recs[1:] {
		by := r.Tx.GetCommands()[0].GetCommandId()[:2]
		if by != prev {
			switches++
		}
		prev = by
	}
	if switches < perWriter {
		t.Fatalf("the writers took turns %d times; the test did not race them", switches)
	}
	t.Logf("%d acked in %d transactions; writers took turns %d times; %d CONFLICT answers retried", acked, len(recs)-1, switches, conflicts)
}

// A grain passivates when idle, and the next command re-activates it from
// the stream with its state and its recent command ids.
func TestPassivation(t *testing.T) {
	_, store := newStore(t)
	cfg := quickGrains()
	cfg.PassivateAfter = 200 * time.Millisecond
	m := startMember(t, store, cfg)
	m.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
	added := m.mustExec(cmdtest.Envelope("g", "add", cmdtest.AddNode("a", cmdtest.Comp("color", "red")), cmdtest.AddNode("b")))
	if m.grains.Active() != 1 {
		t.Fatalf("%d active grains, want 1", m.grains.Active())
	}
	for round := range 2 {
		eventually(t, "the grain passivates", 5*time.Second, func() bool { return m.grains.Active() == 0 })
		wantRefused(t, m.exec(cmdtest.Envelope("g", fmt.Sprint("again-", round), cmdtest.AddNode("a"))), cmdtest.CodeExists, "commands[0].add_node.node_id")
		if m.grains.Active() != 1 {
			t.Fatalf("round %d: %d active grains after a command, want 1", round, m.grains.Active())
		}
		dup := m.exec(cmdtest.Envelope("g", "add", cmdtest.AddNode("a", cmdtest.Comp("color", "red")), cmdtest.AddNode("b")))
		if !dup.GetDuplicate() || dup.GetSeq() != added.GetSeq() || dup.GetHeadCid() != added.GetHeadCid() {
			t.Fatalf("round %d: retry after passivation = %v, want a duplicate of %v", round, dup, added)
		}
	}
	next := m.mustExec(cmdtest.Envelope("g", "edge", cmdtest.Connect("ab", "a", "b")))
	if next.GetPosition() != added.GetPosition()+1 {
		t.Fatalf("position %d after passivation, want %d", next.GetPosition(), added.GetPosition()+1)
	}
}

// faultyStore is the real store with injected trouble: appends that take
// a while (a slow disk), and reads that fail after they have delivered
// everything (a connection lost at the end).
type faultyStore struct {
	*persistence.Store
	delay     atomic.Int64 // nanoseconds each append waits first
	failReads atomic.Bool
	appends   atomic.Int64 // appends so far
	failNth   atomic.Int64 // the append (1-based) that fails as unavailable; 0: none
}

func newFaultyStore(s *persistence.Store, delay time.Duration) *faultyStore {
	f := &faultyStore{Store: s}
	f.delay.Store(int64(delay))
	return f
}

func (s *faultyStore) AppendWithin(ctx context.Context, within time.Duration, graph string, expectedSeq uint64, tx *cairnv1.Transaction, sealed *persistence.Sealed) (uint64, error) {
	select {
	case <-time.After(time.Duration(s.delay.Load())):
	case <-time.After(within):
		return 0, context.DeadlineExceeded
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if n := s.appends.Add(1); n == s.failNth.Load() {
		return 0, fmt.Errorf("append %s: %w: injected", graph, persistence.ErrUnavailable)
	}
	return s.Store.AppendWithin(ctx, within, graph, expectedSeq, tx, sealed)
}

// AppendAsync goes through AppendWithin's faults, on a goroutine.
func (s *faultyStore) AppendAsync(ctx context.Context, within time.Duration, graph string, expectedSeq uint64, tx *cairnv1.Transaction, sealed *persistence.Sealed, done func(uint64, error)) {
	go func() { done(s.AppendWithin(ctx, within, graph, expectedSeq, tx, sealed)) }()
}

func (s *faultyStore) Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error) {
	last, err := s.Store.Read(ctx, graph, fromSeq, fn)
	if err == nil && s.failReads.Load() {
		err = fmt.Errorf("read %s: %w: injected", graph, persistence.ErrUnavailable)
	}
	return last, err
}

// A passivation timeout that fires while an append is in flight must not
// keep the grain alive for ever.
func TestPassivationAfterSlowAppend(t *testing.T) {
	_, store := newStore(t)
	cfg := quickGrains()
	cfg.PassivateAfter = 100 * time.Millisecond
	m := startMember(t, newFaultyStore(store, 400*time.Millisecond), cfg)
	m.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
	eventually(t, "the grain passivates after a slow append", 5*time.Second, func() bool { return m.grains.Active() == 0 })
}

// Stopping the grains answers the append in flight with its real outcome and
// refuses what was queued: every acked command is stored, nothing refused is.
func TestStopAllDrains(t *testing.T) {
	_, store := newStore(t)
	m := startMember(t, newFaultyStore(store, 50*time.Millisecond), quickGrains())
	m.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
	replies := make([]*cairnv1.CommandReply, 50)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Go(func() {
			replies[i] = m.exec(cmdtest.Envelope("g", fmt.Sprint("c", i), cmdtest.AddNode(fmt.Sprint("n", i))))
		})
	}
	eventually(t, "commands reach the grain", 5*time.Second, func() bool { return len(readGraph(t, store, "g")) > 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.grains.StopAll(ctx, m.member.System().Root); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	stored := commandSeqs(readGraph(t, store, "g"))
	for i, r := range replies {
		id := fmt.Sprint("c", i)
		switch {
		case r.GetError() == nil:
			if seqs := stored[id]; len(seqs) != 1 || seqs[0] != r.GetSeq() {
				t.Fatalf("acked %s stored at %v, want once at %d", id, seqs, r.GetSeq())
			}
		case r.GetError().GetCode() == cmdtest.CodeUnavailable:
			if len(stored[id]) != 0 {
				t.Fatalf("%s answered UNAVAILABLE but stored", id)
			}
		default:
			t.Fatalf("%s: %v", id, aggregate.ErrorFromProto(r.GetError()))
		}
	}
}

// A stored transaction that does not fit the grain's replay is refused with
// UNAVAILABLE, not a crash.
func TestReplayRefusesOddTransactions(t *testing.T) {
	_, store := newStore(t)
	ctx := context.Background()
	ev := &cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{GraphId: "g"}}}
	recs, _, err := persistence.Seal("g", "tx1", 1, persistence.Head{}, []*cairnv1.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	// The chain is sound, but the first command claims no event.
	tx := &cairnv1.Transaction{GraphId: "g", TxId: "tx1", TimestampUnixNano: 1, Events: recs,
		Commands: []*cairnv1.CommandRecord{{CommandId: "empty"}, {CommandId: "create", EventCount: 1}}}
	if _, err := store.Append(ctx, "g", 0, tx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Verify(ctx, "g"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	m := startMember(t, store, quickGrains())
	disp := actors.NewDispatcher(m.member.Cluster(), 3*time.Second) // fail fast when the grain does not answer
	rep := disp.Execute(ctx, cmdtest.Envelope("g", "c1", cmdtest.AddNode("a")))
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_DATA_LOSS || !strings.Contains(rep.GetError().GetMessage(), "records no events") {
		t.Fatalf("reply %v, want DATA_LOSS naming the empty command", rep)
	}
}

// When reloading after a conflict fails, the grain must not go on deciding
// queued commands on the half-reloaded state: an append of those could
// succeed while a later activation's reload misses it, and the grain would
// then accept a node that already exists.
func TestConflictReloadFailure(t *testing.T) {
	_, store := newStore(t)
	a := startMember(t, store, quickGrains())
	faulty := newFaultyStore(store, 0)
	b := startMember(t, faulty, quickGrains())
	a.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
	b.mustExec(cmdtest.Envelope("g", "b-n0", cmdtest.AddNode("n0"))) // b's grain is loaded
	a.mustExec(cmdtest.Envelope("g", "a-x", cmdtest.AddNode("x")))   // and now stale

	faulty.delay.Store(int64(300 * time.Millisecond))
	faulty.failReads.Store(true)
	f1 := b.send("g", cmdtest.Envelope("g", "b-y", cmdtest.AddNode("y"))) // conflicts, and the reload fails
	f2 := b.send("g", cmdtest.Envelope("g", "b-z", cmdtest.AddNode("z"))) // queued behind it
	if r1 := b.answer(f1); r1.GetError().GetCode() != cmdtest.CodeUnavailable {
		t.Fatalf("command after a failed reload: %v, want UNAVAILABLE", r1)
	}
	faulty.failReads.Store(false)
	r3 := b.exec(cmdtest.Envelope("g", "b-w", cmdtest.AddNode("w")))
	r2 := b.answer(f2)
	faulty.delay.Store(0)
	r4 := b.exec(cmdtest.Envelope("g", "b-z-again", cmdtest.AddNode("z")))
	if r2.GetError() == nil && r4.GetError() == nil {
		t.Fatalf("node z added twice: %v and %v", r2, r4)
	}
	_, _, recs := fold(t, store, "g")
	stored := commandSeqs(recs)
	for _, r := range []*cairnv1.CommandReply{r2, r3, r4} {
		if r.GetError() == nil && len(stored[r.GetCommandId()]) != 1 {
			t.Fatalf("acked %s stored at %v", r.GetCommandId(), stored[r.GetCommandId()])
		}
	}
}

// A refusal decided on a batch's own uncommitted commands is not final: when
// that batch is not stored, the refused command is decided again.
func TestHeldRefusalDecidedAgain(t *testing.T) {
	_, store := newStore(t)
	cfg := quickGrains()
	cfg.AppendRetries = 0
	fs := newFaultyStore(store, 0)
	m := startMember(t, fs, cfg)
	m.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
	fs.delay.Store(int64(200 * time.Millisecond))
	fs.failNth.Store(fs.appends.Load() + 2) // the batch after "slow"
	slow := m.send("g", cmdtest.Envelope("g", "slow", cmdtest.AddNode("first")))
	a := m.send("g", cmdtest.Envelope("g", "a", cmdtest.AddNode("x")))
	b := m.send("g", cmdtest.Envelope("g", "b", cmdtest.AddNode("x")))
	if rep := m.answer(slow); rep.GetError() != nil {
		t.Fatalf("slow: %v", aggregate.ErrorFromProto(rep.GetError()))
	}
	if rep := m.answer(a); rep.GetError().GetCode() != cmdtest.CodeUnavailable {
		t.Fatalf("a: want UNAVAILABLE from the failed append, got %v", rep)
	}
	repB := m.answer(b)
	if repB.GetError() != nil {
		t.Fatalf("b was refused (%v) on the strength of a's node, which was never stored", aggregate.ErrorFromProto(repB.GetError()))
	}
	stored := commandSeqs(readGraph(t, store, "g"))
	if len(stored["a"]) != 0 || len(stored["b"]) != 1 {
		t.Fatalf("stored a at %v, b at %v; want b once and a never", stored["a"], stored["b"])
	}
}

// skippingStore's filtered reads lose the first transaction they would
// deliver, as a server with a wrong per-subject index might; its unfiltered
// scans are whole.
type skippingStore struct{ *persistence.Store }

func (s skippingStore) Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error) {
	first := true
	return s.Store.Read(ctx, graph, fromSeq, func(r persistence.Record) error {
		if first {
			first = false
			return nil
		}
		return fn(r)
	})
}

// A replay that finds a chain gap reads the stream unfiltered before it gives
// up: the grain serves the whole state, never a state with a hole.
func TestReplayFallsBackToScan(t *testing.T) {
	_, store := newStore(t)
	m1 := startMember(t, store, quickGrains())
	m1.mustExec(cmdtest.Envelope("g", "c1", cmdtest.CreateGraph()))
	m1.mustExec(cmdtest.Envelope("g", "c2", cmdtest.AddNode("a")))
	m1.stop()

	m2 := startMember(t, skippingStore{store}, quickGrains())
	wantRefused(t, m2.exec(cmdtest.Envelope("g", "c3", cmdtest.AddNode("a"))), cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, "commands[0].add_node.node_id")
	rep := m2.exec(cmdtest.Envelope("g", "c2", cmdtest.AddNode("a")))
	if !rep.GetDuplicate() {
		t.Fatalf("retry of c2 after the fallback replay: %v, want the original result", rep)
	}
	m2.mustExec(cmdtest.Envelope("g", "c4", cmdtest.AddNode("b")))
	if _, err := store.Verify(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
}

// A command id reused for other content is refused after a restart too,
// whether the new grain rebuilt its idempotency window from the
// transactions (their command records carry the content hash) or from an
// aggregate snapshot (its window keeps the hash).
func TestCommandIDReuseAcrossRestart(t *testing.T) {
	for _, from := range []string{"replay", "snapshot"} {
		t.Run(from, func(t *testing.T) {
			w := newSnapWorld(t)
			cfg := quickGrains()
			if from == "snapshot" {
				cfg = snapGrains(w.snaps, 1)
			}
			first := cmdtest.Envelope("g", "add-a", cmdtest.AddNode("a", cmdtest.Comp("color", "red")))
			m1 := startMember(t, w.store, cfg)
			m1.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
			orig := m1.mustExec(first)
			m1.stop() // a grain that stops writes a snapshot of what it applied since the last
			if from == "snapshot" {
				infos, err := w.snaps.List(context.Background(), persistence.KindAggregate, "g")
				if err != nil || len(infos) == 0 || infos[0].Position != orig.GetPosition() {
					t.Fatalf("snapshots %+v (%v), want the newest at position %d", infos, err, orig.GetPosition())
				}
			}

			m2 := startMember(t, w.store, cfg)
			other := cmdtest.Envelope("g", "add-a", cmdtest.AddNode("a", cmdtest.Comp("color", "blue")))
			rep := m2.exec(other)
			wantRefused(t, rep, cmdtest.CodePrecondition, "command_id")
			if !strings.Contains(rep.GetError().GetMessage(), `"add-a"`) {
				t.Fatalf("refusal %v does not name the command id", rep.GetError())
			}
			dup := m2.exec(cmdtest.Envelope("g", "add-a", cmdtest.AddNode("a", cmdtest.Comp("color", "red"))))
			if dup.GetError() != nil || !dup.GetDuplicate() || dup.GetSeq() != orig.GetSeq() || dup.GetHeadCid() != orig.GetHeadCid() || len(dup.GetContentHash()) != 0 {
				t.Fatalf("retry = %v, want a duplicate of %v", dup, orig)
			}
			st := m2.grains.Stats()
			if from == "snapshot" && (st.SnapshotLoads != 1 || st.ReplayedTransactions != 0) {
				t.Fatalf("the grain did not rebuild from the snapshot alone: %+v", st)
			}
			if from == "replay" && st.ReplayedTransactions != 2 {
				t.Fatalf("the grain replayed %d transactions, want 2", st.ReplayedTransactions)
			}
			if recs := readGraph(t, w.store, "g"); len(recs) != 2 {
				t.Fatalf("%d transactions, want 2", len(recs))
			}
		})
	}
}
