package persistence

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error a Store method returns wraps one of them or a
// context error, so callers test with errors.Is.
var (
	// ErrConflict: the graph's subject moved past the expected sequence
	// (optimistic concurrency); reload and decide again.
	ErrConflict = errors.New("conflict: graph changed since it was read")
	// ErrUnavailable: NATS or the stream could not be reached or did not answer.
	ErrUnavailable = errors.New("event store unavailable")
	// ErrNotFound: no message at that sequence, or no such stream.
	ErrNotFound = errors.New("not found")
	// ErrExists: a stream to be restored exists already.
	ErrExists = errors.New("already exists")
	// ErrMalformed: stored bytes do not decode as a transaction or envelope.
	ErrMalformed = errors.New("malformed data")
	// ErrInvalidGraph: the graph id is not a single subject token.
	ErrInvalidGraph = errors.New("invalid graph id")
	// ErrChainBroken: a CID, a prev link or a chain position does not hold.
	ErrChainBroken = errors.New("chain broken")
	// ErrTooLarge: a transaction is larger than one message of the stream
	// holds (Store.MaxTransactionBytes); nothing was written. Sending it
	// again cannot succeed: split the work or raise the server's
	// max_payload. The error is a *TooLargeError.
	ErrTooLarge = errors.New("transaction too large")
	// ErrTruncated: the store no longer holds transactions it held: a
	// graph's last stream sequence is below one the reader already knows of
	// (a purge or a deletion behind the engine's back), or the stream
	// itself is gone or was recreated.
	ErrTruncated = errors.New("history truncated")
	// ErrNotClustered: a stream or bucket was asked for with more than one
	// replica from a NATS server that is not clustered. Retrying cannot
	// help: run a NATS cluster, or ask for one replica.
	ErrNotClustered = errors.New("replicas > 1 need a clustered NATS, and the server is a single node")
	// ErrNoLeader: the stream has no leader to take an append (none
	// answered its subject, or one was elected while the append waited
	// for its acknowledgement). It comes with ErrUnavailable: nothing
	// new is known to be stored, and the append may be sent again (same
	// transaction id) at once when Store.LeaderElected fires.
	ErrNoLeader = errors.New("the stream has no leader (one is being elected)")
)

// IsDataLoss reports whether err says that stored history fails its check:
// a broken chain (ErrChainBroken), bytes that are no transaction
// (ErrMalformed) or history that is gone (ErrTruncated). Such an error does
// not go away by retrying: the graph must be quarantined and repaired.
func IsDataLoss(err error) bool {
	return errors.Is(err, ErrChainBroken) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrTruncated)
}

// TooLargeError is Append's refusal of a transaction over the store's limit.
type TooLargeError struct {
	Graph string
	Size  int // the marshalled transaction's bytes
	Limit int // Store.MaxTransactionBytes when it was refused
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("append %s: %v: %d bytes, the limit is %d (the NATS server's max_payload less header room)", e.Graph, ErrTooLarge, e.Size, e.Limit)
}

// Unwrap returns ErrTooLarge.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// ChainError locates the first break in a graph's chain.
type ChainError struct {
	Graph    string
	Seq      uint64 // stream sequence of the transaction
	Position uint64 // chain position (n) of the event, 0 when not known
	Reason   string
	Want     string // what the chain requires, when it is a value
	Got      string // what was found
	Err      error  // underlying cause, ErrChainBroken when none
}

func (e *ChainError) Error() string {
	s := fmt.Sprintf("graph %s: chain broken at seq %d", e.Graph, e.Seq)
	if e.Position > 0 {
		s += fmt.Sprintf(" (event %d)", e.Position)
	}
	s += ": " + e.Reason
	if e.Want != "" || e.Got != "" {
		s += fmt.Sprintf(": want %s, got %s", e.Want, e.Got)
	}
	if e.Err != nil && !errors.Is(e.Err, ErrChainBroken) {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrChainBroken and the underlying cause, if any.
func (e *ChainError) Unwrap() []error {
	if e.Err == nil || errors.Is(e.Err, ErrChainBroken) {
		return []error{ErrChainBroken}
	}
	return []error{ErrChainBroken, e.Err}
}
