package aggregate_test

// The oracle is the aggregate model this package replaced (maps of per-node
// and per-edge objects, closures for undo), kept as it was but renamed and
// without its unused methods, as the test oracle: the property tests check
// that the compact State makes the same decisions and produces the same
// events.

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/cairn-graph/cairn/aggregate"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// oracleState is a graph aggregate: everything Decide needs to validate a command.
// It is folded from events by Apply and owned by one grain; it is not safe for
// concurrent use.
type oracleState struct {
	graph    string
	created  bool
	deleted  bool
	typ      string
	metadata map[string]string
	nodes    map[string]*oNode
	edges    map[string]*oEdge
	comps    oInterner
	// epoch counts the captures taken of the state (captureState): a
	// node's edge list allocated in an earlier epoch may be shared with a
	// capture, and is copied before it is changed in place.
	epoch uint64

	// undo, when not nil, records how to revert each change Apply makes, so
	// that a speculative batch can be rolled back.
	undo    []func()
	undoBuf []func() // undo's storage between recordings
}

// oNode is modified in place; its comps and categories slices are
// replaced, never modified (snapshots share them). Its edges list is
// appended to in place, which a capture holding a shorter view of it never
// sees, and otherwise changed in place only when it was allocated since the
// last capture (own == oracleState.epoch); else it is copied first (ownEdges).
type oNode struct {
	comps      []*cairnv1.Component // interned, at most one per type
	categories []string
	edges      []string // ids of edges that start or end here
	own        uint64   // the epoch edges' array was allocated in
}

// addEdge appends id to n's edges.
func (s *oracleState) addEdge(n *oNode, id string) {
	if len(n.edges) == cap(n.edges) { // append allocates a fresh array
		n.own = s.epoch
	}
	n.edges = append(n.edges, id)
}

// ownEdges makes n's edge list private to the state, copying it when a
// capture may share it.
func (s *oracleState) ownEdges(n *oNode) {
	if n.own != s.epoch {
		n.edges = append(make([]string, 0, len(n.edges)+1), n.edges...)
		n.own = s.epoch
	}
}

// removeEdge removes id from n's edges by moving the last one into its
// place, and returns where it was (-1: not listed).
func (s *oracleState) removeEdge(n *oNode, id string) int {
	i := slices.Index(n.edges, id)
	if i < 0 {
		return -1
	}
	s.ownEdges(n)
	n.edges[i] = n.edges[len(n.edges)-1]
	n.edges = n.edges[:len(n.edges)-1]
	return i
}

// unremoveEdge undoes removeEdge(n, id) that found id at index i.
func (s *oracleState) unremoveEdge(n *oNode, i int, id string) {
	if i < 0 {
		return
	}
	if i == len(n.edges) {
		s.addEdge(n, id)
		return
	}
	s.ownEdges(n)
	n.edges = append(n.edges, n.edges[i])
	n.edges[i] = id
}

// oEdge is never modified once its edge is added (snapshots share it).
type oEdge struct {
	source, target string
	typ            string
	comps          []*cairnv1.Component // interned
}

// newOracle returns the empty state of graph: it does not exist yet.
func newOracle(graph string) *oracleState {
	return &oracleState{
		graph: graph,
		nodes: make(map[string]*oNode),
		edges: make(map[string]*oEdge),
		comps: oInterner{m: make(map[oComponentKey]*oInterned)},
	}
}

// Exists reports whether the graph was created and not deleted.
func (s *oracleState) Exists() bool { return s.created && !s.deleted }

// Deleted reports whether the graph was deleted.
func (s *oracleState) Deleted() bool { return s.deleted }

// DistinctComponents counts distinct (type, value) pairs held, each stored
// once however many nodes and edges carry it.
func (s *oracleState) DistinctComponents() int { return len(s.comps.m) }

// HasNode and HasEdge report whether a live node or edge has the id.
func (s *oracleState) HasNode(id string) bool { _, ok := s.nodes[id]; return ok }
func (s *oracleState) HasEdge(id string) bool { _, ok := s.edges[id]; return ok }

