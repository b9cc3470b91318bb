package actors

import (
	"errors"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/persistence"
)

// The wire errors (aggregate.CommandError and its sentinels) live in the
// aggregate package, which clients import without the actor system; these
// build them for the actors' own refusals.

func invalid(field, format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, field, format, a...)
}

func notFound(field, format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, field, format, a...)
}

func failedPrecondition(field, format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, field, format, a...)
}

func unavailable(format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE, "", format, a...)
}

// errInconsistent: stored events that pass the chain check do not apply to
// the state folded before them (a second NodeAdded of a node, an edge from
// a node never added): the history was not written by a checking engine.
var errInconsistent = errors.New("stored events do not apply")

// isDataLoss reports whether err says that a graph's stored history fails
// its check (persistence.IsDataLoss, or events that do not apply): the
// graph is quarantined rather than retried.
func isDataLoss(err error) bool {
	return persistence.IsDataLoss(err) || errors.Is(err, errInconsistent)
}

// dataLoss is the answer for a quarantined graph: DATA_LOSS with what
// failed, which names the stream sequence.
func dataLoss(graph string, err error) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_DATA_LOSS, "graph_id",
		"graph %s is quarantined: its stored history fails its check: %v (nothing past it is folded or served; see cairn repair)", graph, err)
}

func exhausted(field, format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, field, format, a...)
}
