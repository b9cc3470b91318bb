package aggregate

import (
	"slices"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Export returns s as a GraphSnapshot message, with recent (the idempotency
// window, oldest first): nodes and edges sorted by id, each node's edges as
// sorted indices into the edges. Two states that answer every question
// alike export equal messages, however they were built; tests and tools
// compare states with it. It is not the snapshot encoding (see Marshal).
func Export(s *State, recent []*cairnv1.CommandReply) *cairnv1.GraphSnapshot {
	snap := &cairnv1.GraphSnapshot{GraphId: s.graph, Created: s.created, Deleted: s.deleted, GraphType: s.typ, Metadata: s.metadata, Recent: recent}
	edgeIDs := s.EdgeIDs()
	index := make(map[string]uint32, len(edgeIDs))
	for i, id := range edgeIDs {
		index[id] = uint32(i)
		src, dst, typ, comps, _ := s.Edge(id)
		snap.Edges = append(snap.Edges, &cairnv1.SnapshotEdge{Id: id, Source: src, Target: dst, EdgeType: typ, Components: comps})
	}
	for _, id := range s.NodeIDs() {
		comps, cats, _ := s.Node(id)
		n := &cairnv1.SnapshotNode{Id: id, Components: comps, Categories: cats}
		u, _ := s.nodes.Lookup(id)
		for _, e := range s.incident(nil, u) {
			n.Edges = append(n.Edges, index[s.edges.String(e)])
		}
		slices.Sort(n.Edges)
		snap.Nodes = append(snap.Nodes, n)
	}
	return snap
}
