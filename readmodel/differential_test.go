package readmodel

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// refModel is the naive reference: plain maps, every answer recomputed.
type refModel struct {
	nodes map[string]*refNode
	edges map[string]refEdge
}

type refNode struct {
	comps map[string]string
	cats  []string
}

type refEdge struct{ src, dst, typ string }

func newRef() *refModel {
	return &refModel{nodes: map[string]*refNode{}, edges: map[string]refEdge{}}
}

func (r *refModel) apply(ev *cairnv1.Event) {
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_NodeAdded:
		n := &refNode{comps: map[string]string{}}
		for _, c := range k.NodeAdded.GetComponents() {
			n.comps[c.GetType()] = string(c.GetValue())
		}
		for _, c := range k.NodeAdded.GetCategories() {
			if !slices.Contains(n.cats, c) {
				n.cats = append(n.cats, c)
			}
		}
		slices.Sort(n.cats)
		r.nodes[k.NodeAdded.GetNodeId()] = n
	case *cairnv1.Event_NodeComponentsChanged:
		n := r.nodes[k.NodeComponentsChanged.GetNodeId()]
		for _, t := range k.NodeComponentsChanged.GetRemovedTypes() {
			delete(n.comps, t)
		}
		for _, c := range k.NodeComponentsChanged.GetSet() {
			n.comps[c.GetType()] = string(c.GetValue())
		}
	case *cairnv1.Event_NodeRemoved:
		delete(r.nodes, k.NodeRemoved.GetNodeId())
	case *cairnv1.Event_EdgeAdded:
		ea := k.EdgeAdded
		r.edges[ea.GetEdgeId()] = refEdge{ea.GetSource(), ea.GetTarget(), ea.GetEdgeType()}
	case *cairnv1.Event_EdgeRemoved:
		delete(r.edges, k.EdgeRemoved.GetEdgeId())
	}
}

func (r *refModel) degrees(id string) (out, in int) {
	for _, e := range r.edges {
		if e.src == id {
			out++
		}
		if e.dst == id {
			in++
		}
	}
	return out, in
}

func (r *refModel) find(match func(*refNode) bool) []string {
	var ids []string
	for id, n := range r.nodes {
		if match(n) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (r *refModel) neighbors(id string, dir Direction, typ string) []Neighbor {
	var out []Neighbor
	for eid, e := range r.edges {
		if typ != "" && e.typ != typ {
			continue
		}
		if (dir == Out || dir == Both) && e.src == id {
			out = append(out, Neighbor{eid, e.dst, e.typ})
		}
		if (dir == In || (dir == Both && e.src != e.dst)) && e.dst == id {
			out = append(out, Neighbor{eid, e.src, e.typ})
		}
	}
	sortNeighbors(out)
	return out
}

func sortNeighbors(ns []Neighbor) {
	slices.SortFunc(ns, func(a, b Neighbor) int {
		return cmp.Or(cmp.Compare(a.EdgeID, b.EdgeID), cmp.Compare(a.NodeID, b.NodeID))
	})
}

func (r *refModel) stats(k int) Stats {
	s := Stats{Nodes: len(r.nodes), Edges: len(r.edges)}
	hist := map[int]int{}
	types := map[string]int{}
	distinct := map[[2]string]bool{}
	for id, n := range r.nodes {
		o, i := r.degrees(id)
		hist[o+i]++
		for t, v := range n.comps {
			types[t]++
			distinct[[2]string{t, v}] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(hist)) {
		s.Degrees = append(s.Degrees, DegreeCount{d, hist[d]})
	}
	for _, t := range slices.Sorted(maps.Keys(types)) {
		s.ComponentTypes = append(s.ComponentTypes, TypeCount{t, types[t]})
	}
	s.Top = r.top(k, TotalDegree)
	s.DistinctComponents = len(distinct)
	return s
}

// Pool sizes of the random streams.
var (
	compTypes = []string{"a", "b", "c", "d"}
	catPool   = []string{"x", "y", "z"}
	edgeTypes = []string{"r", "s", "t"}
)

type gen struct {
	r     *rand.Rand
	ref   *refModel
	nextE int
}

func (g *gen) comps(n int) []*cairnv1.Component {
	var cs []*cairnv1.Component
	for range n {
		cs = append(cs, &cairnv1.Component{Type: compTypes[g.r.IntN(len(compTypes))], Value: []byte(strconv.Itoa(g.r.IntN(5)))})
	}
	return cs
}

func (g *gen) someNode() string {
	ids := slices.Sorted(maps.Keys(g.ref.nodes))
	return ids[g.r.IntN(len(ids))]
}

func (g *gen) someEdge() string {
	ids := slices.Sorted(maps.Keys(g.ref.edges))
	return ids[g.r.IntN(len(ids))]
}

// tx returns a valid transaction, applying it to the reference as it goes.
func (g *gen) tx() []*cairnv1.Event {
	var evs []*cairnv1.Event
	emit := func(ev *cairnv1.Event) { g.ref.apply(ev); evs = append(evs, ev) }
	for range 1 + g.r.IntN(6) {
		switch p := g.r.IntN(100); {
		case p < 30 || len(g.ref.nodes) < 2:
			id := "n" + strconv.Itoa(g.r.IntN(60))
			if _, ok := g.ref.nodes[id]; ok {
				continue
			}
			var cats []string
			for range g.r.IntN(3) {
				cats = append(cats, catPool[g.r.IntN(len(catPool))])
			}
			emit(&cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id, Components: g.comps(g.r.IntN(4)), Categories: cats}}})
		case p < 40:
			var rm []string
			for range g.r.IntN(2) {
				rm = append(rm, compTypes[g.r.IntN(len(compTypes))])
			}
			emit(&cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{NodeId: g.someNode(), Set: g.comps(g.r.IntN(3)), RemovedTypes: rm}}})
		case p < 47:
			id := g.someNode()
			for _, eid := range slices.Sorted(maps.Keys(g.ref.edges)) {
				if e := g.ref.edges[eid]; e.src == id || e.dst == id {
					emit(&cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{EdgeId: eid, Source: e.src, Target: e.dst}}})
				}
			}
			emit(&cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: id}}})
		case p < 85:
			src, dst := g.someNode(), g.someNode()
			if g.r.IntN(8) == 0 {
				dst = src
			}
			g.nextE++
			emit(&cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: "e" + strconv.Itoa(g.nextE), Source: src, Target: dst, EdgeType: edgeTypes[g.r.IntN(len(edgeTypes))]}}})
		default:
			if len(g.ref.edges) == 0 {
				continue
			}
			id := g.someEdge()
			e := g.ref.edges[id]
			emit(&cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{EdgeId: id, Source: e.src, Target: e.dst}}})
		}
	}
	return evs
}

