package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/pgserver"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The peer scenario's parts that need no engine: /proc parsing, answer
// comparison, the goals and the report; and its PostgreSQL side against a
// reference model. The whole scenario (with a child cairn serve) runs in
// cmd/cairn (TestBenchPeer).

func TestParseProcStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (post gres: (x) idle) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 130 7 5 20 0 1 0 123 456789 100 18446744073709551615"
	st, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 17 || st.cpu != 3800*time.Millisecond || st.children != 120*time.Millisecond {
		t.Fatalf("got %+v, want ppid 17, cpu 3.8s, children 120ms", st)
	}
	for _, bad := range []string{"", "12 (x S 1", "12 (x) S 1 2 3", "12 (x) S one 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) took it", bad)
		}
	}
}

func TestParseSmapsRollup(t *testing.T) {
	b := []byte("00400000-7fff [rollup]\nRss:              10240 kB\nPss:               4096 kB\nPss_Anon:          1000 kB\nLazyFree:          2048 kB\n")
	m, err := parseSmapsRollup(b)
	if err != nil || m.RSS != 10<<20 || m.PSS != 4<<20 || m.LazyFree != 2<<20 {
		t.Fatalf("got %+v, %v; want RSS 10 MiB, PSS 4 MiB, LazyFree 2 MiB", m, err)
	}
	if _, err := parseSmapsRollup([]byte("Rss: 1 kB\n")); err == nil {
		t.Error("took a rollup without Pss")
	}
}

func TestProcessCPUAndMemOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("the peer scenario reads /proc (Linux): %v", err)
	}
	c0, err := processCPU(os.Getpid(), true)
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
		x++ // burn CPU for more than a few clock ticks
	}
	c1, err := processCPU(os.Getpid(), false)
	if err != nil || c1 < c0 || c1 == 0 {
		t.Fatalf("cpu %v then %v (%v), want growth", c0, c1, err)
	}
	m, err := processMem(os.Getpid(), true)
	if err != nil || m.RSS == 0 || m.PSS == 0 {
		t.Fatalf("memory %+v, %v", m, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "b"), make([]byte, 24), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := dirSize(dir); n != 1024 || err != nil {
		t.Fatalf("dirSize = %d, %v; want 1024", n, err)
	}
}

func TestEdgeSetIgnoresOrder(t *testing.T) {
	a := []peerEdge{{ID: 7, Node: 1, Type: 2}, {ID: 3, Node: 9, Type: -1}}
	b := []peerEdge{{ID: 3, Node: 9, Type: -1}, {ID: 7, Node: 1, Type: 2}}
	if edgeSet(a) != edgeSet(b) || edgeSet(a) != "{e3→n9 e7→n1/r2}" {
		t.Fatalf("%s vs %s", edgeSet(a), edgeSet(b))
	}
	if edgeSet(a) == edgeSet(a[:1]) || edgeSet(nil) != "{}" {
		t.Fatal("different pages compare equal")
	}
}

