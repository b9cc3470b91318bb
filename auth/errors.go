package auth

import "errors"

// ErrInvalid is wrapped by every error of a users file that does not
// validate.
var ErrInvalid = errors.New("invalid users file")

// ErrDenied is wrapped by a request a user's role or lists do not allow
// (User.CheckAdapterStream).
var ErrDenied = errors.New("permission denied")

// ErrBadSubject is wrapped by a request naming a subject no client may
// use: malformed, or the engine's, JetStream's, the system's or the
// inboxes' (User.CheckAdapterStream).
var ErrBadSubject = errors.New("subject not allowed")
