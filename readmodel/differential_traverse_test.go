package readmodel

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Naive traversals on the reference model: plain maps, every edge scanned at
// every step.

func (r *refModel) step(id string, dir Direction, typ string) []string {
	var out []string
	for _, e := range r.edges {
		if typ != "" && e.typ != typ {
			continue
		}
		if (dir == Out || dir == Both) && e.src == id {
			out = append(out, e.dst)
		}
		if (dir == In || dir == Both) && e.dst == id {
			out = append(out, e.src)
		}
	}
	return out
}

// khop returns the reached nodes by distance then id, and the size of each
// level.
func (r *refModel) khop(id string, dir Direction, typ string, depth int) ([]Reached, []int) {
	dist := map[string]int{id: 0}
	front := []string{id}
	var levels []int
	for d := 1; d <= depth && len(front) > 0; d++ {
		var next []string
		for _, u := range front {
			for _, v := range r.step(u, dir, typ) {
				if _, ok := dist[v]; !ok {
					dist[v] = d
					next = append(next, v)
				}
			}
		}
		levels = append(levels, len(next))
		front = next
	}
	var out []Reached
	for v, d := range dist {
		if v != id {
			out = append(out, Reached{v, d})
		}
	}
	slices.SortFunc(out, func(a, b Reached) int { return cmp.Or(cmp.Compare(a.Distance, b.Distance), cmp.Compare(a.ID, b.ID)) })
	return out, levels
}

func (r *refModel) weight(id, weight string) float64 {
	if weight == "" {
		return 1
	}
	s, ok := r.nodes[id].comps[weight]
	if !ok {
		return 1
	}
	w, err := strconv.ParseFloat(s, 64)
	if err != nil || w < 0 || math.IsInf(w, 0) || math.IsNaN(w) {
		return 1
	}
	return w
}

// pathCost is Dijkstra by linear scan: the cost of the cheapest path, and
// whether there is one.
func (r *refModel) pathCost(from, to string, dir Direction, typ, weight string) (float64, bool) {
	dist := map[string]float64{from: 0}
	done := map[string]bool{}
	for {
		u, best := "", math.Inf(1)
		for v, d := range dist {
			if !done[v] && (d < best || (d == best && v < u)) {
				u, best = v, d
			}
		}
		if u == "" {
			return 0, false
		}
		if u == to {
			return best, true
		}
		done[u] = true
		for _, v := range r.step(u, dir, typ) {
			c := best + r.weight(v, weight)
			if d, ok := dist[v]; !ok || c < d {
				dist[v] = c
			}
		}
	}
}

// components maps each node to its component's smallest id.
func (r *refModel) components() map[string]string {
	parent := map[string]string{}
	for id := range r.nodes {
		parent[id] = id
	}
	var find func(string) string
	find = func(x string) string {
		if parent[x] != x {
			parent[x] = find(parent[x])
		}
		return parent[x]
	}
	for _, e := range r.edges {
		a, b := find(e.src), find(e.dst)
		if a != b {
			if b < a {
				a, b = b, a
			}
			parent[b] = a
		}
	}
	out := map[string]string{}
	for id := range r.nodes {
		out[id] = find(id)
	}
	return out
}

func TestDifferentialTraverse(t *testing.T) {
	forEachSeed(t, func(t *testing.T, seed uint64) { runDifferentialTraverse(t, seed, 300) })
}

