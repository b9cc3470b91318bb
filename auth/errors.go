package auth

import "errors"

// ErrInvalid is wrapped by every error of a users file that does not
// validate.
var ErrInvalid = errors.New("invalid users file")
