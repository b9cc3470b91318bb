package importer_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/importer"
	"github.com/cairn-graph/cairn/internal/enginetest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

type edge struct{ src, dst, typ string }

// graphState is a graph as the read model shows it: node ids, and edges
// by id.
type graphState struct {
	nodes map[string]bool
	edges map[string]edge
}

// specialIDs are ids a real file uses.
var specialIDs = []string{"libstdc++6", "python3.11", "a:b/c@d+e", "ü-utf8", "gcc-14_base", "x.y,z", "@scope/pkg", "C#", "100%", "q\"uote", "ß"}

// genEdges returns n distinct edges among about n/4 nodes, the special ids
// among them, drawn from seed.
func genEdges(seed uint64, n int) []edge {
	rng := rand.New(rand.NewPCG(seed, 1))
	nodes := slices.Clone(specialIDs)
	for len(nodes) < max(n/4, 20) {
		nodes = append(nodes, fmt.Sprintf("pkg%d", len(nodes)))
	}
	seen := map[edge]bool{}
	var out []edge
	for len(out) < n {
		e := edge{src: nodes[rng.IntN(len(nodes))], dst: nodes[rng.IntN(len(nodes))]}
		if rng.IntN(5) == 0 {
			e.typ = "depends"
		}
		k := edge{src: e.src, dst: e.dst}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}

func want(edges []edge) graphState {
	g := graphState{nodes: map[string]bool{}, edges: map[string]edge{}}
	for _, e := range edges {
		g.nodes[e.src], g.nodes[e.dst] = true, true
		g.edges[importer.EdgeID(e.src, e.dst, e.typ)] = e
	}
	return g
}

// writeEdgeList writes edges as an edge list with comments, blank lines,
// tabs and CRLF line ends mixed in.
func writeEdgeList(t *testing.T, dir string, edges []edge) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# generated edge list\n\n")
	for i, e := range edges {
		sep := " "
		if i%7 == 0 {
			sep = "\t"
		}
		b.WriteString(e.src + sep + e.dst)
		if e.typ != "" {
			b.WriteString(sep + e.typ)
		}
		if i%11 == 0 {
			b.WriteString("\r")
		}
		b.WriteString("\n")
		if i%500 == 0 {
			b.WriteString("   # a comment\n\n")
		}
	}
	return writeFile(t, dir, "edges.txt", b.String())
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func config(t *testing.T) importer.Config {
	cfg := importer.DefaultConfig()
	cfg.Create = true
	cfg.Checkpoint = filepath.Join(t.TempDir(), "ckpt")
	return cfg
}

func query(t *testing.T, eng *cairn.Engine, graph string, seq uint64, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	t.Helper()
	req.GraphId, req.MinSeq = graph, seq
	rep, err := eng.Query(context.Background(), req)
	if err != nil {
		t.Fatalf("query %v: %v", req, err)
	}
	return rep
}

// readGraph reads every node of nodes and every out-edge at them back from
// the read model, and checks the graph's counts and chain position: one
// event for the graph, one per node and one per edge, so nothing was
// applied twice.
func readGraph(t *testing.T, eng *cairn.Engine, graph string, seq uint64, nodes map[string]bool) graphState {
	t.Helper()
	return readGraphExtra(t, eng, graph, seq, nodes, 0)
}

// readGraphExtra is readGraph for a graph with extra events besides the
// graph's, the nodes' and the edges' (components set later).
func readGraphExtra(t *testing.T, eng *cairn.Engine, graph string, seq uint64, nodes map[string]bool, extra int) graphState {
	t.Helper()
	got := graphState{nodes: map[string]bool{}, edges: map[string]edge{}}
	for n := range nodes {
		rep := query(t, eng, graph, seq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: n}}})
		got.nodes[rep.GetNode().GetNodeId()] = true
		cursor := ""
		for {
			rep := query(t, eng, graph, seq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ListNeighbors{ListNeighbors: &cairnv1.ListNeighbors{
				NodeId: n, Direction: cairnv1.Direction_DIRECTION_OUT, Cursor: cursor, Limit: 1000}}})
			for _, nb := range rep.GetNeighbors().GetNeighbors() {
				got.edges[nb.GetEdgeId()] = edge{src: n, dst: nb.GetNodeId(), typ: nb.GetEdgeType()}
			}
			if cursor = rep.GetNeighbors().GetNextCursor(); cursor == "" {
				break
			}
		}
	}
	rep := query(t, eng, graph, seq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
	st := rep.GetStats()
	if st.GetNodes() != uint64(len(nodes)) || st.GetEdges() != uint64(len(got.edges)) {
		t.Errorf("stats: %d nodes, %d edges; read back %d nodes, %d edges", st.GetNodes(), st.GetEdges(), len(nodes), len(got.edges))
	}
	if want := uint64(1 + len(nodes) + len(got.edges) + extra); rep.GetPosition() != want {
		t.Errorf("chain position %d, want %d (graph + nodes + edges): an event was applied twice", rep.GetPosition(), want)
	}
	return got
}

