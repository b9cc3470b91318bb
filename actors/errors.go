package actors

import (
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"

	"github.com/cairn-graph/cairn/aggregate"
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

func exhausted(field, format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, field, format, a...)
}
