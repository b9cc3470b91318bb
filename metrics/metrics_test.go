package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/metrics"
)

func TestCommandLabels(t *testing.T) {
	m := metrics.New(metrics.Options{Registry: prometheus.NewRegistry()})
	env := cmdtest.Envelope("g", "c1", cmdtest.AddNode("a"), cmdtest.AddNode("b"), cmdtest.Connect("e", "a", "b"))
	m.Command(env, &cairnv1.CommandReply{}, time.Millisecond)
	m.Command(env, &cairnv1.CommandReply{Duplicate: true}, time.Millisecond)
	m.Command(cmdtest.Envelope("g", "c2", cmdtest.RemoveNode("a")), &cairnv1.CommandReply{Error: &cairnv1.Error{Code: cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND}}, time.Millisecond)
	m.Command(cmdtest.Envelope("g", "c3", cmdtest.AddNode("x")), &cairnv1.CommandReply{Error: &cairnv1.Error{Code: cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, Field: "commands"}}, time.Millisecond)
	m.Command(cmdtest.Envelope("g", "c4", &cairnv1.Command{}), &cairnv1.CommandReply{Error: &cairnv1.Error{Code: 99}}, time.Millisecond)
	want := `
# HELP cairn_commands_total Commands (each command of an envelope) by kind and the envelope's outcome code.
# TYPE cairn_commands_total counter
cairn_commands_total{code="ok",kind="add_node"} 4
cairn_commands_total{code="ok",kind="connect_nodes"} 2
cairn_commands_total{code="not_found",kind="remove_node"} 1
cairn_commands_total{code="resource_exhausted",kind="add_node"} 1
cairn_commands_total{code="unknown",kind="unknown"} 1
# HELP cairn_command_duplicates_total Command envelopes answered from the idempotency window (a retried command id).
# TYPE cairn_command_duplicates_total counter
cairn_command_duplicates_total 1
# HELP cairn_command_oversized_total Command envelopes refused because their transaction would exceed the store's largest message.
# TYPE cairn_command_oversized_total counter
cairn_command_oversized_total 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"cairn_commands_total", "cairn_command_duplicates_total", "cairn_command_oversized_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.Registry(), "cairn_command_duration_seconds"); n != 1 {
		t.Errorf("command duration: %d series, want 1", n)
	}
}

func TestQueryLabels(t *testing.T) {
	m := metrics.New(metrics.Options{Registry: prometheus.NewRegistry()})
	q := &cairnv1.QueryRequest{GraphId: "g", Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "a"}}}
	m.Query(q, &cairnv1.QueryReply{}, 2*time.Millisecond)
	m.Query(q, &cairnv1.QueryReply{Error: &cairnv1.Error{Code: cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND}}, time.Millisecond)
	want := `
# HELP cairn_queries_total Queries by kind and outcome code.
# TYPE cairn_queries_total counter
cairn_queries_total{code="not_found",kind="get_node"} 1
cairn_queries_total{code="ok",kind="get_node"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "cairn_queries_total"); err != nil {
		t.Error(err)
	}
}

// The hot paths allocate nothing once their series exist.
func TestNoAllocations(t *testing.T) {
	m := metrics.New(metrics.Options{Registry: prometheus.NewRegistry()})
	env := cmdtest.Envelope("g", "c1", cmdtest.AddNode("a"))
	rep := &cairnv1.CommandReply{}
	q := &cairnv1.QueryRequest{GraphId: "g", Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "a"}}}
	qrep := &cairnv1.QueryReply{}
	m.Command(env, rep, time.Millisecond)
	m.Query(q, qrep, time.Millisecond)
	for name, f := range map[string]func(){
		"Command":       func() { m.Command(env, rep, time.Millisecond) },
		"Query":         func() { m.Query(q, qrep, time.Millisecond) },
		"Append":        func() { m.Append(time.Millisecond, 3, false) },
		"Activation":    func() { m.Activation(time.Millisecond, nil) },
		"SnapshotPause": func() { m.SnapshotPause(time.Millisecond) },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %.1f allocations per call, want 0", name, n)
		}
	}
	var none *metrics.Metrics
	if n := testing.AllocsPerRun(1000, func() { none.Command(env, rep, time.Millisecond) }); n != 0 {
		t.Errorf("nil Metrics: %.1f allocations per call, want 0", n)
	}
}

func TestPerGraphCap(t *testing.T) {
	m := metrics.New(metrics.Options{Registry: prometheus.NewRegistry(), Graphs: 2})
	for _, g := range []string{"a", "b", "c", "a", "d"} {
		m.Command(cmdtest.Envelope(g, "c", cmdtest.AddNode("n")), &cairnv1.CommandReply{}, time.Millisecond)
	}
	want := `
# HELP cairn_graph_commands_total Commands by graph, for the first --metrics-graphs graphs; the others under graph="_other".
# TYPE cairn_graph_commands_total counter
cairn_graph_commands_total{graph="_other"} 2
cairn_graph_commands_total{graph="a"} 2
cairn_graph_commands_total{graph="b"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "cairn_graph_commands_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(metrics.New(metrics.Options{Registry: prometheus.NewRegistry()}).Registry(), "cairn_graph_commands_total"); n != 0 {
		t.Errorf("without Options.Graphs: %d per-graph series", n)
	}
}

// Every metric the package registers has the cairn_ prefix and a help
// text, and a new registry also carries the Go runtime's and the
// process's metrics.
func TestNamesAndDefaults(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.Command(cmdtest.Envelope("g", "c", cmdtest.AddNode("n")), &cairnv1.CommandReply{}, time.Millisecond)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		seen[strings.SplitN(n, "_", 2)[0]] = true
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", n)
		}
		if strings.HasPrefix(n, "cairn_") && mf.GetType().String() == "COUNTER" && !strings.HasSuffix(n, "_total") {
			t.Errorf("counter %s does not end in _total", n)
		}
	}
	for _, p := range []string{"cairn", "go", "process"} {
		if !seen[p] {
			t.Errorf("no %s_ metrics in %v", p, seen)
		}
	}
}

// BenchmarkHotPath is what the metrics add to one single-command write
// and one query: Command (the envelope's counter, latency, duplicate and
// oversized checks), Append (latency, batch size) and Query, with the two
// time.Now calls each takes. Compare with cpu-us/event of the root
// package's write benchmarks (about 100 µs on the 2-core reference
// machine).
func BenchmarkHotPath(b *testing.B) {
	m := metrics.New(metrics.Options{Registry: prometheus.NewRegistry()})
	env := cmdtest.Envelope("g", "c1", cmdtest.AddNode("a"))
	rep := &cairnv1.CommandReply{}
	q := &cairnv1.QueryRequest{GraphId: "g", Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "a"}}}
	qrep := &cairnv1.QueryReply{}
	b.Run("command", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			m.Append(time.Since(start), 1, false)
			m.Command(env, rep, time.Since(start))
		}
	})
	b.Run("query", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			m.Query(q, qrep, time.Since(start))
		}
	})
}
