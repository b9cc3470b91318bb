package persistence

import (
	"context"
	"fmt"
)

// What cairn repair needs of the stream: a message as it is, the next of a
// graph, and the erasure of one that was never part of its chain.

// Raw returns the message stored at stream sequence seq as it is: its
// subject and bytes, not decoded (a reader looking at a message that does
// not decode).
//
// Errors: ErrNotFound; ErrUnavailable; ctx's error.
func (s *Store) Raw(ctx context.Context, seq uint64) (subject string, data []byte, err error) {
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	m, err := s.getMsg(ctx, seq, "")
	if err != nil {
		return "", nil, fmt.Errorf("get seq %d: %w", seq, translate(err))
	}
	return m.Subject, m.Data, nil
}

// NextAfter returns graph's first message in the stream with a sequence
// above seq, decoded; ErrNotFound when there is none.
//
// Errors: ErrNotFound; ErrMalformed (the message is no transaction: the
// error names its sequence); ErrInvalidGraph; ErrUnavailable; ctx's error.
func (s *Store) NextAfter(ctx context.Context, graph string, seq uint64) (Record, error) {
	if err := checkGraph(graph); err != nil {
		return Record{}, fmt.Errorf("next after %d: %w", seq, err)
	}
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	m, err := s.getMsg(ctx, seq+1, s.Subject(graph))
	if err != nil {
		return Record{}, fmt.Errorf("%s: next after seq %d: %w", graph, seq, translate(err))
	}
	return decodeRecord(m.Sequence, m.Time, m.Data)
}

// Drop erases the message at stream sequence seq, which must be on graph's
// subject. It is cairn repair's last step, for a message that its checks
// found was never part of graph's chain; nothing else deletes messages.
//
// Errors: ErrNotFound (no message at seq, or one of another graph);
// ErrInvalidGraph; ErrUnavailable; ctx's error.
func (s *Store) Drop(ctx context.Context, graph string, seq uint64) error {
	subject, _, err := s.Raw(ctx, seq)
	if err != nil {
		return fmt.Errorf("drop %s seq %d: %w", graph, seq, err)
	}
	if subject != s.Subject(graph) {
		return fmt.Errorf("drop %s seq %d: %w: the message is on subject %s", graph, seq, ErrNotFound, subject)
	}
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	if err := s.stream.SecureDeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("drop %s seq %d: %w", graph, seq, translate(err))
	}
	return nil
}
