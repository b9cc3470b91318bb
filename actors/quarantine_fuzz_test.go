package actors

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// FuzzQuarantine feeds arbitrary bytes, as the message after a signed
// chain of two transactions, through what a projection shard does with a
// stored message (decode, the chain and signature check against the head,
// the read model's apply): it never panics, a message that passes links to
// the head and is signed by the trusted key, and every refusal is one that
// quarantines the graph (isDataLoss), never a bug's INTERNAL.
func FuzzQuarantine(f *testing.F) {
	seed, err := persistence.NewSigningKey()
	if err != nil {
		f.Fatal(err)
	}
	signer, err := persistence.NewSigner(seed)
	if err != nil {
		f.Fatal(err)
	}
	trust, err := persistence.NewKeyring(signer.KeyID())
	if err != nil {
		f.Fatal(err)
	}
	var head persistence.Head
	seal := func(txID string, evs ...*cairnv1.Event) *cairnv1.Transaction {
		recs, next, err := persistence.Seal("g", txID, 7, head, evs)
		if err != nil {
			f.Fatal(err)
		}
		tx := &cairnv1.Transaction{GraphId: "g", TxId: txID, TimestampUnixNano: 7, Events: recs,
			Commands: []*cairnv1.CommandRecord{{CommandId: txID, EventCount: uint32(len(evs))}}}
		if err := signer.SignTransaction(tx); err != nil {
			f.Fatal(err)
		}
		head = next
		return tx
	}
	node := func(id string) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id}}}
	}
	prefix := []*cairnv1.Transaction{
		seal("t1", &cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{}}}, node("a")),
		seal("t2", node("b")),
	}
	base := head
	good := seal("t3", node("c"), &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: "e", Source: "a", Target: "c"}}})
	head = base
	dup := seal("t3", node("a")) // chained and signed, but "a" exists
	for _, tx := range []*cairnv1.Transaction{good, dup} {
		data, err := proto.Marshal(tx)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("hello"))
	// prepared returns a read model with the prefix applied and its head.
	prepared := func(t testing.TB) (*readmodel.Graph, persistence.Head) {
		g, err := readmodel.New("g", readmodel.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		h := persistence.Head{}
		for i, tx := range prefix {
			d, err := checkTx(trust, "g", h, uint64(i+1), tx)
			if err == nil {
				err = safeApply(g, uint64(i+1), 0, d.events)
			}
			if err != nil {
				t.Fatalf("prefix transaction %d: %v", i+1, err)
			}
			h = d.head
		}
		return g, h
	}
	// The seeds do what they are for: the good one applies, the duplicate
	// is refused as inconsistent.
	g, h := prepared(f)
	if d, err := checkTx(trust, "g", h, 3, good); err != nil || safeApply(g, 3, 0, d.events) != nil {
		f.Fatalf("the good seed does not apply: %v", err)
	}
	g, h = prepared(f)
	if d, err := checkTx(trust, "g", h, 3, dup); err != nil || !errors.Is(safeApply(g, 3, 0, d.events), errInconsistent) {
		f.Fatalf("the duplicate seed is not refused as inconsistent: %v", err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, h := prepared(t)
		tx := &cairnv1.Transaction{}
		if err := proto.Unmarshal(data, tx); err != nil {
			return // the follower reports it as ErrMalformed: data loss
		}
		d, err := checkTx(trust, "g", h, 3, tx)
		if err == nil {
			if d.prev != h || tx.GetKeyId() != signer.KeyID() {
				t.Fatalf("passed a transaction linking to %+v (head %+v), signed by %q", d.prev, h, tx.GetKeyId())
			}
			err = safeApply(g, 3, 0, d.events)
		}
		if err != nil && !isDataLoss(err) {
			t.Fatalf("refusal %v is not data loss", err)
		}
		var ce *persistence.ChainError
		if err != nil && !errors.As(err, &ce) && !errors.Is(err, errInconsistent) {
			t.Fatalf("refusal %v is neither a chain error nor inconsistent events", err)
		}
	})
}
