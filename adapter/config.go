package adapter

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/retry"
)

// Config is an adapter's configuration. Kind, From and Graph are required;
// DefaultConfig documents the other defaults.
type Config struct {
	// Kind is the adapter: "people", "organisations" or "locations".
	Kind string
	// From is the NATS subject (wildcards allowed) the source events are
	// published on.
	From string
	// Graph is the relationship graph written to.
	Graph string
	// Format of the events: FormatJSON (default) or FormatProtobuf.
	Format Format
	// DeadLetter is the subject unmappable events are published to.
	// Default From + ".dead"; required when From has a wildcard. It may
	// not be a subject From matches.
	DeadLetter string
	// Stream is the JetStream stream read. Default: the stream that
	// captures From; when none does, one named "ADAPTER_<KIND>" capturing
	// From is created (see EnsureStream).
	Stream string
	// AskEngine has the engine create the stream when it does not exist
	// (api.AdapterStreamSubject), as a login of role adapter on an engine
	// with users must: no client login may create streams there. An
	// engine without users answers that the adapter creates it itself.
	AskEngine bool
	// Durable is the durable consumer whose acks are the checkpoint.
	// Default "adapter_<kind>_<graph>".
	Durable string
	// CreateGraph creates Graph, of type "relationship", when it does not
	// exist; otherwise Run fails with ErrNoGraph.
	CreateGraph bool
	// MaxAttempts bounds the deliveries of an event naming a node the
	// graph lacks (its adapter has not caught up): it is tried again in
	// place, holding the events after it, after RetryDelay, doubling each
	// time (at most MaxRetryDelay), and dead-lettered at the
	// MaxAttempts-th try. Default 5.
	MaxAttempts int
	// RetryDelay is the first redelivery delay. Default 1 s.
	RetryDelay time.Duration
	// MaxRetryDelay caps the doubling redelivery delay. Default 30 s.
	MaxRetryDelay time.Duration
	// AckWait is how long JetStream waits for an ack before redelivering
	// (after a crash, the events in flight come back after it). Default 30 s.
	AckWait time.Duration
	// Batch is how many events one fetch asks for; the consumer hands out
	// one at a time (events are handled in their order). Default 32.
	Batch int
	// RequestTimeout bounds each request to the engine. Default 10 s.
	RequestTimeout time.Duration
	// Retry bounds the retries of a request whose outcome is unknown (no
	// answer, UNAVAILABLE, DEADLINE_EXCEEDED), with the same command id;
	// when they run out the event is tried again in place, after the
	// back-off, until the engine answers or the adapter stops. Default
	// retry.DefaultPolicy() (6 tries within a minute).
	Retry retry.Policy
	// StopGrace is how long the event in flight may take to finish once
	// Run's context ends; then it is left unacknowledged. Default 10 s.
	StopGrace time.Duration
	// StrictDomain dead-letters events of another adapter's domain;
	// by default they are skipped (acked, counted in Stats.Skipped), so
	// that the three adapters can read one subject.
	StrictDomain bool
	// ProgressEvery is how often OnProgress is called. Default 5 s.
	ProgressEvery time.Duration
	// OnProgress, when set, gets the counts every ProgressEvery.
	OnProgress func(Stats)
	// OnSetup, when set, gets a line for each step of the set-up worth
	// telling: the engine asked to create the stream, and its answer.
	OnSetup func(string)
	// Logger gets a line per dead letter and per redelivery. Default:
	// discard.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config, for kind,
// reading from and writing graph.
func DefaultConfig(kind, from, graph string) Config {
	return Config{
		Kind: kind, From: from, Graph: graph,
		Format: FormatJSON, MaxAttempts: 5, RetryDelay: time.Second, MaxRetryDelay: 30 * time.Second,
		AckWait: 30 * time.Second, Batch: 32, RequestTimeout: 10 * time.Second,
		Retry: retry.DefaultPolicy(), StopGrace: 10 * time.Second, ProgressEvery: 5 * time.Second,
	}
}

// withDefaults fills the derived defaults (DeadLetter, Durable, Logger).
func (c Config) withDefaults() Config {
	if c.DeadLetter == "" && !hasWildcard(c.From) {
		c.DeadLetter = c.From + ".dead"
	}
	if c.Durable == "" {
		c.Durable = "adapter_" + c.Kind + "_" + c.Graph
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate returns every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	if _, ok := kindOf(c.Kind); !ok {
		errs = append(errs, fmt.Errorf("adapter %q: want people, organisations or locations", c.Kind))
	}
	if !validSubject(c.From, true) {
		errs = append(errs, fmt.Errorf("--from %q is not a NATS subject", c.From))
	}
	if err := aggregate.ValidateGraphID("graph", c.Graph); err != nil {
		errs = append(errs, err)
	}
	if c.Format != FormatJSON && c.Format != FormatProtobuf {
		errs = append(errs, fmt.Errorf("format %q: want json or protobuf", c.Format))
	}
	switch d := c.withDefaults().DeadLetter; {
	case d == "":
		errs = append(errs, fmt.Errorf("--from %q has a wildcard: name the dead-letter subject (--dead-letter)", c.From))
	case !validSubject(d, false):
		errs = append(errs, fmt.Errorf("dead-letter subject %q is not a NATS subject without wildcards", d))
	case subjectMatches(c.From, d):
		errs = append(errs, fmt.Errorf("dead-letter subject %q is one --from %q reads: dead letters would come back as events", d, c.From))
	}
	if c.Durable != "" && strings.ContainsAny(c.Durable, ".*> \t") {
		errs = append(errs, fmt.Errorf("durable %q may not hold '.', '*', '>' or spaces", c.Durable))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d: want at least 1", c.MaxAttempts))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"retry delay", c.RetryDelay}, {"max retry delay", c.MaxRetryDelay}, {"ack wait", c.AckWait}, {"request timeout", c.RequestTimeout}, {"stop grace", c.StopGrace}, {"progress interval", c.ProgressEvery}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: want a positive duration", d.name, d.v))
		}
	}
	if c.Batch < 1 {
		errs = append(errs, fmt.Errorf("batch %d: want at least 1", c.Batch))
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*>") }

// validSubject: dot-separated non-empty tokens without spaces; wildcards
// ('*' tokens, a last '>' token) only when wild.
func validSubject(s string, wild bool) bool {
	if s == "" {
		return false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "" || strings.ContainsAny(t, " \t\r\n"):
			return false
		case t == "*" || (t == ">" && i == len(toks)-1):
			if !wild {
				return false
			}
		case strings.ContainsAny(t, "*>"):
			return false
		}
	}
	return true
}

// subjectMatches reports whether the pattern matches the literal subject.
func subjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, t := range p {
		if t == ">" {
			return len(s) > i
		}
		if i >= len(s) || (t != "*" && t != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}
