// Package metrics holds the engine's Prometheus instruments: the ones its
// hot paths update (commands, queries, appends, activations, snapshots)
// and the registry the engine's scrape-time collector joins (cairn.Open
// registers it when Config.Metrics is set). Every method is safe on a nil
// *Metrics, which records nothing: an engine without metrics pays one nil
// check per call site.
//
// Names follow Prometheus's conventions: the cairn_ prefix, base units
// (seconds, bytes), _total for counters. Labels are bounded: a command's
// or query's kind (the oneof of its message), an outcome code (the
// ErrorCode, lower case, or "ok"), a shard number. No series is per graph
// unless Options.Graphs asks for it, and then at most that many.
//
// The hot-path methods allocate nothing once a label combination has been
// seen: the counter of each (kind, code) is resolved once and kept in a
// fixed table.
package metrics

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/reflect/protoreflect"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Options configures New.
type Options struct {
	// Graphs, when above 0, adds cairn_graph_commands_total{graph} for the
	// first Graphs graphs that receive commands; the others are counted
	// under graph="_other". At most MaxGraphs. Default 0: no per-graph
	// series.
	Graphs int
	// Registry is where the instruments are registered; nil: a new one
	// with the Go runtime's and the process's collectors.
	Registry *prometheus.Registry
}

// MaxGraphs caps Options.Graphs.
const MaxGraphs = 1000

// OtherGraph is the graph label of the commands of graphs past
// Options.Graphs.
const OtherGraph = "_other"

// LatencyBuckets are the buckets of the command, append and query latency
// histograms, in seconds: 100 µs to 10 s.
var LatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics is the engine's instruments.
type Metrics struct {
	reg *prometheus.Registry

	commands   kindCodeCounters
	commandDur prometheus.Histogram
	duplicates prometheus.Counter
	oversized  prometheus.Counter

	appendDur    prometheus.Histogram
	batch        prometheus.Histogram
	appendErrors prometheus.Counter

	activationDur      prometheus.Histogram
	activationFailures prometheus.Counter
	passivations       prometheus.Counter
	snapshotPause      prometheus.Histogram
	snapshotBytes      prometheus.Histogram

	queries  kindCodeCounters
	queryDur [][2]prometheus.Observer // by query kind index, then ok and error

	archives    *prometheus.CounterVec
	archiveLast atomic.Int64 // unix nanos

	graphs *graphCounters // nil without Options.Graphs
}

// New returns the instruments, registered on opts.Registry or a new
// registry that also carries the Go runtime's and the process's metrics.
func New(opts Options) *Metrics {
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Metrics{reg: reg}
	f := factory{reg}
	m.commands = newKindCodeCounters(f.counterVec("cairn_commands_total",
		"Commands (each command of an envelope) by kind and the envelope's outcome code.", "kind", "code"), commandKinds)
	m.commandDur = f.histogram("cairn_command_duration_seconds",
		"Time from a command envelope's arrival at the engine to its reply.", LatencyBuckets)
	m.duplicates = f.counter("cairn_command_duplicates_total",
		"Command envelopes answered from the idempotency window (a retried command id).")
	m.oversized = f.counter("cairn_command_oversized_total",
		"Command envelopes refused because their transaction would exceed the store's largest message.")
	m.appendDur = f.histogram("cairn_append_duration_seconds",
		"One append of a transaction to the event stream, retries included.", LatencyBuckets)
	m.batch = f.histogram("cairn_append_batch_envelopes",
		"Command envelopes per appended transaction (group commit).", prometheus.ExponentialBuckets(1, 2, 11))
	m.appendErrors = f.counter("cairn_append_errors_total",
		"Appends that failed other than by a conflict (no acknowledgement in time, the store refused).")
	m.activationDur = f.histogram("cairn_grain_activation_duration_seconds",
		"Time a graph grain took to load its state (snapshot and replay).",
		[]float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60})
	m.activationFailures = f.counter("cairn_grain_activation_failures_total",
		"Graph grain loads that failed (the grain answers UNAVAILABLE or DATA_LOSS).")
	m.passivations = f.counter("cairn_grain_passivations_total",
		"Graph grains stopped after --passivate-after without commands.")
	m.snapshotPause = f.histogram("cairn_grain_snapshot_pause_seconds",
		"How long a graph grain blocked to capture a snapshot of its state.",
		[]float64{.0001, .0005, .001, .005, .01, .05, .1, .25, .5, 1, 2.5})
	m.snapshotBytes = f.histogram("cairn_grain_snapshot_bytes",
		"Size of each aggregate snapshot written, uncompressed.", prometheus.ExponentialBuckets(1024, 4, 11))
	m.queries = newKindCodeCounters(f.counterVec("cairn_queries_total",
		"Queries by kind and outcome code.", "kind", "code"), queryKinds)
	dur := f.histogramVec("cairn_query_duration_seconds",
		"Time from a query's arrival at the engine to its answer, by kind and outcome (ok, error).", LatencyBuckets, "kind", "outcome")
	m.queryDur = make([][2]prometheus.Observer, len(queryKinds.names))
	for i, n := range queryKinds.names {
		m.queryDur[i] = [2]prometheus.Observer{dur.WithLabelValues(n, "ok"), dur.WithLabelValues(n, "error")}
	}
	m.archives = f.counterVec("cairn_archive_runs_total", "Archive runs by outcome (ok, error).", "outcome")
	f.gaugeFunc("cairn_archive_last_timestamp_seconds", "Unix time of the last archive run that succeeded; 0 before any.",
		func() float64 { return unixSeconds(m.archiveLast.Load()) })
	if opts.Graphs > 0 {
		m.graphs = &graphCounters{max: min(opts.Graphs, MaxGraphs), byGraph: map[string]prometheus.Counter{},
			vec: f.counterVec("cairn_graph_commands_total", "Commands by graph, for the first --metrics-graphs graphs; the others under graph=\"_other\".", "graph")}
		m.graphs.other = m.graphs.vec.WithLabelValues(OtherGraph)
	}
	return m
}

