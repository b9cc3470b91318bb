package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Census is what the event-store stream holds now: its sequence range and
// how many messages each graph's subject holds. A reader that remembers
// what it folded compares it with a census to notice history removed
// behind its back (a purge, a deleted message, a deleted or recreated
// stream).
type Census struct {
	FirstSeq, LastSeq uint64
	Msgs              uint64
	// Graphs counts the messages of each graph's subject (graphs with none
	// are absent).
	Graphs map[string]uint64
}

// Census asks the server for the stream's state and its per-subject
// message counts (paged by the client for many subjects).
//
// Errors: ErrTruncated when the stream is gone (deleted); ErrUnavailable;
// ctx's error.
func (s *Store) Census(ctx context.Context) (Census, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	prefix := s.cfg.SubjectPrefix + "."
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return Census{}, fmt.Errorf("census: %w: the event stream %s is gone (deleted)", ErrTruncated, s.cfg.Stream)
		}
		return Census{}, fmt.Errorf("census: %w", translate(err))
	}
	c := Census{FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, Msgs: info.State.Msgs, Graphs: make(map[string]uint64, len(info.State.Subjects))}
	for subj, n := range info.State.Subjects {
		if g, ok := strings.CutPrefix(subj, prefix); ok {
			c.Graphs[g] = n
		}
	}
	return c, nil
}

// Raw returns the message stored at stream sequence seq as it is: its
// subject and bytes, not decoded (a reader looking at a message that does
// not decode).
//
// Errors: ErrNotFound; ErrUnavailable; ctx's error.
func (s *Store) Raw(ctx context.Context, seq uint64) (subject string, data []byte, err error) {
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	m, err := s.stream.GetMsg(ctx, seq)
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
	m, err := s.stream.GetMsg(ctx, seq+1, jetstream.WithGetMsgSubject(s.Subject(graph)))
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
