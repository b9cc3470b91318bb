package aggregate

import (
	"errors"
	"fmt"
	"strings"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Sentinels, one per wire error code. A *CommandError matches the sentinel of
// its code with errors.Is.
var (
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrConflict           = errors.New("conflict")
	ErrUnavailable        = errors.New("unavailable")
	ErrInternal           = errors.New("internal error")
	ErrDeadlineExceeded   = errors.New("deadline exceeded")
	ErrResourceExhausted  = errors.New("resource exhausted")
	ErrDataLoss           = errors.New("data loss")
	ErrPermissionDenied   = errors.New("permission denied")
)

var codeSentinel = map[cairnv1.ErrorCode]error{
	cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT:    ErrInvalidArgument,
	cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND:           ErrNotFound,
	cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS:      ErrAlreadyExists,
	cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION: ErrFailedPrecondition,
	cairnv1.ErrorCode_ERROR_CODE_CONFLICT:            ErrConflict,
	cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE:         ErrUnavailable,
	cairnv1.ErrorCode_ERROR_CODE_INTERNAL:            ErrInternal,
	cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED:   ErrDeadlineExceeded,
	cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED:  ErrResourceExhausted,
	cairnv1.ErrorCode_ERROR_CODE_DATA_LOSS:           ErrDataLoss,
	cairnv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED:   ErrPermissionDenied,
}

// CommandError is a refused command: a code, the field it concerns (a path
// such as "commands[0].add_node.node_id") and a message for people.
type CommandError struct {
	Code    cairnv1.ErrorCode
	Field   string
	Message string
}

func (e *CommandError) Error() string {
	name := codeName(e.Code)
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", name, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", name, e.Field, e.Message)
}

// Unwrap returns the sentinel of the error's code.
func (e *CommandError) Unwrap() error { return codeSentinel[e.Code] }

// Proto converts e to its wire form.
func (e *CommandError) Proto() *cairnv1.Error {
	return &cairnv1.Error{Code: e.Code, Field: e.Field, Message: e.Message}
}

// ErrorFromProto converts a wire error back to a *CommandError; nil stays nil.
func ErrorFromProto(p *cairnv1.Error) error {
	if p == nil {
		return nil
	}
	return &CommandError{Code: p.GetCode(), Field: p.GetField(), Message: p.GetMessage()}
}

// AsCommandError returns err as a *CommandError, classifying errors of other
// kinds as INTERNAL.
func AsCommandError(err error) *CommandError {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce
	}
	return &CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Message: err.Error()}
}

// codeName is the code's name without the ERROR_CODE_ prefix, for example
// "NOT_FOUND".
func codeName(c cairnv1.ErrorCode) string {
	if name, ok := cairnv1.ErrorCode_name[int32(c)]; ok && c != cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
		return strings.TrimPrefix(name, "ERROR_CODE_")
	}
	return "UNKNOWN"
}

// Errorf returns a *CommandError with code, field path and a formatted
// message.
func Errorf(code cairnv1.ErrorCode, field, format string, a ...any) *CommandError {
	return &CommandError{Code: code, Field: field, Message: fmt.Sprintf(format, a...)}
}

func invalid(field, format string, a ...any) *CommandError {
	return Errorf(cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, field, format, a...)
}

func notFound(field, format string, a ...any) *CommandError {
	return Errorf(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, field, format, a...)
}

func alreadyExists(field, format string, a ...any) *CommandError {
	return Errorf(cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, field, format, a...)
}

func failedPrecondition(field, format string, a ...any) *CommandError {
	return Errorf(cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, field, format, a...)
}

func unavailable(format string, a ...any) *CommandError {
	return Errorf(cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE, "", format, a...)
}

func conflict(format string, a ...any) *CommandError {
	return Errorf(cairnv1.ErrorCode_ERROR_CODE_CONFLICT, "", format, a...)
}

func exhausted(field, format string, a ...any) *CommandError {
	return Errorf(cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, field, format, a...)
}