// Node returns a node's components and categories; the slices must not be
// modified.
func (s *oracleState) Node(id string) (comps []*cairnv1.Component, categories []string, ok bool) {
	n, ok := s.nodes[id]
	if !ok {
		return nil, nil, false
	}
	return n.comps, n.categories, true
}

// Edge returns an edge's endpoints, type and components.
func (s *oracleState) Edge(id string) (source, target, typ string, comps []*cairnv1.Component, ok bool) {
	e, ok := s.edges[id]
	if !ok {
		return "", "", "", nil, false
	}
	return e.source, e.target, e.typ, e.comps, true
}

// NodeIDs and EdgeIDs return the live ids, sorted.
func (s *oracleState) NodeIDs() []string { return oSortedKeys(s.nodes) }
func (s *oracleState) EdgeIDs() []string { return oSortedKeys(s.edges) }

func oSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *oracleState) record(f func()) {
	if s.undo != nil {
		s.undo = append(s.undo, f)
	}
}

// begin starts recording changes for rollback, reusing the last recording's
// storage.
func (s *oracleState) begin() {
	if s.undoBuf == nil {
		s.undoBuf = make([]func(), 0, 16)
	}
	s.undo = s.undoBuf[:0]
}

// mark returns a rollback point inside the current recording.
func (s *oracleState) mark() int { return len(s.undo) }

// rollback reverts every change recorded after mark m.
func (s *oracleState) rollback(m int) {
	for i := len(s.undo) - 1; i >= m; i-- {
		s.undo[i]()
	}
	s.undo = s.undo[:m]
}

// commit stops recording and keeps the changes.
func (s *oracleState) commit() {
	clear(s.undo) // let the closures go
	s.undoBuf, s.undo = s.undo[:0], nil
}