// newCompactingGraph returns an empty graph that compacts its adjacency
// after a few writes, so that the differential tests cross compactions.
func newCompactingGraph(t *testing.T) *Graph {
	t.Helper()
	cfg := DefaultConfig()
	cfg.CompactMin, cfg.CompactDivisor = 8, 4
	g, err := New("g", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func runDifferentialTraverse(t *testing.T, seed uint64, batches int) {
	g := newCompactingGraph(t)
	gn := &gen{r: rand.New(rand.NewPCG(seed, 1)), ref: newRef()}
	if err := g.ApplyTx(1, []*cairnv1.Event{created()}); err != nil {
		t.Fatal(err)
	}
	for b := range batches {
		if err := g.ApplyTx(uint64(b+2), gn.tx()); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		if gn.r.IntN(20) == 0 {
			g.Compact()
		}
		compareTraverse(t, g, gn.ref, gn.r, b)
		if t.Failed() {
			return
		}
	}
}

func compareTraverse(t *testing.T, g *Graph, ref *refModel, r *rand.Rand, batch int) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("batch %d: "+format, append([]any{batch}, args...)...)
	}
	ids := slices.Sorted(maps.Keys(ref.nodes))
	typs := []string{"", "r", "s"}
	for _, id := range ids {
		dir, typ, depth := Direction(r.IntN(3)), typs[r.IntN(len(typs))], 1+r.IntN(MaxDepth)
		var lim TraverseLimits
		if r.IntN(2) == 0 {
			lim = TraverseLimits{MaxFrontier: 1 + r.IntN(8), MaxResults: 1 + r.IntN(20)}
		}
		want, levels := ref.khop(id, dir, typ, depth)
		exceed := lim.MaxResults > 0 && len(want) > lim.MaxResults
		for _, n := range levels {
			exceed = exceed || (lim.MaxFrontier > 0 && n > lim.MaxFrontier)
		}
		got, err := g.KHop(id, dir, typ, depth, lim)
		switch {
		case exceed:
			if !errors.Is(err, ErrLimitExceeded) {
				fail("KHop(%s, %d, %q, %d, %+v) = %v, %v; want ErrLimitExceeded", id, dir, typ, depth, lim, got, err)
			}
		case err != nil:
			fail("KHop(%s, %d, %q, %d, %+v): %v", id, dir, typ, depth, lim, err)
		case fmt.Sprint(got.Nodes) != fmt.Sprint(want):
			fail("KHop(%s, %d, %q, %d) = %v, want %v", id, dir, typ, depth, got.Nodes, want)
		}
	}
	if len(ids) == 0 {
		return
	}
	for range 10 {
		from, to := ids[r.IntN(len(ids))], ids[r.IntN(len(ids))]
		dir, typ := Direction(r.IntN(3)), typs[r.IntN(len(typs))]
		weight := []string{"", "a", "b"}[r.IntN(3)]
		p, err := g.ShortestPath(from, to, dir, typ, weight, TraverseLimits{})
		cost, ok := ref.pathCost(from, to, dir, typ, weight)
		q := fmt.Sprintf("ShortestPath(%s, %s, %d, %q, %q)", from, to, dir, typ, weight)
		if !ok {
			if !errors.Is(err, ErrNotFound) {
				fail("%s = %+v, %v; want ErrNotFound", q, p, err)
			}
			continue
		}
		if err != nil {
			fail("%s: %v", q, err)
			continue
		}
		if p.Cost != cost {
			fail("%s cost %v, want %v (%+v)", q, p.Cost, cost, p)
		}
		if msg := checkPath(ref, p, from, to, dir, typ, weight); msg != "" {
			fail("%s = %+v: %s", q, p, msg)
		}
	}
	comp := ref.components()
	roots := map[string]bool{}
	for _, root := range comp {
		roots[root] = true
	}
	if n, err := g.ComponentCount(); err != nil || n != len(roots) {
		fail("ComponentCount = %d, %v; want %d", n, err, len(roots))
	}
	limit := 1 + r.IntN(5)
	for _, id := range ids {
		var want []string
		for _, v := range ids {
			if comp[v] == comp[id] {
				want = append(want, v)
			}
		}
		var got []string
		size := -1
		for cursor := ""; ; {
			c, err := g.Component(id, cursor, limit)
			if err != nil {
				fail("Component(%s): %v", id, err)
				return
			}
			if size >= 0 && c.Size != size {
				fail("Component(%s) size changes between pages", id)
			}
			size = c.Size
			got = append(got, c.IDs...)
			if cursor = c.Next; cursor == "" {
				break
			}
		}
		slices.Sort(got)
		if size != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
			fail("Component(%s) = %d %v, want %d %v", id, size, got, len(want), want)
		}
	}
}

