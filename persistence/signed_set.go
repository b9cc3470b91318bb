package persistence

import (
	"crypto/sha256"
	"sync"
)

// SignedSet remembers the transactions this process signed, by a digest
// of their signing bytes and signature, so that a reader in the same
// process (the projections following what its grains append) knows one to
// be authentic without an ed25519 verification, the costliest check on the
// read path (about 74 µs a transaction against 3 µs for its CIDs and
// links). A hit is taken out of the set: each transaction is vouched for
// once, and any later reader (a replay, time travel, verify) verifies its
// signature in full. It holds at most its capacity; the oldest digests go
// first, their transactions then verified in full. Safe for concurrent
// use.
//
// This proves as much as the signature: the digest covers the bytes the
// signature is over (graph, tx id, head CID, command records) and the
// signature itself, and only a Signer of this process adds to it.
type SignedSet struct {
	mu       sync.Mutex
	m        map[[sha256.Size]byte]struct{}
	ring     [][sha256.Size]byte // in order of adding, up to capacity
	capacity int
	next     int // the oldest in a full ring
	hits     uint64
}

// NewSignedSet returns a set of at most capacity digests (at least 1).
// It takes memory as digests come, not up front: 65,536 digests are 4 MB,
// which on the reference VM cost 20-30 ms of page faults at the engine's
// start when allocated there.
func NewSignedSet(capacity int) *SignedSet {
	return &SignedSet{m: map[[sha256.Size]byte]struct{}{}, capacity: max(capacity, 1)}
}

// Hits counts the transactions the set vouched for.
func (s *SignedSet) Hits() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func signedDigest(msg, sig []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(msg)
	h.Write(sig)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

func (s *SignedSet) add(d [sha256.Size]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) < s.capacity {
		s.ring = append(s.ring, d)
	} else {
		delete(s.m, s.ring[s.next]) // the oldest, gone or not
		s.ring[s.next] = d
		s.next = (s.next + 1) % len(s.ring)
	}
	s.m[d] = struct{}{}
}

func (s *SignedSet) take(d [sha256.Size]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[d]; !ok {
		return false
	}
	delete(s.m, d)
	s.hits++
	return true
}

// Remembering returns a copy of s that adds every transaction it signs to
// set.
func (s *Signer) Remembering(set *SignedSet) *Signer {
	c := *s
	c.signed = set
	return &c
}

// Vouching makes k take a transaction that set holds (signed by this
// process, by a key k trusts) as authentic without verifying its
// signature. Call it before k is in use.
func (k *Keyring) Vouching(set *SignedSet) { k.signed = set }