// Apply folds one event into s, in place. It returns an error, and leaves s
// unchanged, when the event does not fit the state (which a valid chain never
// produces).
func oracleApply(s *oracleState, ev *cairnv1.Event) error {
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_GraphCreated:
		if s.created {
			return fmt.Errorf("apply GraphCreated: graph %s already exists", s.graph)
		}
		s.created, s.typ, s.metadata = true, k.GraphCreated.GetGraphType(), k.GraphCreated.GetMetadata()
		s.record(func() { s.created, s.typ, s.metadata = false, "", nil })
	case *cairnv1.Event_GraphDeleted:
		if !s.Exists() {
			return fmt.Errorf("apply GraphDeleted: graph %s does not exist", s.graph)
		}
		s.deleted = true
		s.record(func() { s.deleted = false })
	case *cairnv1.Event_NodeAdded:
		na := k.NodeAdded
		id := na.GetNodeId()
		if _, ok := s.nodes[id]; ok {
			return fmt.Errorf("apply NodeAdded: node %q exists", id)
		}
		n := &oNode{comps: s.comps.internAll(na.GetComponents()), categories: na.GetCategories()}
		s.nodes[id] = n
		s.record(func() { delete(s.nodes, id); s.comps.releaseAll(n.comps) })
	case *cairnv1.Event_NodeComponentsChanged:
		nc := k.NodeComponentsChanged
		n, ok := s.nodes[nc.GetNodeId()]
		if !ok {
			return fmt.Errorf("apply NodeComponentsChanged: node %q does not exist", nc.GetNodeId())
		}
		old := n.comps
		next := make([]*cairnv1.Component, 0, len(old)+len(nc.GetSet()))
		for _, c := range old {
			if !oHasType(nc.GetSet(), c.GetType()) && !slices.Contains(nc.GetRemovedTypes(), c.GetType()) {
				next = append(next, s.comps.intern(c))
			}
		}
		for _, c := range nc.GetSet() {
			next = append(next, s.comps.intern(c))
		}
		s.comps.releaseAll(old)
		n.comps = next
		s.record(func() { s.comps.restoreAll(old); s.comps.releaseAll(next); n.comps = old })
	case *cairnv1.Event_NodeRemoved:
		id := k.NodeRemoved.GetNodeId()
		n, ok := s.nodes[id]
		if !ok {
			return fmt.Errorf("apply NodeRemoved: node %q does not exist", id)
		}
		if len(n.edges) > 0 {
			return fmt.Errorf("apply NodeRemoved: node %q still has %d edges", id, len(n.edges))
		}
		delete(s.nodes, id)
		s.comps.releaseAll(n.comps)
		s.record(func() { s.comps.restoreAll(n.comps); s.nodes[id] = n })
	case *cairnv1.Event_EdgeAdded:
		ea := k.EdgeAdded
		id := ea.GetEdgeId()
		if _, ok := s.edges[id]; ok {
			return fmt.Errorf("apply EdgeAdded: edge %q exists", id)
		}
		src, okS := s.nodes[ea.GetSource()]
		dst, okT := s.nodes[ea.GetTarget()]
		if !okS || !okT {
			return fmt.Errorf("apply EdgeAdded: edge %q has a missing endpoint", id)
		}
		e := &oEdge{source: ea.GetSource(), target: ea.GetTarget(), typ: ea.GetEdgeType(), comps: s.comps.internAll(ea.GetComponents())}
		s.edges[id] = e
		s.addEdge(src, id)
		if dst != src {
			s.addEdge(dst, id)
		}
		s.record(func() {
			delete(s.edges, id)
			s.comps.releaseAll(e.comps)
			s.removeEdge(src, id)
			s.removeEdge(dst, id)
		})
	case *cairnv1.Event_EdgeRemoved:
		id := k.EdgeRemoved.GetEdgeId()
		e, ok := s.edges[id]
		if !ok {
			return fmt.Errorf("apply EdgeRemoved: edge %q does not exist", id)
		}
		src, dst := s.nodes[e.source], s.nodes[e.target]
		delete(s.edges, id)
		s.comps.releaseAll(e.comps)
		i := s.removeEdge(src, id)
		j := -1
		if dst != src {
			j = s.removeEdge(dst, id)
		}
		// Undo puts the edge back where it was, so that a rolled-back
		// batch leaves each node's edges in the order a replay of the
		// stored events gives (a node removal emits its edge removals in
		// that order, and snapshots record it).
		s.record(func() {
			s.edges[id] = e
			s.comps.restoreAll(e.comps)
			if j >= 0 {
				s.unremoveEdge(dst, j, id)
			}
			s.unremoveEdge(src, i, id)
		})
	default:
		return fmt.Errorf("apply: event has no kind")
	}
	return nil
}

func oHasType(cs []*cairnv1.Component, typ string) bool {
	for _, c := range cs {
		if c.GetType() == typ {
			return true
		}
	}
	return false
}

// oInterner stores each distinct component once (flyweight) with a reference
// count, and frees it when the last holder lets go.
type oInterner struct {
	m map[oComponentKey]*oInterned
}

type oComponentKey struct{ typ, value string }

type oInterned struct {
	c    *cairnv1.Component
	refs int
}

func (in *oInterner) intern(c *cairnv1.Component) *cairnv1.Component {
	// The lookup key does not escape: no copy of the value is made for it.
	if e, ok := in.m[oComponentKey{c.GetType(), string(c.GetValue())}]; ok {
		e.refs++
		return e.c
	}
	k := oComponentKey{c.GetType(), string(c.GetValue())}
	shared := &cairnv1.Component{Type: k.typ, Value: []byte(k.value)}
	in.m[k] = &oInterned{c: shared, refs: 1}
	return shared
}

func (in *oInterner) internAll(cs []*cairnv1.Component) []*cairnv1.Component {
	if len(cs) == 0 {
		return nil
	}
	out := make([]*cairnv1.Component, len(cs))
	for i, c := range cs {
		out[i] = in.intern(c)
	}
	return out
}

