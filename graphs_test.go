package cairn_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The catalogue and the finds across graphs against a reference built from
// the commands sent: random graphs (types, metadata), nodes with random
// categories and components, removals and deletions; every list and find
// walked to its end in pages of random sizes, with graphs created and
// deleted between the pages of some walks.

// refCatGraph is one graph of the reference.
type refCatGraph struct {
	typ     string
	meta    map[string]string
	deleted bool
	nodes   map[string]*refNode
	order   []string // node ids in the order added (for picking)
}

type refCatalogue struct {
	graphs map[string]*refCatGraph
}

func (r *refCatalogue) clone() *refCatalogue {
	c := &refCatalogue{graphs: map[string]*refCatGraph{}}
	for id, g := range r.graphs {
		n := &refCatGraph{typ: g.typ, meta: g.meta, deleted: g.deleted, nodes: map[string]*refNode{}, order: slices.Clone(g.order)}
		for nid, x := range g.nodes {
			n.nodes[nid] = &refNode{comps: maps.Clone(x.comps), cats: maps.Clone(x.cats)}
		}
		c.graphs[id] = n
	}
	return c
}

// listed is what a ListGraphs walk must return: graph ids, sorted.
func (r *refCatalogue) listed(typ string, deleted bool, only []string) []string {
	var out []string
	for id, g := range r.graphs {
		if (g.deleted && !deleted) || (typ != "" && g.typ != typ) || (len(only) > 0 && !slices.Contains(only, id)) {
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// matches reports whether node x holds what f finds.
func matches(f *cairnv1.FindAcross, x *refNode) bool {
	switch by := f.GetBy().(type) {
	case *cairnv1.FindAcross_Category:
		return x.cats[by.Category]
	case *cairnv1.FindAcross_ComponentType:
		_, ok := x.comps[by.ComponentType]
		return ok
	case *cairnv1.FindAcross_Component:
		v, ok := x.comps[by.Component.GetType()]
		return ok && v == string(by.Component.GetValue())
	}
	return false
}

// found is what a FindAcross walk must return, as "graph/node" keys, as a
// set (the order within a graph is the graph's own, checked apart).
func (r *refCatalogue) found(f *cairnv1.FindAcross) map[string]bool {
	out := map[string]bool{}
	for id, g := range r.graphs {
		if g.deleted || (!f.GetAllGraphs() && !slices.Contains(f.GetGraphIds(), id)) {
			continue
		}
		for nid, x := range g.nodes {
			if matches(f, x) {
				out[id+"/"+nid] = true
			}
		}
	}
	return out
}

// catWriter sends random commands to an engine and keeps the reference.
type catWriter struct {
	t    *testing.T
	eng  *cairn.Engine
	rng  *rand.Rand
	ref  *refCatalogue
	next int // graph ids handed out
	cmds int
	seq  uint64 // the last write's stream sequence
}

var catTypes = []string{"", "deps", "workflowish", "org"}

func (w *catWriter) exec(graph string, cmds ...*cairnv1.Command) {
	w.t.Helper()
	w.cmds++
	rep, err := w.eng.Execute(context.Background(), env(graph, fmt.Sprintf("c%d", w.cmds), cmds...))
	if err != nil {
		w.t.Fatalf("%s: %v", graph, err)
	}
	w.seq = max(w.seq, rep.GetSeq())
}

func (w *catWriter) create() string {
	id := fmt.Sprintf("g%03d", w.next)
	// Ids not in creation order, so that new graphs land between old ones.
	id = fmt.Sprintf("g%03d", (w.next*37)%1000)
	w.next++
	typ := catTypes[w.rng.IntN(len(catTypes))]
	meta := map[string]string{}
	if w.rng.IntN(2) == 0 {
		meta["owner"] = fmt.Sprint("team-", w.rng.IntN(3))
	}
	w.exec(id, &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: typ, Metadata: meta}}})
	if len(meta) == 0 {
		meta = nil
	}
	w.ref.graphs[id] = &refCatGraph{typ: typ, meta: meta, nodes: map[string]*refNode{}}
	return id
}

