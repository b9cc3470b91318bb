package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/persistence"
)

// followAll runs follow (from seq 1) until the stream's end.
func followAll(t *testing.T, follow func(func(persistence.Followed) error) error) []persistence.Followed {
	t.Helper()
	var got []persistence.Followed
	errEnd := errors.New("end")
	err := follow(func(f persistence.Followed) error {
		got = append(got, f)
		if f.Pending == 0 {
			return errEnd
		}
		return nil
	})
	if !errors.Is(err, errEnd) {
		t.Fatalf("follow: %v", err)
	}
	return got
}

// TestFollowRaw: FollowRaw delivers each message undecoded, counts its
// events without decoding it, and once decoded it is what Follow delivers.
func TestFollowRaw(t *testing.T) {
	ctx := testCtx(t)
	st := natstest.Start(t).Store()
	interleaved(t, ctx, st)
	want := followAll(t, func(fn func(persistence.Followed) error) error { return st.Follow(ctx, 1, fn) })
	got := followAll(t, func(fn func(persistence.Followed) error) error { return st.FollowRaw(ctx, 1, fn) })
	if len(got) != len(want) || len(got) != 6 {
		t.Fatalf("FollowRaw delivered %d messages, Follow %d, want 6", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Tx != nil || g.Data == nil || w.Data != nil {
			t.Fatalf("seq %d: raw Tx %v Data %d bytes, decoded Data %d bytes", g.Seq, g.Tx != nil, len(g.Data), len(w.Data))
		}
		if n := g.Events(); n != len(w.Tx.GetEvents()) || n != w.Events() {
			t.Fatalf("seq %d: %d events undecoded, want %d", g.Seq, n, len(w.Tx.GetEvents()))
		}
		g.Decode()
		if g.Seq != w.Seq || g.Graph != w.Graph || g.Pending != w.Pending || g.Err != nil || g.Data != nil || !proto.Equal(g.Tx, w.Tx) {
			t.Fatalf("seq %d decoded: %+v, want %+v", g.Seq, g, w)
		}
	}
}

// FuzzFollowedEvents: counting a message's events never fails, and agrees
// with decoding it whenever it decodes; a message that does not decode
// wraps ErrMalformed.
func FuzzFollowedEvents(f *testing.F) {
	for _, seed := range [][]byte{nil, {0x2a, 0x00}, {0x2a, 0x02, 0x0a, 0x00, 0x2a, 0x00}, {0x2a, 0x05}, {0x28, 0x01}, {0xff}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := persistence.Followed{Data: append([]byte{}, data...)}
		n := m.Events()
		m.Decode()
		switch {
		case m.Err != nil:
			if !errors.Is(m.Err, persistence.ErrMalformed) || m.Tx != nil {
				t.Fatalf("%x: %v (Tx %v), want ErrMalformed and no Tx", data, m.Err, m.Tx)
			}
		case n != len(m.Tx.GetEvents()):
			t.Fatalf("%x: %d events counted, %d decoded", data, n, len(m.Tx.GetEvents()))
		}
	})
}

// TestFollowConsumerLost: a follower whose consumer is deleted under it
// makes a new one from the sequence after the last it delivered, so every
// transaction still comes once and in order.
func TestFollowConsumerLost(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	st := srv.Store()
	stream, err := srv.JetStream().Stream(ctx, persistence.DefaultStoreConfig().Stream)
	if err != nil {
		t.Fatal(err)
	}
	f := followInOrder(t, ctx, st, "lost")
	f.append(3)
	f.expect()
	names := stream.ConsumerNames(ctx)
	deleted := 0
	for name := range names.Name() {
		if err := stream.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if deleted == 0 {
		t.Fatal("no consumer to delete")
	}
	f.append(3)
	f.expect()
	f.append(2)
	f.expect()
	f.end()
}

// ordered follows st's stream with FollowRaw from seq 1, for tests that
// append transactions of fresh graphs and check that each arrives once,
// in order.
type ordered struct {
	t      *testing.T
	ctx    context.Context
	st     *persistence.Store
	prefix string
	n      int
	next   uint64
	seqs   chan uint64
	done   chan error
	cancel context.CancelFunc
}

func followInOrder(t *testing.T, ctx context.Context, st *persistence.Store, prefix string) *ordered {
	fctx, cancel := context.WithCancel(ctx)
	f := &ordered{t: t, ctx: ctx, st: st, prefix: prefix, next: 1, seqs: make(chan uint64, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		f.done <- st.FollowRaw(fctx, 1, func(m persistence.Followed) error {
			f.seqs <- m.Seq
			return nil
		})
	}()
	return f
}

// append appends the first transaction of k fresh graphs.
func (f *ordered) append(k int) {
	f.t.Helper()
	for range k {
		f.n++
		g := fmt.Sprint(f.prefix, f.n)
		mustAppend(f.t, f.ctx, f.st, g, 0, tx(g, fmt.Sprint("t", f.n), persistence.Head{}, 1))
	}
}

// expect waits for every sequence appended, in order.
func (f *ordered) expect() {
	f.t.Helper()
	for f.next <= uint64(f.n) {
		select {
		case seq := <-f.seqs:
			if seq != f.next {
				f.t.Fatalf("delivered seq %d, want %d", seq, f.next)
			}
			f.next++
		case err := <-f.done:
			f.t.Fatalf("follow ended: %v", err)
		case <-f.ctx.Done():
			f.t.Fatalf("seq %d not delivered", f.next)
		}
	}
}

// end checks that nothing is delivered again, then stops the follow.
func (f *ordered) end() {
	f.t.Helper()
	select {
	case seq := <-f.seqs:
		f.t.Fatalf("seq %d delivered again", seq)
	case <-time.After(200 * time.Millisecond):
	}
	f.cancel()
	if err := <-f.done; !errors.Is(err, context.Canceled) {
		f.t.Fatalf("follow ended with %v, want context.Canceled", err)
	}
}

// TestFollowAcrossReconnect: when the connection reconnects, a follower
// makes a new consumer at once (its pull requests and the messages in
// flight are gone, and its consumer may have been on a node that died),
// not after two missed heartbeats, and goes on delivering every sequence
// once and in order.
func TestFollowAcrossReconnect(t *testing.T) {
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
	st, err := persistence.OpenStore(ctx, js, persistence.DefaultStoreConfig())
	if err != nil {
		t.Fatal(err)
	}
	resets := make(chan error, 16)
	defer persistence.SetPullResetHook(func(why error) {
		select {
		case resets <- why:
		default:
		}
	})()
	f := followInOrder(t, ctx, st, "re")
	f.append(3)
	f.expect()
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	// The first reset after the reconnect must be for it: a heartbeat's or
	// a gap's would mean the reader waited for the server to tell it.
	select {
	case why := <-resets:
		if !errors.Is(why, persistence.ErrPullReconnected) {
			t.Fatalf("the reader's first reset after a reconnect was for %v, want %v", why, persistence.ErrPullReconnected)
		}
	case <-ctx.Done():
		t.Fatal("the reader made no new consumer after the reconnect")
	}
	f.append(3)
	f.expect()
	f.end()
}
