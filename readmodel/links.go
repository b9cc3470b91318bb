package readmodel

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-graph/cairn/internal/adjacency"
)

// Cross-graph links: a graph's reference nodes (category RefCategory, id
// "<other graph>/<node>") and the edges at them. The link index is the
// category index of RefCategory with the adjacency: it lives in the read
// model, so a snapshot load restores it with no format change.

// Names of reference nodes, as package aggregate gives them.
const (
	RefCategory          = "cairn.ref"
	RefDanglingComponent = "ref.dangling"
)

// Link is one cross-graph link as this graph records it.
type Link struct {
	EdgeID, EdgeType string
	Node             string // the local end
	RefNode          string // the local reference node
	OtherGraph       string
	OtherNode        string
	Out              bool   // the edge goes from Node to the other graph
	DanglingSince    uint64 // stream seq of the removal of the other end; 0: live
}

// Hop is one edge from a node that Expand followed: to Node of Graph
// ("" for this graph).
type Hop struct {
	EdgeID, Graph, Node string
}

// isRef reports whether node u is a reference node.
func (g *Graph) isRef(u uint32) bool {
	c, ok := g.categories.lookup(RefCategory)
	return ok && int(c) < len(g.catNodes) && g.catNodes[c] != nil && g.catNodes[c].Contains(u)
}

// RefNodes counts the graph's reference nodes (category RefCategory).
func (g *Graph) RefNodes() int {
	c, ok := g.categories.lookup(RefCategory)
	if !ok || int(c) >= len(g.catNodes) || g.catNodes[c] == nil {
		return 0
	}
	return int(g.catNodes[c].GetCardinality())
}

// splitRef splits a reference node id at its first '/' (graph ids hold none).
func splitRef(id string) (graph, node string) {
	graph, node, _ = strings.Cut(id, "/")
	return graph, node
}

// danglingSince reads reference node u's dangling mark, 0 when it has none.
func (g *Graph) danglingSince(u uint32) uint64 {
	v, err := g.Node(g.nodes.String(u))
	if err != nil {
		return 0
	}
	for _, c := range v.Components {
		if c.Type == RefDanglingComponent {
			n, _ := strconv.ParseUint(string(c.Value), 10, 64)
			return max(n, 1)
		}
	}
	return 0
}

// Links lists the graph's cross-graph links by edge id: all of them, those
// at local node (when not ""), with edge id edge (when not ""), or only
// the dangling ones; after the edge id cursor (exclusive), at most limit,
// and the cursor of the next page ("" on the last).
// Errors: ErrNotFound (graph deleted, or no such node), ErrInvalidArgument.
func (g *Graph) Links(node, edge string, dangling bool, cursor string, limit int) ([]Link, string, error) {
	if err := g.live(); err != nil {
		return nil, "", err
	}
	if err := checkLimit(limit); err != nil {
		return nil, "", err
	}
	if node != "" {
		if _, err := g.lookupNode(node); err != nil {
			return nil, "", err
		}
	}
	c, ok := g.categories.lookup(RefCategory)
	if !ok || int(c) >= len(g.catNodes) || g.catNodes[c] == nil {
		return nil, "", nil
	}
	var out []Link
	it := g.catNodes[c].Iterator()
	for it.HasNext() {
		r := it.Next()
		refID := g.nodes.String(r)
		other, otherNode := splitRef(refID)
		since := g.danglingSince(r)
		if dangling && since == 0 {
			continue
		}
		for _, d := range [...]adjacency.Dir{adjacency.Out, adjacency.In} {
			g.adj.ScanFrom(d, r, 0, func(e uint32) bool {
				local := g.src.Get(int(e))
				if d == adjacency.Out {
					local = g.dst.Get(int(e))
				}
				l := Link{EdgeID: g.edges.String(e), EdgeType: g.types.name(g.etype.Get(int(e))), Node: g.nodes.String(local), RefNode: refID,
					OtherGraph: other, OtherNode: otherNode, Out: d == adjacency.In, DanglingSince: since}
				if (node == "" || l.Node == node) && (edge == "" || l.EdgeID == edge) && l.EdgeID > cursor {
					out = append(out, l)
				}
				return true
			})
		}
	}
	slices.SortFunc(out, func(a, b Link) int { return strings.Compare(a.EdgeID, b.EdgeID) })
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].EdgeID
	}
	return out, next, nil
}

// ExpandNodes returns, for each node id, whether it is a node of the graph (a
// reference node is not) and its hops in direction dir, of edgeType when
// not "": an edge to a reference node is a hop to the other graph's node,
// a dangling one is left out. One level of a traversal across graphs.
// Errors: ErrNotFound (graph deleted), ErrInvalidArgument.
func (g *Graph) ExpandNodes(ids []string, dir Direction, edgeType string) (found []bool, hops [][]Hop, err error) {
	if err := g.live(); err != nil {
		return nil, nil, err
	}
	if dir > Both {
		return nil, nil, fmt.Errorf("direction %d: %w", dir, ErrInvalidArgument)
	}
	typ, anyType := uint32(0), edgeType == ""
	if !anyType {
		t, ok := g.types.lookup(edgeType)
		if !ok {
			typ = ^uint32(0) // no edge has it
		} else {
			typ = t
		}
	}
	phases := []adjacency.Dir{adjacency.Out, adjacency.In}
	switch dir {
	case Out:
		phases = phases[:1]
	case In:
		phases = phases[1:]
	}
	found, hops = make([]bool, len(ids)), make([][]Hop, len(ids))
	dangling := map[uint32]bool{}
	for i, id := range ids {
		u, ok := g.nodes.Lookup(id)
		if !ok || g.isRef(u) {
			continue
		}
		found[i] = true
		for _, d := range phases {
			g.adj.ScanFrom(d, u, 0, func(e uint32) bool {
				if !anyType && g.etype.Get(int(e)) != typ {
					return true
				}
				s, t := g.src.Get(int(e)), g.dst.Get(int(e))
				if dir == Both && d == adjacency.In && s == t {
					return true
				}
				other := t
				if d == adjacency.In {
					other = s
				}
				h := Hop{EdgeID: g.edges.String(e), Node: g.nodes.String(other)}
				if g.isRef(other) {
					dead, seen := dangling[other]
					if !seen {
						dead = g.danglingSince(other) != 0
						dangling[other] = dead
					}
					if dead {
						return true
					}
					h.Graph, h.Node = splitRef(h.Node)
				}
				hops[i] = append(hops[i], h)
				return true
			})
		}
	}
	return found, hops, nil
}

// RefTarget returns the other graph's node that reference node id stands
// for, and whether id is a live (not dangling) reference node.
func (g *Graph) RefTarget(id string) (graph, node string, ok bool) {
	u, found := g.nodes.Lookup(id)
	if !found || !g.isRef(u) || g.danglingSince(u) != 0 {
		return "", "", false
	}
	graph, node = splitRef(id)
	return graph, node, true
}
