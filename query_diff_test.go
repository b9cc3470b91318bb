package cairn_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// querySeeds are the seeds of the seeded query tests: CAIRN_TEST_SEED when
// set, else fixed ones, so that a run is repeatable.
func querySeeds(t *testing.T) []uint64 {
	if s := os.Getenv("CAIRN_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CAIRN_TEST_SEED=%q: %v", s, err)
		}
		return []uint64{v}
	}
	return []uint64{1, 2}
}

// forEachQuerySeed runs f as a subtest per seed and says how to reproduce a
// failure.
func forEachQuerySeed(t *testing.T, f func(t *testing.T, seed uint64)) {
	for _, seed := range querySeeds(t) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("reproduce with CAIRN_TEST_SEED=%d go test -run '%s' .", seed, t.Name())
				}
			}()
			f(t, seed)
		})
	}
}

// The vocabulary of the random command streams. Weights ("w") are small
// non-negative numbers, 0 included, and a few values that count 1: negative,
// not a number, infinite.
var (
	diffCompTypes = []string{"w", "color", "name"}
	diffValues    = map[string][]string{"w": {"0", "1", "2", "3", "5", "0", "2.5", "-1", "x", "+Inf"}, "color": {"red", "green", "blue"}, "name": {"a", "b"}}
	diffCats      = []string{"pkg", "person", "team"}
	diffEdgeTypes = []string{"", "uses", "knows"}
	diffDirs      = []cairnv1.Direction{cairnv1.Direction_DIRECTION_UNSPECIFIED, cairnv1.Direction_DIRECTION_OUT, cairnv1.Direction_DIRECTION_IN, cairnv1.Direction_DIRECTION_BOTH}
)

const diffNodeIDs = 30 // node ids n0..n29

// gen makes random command envelopes that are mostly valid for a reference
// graph; refused ones are part of the stream.
type gen struct {
	rng   *rand.Rand
	edges int // edge ids handed out
}

func (g *gen) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *gen) comps(atLeastOne bool) []*cairnv1.Component {
	var out []*cairnv1.Component
	for _, typ := range diffCompTypes {
		if g.rng.IntN(2) == 0 {
			out = append(out, &cairnv1.Component{Type: typ, Value: []byte(g.pick(diffValues[typ]))})
		}
	}
	if atLeastOne && len(out) == 0 {
		typ := g.pick(diffCompTypes)
		out = append(out, &cairnv1.Component{Type: typ, Value: []byte(g.pick(diffValues[typ]))})
	}
	return out
}

func (g *gen) cats() []string {
	var out []string
	for _, c := range diffCats {
		if g.rng.IntN(3) == 0 {
			out = append(out, c)
		}
	}
	return out
}

func (g *gen) command(r *refGraph) *cairnv1.Command {
	nodes, edges := r.sortedNodes(), r.sortedEdges()
	node := func() string {
		if len(nodes) == 0 || g.rng.IntN(12) == 0 {
			return fmt.Sprintf("n%d", g.rng.IntN(diffNodeIDs))
		}
		return g.pick(nodes)
	}
	switch k := g.rng.IntN(100); {
	case k < 22 || len(nodes) < 3:
		return cmdAdd(fmt.Sprintf("n%d", g.rng.IntN(diffNodeIDs)), g.cats(), g.comps(false)...)
	case k < 65:
		id := fmt.Sprintf("e%d", g.edges)
		if len(edges) > 0 && g.rng.IntN(15) == 0 {
			id = g.pick(edges) // taken: refused
		} else {
			g.edges++
		}
		return cmdConnect(id, node(), node(), g.pick(diffEdgeTypes))
	case k < 75:
		return &cairnv1.Command{Kind: &cairnv1.Command_SetNodeComponents{SetNodeComponents: &cairnv1.SetNodeComponents{NodeId: node(), Components: g.comps(true)}}}
	case k < 81:
		id, typ := node(), g.pick(diffCompTypes)
		if n := r.nodes[id]; n != nil && len(n.comps) > 0 && g.rng.IntN(4) > 0 {
			typ = g.pick(slices.Sorted(func(yield func(string) bool) {
				for t := range n.comps {
					if !yield(t) {
						return
					}
				}
			}))
		}
		return &cairnv1.Command{Kind: &cairnv1.Command_RemoveNodeComponents{RemoveNodeComponents: &cairnv1.RemoveNodeComponents{NodeId: id, Types: []string{typ}}}}
	case k < 93:
		id := fmt.Sprintf("e%d", g.rng.IntN(g.edges+1))
		if len(edges) > 0 && g.rng.IntN(8) > 0 {
			id = g.pick(edges)
		}
		return &cairnv1.Command{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: id}}}
	default:
		return &cairnv1.Command{Kind: &cairnv1.Command_RemoveNode{RemoveNode: &cairnv1.RemoveNode{NodeId: node()}}}
	}
}

