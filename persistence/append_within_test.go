package persistence_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// TestAppendWithinTimesOut: an append that nobody acknowledges (its
// stream is gone and a plain subscriber takes the message) gives up after
// about within with ErrUnavailable, never before; with no responder at all
// it is ErrUnavailable at once; and a later append on a stream is
// acknowledged as usual (the reply subscription survived both).
func TestAppendWithinTimesOut(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	js, nc := srv.JetStream(), srv.Conn()
	st, cfg, txs, sub := silentStore(t, ctx, srv, js)
	const within = 100 * time.Millisecond
	start := time.Now()
	_, err := st.AppendWithin(ctx, within, "g", 1, txs[1], nil)
	took := time.Since(start)
	if !errors.Is(err, persistence.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unacknowledged append: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if took < within {
		t.Errorf("unacknowledged append gave up after %v, before its %v", took, within)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || m.Header.Get(nats.MsgIdHdr) != txs[1].GetTxId() {
		t.Errorf("the subscriber got %v, %v; want the transaction with its message id", m, err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	_, err = st.AppendWithin(ctx, time.Minute, "g", 1, txs[1], nil)
	if !errors.Is(err, persistence.ErrUnavailable) || !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("append with no stream: %v, want ErrUnavailable from no responders", err)
	}

	st2, err := persistence.OpenStore(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if seq := mustAppend(t, ctx, st2, "g", 0, txs[0]); seq != 1 {
		t.Errorf("append on the new stream: seq %d, want 1", seq)
	}
	if seq, err := st.AppendWithin(ctx, time.Minute, "g", 1, txs[1], nil); err != nil || seq != 2 {
		t.Errorf("append through the first store again: %d, %v; want 2", seq, err)
	}
}

// A publish whose connection starts reconnecting before the stream
// acknowledged it fails at once as ErrUnavailable (its acknowledgement, if
// any, went to the old connection), not after its whole wait; the store
// appends again after the reconnect.
func TestAppendFailsOnReconnect(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A subscriber on another connection takes the publish.
	st, cfg, txs, sub := silentStore(t, ctx, srv, js)
	done := make(chan error, 1)
	go func() {
		_, err := st.AppendWithin(ctx, time.Minute, "g", 1, txs[1], nil)
		done <- err
	}()
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("the publish did not arrive: %v", err)
	}
	start := time.Now()
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, persistence.ErrUnavailable) || !errors.Is(err, nats.ErrDisconnected) {
			t.Fatalf("append across a reconnect: %v, want ErrUnavailable from the disconnect", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the append still waits %v after the reconnect began", time.Since(start))
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if _, err := persistence.OpenStore(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if seq := mustAppend(t, ctx, st, "g", 0, txs[0]); seq != 1 {
		t.Fatalf("append after the reconnect: seq %d, want 1", seq)
	}
}

// silentStore opens a store on js whose stream "silent" holds graph g's
// first transaction, then deletes the stream and subscribes to its
// subjects on srv's own connection, a subscriber that takes publishes and
// never answers. It returns the store, its config, g's chain and the
// subscription.
func silentStore(t *testing.T, ctx context.Context, srv *natstest.Server, js jetstream.JetStream) (*persistence.Store, persistence.StoreConfig, []*cairnv1.Transaction, *nats.Subscription) {
	t.Helper()
	cfg := persistence.DefaultStoreConfig()
	cfg.Stream, cfg.SubjectPrefix = "silent", "silent"
	st, err := persistence.OpenStore(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	txs, _ := mustBuildChain(t, "g")
	mustAppend(t, ctx, st, "g", 0, txs[0])
	if err := srv.JetStream().DeleteStream(ctx, cfg.Stream); err != nil {
		t.Fatal(err)
	}
	sub, err := srv.Conn().SubscribeSync(cfg.SubjectPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Conn().Flush(); err != nil { // the server knows the subscriber
		t.Fatal(err)
	}
	return st, cfg, txs, sub
}
