package persistence

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Followed is one message of the stream as Follow delivers it.
type Followed struct {
	Record        // Tx is nil when Err is set, and until Decode after FollowRaw
	Graph  string // the graph named by the message's subject
	// Pending is how many messages the stream held after this one when it
	// was delivered: 0 means the follower has caught up for now.
	Pending uint64
	// Err wraps ErrMalformed when the message is no transaction; the
	// follower decides what that means for the graph.
	Err error
	// Data is the message as stored, set by FollowRaw until Decode decodes
	// it (nil after Follow and after Decode, and with Sealed).
	Data []byte
	// Sealed, when not nil, says that this store appended the message
	// with a Sealed (AppendWithin) and that the bytes read at Seq are the
	// ones it published: Tx is the transaction appended, not decoded
	// again, and Sealed holds its events as decided (CheckSealed).
	Sealed *Sealed
}

// Decode decodes a message FollowRaw delivered, setting Tx or Err as
// Follow does, and lets Data go. It does nothing to a message decoded
// already (or delivered by Follow).
func (f *Followed) Decode() {
	if f.Data == nil || f.Tx != nil || f.Err != nil {
		return
	}
	r, err := decodeRecord(f.Seq, f.Time, f.Data)
	f.Tx, f.Err, f.Data = r.Tx, err, nil
}

// Events returns how many events the transaction holds, without decoding
// a message FollowRaw delivered (it counts the events field's entries; a
// malformed message counts those before the damage).
func (f *Followed) Events() int {
	if f.Data == nil {
		return len(f.Tx.GetEvents())
	}
	return countEvents(f.Data)
}

// transactionEvents is cairnv1.Transaction's events field number, from
// the schema.
var transactionEvents = (&cairnv1.Transaction{}).ProtoReflect().Descriptor().Fields().ByName("events").Number()

// countEvents counts the events field's entries in a marshalled
// cairnv1.Transaction, stopping at the first field that does not parse.
func countEvents(b []byte) int {
	n := 0
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		if num == transactionEvents && typ == protowire.BytesType {
			n++
		}
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 {
			return n
		}
		b = b[l:]
	}
	return n
}

// Follow calls fn for every message of the stream from fromSeq on, in stream
// order, and keeps waiting for new ones until ctx ends or fn returns an
// error. It reads through a consumer that it makes again after a gap, a
// lost consumer or missed heartbeats (pullReader), from the sequence
// after the last delivered, so fn sees each sequence at most once and in
// order. It follows the stream
// only: transactions archived before fromSeq's turn came are not delivered
// (a follower that finds a graph starting past chain position 1 reads the
// archived prefix with Read, which reads across archive and stream).
//
// Errors: ctx's error when ctx ended, fn's error as is, ErrUnavailable when
// the consumer could not be created or the connection was lost.
func (s *Store) Follow(ctx context.Context, fromSeq uint64, fn func(Followed) error) error {
	return s.FollowRaw(ctx, fromSeq, func(f Followed) error {
		f.Decode()
		return fn(f)
	})
}

// FollowRaw is Follow without the decoding: fn gets each message's bytes
// in Data (Tx nil, Err nil) and decodes the ones it needs with Decode. A
// follower that skips most transactions (a cluster member's projections,
// which hold only its own graphs) saves their decoding so.
//
// Errors: as Follow's.
func (s *Store) FollowRaw(ctx context.Context, fromSeq uint64, fn func(Followed) error) error {
	return s.followRaw(ctx, fromSeq, true, fn)
}

// FollowStored is FollowRaw for a follower that has no use for Sealed:
// every message comes with its bytes in Data, and this store's own
// appends are left to the follower that reuses them. A store's appends are
// handed out once (the first follower to read one takes it), so a second
// follower on FollowRaw (the engine's linker beside its projections) would
// take some of them, and the projections would decode and check those
// again.
//
// Errors: as Follow's.
func (s *Store) FollowStored(ctx context.Context, fromSeq uint64, fn func(Followed) error) error {
	return s.followRaw(ctx, fromSeq, false, fn)
}

func (s *Store) followRaw(ctx context.Context, fromSeq uint64, sealed bool, fn func(Followed) error) error {
	prefix := s.cfg.SubjectPrefix + "."
	return s.iterateWatched(ctx, nil, fromSeq, followStall, func(m storedMsg) (bool, error) {
		f := Followed{Graph: strings.TrimPrefix(m.Subject, prefix), Pending: m.Pending, Data: m.Data}
		f.Seq, f.Time, f.Header = m.Seq, m.Time, m.Header
		var sd *Sealed
		if sealed {
			sd = s.own.take(m.Header.Get(jetstream.MsgIDHeader), m.Data)
		}
		if sd != nil {
			f.Tx, f.Sealed, f.Data = sd.tx, sd, nil
		} else if f.Data == nil {
			f.Data = []byte{} // an empty message decodes (to an empty transaction)
		}
		return false, fn(f)
	})
}

// followStall is how long Follow waits without a message while the stream
// holds more before it gives its consumer up (ErrUnavailable; the caller
// follows again from where it was).
const followStall = 10 * time.Second