// checkPath says what is wrong with path p, or "".
func checkPath(ref *refModel, p PathResult, from, to string, dir Direction, typ, weight string) string {
	if len(p.Nodes) == 0 || p.Nodes[0] != from || p.Nodes[len(p.Nodes)-1] != to || len(p.Edges) != len(p.Nodes)-1 {
		return "bad ends or lengths"
	}
	cost := 0.0
	for i, eid := range p.Edges {
		e, ok := ref.edges[eid]
		if !ok {
			return "unknown edge " + eid
		}
		if typ != "" && e.typ != typ {
			return "edge " + eid + " of another type"
		}
		a, b := p.Nodes[i], p.Nodes[i+1]
		fwd, back := e.src == a && e.dst == b, e.dst == a && e.src == b
		if (dir == Out && !fwd) || (dir == In && !back) || (dir == Both && !fwd && !back) {
			return "edge " + eid + " does not join " + a + " and " + b
		}
		cost += ref.weight(b, weight)
	}
	if cost != p.Cost {
		return fmt.Sprintf("edges cost %v, not %v", cost, p.Cost)
	}
	return ""
}

func TestDifferentialComponentPaging(t *testing.T) {
	forEachSeed(t, func(t *testing.T, seed uint64) { runDifferentialComponentPaging(t, seed, 200) })
}

// runDifferentialComponentPaging pages through components with random
// transactions between the pages and checks the cursor's promise: every
// node listed was a member when its page was made, a node that was a member
// on every page comes exactly once, and only a node removed (and added
// again, so with a new dense index) meanwhile may come twice.
func runDifferentialComponentPaging(t *testing.T, seed uint64, walks int) {
	g := newCompactingGraph(t)
	gn := &gen{r: rand.New(rand.NewPCG(seed, 2)), ref: newRef()}
	seq := uint64(1)
	write := func(evs []*cairnv1.Event) {
		t.Helper()
		if err := g.ApplyTx(seq, evs); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		seq++
	}
	write([]*cairnv1.Event{created()})
	for range 40 {
		write(gn.tx())
	}
	for w := range walks {
		start := gn.someNode()
		limit := 1 + gn.r.IntN(4)
		var listed []string
		var always map[string]bool // members on every page so far
		removed := map[string]bool{}
		for cursor := ""; ; {
			comp := gn.ref.components()
			members := map[string]bool{}
			for id, root := range comp {
				if root == comp[start] {
					members[id] = true
				}
			}
			if always == nil {
				always = maps.Clone(members)
			}
			maps.DeleteFunc(always, func(id string, _ bool) bool { return !members[id] })
			c, err := g.Component(start, cursor, limit)
			if err != nil {
				t.Fatalf("walk %d: Component(%s, %q): %v", w, start, cursor, err)
			}
			if c.Size != len(members) {
				t.Errorf("walk %d: Component(%s) size %d, want %d", w, start, c.Size, len(members))
			}
			for _, id := range c.IDs {
				if !members[id] {
					t.Errorf("walk %d: Component(%s) lists %s, not a member", w, start, id)
				}
			}
			listed = append(listed, c.IDs...)
			if cursor = c.Next; cursor == "" {
				break
			}
			// A write between pages, unless it removes the start node.
			tx := gn.tx()
			for _, ev := range tx {
				if id := ev.GetNodeRemoved().GetNodeId(); id != "" {
					removed[id] = true
				}
			}
			if removed[start] {
				start = ""
			}
			write(tx)
			if start == "" {
				break
			}
		}
		seen := map[string]bool{}
		for _, id := range listed {
			if seen[id] && !removed[id] {
				t.Errorf("walk %d: %s listed twice in %v", w, id, listed)
			}
			seen[id] = true
		}
		if start != "" {
			for id := range always {
				if !seen[id] {
					t.Errorf("walk %d: member %s of every page not listed in %v", w, id, listed)
				}
			}
		}
		if t.Failed() {
			return
		}
		write(gn.tx())
	}
}