func testSeeds(t *testing.T) []uint64 {
	if s := os.Getenv("CAIRN_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CAIRN_TEST_SEED=%q: %v", s, err)
		}
		return []uint64{v}
	}
	return []uint64{1, 2, 3, 4}
}

func TestDifferential(t *testing.T) {
	forEachSeed(t, func(t *testing.T, seed uint64) { runDifferential(t, seed, 400) })
}

// forEachSeed runs f as a subtest per seed and says how to reproduce a
// failure.
func forEachSeed(t *testing.T, f func(t *testing.T, seed uint64)) {
	for _, seed := range testSeeds(t) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("reproduce with CAIRN_TEST_SEED=%d", seed)
				}
			}()
			f(t, seed)
		})
	}
}

func runDifferential(t *testing.T, seed uint64, batches int) {
	cfg := DefaultConfig()
	cfg.TopK, cfg.CompactMin, cfg.CompactDivisor = 5, 8, 4
	g, err := New("g", cfg)
	if err != nil {
		t.Fatal(err)
	}
	gn := &gen{r: rand.New(rand.NewPCG(seed, 0)), ref: newRef()}
	if err := g.ApplyTx(1, []*cairnv1.Event{{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{GraphId: "g"}}}}); err != nil {
		t.Fatal(err)
	}
	for b := range batches {
		seq := uint64(b + 2)
		evs := gn.tx()
		if err := g.ApplyTx(seq, evs); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		if gn.r.IntN(10) == 0 { // redelivery changes nothing
			if err := g.ApplyTx(seq, evs); err != nil {
				t.Fatalf("batch %d redelivered: %v", b, err)
			}
		}
		if gn.r.IntN(20) == 0 {
			g.Compact()
		}
		compare(t, g, gn.ref, gn.r, cfg.TopK, b)
		if t.Failed() {
			return
		}
	}
}

