package readmodel

import (
	"cmp"
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

// topCache holds the last top-k answer until a degree changes.
type topCache struct {
	valid bool
	top   []NodeDegree
}

func (c *topCache) invalidate() { c.valid, c.top = false, nil }

// Stats returns the graph's metrics. Top-k is computed on demand from the
// degree histogram (which fixes the smallest degree that qualifies) and one
// pass over the degree arrays, then cached until a degree changes.
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
	s.Top = slices.Clone(g.topK(s.Degrees))
	return s, nil
}

func (g *Graph) topK(hist []DegreeCount) []NodeDegree {
	if g.top.valid {
		return g.top.top
	}
	k := g.cfg.TopK
	min, seen := 0, 0
	for i := len(hist) - 1; i >= 0 && seen < k; i-- {
		min, seen = hist[i].Degree, seen+hist[i].Nodes
	}
	var top []NodeDegree
	if k > 0 {
		outLow, inLow := g.outDeg.low, g.inDeg.low[:len(g.outDeg.low)]
		for u := range uint32(len(outLow)) {
			// Most nodes fall below min on their 1-byte counts alone.
			if o, i := outLow[u], inLow[u]; o != degreeSpill && i != degreeSpill && int(o)+int(i) < min {
				continue
			}
			if d := int(g.outDeg.get(u) + g.inDeg.get(u)); d >= min && g.nodes.Has(u) {
				top = append(top, NodeDegree{ID: g.nodes.String(u), Degree: d})
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
	g.top = topCache{valid: true, top: top}
	return top
}
