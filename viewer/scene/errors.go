package scene

import (
	"errors"
	"fmt"
)

// ErrInvalidEvent: an event does not fit the scene (a node added twice, an
// edge between nodes that are not there). A verified history never holds
// one; a scene that returns it is in an unspecified state and must be Reset
// (or rebuilt) rather than folded on.
var ErrInvalidEvent = errors.New("event does not fit the scene")

// ApplyError names the event that did not fit; it wraps ErrInvalidEvent.
type ApplyError struct {
	Graph  string
	Seq    uint64 // stream sequence of its transaction
	Index  int    // its index in the transaction
	Reason string
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("scene %s: seq %d event %d: %s: %v", e.Graph, e.Seq, e.Index, e.Reason, ErrInvalidEvent)
}

// Unwrap returns ErrInvalidEvent.
func (e *ApplyError) Unwrap() error { return ErrInvalidEvent }
