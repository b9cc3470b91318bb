package persistence_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/persistence"
)

// follow runs FollowGraph on a goroutine; its transactions come on the
// channel, and stop cancels it and returns its error.
func follow(t *testing.T, st *persistence.Store, graph string, after persistence.Head, from uint64) (<-chan persistence.GraphTx, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan persistence.GraphTx, 100)
	done := make(chan error, 1)
	go func() {
		done <- st.FollowGraph(ctx, graph, after, from, func(tx persistence.GraphTx) error {
			out <- tx
			return nil
		})
	}()
	var stopped bool
	var err error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return out, stop
}

// next waits for the next transaction (or fails the test).
func next(t *testing.T, ch <-chan persistence.GraphTx) persistence.GraphTx {
	t.Helper()
	select {
	case tx := <-ch:
		return tx
	case <-time.After(10 * time.Second):
		t.Fatalf("no transaction within 10 s")
		return persistence.GraphTx{}
	}
}

// TestFollowGraph follows one graph across its archive, the stream and
// then live, interleaved with another graph's transactions, and checks that
// every transaction comes once, in order, with its sequence and head.
func TestFollowGraph(t *testing.T) {
	ctx := testCtx(t)
	env := newArchiveEnv(t, ctx, 3)
	st := env.st
	g, o := interleave(t, ctx, st, 8)
	if _, err := st.Archive(ctx, "g", g.seqs[5], nil); err != nil {
		t.Fatalf("archive: %v", err)
	}
	ch, stop := follow(t, st, "g", persistence.Head{}, 1)
	check := func(i int, tx persistence.GraphTx) {
		t.Helper()
		if tx.Seq != g.seqs[i] || tx.Head != g.heads[i] || tx.Tx.GetTxId() != g.txs[i].GetTxId() || len(tx.Events) != len(g.txs[i].GetEvents()) {
			t.Fatalf("transaction %d: seq %d head %v, want seq %d head %v", i, tx.Seq, tx.Head.CID, g.seqs[i], g.heads[i].CID)
		}
	}
	for i := range 8 {
		tx := next(t, ch)
		check(i, tx)
		if i == 7 && tx.Pending != 0 {
			t.Fatalf("the last transaction has %d pending", tx.Pending)
		}
	}
	// Live: the other graph's writes are not delivered, the graph's are.
	o.mustAppend(t, ctx, st, 2)
	g.mustAppend(t, ctx, st, 3)
	for i := 8; i < 11; i++ {
		check(i, next(t, ch))
	}
	select {
	case tx := <-ch:
		t.Fatalf("unexpected transaction at seq %d", tx.Seq)
	case <-time.After(100 * time.Millisecond):
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("follow ended with %v, want context.Canceled", err)
	}

	// From the middle, after a head the caller knows.
	ch, _ = follow(t, st, "g", g.heads[3], g.seqs[4])
	for i := 4; i < 11; i++ {
		check(i, next(t, ch))
	}
}

// TestFollowGraphRefusesABrokenChain starts after a head that is not the
// one before fromSeq: the first transaction fails its check, nothing is
// delivered and the error names the sequence.
func TestFollowGraphRefusesABrokenChain(t *testing.T) {
	ctx := testCtx(t)
	st := newArchiveEnv(t, ctx, 3).st
	g, _ := interleave(t, ctx, st, 4)
	err := st.FollowGraph(ctx, "g", g.heads[0], g.seqs[2], func(tx persistence.GraphTx) error {
		t.Errorf("delivered seq %d past a broken link", tx.Seq)
		return nil
	})
	var ce *persistence.ChainError
	if !errors.Is(err, persistence.ErrChainBroken) || !errors.As(err, &ce) || ce.Seq != g.seqs[2] {
		t.Fatalf("got %v, want a ChainError at seq %d", err, g.seqs[2])
	}
	if err := st.FollowGraph(ctx, "a.b", persistence.Head{}, 1, nil); !errors.Is(err, persistence.ErrInvalidGraph) {
		t.Fatalf("graph a.b: %v, want ErrInvalidGraph", err)
	}
	// fn's error stops it and comes back as is.
	stopErr := errors.New("enough")
	n := 0
	err = st.FollowGraph(ctx, "g", persistence.Head{}, 1, func(persistence.GraphTx) error {
		if n++; n == 2 {
			return stopErr
		}
		return nil
	})
	if err != stopErr || n != 2 {
		t.Fatalf("got %v after %d, want fn's error after 2", err, n)
	}
}
