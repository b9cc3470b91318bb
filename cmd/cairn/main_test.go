package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/internal/enginetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// result is what one run printed and returned.
type result struct {
	stdout, stderr string
	err            error
}

func (r result) code() int { return exitCode(r.err) }

// runCLI runs one command line in-process.
func runCLI(t testing.TB, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	// A safety net only: each command's own --timeout bounds it (verify of
	// TestRemoveHubThenDeleteGraph takes its 4 minutes' worth under load).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := run(ctx, args, &out, &errOut)
	return result{stdout: out.String(), stderr: errOut.String(), err: err}
}

// mustRun runs a command line that must succeed and returns its stdout.
func mustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := runCLI(t, args...)
	if r.err != nil {
		t.Fatalf("cairn %s: %v\nstderr: %s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r.stdout
}

// openEngine starts an engine listening on a random local port.
func openEngine(t *testing.T) *cairn.Engine {
	return enginetest.Open(t, "127.0.0.1:0")
}

// openEngineNoSnapshots starts an engine that writes no snapshots, for
// transcripts that must not depend on when the engine takes one (the
// projections' first snapshot round races with the first write).
func openEngineNoSnapshots(t *testing.T) *cairn.Engine {
	t.Helper()
	cfg := cairn.DefaultConfig(t.TempDir())
	cfg.NATSListen = "127.0.0.1:0"
	cfg.DisableSnapshots = true
	return enginetest.OpenConfig(t, cfg)
}

var (
	cidRE  = regexp.MustCompile(`bafy[a-z2-7]{50,}`)
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	txRE   = regexp.MustCompile(`(tx=|tx |"tx_id":")([0-9A-Za-z]{22})`)
	// The engine process's memory (cairn health).
	memLineRE = regexp.MustCompile(`(?m)^memory: rss .*$`)
	memJSONRE = regexp.MustCompile(`"memory":\{[^{}]*\}`)
	// The audit's rounds and their duration (cairn health).
	auditLineRE = regexp.MustCompile(`(?m)^audit: \d+ rounds, last [0-9.]+ ms`)
	auditJSONRE = regexp.MustCompile(`"audits":\d+,"last_audit_ms":[0-9.e+-]+`)
)

// mask replaces what differs from run to run, CIDs, transaction ids,
// times and the engine's memory, by placeholders. Equal CIDs and equal transaction ids get equal
// placeholders, numbered in order of appearance, so that the chain's links
// stay visible.
func mask(s string) string {
	s = timeRE.ReplaceAllString(s, "<time>")
	s = memLineRE.ReplaceAllString(s, "memory: <memory>")
	s = memJSONRE.ReplaceAllString(s, `"memory":<memory>`)
	s = auditLineRE.ReplaceAllString(s, "audit: <rounds>")
	s = auditJSONRE.ReplaceAllString(s, `"audits":<rounds>`)
	cids := map[string]string{}
	s = cidRE.ReplaceAllStringFunc(s, func(c string) string {
		if _, ok := cids[c]; !ok {
			cids[c] = fmt.Sprintf("<cid-%d>", len(cids)+1)
		}
		return cids[c]
	})
	txs := map[string]string{}
	return txRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := txRE.FindStringSubmatch(m)
		if _, ok := txs[sub[2]]; !ok {
			txs[sub[2]] = fmt.Sprintf("<tx-%d>", len(txs)+1)
		}
		return sub[1] + txs[sub[2]]
	})
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update to accept):\n%s", path, diff(string(want), got))
	}
}

// diff shows the first differing lines of want and got.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := runCLI(t, args...)
		if r.err != nil || r.stderr != "" {
			t.Fatalf("cairn %v: err %v, stderr %q", args, r.err, r.stderr)
		}
		golden(t, "help.golden", r.stdout)
	}
	for _, topic := range []string{"serve", "nats-node", "graph", "node", "edge", "log", "verify", "query", "history", "diff", "archive", "view", "backup", "restore", "adapter"} {
		r := runCLI(t, "help", topic)
		if r.err != nil || !strings.Contains(r.stdout, "cairn "+topic) {
			t.Errorf("cairn help %s: err %v, stdout %q", topic, r.err, r.stdout)
		}
		if sub := runCLI(t, topic, "--help"); sub.err != nil || sub.stdout != r.stdout {
			t.Errorf("cairn %s --help differs from cairn help %s (err %v)", topic, topic, sub.err)
		}
	}
	r := runCLI(t)
	if r.code() != exitUsage || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("cairn without arguments: exit %d, stderr %q", r.code(), r.stderr)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		pos     []string
		comps   string
		typ     string
		verbose bool
		usage   bool
	}{
		{args: []string{"g", "n"}, pos: []string{"g", "n"}},
		{args: []string{"g", "n", "--component", "a=b"}, pos: []string{"g", "n"}, comps: "a=b"},
		{args: []string{"--component", "a=b", "g", "--type=t", "n", "-component", "c=d=e"}, pos: []string{"g", "n"}, comps: "a=b,c=d=e", typ: "t"},
		{args: []string{"g", "--verbose", "n"}, pos: []string{"g", "n"}, verbose: true},
		{args: []string{"g", "--verbose=false", "n"}, pos: []string{"g", "n"}},
		{args: []string{"g", "--type", "--", "n"}, pos: []string{"g", "n"}, typ: "--"},
		{args: []string{"g", "--", "-n"}, pos: []string{"g", "-n"}},
		{args: []string{"--", "g", "--type"}, pos: []string{"g", "--type"}},
		{args: []string{"g", "-", "--type", "x"}, pos: []string{"g", "-"}, typ: "x"},
		{args: []string{"g"}, usage: true},
		{args: []string{"g", "n", "m"}, usage: true},
		{args: []string{"g", "n", "--type"}, usage: true},
		{args: []string{"g", "n", "--nope"}, usage: true},
		{args: []string{"g", "n", "--component", "novalue"}, usage: true},
		{args: []string{"g", "n", "--component", "=v"}, usage: true},
	}
	for _, tt := range tests {
		fs := newFlagSet("test")
		var comps componentsFlag
		fs.Var(&comps, "component", "")
		typ := fs.String("type", "", "")
		verbose := fs.Bool("verbose", false, "")
		pos, err := parseArgs(fs, "test", tt.args, "graph", "node")
		if tt.usage {
			if exitCode(err) != exitUsage {
				t.Errorf("%q: err %v, want a usage error", tt.args, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if strings.Join(pos, "|") != strings.Join(tt.pos, "|") || comps.String() != tt.comps || *typ != tt.typ || *verbose != tt.verbose {
			t.Errorf("%q: pos %q comps %q type %q verbose %v; want %q %q %q %v",
				tt.args, pos, comps.String(), *typ, *verbose, tt.pos, tt.comps, tt.typ, tt.verbose)
		}
	}
}