func checkGraph(t *testing.T, got, want graphState) {
	t.Helper()
	if !maps.Equal(got.nodes, want.nodes) {
		t.Errorf("nodes differ: got %d, want %d", len(got.nodes), len(want.nodes))
	}
	if !maps.Equal(got.edges, want.edges) {
		n := 0
		for id, e := range want.edges {
			if got.edges[id] != e && n < 5 {
				t.Errorf("edge %q: got %+v, want %+v", id, got.edges[id], e)
				n++
			}
		}
		t.Errorf("edges differ: got %d, want %d", len(got.edges), len(want.edges))
	}
}

func TestImportEdgeListRoundTrip(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	edges := genEdges(1, 3000)
	path := writeEdgeList(t, t.TempDir(), edges)
	cfg := config(t)
	var progress []importer.Progress
	cfg.OnProgress = func(p importer.Progress) { progress = append(progress, p) }
	cfg.OnBadLine = func(le *importer.LineError) { t.Errorf("bad line: %v", le) }
	res, err := importer.Run(context.Background(), eng, "rt", path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := want(edges)
	if res.Edges != int64(len(edges)) || res.Bad != 0 || res.Existing != 0 || res.Duplicates != 0 {
		t.Errorf("result %+v, want %d edges and nothing else", res.Counts, len(edges))
	}
	checkGraph(t, readGraph(t, eng, "rt", res.LastSeq, w.nodes), w)
	if len(progress) == 0 || !progress[len(progress)-1].Done || progress[len(progress)-1].Bytes != progress[len(progress)-1].Total {
		t.Errorf("last progress %+v, want done with every byte", progress[len(progress)-1])
	}
	if _, err := os.Stat(cfg.Checkpoint); !os.IsNotExist(err) {
		t.Errorf("checkpoint left after a complete import: %v", err)
	}

	// The same file again: the same command ids, answered as duplicates.
	res, err = importer.Run(context.Background(), eng, "rt", path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != res.Envelopes || res.Edges != int64(len(edges)) {
		t.Errorf("the same import again: %+v, want every envelope a duplicate", res.Counts)
	}
	// The same edges in another file write nothing: every line exists.
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	other := writeFile(t, t.TempDir(), "again.txt", "# the same edges\n"+string(text[:strings.LastIndexByte(string(text[:len(text)/10]), '\n')+1]))
	res, err = importer.Run(context.Background(), eng, "rt", other, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Existing == 0 || res.Edges != 0 || res.Bad != 0 {
		t.Errorf("another file with the same edges: %+v, want only existing ones", res.Counts)
	}
	checkGraph(t, readGraph(t, eng, "rt", res.LastSeq, w.nodes), w)
}

func TestImportNeedsGraph(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	path := writeFile(t, t.TempDir(), "e.txt", "a b\n")
	cfg := config(t)
	cfg.Create = false
	if _, err := importer.Run(context.Background(), eng, "nope", path, cfg); !errors.Is(err, importer.ErrNoGraph) {
		t.Fatalf("err = %v, want ErrNoGraph", err)
	}
}

func TestImportBadLines(t *testing.T) {
	text := "a b\n" + // 1
		"# comment\n" + // 2
		"only\n" + // 3
		"x\x01 y\n" + // 4: a control character
		"c d e f\n" + // 5: too many fields
		"\n" + // 6
		"e f\n" + // 7
		strings.Repeat("z", 300) + " f\n" + // 8: id too long
		"a b\n" // 9: exists
	for _, tc := range []struct {
		name    string
		strict  bool
		bad     []int64
		edges   []edge
		wantErr bool
	}{
		{"lenient", false, []int64{3, 4, 5, 8}, []edge{{"a", "b", ""}, {"e", "f", ""}}, false},
		{"strict", true, []int64{3}, []edge{{"a", "b", ""}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := enginetest.Open(t, persistence.ListenNone)
			path := writeFile(t, t.TempDir(), "e.txt", text)
			cfg := config(t)
			cfg.Strict = tc.strict
			cfg.BatchSize = 2
			var bad []int64
			cfg.OnBadLine = func(le *importer.LineError) {
				if le.File != path {
					t.Errorf("bad line file %q", le.File)
				}
				bad = append(bad, le.Line)
			}
			for run := range 2 { // a strict import stops at the same line again
				bad = nil
				res, err := importer.Run(context.Background(), eng, "g", path, cfg)
				var le *importer.LineError
				if tc.wantErr != errors.As(err, &le) || (tc.wantErr && le.Line != tc.bad[0]) {
					t.Fatalf("run %d: err = %v", run, err)
				}
				if !tc.wantErr && err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(bad, tc.bad) {
					t.Errorf("run %d: bad lines %v, want %v", run, bad, tc.bad)
				}
				if run == 0 && res.Bad != int64(len(tc.bad)) {
					t.Errorf("result counts %d bad lines, want %d", res.Bad, len(tc.bad))
				}
				if !tc.wantErr && run == 0 && res.Existing != 1 {
					t.Errorf("existing = %d, want 1", res.Existing)
				}
				w := want(tc.edges)
				checkGraph(t, readGraph(t, eng, "g", res.LastSeq, w.nodes), w)
				if !tc.strict {
					break
				}
			}
		})
	}
}

// cancelAfter is the engine, with ctx cancelled after n envelopes were
// acknowledged.
type cancelAfter struct {
	eng    *cairn.Engine
	n      int64
	calls  atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Execute(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	rep, err := c.eng.Execute(ctx, env)
	if c.calls.Add(1) == c.n {
		c.cancel()
	}
	return rep, err
}

func interrupted(t *testing.T, eng *cairn.Engine, path string, cfg importer.Config, after int64) importer.Result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := importer.Run(ctx, &cancelAfter{eng: eng, n: after, cancel: cancel}, "g", path, cfg)
	if !errors.Is(err, importer.ErrInterrupted) {
		t.Fatalf("interrupted import: err = %v, want ErrInterrupted", err)
	}
	if _, err := os.Stat(cfg.Checkpoint); err != nil {
		t.Fatalf("no checkpoint after an interruption: %v", err)
	}
	return res
}

func TestImportResumesAfterInterruption(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	edges := genEdges(2, 2000)
	path := writeEdgeList(t, t.TempDir(), edges)
	cfg := config(t)
	cfg.BatchSize = 100
	first := interrupted(t, eng, path, cfg, 5)
	if first.Edges == 0 || first.Edges >= int64(len(edges)) {
		t.Fatalf("interrupted import imported %d of %d edges", first.Edges, len(edges))
	}
	res, err := importer.Run(context.Background(), eng, "g", path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedAt == 0 {
		t.Error("the second run did not resume")
	}
	if res.Edges != int64(len(edges)) || res.Duplicates != 0 || res.Existing != 0 {
		t.Errorf("result %+v, want %d edges, no duplicates", res.Counts, len(edges))
	}
	w := want(edges)
	checkGraph(t, readGraph(t, eng, "g", res.LastSeq, w.nodes), w)
}

// TestImportKilledBeforeCheckpoint: the process died after envelopes were
// applied and before the checkpoint recorded them; the next run sends them
// again and they come back as duplicates.
func TestImportKilledBeforeCheckpoint(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	edges := genEdges(3, 2000)
	path := writeEdgeList(t, t.TempDir(), edges)
	cfg := config(t)
	cfg.BatchSize = 100
	interrupted(t, eng, path, cfg, 3)
	old, err := os.ReadFile(cfg.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	interrupted(t, eng, path, cfg, 4)
	if err := os.WriteFile(cfg.Checkpoint, old, 0o644); err != nil { // the older checkpoint
		t.Fatal(err)
	}
	res, err := importer.Run(context.Background(), eng, "g", path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates < 3 {
		t.Errorf("duplicates = %d, want at least 3", res.Duplicates)
	}
	if res.Edges != int64(len(edges)) || res.Existing != 0 {
		t.Errorf("result %+v, want %d edges", res.Counts, len(edges))
	}
	w := want(edges)
	checkGraph(t, readGraph(t, eng, "g", res.LastSeq, w.nodes), w)
}

func TestImportCSV(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	dir := t.TempDir()
	nodes := writeFile(t, dir, "nodes.csv", "\ufeffid,categories,version,note\n"+
		"python3.11,lang;runtime,3.11,\n"+ // 2
		"libstdc++6,lib,14.2,\"multi\nline, with comma\"\n"+ // 3-4
		"bad,row\n"+ // 5: field count
		"a:b/c@d+e,,,plain\n") // 6
	edges := writeFile(t, dir, "edges.csv", "source,target,type,weight\n"+
		"python3.11,libstdc++6,depends,1\n"+
		"python3.11,libc6,depends,\n"+ // libc6 only named by an edge
		"libc6,libc6,,2\n"+
		"\x01,x,,\n") // 5: control character
	cfg := config(t)
	cfg.NodesFile = nodes
	var bad []string
	cfg.OnBadLine = func(le *importer.LineError) { bad = append(bad, fmt.Sprintf("%s:%d", filepath.Base(le.File), le.Line)) }
	res, err := importer.Run(context.Background(), eng, "g", edges, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"nodes.csv:5", "edges.csv:5"}; !slices.Equal(bad, want) {
		t.Errorf("bad lines %v, want %v", bad, want)
	}
	if res.Nodes != 3 || res.Edges != 3 || res.Bad != 2 {
		t.Errorf("result %+v, want 3 nodes, 3 edges, 2 bad lines", res.Counts)
	}
	w := graphState{nodes: map[string]bool{"python3.11": true, "libstdc++6": true, "a:b/c@d+e": true, "libc6": true}, edges: map[string]edge{
		"python3.11-[depends]->libstdc++6": {"python3.11", "libstdc++6", "depends"},
		"python3.11-[depends]->libc6":      {"python3.11", "libc6", "depends"},
		"libc6->libc6":                     {"libc6", "libc6", ""},
	}}
	checkGraph(t, readGraph(t, eng, "g", res.LastSeq, w.nodes), w)
	n := query(t, eng, "g", res.LastSeq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "libstdc++6"}}}).GetNode()
	if got := fmt.Sprint(componentMap(n.GetComponents()), n.GetCategories()); got != "map[note:multi\nline, with comma version:14.2] [lib]" {
		t.Errorf("libstdc++6: %s", got)
	}
	n = query(t, eng, "g", res.LastSeq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "python3.11"}}}).GetNode()
	if got := fmt.Sprint(componentMap(n.GetComponents()), n.GetCategories()); got != "map[version:3.11] [lang runtime]" {
		t.Errorf("python3.11: %s", got)
	}
}

