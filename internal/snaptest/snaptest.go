// Package snaptest writes snapshots for tests the way the engine would,
// from a graph's stored history.
package snaptest

import (
	"context"
	"errors"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

var errPast = errors.New("past the snapshot's seq")

// PutReadModel folds graph's transactions up to stream sequence seq from
// store, chain-checked, into a read model and stores it in snaps as a
// read-model snapshot at the last of them (as a projection snapshot round
// would), returning what was stored.
func PutReadModel(tb testing.TB, store *persistence.Store, snaps *persistence.Snapshots, graph string, seq uint64) persistence.SnapshotInfo {
	tb.Helper()
	ctx := context.Background()
	g, err := readmodel.New(graph, readmodel.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	chain := persistence.NewChain(graph)
	var last uint64
	_, err = store.Read(ctx, graph, 1, func(r persistence.Record) error {
		if r.Seq > seq {
			return errPast
		}
		evs, err := chain.Check(r.Seq, r.Tx)
		if err != nil {
			return err
		}
		batch := make([]*cairnv1.Event, len(evs))
		for i, ev := range evs {
			batch[i] = ev.Event
		}
		last = r.Seq
		return g.ApplyTx(r.Seq, batch)
	})
	if err != nil && !errors.Is(err, errPast) {
		tb.Fatal(err)
	}
	head := chain.Head()
	info, err := snaps.Put(ctx, persistence.SnapshotInfo{Kind: persistence.KindReadModel, Graph: graph, Seq: last,
		Position: head.N, Head: head.CID, Format: readmodel.SnapshotFormat}, g.AppendSnapshot(nil))
	if err != nil {
		tb.Fatalf("put snapshot: %v", err)
	}
	return info
}