// live returns the graphs not deleted, sorted.
func (w *catWriter) live() []string {
	var out []string
	for id, g := range w.ref.graphs {
		if !g.deleted {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// step sends one random command.
func (w *catWriter) step() {
	live := w.live()
	switch r := w.rng.IntN(20); {
	case len(live) == 0 || r == 0:
		w.create()
	case r == 1:
		id := live[w.rng.IntN(len(live))]
		w.exec(id, &cairnv1.Command{Kind: &cairnv1.Command_DeleteGraph{DeleteGraph: &cairnv1.DeleteGraph{}}})
		w.ref.graphs[id].deleted = true
	case r < 4:
		id := live[w.rng.IntN(len(live))]
		g := w.ref.graphs[id]
		if len(g.order) == 0 {
			return
		}
		i := w.rng.IntN(len(g.order))
		nid := g.order[i]
		w.exec(id, &cairnv1.Command{Kind: &cairnv1.Command_RemoveNode{RemoveNode: &cairnv1.RemoveNode{NodeId: nid}}})
		delete(g.nodes, nid)
		g.order = slices.Delete(g.order, i, i+1)
	default:
		id := live[w.rng.IntN(len(live))]
		g := w.ref.graphs[id]
		nid := fmt.Sprintf("n%d", w.cmds)
		x := &refNode{comps: map[string]string{}, cats: map[string]bool{}}
		var comps []*cairnv1.Component
		for _, typ := range diffCompTypes {
			if w.rng.IntN(2) == 0 {
				v := diffValues[typ][w.rng.IntN(len(diffValues[typ]))]
				x.comps[typ] = v
				comps = append(comps, &cairnv1.Component{Type: typ, Value: []byte(v)})
			}
		}
		var cats []string
		for _, c := range diffCats {
			if w.rng.IntN(3) == 0 {
				x.cats[c] = true
				cats = append(cats, c)
			}
		}
		w.exec(id, cmdAdd(nid, cats, comps...))
		g.nodes[nid] = x
		g.order = append(g.order, nid)
	}
}

func graphsAsk(t *testing.T, eng *cairn.Engine, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	t.Helper()
	rep, err := eng.Graphs(context.Background(), req)
	if err != nil {
		t.Fatalf("%v: %v", req, err)
	}
	return rep
}

// listWalk walks a ListGraphs to its end in pages of random sizes, calling
// between before each page but the first.
func listWalk(t *testing.T, eng *cairn.Engine, rng *rand.Rand, l *cairnv1.ListGraphs, asOf uint64, minSeq func() uint64, between func()) []*cairnv1.GraphInfo {
	t.Helper()
	var out []*cairnv1.GraphInfo
	l = &cairnv1.ListGraphs{Type: l.Type, GraphIds: l.GraphIds, IncludeDeleted: l.IncludeDeleted}
	for page := 0; ; page++ {
		if page > 0 && between != nil {
			between()
		}
		l.Limit = uint32(1 + rng.IntN(7))
		req := &cairnv1.QueryRequest{MinSeq: minSeq(), Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: l}}
		if asOf > 0 {
			req.AsOf = &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: asOf}}
		}
		rep := graphsAsk(t, eng, req)
		p := rep.GetGraphs()
		if len(p.GetGraphs()) > int(l.Limit) {
			t.Fatalf("a page of %d graphs for limit %d", len(p.GetGraphs()), l.Limit)
		}
		out = append(out, p.GetGraphs()...)
		if p.GetNextCursor() == "" {
			return out
		}
		l.Cursor = p.GetNextCursor()
		if page > 2000 {
			t.Fatal("the list does not end")
		}
	}
}

// findWalk walks a FindAcross to its end: the "graph/node" keys in order.
func findWalk(t *testing.T, eng *cairn.Engine, rng *rand.Rand, f *cairnv1.FindAcross, asOf uint64, minSeq func() uint64, between func()) []string {
	t.Helper()
	var out []string
	f = &cairnv1.FindAcross{GraphIds: f.GraphIds, AllGraphs: f.AllGraphs, By: f.By}
	for page := 0; ; page++ {
		if page > 0 && between != nil {
			between()
		}
		f.Limit = uint32(1 + rng.IntN(9))
		req := &cairnv1.QueryRequest{MinSeq: minSeq(), Query: &cairnv1.QueryRequest_FindAcross{FindAcross: f}}
		if asOf > 0 {
			req.AsOf = &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: asOf}}
		}
		rep := graphsAsk(t, eng, req)
		p := rep.GetGraphNodes()
		n := 0
		for _, g := range p.GetGraphs() {
			for _, id := range g.GetNodeIds() {
				out = append(out, g.GetGraphId()+"/"+id)
				n++
			}
		}
		if n > int(f.Limit) {
			t.Fatalf("a page of %d nodes for limit %d", n, f.Limit)
		}
		if p.GetNextCursor() == "" {
			return out
		}
		f.Cursor = p.GetNextCursor()
		if page > 5000 {
			t.Fatal("the find does not end")
		}
	}
}

