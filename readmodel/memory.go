package readmodel

// memoryPart is the size of one part of a Graph, from slice capacities and
// bitmap sizes (Go map overhead and per-object headers not counted).
type memoryPart struct {
	name  string
	bytes int
}

// memory breaks the graph's storage down by part, for the benchmark and,
// later, the metrics.
func (g *Graph) memory() []memoryPart {
	bitmaps := 0
	for _, bm := range g.store.nodes {
		if bm != nil {
			bitmaps += int(bm.GetSizeInBytes())
		}
	}
	types := 0
	for _, bm := range g.store.typeNodes {
		types += int(bm.GetSizeInBytes())
	}
	cats := 0
	for _, bm := range g.catNodes {
		cats += int(bm.GetSizeInBytes())
	}
	return []memoryPart{
		{"node ids", g.nodes.Bytes()},
		{"node degrees", g.outDeg.bytes() + g.inDeg.bytes()},
		{"node comp+cat lists", g.attrs.bytes()},
		{"edge ids", g.edges.Bytes()},
		{"edge ends and types", g.src.Bytes() + g.dst.Bytes() + g.etype.Bytes()},
		{"adjacency", g.adj.Bytes()},
		{"index by component", bitmaps},
		{"index by type", types},
		{"index by category", cats},
		{"bloom", int(g.store.bloom.Cap() / 8)},
	}
}
