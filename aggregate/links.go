package aggregate

import (
	"strings"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Cross-graph links (docs/cross-graph.md). An edge of graph A to node n of
// graph B is an ordinary edge from a local node to a reference node of A
// whose id is RefNodeID(B, n), of category RefCategory, with components
// RefGraphComponent = B and RefNodeComponent = n; graph B records the same
// edge id from its own reference node RefNodeID(A, a) to n. Reference nodes
// are created with the first link through them and removed with the last,
// in the same transaction; clients cannot add, change or remove them.
const (
	// RefCategory is the category of reference nodes.
	RefCategory = "cairn.ref"
	// ReservedPrefix starts the categories only the engine gives.
	ReservedPrefix = "cairn."
	// RefGraphComponent and RefNodeComponent name a reference node's
	// other end; RefDanglingComponent, once set, holds the stream sequence
	// (decimal) of the transaction that removed it.
	RefGraphComponent    = "ref.graph"
	RefNodeComponent     = "ref.node"
	RefDanglingComponent = "ref.dangling"
	// LinkIssuer is the envelope issuer of the engine's own link steps
	// (the saga's halves, undoing one, dangling marks): Decide lets them
	// remove a link's half and mark a reference node dangling. The engine
	// refuses client envelopes whose issuer starts with ReservedPrefix.
	LinkIssuer = "cairn.link"
)

// refDangling reports whether reference node id carries the dangling mark.
func (s *State) refDangling(id string) bool {
	u, ok := s.nodes.Lookup(id)
	if !ok {
		return false
	}
	var buf [32]uint32
	comps, _ := s.nodeAttrs(u, buf[:0])
	return s.hasComponentType(comps, RefDanglingComponent)
}

// RefNodeID is the id of graph's reference node for node of other graph.
func RefNodeID(graph, node string) string { return graph + "/" + node }

// SplitRefNodeID splits a reference node id into its graph and node: graph
// ids hold no '/', so the first one separates them.
func SplitRefNodeID(id string) (graph, node string, ok bool) {
	graph, node, ok = strings.Cut(id, "/")
	if !ok || node == "" || ValidateGraphID("", graph) != nil {
		return "", "", false
	}
	return graph, node, true
}

// IsLinkCommand reports whether cmd is a cross-graph ConnectNodes.
func IsLinkCommand(cmd *cairnv1.Command) bool {
	cn := cmd.GetConnectNodes()
	return cn != nil && (cn.GetTargetGraph() != "" || cn.GetSourceGraph() != "")
}

// IsRefNode reports whether node id is a reference node of s.
func (s *State) IsRefNode(id string) bool {
	u, ok := s.nodes.Lookup(id)
	return ok && s.isRef(u)
}

func (s *State) isRef(u uint32) bool {
	ref, ok := s.cats.lookup(RefCategory)
	if !ok {
		return false
	}
	var buf [32]uint32
	_, cats := s.nodeAttrs(u, buf[:0])
	for _, c := range cats {
		if c == ref {
			return true
		}
	}
	return false
}

// validateLinks checks the envelope-wide rules of links and reserved
// names: a cross-graph ConnectNodes is its envelope's only command, names
// another valid graph, one side only, without create_missing; no category
// starts with ReservedPrefix.
func validateLinks(env *cairnv1.CommandEnvelope) error {
	for i, c := range env.GetCommands() {
		f := cmdField(i)
		if an := c.GetAddNode(); an != nil {
			for j, cat := range an.GetCategories() {
				if strings.HasPrefix(cat, ReservedPrefix) {
					return invalid(elem(f+".add_node.categories", j), "category %q: categories starting with %q are reserved for the engine", cat, ReservedPrefix)
				}
			}
		}
		if !IsLinkCommand(c) {
			continue
		}
		cn := c.GetConnectNodes()
		f += ".connect_nodes"
		if len(env.GetCommands()) != 1 {
			return invalid(f, "a cross-graph ConnectNodes must be the only command of its envelope (this one holds %d)", len(env.GetCommands()))
		}
		if cn.GetTargetGraph() != "" && cn.GetSourceGraph() != "" {
			return invalid(f, "set target_graph or source_graph, not both")
		}
		field, other := f+".target_graph", cn.GetTargetGraph()
		if other == "" {
			field, other = f+".source_graph", cn.GetSourceGraph()
		}
		if err := ValidateGraphID(field, other); err != nil {
			return err
		}
		if other == env.GetGraphId() {
			return invalid(field, "graph %s links to itself: use a ConnectNodes without %s", other, field[len(f)+1:])
		}
		if cn.GetCreateMissing() {
			return invalid(f+".create_missing", "a cross-graph link cannot create missing nodes")
		}
	}
	return nil
}

// decideLinks decides what links change in Decide: cross-graph
// ConnectNodes, and the guards that keep reference nodes to the engine.
// done is false when Decide's own case decides cmd.
func decideLinks(s *State, prefix string, cmd *cairnv1.Command) (evs []*cairnv1.Event, err error, done bool) {
	refused := func(field, id string) ([]*cairnv1.Event, error, bool) {
		return nil, failedPrecondition(field, "node %q is a reference node (category %s): the engine keeps it for a cross-graph link", id, RefCategory), true
	}
	switch k := cmd.GetKind().(type) {
	case *cairnv1.Command_SetNodeComponents:
		id := k.SetNodeComponents.GetNodeId()
		if s.IsRefNode(id) && !s.linkStep {
			return refused(prefix+".set_node_components.node_id", id)
		}
		if s.linkStep && !s.IsRefNode(id) {
			return nil, failedPrecondition(prefix+".set_node_components.node_id", "node %q is no reference node: the engine marks only those", id), true
		}
		if s.linkStep && s.refDangling(id) {
			// Marked already (by an earlier removal, or by this one before
			// a restart): a mark again would only add events.
			return nil, alreadyExists(prefix+".set_node_components.node_id", "reference node %q is marked dangling already", id), true
		}
	case *cairnv1.Command_RemoveNodeComponents:
		if id := k.RemoveNodeComponents.GetNodeId(); s.IsRefNode(id) && !s.linkStep {
			return refused(prefix+".remove_node_components.node_id", id)
		}
	case *cairnv1.Command_RemoveNode:
		if id := k.RemoveNode.GetNodeId(); s.IsRefNode(id) {
			return refused(prefix+".remove_node.node_id", id)
		}
	case *cairnv1.Command_ConnectNodes:
		cn := k.ConnectNodes
		if IsLinkCommand(cmd) {
			evs, err := s.decideLink(prefix+".connect_nodes", cn)
			return evs, err, true
		}
		for _, end := range [...]struct{ field, id string }{{".source", cn.GetSource()}, {".target", cn.GetTarget()}} {
			if s.IsRefNode(end.id) {
				return refused(prefix+".connect_nodes"+end.field, end.id)
			}
		}
	case *cairnv1.Command_DisconnectNodes:
		id := k.DisconnectNodes.GetEdgeId()
		e, ok := s.edges.Lookup(id)
		if !ok {
			return nil, nil, false
		}
		src, dst := s.src.Get(int(e)), s.dst.Get(int(e))
		ref := dst
		if !s.isRef(dst) {
			ref = src
			if !s.isRef(src) {
				return nil, nil, false
			}
		}
		refID := s.nodes.String(ref)
		if !s.linkStep {
			g, n, _ := SplitRefNodeID(refID)
			return nil, failedPrecondition(prefix+".disconnect_nodes.edge_id",
				"edge %q is a cross-graph link to graph %s node %q: the engine removes both halves (send this command alone)", id, g, n), true
		}
		evs = one(&cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{
			EdgeId: id, Source: s.nodes.String(src), Target: s.nodes.String(dst)}}})
		if len(s.incident(nil, ref)) == 1 {
			evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: refID}}})
		}
		return evs, nil, true
	}
	return nil, nil, false
}

