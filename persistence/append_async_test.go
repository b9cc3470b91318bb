package persistence_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// appendAsync is AppendAsync waited for: it fails the test when done is
// called twice or not within a minute.
func appendAsync(t *testing.T, ctx context.Context, st *persistence.Store, within time.Duration, graph string, expected uint64, tx *cairnv1.Transaction) (uint64, error) {
	t.Helper()
	type result struct {
		seq uint64
		err error
	}
	ch := make(chan result, 2)
	st.AppendAsync(ctx, within, graph, expected, tx, nil, func(seq uint64, err error) { ch <- result{seq, err} })
	select {
	case r := <-ch:
		select {
		case <-ch:
			t.Fatalf("AppendAsync of %s answered twice", tx.GetTxId())
		case <-time.After(50 * time.Millisecond):
		}
		return r.seq, r.err
	case <-time.After(time.Minute):
		t.Fatalf("AppendAsync of %s never answered", tx.GetTxId())
		return 0, nil
	}
}

// TestAppendAsync: AppendAsync answers what AppendWithin does, once each:
// a sequence; a conflict for a stale expected sequence; the original's
// sequence for a retry of a stored transaction, at once or after the
// graph moved on; a conflict for a transaction id used on another graph;
// a refusal before anything is sent for a bad graph or a transaction
// over the limit; and with nobody to answer, ErrUnavailable after about
// within, never before.
func TestAppendAsync(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	st := srv.Store()
	txs, _ := mustBuildChain(t, "g")
	other, _ := mustBuildChain(t, "h")
	if seq, err := appendAsync(t, ctx, st, time.Minute, "g", 0, txs[0]); err != nil || seq != 1 {
		t.Fatalf("first append: %d, %v; want 1", seq, err)
	}
	if _, err := appendAsync(t, ctx, st, time.Minute, "g", 0, txs[1]); !errors.Is(err, persistence.ErrConflict) {
		t.Errorf("stale append: %v, want ErrConflict", err)
	}
	if seq, err := appendAsync(t, ctx, st, time.Minute, "g", 0, txs[0]); err != nil || seq != 1 {
		t.Errorf("retry of a stored transaction: %d, %v; want 1", seq, err)
	}
	if seq, err := appendAsync(t, ctx, st, time.Minute, "g", 1, txs[1]); err != nil || seq != 2 {
		t.Fatalf("second append: %d, %v; want 2", seq, err)
	}
	if seq, err := appendAsync(t, ctx, st, time.Minute, "g", 0, txs[0]); err != nil || seq != 1 {
		t.Errorf("late retry: %d, %v; want 1", seq, err)
	}
	used := proto.CloneOf(other[0])
	used.TxId = txs[1].GetTxId()
	if _, err := appendAsync(t, ctx, st, time.Minute, "h", 0, used); !errors.Is(err, persistence.ErrConflict) {
		t.Errorf("a transaction id used on another graph: %v, want ErrConflict", err)
	}
	if _, err := appendAsync(t, ctx, st, time.Minute, "g.*", 2, txs[2]); !errors.Is(err, persistence.ErrInvalidGraph) {
		t.Errorf("wildcard graph: %v, want ErrInvalidGraph", err)
	}
	big := proto.CloneOf(txs[2])
	big.Commands[0].CorrelationId = strings.Repeat("x", st.MaxTransactionBytes())
	if _, err := appendAsync(t, ctx, st, time.Minute, "g", 2, big); !errors.Is(err, persistence.ErrTooLarge) {
		t.Errorf("transaction over the limit: %v, want ErrTooLarge", err)
	}
	if n := streamMsgs(t, ctx, srv.JetStream()); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}

	silent, _, stxs, sub := silentStore(t, ctx, srv, srv.JetStream())
	const within = 100 * time.Millisecond
	start := time.Now()
	_, err := appendAsync(t, ctx, silent, within, "g", 1, stxs[1])
	if took := time.Since(start); took < within {
		t.Errorf("unacknowledged append gave up after %v, before its %v", took, within)
	}
	if !errors.Is(err, persistence.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unacknowledged append: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := appendAsync(t, ctx, silent, time.Minute, "g", 1, stxs[1]); !errors.Is(err, persistence.ErrUnavailable) {
		t.Errorf("append with no stream: %v, want ErrUnavailable", err)
	}
}
