package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// testCtx bounds a store test: a hang fails it instead of stalling the run.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, ctx context.Context, st *persistence.Store, graph string, expected uint64, tx *cairnv1.Transaction) uint64 {
	t.Helper()
	seq, err := st.Append(ctx, graph, expected, tx)
	if err != nil {
		t.Fatalf("append %s tx %s after %d: %v", graph, tx.GetTxId(), expected, err)
	}
	return seq
}

// streamMsgs is the number of messages the event-store stream holds, asked
// of JetStream directly.
func streamMsgs(t *testing.T, ctx context.Context, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(ctx, persistence.DefaultStoreConfig().Stream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

func TestStoreAppendConflict(t *testing.T) {
	ctx := testCtx(t)
	st := natstest.Start(t).Store()
	txs, _ := mustBuildChain(t, "g1")
	other, _ := mustBuildChain(t, "g2")

	if seq := mustAppend(t, ctx, st, "g1", 0, txs[0]); seq != 1 {
		t.Fatalf("first append: seq %d, want 1", seq)
	}
	// A writer that still thinks g1 is new is stale.
	seq, err := st.Append(ctx, "g1", 0, txs[1])
	if !errors.Is(err, persistence.ErrConflict) || errors.Is(err, persistence.ErrUnavailable) {
		t.Fatalf("stale append: seq %d, err %v; want ErrConflict", seq, err)
	}
	if seq := mustAppend(t, ctx, st, "g1", 1, txs[1]); seq != 2 {
		t.Fatalf("second append: seq %d, want 2", seq)
	}
	// Another graph's subject starts from 0, whatever the stream holds.
	if seq := mustAppend(t, ctx, st, "g2", 0, other[0]); seq != 3 {
		t.Fatalf("g2 first append: seq %d, want 3", seq)
	}
	// The stream's last sequence is no stand-in for the subject's.
	if _, err := st.Append(ctx, "g1", 3, txs[2]); !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("append to g1 expecting g2's seq: %v, want ErrConflict", err)
	}
	// A sequence from the future conflicts too.
	if _, err := st.Append(ctx, "g1", 99, txs[2]); !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("append to g1 expecting seq 99: %v, want ErrConflict", err)
	}
	for graph, want := range map[string]uint64{"g1": 2, "g2": 3, "g3": 0} {
		got, err := st.LastSeq(ctx, graph)
		if err != nil || got != want {
			t.Errorf("LastSeq(%s) = %d, %v; want %d", graph, got, err, want)
		}
	}
	if _, err := st.Verify(ctx, "g1"); err != nil {
		t.Errorf("verify after conflicts: %v", err)
	}
}

