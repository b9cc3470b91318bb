package benchutil

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// RawStream is the stream the raw baseline publishes to, beside the event
// store, on subjects RawStream's prefix "bench.raw.>".
const RawStream = "bench-raw"

// RawOCC is the baseline for appends: plain JetStream publishes of a fixed
// payload on a set of subjects, each with Nats-Expected-Last-Subject-Sequence
// set to the subject's last sequence, as persistence.Store.Append does but
// with no engine around it. Publishes to one subject are serialised (one in
// flight per subject, as for a graph); different subjects go in parallel.
type RawOCC struct {
	js       jetstream.JetStream
	payload  []byte
	msgID    bool
	subjects []rawSubject
}

type rawSubject struct {
	mu   sync.Mutex
	name string
	last uint64
}

// NewRawOCC creates (or reuses) RawStream with the event store's storage
// settings and returns a baseline over n fresh subjects. With msgID each
// publish also carries a unique Nats-Msg-Id, as an append does.
func NewRawOCC(ctx context.Context, js jetstream.JetStream, n int, payload []byte, msgID bool) (*RawOCC, error) {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       RawStream,
		Subjects:   []string{"bench.raw.>"},
		Storage:    jetstream.FileStorage,
		Replicas:   1,
		Duplicates: 2 * time.Minute,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardNew,
	})
	if err != nil {
		return nil, fmt.Errorf("raw baseline stream: %w", err)
	}
	r := &RawOCC{js: js, payload: payload, msgID: msgID, subjects: make([]rawSubject, n)}
	run := nuid.Next() // fresh subjects: their last sequence is 0
	for i := range r.subjects {
		r.subjects[i].name = "bench.raw." + run + "." + strconv.Itoa(i)
	}
	return r, nil
}

// Publish publishes the payload once on subject i mod n, expecting the
// subject's last sequence, and waits for the acknowledgement.
func (r *RawOCC) Publish(ctx context.Context, i int) error {
	s := &r.subjects[i%len(r.subjects)]
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := &nats.Msg{Subject: s.name, Data: r.payload, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(s.last, 10))
	if r.msgID {
		msg.Header.Set(jetstream.MsgIDHeader, nuid.Next())
	}
	fut, err := r.js.PublishMsgAsync(msg)
	if err != nil {
		return fmt.Errorf("raw publish: %w", err)
	}
	select {
	case ack := <-fut.Ok():
		s.last = ack.Sequence
		return nil
	case err := <-fut.Err():
		return fmt.Errorf("raw publish: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("raw publish: %w", ctx.Err())
	}
}
