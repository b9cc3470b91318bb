package aggregate

import (
	"slices"
	"strconv"
	"strings"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Decide validates one command against s and returns the events that record
// it. It does not change s. Errors are *CommandError values naming the field;
// field paths start with prefix (for example "commands[3]").
//
// Decide assumes the command passed ValidateEnvelope (ids well formed, sizes
// within limits); it checks what depends on the state. A live graph of a
// registered type (see RegisterType) is decided under its type's rules.
func Decide(s *State, prefix string, cmd *cairnv1.Command) ([]*cairnv1.Event, error) {
	if s.rules != nil && !s.deleted {
		if _, ok := cmd.GetKind().(*cairnv1.Command_CreateGraph); !ok {
			return decideTyped(s, prefix, cmd)
		}
	}
	return decideBase(s, prefix, cmd)
}

// decideBase is the untyped decision: what Decide does for a graph of no
// registered type, and the base a type's rules build on.
func decideBase(s *State, prefix string, cmd *cairnv1.Command) ([]*cairnv1.Event, error) {
	if cg, ok := cmd.GetKind().(*cairnv1.Command_CreateGraph); ok {
		if s.created {
			if s.deleted {
				return nil, alreadyExists(prefix+".create_graph.graph_id", "graph %s existed and was deleted; its id cannot be reused", s.graph)
			}
			return nil, alreadyExists(prefix+".create_graph.graph_id", "graph %s already exists", s.graph)
		}
		if err := validateCreate(prefix+".create_graph", cg.CreateGraph); err != nil {
			return nil, err
		}
		return one(&cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{
			GraphId: s.graph, GraphType: cg.CreateGraph.GetGraphType(), Metadata: cg.CreateGraph.GetMetadata(),
		}}}), nil
	}
	if !s.created {
		return nil, notFound("graph_id", "graph %s does not exist", s.graph)
	}
	if s.deleted {
		return nil, failedPrecondition("graph_id", "graph %s is deleted", s.graph)
	}
	if evs, err, done := decideLinks(s, prefix, cmd); done {
		return evs, err
	}
	switch k := cmd.GetKind().(type) {
	case *cairnv1.Command_AddNode:
		f := prefix + ".add_node"
		if s.HasNode(k.AddNode.GetNodeId()) {
			return nil, alreadyExists(f+".node_id", "node %q already exists", k.AddNode.GetNodeId())
		}
		return addedNode(k.AddNode), nil
	case *cairnv1.Command_SetNodeComponents:
		f := prefix + ".set_node_components"
		if !s.HasNode(k.SetNodeComponents.GetNodeId()) {
			return nil, notFound(f+".node_id", "node %q does not exist", k.SetNodeComponents.GetNodeId())
		}
		return one(&cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{
			NodeId: k.SetNodeComponents.GetNodeId(), Set: k.SetNodeComponents.GetComponents(),
		}}}), nil
	case *cairnv1.Command_RemoveNodeComponents:
		f := prefix + ".remove_node_components"
		rc := k.RemoveNodeComponents
		u, ok := s.nodes.Lookup(rc.GetNodeId())
		if !ok {
			return nil, notFound(f+".node_id", "node %q does not exist", rc.GetNodeId())
		}
		var buf [32]uint32
		comps, _ := s.nodeAttrs(u, buf[:0])
		for i, t := range rc.GetTypes() {
			if !s.hasComponentType(comps, t) {
				return nil, notFound(f+".types["+strconv.Itoa(i)+"]", "node %q has no component of type %q", rc.GetNodeId(), t)
			}
		}
		return one(&cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{
			NodeId: rc.GetNodeId(), RemovedTypes: rc.GetTypes(),
		}}}), nil
	case *cairnv1.Command_RemoveNode:
		id := k.RemoveNode.GetNodeId()
		u, ok := s.nodes.Lookup(id)
		if !ok {
			return nil, notFound(prefix+".remove_node.node_id", "node %q does not exist", id)
		}
		// Edges first, in id order, so that the transaction is deterministic.
		type incident struct {
			id  string
			idx uint32
		}
		idx := s.incident(nil, u)
		edges := make([]incident, len(idx))
		for i, e := range idx {
			edges[i] = incident{s.edges.String(e), e}
		}
		slices.SortFunc(edges, func(a, b incident) int { return strings.Compare(a.id, b.id) })
		evs := make([]*cairnv1.Event, 0, len(edges)+1)
		for _, ie := range edges {
			evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{
				EdgeId: ie.id, Source: s.nodes.String(s.src.Get(int(ie.idx))), Target: s.nodes.String(s.dst.Get(int(ie.idx))),
			}}})
		}
		return s.withOrphanRefs(append(evs, &cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: id}}})), nil
	case *cairnv1.Command_ConnectNodes:
		f := prefix + ".connect_nodes"
		cn := k.ConnectNodes
		if s.HasEdge(cn.GetEdgeId()) {
			return nil, alreadyExists(f+".edge_id", "edge %q already exists", cn.GetEdgeId())
		}
		var evs []*cairnv1.Event
		if !s.HasNode(cn.GetSource()) {
			if !cn.GetCreateMissing() {
				return nil, notFound(f+".source", "source node %q does not exist", cn.GetSource())
			}
			evs = append(evs, nodeAdded(cn.GetSource()))
		}
		if !s.HasNode(cn.GetTarget()) && cn.GetTarget() != cn.GetSource() {
			if !cn.GetCreateMissing() {
				return nil, notFound(f+".target", "target node %q does not exist", cn.GetTarget())
			}
			evs = append(evs, nodeAdded(cn.GetTarget()))
		}
		return append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{
			EdgeId: cn.GetEdgeId(), Source: cn.GetSource(), Target: cn.GetTarget(), EdgeType: cn.GetEdgeType(), Components: cn.GetComponents(),
		}}}), nil
	case *cairnv1.Command_DisconnectNodes:
		id := k.DisconnectNodes.GetEdgeId()
		e, ok := s.edges.Lookup(id)
		if !ok {
			return nil, notFound(prefix+".disconnect_nodes.edge_id", "edge %q does not exist", id)
		}
		return one(&cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{
			EdgeId: id, Source: s.nodes.String(s.src.Get(int(e))), Target: s.nodes.String(s.dst.Get(int(e))),
		}}}), nil
	case *cairnv1.Command_WriteTuple, *cairnv1.Command_DeleteTuple:
		return nil, tupleOnOtherGraph(s, prefix, cmd)
	case *cairnv1.Command_DeleteGraph:
		return one(&cairnv1.Event{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: &cairnv1.GraphDeleted{}}}), nil
	}
	return nil, invalid(prefix, "command has no kind")
}

