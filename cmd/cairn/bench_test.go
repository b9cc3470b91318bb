package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/bench"
	"github.com/cairn-graph/cairn/internal/memlimit"
	"github.com/cairn-graph/cairn/internal/testbin"
)

// TestBenchSuiteQuick is the smoke run of every scenario through the
// command line: the quick suite (ingest, mixed, recovery with a child
// `cairn serve` killed with SIGKILL, replay) on small graphs, and the
// report it writes.
func TestBenchSuiteQuick(t *testing.T) {
	bin := testbin.Cairn(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "suite", "--quick", "--rounds", "1", "--binary", bin, "--out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench suite: %v\nstderr:\n%s", err, stderr.String())
	}
	rep, err := bench.ReadReport(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rep.Scenarios {
		names = append(names, s.Scenario)
		if len(s.Ops) == 0 || len(s.Figures) == 0 {
			t.Errorf("%s: %d ops, %d figures", s.Scenario, len(s.Ops), len(s.Figures))
		}
		for _, o := range s.Ops {
			if o.Errors != 0 {
				t.Errorf("%s: %s had %d errors", s.Scenario, o.Op, o.Errors)
			}
		}
		for _, plot := range []string{"throughput", "latency", "latency-dist", "memory"} {
			f, err := os.Open(filepath.Join(out, s.Scenario+"-"+plot+".png"))
			if err != nil {
				t.Errorf("%s: %v", s.Scenario, err)
				continue
			}
			if _, err := png.Decode(f); err != nil {
				t.Errorf("%s-%s.png: %v", s.Scenario, plot, err)
			}
			f.Close()
		}
	}
	if got := strings.Join(names, ","); got != "ingest,mixed,recovery,replay" {
		t.Fatalf("scenarios = %s", got)
	}
	// The recovery scenario's memory is the child cairn serve's: its RSS,
	// and its heap and its own memory limit (serve's default; this test
	// process has none) from its stats.
	def, _ := memlimit.Default()
	rec := rep.Scenarios[2]
	if len(rec.Memory) == 0 || !strings.Contains(rec.MemorySource, "child cairn serve") {
		t.Errorf("recovery: %d memory samples from %q", len(rec.Memory), rec.MemorySource)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		def = 0 // the child's limit is the environment's
	}
	fromStats := 0
	for _, m := range rec.Memory {
		if m.RSSBytes == 0 || m.HeapBytes > 0 && def > 0 && m.LimitBytes != def {
			t.Errorf("recovery memory sample %+v: want the child's RSS and limit %d", m, def)
		}
		if m.HeapBytes > 0 {
			fromStats++ // a sample while the child starts has its RSS only
		}
	}
	if fromStats == 0 {
		t.Errorf("recovery: no memory sample from the child's stats in %+v", rec.Memory)
	}
	if len(rep.Scenarios[0].Baselines) == 0 || len(rep.Scenarios[2].Baselines) == 0 {
		t.Errorf("ingest or recovery has no baseline")
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil || !strings.Contains(string(md), "ingest-throughput.png") {
		t.Errorf("report.md: %v", err)
	}
	for _, want := range []string{"ingest (inprocess", "recovery (remote", "report: "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "== recovery") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
}

// TestBenchPeer is the smoke run of the peer scenario through the command
// line: a throwaway PostgreSQL and a child cairn serve (restarted with
// --sync-always for the durable writes) on a small graph. It needs
// PostgreSQL, which make deps installs: without it the test fails, it
// never skips.
func TestBenchPeer(t *testing.T) {
	bin := testbin.Cairn(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "peer", "--nodes", "300", "--edges", "900", "--rounds", "2", "--binary", bin, "--out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench peer: %v\nstderr:\n%s", err, stderr.String())
	}
	rep, err := bench.ReadReport(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 1 {
		t.Fatalf("%d scenarios, want peer alone", len(rep.Scenarios))
	}
	s := rep.Scenarios[0]
	if !strings.HasPrefix(s.Peer, "PostgreSQL ") {
		t.Errorf("peer = %q", s.Peer)
	}
	var ops []string
	for _, o := range s.Ops {
		ops = append(ops, o.Op)
		if o.Errors != 0 || o.Count == 0 {
			t.Errorf("%s: %d ops, %d errors", o.Op, o.Count, o.Errors)
		}
	}
	for _, kind := range []string{bench.PeerPing, bench.PeerDegree, bench.PeerNeighbors, bench.PeerTwoHop, bench.PeerPath, bench.PeerWrite, bench.PeerWriteDurable} {
		for _, side := range []string{"cairn:", "pg:"} {
			if !slices.Contains(ops, side+kind) {
				t.Errorf("no op %s%s in %v", side, kind, ops)
			}
		}
	}
	if len(s.Figures) == 0 || s.Figures[0].Name != "answers that disagree" || s.Figures[0].Value != 0 {
		t.Errorf("figures = %+v, want 0 disagreements first", s.Figures)
	}
	names := map[string]bench.Comparison{}
	for _, c := range s.Comparisons {
		names[c.Name] = c
	}
	for _, name := range []string{"ping p50", "degree p50", "degree server CPU per op", "path p99", "write-durable p50", "load rate", "data on disk", "server memory"} {
		c, ok := names[name]
		if !ok || c.Engine <= 0 && !strings.Contains(name, "CPU") || c.Peer <= 0 && !strings.Contains(name, "CPU") {
			t.Errorf("comparison %q = %+v", name, c)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil || !strings.Contains(string(md), "Side by side with PostgreSQL") {
		t.Errorf("report.md: %v", err)
	}
	if !strings.Contains(stdout.String(), "server memory") || !strings.Contains(stderr.String(), "--sync-always") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "sideways"}, `unknown scenario "sideways"`},
		{[]string{"bench", "ingest", "--memory-limit", "12XB"}, `--memory-limit: not a memory size: "12XB": unknown unit "XB"`},
		{[]string{"bench", "ingest", "--memory-limit", "-1"}, `"-1": must be positive`},
		{[]string{"bench", "ingest", "--driver", "remote", "--memory-limit", "1GiB"}, "set it on the remote cairn serve"},
		{[]string{"bench", "ingest", "--shape", "star"}, "--shape"},
		{[]string{"bench", "ingest", "--quick"}, "--quick is for the suite"},
		{[]string{"bench", "ingest", "--batch", "5000"}, "batch must be 1-1000"},
		{[]string{"bench", "recovery", "--driver", "remote"}, "takes no --driver remote"},
		{[]string{"bench", "ingest", "--server", "nats://x:1"}, "for --driver remote"},
		{[]string{"bench", "mixed", "--mix", "node=x"}, "--mix"},
		{[]string{"bench", "ingest", "--pg-bin", "/x"}, "are for peer"},
		{[]string{"bench", "peer", "--driver", "remote"}, "takes no --driver remote"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if exitCode(err) != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want usage error with %q", tc.args, exitCode(err), stderr.String(), tc.want)
		}
	}
}