func componentMap(cs []*cairnv1.Component) map[string]string {
	m := map[string]string{}
	for _, c := range cs {
		m[c.GetType()] = string(c.GetValue())
	}
	return m
}

func TestImportJSONLines(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	path := writeFile(t, t.TempDir(), "g.jsonl", `{"node":"libc6","components":{"version":"2.39","size":1024},"categories":["lib"]}
{"source":"python3.11","target":"libc6","type":"depends"}
{"edge":"e2","source":"libstdc++6","target":"libc6","components":{"optional":true}}
{"node":"python3.11","components":{"version":"3.11"}}
not json
{"node":"x","colour":"red"}

{"source":"a:b/c@d+e","target":"ü"}
`)
	cfg := config(t)
	var bad []int64
	cfg.OnBadLine = func(le *importer.LineError) { bad = append(bad, le.Line) }
	res, err := importer.Run(context.Background(), eng, "g", path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bad, []int64{5, 6}) {
		t.Errorf("bad lines %v, want [5 6]", bad)
	}
	w := graphState{nodes: map[string]bool{"libc6": true, "python3.11": true, "libstdc++6": true, "a:b/c@d+e": true, "ü": true}, edges: map[string]edge{
		"python3.11-[depends]->libc6": {"python3.11", "libc6", "depends"},
		"e2":                          {"libstdc++6", "libc6", ""},
		"a:b/c@d+e->ü":                {"a:b/c@d+e", "ü", ""},
	}}
	// python3.11's line came after the edge that made it: its components
	// were set by one more event.
	checkGraph(t, readGraphExtra(t, eng, "g", res.LastSeq, w.nodes, 1), w)
	for id, want := range map[string]string{"libc6": "map[size:1024 version:2.39] [lib]", "python3.11": "map[version:3.11] []"} {
		n := query(t, eng, "g", res.LastSeq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: id}}}).GetNode()
		if got := fmt.Sprint(componentMap(n.GetComponents()), n.GetCategories()); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
}

// TestImportBatchSizeChangeStartsOver: a checkpoint made with another batch
// size is not used (its envelope ids would name other lines); the import
// starts from the top and what is there already is counted as existing.
func TestImportBatchSizeChangeStartsOver(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	edges := genEdges(4, 1000)
	path := writeEdgeList(t, t.TempDir(), edges)
	cfg := config(t)
	cfg.BatchSize = 100
	first := interrupted(t, eng, path, cfg, 3)
	cfg.BatchSize = 70
	res, err := importer.Run(context.Background(), eng, "g", path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedAt != 0 || res.Existing != first.Edges || res.Edges+res.Existing != int64(len(edges)) {
		t.Errorf("result %+v after %d edges with another batch size", res, first.Edges)
	}
	w := want(edges)
	checkGraph(t, readGraph(t, eng, "g", res.LastSeq, w.nodes), w)
}