// graphFind is graph's own FindNodes answer for f, walked to its end.
func graphFind(t *testing.T, eng *cairn.Engine, graph string, f *cairnv1.FindAcross, asOf uint64) []string {
	t.Helper()
	fn := &cairnv1.FindNodes{Limit: 1000}
	switch by := f.GetBy().(type) {
	case *cairnv1.FindAcross_Category:
		fn.By = &cairnv1.FindNodes_Category{Category: by.Category}
	case *cairnv1.FindAcross_ComponentType:
		fn.By = &cairnv1.FindNodes_ComponentType{ComponentType: by.ComponentType}
	case *cairnv1.FindAcross_Component:
		fn.By = &cairnv1.FindNodes_Component{Component: by.Component}
	}
	var out []string
	for {
		req := &cairnv1.QueryRequest{GraphId: graph, Query: &cairnv1.QueryRequest_FindNodes{FindNodes: fn}}
		if asOf > 0 {
			req.AsOf = &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: asOf}}
		}
		rep, err := eng.Query(context.Background(), req)
		if err != nil {
			t.Fatalf("find in %s: %v", graph, err)
		}
		for _, id := range rep.GetNodes().GetNodeIds() {
			out = append(out, graph+"/"+id)
		}
		if fn.Cursor = rep.GetNodes().GetNextCursor(); fn.Cursor == "" {
			return out
		}
	}
}

// randomFind is a random FindAcross over all graphs or a random list.
func randomFind(rng *rand.Rand, ids []string) *cairnv1.FindAcross {
	f := &cairnv1.FindAcross{}
	switch rng.IntN(3) {
	case 0:
		f.By = &cairnv1.FindAcross_Category{Category: diffCats[rng.IntN(len(diffCats))]}
	case 1:
		f.By = &cairnv1.FindAcross_ComponentType{ComponentType: diffCompTypes[rng.IntN(len(diffCompTypes))]}
	default:
		typ := diffCompTypes[rng.IntN(len(diffCompTypes))]
		f.By = &cairnv1.FindAcross_Component{Component: &cairnv1.Component{Type: typ, Value: []byte(diffValues[typ][rng.IntN(len(diffValues[typ]))])}}
	}
	if rng.IntN(2) == 0 || len(ids) == 0 {
		f.AllGraphs = true
		return f
	}
	for _, id := range ids {
		if rng.IntN(3) == 0 {
			f.GraphIds = append(f.GraphIds, id)
		}
	}
	f.GraphIds = append(f.GraphIds, "nosuchgraph")
	return f
}