// Registry returns the registry the instruments are on; the engine adds
// its collector to it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus's exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Command records one command envelope: its commands by kind with the
// reply's outcome, its latency, and whether it was a duplicate or refused
// as too large.
func (m *Metrics) Command(env *cairnv1.CommandEnvelope, rep *cairnv1.CommandReply, took time.Duration) {
	if m == nil {
		return
	}
	m.commandDur.Observe(took.Seconds())
	code := codeIndex(rep.GetError())
	for _, c := range env.GetCommands() {
		m.commands.inc(commandKinds.index(c.ProtoReflect()), code)
	}
	if rep.GetDuplicate() {
		m.duplicates.Inc()
	}
	if e := rep.GetError(); e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED && e.GetField() == "commands" {
		m.oversized.Inc()
	}
	if m.graphs != nil {
		m.graphs.add(env.GetGraphId(), len(env.GetCommands()))
	}
}

// Query records one query by kind and outcome, and its latency.
func (m *Metrics) Query(req *cairnv1.QueryRequest, rep *cairnv1.QueryReply, took time.Duration) {
	if m == nil {
		return
	}
	k, code := queryKinds.index(req.ProtoReflect()), codeIndex(rep.GetError())
	m.queryDur[k][min(code, 1)].Observe(took.Seconds())
	m.queries.inc(k, code)
}

// Append records one append of a transaction of commands commands: its
// duration and, unless it succeeded or conflicted, a failure.
func (m *Metrics) Append(took time.Duration, commands int, failed bool) {
	if m == nil {
		return
	}
	m.appendDur.Observe(took.Seconds())
	m.batch.Observe(float64(commands))
	if failed {
		m.appendErrors.Inc()
	}
}

// Activation records one load of a graph grain's state.
func (m *Metrics) Activation(took time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.activationFailures.Inc()
		return
	}
	m.activationDur.Observe(took.Seconds())
}

// Passivation records a grain stopped for idleness.
func (m *Metrics) Passivation() {
	if m != nil {
		m.passivations.Inc()
	}
}

// SnapshotPause records how long a grain blocked to capture a snapshot.
func (m *Metrics) SnapshotPause(took time.Duration) {
	if m != nil {
		m.snapshotPause.Observe(took.Seconds())
	}
}

// SnapshotWritten records the size of an aggregate snapshot written.
func (m *Metrics) SnapshotWritten(bytes int) {
	if m != nil {
		m.snapshotBytes.Observe(float64(bytes))
	}
}

// Archive records an archive run.
func (m *Metrics) Archive(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.archives.WithLabelValues("error").Inc()
		return
	}
	m.archives.WithLabelValues("ok").Inc()
	m.archiveLast.Store(time.Now().UnixNano())
}

func unixSeconds(ns int64) float64 {
	if ns == 0 {
		return 0
	}
	return float64(ns) / 1e9
}

