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

// topCache holds the last top-k answer until a degree changes.
type topCache struct {
	valid bool
	k     int
	kind  DegreeKind
	top   []NodeDegree
}

func (c *topCache) invalidate() { c.valid, c.top = false, nil }

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
	if g.top.valid && g.top.k == k && g.top.kind == kind {
		return g.top.top
	}
	var top []NodeDegree
	if k > 0 {
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
				}
			}
		}
	}
	slices.SortFunc(top, func(a, b NodeDegree) int {
		if c := cmp.Compare(b.Degree, a.Degree); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if len(top) > k {
		top = top[:k]
	}
	g.top = topCache{valid: true, k: k, kind: kind, top: top}
	return top
}
