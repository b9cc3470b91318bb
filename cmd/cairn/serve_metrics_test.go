package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/internal/testbin"
)

// TestServeMetrics runs serve with --metrics-listen: the ready line names
// the listener, /healthz and /readyz answer, /metrics counts the commands
// sent, and cairn health says the engine is ready.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	line, stop := serveInProcess(t, "--data", dir, "--nats-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--metrics-graphs", "5",
		"--pprof", "--json", "--log-level", "warn", "--log-format", "json")
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil || !strings.HasPrefix(ready.Metrics, "http://127.0.0.1:") {
		t.Fatalf("ready line %q (%v), want a metrics URL on 127.0.0.1", line, err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		return testbin.Get(t, ready.Metrics+path)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d %.80q", code, body)
	}
	if code, body := get("/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap: %d %.80q", code, body)
	}
	mustRun(t, "graph", "create", "m", "--server", ready.NATS)
	for _, n := range []string{"a", "b", "c"} {
		mustRun(t, "node", "add", "m", n, "--server", ready.NATS)
	}
	// Read the writes: the query waits until the projection applied seq 4.
	mustRun(t, "query", "node", "m", "a", "--min-seq", "4", "--server", ready.NATS)
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`cairn_commands_total{code="ok",kind="create_graph"} 1`,
		`cairn_commands_total{code="ok",kind="add_node"} 3`,
		`cairn_graph_commands_total{graph="m"} 4`,
		`cairn_ready 1`,
		`cairn_stream_head_seq 4`,
		`cairn_nats_connected 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, re := range []string{`(?m)^cairn_queries_total\{code="ok",kind="get_node"\} 1$`, `(?m)^process_resident_memory_bytes \d`, `(?m)^go_goroutines \d`} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("/metrics does not match %s", re)
		}
	}
	var h struct {
		Ready    bool     `json:"ready"`
		NotReady []string `json:"not_ready"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "health", "--server", ready.NATS, "--json")), &h); err != nil || !h.Ready || len(h.NotReady) > 0 {
		t.Errorf("cairn health --json: ready %v %v (%v)", h.Ready, h.NotReady, err)
	}
	if out := mustRun(t, "health", "--server", ready.NATS); !strings.HasPrefix(out, "ready: serving commands and queries\n") {
		t.Errorf("cairn health:\n%s", out)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestServeMetricsFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-graphs", "3"}, "--metrics-graphs needs --metrics-listen"},
		{[]string{"--metrics-listen", "127.0.0.1:0", "--metrics-graphs", "1001"}, "--metrics-graphs must be 0 to 1000"},
		{[]string{"--log-format", "xml"}, `--log-format "xml": want text or json`},
		{[]string{"--metrics-listen", "nohost"}, "--metrics-listen nohost"},
		{[]string{"--pprof"}, "--pprof needs --metrics-listen"},
		{[]string{"--metrics-listen", "0.0.0.0:0", "--pprof"}, "--pprof serves profiles"},
	} {
		res := runCLI(t, append([]string{"serve", "--data", t.TempDir(), "--nats-listen", "none"}, tc.args...)...)
		if res.err == nil || !strings.Contains(res.err.Error(), tc.want) {
			t.Errorf("serve %v: %v, want an error naming %q", tc.args, res.err, tc.want)
		}
	}
}
