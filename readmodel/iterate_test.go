package readmodel

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TestLiveNodesAndEdges checks the iterators against the reference model on
// seeded random histories (with compactions, which free edge indices), and
// that their order is the same for a second graph fed the same events, for
// a snapshot's round trip, and that a graph rebuilt from them answers as
// the original does.
func TestLiveNodesAndEdges(t *testing.T) {
	forEachSeed(t, func(t *testing.T, seed uint64) {
		cfg := DefaultConfig()
		cfg.CompactMin, cfg.CompactDivisor = 8, 4
		g, _ := New("g", cfg)
		twin, _ := New("g", cfg)
		gn := &gen{r: rand.New(rand.NewPCG(seed, 9)), ref: newRef()}
		first := map[string]string{} // node -> its first category
		create := []*cairnv1.Event{created()}
		for _, h := range []*Graph{g, twin} {
			if err := h.ApplyTx(1, create); err != nil {
				t.Fatal(err)
			}
		}
		for b := range 300 {
			seq := uint64(b + 2)
			evs := gn.tx()
			for _, ev := range evs {
				if na := ev.GetNodeAdded(); na != nil {
					first[na.GetNodeId()] = ""
					if len(na.GetCategories()) > 0 {
						first[na.GetNodeId()] = na.GetCategories()[0]
					}
				}
			}
			for _, h := range []*Graph{g, twin} {
				if err := h.ApplyTx(seq, evs); err != nil {
					t.Fatalf("batch %d: %v", b, err)
				}
			}
			if b%25 != 24 {
				continue
			}
			nodes, edges := slices.Collect(g.LiveNodes()), slices.Collect(g.LiveEdges())
			checkLive(t, nodes, edges, gn.ref, first)
			if !slices.EqualFunc(nodes, slices.Collect(twin.LiveNodes()), sameNode) || !slices.Equal(edges, slices.Collect(twin.LiveEdges())) {
				t.Fatalf("batch %d: the same events gave another order", b)
			}
			loaded, err := LoadSnapshot(g.AppendSnapshot(nil), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(nodes, slices.Collect(loaded.LiveNodes()), sameNode) || !slices.Equal(edges, slices.Collect(loaded.LiveEdges())) {
				t.Fatalf("batch %d: a snapshot's round trip changed the order", b)
			}
			rebuilt := rebuild(t, nodes, edges)
			if want, got := snapshot(t, g), snapshot(t, rebuilt); got != want {
				t.Fatalf("batch %d: a graph rebuilt from the iterators answers\n%s\nwant\n%s", b, got, want)
			}
		}
	})
}

func sameNode(a, b LiveNode) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func checkLive(t *testing.T, nodes []LiveNode, edges []LiveEdge, ref *refModel, first map[string]string) {
	t.Helper()
	if len(nodes) != len(ref.nodes) || len(edges) != len(ref.edges) {
		t.Fatalf("%d nodes and %d edges, want %d and %d", len(nodes), len(edges), len(ref.nodes), len(ref.edges))
	}
	for _, n := range nodes {
		rn, ok := ref.nodes[n.ID]
		if !ok {
			t.Fatalf("node %q is not live", n.ID)
		}
		if !slices.Equal(slices.Sorted(slices.Values(n.Categories)), rn.cats) || len(n.Categories) > 0 && n.Categories[0] != first[n.ID] {
			t.Fatalf("node %q categories %v, want %v first %q", n.ID, n.Categories, rn.cats, first[n.ID])
		}
		comps := map[string]string{}
		for i, c := range n.Components {
			comps[c.Type] = string(c.Value)
			if i > 0 && n.Components[i-1].Type >= c.Type {
				t.Fatalf("node %q components not sorted: %v", n.ID, n.Components)
			}
		}
		if !maps.Equal(comps, rn.comps) {
			t.Fatalf("node %q components %v, want %v", n.ID, comps, rn.comps)
		}
		if o, i := ref.degrees(n.ID); n.Degree != o+i {
			t.Fatalf("node %q degree %d, want %d", n.ID, n.Degree, o+i)
		}
	}
	for _, e := range edges {
		re, ok := ref.edges[e.ID]
		if !ok || re != (refEdge{e.From, e.To, e.Type}) {
			t.Fatalf("edge %v, want %v (live %v)", e, re, ok)
		}
	}
}

// rebuild makes a graph from the iterators' output.
func rebuild(t *testing.T, nodes []LiveNode, edges []LiveEdge) *Graph {
	t.Helper()
	evs := []*cairnv1.Event{created()}
	for _, n := range nodes {
		var cs []*cairnv1.Component
		for _, c := range n.Components {
			cs = append(cs, comp(c.Type, string(c.Value)))
		}
		evs = append(evs, nodeAdded(n.ID, n.Categories, cs...))
	}
	for _, e := range edges {
		evs = append(evs, edgeAdded(e.ID, e.From, e.To, e.Type))
	}
	g, _ := New("g", DefaultConfig())
	if err := g.ApplyTx(1, evs); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestLiveDeletedGraph(t *testing.T) {
	g := newGraph(t)
	if err := g.ApplyTx(2, []*cairnv1.Event{nodeAdded("a", nil), edgeAdded("e", "a", "a", "")}); err != nil {
		t.Fatal(err)
	}
	if n, e := slices.Collect(g.LiveNodes()), slices.Collect(g.LiveEdges()); len(n) != 1 || n[0].Degree != 2 || len(e) != 1 {
		t.Fatalf("before deletion: %v %v", n, e)
	}
	del := &cairnv1.Event{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: &cairnv1.GraphDeleted{}}}
	if err := g.ApplyTx(3, []*cairnv1.Event{del}); err != nil {
		t.Fatal(err)
	}
	if n, e := slices.Collect(g.LiveNodes()), slices.Collect(g.LiveEdges()); len(n)+len(e) != 0 {
		t.Fatalf("a deleted graph lists %v %v", n, e)
	}
}