func TestStoreAppendDuplicate(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	st := srv.Store()
	js := srv.JetStream()
	txs, _ := mustBuildChain(t, "g")

	first := mustAppend(t, ctx, st, "g", 0, txs[0])
	// A retry of the same transaction, as after a lost ack: same tx id, same
	// expected sequence.
	again, err := st.Append(ctx, "g", 0, txs[0])
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if again != first {
		t.Errorf("retry stored at seq %d, want the original %d", again, first)
	}
	if n := streamMsgs(t, ctx, js); n != 1 {
		t.Errorf("stream holds %d messages after a retry, want 1", n)
	}
	if last, err := st.LastSeq(ctx, "g"); err != nil || last != first {
		t.Errorf("LastSeq = %d, %v; want %d", last, err, first)
	}
	// The chain goes on after the original.
	if seq := mustAppend(t, ctx, st, "g", first, txs[1]); seq != first+1 {
		t.Errorf("next append: seq %d, want %d", seq, first+1)
	}
	// A retry that comes after the graph moved on still finds its original.
	if seq, err := st.Append(ctx, "g", 0, txs[0]); err != nil || seq != first {
		t.Errorf("late retry: seq %d, %v; want %d", seq, err, first)
	}
	// A different transaction at a stale sequence is a conflict, not a retry.
	if _, err := st.Append(ctx, "g", 0, txs[2]); !errors.Is(err, persistence.ErrConflict) {
		t.Errorf("stale append of a new tx: %v, want ErrConflict", err)
	}
	if n := streamMsgs(t, ctx, js); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

// interleaved stores graphs a and b alternately: a at seqs 1, 3, 5 and b at
// 2, 4, 6.
func interleaved(t *testing.T, ctx context.Context, st *persistence.Store) (a, b []*cairnv1.Transaction, heads []persistence.Head) {
	a, heads = mustBuildChain(t, "a")
	b, _ = mustBuildChain(t, "b")
	var lastA, lastB uint64
	for i := range a {
		lastA = mustAppend(t, ctx, st, "a", lastA, a[i])
		lastB = mustAppend(t, ctx, st, "b", lastB, b[i])
	}
	if lastA != 5 || lastB != 6 {
		t.Fatalf("interleaved: last seqs %d and %d, want 5 and 6", lastA, lastB)
	}
	return a, b, heads
}

type readCall struct {
	seq   uint64
	graph string
	tx    *cairnv1.Transaction
}

func collect(calls *[]readCall) func(persistence.Record) error {
	return func(r persistence.Record) error {
		if r.Time.IsZero() {
			return fmt.Errorf("record %d has no time", r.Seq)
		}
		*calls = append(*calls, readCall{r.Seq, r.Tx.GetGraphId(), r.Tx})
		return nil
	}
}

func checkCalls(t *testing.T, what string, got []readCall, wantSeqs []uint64, byseq map[uint64]*cairnv1.Transaction) {
	t.Helper()
	var seqs []uint64
	for _, c := range got {
		seqs = append(seqs, c.seq)
	}
	if !slices.Equal(seqs, wantSeqs) {
		t.Errorf("%s: read seqs %v, want %v", what, seqs, wantSeqs)
		return
	}
	for _, c := range got {
		if !proto.Equal(c.tx, byseq[c.seq]) {
			t.Errorf("%s: seq %d holds %v, want %v", what, c.seq, c.tx, byseq[c.seq])
		}
	}
}

func TestStoreRead(t *testing.T) {
	ctx := testCtx(t)
	st := natstest.Start(t).Store()
	a, b, _ := interleaved(t, ctx, st)
	byseq := map[uint64]*cairnv1.Transaction{1: a[0], 2: b[0], 3: a[1], 4: b[1], 5: a[2], 6: b[2]}

	cases := []struct {
		graph string
		from  uint64
		want  []uint64
		last  uint64
	}{
		{"a", 0, []uint64{1, 3, 5}, 5},
		{"a", 1, []uint64{1, 3, 5}, 5},
		{"a", 2, []uint64{3, 5}, 5},
		{"a", 3, []uint64{3, 5}, 5},
		{"a", 5, []uint64{5}, 5},
		{"a", 6, nil, 5},
		{"a", 1000, nil, 5},
		{"b", 0, []uint64{2, 4, 6}, 6},
		{"b", 5, []uint64{6}, 6},
		{"nope", 0, nil, 0},
		{"nope", 3, nil, 0},
	}
	reads := []struct {
		name string
		read func(context.Context, string, uint64, func(persistence.Record) error) (uint64, error)
	}{{"Read", st.Read}, {"ReadScan", st.ReadScan}}
	for _, r := range reads {
		for _, tc := range cases {
			var calls []readCall
			last, err := r.read(ctx, tc.graph, tc.from, collect(&calls))
			if err != nil {
				t.Errorf("%s(%s, %d): %v", r.name, tc.graph, tc.from, err)
				continue
			}
			if last != tc.last {
				t.Errorf("%s(%s, %d) returned last %d, want %d", r.name, tc.graph, tc.from, last, tc.last)
			}
			checkCalls(t, fmt.Sprintf("%s(%s, %d)", r.name, tc.graph, tc.from), calls, tc.want, byseq)
		}
	}

	// An error from fn stops the read and comes back as is.
	var calls []readCall
	errStop := errors.New("stop")
	last, err := st.Read(ctx, "a", 0, func(r persistence.Record) error {
		calls = append(calls, readCall{seq: r.Seq})
		return errStop
	})
	if !errors.Is(err, errStop) || len(calls) != 1 || last != 5 {
		t.Errorf("Read with a failing fn: last %d, %d calls, err %v; want 5, 1 call, errStop", last, len(calls), err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Read(cancelled, "a", 0, collect(new([]readCall))); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a cancelled ctx: %v, want context.Canceled", err)
	}
}

func TestStoreReadAll(t *testing.T) {
	ctx := testCtx(t)
	st := natstest.Start(t).Store()

	var calls []readCall
	last, err := st.ReadAll(ctx, 0, collect(&calls))
	if err != nil || last != 0 || len(calls) != 0 {
		t.Fatalf("ReadAll on an empty stream: last %d, %d calls, %v", last, len(calls), err)
	}

	a, b, _ := interleaved(t, ctx, st)
	byseq := map[uint64]*cairnv1.Transaction{1: a[0], 2: b[0], 3: a[1], 4: b[1], 5: a[2], 6: b[2]}
	for _, tc := range []struct {
		from uint64
		want []uint64
	}{
		{0, []uint64{1, 2, 3, 4, 5, 6}},
		{1, []uint64{1, 2, 3, 4, 5, 6}},
		{4, []uint64{4, 5, 6}},
		{6, []uint64{6}},
		{7, nil},
	} {
		calls = nil
		last, err := st.ReadAll(ctx, tc.from, collect(&calls))
		if err != nil || last != 6 {
			t.Errorf("ReadAll(%d): last %d, %v; want 6", tc.from, last, err)
			continue
		}
		checkCalls(t, fmt.Sprintf("ReadAll(%d)", tc.from), calls, tc.want, byseq)
		for i, c := range calls {
			if want := []string{"a", "b"}[(c.seq-1)%2]; c.graph != want {
				t.Errorf("ReadAll(%d) call %d: graph %s, want %s", tc.from, i, c.graph, want)
			}
		}
	}
}

func TestStoreGet(t *testing.T) {
	ctx := testCtx(t)
	st := natstest.Start(t).Store()
	a, b, _ := interleaved(t, ctx, st)

	for seq, want := range map[uint64]*cairnv1.Transaction{1: a[0], 4: b[1], 5: a[2]} {
		r, err := st.Get(ctx, seq)
		if err != nil {
			t.Fatalf("Get(%d): %v", seq, err)
		}
		if r.Seq != seq || r.Time.IsZero() || !proto.Equal(r.Tx, want) {
			t.Errorf("Get(%d) = seq %d time %v tx %v, want %v", seq, r.Seq, r.Time, r.Tx, want)
		}
	}
	for _, seq := range []uint64{7, 1 << 40} {
		if _, err := st.Get(ctx, seq); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("Get(%d): %v, want ErrNotFound", seq, err)
		}
	}
}

func TestStoreVerify(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	st := srv.Store()
	js := srv.JetStream()
	_, _, heads := interleaved(t, ctx, st)

	res, err := st.Verify(ctx, "a")
	if err != nil {
		t.Fatalf("Verify(a): %v", err)
	}
	want := persistence.VerifyResult{Graph: "a", Transactions: 3, Events: 7, Head: heads[2], LastSeq: 5}
	if res != want {
		t.Errorf("Verify(a) = %+v\nwant        %+v", res, want)
	}

	if _, err := st.Verify(ctx, "nope"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("Verify(nope): %v, want ErrNotFound", err)
	}

	// A forged transaction published straight onto the subject, behind the
	// store's back: the right position but the wrong prev.
	txs, heads := mustBuildChain(t, "bad")
	var last uint64
	for _, tx := range txs[:2] {
		last = mustAppend(t, ctx, st, "bad", last, tx)
	}
	forged, _, err := sealTx("bad", "tx-forged", 1, persistence.Head{N: heads[1].N, CID: heads[0].CID}, chainEvents()[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, st.Subject("bad"), data)
	if err != nil {
		t.Fatalf("publish forged tx: %v", err)
	}
	res, err = st.Verify(ctx, "bad")
	var ce *persistence.ChainError
	if !errors.As(err, &ce) || !errors.Is(err, persistence.ErrChainBroken) {
		t.Fatalf("Verify(bad): %v, want a *ChainError", err)
	}
	if ce.Graph != "bad" || ce.Seq != ack.Sequence || ce.Position != heads[1].N+1 || ce.Reason != "prev link" ||
		ce.Want != heads[1].CID.String() || ce.Got != heads[0].CID.String() {
		t.Errorf("ChainError = %+v, want graph bad seq %d position %d prev link want %s got %s",
			ce, ack.Sequence, heads[1].N+1, heads[1].CID, heads[0].CID)
	}
	// The result says how far the chain held.
	if res.Transactions != 2 || res.Head != heads[1] || res.LastSeq != ack.Sequence {
		t.Errorf("Verify(bad) result %+v, want 2 transactions, head %+v, last seq %d", res, heads[1], ack.Sequence)
	}

	// A message that is no transaction at all.
	if _, err := js.Publish(ctx, st.Subject("junk"), []byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Verify(ctx, "junk")
	if !errors.Is(err, persistence.ErrMalformed) || errors.As(err, &ce) {
		t.Errorf("Verify(junk): %v, want ErrMalformed and no *ChainError", err)
	}
	var calls []readCall
	if _, err := st.ReadAll(ctx, 0, collect(&calls)); !errors.Is(err, persistence.ErrMalformed) {
		t.Errorf("ReadAll over junk: %v, want ErrMalformed", err)
	}
}

// returnsWithin runs f and fails the test if it has not returned by d: a
// hang becomes a failure with a message instead of a test binary timeout.
func returnsWithin(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
		return nil
	}
}

func TestStoreUnavailable(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	js := srv.JetStream()
	st, err := persistence.OpenStore(ctx, js, persistence.DefaultStoreConfig())
	if err != nil {
		t.Fatal(err)
	}
	txs, _ := mustBuildChain(t, "g")
	mustAppend(t, ctx, st, "g", 0, txs[0])

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 500*time.Millisecond) }

	err = returnsWithin(t, 10*time.Second, "Append", func() error {
		c, cancel := short()
		defer cancel()
		_, err := st.Append(c, "g", 1, txs[1])
		return err
	})
	if !errors.Is(err, persistence.ErrUnavailable) {
		t.Errorf("Append to a stopped server: %v, want ErrUnavailable", err)
	}
	err = returnsWithin(t, 10*time.Second, "Read", func() error {
		c, cancel := short()
		defer cancel()
		_, err := st.Read(c, "g", 0, func(persistence.Record) error { return nil })
		return err
	})
	if !errors.Is(err, persistence.ErrUnavailable) {
		t.Errorf("Read from a stopped server: %v, want ErrUnavailable", err)
	}
	err = returnsWithin(t, 10*time.Second, "OpenStore", func() error {
		c, cancel := short()
		defer cancel()
		_, err := persistence.OpenStore(c, js, persistence.DefaultStoreConfig())
		return err
	})
	if !errors.Is(err, persistence.ErrUnavailable) {
		t.Errorf("OpenStore on a stopped server: %v, want ErrUnavailable", err)
	}
}

