package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/bench"
	"github.com/cairn-graph/cairn/importer"
)

const importUsage = `Usage:
  cairn import <graph> FILE [--format edgelist|csv|jsonl] [--nodes NODES.csv]
               [--create] [--strict] [--checkpoint PATH] [--no-resume]
               [--batch N] [--inflight N] [--no-progress] [client flags]

import loads FILE into the graph, streaming it in constant memory, in
envelopes of --batch commands (default 1000, one transaction each).
--format defaults from the name: .csv is csv, .jsonl and .ndjson are jsonl,
anything else an edge list.

  edgelist  one edge a line, "source target [type]", separated by spaces or
            tabs; "#" lines and blank lines skipped
  csv       FILE holds edges, with a header: source,target[,id][,type] and
            one column per component type; --nodes NODES.csv, imported
            first, holds nodes: id[,category or categories (';'-separated)]
            and one column per component type; an empty cell is no component
  jsonl     one object a line: {"node":"id","components":{"t":"v"},
            "categories":["c"]} or {"edge":"id","source":"a","target":"b",
            "type":"t","components":{...}} ("edge" optional)

Ids are taken verbatim (libstdc++6, python3.11, a:b/c@d+e). Nodes named only
by edges are created on the fly. An edge without an id is named
"source->target" ("source-[type]->target" with a type); a line whose node or
edge exists already is counted as existing, so importing twice adds nothing.
The graph must exist; --create creates it when it does not.

A bad line (unparsable, or refused: an id with a control character or over
256 bytes) is printed to stderr as FILE:LINE: message (the first 100) and
skipped; the import goes on and exits 1 at the end. --strict stops at the
first one instead, with exit status 1; the lines before it are imported.

Progress goes to stderr: a bar with bytes, lines, edges/s and ETA when
stderr is a terminal, else a line every 5 seconds (JSON with --json).
At the end stdout gets
  ok edges=1000000 nodes=0 lines=1000002 bad=0 existing=0 duplicates=0 envelopes=1000 elapsed=8.1s rate=123456/s seq=1042
(--json: the same as one JSON object). Pass seq as a query's --min-seq to
read the import.

Interrupted (Ctrl-C; or killed), the same command (same graph, file,
--format and --batch) resumes. On Ctrl-C import sends nothing more, waits
up to 3 seconds for the envelopes in flight, writes the checkpoint, says
after which line it stopped and exits 1 (a second Ctrl-C exits at once).
The checkpoint (--checkpoint, default FILE.cairn-import) records what was
acknowledged; command ids derive from the file and the position of each
envelope's first line, so an envelope applied but not checkpointed is
answered as a duplicate, never applied twice. --no-resume starts from the
top. The checkpoint is removed when the import completes.
--timeout bounds each envelope's request (default 1m). An envelope with no
answer, or answered UNAVAILABLE or DEADLINE_EXCEEDED, is sent again with
the same id, up to 5 times, after 0.2 s, 0.4 s, 0.8 s ... (at most 5 s
apart, with jitter) and within 2 minutes of its first try; then import stops
with the last failure and the number of tries. Any other refusal
(RESOURCE_EXHAUSTED, INVALID_ARGUMENT, ...) is never sent again.
`

// maxBadLinesShown is how many bad lines import prints; it counts the rest.
const maxBadLinesShown = 100

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import")
	var c clientFlags
	c.register(fs, "import", time.Minute)
	cfg := importer.DefaultConfig()
	format := fs.String("format", "", "input `format`: edgelist, csv or jsonl (default: from the file name)")
	fs.StringVar(&cfg.NodesFile, "nodes", "", "CSV `file` of nodes, imported before the edges (csv only)")
	fs.BoolVar(&cfg.Create, "create", false, "create the graph if it does not exist")
	fs.BoolVar(&cfg.Strict, "strict", false, "stop at the first bad line")
	fs.StringVar(&cfg.Checkpoint, "checkpoint", "", "checkpoint `path` (default FILE.cairn-import)")
	fs.BoolVar(&cfg.NoResume, "no-resume", false, "ignore a checkpoint and start from the top")
	fs.IntVar(&cfg.BatchSize, "batch", cfg.BatchSize, "commands per envelope (1-1000)")
	fs.IntVar(&cfg.InFlight, "inflight", cfg.InFlight, "envelopes awaiting their reply at once")
	noProgress := fs.Bool("no-progress", false, "print no progress")
	pos, err := parseArgs(fs, "import", args, "graph", "file")
	if err != nil {
		return err
	}
	graph, path := pos[0], pos[1]
	switch f := importer.Format(*format); f {
	case "", importer.FormatEdgeList, importer.FormatCSV, importer.FormatJSONL:
		cfg.Format = f
	default:
		return &usageError{topic: "import", err: fmt.Errorf("import: --format %q: want edgelist, csv or jsonl", *format)}
	}
	if err := cfg.Validate(); err != nil {
		return &usageError{topic: "import", err: fmt.Errorf("import: %w", err)}
	}
	if cfg.NodesFile != "" && cfg.Format == "" && importer.FormatOf(path) != importer.FormatCSV {
		return &usageError{topic: "import", err: errors.New("import: --nodes goes with a CSV edges file (or --format csv)")}
	}
	if err := aggregate.ValidateGraphID("graph", graph); err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	cfg.RequestTimeout = c.timeout
	nc, err := c.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	// One connection for the whole import, through the same client of the
	// "cairn" service that `cairn bench --driver remote` uses.
	x, err := bench.Remote(nc, c.timeout)
	if err != nil {
		return err
	}

	out := newImportOutput(stderr, c.json, *noProgress)
	var bad int64
	cfg.OnBadLine = func(le *importer.LineError) {
		bad++
		if !cfg.Strict && bad <= maxBadLinesShown {
			out.line(le.Error())
		}
	}
	cfg.OnProgress = out.progress
	res, err := importer.Run(ctx, x, graph, path, cfg)
	out.finish()
	if bad > maxBadLinesShown && !cfg.Strict {
		fmt.Fprintf(stderr, "... and %d more bad lines\n", bad-maxBadLinesShown)
	}
	switch {
	case errors.Is(err, importer.ErrNoGraph):
		return fmt.Errorf("graph %s does not exist: create it with 'cairn graph create %s', or import with --create", graph, graph)
	case errors.Is(err, importer.ErrInterrupted):
		printImportResult(stdout, c.json, res, false)
		return err
	case err != nil:
		var le *importer.LineError
		if errors.As(err, &le) {
			printImportResult(stdout, c.json, res, false)
			return fmt.Errorf("%w (--strict: stopped there)", err)
		}
		return err
	}
	printImportResult(stdout, c.json, res, true)
	if res.Bad > 0 {
		return fmt.Errorf("%d bad lines skipped; every other line was imported", res.Bad)
	}
	return nil
}

