package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/adapter"
)

const adapterUsage = `Usage:
  cairn adapter run people|organisations|locations --from SUBJECT --graph G
                    [--format json|protobuf] [--dead-letter SUBJECT]
                    [--stream NAME] [--durable NAME] [--create-graph]
                    [--max-attempts N] [--retry-delay D] [--max-retry-delay D] [--ack-wait D]
                    [--progress D] [--strict-domain] [--json] [client flags]
  cairn adapter list [--json]
  cairn adapter publish --to SUBJECT [FILE] [--format json|protobuf] [client flags]

adapter run reads one domain's source events (cairn.v1.DomainEvent, in its
protojson form or, with --format protobuf, its protobuf encoding; schemas
and examples in docs/adapters.md) from JetStream and writes them to the
relationship graph G: people, organisations and locations become nodes
"person:<id>", "organisation:<id>", "location:<id>" with those categories;
relations become edges "<type>:<source node>:<target node>" (knows,
works_for, manages, lives_in, located_in, part_of). It runs until SIGINT or
SIGTERM: then it finishes the event in flight, leaves the rest
unacknowledged, prints a summary on stdout and exits 0.

It reads through the stream that captures --from (default: the one that
does; when none does it creates ADAPTER_<KIND>, file storage: events
published before a stream captured the subject are not kept; with a login,
it asks the engine to create it, see below) and a durable
consumer (--durable, default adapter_<kind>_<graph>) whose acks are the
checkpoint: an event is acked once the engine acknowledged its command, so a
restarted adapter resumes where it stopped, and a killed one (kill -9) gets
its unacknowledged events again after --ack-wait. Command ids derive from
the event ids (adapter/<kind>/<event id>), edge ids from the relation, and
an upsert not newer than the node (by occurred_at) is skipped: a replay adds
nothing and is counted as duplicates.

Events are handled one at a time, in their order. An event naming a node
the graph lacks (its adapter has not caught up) is tried again, holding
the events after it, after --retry-delay, doubling up to --max-retry-delay
(default 30 s), and dead-lettered at its --max-attempts-th try. Unmappable events (bad JSON or protobuf,
no known type, a missing or malformed field) and events the engine refuses
for good go at once to --dead-letter (default SUBJECT.dead; required when
--from has a wildcard), with their original bytes and the headers
Cairn-Dead-Reason, Cairn-Dead-Detail, Cairn-Adapter, Cairn-Graph,
Cairn-Event-Id, Cairn-Error-Code, Cairn-Source-Seq. Events of another
adapter's domain are skipped (--strict-domain: dead-lettered), so the three
adapters may read one subject.

On an engine with users (cairn serve --auth), log in as a user of role
adapter (cairn auth add-user ... --role adapter --graph G --source SUBJECT):
it may write G, consume SUBJECT through its streams (default
ADAPTER_<KIND>) with the durable adapter_<kind>_<G> and publish to
SUBJECT.dead, and nothing else. It may not create a stream: adapter run
asks the engine (cairn.admin.adapter-stream), which creates it only under
one of the user's streams and capturing its sources, and says so on stderr.
Another login is stopped at its first refused request, with the right it
lacks.

--create-graph creates G (type relationship) when it does not exist.
Progress goes to stderr every --progress (default 5s):
  adapter people graph=G read=120 written=118 duplicates=2 skipped=0 retried=0 dead_lettered=0 lag=0 seq=131
and the summary to stdout, "ok adapter=people ..." (--json: one JSON object a
line, "progress" then "summary").

adapter list prints the adapters and the event types each maps.

adapter publish is a test source: it publishes each line of FILE (default
stdin; blank lines and lines starting with "#" skipped) to SUBJECT through
JetStream, as it is with --format json, converted to the protobuf encoding of
the DomainEvent with --format protobuf, and prints "published N".
`

func runAdapter(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{topic: "adapter", err: errors.New("adapter: want run or list")}
	}
	switch args[0] {
	case "run":
		return runAdapterRun(ctx, args[1:], stdout, stderr)
	case "list":
		return runAdapterList(args[1:], stdout)
	case "publish":
		return runAdapterPublish(ctx, args[1:], stdin, stdout)
	case "help", "-h", "--help":
		return &helpRequest{topic: "adapter"}
	}
	return &usageError{topic: "adapter", err: fmt.Errorf("adapter: unknown subcommand %q: want run or list", args[0])}
}

