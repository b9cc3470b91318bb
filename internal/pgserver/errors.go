package pgserver

import "errors"

// ErrNotInstalled: no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (Debian: apt-get install postgresql, or run 'make deps')")
