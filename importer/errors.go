package importer

import (
	"errors"
	"fmt"
)

// ErrNoGraph: the graph does not exist and Config.Create is off.
var ErrNoGraph = errors.New("graph does not exist")

// ErrInterrupted: the context was cancelled; what was acknowledged is in the
// checkpoint, and running the same import again resumes there.
var ErrInterrupted = errors.New("import interrupted")

// LineError is a bad line: one that could not be parsed, or whose command
// the engine refused. Line is 1-based.
type LineError struct {
	File    string
	Line    int64
	Message string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message) }
