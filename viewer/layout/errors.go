package layout

import (
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error UnmarshalBinary returns for bytes
// that are not a layout state; the error is a *DecodeError.
var ErrCorrupt = errors.New("corrupt layout state")

// DecodeError says where and why layout state bytes failed to decode.
type DecodeError struct {
	Offset int    // byte offset of the problem
	Reason string // what is wrong there
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%v: at byte %d: %s", ErrCorrupt, e.Offset, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *DecodeError) Unwrap() error { return ErrCorrupt }

// ErrMismatch is wrapped by RestoreState's error for a state made with
// other Params or another seed than the Layout it is restored into.
var ErrMismatch = errors.New("layout state of other params or seed")
