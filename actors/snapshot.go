package actors

import (
	"context"
	"errors"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// STUB: the API is fixed; the bodies are being written.

// SnapshotStore is what grains and projection shards need from the snapshot
// store.
type SnapshotStore interface {
	Put(ctx context.Context, info persistence.SnapshotInfo, data []byte) (persistence.SnapshotInfo, error)
	List(ctx context.Context, kind persistence.SnapshotKind, graph string) ([]persistence.SnapshotInfo, error)
	Get(ctx context.Context, info persistence.SnapshotInfo) ([]byte, error)
	Prune(ctx context.Context, kind persistence.SnapshotKind, graph string, keep int) (int, error)
}

var _ SnapshotStore = (*persistence.Snapshots)(nil)

// AggregateSnapshotFormat is the format version of aggregate snapshots
// (cairn.v1.GraphSnapshot) this package writes and reads.
const AggregateSnapshotFormat = 1

// EncodeState returns s as a GraphSnapshot, with recent (the idempotency
// window, oldest first).
func EncodeState(s *State, recent []*cairnv1.CommandReply) *cairnv1.GraphSnapshot {
	return nil
}

// DecodeState rebuilds a State (and the idempotency window, oldest first)
// from a GraphSnapshot. A snapshot that does not hold together (an edge
// whose endpoint is missing, a duplicate id) is an error.
func DecodeState(snap *cairnv1.GraphSnapshot) (*State, []*cairnv1.CommandReply, error) {
	return nil, nil, errors.New("not implemented")
}

// History is what StateAt reads: the event store, across archive and stream.
type History interface {
	Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error)
	CheckHead(ctx context.Context, graph string, seq uint64, head persistence.Head) error
}

// StateAt folds graph's aggregate state as of stream sequence seq (0: the
// head) from the newest trusted aggregate snapshot at or before seq (snaps
// may be nil) plus the transactions after it. It returns the state, the
// chain head it reflects and the sequence of the last transaction folded.
func StateAt(ctx context.Context, store History, snaps SnapshotStore, graph string, seq uint64) (*State, persistence.Head, uint64, error) {
	return nil, persistence.Head{}, 0, errors.New("not implemented")
}