func runAdapterList(args []string, stdout io.Writer) error {
	fs := newFlagSet("adapter list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, "adapter", args); err != nil {
		return err
	}
	for _, k := range adapter.Kinds() {
		if *asJSON {
			if err := writeJSON(stdout, map[string]any{"adapter": k.Name, "events": k.Events}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "%-14s %s\n", k.Name, strings.Join(k.Events, " "))
	}
	return nil
}

func runAdapterRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("adapter run")
	var c clientFlags
	c.register(fs, "adapter", 10*time.Second)
	cfg := adapter.DefaultConfig("", "", "")
	fs.StringVar(&cfg.From, "from", "", "NATS `subject` the source events are published on")
	fs.StringVar(&cfg.Graph, "graph", "", "the relationship `graph` to write")
	format := fs.String("format", string(adapter.FormatJSON), "event `format`: json or protobuf")
	fs.StringVar(&cfg.DeadLetter, "dead-letter", "", "dead-letter `subject` (default SUBJECT.dead)")
	fs.StringVar(&cfg.Stream, "stream", "", "JetStream `stream` to read (default: the one capturing --from, else ADAPTER_<KIND>)")
	fs.StringVar(&cfg.Durable, "durable", "", "durable consumer `name` (default adapter_<kind>_<graph>)")
	fs.BoolVar(&cfg.CreateGraph, "create-graph", false, "create the graph (type relationship) when it does not exist")
	fs.IntVar(&cfg.MaxAttempts, "max-attempts", cfg.MaxAttempts, "deliveries of an event naming a missing node before it is dead-lettered")
	fs.DurationVar(&cfg.RetryDelay, "retry-delay", cfg.RetryDelay, "first redelivery `delay` of such an event (doubling)")
	fs.DurationVar(&cfg.MaxRetryDelay, "max-retry-delay", cfg.MaxRetryDelay, "the redelivery delay stops doubling at this `delay`")
	fs.DurationVar(&cfg.AckWait, "ack-wait", cfg.AckWait, "how long JetStream waits for an ack before redelivering")
	fs.DurationVar(&cfg.ProgressEvery, "progress", cfg.ProgressEvery, "progress `interval`")
	fs.BoolVar(&cfg.StrictDomain, "strict-domain", false, "dead-letter events of another adapter's domain instead of skipping them")
	pos, err := parseArgs(fs, "adapter", args, "adapter")
	if err != nil {
		return err
	}
	cfg.Kind, cfg.Format, cfg.RequestTimeout = pos[0], adapter.Format(*format), c.timeout
	if cfg.From == "" || cfg.Graph == "" {
		return &usageError{topic: "adapter", err: errors.New("adapter run: --from and --graph are required")}
	}
	if err := cfg.Validate(); err != nil {
		return &usageError{topic: "adapter", err: fmt.Errorf("adapter run: %w", err)}
	}
	// A request the login may not make is dropped by the server, which
	// says so on the side: stop at once and say which right is missing.
	ctx, refuse := context.WithCancelCause(ctx)
	defer refuse(nil)
	nc, err := c.connectLong("cairn-adapter-"+cfg.Kind, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			refuse(&refusedError{err})
		}
	}))
	if err != nil {
		return err
	}
	defer nc.Close()

	var mu sync.Mutex // progress and the summary share stderr and stdout
	report := func(w io.Writer, what string, s adapter.Stats) {
		mu.Lock()
		defer mu.Unlock()
		if c.json {
			_ = writeJSON(w, adapterJSON{Kind: what, Stats: s, ElapsedS: s.Elapsed.Seconds()})
			return
		}
		prefix := "adapter " + s.Kind
		if what == "summary" {
			prefix = "ok adapter=" + s.Kind
		}
		fmt.Fprintf(w, "%s graph=%s read=%d written=%d duplicates=%d skipped=%d retried=%d dead_lettered=%d lag=%d seq=%d elapsed=%.1fs\n",
			prefix, s.Graph, s.Read, s.Written, s.Duplicates, s.Skipped, s.Retried, s.DeadLettered, s.Lag, s.Seq, s.Elapsed.Seconds())
	}
	cfg.OnProgress = func(s adapter.Stats) { report(stderr, "progress", s) }
	// With a login the engine may have users: then it creates the
	// stream, after checking the login may have it.
	cfg.AskEngine = c.auth.credentials()
	cfg.OnSetup = func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if c.json {
			_ = writeJSON(stderr, map[string]string{"kind": "setup", "adapter": cfg.Kind, "message": line})
			return
		}
		fmt.Fprintf(stderr, "adapter %s: %s\n", cfg.Kind, line)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := adapter.New(nc, cfg)
	if err != nil {
		return err
	}
	err = a.Run(ctx)
	var refused *refusedError
	if errors.As(context.Cause(ctx), &refused) {
		return adapterRefused(c, cfg, refused)
	}
	var streamRefused *adapter.StreamRefusedError
	if errors.As(err, &streamRefused) {
		return fmt.Errorf("adapter run: %w\n"+
			"The engine creates an adapter's stream only under one of its user's streams and capturing its sources "+
			"(cairn auth add-user ... --role adapter --source SUBJECT --stream NAME; docs/adapters.md, \"On a secured engine\")", err)
	}
	if errors.Is(err, adapter.ErrNoGraph) {
		return fmt.Errorf("graph %s does not exist: create it with 'cairn graph create %s --type relationship', or pass --create-graph", cfg.Graph, cfg.Graph)
	}
	report(stdout, "summary", a.Stats())
	return err
}