// checkList holds a list walk against the reference.
func checkList(t *testing.T, ref *refCatalogue, l *cairnv1.ListGraphs, got []*cairnv1.GraphInfo) {
	t.Helper()
	want := ref.listed(l.GetType(), l.GetIncludeDeleted(), l.GetGraphIds())
	var ids []string
	for _, info := range got {
		ids = append(ids, info.GetGraphId())
		r := ref.graphs[info.GetGraphId()]
		if r == nil {
			t.Fatalf("listed %s, which was never created", info.GetGraphId())
		}
		if info.GetType() != r.typ || info.GetDeleted() != r.deleted || !maps.Equal(info.GetMetadata(), r.meta) {
			t.Errorf("%s: type %q deleted %v metadata %v, want %q %v %v", info.GetGraphId(), info.GetType(), info.GetDeleted(), info.GetMetadata(), r.typ, r.deleted, r.meta)
		}
		if !r.deleted && info.GetNodes() != uint64(len(r.nodes)) {
			t.Errorf("%s: %d nodes, want %d", info.GetGraphId(), info.GetNodes(), len(r.nodes))
		}
		if info.GetHeadSeq() == 0 || info.GetHeadCid() == "" || info.GetPosition() == 0 || info.GetCreatedUnixNano() == 0 ||
			info.GetChangedUnixNano() < info.GetCreatedUnixNano() {
			t.Errorf("%s: head or times missing: %v", info.GetGraphId(), info)
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("list %v:\n got %v\nwant %v", l, ids, want)
	}
}

// checkFind holds a find walk against the reference: the same set, no
// duplicates, graphs in id order, each graph's nodes in its own order.
func checkFind(t *testing.T, eng *cairn.Engine, ref *refCatalogue, f *cairnv1.FindAcross, got []string, asOf uint64) {
	t.Helper()
	want := ref.found(f)
	seen := map[string]bool{}
	var graphs []string
	for _, k := range got {
		if seen[k] {
			t.Fatalf("find %v: %s twice", f, k)
		}
		seen[k] = true
		g, _, _ := strings.Cut(k, "/")
		if len(graphs) == 0 || graphs[len(graphs)-1] != g {
			graphs = append(graphs, g)
		}
	}
	if !maps.Equal(seen, want) {
		var missing, extra []string
		for k := range want {
			if !seen[k] {
				missing = append(missing, k)
			}
		}
		for k := range seen {
			if !want[k] {
				extra = append(extra, k)
			}
		}
		t.Fatalf("find %v: missing %v, extra %v", f, missing, extra)
	}
	if !slices.IsSorted(graphs) || len(slices.Compact(slices.Clone(graphs))) != len(graphs) {
		t.Fatalf("find %v: graphs not in id order: %v", f, graphs)
	}
	var own []string
	for _, g := range graphs {
		own = append(own, graphFind(t, eng, g, f, asOf)...)
	}
	if !slices.Equal(got, own) {
		t.Fatalf("find %v: not in each graph's own order:\n got %v\nwant %v", f, got, own)
	}
}

func TestGraphsDifferential(t *testing.T) {
	forEachQuerySeed(t, func(t *testing.T, seed uint64) {
		eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) { cfg.Projections.Shards = 3 })
		rng := rand.New(rand.NewPCG(seed, 16))
		w := &catWriter{t: t, eng: eng, rng: rng, ref: &refCatalogue{graphs: map[string]*refCatGraph{}}}
		for range 25 {
			w.create()
		}
		for range 300 {
			w.step()
		}
		minSeq := func() uint64 { return w.seq }
		// Time travel: every graph as it was here, after more writes.
		then, thenSeq := w.ref.clone(), w.seq
		for range 150 {
			w.step()
		}
		for round := range 12 {
			l := &cairnv1.ListGraphs{IncludeDeleted: rng.IntN(3) == 0}
			if rng.IntN(3) == 0 {
				l.Type = catTypes[rng.IntN(len(catTypes))]
			}
			if rng.IntN(4) == 0 {
				l.GraphIds = []string{w.live()[0], "nosuchgraph", w.live()[len(w.live())-1]}
			}
			checkList(t, w.ref, l, listWalk(t, eng, rng, l, 0, minSeq, nil))
			f := randomFind(rng, w.live())
			got := findWalk(t, eng, rng, f, 0, minSeq, nil)
			t.Logf("find %v: %d nodes in %d graphs", f, len(got), len(w.live()))
			checkFind(t, eng, w.ref, f, got, 0)
			if round%4 == 0 {
				l := &cairnv1.ListGraphs{}
				checkList(t, then, l, listWalk(t, eng, rng, l, thenSeq, minSeq, nil))
				checkFind(t, eng, then, f, findWalk(t, eng, rng, f, thenSeq, minSeq, nil), thenSeq)
			}
		}
	})
}

