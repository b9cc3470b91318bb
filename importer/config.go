package importer

import (
	"errors"
	"fmt"
	"time"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/retry"
)

// Config tunes an import. Start from DefaultConfig.
type Config struct {
	// Format is the file's format; "" picks it from the file name: ".csv"
	// is FormatCSV, ".jsonl" and ".ndjson" are FormatJSONL, anything else
	// is FormatEdgeList.
	Format Format
	// NodesFile, for FormatCSV only, is a CSV file of nodes imported before
	// the edges file. Default: none.
	NodesFile string
	// Create sends CreateGraph first when the graph does not exist.
	// Default false: importing into a missing graph fails with ErrNoGraph.
	Create bool
	// Strict stops at the first bad line with a *LineError. Default false:
	// bad lines are reported to OnBadLine and the import goes on.
	Strict bool
	// BatchSize is the number of commands per envelope, 1 to
	// aggregate.MaxCommands. Default 1000.
	BatchSize int
	// InFlight is how many envelopes of edges may await their reply at
	// once; the engine commits envelopes queued behind an append together.
	// Default 4.
	InFlight int
	// Checkpoint is the checkpoint file. Default: the file's path plus
	// ".cairn-import".
	Checkpoint string
	// NoResume ignores an existing checkpoint and starts from the top.
	NoResume bool
	// RequestTimeout bounds each envelope's request. Default 1 minute.
	RequestTimeout time.Duration
	// Retries is how often an envelope whose outcome is unknown (a timeout,
	// a lost connection, an UNAVAILABLE or DEADLINE_EXCEEDED answer) is sent
	// again, with the same command id, after an exponential back-off with
	// jitter (200 ms, 400 ms, ... up to 5 s; see internal/retry). Any other
	// refusal, RESOURCE_EXHAUSTED and INVALID_ARGUMENT included, is never
	// sent again. Default 5.
	Retries int
	// RetryFor bounds the time from an envelope's first try to its last:
	// no retry starts after it. Default 2 minutes.
	RetryFor time.Duration
	// StopGrace is how long, once ctx ends, the envelopes in flight may
	// still be answered (and so checkpointed) before their requests are
	// abandoned; no envelope is sent and no retry made after ctx ends.
	// Default 3 seconds.
	StopGrace time.Duration
	// Issuer is recorded on every envelope. Default "cairn-import".
	Issuer string
	// ProgressEvery is how often OnProgress is called. Default 200ms.
	ProgressEvery time.Duration
	// OnProgress, when set, is called every ProgressEvery and once at the
	// end, from the importing goroutine.
	OnProgress func(Progress)
	// OnBadLine, when set, is called for each bad line, from the importing
	// goroutine.
	OnBadLine func(*LineError)
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		BatchSize: aggregate.MaxCommands, InFlight: 4, RequestTimeout: time.Minute,
		Retries: 5, RetryFor: 2 * time.Minute, StopGrace: 3 * time.Second,
		Issuer: "cairn-import", ProgressEvery: 200 * time.Millisecond,
	}
}

// Validate returns every problem of c, joined.
func (c Config) Validate() error {
	var errs []error
	switch c.Format {
	case "", FormatEdgeList, FormatCSV, FormatJSONL:
	default:
		errs = append(errs, fmt.Errorf("format %q: want edgelist, csv or jsonl", c.Format))
	}
	if c.BatchSize < 1 || c.BatchSize > aggregate.MaxCommands {
		errs = append(errs, fmt.Errorf("batch size %d: want 1 to %d", c.BatchSize, aggregate.MaxCommands))
	}
	if c.InFlight < 1 || c.InFlight > 64 {
		errs = append(errs, fmt.Errorf("in-flight %d: want 1 to 64", c.InFlight))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("request timeout %s: want a positive duration", c.RequestTimeout))
	}
	if c.Retries < 0 {
		errs = append(errs, fmt.Errorf("retries %d: want 0 or more", c.Retries))
	}
	if c.RetryFor <= 0 {
		errs = append(errs, fmt.Errorf("retry time %s: want a positive duration", c.RetryFor))
	}
	if c.StopGrace <= 0 {
		errs = append(errs, fmt.Errorf("stop grace %s: want a positive duration", c.StopGrace))
	}
	if c.ProgressEvery <= 0 {
		errs = append(errs, fmt.Errorf("progress interval %s: want a positive duration", c.ProgressEvery))
	}
	if c.NodesFile != "" && c.Format != "" && c.Format != FormatCSV {
		errs = append(errs, errors.New("a nodes file goes with the csv format only"))
	}
	return errors.Join(errs...)
}

// retryPolicy is the back-off of an envelope whose outcome is unknown.
func (c Config) retryPolicy() retry.Policy {
	p := retry.DefaultPolicy()
	p.Attempts, p.Budget = c.Retries+1, c.RetryFor
	return p
}
