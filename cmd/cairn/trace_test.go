package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/internal/tracing"
	"github.com/cairn-graph/cairn/internal/tracing/otlptest"
)

// TestServeTrace runs serve with --otlp-endpoint at an in-process OTLP
// receiver and writes with --trace: the trace id each write prints is the
// one of the engine's spans of that command.
func TestServeTrace(t *testing.T) {
	recv := otlptest.Start(t)
	line, stop := serveInProcess(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--json", "--log-level", "warn",
		"--otlp-endpoint", recv.URL, "--trace-sample", "0")
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	create := runCLI(t, "graph", "create", "tg", "--server", ready.NATS, "--trace")
	if create.err != nil {
		t.Fatalf("graph create --trace: %v\n%s", create.err, create.stderr)
	}
	m := regexp.MustCompile(`^trace ([0-9a-f]{32})\n$`).FindStringSubmatch(create.stderr)
	if m == nil {
		t.Fatalf("graph create --trace printed %q on stderr, want trace <32 hex digits>", create.stderr)
	}
	add := runCLI(t, "node", "add", "tg", "n1", "--server", ready.NATS, "--trace", "--json")
	var rep replyJSON
	if add.err != nil || json.Unmarshal([]byte(add.stdout), &rep) != nil || len(rep.TraceID) != 32 || add.stderr != "trace "+rep.TraceID+"\n" {
		t.Fatalf("node add --trace --json: %v: stdout %q stderr %q", add.err, add.stdout, add.stderr)
	}
	// Untraced: the sample ratio 0 keeps no trace of its own.
	mustRun(t, "node", "add", "tg", "n2", "--server", ready.NATS)
	if err := stop(); err != nil { // flushes the spans
		t.Fatalf("serve: %v", err)
	}
	traces := map[string][]string{}
	for _, s := range recv.Spans() {
		traces[s.TraceID] = append(traces[s.TraceID], s.Name)
	}
	for _, id := range []string{m[1], rep.TraceID} {
		names := strings.Join(traces[id], " ")
		for _, want := range []string{tracing.SpanCommand, tracing.SpanDispatch, tracing.SpanGrain, tracing.SpanAppend, tracing.SpanApply} {
			if !strings.Contains(names, want) {
				t.Errorf("trace %s has spans %q, want %s among them", id, names, want)
			}
		}
	}
	if len(traces) != 2 {
		t.Errorf("%d traces exported, want the 2 traced writes' (--trace-sample 0 keeps no other): %v", len(traces), traces)
	}
}

func TestOTLPEndpoint(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	for _, c := range []struct {
		flag string
		env  map[string]string
		want string
	}{
		{"", nil, ""},
		{"http://a:4318", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:4318"}, "http://a:4318"},
		{"", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:4318/"}, "http://b:4318/v1/traces"},
		{"", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/x"}, "http://c:4318/x"},
	} {
		if got := otlpEndpoint(c.flag, env(c.env)); got != c.want {
			t.Errorf("otlpEndpoint(%q, %v) = %q, want %q", c.flag, c.env, got, c.want)
		}
	}
}