// Graphs created and deleted between the pages of a walk make no page
// repeat or skip another: every graph there from the walk's start to its
// end is listed once, and nothing that never existed is.
func TestGraphsPagesUnderChurn(t *testing.T) {
	forEachQuerySeed(t, func(t *testing.T, seed uint64) {
		eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) { cfg.Projections.Shards = 3 })
		rng := rand.New(rand.NewPCG(seed, 17))
		w := &catWriter{t: t, eng: eng, rng: rng, ref: &refCatalogue{graphs: map[string]*refCatGraph{}}}
		for range 30 {
			id := w.create()
			w.exec(id, cmdAdd("x", []string{"pkg"}))
			w.ref.graphs[id].nodes["x"] = &refNode{cats: map[string]bool{"pkg": true}}
		}
		minSeq := func() uint64 { return w.seq }
		for range 4 {
			before := map[string]bool{}
			for _, id := range w.live() {
				before[id] = true
			}
			churn := func() {
				if rng.IntN(2) == 0 {
					id := w.create()
					w.exec(id, cmdAdd("x", []string{"pkg"}))
					return
				}
				live := w.live()
				id := live[rng.IntN(len(live))]
				w.exec(id, &cairnv1.Command{Kind: &cairnv1.Command_DeleteGraph{DeleteGraph: &cairnv1.DeleteGraph{}}})
				w.ref.graphs[id].deleted = true
			}
			check := func(kind string, got []string) {
				seen := map[string]bool{}
				for _, id := range got {
					if seen[id] {
						t.Fatalf("%s: %s twice", kind, id)
					}
					seen[id] = true
					if w.ref.graphs[id] == nil {
						t.Fatalf("%s: %s was never created", kind, id)
					}
				}
				for id := range before {
					if !w.ref.graphs[id].deleted && !seen[id] {
						t.Fatalf("%s: %s, there all along, was skipped", kind, id)
					}
				}
			}
			var ids []string
			for _, info := range listWalk(t, eng, rng, &cairnv1.ListGraphs{}, 0, minSeq, churn) {
				ids = append(ids, info.GetGraphId())
			}
			check("list", ids)
			before = map[string]bool{}
			for _, id := range w.live() {
				before[id] = true
			}
			ids = ids[:0]
			for _, k := range findWalk(t, eng, rng, &cairnv1.FindAcross{AllGraphs: true, By: &cairnv1.FindAcross_Category{Category: "pkg"}}, 0, minSeq, churn) {
				g, _, _ := strings.Cut(k, "/")
				ids = append(ids, g)
			}
			check("find", ids)
		}
	})
}

// Requests about many graphs are refused as single-graph queries are: a
// bad limit or cursor is INVALID_ARGUMENT naming the field.
func TestGraphsInvalid(t *testing.T) {
	eng := openEngine(t)
	created, err := eng.Execute(context.Background(), env("g", "c", cmdCreate()))
	if err != nil {
		t.Fatal(err)
	}
	cat := &cairnv1.FindAcross_Category{Category: "pkg"}
	for _, c := range []struct {
		name  string
		req   *cairnv1.QueryRequest
		field string
	}{
		{"list limit", &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{Limit: 1001}}}, "list_graphs.limit"},
		{"list cursor", &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{Cursor: "nope"}}}, "list_graphs.cursor"},
		{"list graph id", &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{GraphIds: []string{"a.b"}}}}, "list_graphs.graph_ids[0]"},
		{"find limit", &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{AllGraphs: true, By: cat, Limit: 5000}}}, "find_across.limit"},
		{"find cursor", &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{AllGraphs: true, By: cat, Cursor: "bG9vcHM"}}}, "find_across.cursor"},
		{"find no graphs", &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{By: cat}}}, "find_across.graph_ids"},
		{"find both", &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{GraphIds: []string{"g"}, AllGraphs: true, By: cat}}}, "find_across.all_graphs"},
		{"find by nothing", &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{AllGraphs: true}}}, "find_across.by"},
		{"as of a time", &cairnv1.QueryRequest{AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_TimeUnixNano{TimeUnixNano: 5}},
			Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{}}}, "as_of"},
		{"a single-graph query", &cairnv1.QueryRequest{GraphId: "g", Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}}, "query"},
	} {
		rep, err := eng.Graphs(context.Background(), c.req)
		if !errors.Is(err, aggregate.ErrInvalidArgument) || rep.GetError().GetField() != c.field {
			t.Errorf("%s: %v, want INVALID_ARGUMENT on %s", c.name, rep.GetError(), c.field)
		}
	}
	// A multi-graph request on a graph's query subject is refused too.
	rep, err := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: "g", Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{}}})
	if !errors.Is(err, aggregate.ErrInvalidArgument) || rep.GetError().GetField() != "query" {
		t.Errorf("list_graphs as a graph's query: %v", rep.GetError())
	}
	// A find cursor of one graph's own query given to a find across: the
	// cursor's inner part is the graph's.
	f := &cairnv1.FindAcross{AllGraphs: true, By: cat, Cursor: "ZmcAYmFk"} // "fg\x00bad"
	rep, err = eng.Graphs(context.Background(), &cairnv1.QueryRequest{MinSeq: created.GetSeq(), Query: &cairnv1.QueryRequest_FindAcross{FindAcross: f}})
	if !errors.Is(err, aggregate.ErrInvalidArgument) || rep.GetError().GetField() != "find_across.cursor" {
		t.Errorf("a bad inner cursor: %v", rep.GetError())
	}
}