// restoreAll takes back components that were interned and then released,
// when a change is undone. Undo runs newest first, so a component that is
// still interned is the very copy cs holds; one that was freed is put back
// as that copy, so that its holders keep sharing one.
func (in *oInterner) restoreAll(cs []*cairnv1.Component) {
	for _, c := range cs {
		k := oComponentKey{c.GetType(), string(c.GetValue())}
		if e, ok := in.m[k]; ok {
			e.refs++
		} else {
			in.m[k] = &oInterned{c: c, refs: 1}
		}
	}
}

func (in *oInterner) release(c *cairnv1.Component) {
	k := oComponentKey{c.GetType(), string(c.GetValue())}
	if e, ok := in.m[k]; ok {
		if e.refs--; e.refs == 0 {
			delete(in.m, k)
		}
	}
}

func (in *oInterner) releaseAll(cs []*cairnv1.Component) {
	for _, c := range cs {
		in.release(c)
	}
}

// Decide validates one command against s and returns the events that record
// it. It does not change s. Errors are *CommandError values naming the field;
// field paths start with prefix (for example "commands[3]").
//
// Decide assumes the command passed ValidateEnvelope (ids well formed, sizes
// within limits); it checks what depends on the state.
func oracleDecide(s *oracleState, prefix string, cmd *cairnv1.Command) ([]*cairnv1.Event, error) {
	if cg, ok := cmd.GetKind().(*cairnv1.Command_CreateGraph); ok {
		if s.created {
			if s.deleted {
				return nil, oAlreadyExists(prefix+".create_graph.graph_id", "graph %s existed and was deleted; its id cannot be reused", s.graph)
			}
			return nil, oAlreadyExists(prefix+".create_graph.graph_id", "graph %s already exists", s.graph)
		}
		return oOne(&cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{
			GraphId: s.graph, GraphType: cg.CreateGraph.GetGraphType(), Metadata: cg.CreateGraph.GetMetadata(),
		}}}), nil
	}
	if !s.created {
		return nil, oNotFound("graph_id", "graph %s does not exist", s.graph)
	}
	if s.deleted {
		return nil, oFailedPrecondition("graph_id", "graph %s is deleted", s.graph)
	}
	switch k := cmd.GetKind().(type) {
	case *cairnv1.Command_AddNode:
		f := prefix + ".add_node"
		if s.HasNode(k.AddNode.GetNodeId()) {
			return nil, oAlreadyExists(f+".node_id", "node %q already exists", k.AddNode.GetNodeId())
		}
		return oOne(&cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{
			NodeId: k.AddNode.GetNodeId(), Components: k.AddNode.GetComponents(), Categories: k.AddNode.GetCategories(),
		}}}), nil
	case *cairnv1.Command_SetNodeComponents:
		f := prefix + ".set_node_components"
		if !s.HasNode(k.SetNodeComponents.GetNodeId()) {
			return nil, oNotFound(f+".node_id", "node %q does not exist", k.SetNodeComponents.GetNodeId())
		}
		return oOne(&cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{
			NodeId: k.SetNodeComponents.GetNodeId(), Set: k.SetNodeComponents.GetComponents(),
		}}}), nil
	case *cairnv1.Command_RemoveNodeComponents:
		f := prefix + ".remove_node_components"
		rc := k.RemoveNodeComponents
		n, ok := s.nodes[rc.GetNodeId()]
		if !ok {
			return nil, oNotFound(f+".node_id", "node %q does not exist", rc.GetNodeId())
		}
		for i, t := range rc.GetTypes() {
			if !oHasType(n.comps, t) {
				return nil, oNotFound(f+".types["+strconv.Itoa(i)+"]", "node %q has no component of type %q", rc.GetNodeId(), t)
			}
		}
		return oOne(&cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{
			NodeId: rc.GetNodeId(), RemovedTypes: rc.GetTypes(),
		}}}), nil
	case *cairnv1.Command_RemoveNode:
		id := k.RemoveNode.GetNodeId()
		n, ok := s.nodes[id]
		if !ok {
			return nil, oNotFound(prefix+".remove_node.node_id", "node %q does not exist", id)
		}
		// Edges first, in id order, so that the transaction is deterministic.
		edges := slices.Clone(n.edges)
		slices.Sort(edges)
		evs := make([]*cairnv1.Event, 0, len(edges)+1)
		for _, eid := range edges {
			e := s.edges[eid]
			evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{
				EdgeId: eid, Source: e.source, Target: e.target,
			}}})
		}
		return append(evs, &cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: id}}}), nil
	case *cairnv1.Command_ConnectNodes:
		f := prefix + ".connect_nodes"
		cn := k.ConnectNodes
		if s.HasEdge(cn.GetEdgeId()) {
			return nil, oAlreadyExists(f+".edge_id", "edge %q already exists", cn.GetEdgeId())
		}
		var evs []*cairnv1.Event
		if !s.HasNode(cn.GetSource()) {
			if !cn.GetCreateMissing() {
				return nil, oNotFound(f+".source", "source node %q does not exist", cn.GetSource())
			}
			evs = append(evs, oNodeAdded(cn.GetSource()))
		}
		if !s.HasNode(cn.GetTarget()) && cn.GetTarget() != cn.GetSource() {
			if !cn.GetCreateMissing() {
				return nil, oNotFound(f+".target", "target node %q does not exist", cn.GetTarget())
			}
			evs = append(evs, oNodeAdded(cn.GetTarget()))
		}
		return append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{
			EdgeId: cn.GetEdgeId(), Source: cn.GetSource(), Target: cn.GetTarget(), EdgeType: cn.GetEdgeType(), Components: cn.GetComponents(),
		}}}), nil
	case *cairnv1.Command_DisconnectNodes:
		id := k.DisconnectNodes.GetEdgeId()
		e, ok := s.edges[id]
		if !ok {
			return nil, oNotFound(prefix+".disconnect_nodes.edge_id", "edge %q does not exist", id)
		}
		return oOne(&cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{
			EdgeId: id, Source: e.source, Target: e.target,
		}}}), nil
	case *cairnv1.Command_DeleteGraph:
		return oOne(&cairnv1.Event{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: &cairnv1.GraphDeleted{}}}), nil
	}
	return nil, oInvalid(prefix, "command has no kind")
}