// factory registers what it makes.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

func (f factory) gaugeFunc(name, help string, fn func() float64) {
	f.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// kinds names the cases of a message's oneof by field number; index 0 is
// "unknown" (none set, or a case this build does not know).
type kinds struct {
	oneof protoreflect.OneofDescriptor
	names []string // by index
	byNum []int    // field number -> index
}

func newKinds(md protoreflect.MessageDescriptor, oneof string) kinds {
	k := kinds{oneof: md.Oneofs().ByName(protoreflect.Name(oneof)), names: []string{"unknown"}}
	fields := k.oneof.Fields()
	maxNum := 0
	for i := range fields.Len() {
		maxNum = max(maxNum, int(fields.Get(i).Number()))
	}
	k.byNum = make([]int, maxNum+1)
	for i := range fields.Len() {
		fd := fields.Get(i)
		k.byNum[fd.Number()] = len(k.names)
		k.names = append(k.names, string(fd.Name()))
	}
	return k
}

func (k kinds) index(m protoreflect.Message) int {
	fd := m.WhichOneof(k.oneof)
	if fd == nil || int(fd.Number()) >= len(k.byNum) {
		return 0
	}
	return k.byNum[fd.Number()]
}

var (
	commandKinds = newKinds((&cairnv1.Command{}).ProtoReflect().Descriptor(), "kind")
	queryKinds   = newKinds((&cairnv1.QueryRequest{}).ProtoReflect().Descriptor(), "query")
	// codeNames is the code label by ErrorCode number: "ok" for none.
	codeNames = func() []string {
		vals := cairnv1.ErrorCode(0).Descriptor().Values()
		maxNum := 0
		for i := range vals.Len() {
			maxNum = max(maxNum, int(vals.Get(i).Number()))
		}
		names := make([]string, maxNum+2) // the last: a code this build does not know
		for i := range vals.Len() {
			v := vals.Get(i)
			names[v.Number()] = strings.ToLower(strings.TrimPrefix(string(v.Name()), "ERROR_CODE_"))
		}
		names[0], names[len(names)-1] = "ok", "unknown"
		return names
	}()
)

// CommandKinds and QueryKinds return the kind label values; Codes the code
// label values ("ok" first).
func CommandKinds() []string { return append([]string(nil), commandKinds.names...) }
func QueryKinds() []string   { return append([]string(nil), queryKinds.names...) }
func Codes() []string        { return append([]string(nil), codeNames...) }

func codeIndex(e *cairnv1.Error) int {
	if e == nil {
		return 0
	}
	if c := int(e.GetCode()); c > 0 && c < len(codeNames)-1 {
		return c
	}
	return len(codeNames) - 1 // no code, or one this build does not know
}

// kindCodeCounters resolves each (kind, code) counter of vec once.
type kindCodeCounters struct {
	vec   *prometheus.CounterVec
	kinds kinds
	cells []atomic.Pointer[prometheus.Counter] // kind × code
}

func newKindCodeCounters(vec *prometheus.CounterVec, k kinds) kindCodeCounters {
	return kindCodeCounters{vec: vec, kinds: k, cells: make([]atomic.Pointer[prometheus.Counter], len(k.names)*len(codeNames))}
}

func (c *kindCodeCounters) inc(kind, code int) {
	cell := &c.cells[kind*len(codeNames)+code]
	p := cell.Load()
	if p == nil {
		ctr := c.vec.WithLabelValues(c.kinds.names[kind], codeNames[code])
		cell.CompareAndSwap(nil, &ctr)
		p = cell.Load()
	}
	(*p).Inc()
}

// graphCounters counts commands by graph for the first max graphs.
type graphCounters struct {
	max     int
	vec     *prometheus.CounterVec
	other   prometheus.Counter
	mu      sync.RWMutex
	byGraph map[string]prometheus.Counter
}

func (g *graphCounters) add(graph string, n int) {
	g.mu.RLock()
	c, ok := g.byGraph[graph]
	full := len(g.byGraph) >= g.max
	g.mu.RUnlock()
	if !ok {
		if full {
			c = g.other
		} else {
			g.mu.Lock()
			if c, ok = g.byGraph[graph]; !ok {
				if len(g.byGraph) < g.max {
					c = g.vec.WithLabelValues(graph)
					g.byGraph[graph] = c
				} else {
					c = g.other
				}
			}
			g.mu.Unlock()
		}
	}
	c.Add(float64(n))
}
