package persistence

import (
	"hash/maphash"
	"sync/atomic"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Sealed is what the writer of a transaction knows of it once Seal made
// it: its events as decided, before encoding, and the chain heads before
// and after them. Given to AppendWithin, it comes back to the store's own
// followers (Followed.Sealed) with the transaction appended, when the
// message they read with its transaction id holds exactly the bytes that
// the append published: they need not decode the transaction or its
// events again (CheckSealed).
//
// The writer must not change Events, nor the transaction, once appended.
type Sealed struct {
	Events []*cairnv1.Event
	// Prev is the head the first event links to, Head the last event's.
	Prev, Head Head

	// Set by the append that publishes it, before its followers can see
	// it.
	txID string
	sum  uint64 // maphash of the published bytes, under ownAppends.seed
	size int
	tx   *cairnv1.Transaction
}

// Bytes is the size of the transaction as published, once appended.
func (s *Sealed) Bytes() int { return s.size }

// ownSlots is how many appends a store remembers for its followers, by
// transaction id (direct-mapped: an append takes the slot of its id's
// hash modulo ownSlots, put there before it is published, and its
// follower takes it out when it reads the message). A slot that another
// append took over, or a follower that read the message before the slot
// was filled, decodes what it reads, as it does another writer's
// transactions.
const ownSlots = 16 << 10

// ownMaxBytes bounds the size of a transaction a store remembers. Slots
// are emptied when their transactions are read back, or their appends
// refused, so they hold little; were none read back, at most ownSlots ×
// ownMaxBytes (128 MiB) of transactions and their events would be held.
// (With 1,000 appends in flight, about 6 % of them find their slot taken
// over by another before their follower reads them.)
const ownMaxBytes = 8 << 10

// ownAppends remembers a store's appends for its followers.
type ownAppends struct {
	seed  maphash.Seed
	slots [ownSlots]atomic.Pointer[Sealed]
}

func newOwnAppends() *ownAppends { return &ownAppends{seed: maphash.MakeSeed()} }

// put remembers tx, about to be published as data with transaction id
// (Nats-Msg-Id) txID.
func (o *ownAppends) put(txID string, data []byte, tx *cairnv1.Transaction, s *Sealed) {
	if s == nil || txID == "" || len(data) > ownMaxBytes {
		return
	}
	if s.txID != txID {
		// Not on a retry of the append: a follower may be reading s.
		s.txID, s.sum, s.size, s.tx = txID, maphash.Bytes(o.seed, data), len(data), tx
	}
	o.slots[maphash.String(o.seed, txID)%ownSlots].Store(s)
}

// drop forgets what put remembered of s, an append that was refused.
func (o *ownAppends) drop(s *Sealed) {
	if s == nil || s.txID == "" {
		return
	}
	o.slots[maphash.String(o.seed, s.txID)%ownSlots].CompareAndSwap(s, nil)
}

// take returns, and forgets, what put remembered of transaction txID
// when data, the message read back, is the one published: nil when
// nothing is remembered of txID or the bytes differ.
func (o *ownAppends) take(txID string, data []byte) *Sealed {
	if txID == "" {
		return nil
	}
	slot := &o.slots[maphash.String(o.seed, txID)%ownSlots]
	s := slot.Load()
	if s == nil || s.txID != txID {
		return nil
	}
	slot.CompareAndSwap(s, nil)
	if s.size != len(data) || s.sum != maphash.Bytes(o.seed, data) {
		return nil
	}
	return s
}

// CheckSealed is CheckStretchTrusting for a transaction that its follower
// got with Followed.Sealed: the bytes stored at seq are those that this
// store's append of tx published, and s holds tx's events as its writer
// decided and sealed them, so they are not decoded again. It checks that
// the transaction is graph's and, given trust, its signature, as
// CheckStretchTrusting does, and returns s's events and heads.
//
// Errors: a *ChainError as CheckStretchTrusting's.
func CheckSealed(trust *Keyring, graph string, seq uint64, tx *cairnv1.Transaction, s *Sealed) (events []*cairnv1.Event, prev, head Head, err error) {
	if tx.GetGraphId() != graph {
		return nil, Head{}, Head{}, &ChainError{Graph: graph, Seq: seq, Reason: "transaction graph id", Want: graph, Got: tx.GetGraphId()}
	}
	if trust != nil {
		if reason := trust.checkTransaction(seq, tx); reason != "" {
			return nil, Head{}, Head{}, &ChainError{Graph: graph, Seq: seq, Position: s.Head.N, Reason: reason, Err: ErrSignature}
		}
	}
	return s.Events, s.Prev, s.Head, nil
}