// TestBenchChaosShort is the short chaos run of make test: three members
// (each a Cairn member and a NATS node, replicas 3, sync always) under
// commands, members killed with SIGKILL and restarted; every acknowledged
// command must be stored exactly once and every chain verify (the scenario
// fails otherwise), and the report carries the figures.
func TestBenchChaosShort(t *testing.T) {
	bin := testbin.Cairn(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "chaos", "--members", "3", "--duration", "14s", "--kill-every", "6s",
		"--graphs", "12", "--rate", "60", "--seed", "7", "--binary", bin, "--out", out, "--quiet"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench chaos: %v\nstderr:\n%s", err, stderr.String())
	}
	_, figs := readFigures(t, out)
	if figs["kills survived"] < 1 || figs["commands acknowledged"] < 100 {
		t.Errorf("figures %v: want a kill survived and commands acknowledged", figs)
	}
	if figs["acknowledged commands lost"] != 0 || figs["commands applied twice"] != 0 {
		t.Errorf("figures %v: lost or applied twice", figs)
	}
	if figs["member kills"] != figs["kills survived"] {
		t.Errorf("figures %v: every kill of the embedded mode is a member's", figs)
	}
	if _, ok := figs["NATS node kills"]; ok {
		t.Errorf("figures %v: NATS node kills without separate nodes", figs)
	}
	t.Logf("%v", figs)
	// Flags that are chaos's only, and bad values.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "chaos", "--nats", "2"}, "--nats 2: a NATS cluster of at least 3"},
		{[]string{"bench", "chaos", "--nats-down", "5s"}, "--nats-down is for separate NATS nodes"},
		{[]string{"bench", "chaos", "--nats", "3", "--members", "1"}, "members must be at least 2"},
		{[]string{"bench", "ingest", "--kill-every", "1s"}, "are for chaos"},
		{[]string{"bench", "ingest", "--nats-down", "1s"}, "are for chaos"},
	} {
		if err := run(context.Background(), tc.args, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestBenchChaosNATSShort is the short chaos run of make test on separate
// NATS nodes: three cairn nats-node processes (one NATS JetStream cluster,
// replicas 3, sync always) and three cairn serve members on it (each
// given every node's URL), under commands, while members, NATS nodes and
// the event stream's leader are killed with SIGKILL and restarted. It
// fails when a kind of kill never happened, when an acknowledged command
// is lost or applied twice, when a chain does not verify or a query
// through a node disagrees with the stream (the scenario fails on those),
// and when the report lacks the per-graph figures.
func TestBenchChaosNATSShort(t *testing.T) {
	bin := testbin.Cairn(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "chaos", "--nats", "3", "--members", "3", "--duration", "16s", "--kill-every", "2500ms",
		"--graphs", "12", "--rate", "60", "--seed", "7", "--binary", bin, "--out", out, "--quiet"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench chaos --nats 3: %v\nstderr:\n%s", err, stderr.String())
	}
	rep, figs := readFigures(t, out)
	t.Logf("%v", figs)
	for _, n := range rep.Scenarios[0].Notes {
		t.Log(n)
	}
	leader := figs["NATS stream-leader kills"]
	if figs["member kills"] < 1 || figs["NATS node kills"]-leader < 1 || leader < 1 {
		t.Errorf("figures %v: want at least one kill of a member, of a NATS node and of the stream's leader", figs)
	}
	if figs["kills survived"] != figs["member kills"]+figs["NATS node kills"] {
		t.Errorf("figures %v: kills survived is not the sum of the kinds", figs)
	}
	if figs["acknowledged commands lost"] != 0 || figs["commands applied twice"] != 0 || figs["commands acknowledged"] < 100 {
		t.Errorf("figures %v: lost, applied twice or too few acknowledged", figs)
	}
	if g := rep.Scenarios[0].PerGraph; len(g) != 12 || g[0].Commands == 0 || g[0].LongestS <= 0 || g[0].P99MS <= 0 {
		t.Errorf("per-graph figures %+v: want 12 graphs with their commands, p99 and longest unavailability", g)
	}
	if _, err := os.Stat(filepath.Join(out, "chaos-per-graph.png")); err != nil {
		t.Errorf("per-graph plot: %v", err)
	}
}

// TestBenchFailoverShort is the short failover run of make test: three
// members (each a Cairn member and a NATS node, replicas 3, sync always)
// under commands go through a member kill, a stream leader kill, a pause
// of twice the TTL and two restarts; the scenario fails when a fault does
// not heal, when the paused member does not fence itself, when a
// restarted member serves no graph, or when an acknowledged command is
// lost or applied twice. How fast each healed is measured, not asserted.
func TestBenchFailoverShort(t *testing.T) {
	bin := testbin.Cairn(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "failover", "--settle", "1s", "--restarts", "2",
		"--graphs", "24", "--rate", "60", "--binary", bin, "--out", out, "--quiet"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench failover: %v\nstderr:\n%s", err, stderr.String())
	}
	rep, figs := readFigures(t, out)
	for _, name := range []string{"member kill: its graphs accept commands again after", "stream leader kill: writes resume after"} {
		if v, ok := figs[name]; !ok || v <= 0 {
			t.Errorf("figure %q: %v, %v; want a time measured", name, v, ok)
		}
	}
	if figs["pause: fenced itself on resuming"] != 1 || figs["restarts: rejoined and served its share"] != 2 {
		t.Errorf("figures %v: want the paused member fenced and 2 restarts served", figs)
	}
	if figs["acknowledged commands lost"] != 0 || figs["commands applied twice"] != 0 || figs["commands acknowledged"] < 100 {
		t.Errorf("figures %v: lost, applied twice or too few acknowledged", figs)
	}
	t.Logf("%v", figs)
	for _, n := range rep.Scenarios[0].Notes {
		t.Log(n)
	}
	// Flags that are failover's only, and bad values.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "ingest", "--restarts", "2"}, "--restarts, --settle and --faults are for failover"},
		{[]string{"bench", "failover", "--faults", "member,leader"}, `fault "leader": want one of member, stream-leader, pause, restart`},
		{[]string{"bench", "failover", "--restarts", "0"}, "--restarts 0"},
		{[]string{"bench", "failover", "--settle", "0s"}, "--settle 0s"},
		{[]string{"bench", "failover", "--graphs", "2"}, "graphs 2"},
		{[]string{"bench", "failover", "--driver", "remote"}, "takes no --driver remote"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if exitCode(err) != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want usage error with %q", tc.args, exitCode(err), stderr.String(), tc.want)
		}
	}
}

// readFigures reads the report bench wrote under out and returns it with
// its one scenario's figures by name.
func readFigures(t *testing.T, out string) (*bench.Report, map[string]float64) {
	t.Helper()
	rep, err := bench.ReadReport(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 1 {
		t.Fatalf("%d scenarios in the report, want 1", len(rep.Scenarios))
	}
	figs := map[string]float64{}
	for _, f := range rep.Scenarios[0].Figures {
		figs[f.Name] = f.Value
	}
	return rep, figs
}
