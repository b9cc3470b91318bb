//go:build !viewer

package main

import (
	"context"
	"errors"
	"io"
)

// errNoViewer is cairn view's answer in a binary built without the viewer.
var errNoViewer = errors.New("view: this cairn was built without the viewer, which needs cgo and the build tags viewer,egl: build it with 'make build' (CGO_ENABLED=1 go build -tags viewer,egl ./cmd/cairn)")

// runView parses the command line, so that its mistakes are named first,
// and then says the viewer is not built in.
func runView(_ context.Context, args []string, _, _ io.Writer) error {
	var o viewOptions
	fs := newFlagSet("view")
	var c clientFlags
	c.register(fs, "view", 0)
	o.register(fs)
	if _, err := parseArgs(fs, "view", args, "graph"); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	return errNoViewer
}
