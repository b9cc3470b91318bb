package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// GraphTx is one checked transaction of a graph as FollowGraph delivers it.
type GraphTx struct {
	Record
	Events []DecodedEvent // decoded and checked
	Head   Head           // the chain's head after it: its last event
	// Pending is 0 when this is the graph's last transaction the follower
	// knows of (caught up for now); otherwise at most how many of the
	// graph's transactions come after it (exactly, once following live).
	Pending uint64
}

// FollowGraph calls fn for each of graph's transactions with a stream
// sequence of at least fromSeq, in order, then keeps following the graph
// live until ctx ends or fn returns an error. It reads across archive and
// stream first (Read), then follows the graph's subject with an ordered
// consumer; a consumer that is lost or stalls is made again from where it
// was, after a Read of what it may have missed.
//
// Every transaction is checked (Chain, with the store's trust from
// WithSigning) before fn sees it, against after, the head of the graph's
// chain just before fromSeq (Head{} with fromSeq 1 to start from the
// beginning; otherwise a head the caller verified, for example with
// CheckHead). So each GraphTx is tied to a verified sequence and head CID,
// and a gap or a forged transaction stops the follow: nothing is
// delivered past it.
//
// Errors: a *ChainError (ErrChainBroken, ErrSignature) naming the
// transaction that failed its check; ErrInvalidGraph; ErrMalformed;
// fn's error as is; ctx's error when ctx ended. A lost connection is
// retried, not returned.
func (s *Store) FollowGraph(ctx context.Context, graph string, after Head, fromSeq uint64, fn func(GraphTx) error) error {
	if err := checkGraph(graph); err != nil {
		return err
	}
	chain := NewChainAt(graph, after, WithTrust(s.trust))
	next := max(fromSeq, 1)
	deliver := func(rec Record, pending uint64) error {
		evs, err := chain.Check(rec.Seq, rec.Tx)
		if err != nil {
			return err
		}
		next = rec.Seq + 1
		return fn(GraphTx{Record: rec, Events: evs, Head: chain.Head(), Pending: pending})
	}
	subject := []string{s.Subject(graph)}
	for wait := 100 * time.Millisecond; ; {
		// What the graph holds now, across archive and stream.
		known, err := s.LastSeq(ctx, graph)
		var last uint64
		if err == nil {
			last, err = s.Read(ctx, graph, next, func(rec Record) error {
				return deliver(rec, max(known, rec.Seq)-rec.Seq)
			})
		}
		if err == nil {
			// Then live, from after the last one read.
			if last >= next {
				next = last + 1
			}
			err = s.iterateWatched(ctx, subject, next, followStall, func(m storedMsg) (bool, error) {
				rec, err := decodeRecord(m.Seq, m.Time, m.Data)
				if err != nil {
					return false, fmt.Errorf("follow %s: seq %d: %w", graph, m.Seq, err)
				}
				return false, deliver(rec, m.Pending)
			})
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, ErrUnavailable):
			return err
		}
		// The connection or the consumer was lost: read on from next.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
