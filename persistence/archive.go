package persistence

import (
	"context"
	"errors"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/nats-io/nats.go/jetstream"
)

// STUB: the API is fixed; the bodies are being written.

// StoreOption is an optional behaviour of a Store.
type StoreOption func(*Store)

// WithObjects lets the store keep archives in obj (the snapshot bucket):
// Archive moves old transactions there, and Read, ReadScan, Verify, Get and
// CheckHead read across archive and stream.
func WithObjects(obj jetstream.ObjectStore) StoreOption {
	return func(s *Store) {}
}

// ArchiveInfo describes one archive object: a run of one graph's
// transactions moved out of the stream.
type ArchiveInfo struct {
	Graph          string
	FromSeq, ToSeq uint64 // stream sequences of its first and last transaction
	FromN, ToN     uint64 // chain positions of its first and last event
	Transactions   int
	Name           string // "archive/<graph>/<from seq, 20 digits>-<to seq, 20 digits>"
	Size, Stored   int64
}

// ArchiveProgress reports a running Archive.
type ArchiveProgress struct {
	Transactions int   // archived so far
	Objects      int   // archive objects written so far
	Bytes        int64 // payload bytes so far
}

// ArchiveResult says what Archive did.
type ArchiveResult struct {
	Graph        string
	Before       uint64 // the bound used: transactions with Seq < Before
	Transactions int
	Objects      []ArchiveInfo
	Purged       uint64 // messages removed from the stream
}

// Archive moves graph's transactions with a stream sequence below before
// into compressed archive objects and then removes them from the stream.
// It never removes the graph's last transaction. It is safe while the graph
// is being written to and resumable after a crash.
func (s *Store) Archive(ctx context.Context, graph string, before uint64, progress func(ArchiveProgress)) (ArchiveResult, error) {
	return ArchiveResult{}, errors.New("not implemented")
}

// Archives lists graph's archive objects in sequence order.
func (s *Store) Archives(ctx context.Context, graph string) ([]ArchiveInfo, error) {
	return nil, errors.New("not implemented")
}

// CheckHead reports whether the transaction at stream sequence seq belongs
// to graph and ends with the event head (position and CID): a snapshot that
// claims to be folded up to seq is trusted only then. It returns a
// *ChainError (ErrChainBroken) when it does not, ErrNotFound when seq is in
// neither stream nor archive.
func (s *Store) CheckHead(ctx context.Context, graph string, seq uint64, head Head) error {
	return errors.New("not implemented")
}

// SeqAtTime returns the highest stream sequence stored at or before t (0
// when none): the state "as of t" is every transaction up to it.
func (s *Store) SeqAtTime(ctx context.Context, graph string, t time.Time) (uint64, error) {
	return 0, errors.New("not implemented")
}

// FindEvent returns the stream sequence of the transaction holding graph's
// event c and the event's chain position. ErrNotFound when the graph has no
// such event.
func (s *Store) FindEvent(ctx context.Context, graph string, c cid.Cid) (seq, position uint64, err error) {
	return 0, 0, errors.New("not implemented")
}
