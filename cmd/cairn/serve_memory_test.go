package main

import (
	"encoding/json"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/memlimit"
)

// serve's memory limit: the flag, else GOMEMLIMIT (as the runtime applied
// it), else the default; garbage is a usage error that says what is wrong.
func TestMemoryLimit(t *testing.T) {
	def, defFrom := memlimit.Default()
	for _, tc := range []struct {
		name       string
		flag       string
		given      bool
		env        string
		runtimeLim int64
		want       int64
		from, err  string
	}{
		{name: "flag GiB", flag: "2GiB", given: true, want: 2 << 30, from: "--memory-limit"},
		{name: "flag MB", flag: "1500MB", given: true, want: 1_500_000_000, from: "--memory-limit"},
		{name: "flag over GOMEMLIMIT", flag: "1GiB", given: true, env: "4GiB", runtimeLim: 4 << 30, want: 1 << 30, from: "--memory-limit"},
		{name: "flag off", flag: "off", given: true, want: math.MaxInt64, from: "--memory-limit"},
		{name: "GOMEMLIMIT", env: "3GiB", runtimeLim: 3 << 30, want: 3 << 30, from: "GOMEMLIMIT"},
		{name: "GOMEMLIMIT off", env: "off", runtimeLim: math.MaxInt64, want: math.MaxInt64, from: "GOMEMLIMIT"},
		{name: "default", runtimeLim: math.MaxInt64, want: def, from: defFrom},
		{name: "negative", flag: "-1", given: true, err: `"-1": must be positive`},
		{name: "unknown unit", flag: "12XB", given: true, err: `unknown unit "XB"`},
		{name: "zero", flag: "0", given: true, err: `"0": must be positive`},
		{name: "empty", flag: "", given: true, err: "empty"},
		{name: "too small", flag: "1MiB", given: true, err: "below the smallest limit, 64 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, from, err := memoryLimit(tc.flag, tc.given, tc.env, tc.runtimeLim)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one with %q", err, tc.err)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case got != tc.want || (tc.from != "" && from != tc.from):
				t.Errorf("%d from %q, want %d from %q", got, from, tc.want, tc.from)
			}
		})
	}
}

// A bad --memory-limit is a usage error (exit 2) naming the flag.
func TestServeMemoryLimitUsage(t *testing.T) {
	for _, v := range []string{"-1", "12XB", "0"} {
		r := runCLI(t, "serve", "--data", t.TempDir(), "--nats-listen", "none", "--memory-limit", v)
		if r.code() != exitUsage || !strings.Contains(r.stderr, "serve: --memory-limit: not a memory size: \""+v+"\"") {
			t.Errorf("--memory-limit %s: exit %d, stderr %q; want 2 and the flag named", v, r.code(), r.stderr)
		}
	}
}

// serve gives the Go runtime its --memory-limit while it runs (and puts
// the old one back), and cairn health reports the engine's memory: its
// RSS, Go heap, GC count and that limit.
func TestServeMemoryHealth(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	line, stop := serveInProcess(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--json", "--log-level", "warn", "--memory-limit", "1.5GiB")
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	var h struct {
		Memory *api.MemoryHealth `json:"memory"`
	}
	out := mustRun(t, "health", "--json", "--server", ready.NATS)
	if err := json.Unmarshal([]byte(out), &h); err != nil || h.Memory == nil {
		t.Fatalf("health --json: %v: %s", err, out)
	}
	m := h.Memory
	if m.LimitBytes != 3<<29 || m.RSSBytes == 0 || m.HeapAllocBytes == 0 || m.GoBytes < m.HeapInUseBytes {
		t.Errorf("memory %+v: want the 1.5 GiB limit, an RSS and a Go heap", *m)
	}
	text := mustRun(t, "health", "--server", ready.NATS)
	if !strings.Contains(text, "limit 1.5 GiB, GOGC ") || !strings.Contains(text, "memory: rss ") {
		t.Errorf("health:\n%s\nwant a memory line with the limit", text)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if now := debug.SetMemoryLimit(-1); now != before {
		t.Errorf("after serve the runtime's limit is %d, want %d back", now, before)
	}
}
