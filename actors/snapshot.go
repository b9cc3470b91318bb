package actors

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// SnapshotStore is what grains and projection shards need from the snapshot
// store.
type SnapshotStore interface {
	Put(ctx context.Context, info persistence.SnapshotInfo, data []byte) (persistence.SnapshotInfo, error)
	List(ctx context.Context, kind persistence.SnapshotKind, graph string) ([]persistence.SnapshotInfo, error)
	Get(ctx context.Context, info persistence.SnapshotInfo) ([]byte, error)
	Prune(ctx context.Context, kind persistence.SnapshotKind, graph string, keep int) (int, error)
	Delete(ctx context.Context, info persistence.SnapshotInfo) error
}

var _ SnapshotStore = (*persistence.Snapshots)(nil)

// AggregateSnapshotFormat is the format version of aggregate snapshots
// this package writes and reads (aggregate.Marshal). Snapshots of another
// format are passed over at activation, and the grain writes a new one once
// it has folded the history (see docs/migrations.md).
const AggregateSnapshotFormat = aggregate.SnapshotFormat

// ErrInvalidSnapshot: an aggregate snapshot does not hold together, is of an
// unknown format, or does not match the chain it claims to be folded from.
var ErrInvalidSnapshot = aggregate.ErrInvalidSnapshot

// History is what StateAt reads: the event store, across archive and stream.
type History interface {
	Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error)
	CheckHead(ctx context.Context, graph string, seq uint64, head persistence.Head) error
}

// headChecker verifies a snapshot's claim against the chain.
type headChecker interface {
	CheckHead(ctx context.Context, graph string, seq uint64, head persistence.Head) error
}

// restoreSnapshot loads one aggregate snapshot of graph and checks that it
// can be trusted: a known format, a payload that decodes to a consistent
// state of graph, and a head that is the chain's event at the snapshot's
// sequence. It returns the state and the idempotency window. A state that
// warm (nil: none) decoded ahead from a local copy of the same snapshot,
// signed by a key trust holds, is taken instead of fetching and decoding
// the payload (the head is checked the same).
func restoreSnapshot(ctx context.Context, snaps SnapshotStore, hc headChecker, graph string, info persistence.SnapshotInfo, warm *Warm, trust *persistence.Keyring) (*aggregate.State, []*cairnv1.CommandReply, error) {
	switch {
	case info.Kind != persistence.KindAggregate:
		return nil, nil, fmt.Errorf("%w: %s is a %s snapshot", ErrInvalidSnapshot, info.Name, info.Kind)
	case info.Graph != graph:
		return nil, nil, fmt.Errorf("%w: %s is a snapshot of graph %q, not %q", ErrInvalidSnapshot, info.Name, info.Graph, graph)
	case info.Format != AggregateSnapshotFormat:
		return nil, nil, fmt.Errorf("%w: %s has format version %d; this engine reads %d", ErrInvalidSnapshot, info.Name, info.Format, AggregateSnapshotFormat)
	case info.Seq == 0 || info.Position == 0 || !info.Head.Defined():
		return nil, nil, fmt.Errorf("%w: %s names no head (seq %d, position %d)", ErrInvalidSnapshot, info.Name, info.Seq, info.Position)
	}
	if err := hc.CheckHead(ctx, graph, info.Seq, persistence.Head{N: info.Position, CID: info.Head}); err != nil {
		return nil, nil, fmt.Errorf("snapshot %s is not on the chain: %w", info.Name, err)
	}
	if s, recent, ok := warm.TakeAggregate(ctx, info, trust); ok && s.Graph() == graph {
		return s, recent, nil
	}
	data, err := snaps.Get(ctx, info)
	if err != nil {
		return nil, nil, fmt.Errorf("read snapshot %s: %w", info.Name, err)
	}
	s, recent, err := aggregate.Unmarshal(data)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", info.Name, err)
	}
	if s.Graph() != graph {
		return nil, nil, fmt.Errorf("%w: %s holds graph %q, not %q", ErrInvalidSnapshot, info.Name, s.Graph(), graph)
	}
	return s, recent, nil
}

// CheckAggregateSnapshot says why the grain would not trust the aggregate
// snapshot info of graph, nil when it would: the same checks activation
// makes (kind, format, head on the chain, payload that decodes to graph),
// and the walk of every incidence list that activation leaves out
// (aggregate.State.Verify).
func CheckAggregateSnapshot(ctx context.Context, snaps SnapshotStore, store History, graph string, info persistence.SnapshotInfo) error {
	s, _, err := restoreSnapshot(ctx, snaps, store, graph, info, nil, nil)
	if err != nil {
		return err
	}
	if err := s.Verify(); err != nil {
		return fmt.Errorf("snapshot %s: %w", info.Name, err)
	}
	return nil
}

// errStopRead ends a read early.
var errStopRead = errors.New("stop reading")

// StateAt folds graph's aggregate state as of stream sequence seq (0: the
// head) from the newest trusted aggregate snapshot at or before seq (snaps
// may be nil) plus the transactions after it. It returns the state, the
// chain head it reflects and the sequence of the last transaction folded.
// Snapshots that cannot be trusted are skipped; the chain of the replayed
// transactions is checked.
func StateAt(ctx context.Context, store History, snaps SnapshotStore, graph string, seq uint64) (*aggregate.State, persistence.Head, uint64, error) {
	s := aggregate.NewState(graph)
	var head persistence.Head
	var last uint64
	if snaps != nil {
		infos, err := snaps.List(ctx, persistence.KindAggregate, graph)
		if err != nil && ctx.Err() != nil {
			return nil, persistence.Head{}, 0, fmt.Errorf("state of %s at seq %d: %w", graph, seq, err)
		}
		for _, info := range infos { // a listing error: no snapshots, replay it all
			if seq != 0 && info.Seq > seq {
				continue
			}
			st, _, err := restoreSnapshot(ctx, snaps, store, graph, info, nil, nil)
			if err != nil {
				if ctx.Err() != nil {
					return nil, persistence.Head{}, 0, fmt.Errorf("state of %s at seq %d: %w", graph, seq, err)
				}
				continue
			}
			s, head, last = st, persistence.Head{N: info.Position, CID: info.Head}, info.Seq
			break
		}
	}
	var opts []persistence.ChainOption
	if t, ok := store.(interface{ Trust() *persistence.Keyring }); ok {
		opts = append(opts, persistence.WithTrust(t.Trust())) // the store's keyring (persistence.WithSigning)
	}
	chain := persistence.NewChainAt(graph, head, opts...)
	_, err := store.Read(ctx, graph, last+1, func(r persistence.Record) error {
		if seq != 0 && r.Seq > seq {
			return errStopRead
		}
		evs, err := chain.Check(r.Seq, r.Tx)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := aggregate.Apply(s, ev.Event); err != nil {
				return fmt.Errorf("seq %d position %d: %w", r.Seq, ev.Envelope.N, err)
			}
		}
		last = r.Seq
		return nil
	})
	if err != nil && !errors.Is(err, errStopRead) {
		return nil, persistence.Head{}, 0, fmt.Errorf("state of %s at seq %d: %w", graph, seq, err)
	}
	return s, chain.Head(), last, nil
}
