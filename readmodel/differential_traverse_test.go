package readmodel

import (
	"cmp"
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

func runDifferentialTraverse(t *testing.T, seed uint64, batches int) {
	cfg := DefaultConfig()
	cfg.CompactMin, cfg.CompactDivisor = 8, 4
	g, err := New("g", cfg)
	if err != nil {
		t.Fatal(err)
	}
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
