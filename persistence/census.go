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
	prefix := s.cfg.SubjectPrefix + "."
	info, err := s.info(ctx, "census", jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return Census{}, err
	}
	if info.Cluster != nil && info.Cluster.Leader == "" {
		// A replica answers when it sees no leader, with its own state,
		// which can lag behind what was acknowledged.
		return Census{}, fmt.Errorf("census: %w: the stream has no leader (an election is under way)", ErrUnavailable)
	}
	c := Census{FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, Msgs: info.State.Msgs, Graphs: make(map[string]uint64, len(info.State.Subjects))}
	for subj, n := range info.State.Subjects {
		if g, ok := strings.CutPrefix(subj, prefix); ok {
			c.Graphs[g] = n
		}
	}
	return c, nil
}

// StreamLastSeq returns the stream's last sequence (0 when empty): a
// follower that starts there misses nothing stored after. A replica may
// answer with a lagging state, which only makes the follower start earlier.
//
// Errors: ErrTruncated when the stream is gone; ErrUnavailable; ctx's
// error.
func (s *Store) StreamLastSeq(ctx context.Context) (uint64, error) {
	info, err := s.info(ctx, "stream end")
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// Leader returns the name of the NATS node that leads the stream, as the
// node this store's connection reaches sees it ("" for a single server).
//
// Errors: ErrUnavailable (with ErrNoLeader when the stream has none);
// ErrTruncated when the stream is gone; ctx's error.
func (s *Store) Leader(ctx context.Context) (string, error) {
	info, err := s.info(ctx, "stream leader")
	if err != nil {
		return "", err
	}
	if info.Cluster == nil {
		return "", nil
	}
	if info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream leader: %w: %w", ErrUnavailable, ErrNoLeader)
	}
	return info.Cluster.Leader, nil
}

// info asks the server for the stream's info, within OpTimeout; what
// begins its errors: ErrTruncated when the stream is gone (deleted),
// ErrUnavailable, ctx's error.
func (s *Store) info(ctx context.Context, what string, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	info, err := s.stream.Info(ctx, opts...)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%s: %w: the event stream %s is gone (deleted)", what, ErrTruncated, s.cfg.Stream)
		}
		return nil, fmt.Errorf("%s: %w", what, translate(err))
	}
	return info, nil
}
