// Command cairn runs the Cairn engine (cairn serve) and talks to a running
// one: it sends commands to the "cairn" NATS micro service and reads and
// verifies graphs in the event store. Run "cairn help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	_ "github.com/cairn-graph/cairn/internal/madvfree" // first: see its doc
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a refused command, a broken chain, an unreachable engine
	exitUsage   = 2 // the command line itself is wrong
	exitSignal  = 130
)

// main parses nothing itself: it owns the signals and the exit code. The
// first SIGINT or SIGTERM cancels run's context (serve drains, a client stops
// waiting); a second one exits at once.
func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "cairn: second signal: exiting now")
		os.Exit(exitSignal)
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(exitCode(err))
}

// run runs one cairn command line (without the program name). Everything it
// prints goes to stdout and stderr; errors are printed to stderr and
// returned, so that the caller only has to pick the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdout, stderr)
	var help *helpRequest
	switch {
	case err == nil:
		return nil
	case errors.As(err, &help):
		printUsage(stdout, help.topic)
		return nil
	}
	fmt.Fprintf(stderr, "cairn: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Run '%s' for usage.\n", strings.TrimSpace("cairn help "+ue.topic))
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printUsage(stderr, "")
		return &usageError{err: errors.New("no command given")}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		topic := ""
		if name == "help" && len(rest) > 0 {
			topic = rest[0]
		}
		if !printUsage(stdout, topic) {
			return &usageError{err: fmt.Errorf("help: unknown command %q", topic)}
		}
		return nil
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "nats-node":
		return runNATSNode(ctx, rest, stdout, stderr)
	case "graph":
		return runGraph(ctx, rest, stdout, stderr)
	case "node":
		return runNode(ctx, rest, stdout, stderr)
	case "edge":
		return runEdge(ctx, rest, stdout, stderr)
	case "log":
		return runLog(ctx, rest, stdout, stderr)
	case "verify":
		return runVerify(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, stdout, stderr)
	case "history":
		return runHistory(ctx, rest, stdout, stderr)
	case "diff":
		return runDiff(ctx, rest, stdout, stderr)
	case "archive":
		return runArchive(ctx, rest, stdout, stderr)
	case "query":
		return runQuery(ctx, rest, stdout, stderr)
	case "tuple":
		return runTuple(ctx, rest, stdout, stderr)
	case "health":
		return runHealth(ctx, rest, stdout, stderr)
	case "repair":
		return runRepair(ctx, rest, stdout, stderr)
	case "import":
		return runImport(ctx, rest, stdout, stderr)
	case "adapter":
		return runAdapter(ctx, rest, os.Stdin, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "view":
		return runView(ctx, rest, stdout, stderr)
	case "auth":
		return runAuth(ctx, rest, stdout, stderr)
	case "backup":
		return runBackup(ctx, rest, stdout, stderr)
	case "restore":
		return runRestore(ctx, rest, stdout, stderr)
	}
	if strings.HasPrefix(name, "-") {
		return &usageError{err: fmt.Errorf("flag %s before the command: write 'cairn <command> [arguments] [flags]'", name)}
	}
	return &usageError{err: fmt.Errorf("unknown command %q", name)}
}

// exitCode maps run's error to the process exit code.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitFailure
}