// importResultJSON is the summary --json prints.
type importResultJSON struct {
	Done bool `json:"done"`
	importer.Counts
	ResumedAt    int64   `json:"resumed_at_line,omitempty"`
	ResumedPhase string  `json:"resumed_phase,omitempty"`
	ElapsedS     float64 `json:"elapsed_s"`
	Rate         float64 `json:"edges_per_s"`
	Seq          uint64  `json:"seq"`
}

func printImportResult(w io.Writer, asJSON bool, r importer.Result, done bool) {
	if asJSON {
		writeJSON(w, importResultJSON{Done: done, Counts: r.Counts, ResumedAt: r.ResumedAt, ResumedPhase: r.ResumedPhase,
			ElapsedS: r.Elapsed.Seconds(), Rate: r.Rate, Seq: r.LastSeq})
		return
	}
	status := "ok"
	if !done {
		status = "stopped"
	}
	resumed := ""
	if r.ResumedAt > 0 {
		resumed = fmt.Sprintf(" resumed_after_line=%d", r.ResumedAt)
	}
	fmt.Fprintf(w, "%s edges=%d nodes=%d lines=%d bad=%d existing=%d duplicates=%d envelopes=%d elapsed=%s rate=%.0f/s seq=%d%s\n",
		status, r.Edges, r.Nodes, r.Lines, r.Bad, r.Existing, r.Duplicates, r.Envelopes,
		r.Elapsed.Round(time.Millisecond), r.Rate, r.LastSeq, resumed)
}

// importOutput draws import's progress on stderr: a bar redrawn in place
// on a terminal, else a line (JSON with --json) every 5 seconds.
type importOutput struct {
	w     io.Writer
	tty   bool
	json  bool
	off   bool
	last  time.Time
	drawn bool // a bar is on the screen
}

func newImportOutput(w io.Writer, asJSON, off bool) *importOutput {
	o := &importOutput{w: w, json: asJSON, off: off, last: time.Now()}
	if f, ok := w.(*os.File); ok && !asJSON {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			o.tty = true
		}
	}
	return o
}

// line prints a line of text, above the bar.
func (o *importOutput) line(s string) {
	o.clear()
	fmt.Fprintln(o.w, s)
}

func (o *importOutput) clear() {
	if o.drawn {
		fmt.Fprint(o.w, "\r\033[K")
		o.drawn = false
	}
}

func (o *importOutput) progress(p importer.Progress) {
	if o.off {
		return
	}
	if o.tty {
		o.clear()
		fmt.Fprint(o.w, progressBar(p))
		o.drawn = true
		return
	}
	if p.Done || time.Since(o.last) < 5*time.Second {
		return
	}
	o.last = time.Now()
	if o.json {
		writeJSON(o.w, struct {
			Progress importer.Progress `json:"progress"`
		}{p})
		return
	}
	fmt.Fprintf(o.w, "import: %s %5.1f%% lines=%d edges=%d nodes=%d bad=%d rate=%.0f/s eta=%s\n",
		p.File, percent(p), p.Lines, p.Edges, p.Nodes, p.Bad, p.Rate, p.ETA.Round(time.Second))
}

// finish leaves the last bar on the screen, on its own line.
func (o *importOutput) finish() {
	if o.drawn {
		fmt.Fprintln(o.w)
		o.drawn = false
	}
}

func percent(p importer.Progress) float64 {
	if p.Total == 0 {
		return 100
	}
	return 100 * float64(p.Bytes) / float64(p.Total)
}

func progressBar(p importer.Progress) string {
	const width = 30
	pc := percent(p)
	n := int(pc / 100 * width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	eta := "ETA --"
	if p.ETA > 0 {
		eta = "ETA " + p.ETA.Round(time.Second).String()
	}
	if p.Done {
		eta = "in " + p.Elapsed.Round(100*time.Millisecond).String()
	}
	return fmt.Sprintf("[%s] %5.1f%%  %d lines  %d edges  %.0f edges/s  %s", bar, pc, p.Lines, p.Edges, p.Rate, eta)
}
