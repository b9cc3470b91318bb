package cairn_test

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// refGraph is the naive reference model of one graph that the differential
// tests hold the engine's answers against: plain maps, a BFS, an O(n²)
// Dijkstra. It decides commands as the graph aggregate does (actors/decide.go)
// so that it also predicts which ones the engine refuses.
type refGraph struct {
	created, deleted bool
	nodes            map[string]*refNode
	edges            map[string]refEdge
	version          uint64 // events applied
}

type refNode struct {
	comps map[string]string // type -> value
	cats  map[string]bool
}

type refEdge struct{ src, dst, typ string }

// refNbr is one edge at a node and the node at its other end.
type refNbr struct{ edge, node, typ string }

func newRefGraph() *refGraph {
	return &refGraph{nodes: map[string]*refNode{}, edges: map[string]refEdge{}}
}

func (r *refGraph) clone() *refGraph {
	c := &refGraph{created: r.created, deleted: r.deleted, version: r.version,
		nodes: make(map[string]*refNode, len(r.nodes)), edges: maps.Clone(r.edges)}
	for id, n := range r.nodes {
		c.nodes[id] = &refNode{comps: maps.Clone(n.comps), cats: maps.Clone(n.cats)}
	}
	return c
}

var errRefused = errors.New("refused")

// apply decides and applies one command; it returns errRefused, changing
// nothing that matters (callers apply envelopes to a clone), when the
// aggregate would refuse it.
func (r *refGraph) apply(c *cairnv1.Command) error {
	if _, ok := c.GetKind().(*cairnv1.Command_CreateGraph); ok {
		if r.created {
			return errRefused
		}
		r.created = true
		r.version++
		return nil
	}
	if !r.created || r.deleted {
		return errRefused
	}
	switch k := c.GetKind().(type) {
	case *cairnv1.Command_AddNode:
		id := k.AddNode.GetNodeId()
		if r.nodes[id] != nil {
			return errRefused
		}
		n := &refNode{comps: map[string]string{}, cats: map[string]bool{}}
		for _, cp := range k.AddNode.GetComponents() {
			n.comps[cp.GetType()] = string(cp.GetValue())
		}
		for _, cat := range k.AddNode.GetCategories() {
			n.cats[cat] = true
		}
		r.nodes[id] = n
	case *cairnv1.Command_SetNodeComponents:
		n := r.nodes[k.SetNodeComponents.GetNodeId()]
		if n == nil {
			return errRefused
		}
		for _, cp := range k.SetNodeComponents.GetComponents() {
			n.comps[cp.GetType()] = string(cp.GetValue())
		}
	case *cairnv1.Command_RemoveNodeComponents:
		n := r.nodes[k.RemoveNodeComponents.GetNodeId()]
		if n == nil {
			return errRefused
		}
		for _, typ := range k.RemoveNodeComponents.GetTypes() {
			if _, ok := n.comps[typ]; !ok {
				return errRefused
			}
		}
		for _, typ := range k.RemoveNodeComponents.GetTypes() {
			delete(n.comps, typ)
		}
	case *cairnv1.Command_RemoveNode:
		id := k.RemoveNode.GetNodeId()
		if r.nodes[id] == nil {
			return errRefused
		}
		for eid, e := range r.edges {
			if e.src == id || e.dst == id {
				delete(r.edges, eid)
				r.version++
			}
		}
		delete(r.nodes, id)
	case *cairnv1.Command_ConnectNodes:
		cn := k.ConnectNodes
		if _, ok := r.edges[cn.GetEdgeId()]; ok || r.nodes[cn.GetSource()] == nil || r.nodes[cn.GetTarget()] == nil {
			return errRefused
		}
		r.edges[cn.GetEdgeId()] = refEdge{src: cn.GetSource(), dst: cn.GetTarget(), typ: cn.GetEdgeType()}
	case *cairnv1.Command_DisconnectNodes:
		if _, ok := r.edges[k.DisconnectNodes.GetEdgeId()]; !ok {
			return errRefused
		}
		delete(r.edges, k.DisconnectNodes.GetEdgeId())
	case *cairnv1.Command_DeleteGraph:
		r.deleted = true
	default:
		return fmt.Errorf("reference model: command %T", c.GetKind())
	}
	r.version++
	return nil
}