// TestShortestPathPowerLaw checks ShortestPath against a plain one-sided
// Dijkstra on a power-law graph big enough for hubs, where the pruning and
// the side choice of the bidirectional searches matter: weights include 0,
// fractions, bad values and missing ones.
func TestShortestPathPowerLaw(t *testing.T) {
	const nodes, edges = 3000, 9000
	g := newGraph(t)
	ref := newRef()
	r := rand.New(rand.NewPCG(7, 7))
	vals := []string{"0", "0.5", "1", "2", "3.25", "7", "x", "-1"}
	var tx []*cairnv1.Event
	add := func(ev *cairnv1.Event) { ref.apply(ev); tx = append(tx, ev) }
	for i := range nodes {
		var cs []*cairnv1.Component
		if r.IntN(10) > 0 {
			cs = append(cs, comp("w", vals[r.IntN(len(vals))]))
		}
		add(nodeAdded("n"+strconv.Itoa(i), nil, cs...))
	}
	zipf := rand.NewZipf(r, 1.2, 5, nodes-1)
	for i := range edges {
		add(edgeAdded("e"+strconv.Itoa(i), "n"+strconv.Itoa(r.IntN(nodes)), "n"+strconv.Itoa(int(zipf.Uint64())), edgeTypes[r.IntN(2)]))
	}
	if err := g.ApplyTx(2, tx); err != nil {
		t.Fatal(err)
	}
	// adj[dir][id] lists the (node, edge type) steps of the reference.
	adj := [3]map[string][][2]string{{}, {}, {}}
	for _, e := range ref.edges {
		for _, dir := range []Direction{Out, Both} {
			adj[dir][e.src] = append(adj[dir][e.src], [2]string{e.dst, e.typ})
		}
		for _, dir := range []Direction{In, Both} {
			adj[dir][e.dst] = append(adj[dir][e.dst], [2]string{e.src, e.typ})
		}
	}
	cost := func(from, to string, dir Direction, typ, weight string) (float64, bool) {
		dist := map[string]float64{from: 0}
		done := map[string]bool{}
		q := &refQueue{{from, 0}}
		for q.Len() > 0 {
			u := heap.Pop(q).(refQueued).id
			if done[u] {
				continue
			}
			if u == to {
				return dist[u], true
			}
			done[u] = true
			for _, step := range adj[dir][u] {
				if typ != "" && step[1] != typ {
					continue
				}
				v := step[0]
				c := dist[u] + ref.weight(v, weight)
				if d, ok := dist[v]; !ok || c < d {
					dist[v] = c
					heap.Push(q, refQueued{v, c})
				}
			}
		}
		return 0, false
	}
	for i := range 300 {
		from, to := "n"+strconv.Itoa(r.IntN(nodes)), "n"+strconv.Itoa(r.IntN(nodes))
		dir, typ, weight := Direction(r.IntN(3)), []string{"", "r"}[r.IntN(2)], []string{"", "w", "w"}[r.IntN(3)]
		q := fmt.Sprintf("%d: ShortestPath(%s, %s, %d, %q, %q)", i, from, to, dir, typ, weight)
		p, err := g.ShortestPath(from, to, dir, typ, weight, TraverseLimits{})
		want, ok := cost(from, to, dir, typ, weight)
		switch {
		case !ok:
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s = %+v, %v; want ErrNotFound", q, p, err)
			}
		case err != nil:
			t.Errorf("%s: %v", q, err)
		case p.Cost != want: // the weights are binary fractions: sums are exact
			t.Errorf("%s cost %v, want %v", q, p.Cost, want)
		default:
			if msg := checkPath(ref, p, from, to, dir, typ, weight); msg != "" {
				t.Errorf("%s = %+v: %s", q, p, msg)
			}
		}
	}
}

// refQueue is a container/heap of node ids by cost for the reference.
type refQueue []refQueued

type refQueued struct {
	id   string
	cost float64
}

func (q refQueue) Len() int           { return len(q) }
func (q refQueue) Less(i, j int) bool { return q[i].cost < q[j].cost }
func (q refQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *refQueue) Push(x any)        { *q = append(*q, x.(refQueued)) }
func (q *refQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