// envelope is one to three commands, all or nothing.
func (g *gen) envelope(r *refGraph) []*cairnv1.Command {
	n := 1
	if g.rng.IntN(6) == 0 {
		n = 2 + g.rng.IntN(2)
	}
	cmds := make([]*cairnv1.Command, n)
	for i := range cmds {
		cmds[i] = g.command(r)
	}
	return cmds
}

// Differential: seeded random command streams over three graphs go to the
// engine and to the reference model; after every batch every query kind is
// asked of the engine, with min_seq the last write's seq, and its answer held
// against the reference. Small adjacency compactions run all along.
func TestQueryDifferential(t *testing.T) {
	forEachQuerySeed(t, func(t *testing.T, seed uint64) { runQueryDifferential(t, seed, 360, 20) })
}

func runQueryDifferential(t *testing.T, seed uint64, commands, batch int) {
	ctx := context.Background()
	eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) {
		cfg.Projections.Shards = 2
		cfg.Projections.ReadModel.CompactMin = 8
		cfg.Projections.ReadModel.CompactDivisor = 4
	})
	d := &differ{t: t, ctx: ctx, eng: eng, rng: rand.New(rand.NewPCG(seed, 1))}
	g := &gen{rng: rand.New(rand.NewPCG(seed, 2))}
	graphs := []string{"d0", "d1", "d2"}
	refs := map[string]*refGraph{}
	for _, name := range graphs {
		refs[name], _ = newRefGraph().applyEnvelope([]*cairnv1.Command{cmdCreate()})
		rep, err := eng.Execute(ctx, env(name, "create-"+name, cmdCreate()))
		if err != nil {
			t.Fatal(err)
		}
		d.minSeq = rep.GetSeq()
	}
	accepted := 0
	for i := range commands {
		name := graphs[g.rng.IntN(len(graphs))]
		cmds := g.envelope(refs[name])
		next, ok := refs[name].applyEnvelope(cmds)
		rep, err := eng.Execute(ctx, env(name, fmt.Sprintf("c%d", i), cmds...))
		if ok != (err == nil) {
			t.Fatalf("command %d on %s %v: engine error %v, reference accepts: %v", i, name, cmds, err, ok)
		}
		if ok {
			refs[name] = next
			d.minSeq = rep.GetSeq()
			accepted++
		}
		if (i+1)%batch == 0 {
			for _, name := range graphs {
				d.check(name, refs[name])
			}
		}
	}
	t.Logf("%d of %d commands accepted; %d paths (%d costing other than their hops), %d without; %d k-hops reached distance 2; %d multi-page components",
		accepted, commands, d.paths, d.weighted, d.noPaths, d.khopFar, d.bigComps)
	if accepted < commands/2 || d.paths < 50 || d.weighted < 10 || d.noPaths < 10 || d.khopFar < 50 || d.bigComps < 20 {
		t.Fatalf("the stream is too thin to compare")
	}
	// A deleted graph answers NOT_FOUND to every query.
	rep, err := eng.Execute(ctx, env("d2", "delete-d2", &cairnv1.Command{Kind: &cairnv1.Command_DeleteGraph{DeleteGraph: &cairnv1.DeleteGraph{}}}))
	if err != nil {
		t.Fatal(err)
	}
	d.minSeq = rep.GetSeq()
	refs["d2"].deleted = true
	for _, name := range graphs {
		d.check(name, refs[name])
	}
}