func one(ev *cairnv1.Event) []*cairnv1.Event { return []*cairnv1.Event{ev} }

// nodeAddedEvent is a NodeAdded event's messages and the slice that
// Decide returns it in, allocated together: the commonest event costs one
// allocation instead of four. The messages are only ever used by pointer.
type nodeAddedEvent struct {
	ev   cairnv1.Event
	kind cairnv1.Event_NodeAdded
	body cairnv1.NodeAdded
	evs  [1]*cairnv1.Event
}

// addedNode returns the event of an AddNode command.
func addedNode(c *cairnv1.AddNode) []*cairnv1.Event {
	e := &nodeAddedEvent{}
	e.body.NodeId, e.body.Components, e.body.Categories = c.GetNodeId(), c.GetComponents(), c.GetCategories()
	e.kind.NodeAdded = &e.body
	e.ev.Kind = &e.kind
	e.evs[0] = &e.ev
	return e.evs[:]
}

// nodeAdded records a node created by ConnectNodes.create_missing: no
// components, no categories.
func nodeAdded(id string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id}}}
}

// DecideEnvelope decides every command of env in order on s, applying each
// command's events before deciding the next, all or nothing: on success s
// holds the envelope's changes and the events are returned with their count
// per command; on error s is as it was. Call ValidateEnvelope first.
func DecideEnvelope(s *State, env *cairnv1.CommandEnvelope) ([]*cairnv1.Event, error) {
	outer := s.recording
	if !outer {
		s.Begin()
	}
	m := s.Mark()
	s.linkStep = env.GetIssuer() == LinkIssuer
	defer func() { s.linkStep = false }()
	var all []*cairnv1.Event
	for i, cmd := range env.GetCommands() {
		evs, err := Decide(s, cmdField(i), cmd)
		if err == nil {
			for _, ev := range evs {
				if err = Apply(s, ev); err != nil {
					err = &CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Field: cmdField(i), Message: err.Error()}
					break
				}
			}
		}
		if err != nil {
			s.Rollback(m)
			if !outer {
				s.Commit()
			}
			return nil, err
		}
		if all == nil {
			// The first command's events are the result's start: Decide
			// returns a slice of its own. Capped, so that a later command's
			// events are appended to a copy.
			all = evs[:len(evs):len(evs)]
		} else {
			all = append(all, evs...)
		}
	}
	if !outer {
		s.Commit()
	}
	return all, nil
}

// hasComponentType reports whether one of the component handles is of
// type typ.
func (s *State) hasComponentType(comps []uint32, typ string) bool {
	t, ok := s.ctypes.lookup(typ)
	if !ok {
		return false
	}
	for _, h := range comps {
		if s.ctype.Get(int(h)) == t {
			return true
		}
	}
	return false
}