// applyEnvelope applies cmds all or nothing and says whether they were
// accepted.
func (r *refGraph) applyEnvelope(cmds []*cairnv1.Command) (*refGraph, bool) {
	next := r.clone()
	for _, c := range cmds {
		if err := next.apply(c); err != nil {
			return r, false
		}
	}
	return next, true
}

func (r *refGraph) sortedNodes() []string { return slices.Sorted(maps.Keys(r.nodes)) }
func (r *refGraph) sortedEdges() []string { return slices.Sorted(maps.Keys(r.edges)) }

// dirs says which ends a direction follows; DIRECTION_UNSPECIFIED is out.
func dirs(d cairnv1.Direction) (out, in bool) {
	switch d {
	case cairnv1.Direction_DIRECTION_IN:
		return false, true
	case cairnv1.Direction_DIRECTION_BOTH:
		return true, true
	}
	return true, false
}

// incident lists the edges at u in direction d of type etype ("" for any);
// with both directions a self-loop comes once.
func (r *refGraph) incident(u string, d cairnv1.Direction, etype string) []refNbr {
	out, in := dirs(d)
	var res []refNbr
	for id, e := range r.edges {
		if etype != "" && e.typ != etype {
			continue
		}
		if out && e.src == u {
			res = append(res, refNbr{id, e.dst, e.typ})
			continue
		}
		if in && e.dst == u {
			res = append(res, refNbr{id, e.src, e.typ})
		}
	}
	return res
}

// khop is a plain BFS to depth, the start left out, by distance then id.
func (r *refGraph) khop(u string, d cairnv1.Direction, etype string, depth int) []*cairnv1.ReachedNode {
	dist := map[string]int{u: 0}
	front := []string{u}
	var res []*cairnv1.ReachedNode
	for level := 1; level <= depth; level++ {
		var next []string
		for _, x := range front {
			for _, nb := range r.incident(x, d, etype) {
				if _, ok := dist[nb.node]; !ok {
					dist[nb.node] = level
					next = append(next, nb.node)
					res = append(res, &cairnv1.ReachedNode{NodeId: nb.node, Distance: uint32(level)})
				}
			}
		}
		front = next
	}
	slices.SortFunc(res, func(a, b *cairnv1.ReachedNode) int {
		return cmp.Or(cmp.Compare(a.Distance, b.Distance), cmp.Compare(a.NodeId, b.NodeId))
	})
	return res
}

// weightOf is what entering u costs: its weight component read as a number,
// 1 when it has none or the value is no finite number at least 0.
func (r *refGraph) weightOf(u, weight string) float64 {
	s, ok := r.nodes[u].comps[weight]
	if !ok {
		return 1
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 1
	}
	return v
}

// pathCost is the least cost from one node to another (hops when weight is
// "", else Dijkstra with node-entry weights); ok false when there is no path.
func (r *refGraph) pathCost(from, to string, d cairnv1.Direction, etype, weight string) (float64, bool) {
	cost := map[string]float64{from: 0}
	done := map[string]bool{}
	for {
		u, best := "", math.Inf(1)
		for x, c := range cost {
			if !done[x] && (c < best || c == best && x < u) {
				u, best = x, c
			}
		}
		if u == "" {
			return 0, false
		}
		if u == to {
			return best, true
		}
		done[u] = true
		for _, nb := range r.incident(u, d, etype) {
			step := 1.0
			if weight != "" {
				step = r.weightOf(nb.node, weight)
			}
			if c, ok := cost[nb.node]; !ok || best+step < c {
				cost[nb.node] = best + step
			}
		}
	}
}

// checkPath says what is wrong with p as a path from one node to another
// along edges in direction d of type etype, or "" when it is one; it also
// checks p's cost against the sum of its steps.
func (r *refGraph) checkPath(p *cairnv1.PathResult, from, to string, d cairnv1.Direction, etype, weight string) string {
	nodes, edges := p.GetNodeIds(), p.GetEdgeIds()
	if len(nodes) == 0 || nodes[0] != from || nodes[len(nodes)-1] != to || len(edges) != len(nodes)-1 {
		return "the path does not join the two nodes"
	}
	out, in := dirs(d)
	sum := 0.0
	for i, eid := range edges {
		e, ok := r.edges[eid]
		switch {
		case !ok:
			return fmt.Sprintf("edge %q does not exist", eid)
		case etype != "" && e.typ != etype:
			return fmt.Sprintf("edge %q has type %q", eid, e.typ)
		case !(out && e.src == nodes[i] && e.dst == nodes[i+1]) && !(in && e.dst == nodes[i] && e.src == nodes[i+1]):
			return fmt.Sprintf("edge %q (%s->%s) does not lead from %q to %q", eid, e.src, e.dst, nodes[i], nodes[i+1])
		}
		if weight == "" {
			sum++
		} else {
			sum += r.weightOf(nodes[i+1], weight)
		}
	}
	if sum != p.GetCost() {
		return fmt.Sprintf("its steps cost %v, not %v", sum, p.GetCost())
	}
	return ""
}