// decideLink decides one half of a cross-graph link: with target_graph
// the source's half (source is local, target is the other graph's), with
// source_graph the target's half (the engine's mirror step).
func (s *State) decideLink(f string, cn *cairnv1.ConnectNodes) ([]*cairnv1.Event, error) {
	if s.HasEdge(cn.GetEdgeId()) {
		return nil, alreadyExists(f+".edge_id", "edge %q already exists in graph %s", cn.GetEdgeId(), s.graph)
	}
	local, localField, other, otherNode := cn.GetSource(), f+".source", cn.GetTargetGraph(), cn.GetTarget()
	if other == "" {
		if !s.linkStep {
			return nil, invalid(f+".source_graph", "source_graph is set by the engine on a link's mirror half; send the link to the source's graph with target_graph")
		}
		local, localField, other, otherNode = cn.GetTarget(), f+".target", cn.GetSourceGraph(), cn.GetSource()
	}
	if !s.HasNode(local) {
		return nil, notFound(localField, "graph %s has no node %q", s.graph, local)
	}
	if s.IsRefNode(local) {
		return nil, failedPrecondition(localField, "node %q is a reference node (category %s): link the node itself", local, RefCategory)
	}
	refID := RefNodeID(other, otherNode)
	var evs []*cairnv1.Event
	if u, ok := s.nodes.Lookup(refID); ok {
		if !s.isRef(u) {
			return nil, failedPrecondition(localField, "node %q exists in graph %s and is not a reference node: it cannot stand for graph %s node %q", refID, s.graph, other, otherNode)
		}
		var buf [32]uint32
		comps, _ := s.nodeAttrs(u, buf[:0])
		if s.hasComponentType(comps, RefDanglingComponent) {
			// The other end exists again (the other half checked it): the
			// link through this reference node holds again.
			evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{
				NodeId: refID, RemovedTypes: []string{RefDanglingComponent}}}})
		}
	} else {
		evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{
			NodeId: refID, Categories: []string{RefCategory},
			Components: []*cairnv1.Component{{Type: RefGraphComponent, Value: []byte(other)}, {Type: RefNodeComponent, Value: []byte(otherNode)}},
		}}})
	}
	src, dst := local, refID
	if cn.GetTargetGraph() == "" {
		src, dst = refID, local
	}
	return append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{
		EdgeId: cn.GetEdgeId(), Source: src, Target: dst, EdgeType: cn.GetEdgeType(), Components: cn.GetComponents(),
	}}}), nil
}

// withOrphanRefs appends to a RemoveNode's events the removal of every
// reference node whose last edge they remove.
func (s *State) withOrphanRefs(evs []*cairnv1.Event) []*cairnv1.Event {
	removed := map[string]int{}
	var order []string
	for _, ev := range evs {
		er := ev.GetEdgeRemoved()
		if er == nil {
			continue
		}
		for _, end := range [...]string{er.GetSource(), er.GetTarget()} {
			if s.IsRefNode(end) {
				if removed[end] == 0 {
					order = append(order, end)
				}
				removed[end]++
			}
		}
	}
	for _, ref := range order {
		u, _ := s.nodes.Lookup(ref)
		if len(s.incident(nil, u)) == removed[ref] {
			evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: ref}}})
		}
	}
	return evs
}