// TestStoreOCCRace: two writers append at the same expected sequence at
// once, round after round; exactly one wins each round.
func TestStoreOCCRace(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	// Separate connections, as two engines would have.
	stores := []*persistence.Store{srv.Store(), srv.Store()}
	var expected uint64
	for round := range 20 {
		var wg sync.WaitGroup
		seqs := make([]uint64, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		for w, st := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tx := &cairnv1.Transaction{GraphId: "race", TxId: fmt.Sprintf("r%d-w%d", round, w)}
				<-start
				seqs[w], errs[w] = st.Append(ctx, "race", expected, tx)
			}()
		}
		close(start)
		wg.Wait()
		var won []int
		for w, err := range errs {
			switch {
			case err == nil:
				won = append(won, w)
			case !errors.Is(err, persistence.ErrConflict):
				t.Fatalf("round %d writer %d: %v, want success or ErrConflict", round, w, err)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d: writers %v won at expected seq %d, want exactly one (errors %v)", round, won, expected, errs)
		}
		if seqs[won[0]] <= expected {
			t.Fatalf("round %d: winner stored at seq %d, not after %d", round, seqs[won[0]], expected)
		}
		expected = seqs[won[0]]
	}
	if n := streamMsgs(t, ctx, srv.JetStream()); n != 20 {
		t.Errorf("stream holds %d messages after 20 rounds, want 20", n)
	}
}