func compare(t *testing.T, g *Graph, ref *refModel, r *rand.Rand, k, batch int) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("batch %d: "+format, append([]any{batch}, args...)...)
	}
	limit := 1 + r.IntN(4)
	for i := range 60 {
		id := "n" + strconv.Itoa(i)
		n, ok := ref.nodes[id]
		v, err := g.Node(id)
		if !ok {
			if !errors.Is(err, ErrNotFound) {
				fail("Node(%s) = %v, want ErrNotFound", id, err)
			}
			continue
		}
		if err != nil {
			fail("Node(%s): %v", id, err)
			continue
		}
		o, in := ref.degrees(id)
		want := NodeView{ID: id, Categories: n.cats, OutDegree: o, InDegree: in}
		for _, t := range slices.Sorted(maps.Keys(n.comps)) {
			want.Components = append(want.Components, Component{t, []byte(n.comps[t])})
		}
		if fmt.Sprint(v) != fmt.Sprint(want) {
			fail("Node(%s) = %+v, want %+v", id, v, want)
		}
		for _, dir := range []Direction{Out, In, Both} {
			for _, typ := range append([]string{""}, edgeTypes...) {
				got := walkNeighbors(t, g, id, dir, typ, limit)
				sortNeighbors(got)
				if w := ref.neighbors(id, dir, typ); fmt.Sprint(got) != fmt.Sprint(w) {
					fail("Neighbors(%s, %d, %q) = %v, want %v", id, dir, typ, got, w)
				}
			}
		}
	}
	for _, typ := range append(slices.Clone(compTypes), "none") {
		got := walkFind(t, func(c string) (Page, error) { return g.FindByComponentType(typ, c, limit) })
		if w := ref.find(func(n *refNode) bool { _, ok := n.comps[typ]; return ok }); fmt.Sprint(got) != fmt.Sprint(w) {
			fail("FindByComponentType(%s) = %v, want %v", typ, got, w)
		}
		for val := range 6 {
			v := strconv.Itoa(val)
			got := walkFind(t, func(c string) (Page, error) { return g.FindByComponent(typ, []byte(v), c, limit) })
			if w := ref.find(func(n *refNode) bool { x, ok := n.comps[typ]; return ok && x == v }); fmt.Sprint(got) != fmt.Sprint(w) {
				fail("FindByComponent(%s, %s) = %v, want %v", typ, v, got, w)
			}
		}
	}
	for _, cat := range append(slices.Clone(catPool), "none") {
		got := walkFind(t, func(c string) (Page, error) { return g.FindByCategory(cat, c, limit) })
		if w := ref.find(func(n *refNode) bool { return slices.Contains(n.cats, cat) }); fmt.Sprint(got) != fmt.Sprint(w) {
			fail("FindByCategory(%s) = %v, want %v", cat, got, w)
		}
	}
	s, err := g.Stats()
	if err != nil {
		fail("Stats: %v", err)
	}
	s.AsOf, s.Version = 0, 0
	if w := ref.stats(k); fmt.Sprint(s) != fmt.Sprint(w) {
		fail("Stats = %+v, want %+v", s, w)
	}
	// The same k every batch for each kind (and Stats' k) keeps answers
	// that the graph updates as degrees change; a random one makes the
	// cache drop its oldest and compute it again.
	type query struct {
		k    int
		kind DegreeKind
	}
	queries := []query{{k, TotalDegree}, {k, OutDegree}, {k, InDegree}, {20, TotalDegree},
		{1 + r.IntN(20), DegreeKind(r.IntN(3))}}
	for _, q := range queries {
		got, err := g.TopDegree(q.k, q.kind)
		if err != nil {
			fail("TopDegree(%d, %d): %v", q.k, q.kind, err)
		}
		if w := ref.top(q.k, q.kind); fmt.Sprint(got) != fmt.Sprint(w) {
			fail("TopDegree(%d, %d) = %v, want %v", q.k, q.kind, got, w)
		}
	}
}

// top ranks the nodes by degree of kind, ties by id.
func (r *refModel) top(k int, kind DegreeKind) []NodeDegree {
	var top []NodeDegree
	for id := range r.nodes {
		o, i := r.degrees(id)
		d := [...]int{TotalDegree: o + i, OutDegree: o, InDegree: i}[kind]
		top = append(top, NodeDegree{id, d})
	}
	slices.SortFunc(top, func(a, b NodeDegree) int {
		return cmp.Or(cmp.Compare(b.Degree, a.Degree), cmp.Compare(a.ID, b.ID))
	})
	return top[:min(k, len(top))]
}

// walkFind follows a find query's cursors to the end, checking that no id
// comes twice, and returns the ids sorted.
func walkFind(t *testing.T, page func(cursor string) (Page, error)) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	for cursor, n := "", 0; ; n++ {
		p, err := page(cursor)
		if err != nil {
			t.Fatalf("page %d: %v", n, err)
		}
		for _, id := range p.IDs {
			if seen[id] {
				t.Fatalf("page %d repeats %s", n, id)
			}
			seen[id] = true
		}
		ids = append(ids, p.IDs...)
		if p.Next == "" {
			break
		}
		if len(p.IDs) == 0 {
			t.Fatalf("page %d is empty but has a next cursor", n)
		}
		cursor = p.Next
	}
	slices.Sort(ids)
	return ids
}

func walkNeighbors(t *testing.T, g *Graph, id string, dir Direction, typ string, limit int) []Neighbor {
	t.Helper()
	var out []Neighbor
	seen := map[string]bool{}
	for cursor, n := "", 0; ; n++ {
		p, err := g.Neighbors(id, dir, typ, cursor, limit)
		if err != nil {
			t.Fatalf("Neighbors(%s) page %d: %v", id, n, err)
		}
		if len(p.Entries) > limit {
			t.Fatalf("Neighbors(%s) page %d has %d entries, limit %d", id, n, len(p.Entries), limit)
		}
		for _, e := range p.Entries {
			if seen[e.EdgeID] {
				t.Fatalf("Neighbors(%s) page %d repeats %s", id, n, e.EdgeID)
			}
			seen[e.EdgeID] = true
		}
		out = append(out, p.Entries...)
		if p.Next == "" {
			return out
		}
		cursor = p.Next
	}
}