// A node with more edges than a page has many right first pages: the
// engine's is checked against all the node's edges, out-edges first.
func TestValidPage(t *testing.T) {
	// Node 0: out-edges e1→n1, e2→n2, e3→n3; in-edges e4←n4, e5←n5; a
	// self-loop e6 (in both lists, listed once).
	out := []peerEdge{{1, 1, 0}, {2, 2, 0}, {3, 3, 1}, {6, 0, 2}}
	in := []peerEdge{{4, 4, 0}, {5, 5, -1}, {6, 0, 2}}
	for _, tc := range []struct {
		name  string
		page  []peerEdge
		limit int
		ok    bool
	}{
		{"out-edges in another order", []peerEdge{{3, 3, 1}, {1, 1, 0}}, 2, true},
		{"all out, then in", []peerEdge{{6, 0, 2}, {2, 2, 0}, {1, 1, 0}, {3, 3, 1}, {5, 5, -1}}, 5, true},
		{"everything", []peerEdge{{1, 1, 0}, {2, 2, 0}, {3, 3, 1}, {6, 0, 2}, {4, 4, 0}, {5, 5, -1}}, 100, true},
		{"short page", []peerEdge{{1, 1, 0}}, 2, false},
		{"in-edge before the out-edges are done", []peerEdge{{4, 4, 0}, {1, 1, 0}}, 2, false},
		{"an edge twice", []peerEdge{{1, 1, 0}, {1, 1, 0}}, 2, false},
		{"not the node's edge", []peerEdge{{1, 1, 0}, {9, 9, 0}}, 2, false},
		{"wrong other end", []peerEdge{{1, 2, 0}, {2, 2, 0}}, 2, false},
		{"wrong type", []peerEdge{{1, 1, 3}, {2, 2, 0}}, 2, false},
		{"the self-loop twice", []peerEdge{{1, 1, 0}, {2, 2, 0}, {3, 3, 1}, {6, 0, 2}, {6, 0, 2}}, 5, false},
	} {
		if got := validPage(tc.page, out, in, tc.limit); got != tc.ok {
			t.Errorf("%s: validPage = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestNumericIDs(t *testing.T) {
	for _, tc := range []struct {
		id, prefix string
		want       int
		ok         bool
	}{
		{"n0", "n", 0, true}, {"n123", "n", 123, true}, {"e9", "e", 9, true},
		{"123", "n", 0, false}, {"x1", "n", 0, false}, {"n-1", "n", 0, false}, {"n", "n", 0, false},
	} {
		got, err := numericID(tc.id, tc.prefix)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("numericID(%q, %q) = %d, %v", tc.id, tc.prefix, got, err)
		}
	}
	for _, k := range []int{-1, 0, 3} {
		if got, err := edgeTypeNum(edgeTypeName(k)); got != k || err != nil {
			t.Errorf("edge type %d round trip: %d, %v", k, got, err)
		}
	}
}

func TestPeerConfigValidate(t *testing.T) {
	good := PeerConfig{Binary: "cairn", Workload: DefaultWorkload()}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.Binary, bad.Rounds, bad.PageSize, bad.Workload.Nodes, bad.Workload.Edges = "", -1, 5000, 1, 0
	err := bad.Validate()
	for _, want := range []string{"cairn binary", "rounds per round must be at least 1", "page size", "at least 2"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestPeerComparisonsGoals: each goal reads the right ratio, and a side
// without a figure meets no goal.
func TestPeerComparisonsGoals(t *testing.T) {
	r := &peerRun{cpu: map[string]time.Duration{"cairn:degree": 30 * time.Millisecond, "pg:degree": 20 * time.Millisecond},
		count: map[string]int{"cairn:degree": 1000, "pg:degree": 1000}}
	ops := []OpSummary{
		{Op: "cairn:degree", Count: 1000, P50MS: 0.12, P99MS: 0.5},
		{Op: "pg:degree", Count: 1000, P50MS: 0.1, P99MS: 0.4},
		{Op: "cairn:path", Count: 10, P50MS: 1, P99MS: 2},
		{Op: "pg:path", Count: 10, P50MS: 10, P99MS: 30},
	}
	loads := [2]phaseCost{{wall: 2 * time.Second, cpu: 3 * time.Second}, {wall: time.Second, cpu: time.Second}}
	foot := [2]footprint{{mem: procMem{RSS: 300 << 20}, disk: 10 << 20}, {mem: procMem{RSS: 500 << 20, PSS: 100 << 20}, disk: 50 << 20, db: 20 << 20}}
	cs := r.comparisons(ops, loads, foot, 300_000)
	want := map[string]bool{
		"degree p50": true, "degree p99": false, "degree server CPU per op": true, "path p99": true,
		"load rate": true, "server memory": true,
	}
	seen := map[string]bool{}
	for _, c := range cs {
		seen[c.Name] = true
		if w, ok := want[c.Name]; ok {
			if c.Met == nil || *c.Met != w {
				t.Errorf("%s: ratio %.2f, met %v, want %v", c.Name, c.Ratio, c.Met, w)
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no comparison %q", name)
		}
	}
	if seen["write p50"] || seen["neighbors p50"] {
		t.Error("comparisons for ops that did not run")
	}
	if i := slices.IndexFunc(cs, func(c Comparison) bool { return c.Name == "degree server CPU per op" }); cs[i].Engine != 30 || cs[i].Peer != 20 {
		t.Errorf("cpu per op = %+v, want 30 and 20 µs", cs[i])
	}
}

func TestPeerReportRendersComparisons(t *testing.T) {
	met, missed := true, false
	rep := &Report{Title: "peer", Scenarios: []ScenarioResult{{Scenario: "peer", Peer: "PostgreSQL 15.18", Comparisons: []Comparison{
		{Name: "degree p50", Unit: "ms", Engine: 0.2, Peer: 0.1, Ratio: 2, Goal: "≤ 1.3×", Met: &missed},
		{Name: "server memory", Unit: "MiB", Engine: 200, Peer: 100, Ratio: 2, Goal: "≤ 3×", Met: &met},
		{Name: "a | pipe", Unit: "s", Engine: 1},
	}}}}
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### Side by side with PostgreSQL 15.18", "| degree p50 | 0.200 | 0.100 | ms | 2.00× | ≤ 1.3× | ✗ |",
		"| server memory | 200 | 100 | MiB | 2.00× | ≤ 3× | ✓ |", `| a \| pipe | 1.00 | 0 | s | – |  | – |`} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	back, err := ReadReport(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Scenarios[0]; got.Peer != "PostgreSQL 15.18" || len(got.Comparisons) != 3 || *got.Comparisons[1].Met != true {
		t.Fatalf("read back %+v", got)
	}
}

// TestPGSideAgainstReference loads small graphs into a real PostgreSQL
// and checks every answer of the SQL side against a reference model
// built from the same workload in Go. It needs PostgreSQL (make deps
// installs it): without it the test fails, it never skips.
func TestPGSideAgainstReference(t *testing.T) {
	ctx := context.Background()
	srv, err := pgserver.Start(ctx)
	if errors.Is(err, pgserver.ErrNotInstalled) {
		t.Fatalf("%v: the peer scenario needs PostgreSQL", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := srv.Close(cctx); err != nil {
			t.Error(err)
		}
	})
	for i, shape := range []Shape{ShapeBA, ShapeUniform} {
		t.Run(string(shape), func(t *testing.T) {
			w := DefaultWorkload()
			w.Shape, w.Nodes, w.Edges, w.Seed = shape, 300, 700, uint64(10+i)
			// One schema per graph (cheaper than a database).
			schema := "g" + string(shape)
			pg, err := connectPG(ctx, srv.URL()+"&search_path="+schema, srv.Pid())
			if err != nil {
				t.Fatal(err)
			}
			defer pg.close(ctx)
			if _, err := pg.conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
				t.Fatal(err)
			}
			if err := pg.load(ctx, w); err != nil {
				t.Fatal(err)
			}
			ref := newRefGraph(t, w)
			// A written edge shows in every answer, as in the rounds.
			wr := peerWrite{ID: w.Edges, Src: 5, Dst: 0, Type: 1}
			if err := pg.connect(ctx, wr); err != nil {
				t.Fatal(err)
			}
			ref.add(wr)
			for n := range w.Nodes {
				d, err := pg.degree(ctx, n)
				if err != nil || d != ref.degree(n) {
					t.Fatalf("degree of n%d = %+v, %v; want %+v", n, d, err, ref.degree(n))
				}
				for _, limit := range []int{3, 100} {
					es, err := pg.neighbors(ctx, n, limit)
					if want := ref.neighbors(n, limit); err != nil || !slices.Equal(es, want) {
						t.Fatalf("neighbours of n%d, limit %d = %v, %v; want %v", n, limit, es, err, want)
					}
				}
				out, in, err := pg.allNeighbors(ctx, n)
				if all := ref.neighbors(n, w.Edges+1); err != nil || !validPage(all, out, in, w.Edges+1) {
					t.Fatalf("all neighbours of n%d = %v, %v, %v; want %v", n, out, in, err, all)
				}
				h, err := pg.twoHop(ctx, n)
				if err != nil || h != ref.twoHop(n) {
					t.Fatalf("2-hop of n%d = %d, %v; want %d", n, h, err, ref.twoHop(n))
				}
				to := (n*7919 + 13) % w.Nodes
				l, err := pg.path(ctx, n, to)
				if err != nil || l != ref.path(n, to) {
					t.Fatalf("path n%d→n%d = %d, %v; want %d", n, to, l, err, ref.path(n, to))
				}
			}
			if err := pg.ping(ctx); err != nil {
				t.Fatal(err)
			}
			cpu, err := pg.cpu()
			if err != nil || cpu <= 0 {
				t.Fatalf("server cpu %v, %v", cpu, err)
			}
		})
	}
}

// refGraph is the reference model: the edges in insertion (id) order.
type refGraph struct {
	nodes int
	edges []peerWrite
}

func newRefGraph(t *testing.T, w Workload) *refGraph {
	g := &refGraph{nodes: w.Nodes}
	err := w.Generate(100, func(cmds []*cairnv1.Command) error {
		for _, c := range cmds {
			if cn := c.GetConnectNodes(); cn != nil {
				row, err := pgEdgeRow(cn)
				if err != nil {
					return err
				}
				g.add(peerWrite{ID: int(row[0].(int32)), Src: int(row[1].(int32)), Dst: int(row[2].(int32)), Type: int(row[3].(int16))})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *refGraph) add(e peerWrite) { g.edges = append(g.edges, e) }

func (g *refGraph) degree(n int) degrees {
	var d degrees
	for _, e := range g.edges {
		if e.Src == n {
			d.Out++
		}
		if e.Dst == n {
			d.In++
		}
	}
	return d
}

// neighbors: out-edges then in-edges, each by id, the first limit.
func (g *refGraph) neighbors(n, limit int) []peerEdge {
	var out, in []peerEdge
	for _, e := range g.edges {
		if e.Src == n {
			out = append(out, peerEdge{ID: e.ID, Node: e.Dst, Type: e.Type})
		}
		if e.Dst == n {
			in = append(in, peerEdge{ID: e.ID, Node: e.Src, Type: e.Type})
		}
	}
	all := append(out, in...)
	return all[:min(limit, len(all))]
}

func (g *refGraph) twoHop(n int) int {
	reached := map[int]bool{}
	for _, e := range g.edges {
		if e.Src == n {
			reached[e.Dst] = true
			for _, f := range g.edges {
				if f.Src == e.Dst {
					reached[f.Dst] = true
				}
			}
		}
	}
	delete(reached, n)
	return len(reached)
}

// path is a plain BFS, edges followed both ways.
func (g *refGraph) path(from, to int) int {
	dist := map[int]int{from: 0}
	for front := []int{from}; len(front) > 0; {
		var next []int
		for _, x := range front {
			if x == to {
				return dist[x]
			}
			for _, e := range g.edges {
				for _, y := range [][2]int{{e.Src, e.Dst}, {e.Dst, e.Src}} {
					if y[0] != x {
						continue
					}
					if _, ok := dist[y[1]]; !ok {
						dist[y[1]] = dist[x] + 1
						next = append(next, y[1])
					}
				}
			}
		}
		front = next
	}
	return noPath
}