// usageError is a command line that cannot be run as typed; topic names the
// help page to read.
type usageError struct {
	topic string
	err   error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

const mainUsage = `Cairn is an event-sourced graph engine: every change to a graph is kept as
a CID-chained transaction in NATS JetStream.

Usage:
  cairn serve [--data DIR] [--nats-listen ADDR|none] [--nats URL] [--sample] ...
  cairn nats-node [--data DIR] [--nats-listen ADDR] [--name N --nats-cluster-listen ADDR --nats-routes URLS] ...
  cairn graph create <graph> [--type T] [--meta key=value]...
  cairn graph delete <graph>
  cairn graph types [--json]
  cairn graph list [--type T] [--all] | show <graph>
  cairn node add <graph> <node> [--component type=value]... [--category c]...
  cairn node set <graph> <node> [--component type=value]... [--unset type]...
  cairn node remove <graph> <node>
  cairn edge add <graph> <edge> <source> <target> [--type T] [--component type=value]...
  cairn edge remove <graph> <edge>
  cairn log <graph>
  cairn history <graph> [--from-seq N] [--limit N]
  cairn diff <graph> --from X --to Y
  cairn verify <graph> [--trust FILE]
  cairn keys new|show|fetch ...
  cairn archive <graph> --before X
  cairn query node|find|neighbors|khop|path|components|top|stats <graph> ...
              [--min-seq N | --as-of X]
  cairn query find (--graphs a,b,c | --all-graphs) (--category C | ...) [--as-of-seq N]
  cairn tuple write|delete <graph> <object#relation@subject>...
  cairn query check <graph> <object#relation@subject> | expand <graph> <object#relation>
  cairn health
  cairn repair <graph> --seq N
  cairn import <graph> FILE [--format edgelist|csv|jsonl] [--strict] ...
  cairn adapter run people|organisations|locations --from SUBJECT --graph G ...
  cairn adapter list
  cairn bench ingest|mixed|recovery|replay|peer|suite [--out DIR] ...
  cairn view <graph> [--png FILE] [--as-of X] [--replay [--record OUT]] ...
  cairn auth add-user|hash-password|nkey|list ...
  cairn backup --out DIR [--nats URL]
  cairn restore --from DIR (--data DATA | --nats URL)
  cairn help [command]

X and Y are points of a graph's history: a stream sequence (12), an RFC 3339
time (2026-11-27T20:43:12Z) or an event CID (bafy...).
Flags may come before or after the arguments; "--" ends the flags.
Run 'cairn help <command>' for a command's flags.
`

const clientUsage = `
Client flags (every command but serve):
  --server URL          NATS URL of the engine (default nats://127.0.0.1:4222)
  --creds FILE          NATS credentials file
  --user U --password P NATS user and password
  --nkey FILE           NATS nkey seed file (cairn auth nkey)
  --tls-cert F --tls-key F
                        TLS client certificate and key
  --tls-ca F            TLS root CA to trust the server by
  --timeout D           give up after D (default 10s for writes and queries,
                        1m for log, history, diff and verify, 10m for archive)
  --json                print JSON
`

const writeUsage = `
Write flags (graph, node and edge commands; the client flags too):
  --command-id ID       idempotency key: a retry with the same id is answered
                        with the original result and writes nothing (default:
                        a fresh random id, printed as command=)
  --issuer NAME         recorded with the command (default "cli")
  --correlation-id ID, --causation-id ID
                        recorded with the command
  --trace               send the command with a fresh, sampled W3C traceparent
                        and print "trace <32-hex trace id>" on stderr (and
                        "trace_id" with --json): an engine exporting traces
                        (serve --otlp-endpoint) records its spans under it

A write prints
  ok seq=12 position=7 head=bafy... tx=... command=...
(seq: the transaction's stream sequence; position: the chain position of the
command's last event; head: that event's CID), with " (duplicate)" when the
command id had been seen; --json prints every reply field. To read your
writes, pass the seq to a query: cairn query ... --min-seq 12.
`

const exitUsageText = `
Exit status: 0 done; 1 the engine refused the command, the chain is broken or
the engine could not be reached (the reason is on stderr, led by its code:
PERMISSION_DENIED means your user lacks a right the command needs, such as
writing the other graph of a link); 2 the command line is wrong.
`

// printUsage prints the help for topic ("" for all commands) and reports
// whether topic is known.
func printUsage(w io.Writer, topic string) bool {
	var text, flags string
	switch topic {
	case "":
		text, flags = mainUsage, clientUsage+writeUsage
	case "serve":
		text = serveUsage
	case "nats-node":
		text = natsNodeUsage
	case "graph":
		text, flags = graphUsage+catalogueUsage, clientUsage+writeUsage
	case "node":
		text, flags = nodeUsage, clientUsage+writeUsage
	case "edge":
		text, flags = edgeUsage, clientUsage+writeUsage
	case "log":
		text, flags = logUsage, clientUsage
	case "verify":
		text, flags = verifyUsage, clientUsage
	case "keys":
		text, flags = keysUsage, clientUsage
	case "history":
		text, flags = historyUsage, clientUsage
	case "diff":
		text, flags = diffUsage, clientUsage
	case "archive":
		text, flags = archiveUsage, clientUsage
	case "query":
		text, flags = queryUsage+findAcrossUsage, clientUsage
	case "tuple":
		text, flags = tupleUsage, clientUsage+writeUsage
	case "health":
		text, flags = healthUsage, clientUsage
	case "repair":
		text, flags = repairUsage, clientUsage
	case "import":
		text, flags = importUsage, clientUsage
	case "adapter":
		text, flags = adapterUsage, clientUsage
	case "bench":
		text = benchUsage
	case "view":
		text, flags = viewUsage, clientUsage
	case "auth":
		text = authUsage
	case "backup":
		text, flags = backupUsage, clientUsage
	case "restore":
		text = restoreUsage
	default:
		return false
	}
	_, _ = io.WriteString(w, text+flags+exitUsageText)
	return true
}