// components maps each node to the least node id of its weakly connected
// component.
func (r *refGraph) components() map[string]string {
	adj := map[string][]string{}
	for _, e := range r.edges {
		adj[e.src] = append(adj[e.src], e.dst)
		adj[e.dst] = append(adj[e.dst], e.src)
	}
	comp := map[string]string{}
	for _, start := range r.sortedNodes() {
		if _, ok := comp[start]; ok {
			continue
		}
		comp[start] = start
		queue := []string{start}
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			for _, y := range adj[x] {
				if _, ok := comp[y]; !ok {
					comp[y] = start
					queue = append(queue, y)
				}
			}
		}
	}
	return comp
}

// degrees returns each node's out- and in-degree; a self-loop counts in
// both.
func (r *refGraph) degrees() (out, in map[string]int) {
	out, in = map[string]int{}, map[string]int{}
	for _, e := range r.edges {
		out[e.src]++
		in[e.dst]++
	}
	return out, in
}

// top lists the k nodes of highest degree of a kind, ties by id.
func (r *refGraph) top(k int, kind cairnv1.DegreeKind) []*cairnv1.NodeDegree {
	out, in := r.degrees()
	var res []*cairnv1.NodeDegree
	for id := range r.nodes {
		d := out[id] + in[id]
		switch kind {
		case cairnv1.DegreeKind_DEGREE_KIND_OUT:
			d = out[id]
		case cairnv1.DegreeKind_DEGREE_KIND_IN:
			d = in[id]
		}
		res = append(res, &cairnv1.NodeDegree{NodeId: id, Degree: uint32(d)})
	}
	slices.SortFunc(res, func(a, b *cairnv1.NodeDegree) int {
		return cmp.Or(cmp.Compare(b.Degree, a.Degree), cmp.Compare(a.NodeId, b.NodeId))
	})
	return res[:min(k, len(res))]
}

func (r *refGraph) nodeView(id string) *cairnv1.NodeView {
	n := r.nodes[id]
	out, in := r.degrees()
	v := &cairnv1.NodeView{NodeId: id, Categories: slices.Sorted(maps.Keys(n.cats)), OutDegree: uint32(out[id]), InDegree: uint32(in[id])}
	for _, typ := range slices.Sorted(maps.Keys(n.comps)) {
		v.Components = append(v.Components, &cairnv1.Component{Type: typ, Value: []byte(n.comps[typ])})
	}
	return v
}

// find lists, sorted, the nodes for which has is true.
func (r *refGraph) find(has func(n *refNode) bool) []string {
	var res []string
	for id, n := range r.nodes {
		if has(n) {
			res = append(res, id)
		}
	}
	slices.Sort(res)
	return res
}

func (r *refGraph) stats(topK int) *cairnv1.GraphStats {
	s := &cairnv1.GraphStats{Version: r.version, Nodes: uint64(len(r.nodes)), Edges: uint64(len(r.edges))}
	out, in := r.degrees()
	hist, types, distinct := map[uint32]uint64{}, map[string]uint64{}, map[[2]string]bool{}
	for id, n := range r.nodes {
		hist[uint32(out[id]+in[id])]++
		for typ, val := range n.comps {
			types[typ]++
			distinct[[2]string{typ, val}] = true
		}
	}
	s.DistinctComponents = uint64(len(distinct))
	for _, d := range slices.Sorted(maps.Keys(hist)) {
		s.Degrees = append(s.Degrees, &cairnv1.DegreeCount{Degree: d, Nodes: hist[d]})
	}
	for _, typ := range slices.Sorted(maps.Keys(types)) {
		s.ComponentTypes = append(s.ComponentTypes, &cairnv1.TypeCount{Type: typ, Nodes: types[typ]})
	}
	s.Top = r.top(topK, cairnv1.DegreeKind_DEGREE_KIND_TOTAL)
	return s
}
