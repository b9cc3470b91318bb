package persistence

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
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
// so fn sees each sequence at most once and in order.
//
// Errors: ctx's error when ctx ended, fn's error as is, ErrUnavailable when
// the consumer could not be created or the connection was lost.
func (s *Store) Follow(ctx context.Context, fromSeq uint64, fn func(Followed) error) error {
	if fromSeq == 0 {
		fromSeq = 1
	}
	cctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	cons, err := s.stream.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   fromSeq,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("follow from %d: %w", fromSeq, translate(err))
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("follow from %d: %w", fromSeq, translate(err))
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	prefix := s.cfg.SubjectPrefix + "."
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("follow: %w", translate(err))
		}
		md, err := m.Metadata()
		if err != nil {
			// Not a JetStream message: the consumer is broken, not a graph.
			return fmt.Errorf("follow: %w: %v", ErrMalformed, err)
		}
		f := Followed{Graph: strings.TrimPrefix(m.Subject(), prefix), Pending: md.NumPending}
		f.Record, f.Err = decodeRecord(md.Sequence.Stream, md.Timestamp, m.Data())
		f.Seq, f.Time = md.Sequence.Stream, md.Timestamp
		if err := fn(f); err != nil {
			return err
		}
	}
}
