package readmodel

import (
	"cmp"
	"fmt"
	"slices"
)

// Stats is the metrics cache, kept up to date incrementally.
type Stats struct {
	AsOf               uint64
	Version            uint64
	Nodes              int
	Edges              int
	DistinctComponents int           // flyweight values stored
	Degrees            []DegreeCount // histogram of total degree (out+in), by degree
	Top                []NodeDegree  // the Config.TopK nodes of highest total degree, ties by id
	ComponentTypes     []TypeCount   // nodes per component type, by type
}

// DegreeCount is one bucket of the degree histogram.
type DegreeCount struct {
	Degree int
	Nodes  int
}

// NodeDegree is one top-degree node.
type NodeDegree struct {
	ID     string
	Degree int
}

// TypeCount is the number of nodes holding a component type.
type TypeCount struct {
	Type  string
	Nodes int
}

// DegreeKind selects the degree TopDegree ranks by.
type DegreeKind uint8

// Degree kinds.
const (
	TotalDegree DegreeKind = iota // out-degree plus in-degree
	OutDegree
	InDegree
)

// topCache holds the last top-k answers (up to maxTopAnswers of them, one
// per k and kind), kept current as degrees change: a change that cannot
// move a node into or within an answer costs a comparison, one that does
// an insertion into it. Only what could bring in a node from outside the
// answer (a member's degree falling, a member removed) drops the answer,
// and the next query computes it again in two passes over the graph.
type topCache struct {
	answers []topAnswer
}

// maxTopAnswers bounds the answers kept: Stats' and a few TopDegree
// queries'.
const maxTopAnswers = 4

// topAnswer is one cached top-k answer. It holds every live node when it
// holds fewer than k.
type topAnswer struct {
	k     int
	kind  DegreeKind
	top   []NodeDegree
	nodes []uint32 // top[i]'s node index
}

// find returns the answer for k and kind, or nil.
func (c *topCache) find(k int, kind DegreeKind) *topAnswer {
	for i := range c.answers {
		if a := &c.answers[i]; a.k == k && a.kind == kind {
			return a
		}
	}
	return nil
}

// keep adds a, dropping the oldest answer when full.
func (c *topCache) keep(a topAnswer) {
	if len(c.answers) == maxTopAnswers {
		c.answers = slices.Delete(c.answers, 0, 1)
	}
	c.answers = append(c.answers, a)
}

// ranksBefore reports whether a node of degree d and id ranks before nd.
func ranksBefore(d int, id string, nd NodeDegree) bool {
	return d > nd.Degree || d == nd.Degree && id < nd.ID
}

// topNodeAdded updates the answers for live node u, just added with no
// edges.
func (g *Graph) topNodeAdded(u uint32) {
	for i := range g.top.answers {
		a := &g.top.answers[i]
		// A full answer takes a node of degree 0 only when its last has
		// degree 0 too: the id (a string built) only matters then.
		if len(a.top) == a.k && a.top[len(a.top)-1].Degree > 0 {
			continue
		}
		if id := g.nodes.String(u); len(a.top) < a.k || ranksBefore(0, id, a.top[len(a.top)-1]) {
			a.place(u, id, 0, -1)
		}
	}
}

// topNodeRemoved updates the answers for node u, about to be removed.
func (g *Graph) topNodeRemoved(u uint32) {
	answers := g.top.answers[:0]
	for _, a := range g.top.answers {
		if j := slices.Index(a.nodes, u); j >= 0 {
			if len(a.top) == a.k {
				continue // a node from outside may take its place: drop
			}
			a.top, a.nodes = slices.Delete(a.top, j, j+1), slices.Delete(a.nodes, j, j+1)
		}
		answers = append(answers, a)
	}
	g.top.answers = answers
}

// topDegreesChanged updates the answers after node u's out- and in-degree
// went from (out0, in0) to (out1, in1).
func (g *Graph) topDegreesChanged(u uint32, out0, in0, out1, in1 int) {
	answers := g.top.answers[:0]
	for _, a := range g.top.answers {
		before, after := out0+in0, out1+in1
		switch a.kind {
		case OutDegree:
			before, after = out0, out1
		case InDegree:
			before, after = in0, in1
		}
		if after == before {
			answers = append(answers, a)
			continue
		}
		full := len(a.top) == a.k
		last := NodeDegree{Degree: -1}
		if full {
			last = a.top[len(a.top)-1]
		}
		if after < before {
			// A node outside stays outside. A member falling may let a
			// node from outside in: drop the answer unless it holds
			// every node.
			if j := slices.Index(a.nodes, u); j >= 0 {
				if full {
					continue
				}
				a.place(u, a.top[j].ID, after, j)
			}
			answers = append(answers, a)
			continue
		}
		// Rising: only a node that now ranks before the last can be in
		// the answer, whether it was already or comes in.
		if full && after < last.Degree {
			answers = append(answers, a)
			continue
		}
		j := slices.Index(a.nodes, u)
		id := ""
		if j >= 0 {
			id = a.top[j].ID
		} else {
			id = g.nodes.String(u)
		}
		if j >= 0 || !full || ranksBefore(after, id, last) {
			a.place(u, id, after, j)
		}
		answers = append(answers, a)
	}
	g.top.answers = answers
}

