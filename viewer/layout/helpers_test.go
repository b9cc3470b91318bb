package layout

import (
	"math/rand/v2"
	"testing"
)

// testGraph is a random graph: most edges join nearby slots (local
// structure), the rest join uniform random slots.
type testGraph struct {
	nodes    int
	from, to []uint32
}

func genGraph(seed uint64, nodes, edges int) testGraph {
	r := rand.New(rand.NewPCG(seed, 7))
	g := testGraph{nodes: nodes}
	for range edges {
		f := r.IntN(nodes)
		t := r.IntN(nodes)
		if r.IntN(5) != 0 {
			t = (f + 1 + r.IntN(min(nodes-1, 64))) % nodes
		}
		g.from = append(g.from, uint32(f))
		g.to = append(g.to, uint32(t))
	}
	return g
}

// load adds g to l in one transaction.
func (g testGraph) load(l *Layout) {
	for i := range g.nodes {
		l.AddNode(uint32(i))
	}
	for e := range g.from {
		l.AddEdge(uint32(e), g.from[e], g.to[e])
	}
	l.EndTx()
}

func newLayout(t testing.TB, seed uint64, opts ...Option) *Layout {
	t.Helper()
	l, err := New(DefaultParams(), seed, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