func runAdapterPublish(ctx context.Context, args []string, in io.Reader, stdout io.Writer) error {
	fs := newFlagSet("adapter publish")
	var c clientFlags
	c.register(fs, "adapter", 10*time.Second)
	to := fs.String("to", "", "`subject` to publish to")
	format := fs.String("format", string(adapter.FormatJSON), "`format` to publish: json or protobuf")
	var pos []string
	var err error
	if pos, err = parseArgs(fs, "adapter", args, "file"); err != nil {
		if pos, err = parseArgs(fs, "adapter", args); err != nil {
			return err
		}
	}
	if *to == "" || (*format != "json" && *format != "protobuf") {
		return &usageError{topic: "adapter", err: errors.New("adapter publish: --to SUBJECT is required, --format is json or protobuf")}
	}
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	nc, err := c.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n, line := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		data := []byte(text)
		if *format == "protobuf" {
			ev, err := adapter.Decode(adapter.FormatJSON, data)
			if err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
			if data, err = proto.Marshal(ev); err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
		}
		pctx, cancel := context.WithTimeout(ctx, c.timeout)
		_, err := js.Publish(pctx, *to, data)
		cancel()
		if err != nil {
			return fmt.Errorf("line %d: publish to %s: %w (does a stream capture it? 'cairn adapter run' creates one)", line, *to, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %d\n", n)
	return nil
}

// adapterJSON is one line of "adapter run --json".
type adapterJSON struct {
	Kind string `json:"kind"` // progress or summary
	adapter.Stats
	ElapsedS float64 `json:"elapsed_s"`
}

// refusedError is a request the server refused the login (a permission
// violation).
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// adapterRefused explains a refused request of "adapter run": which right
// the login lacks, and the users-file entry that gives it.
func adapterRefused(c clientFlags, cfg adapter.Config, refused *refusedError) error {
	login := "this login"
	switch {
	case c.auth.user != "":
		login = "user " + c.auth.user
	case c.auth.nkey != "":
		login = "the nkey of " + c.auth.nkey
	}
	stream := cfg.Stream
	if stream == "" {
		stream = "ADAPTER_" + strings.ToUpper(cfg.Kind)
	}
	return fmt.Errorf("adapter run: the engine's NATS refused %s a request: %w\n"+
		"An adapter on a secured engine needs a user of role adapter that names graph %s, source %s and stream %s "+
		"(a writer or reader may not use JetStream); for example:\n"+
		"  cairn auth add-user USERS.json NAME --role adapter --graph %s --source %s --new-nkey NAME.nk\n"+
		"then restart 'cairn serve --auth USERS.json' (docs/adapters.md, \"On a secured engine\")",
		login, refused, cfg.Graph, cfg.From, stream, cfg.Graph, cfg.From)
}

// connectLong opens a connection for a long-running client: unlike
// connect's, it reconnects without end (requests made meanwhile fail and
// are tried again later).
func (c *clientFlags) connectLong(name string, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := c.auth.options(c.topic)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.Name(name), nats.Timeout(min(c.timeout, 5*time.Second)), nats.MaxReconnects(-1))
	opts = append(opts, extra...)
	nc, err := nats.Connect(c.server, opts...)
	switch {
	case errors.Is(err, nats.ErrNoServers):
		return nil, fmt.Errorf("cannot reach NATS at %s: %w (is 'cairn serve' running?)", c.server, err)
	case err != nil:
		return nil, fmt.Errorf("connect to NATS at %s: %w", c.server, err)
	}
	return nc, nil
}
