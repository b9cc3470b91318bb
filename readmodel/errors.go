package readmodel

import (
	"errors"
	"fmt"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNotFound: the node is unknown, the graph was deleted, or no path
	// joins two nodes (ShortestPath).
	ErrNotFound = errors.New("readmodel: not found")
	// ErrInvalidArgument: a query argument is out of range (a limit outside
	// 1..MaxLimit, an unknown direction, a sequence that goes backwards).
	ErrInvalidArgument = errors.New("readmodel: invalid argument")
	// ErrBadCursor: a cursor is malformed, belongs to another kind of query,
	// or no longer fits the graph (it predates a compaction of the adjacency).
	ErrBadCursor = errors.New("readmodel: bad cursor")
	// ErrLimitExceeded: a traversal would pass one of its TraverseLimits
	// (frontier or result cap); it stops instead of walking on.
	ErrLimitExceeded = errors.New("readmodel: limit exceeded")
	// ErrInvalidEvent: an event does not fit the read model (which a valid
	// chain never produces); it comes wrapped in an *ApplyError.
	ErrInvalidEvent = errors.New("readmodel: invalid event")
	// ErrInvalidSnapshot: snapshot bytes are truncated, corrupt or of an
	// unknown format version (LoadSnapshot).
	ErrInvalidSnapshot = errors.New("readmodel: invalid snapshot")
)

// ApplyError says which event of which transaction could not be applied.
type ApplyError struct {
	Seq   uint64 // stream sequence of the transaction
	Index int    // position of the event in the transaction
	Kind  string // event kind, for example "EdgeAdded"
	Err   error  // wraps ErrInvalidEvent
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("apply seq %d event %d (%s): %v", e.Seq, e.Index, e.Kind, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEvent}, args...)...)
}
