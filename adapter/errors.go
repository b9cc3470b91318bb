package adapter

import (
	"errors"
	"fmt"
)

// Reasons an event is dead-lettered, in its Cairn-Dead-Reason header.
const (
	// ReasonUndecodable: the bytes are not a DomainEvent in the format.
	ReasonUndecodable = "undecodable"
	// ReasonUnknownType: the event sets no type this version knows.
	ReasonUnknownType = "unknown_type"
	// ReasonOtherDomain: the event belongs to another adapter (a people
	// adapter got an organisation event). Such events are skipped, not
	// dead-lettered, unless Config.StrictDomain is set.
	ReasonOtherDomain = "other_domain"
	// ReasonInvalid: a field is missing or malformed.
	ReasonInvalid = "invalid"
	// ReasonMissingEntity: the event names a node the graph still lacked
	// after Config.MaxAttempts deliveries.
	ReasonMissingEntity = "missing_entity"
	// ReasonRefused: the engine refused the command for good (a type
	// rule, an invalid argument); the Cairn-Error-Code header has its code.
	ReasonRefused = "refused"
)

// ErrNoGraph is returned by Run when the graph does not exist and
// Config.CreateGraph is not set.
var ErrNoGraph = errors.New("graph does not exist")

// UnmappableError is an event the adapter cannot turn into a command.
type UnmappableError struct {
	Reason string // one of the Reason constants
	Err    error
}

func (e *UnmappableError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *UnmappableError) Unwrap() error { return e.Err }

func unmappable(reason, format string, a ...any) *UnmappableError {
	return &UnmappableError{Reason: reason, Err: fmt.Errorf(format, a...)}
}

// StreamRefusedError is the engine's refusal to create the adapter's
// stream (Config.AskEngine): its wire code ("PERMISSION_DENIED",
// "INVALID_ARGUMENT", "FAILED_PRECONDITION", "UNAVAILABLE") and why.
type StreamRefusedError struct {
	Stream, Code, Message string
}

func (e *StreamRefusedError) Error() string {
	return fmt.Sprintf("the engine refused to create stream %s: %s: %s", e.Stream, e.Code, e.Message)
}