// differ asks the engine and holds the answers against a reference graph.
type differ struct {
	t      *testing.T
	ctx    context.Context
	eng    *cairn.Engine
	rng    *rand.Rand
	minSeq uint64
	// What the checks met, so that a thin stream fails instead of passing
	// vacuously.
	paths, noPaths, weighted, khopFar, bigComps int
}

// ask runs req at min_seq d.minSeq and checks that the answer is as of it.
func (d *differ) ask(req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	d.t.Helper()
	req.MinSeq = d.minSeq
	rep, _ := d.eng.Query(d.ctx, req)
	// An answer from the read model, a NOT_FOUND included, is as of min_seq
	// or later; a request refused before the wait has none.
	if code := rep.GetError().GetCode(); (code == 0 || code == cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND) && rep.GetAsOfSeq() < d.minSeq {
		d.t.Fatalf("%v: as_of_seq %d is below min_seq %d: %v", req, rep.GetAsOfSeq(), d.minSeq, rep)
	}
	return rep
}

// askErr asks req and checks that it fails with code.
func (d *differ) askErr(req *cairnv1.QueryRequest, code cairnv1.ErrorCode) {
	d.t.Helper()
	if rep := d.ask(req); rep.GetError().GetCode() != code {
		d.t.Fatalf("%v: got %v, want %v", req, rep, code)
	}
}

// askOK asks req and checks that it does not fail.
func (d *differ) askOK(req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	d.t.Helper()
	rep := d.ask(req)
	if rep.GetError() != nil {
		d.t.Fatalf("%v: %v", req, rep.GetError())
	}
	return rep
}

func (d *differ) limit() uint32 { return uint32(1 + d.rng.IntN(4)) }

// pages follows next cursors from req, setting each one with set, and
// returns the items of every page, failing on a repeated item.
func (d *differ) pages(req *cairnv1.QueryRequest, set func(cursor string), items func(*cairnv1.QueryReply) ([]string, string)) []string {
	d.t.Helper()
	var all []string
	seen := map[string]bool{}
	for range 1000 {
		rep := d.askOK(req)
		page, next := items(rep)
		for _, x := range page {
			if seen[x] {
				d.t.Fatalf("%v: %q comes twice", req, x)
			}
			seen[x] = true
		}
		all = append(all, page...)
		if next == "" {
			slices.Sort(all)
			return all
		}
		set(next)
	}
	d.t.Fatalf("%v: more than 1000 pages", req)
	return nil
}

func sameSet(got, want []string) bool {
	return slices.Equal(got, want) || len(got) == 0 && len(want) == 0
}

func (d *differ) find(graph string, fn *cairnv1.FindNodes) []string {
	fn.Limit = d.limit()
	req := queryOf(graph, 0, fn)
	return d.pages(req, func(c string) { fn.Cursor = c }, func(r *cairnv1.QueryReply) ([]string, string) {
		return r.GetNodes().GetNodeIds(), r.GetNodes().GetNextCursor()
	})
}

