package persistence

import (
	"context"
	"fmt"
	"time"
)

// StreamStats is the event stream's state, as JetStream reports it.
type StreamStats struct {
	Bytes, Messages uint64
	FirstSeq        uint64
	LastSeq         uint64
	LastTime        time.Time // when the last message was stored
	Consumers       int
	// MaxBytes is the stream's size limit, -1 for none.
	MaxBytes int64
}

// StreamStats asks JetStream for the event stream's state (one request).
func (s *Store) StreamStats(ctx context.Context) (StreamStats, error) {
	info, err := s.info(ctx, "stream stats")
	if err != nil {
		return StreamStats{}, err
	}
	st := info.State
	return StreamStats{Bytes: st.Bytes, Messages: st.Msgs, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, LastTime: st.LastTime,
		Consumers: st.Consumers, MaxBytes: info.Config.MaxBytes}, nil
}

// StoredAt returns when the stream stored its first message at or after
// seq (a direct get of one message; its payload is not decoded).
func (s *Store) StoredAt(ctx context.Context, seq uint64) (time.Time, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	m, err := s.getMsg(ctx, seq, s.cfg.SubjectPrefix+".>")
	if err != nil {
		return time.Time{}, fmt.Errorf("stored at seq %d: %w", seq, translate(err))
	}
	return m.Time, nil
}

// Bytes returns the size of the snapshots' Object Store bucket (its
// stream's bytes: snapshots, archives, their metadata).
func (s *Snapshots) Bytes(ctx context.Context) (uint64, error) {
	st, err := s.obj.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("object store status: %w", translate(err))
	}
	return st.Size(), nil
}