// place puts node u (id, degree d) at its rank in the answer, moving it
// from index j (-1: not in it), and trims the answer to k.
func (a *topAnswer) place(u uint32, id string, d int, j int) {
	if j >= 0 {
		a.top, a.nodes = slices.Delete(a.top, j, j+1), slices.Delete(a.nodes, j, j+1)
	}
	i, _ := slices.BinarySearchFunc(a.top, NodeDegree{ID: id, Degree: d}, func(e, t NodeDegree) int {
		switch {
		case ranksBefore(e.Degree, e.ID, t):
			return -1
		case e == t:
			return 0
		}
		return 1
	})
	a.top, a.nodes = slices.Insert(a.top, i, NodeDegree{ID: id, Degree: d}), slices.Insert(a.nodes, i, u)
	if len(a.top) > a.k {
		a.top, a.nodes = a.top[:a.k], a.nodes[:a.k]
	}
}

// Stats returns the graph's metrics. Top-k is computed on demand as
// TopDegree's and cached until a degree changes.
// Errors: ErrNotFound (graph deleted).
func (g *Graph) Stats() (Stats, error) {
	if err := g.live(); err != nil {
		return Stats{}, err
	}
	s := Stats{AsOf: g.asOf, Version: g.version, Nodes: g.nodes.Len(), Edges: g.nEdges, DistinctComponents: g.store.live}
	for d, n := range g.degHist {
		s.Degrees = append(s.Degrees, DegreeCount{Degree: int(d), Nodes: n})
	}
	slices.SortFunc(s.Degrees, func(a, b DegreeCount) int { return cmp.Compare(a.Degree, b.Degree) })
	for t, bm := range g.store.typeNodes {
		if n := int(bm.GetCardinality()); n > 0 {
			s.ComponentTypes = append(s.ComponentTypes, TypeCount{Type: g.store.types.name(uint32(t)), Nodes: n})
		}
	}
	slices.SortFunc(s.ComponentTypes, func(a, b TypeCount) int { return cmp.Compare(a.Type, b.Type) })
	s.Top = slices.Clone(g.topK(g.cfg.TopK, TotalDegree))
	return s, nil
}

// TopDegree returns the k nodes of highest degree of the given kind (degree
// centrality), highest first, ties by id. It costs two passes over the
// 1-byte degree arrays: the first finds the smallest degree that qualifies
// (from the total-degree histogram, or a count of the bytes), the second
// collects the nodes at or above it. The answer is cached until a degree
// changes. Errors: ErrInvalidArgument (k outside 1..MaxLimit, unknown kind),
// ErrNotFound (graph deleted).
func (g *Graph) TopDegree(k int, kind DegreeKind) ([]NodeDegree, error) {
	if err := g.live(); err != nil {
		return nil, err
	}
	if err := checkLimit(k); err != nil {
		return nil, err
	}
	if kind > InDegree {
		return nil, fmt.Errorf("degree kind %d: %w", kind, ErrInvalidArgument)
	}
	return slices.Clone(g.topK(k, kind)), nil
}

// degreeFloor returns the smallest degree among the k highest, given the
// degrees as (degree, nodes) buckets in any order.
func degreeFloor(k int, buckets []DegreeCount) int {
	slices.SortFunc(buckets, func(a, b DegreeCount) int { return cmp.Compare(b.Degree, a.Degree) })
	floor, seen := 0, 0
	for _, b := range buckets {
		if seen >= k {
			break
		}
		floor, seen = b.Degree, seen+b.Nodes
	}
	return floor
}

func (g *Graph) topK(k int, kind DegreeKind) []NodeDegree {
	if k <= 0 {
		return nil
	}
	if a := g.top.find(k, kind); a != nil {
		return a.top
	}
	var top []NodeDegree
	var nodes []uint32
	outLow, inLow := &g.outDeg.low, &g.inDeg.low
	var buckets []DegreeCount
	if kind == TotalDegree {
		for d, n := range g.degHist {
			buckets = append(buckets, DegreeCount{Degree: int(d), Nodes: n})
		}
		floor := degreeFloor(k, buckets)
		for u := range uint32(outLow.len()) {
			// Most nodes fall below the floor on their 1-byte counts alone.
			if o, i := outLow.at(int(u)), inLow.at(int(u)); o != degreeSpill && i != degreeSpill && int(o)+int(i) < floor {
				continue
			}
			if d := int(g.outDeg.get(u) + g.inDeg.get(u)); d >= floor && g.nodes.Has(u) {
				top = append(top, NodeDegree{ID: g.nodes.String(u), Degree: d})
				nodes = append(nodes, u)
			}
		}
	} else {
		d := &g.outDeg
		if kind == InDegree {
			d = &g.inDeg
		}
		low := &d.low
		var count [degreeSpill]int
		for u := range low.len() {
			if v := low.at(u); v != degreeSpill && g.nodes.Has(uint32(u)) {
				count[v]++
			}
		}
		for v, n := range count {
			if n > 0 {
				buckets = append(buckets, DegreeCount{Degree: v, Nodes: n})
			}
		}
		for _, v := range d.high {
			buckets = append(buckets, DegreeCount{Degree: int(v), Nodes: 1})
		}
		floor := degreeFloor(k, buckets)
		for u := range low.len() {
			if v := low.at(u); v != degreeSpill && int(v) < floor {
				continue
			}
			if n := int(d.get(uint32(u))); n >= floor && g.nodes.Has(uint32(u)) {
				top = append(top, NodeDegree{ID: g.nodes.String(uint32(u)), Degree: n})
				nodes = append(nodes, uint32(u))
			}
		}
	}
	order := make([]int, len(top))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		if c := cmp.Compare(top[j].Degree, top[i].Degree); c != 0 {
			return c
		}
		return cmp.Compare(top[i].ID, top[j].ID)
	})
	n := min(len(order), k)
	a := topAnswer{k: k, kind: kind, top: make([]NodeDegree, n), nodes: make([]uint32, n)}
	for i := range n {
		a.top[i], a.nodes[i] = top[order[i]], nodes[order[i]]
	}
	g.top.keep(a)
	return a.top
}