// check asks every query kind of graph and compares with r.
func (d *differ) check(graph string, r *refGraph) {
	t := d.t
	ids := make([]string, diffNodeIDs)
	for i := range ids {
		ids[i] = fmt.Sprintf("n%d", i)
	}
	if r.deleted {
		for _, q := range []proto.Message{
			&cairnv1.GetStats{},
			&cairnv1.GetNode{NodeId: ids[0]},
			&cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: diffCats[0]}},
			&cairnv1.ListNeighbors{NodeId: ids[0]},
			&cairnv1.KHop{NodeId: ids[0], Depth: 2},
			&cairnv1.ShortestPath{FromNodeId: ids[0], ToNodeId: ids[1]},
			&cairnv1.GetComponent{NodeId: ids[0]},
			&cairnv1.CountComponents{},
			&cairnv1.TopDegree{},
		} {
			d.askErr(queryOf(graph, 0, q), cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
		}
		return
	}

	// Stats and single nodes.
	if got := d.askOK(queryOf(graph, 0, &cairnv1.GetStats{})).GetStats(); !proto.Equal(got, r.stats(10)) {
		t.Fatalf("%s stats:\n got %v\nwant %v", graph, got, r.stats(10))
	}
	for _, id := range ids {
		req := queryOf(graph, 0, &cairnv1.GetNode{NodeId: id})
		if r.nodes[id] == nil {
			d.askErr(req, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
			continue
		}
		if got := d.askOK(req).GetNode(); !proto.Equal(got, r.nodeView(id)) {
			t.Fatalf("%s node %s:\n got %v\nwant %v", graph, id, got, r.nodeView(id))
		}
	}

	// Find, by type, by type and value, by category, paged.
	for _, typ := range append(slices.Clone(diffCompTypes), "absent") {
		want := r.find(func(n *refNode) bool { _, ok := n.comps[typ]; return ok })
		if got := d.find(graph, &cairnv1.FindNodes{By: &cairnv1.FindNodes_ComponentType{ComponentType: typ}}); !sameSet(got, want) {
			t.Fatalf("%s find type %s: got %v, want %v", graph, typ, got, want)
		}
		for _, val := range append(slices.Clone(diffValues[typ]), "absent") {
			want := r.find(func(n *refNode) bool { v, ok := n.comps[typ]; return ok && v == val })
			c := &cairnv1.Component{Type: typ, Value: []byte(val)}
			if got := d.find(graph, &cairnv1.FindNodes{By: &cairnv1.FindNodes_Component{Component: c}}); !sameSet(got, want) {
				t.Fatalf("%s find %s=%s: got %v, want %v", graph, typ, val, got, want)
			}
		}
	}
	for _, cat := range append(slices.Clone(diffCats), "absent") {
		want := r.find(func(n *refNode) bool { return n.cats[cat] })
		if got := d.find(graph, &cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: cat}}); !sameSet(got, want) {
			t.Fatalf("%s find category %s: got %v, want %v", graph, cat, got, want)
		}
	}

	// Neighbours: every node, every direction, any type and one type, paged.
	for _, id := range ids {
		for _, dir := range diffDirs[1:] {
			for _, et := range []string{"", d.pickEdgeType()} {
				ln := &cairnv1.ListNeighbors{NodeId: id, Direction: dir, EdgeType: et, Limit: d.limit()}
				req := queryOf(graph, 0, ln)
				if r.nodes[id] == nil {
					d.askErr(req, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
					continue
				}
				got := d.pages(req, func(c string) { ln.Cursor = c }, func(rep *cairnv1.QueryReply) ([]string, string) {
					var out []string
					for _, n := range rep.GetNeighbors().GetNeighbors() {
						out = append(out, n.GetEdgeId()+" "+n.GetNodeId()+" "+n.GetEdgeType())
					}
					return out, rep.GetNeighbors().GetNextCursor()
				})
				var want []string
				for _, n := range r.incident(id, dir, et) {
					want = append(want, n.edge+" "+n.node+" "+n.typ)
				}
				slices.Sort(want)
				if !sameSet(got, want) {
					t.Fatalf("%s neighbours of %s %v type %q:\n got %q\nwant %q", graph, id, dir, et, got, want)
				}
			}
		}
	}

	// K-hop: every node, a random direction, type and depth; exact order.
	for _, id := range ids {
		kh := &cairnv1.KHop{NodeId: id, Direction: diffDirs[d.rng.IntN(len(diffDirs))], Depth: uint32(1 + d.rng.IntN(3))}
		if d.rng.IntN(3) == 0 {
			kh.EdgeType = d.pickEdgeType()
		}
		req := queryOf(graph, 0, kh)
		if r.nodes[id] == nil {
			d.askErr(req, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
			continue
		}
		want := &cairnv1.KHopResult{Nodes: r.khop(id, kh.Direction, kh.EdgeType, int(kh.Depth))}
		if n := len(want.Nodes); n > 0 && want.Nodes[n-1].Distance >= 2 {
			d.khopFar++
		}
		if got := d.askOK(req).GetKHop(); !proto.Equal(got, want) {
			t.Fatalf("%s k-hop %v:\n got %v\nwant %v", graph, kh, got, want)
		}
	}

	// Shortest paths between random pairs, by hops or by weight.
	nodes := r.sortedNodes()
	someNode := func() string {
		if len(nodes) == 0 || d.rng.IntN(10) == 0 {
			return ids[d.rng.IntN(len(ids))]
		}
		return nodes[d.rng.IntN(len(nodes))]
	}
	for range 25 {
		sp := &cairnv1.ShortestPath{FromNodeId: someNode(), ToNodeId: someNode(), Direction: diffDirs[d.rng.IntN(len(diffDirs))]}
		if d.rng.IntN(4) == 0 {
			sp.EdgeType = d.pickEdgeType()
		}
		if d.rng.IntN(2) == 0 {
			sp.Weight = "w"
		}
		req := queryOf(graph, 0, sp)
		if r.nodes[sp.FromNodeId] == nil || r.nodes[sp.ToNodeId] == nil {
			d.askErr(req, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
			continue
		}
		cost, ok := r.pathCost(sp.FromNodeId, sp.ToNodeId, sp.Direction, sp.EdgeType, sp.Weight)
		if !ok {
			d.noPaths++
			d.askErr(req, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
			continue
		}
		p := d.askOK(req).GetPath()
		d.paths++
		if hops, _ := r.pathCost(sp.FromNodeId, sp.ToNodeId, sp.Direction, sp.EdgeType, ""); sp.Weight != "" && hops != cost {
			d.weighted++
		}
		if p.GetCost() != cost {
			t.Fatalf("%s shortest path %v: cost %v, want %v (%v)", graph, sp, p.GetCost(), cost, p)
		}
		if bad := r.checkPath(p, sp.FromNodeId, sp.ToNodeId, sp.Direction, sp.EdgeType, sp.Weight); bad != "" {
			t.Fatalf("%s shortest path %v: %v: %s", graph, sp, p, bad)
		}
	}

	// Weakly connected components: a page walk of some nodes' component,
	// and the count.
	comp := r.components()
	for range 10 {
		id := ids[d.rng.IntN(len(ids))]
		gc := &cairnv1.GetComponent{NodeId: id, Limit: d.limit()}
		req := queryOf(graph, 0, gc)
		if r.nodes[id] == nil {
			d.askErr(req, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
			continue
		}
		var want []string
		for x, root := range comp {
			if root == comp[id] {
				want = append(want, x)
			}
		}
		slices.Sort(want)
		if len(want) > 4 {
			d.bigComps++
		}
		got := d.pages(req, func(c string) { gc.Cursor = c }, func(rep *cairnv1.QueryReply) ([]string, string) {
			if s := rep.GetComponent().GetSize(); s != uint64(len(want)) {
				t.Fatalf("%s component of %s: size %d, want %d", graph, id, s, len(want))
			}
			return rep.GetComponent().GetNodeIds(), rep.GetComponent().GetNextCursor()
		})
		if !sameSet(got, want) {
			t.Fatalf("%s component of %s: got %v, want %v", graph, id, got, want)
		}
	}
	roots := map[string]bool{}
	for _, root := range comp {
		roots[root] = true
	}
	cc := d.askOK(queryOf(graph, 0, &cairnv1.CountComponents{}))
	if got := cc.GetComponentCount().GetComponents(); got != uint64(len(roots)) {
		t.Fatalf("%s component count %d, want %d", graph, got, len(roots))
	}

	// Top degree, every kind, k 0 (10), small and above the node count.
	for _, kind := range []cairnv1.DegreeKind{cairnv1.DegreeKind_DEGREE_KIND_UNSPECIFIED, cairnv1.DegreeKind_DEGREE_KIND_TOTAL,
		cairnv1.DegreeKind_DEGREE_KIND_OUT, cairnv1.DegreeKind_DEGREE_KIND_IN} {
		for _, k := range []uint32{0, 1, 3, 50} {
			want := r.top(cmp0(int(k), 10), kind)
			req := queryOf(graph, 0, &cairnv1.TopDegree{K: k, Kind: kind})
			if got := d.askOK(req).GetTop(); !proto.Equal(got, &cairnv1.TopNodes{Nodes: want}) {
				t.Fatalf("%s top %d by %v:\n got %v\nwant %v", graph, k, kind, got, want)
			}
		}
	}
}

func (d *differ) pickEdgeType() string {
	return []string{"uses", "knows", "absent"}[d.rng.IntN(3)]
}

// cmp0 is v, or def when v is 0.
func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