func oOne(ev *cairnv1.Event) []*cairnv1.Event { return []*cairnv1.Event{ev} }

// nodeAdded records a node created by ConnectNodes.create_missing: no
// components, no categories.
func oNodeAdded(id string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id}}}
}

// oracleDecideEnvelope decides every command of env in order on s, applying each
// command's events before deciding the next, all or nothing: on success s
// holds the envelope's changes and the events are returned with their count
// per command; on error s is as it was. Call ValidateEnvelope first.
func oracleDecideEnvelope(s *oracleState, env *cairnv1.CommandEnvelope) ([]*cairnv1.Event, error) {
	outer := s.undo != nil
	if !outer {
		s.begin()
	}
	m := s.mark()
	var all []*cairnv1.Event
	for i, cmd := range env.GetCommands() {
		evs, err := oracleDecide(s, oCmdField(i), cmd)
		if err == nil {
			for _, ev := range evs {
				if err = oracleApply(s, ev); err != nil {
					err = &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Field: oCmdField(i), Message: err.Error()}
					break
				}
			}
		}
		if err != nil {
			s.rollback(m)
			if !outer {
				s.commit()
			}
			return nil, err
		}
		all = append(all, evs...)
	}
	if !outer {
		s.commit()
	}
	return all, nil
}

func oCmdField(i int) string { return "commands[" + strconv.Itoa(i) + "]" }

func oInvalid(field, format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, field, format, a...)
}

func oNotFound(field, format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, field, format, a...)
}

func oAlreadyExists(field, format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, field, format, a...)
}

func oFailedPrecondition(field, format string, a ...any) *aggregate.CommandError {
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, field, format, a...)
}
