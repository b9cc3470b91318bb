package readmodel

import (
	"cmp"
	"iter"
	"slices"
)

// LiveNode is one node as LiveNodes visits it.
type LiveNode struct {
	ID string
	// Categories in the order the node was added with, duplicates
	// dropped (the viewer colours a node by its first).
	Categories []string
	Components []Component // sorted by type
	Degree     int         // out + in; a self-loop counts twice
}

// LiveEdge is one edge as LiveEdges visits it.
type LiveEdge struct {
	ID, From, To string // From and To are node ids
	Type         string
}

// Edge returns the edge with id id; ok is false when the graph holds none.
// Errors: ErrNotFound (the graph was deleted).
func (g *Graph) Edge(id string) (e LiveEdge, ok bool, err error) {
	if err := g.live(); err != nil {
		return LiveEdge{}, false, err
	}
	x, ok := g.edges.Lookup(id)
	if !ok {
		return LiveEdge{}, false, nil
	}
	i := int(x)
	return LiveEdge{ID: id, From: g.nodes.String(g.src.Get(i)), To: g.nodes.String(g.dst.Get(i)), Type: g.types.name(g.etype.Get(i))}, true, nil
}

// LiveNodes returns an iterator over every node of the graph, in dense
// index order: a deterministic order, a pure function of the events
// applied (indices are freed and reused at points the history fixes, never
// by timing) that a snapshot's round trip keeps. It lets a viewer start
// from a read model instead of replaying the history; LiveNodes then
// LiveEdges is an order in which the graph can be rebuilt. A deleted
// graph has none. The graph must not change while the iterator runs; each
// LiveNode's slices are its own.
func (g *Graph) LiveNodes() iter.Seq[LiveNode] {
	return func(yield func(LiveNode) bool) {
		if g.deleted {
			return
		}
		var buf [16]uint32
		for u := range uint32(g.nodes.Cap()) {
			if !g.nodes.Has(u) {
				continue
			}
			n := LiveNode{ID: g.nodes.String(u), Degree: int(g.outDeg.get(u) + g.inDeg.get(u))}
			for _, c := range g.catsOf(u, buf[:0]) {
				n.Categories = append(n.Categories, g.categories.name(c))
			}
			for _, h := range g.compsOf(u, buf[:0]) {
				n.Components = append(n.Components, Component{Type: g.store.types.name(g.store.typ[h]), Value: []byte(g.store.val[h])})
			}
			slices.SortFunc(n.Components, func(a, b Component) int { return cmp.Compare(a.Type, b.Type) })
			if !yield(n) {
				return
			}
		}
	}
}

// LiveEdges returns an iterator over every edge of the graph, in dense
// index order (deterministic, as for LiveNodes). A deleted graph has none.
// The graph must not change while the iterator runs.
func (g *Graph) LiveEdges() iter.Seq[LiveEdge] {
	return func(yield func(LiveEdge) bool) {
		if g.deleted {
			return
		}
		for e := range uint32(g.edges.Cap()) {
			if !g.edges.Has(e) {
				continue
			}
			i := int(e)
			le := LiveEdge{ID: g.edges.String(e), From: g.nodes.String(g.src.Get(i)), To: g.nodes.String(g.dst.Get(i)),
				Type: g.types.name(g.etype.Get(i))}
			if !yield(le) {
				return
			}
		}
	}
}
