package persistence_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/persistence"
)

// TestFollowSealed: a transaction appended with a Sealed comes back to the
// store's follower as appended (the same Tx, Followed.Sealed set, nothing
// decoded); one appended without, or one read with its transaction id
// whose bytes are not those the append published (another writer's
// message, which the append then found as a duplicate on another graph),
// is decoded from what was read.
func TestFollowSealed(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	st := srv.Store()
	const graph = "g"
	txs, heads := mustBuildChain(t, graph)
	evs := chainEvents()
	sealed := make([]*persistence.Sealed, len(txs))
	for i := range txs {
		sealed[i] = &persistence.Sealed{Events: evs[i], Head: heads[i]}
		if i > 0 {
			sealed[i].Prev = heads[i-1]
		}
	}
	if seq, err := st.AppendWithin(ctx, time.Minute, graph, 0, txs[0], sealed[0]); err != nil || seq != 1 {
		t.Fatalf("append 1: seq %d, %v", seq, err)
	}
	if seq, err := st.AppendWithin(ctx, time.Minute, graph, 1, txs[1], nil); err != nil || seq != 2 {
		t.Fatalf("append 2: seq %d, %v", seq, err)
	}
	// Another writer stores bytes of its own under the third
	// transaction's id, of the same length (its timestamp is one more), on
	// another graph's subject.
	forged := proto.CloneOf(txs[2])
	forged.TimestampUnixNano++
	data, err := proto.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(st.Subject("g2"))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, txs[2].GetTxId())
	if _, err := srv.JetStream().PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendWithin(ctx, time.Minute, graph, 2, txs[2], sealed[2]); !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("append of a transaction id used on another graph: %v, want ErrConflict", err)
	}
	// A follower that has no use for Sealed gets the bytes, and takes
	// nothing: Follow after it still gets the Sealed.
	stored := followAll(t, func(fn func(persistence.Followed) error) error { return st.FollowStored(ctx, 1, fn) })
	if len(stored) != 3 || stored[0].Sealed != nil || stored[0].Tx != nil || len(stored[0].Data) == 0 {
		t.Fatalf("FollowStored of seq 1: %d messages, Sealed %p, Tx %v, %d bytes", len(stored), stored[0].Sealed, stored[0].Tx != nil, len(stored[0].Data))
	}
	got := followAll(t, func(fn func(persistence.Followed) error) error { return st.Follow(ctx, 1, fn) })
	if len(got) != 3 {
		t.Fatalf("followed %d messages, want 3", len(got))
	}
	if f := got[0]; f.Sealed != sealed[0] || f.Tx != txs[0] || f.Data != nil || f.Err != nil {
		t.Errorf("seq 1: Sealed %p (want %p), Tx appended %v, %d bytes, err %v", f.Sealed, sealed[0], f.Tx == txs[0], len(f.Data), f.Err)
	}
	if f := got[1]; f.Sealed != nil || f.Tx == txs[1] || !proto.Equal(f.Tx, txs[1]) {
		t.Errorf("seq 2 (no Sealed): Sealed %p, Tx the appended one %v, equal %v", f.Sealed, f.Tx == txs[1], proto.Equal(f.Tx, txs[1]))
	}
	if f := got[2]; f.Sealed != nil || !proto.Equal(f.Tx, forged) {
		t.Errorf("seq 3 (other bytes): Sealed %p, Tx the stored one %v", f.Sealed, proto.Equal(f.Tx, forged))
	}
	// Taken once: a second follower decodes.
	again := followAll(t, func(fn func(persistence.Followed) error) error { return st.FollowRaw(ctx, 1, fn) })
	if again[0].Sealed != nil || again[0].Data == nil {
		t.Errorf("second follow of seq 1: Sealed %p, %d bytes", again[0].Sealed, len(again[0].Data))
	}

	// CheckSealed still checks the graph and, given a keyring, the
	// signature.
	if evs, prev, head, err := persistence.CheckSealed(nil, graph, 1, txs[0], sealed[0]); err != nil || len(evs) != 2 || prev != sealed[0].Prev || !head.CID.Equals(heads[0].CID) {
		t.Errorf("CheckSealed: %d events, prev %v, head %v, %v", len(evs), prev, head, err)
	}
	var ce *persistence.ChainError
	if _, _, _, err := persistence.CheckSealed(nil, "other", 1, txs[0], sealed[0]); !errors.As(err, &ce) {
		t.Errorf("CheckSealed of another graph's transaction: %v, want a *ChainError", err)
	}
	signer := newTestSigner(t)
	trust := mustKeyring(t, signer.KeyID())
	if _, _, _, err := persistence.CheckSealed(trust, graph, 1, txs[0], sealed[0]); !errors.Is(err, persistence.ErrSignature) {
		t.Errorf("CheckSealed of an unsigned transaction under a keyring: %v, want ErrSignature", err)
	}
	signed := proto.CloneOf(txs[0])
	if err := signer.SignTransaction(signed); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := persistence.CheckSealed(trust, graph, 1, signed, sealed[0]); err != nil {
		t.Errorf("CheckSealed of a signed transaction: %v", err)
	}
}