// TestStoreConcurrentWriters: two writers build one graph's chain, each
// sealing onto its own view of the head and catching up with Read after a
// conflict. OCC must leave one valid chain holding every commit.
func TestStoreConcurrentWriters(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	const graph, perWriter = "shared", 15

	type commit struct{ expected, seq uint64 }
	var mu sync.Mutex
	var commits []commit
	conflicts := 0

	writer := func(w int, st *persistence.Store) error {
		var last uint64
		var head persistence.Head
		for i, attempt := 0, 0; i < perWriter; attempt++ {
			if attempt > 50*perWriter {
				return fmt.Errorf("writer %d: no progress after %d attempts", w, attempt)
			}
			id := fmt.Sprintf("w%d-%d-%d", w, i, attempt)
			tx, next, err := sealTx(graph, id, int64(attempt), head, []*cairnv1.Event{nodeAdded(id), nodeAdded(id + "x")}, []uint32{1, 1})
			if err != nil {
				return err
			}
			seq, err := st.Append(ctx, graph, last, tx)
			switch {
			case err == nil:
				mu.Lock()
				commits = append(commits, commit{last, seq})
				mu.Unlock()
				last, head = seq, next
				i++
			case errors.Is(err, persistence.ErrConflict):
				mu.Lock()
				conflicts++
				mu.Unlock()
				chain := persistence.NewChainAt(graph, head)
				last, err = st.Read(ctx, graph, last+1, func(r persistence.Record) error {
					_, err := chain.Check(r.Seq, r.Tx)
					return err
				})
				if err != nil {
					return fmt.Errorf("writer %d: catch up: %w", w, err)
				}
				head = chain.Head()
			default:
				return fmt.Errorf("writer %d: %w", w, err)
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for w := range errs {
		st := srv.Store()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = writer(w, st)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d commits, %d conflicts", len(commits), conflicts)

	if len(commits) != 2*perWriter {
		t.Fatalf("%d commits, want %d", len(commits), 2*perWriter)
	}
	slices.SortFunc(commits, func(a, b commit) int { return int(a.seq) - int(b.seq) })
	var prev uint64
	for _, c := range commits {
		if c.expected != prev {
			t.Fatalf("commit at seq %d expected %d, but the subject's previous message is %d (commits %v)", c.seq, c.expected, prev, commits)
		}
		prev = c.seq
	}
	res, err := srv.Store().Verify(ctx, graph)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if res.Transactions != 2*perWriter || res.Events != 4*perWriter || res.LastSeq != prev {
		t.Errorf("verify = %+v, want %d transactions, %d events, last seq %d", res, 2*perWriter, 4*perWriter, prev)
	}
}

// The duplicate window is stream-wide: a transaction id already used on
// another graph must not be taken for this graph's own retry.
func TestStoreAppendTxIDUsedByAnotherGraph(t *testing.T) {
	ctx := testCtx(t)
	st := natstest.Start(t).Store()
	a, _ := mustBuildChain(t, "g1")
	mustAppend(t, ctx, st, "g1", 0, a[0])
	b, _ := mustBuildChain(t, "g2")
	reused := proto.Clone(b[0]).(*cairnv1.Transaction)
	reused.TxId = a[0].GetTxId()
	seq, err := st.Append(ctx, "g2", 0, reused)
	if !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("append to g2 with g1's tx id: seq %d, err %v; want ErrConflict", seq, err)
	}
	if last, err := st.LastSeq(ctx, "g2"); err != nil || last != 0 {
		t.Fatalf("g2 last seq = %d, %v; want 0", last, err)
	}
}

func TestStoreRefusesWildcardGraphs(t *testing.T) {
	ctx := testCtx(t)
	st := natstest.Start(t).Store()
	txs, _ := mustBuildChain(t, "g1")
	mustAppend(t, ctx, st, "g1", 0, txs[0])
	for _, g := range []string{"", ">", "*", "g1.x", "a b"} {
		if _, err := st.Read(ctx, g, 1, func(persistence.Record) error { return nil }); !errors.Is(err, persistence.ErrInvalidGraph) {
			t.Errorf("Read(%q): %v, want ErrInvalidGraph", g, err)
		}
		if _, err := st.Verify(ctx, g); !errors.Is(err, persistence.ErrInvalidGraph) {
			t.Errorf("Verify(%q): %v, want ErrInvalidGraph", g, err)
		}
		if _, err := st.Append(ctx, g, 0, txs[0]); !errors.Is(err, persistence.ErrInvalidGraph) {
			t.Errorf("Append(%q): %v, want ErrInvalidGraph", g, err)
		}
	}
}

func TestLookupStore(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	js := srv.JetStream()
	if _, err := persistence.LookupStore(ctx, js, persistence.DefaultStoreConfig()); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("LookupStore before the stream exists: %v, want ErrNotFound", err)
	}
	if n := len(streamNames(t, ctx, js)); n != 0 {
		t.Fatalf("LookupStore created %d streams", n)
	}
	st := srv.Store()
	txs, _ := mustBuildChain(t, "g1")
	mustAppend(t, ctx, st, "g1", 0, txs[0])
	ro, err := persistence.LookupStore(ctx, js, persistence.DefaultStoreConfig())
	if err != nil {
		t.Fatalf("LookupStore: %v", err)
	}
	if last, err := ro.LastSeq(ctx, "g1"); err != nil || last != 1 {
		t.Fatalf("LastSeq through the looked-up store = %d, %v; want 1", last, err)
	}
}

func streamNames(t *testing.T, ctx context.Context, js jetstream.JetStream) []string {
	t.Helper()
	var out []string
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		out = append(out, n)
	}
	if err := names.Err(); err != nil {
		t.Fatalf("stream names: %v", err)
	}
	return out
}

// A read of one graph goes by batched direct gets: in pages (more
// transactions than one batch), in order, only the graph's, from any
// start, and without a consumer (none is asked for on the JetStream API),
// so that a grain activates while a NATS cluster has no meta leader.
func TestStoreReadNeedsNoConsumer(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	st := srv.Store()
	const n = 700 // more than two batches of direct gets
	var lastG, lastH uint64
	for i := range n {
		lastG = mustAppend(t, ctx, st, "g", lastG, &cairnv1.Transaction{GraphId: "g", TxId: fmt.Sprintf("g-%d", i)})
		if i%3 == 0 {
			lastH = mustAppend(t, ctx, st, "h", lastH, &cairnv1.Transaction{GraphId: "h", TxId: fmt.Sprintf("h-%d", i)})
		}
	}
	watch, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	consumers, err := watch.SubscribeSync("$JS.API.CONSUMER.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, from := range []uint64{0, 1, 2, lastG / 2, lastG} {
		var got []string
		prev := uint64(0)
		last, err := st.Read(ctx, "g", from, func(r persistence.Record) error {
			if r.Seq <= prev || r.Seq < from || r.Tx.GetGraphId() != "g" || r.Time.IsZero() {
				return fmt.Errorf("record seq %d of graph %q after seq %d, reading from %d", r.Seq, r.Tx.GetGraphId(), prev, from)
			}
			prev = r.Seq
			got = append(got, r.Tx.GetTxId())
			return nil
		})
		if err != nil {
			t.Fatalf("Read(g, %d): %v", from, err)
		}
		if last != lastG || prev != lastG {
			t.Fatalf("Read(g, %d): last %d, read up to %d; want %d", from, last, prev, lastG)
		}
		if from <= 1 && (len(got) != n || got[0] != "g-0" || got[n-1] != fmt.Sprintf("g-%d", n-1)) {
			t.Fatalf("Read(g, %d) read %d transactions (%v … ), want %d", from, len(got), got[:min(3, len(got))], n)
		}
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := consumers.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("a read of one graph asked for a consumer: %s %s", m.Subject, m.Data)
	}
}
