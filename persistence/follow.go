package persistence

import (
	"context"
	"strings"
	"time"
)

// Followed is one message of the stream as Follow delivers it.
type Followed struct {
	Record        // Tx is nil when Err is set
	Graph  string // the graph named by the message's subject
	// Pending is how many messages the stream held after this one when it
	// was delivered: 0 means the follower has caught up for now.
	Pending uint64
	// Err wraps ErrMalformed when the message is no transaction; the
	// follower decides what that means for the graph.
	Err error
}

// Follow calls fn for every message of the stream from fromSeq on, in stream
// order, and keeps waiting for new ones until ctx ends or fn returns an
// error. It uses an ordered consumer, which re-creates itself after a gap,
// so fn sees each sequence at most once and in order. It follows the stream
// only: transactions archived before fromSeq's turn came are not delivered
// (a follower that finds a graph starting past chain position 1 reads the
// archived prefix with Read, which reads across archive and stream).
//
// Errors: ctx's error when ctx ended, fn's error as is, ErrUnavailable when
// the consumer could not be created or the connection was lost.
func (s *Store) Follow(ctx context.Context, fromSeq uint64, fn func(Followed) error) error {
	prefix := s.cfg.SubjectPrefix + "."
	return s.iterateWatched(ctx, nil, fromSeq, followStall, func(m storedMsg) (bool, error) {
		f := Followed{Graph: strings.TrimPrefix(m.Subject, prefix), Pending: m.Pending}
		f.Record, f.Err = decodeRecord(m.Seq, m.Time, m.Data)
		f.Seq, f.Time, f.Header = m.Seq, m.Time, m.Header
		return false, fn(f)
	})
}

// followStall is how long Follow waits without a message while the stream
// holds more before it gives its consumer up (ErrUnavailable; the caller
// follows again from where it was).
const followStall = 10 * time.Second
