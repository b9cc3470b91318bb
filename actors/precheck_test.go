package actors

import (
	"errors"
	"testing"

	"github.com/cairn-graph/cairn/internal/graphgen"
	"github.com/cairn-graph/cairn/internal/workers"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"google.golang.org/protobuf/proto"
)

// noPool never runs what it is handed: the shard then runs the check.
type noPool struct{}

func (noPool) Go(func()) {}

// TestPrecheckAsCheckTx: a transaction's precheck followed by the link to
// the head gives what checkTx gives, events and errors alike, whether a
// worker ran the check first or the shard runs it itself; a tampered
// transaction and one out of place are refused as checkTx refuses them.
func TestPrecheckAsCheckTx(t *testing.T) {
	pool := workers.New(workerIdle)
	defer pool.Close(t.Context())
	chain := graphgen.NewChain("g")
	var txs []*cairnv1.Transaction
	for i := range 3 {
		tx, err := chain.Seal([]*cairnv1.Event{{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: "n" + string(rune('a'+i))}}}}, int64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	tampered := proto.Clone(txs[1]).(*cairnv1.Transaction)
	tampered.Events[0].DagCbor = append([]byte(nil), tampered.Events[0].DagCbor...)
	tampered.Events[0].DagCbor[len(tampered.Events[0].DagCbor)-1] ^= 1

	heads := []persistence.Head{{}}
	for _, tx := range txs {
		d, err := checkTx(nil, "g", heads[len(heads)-1], uint64(len(heads)), tx)
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, d.head)
	}
	for _, tc := range []struct {
		name string
		tx   *cairnv1.Transaction
		head persistence.Head // what the shard's graph ends at
		ok   bool
	}{
		{"first", txs[0], heads[0], true},
		{"next", txs[1], heads[1], true},
		{"tampered", tampered, heads[1], false},
		{"out of place", txs[2], heads[1], false},
	} {
		for _, p := range []struct {
			name string
			pool interface{ Go(func()) }
		}{{"worker", pool}, {"shard", noPool{}}} {
			t.Run(tc.name+"/"+p.name, func(t *testing.T) {
				f := persistence.Followed{Graph: "g", Record: persistence.Record{Seq: 9, Tx: tc.tx}}
				want, wantErr := checkTx(nil, "g", tc.head, f.Seq, f.Tx)
				pre := newPrecheck(p.pool, nil, f)
				got, err := pre.result()
				if err == nil {
					err = got.linksTo("g", f.Seq, tc.head)
				}
				var wantChain, gotChain *persistence.ChainError
				if (err == nil) != tc.ok || (wantErr == nil) != tc.ok ||
					errors.As(err, &gotChain) != errors.As(wantErr, &wantChain) {
					t.Fatalf("precheck: %v; checkTx: %v; want ok %v", err, wantErr, tc.ok)
				}
				if err != nil {
					if err.Error() != wantErr.Error() {
						t.Fatalf("precheck: %v; checkTx: %v", err, wantErr)
					}
					return
				}
				if got.head != want.head || got.prev != want.prev || len(got.events) != len(want.events) ||
					!proto.Equal(got.events[0], want.events[0]) {
					t.Fatalf("precheck gave head %v prev %v, checkTx head %v prev %v", got.head, got.prev, want.head, want.prev)
				}
			})
		}
	}
	if newPrecheck(pool, nil, persistence.Followed{Graph: "g", Record: persistence.Record{Seq: 1}, Data: []byte{1}}) != nil {
		t.Error("a delivery left undecoded got a precheck")
	}
}
