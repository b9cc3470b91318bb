package actors

import (
	"fmt"
	"slices"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// State is a graph aggregate: everything Decide needs to validate a command.
// It is folded from events by Apply and owned by one grain; it is not safe for
// concurrent use.
type State struct {
	graph    string
	created  bool
	deleted  bool
	typ      string
	metadata map[string]string
	nodes    map[string]*nodeState
	edges    map[string]*edgeState
	comps    interner
	// epoch counts the captures taken of the state (captureState): a
	// node's edge list allocated in an earlier epoch may be shared with a
	// capture, and is copied before it is changed in place.
	epoch uint64

	// undo, when not nil, records how to revert each change Apply makes, so
	// that a speculative batch can be rolled back.
	undo    []func()
	undoBuf []func() // undo's storage between recordings
}

// nodeState is modified in place; its comps and categories slices are
// replaced, never modified (snapshots share them). Its edges list is
// appended to in place, which a capture holding a shorter view of it never
// sees, and otherwise changed in place only when it was allocated since the
// last capture (own == State.epoch); else it is copied first (ownEdges).
type nodeState struct {
	comps      []*cairnv1.Component // interned, at most one per type
	categories []string
	edges      []string // ids of edges that start or end here
	own        uint64   // the epoch edges' array was allocated in
}

// addEdge appends id to n's edges.
func (s *State) addEdge(n *nodeState, id string) {
	if len(n.edges) == cap(n.edges) { // append allocates a fresh array
		n.own = s.epoch
	}
	n.edges = append(n.edges, id)
}

// ownEdges makes n's edge list private to the state, copying it when a
// capture may share it.
func (s *State) ownEdges(n *nodeState) {
	if n.own != s.epoch {
		n.edges = append(make([]string, 0, len(n.edges)+1), n.edges...)
		n.own = s.epoch
	}
}

// removeEdge removes id from n's edges by moving the last one into its
// place, and returns where it was (-1: not listed).
func (s *State) removeEdge(n *nodeState, id string) int {
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
func (s *State) unremoveEdge(n *nodeState, i int, id string) {
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

// edgeState is never modified once its edge is added (snapshots share it).
type edgeState struct {
	source, target string
	typ            string
	comps          []*cairnv1.Component // interned
}

// NewState returns the empty state of graph: it does not exist yet.
func NewState(graph string) *State {
	return &State{
		graph: graph,
		nodes: make(map[string]*nodeState),
		edges: make(map[string]*edgeState),
		comps: interner{m: make(map[componentKey]*internedComponent)},
	}
}

// Graph returns the graph id.
func (s *State) Graph() string { return s.graph }

// Exists reports whether the graph was created and not deleted.
func (s *State) Exists() bool { return s.created && !s.deleted }

// Deleted reports whether the graph was deleted.
func (s *State) Deleted() bool { return s.deleted }

// NodeCount and EdgeCount count live nodes and edges.
func (s *State) NodeCount() int { return len(s.nodes) }
func (s *State) EdgeCount() int { return len(s.edges) }

// DistinctComponents counts distinct (type, value) pairs held, each stored
// once however many nodes and edges carry it.
func (s *State) DistinctComponents() int { return len(s.comps.m) }

// HasNode and HasEdge report whether a live node or edge has the id.
func (s *State) HasNode(id string) bool { _, ok := s.nodes[id]; return ok }
func (s *State) HasEdge(id string) bool { _, ok := s.edges[id]; return ok }

// Node returns a node's components and categories; the slices must not be
// modified.
func (s *State) Node(id string) (comps []*cairnv1.Component, categories []string, ok bool) {
	n, ok := s.nodes[id]
	if !ok {
		return nil, nil, false
	}
	return n.comps, n.categories, true
}

// Edge returns an edge's endpoints, type and components.
func (s *State) Edge(id string) (source, target, typ string, comps []*cairnv1.Component, ok bool) {
	e, ok := s.edges[id]
	if !ok {
		return "", "", "", nil, false
	}
	return e.source, e.target, e.typ, e.comps, true
}

// NodeIDs and EdgeIDs return the live ids, sorted.
func (s *State) NodeIDs() []string { return sortedKeys(s.nodes) }
func (s *State) EdgeIDs() []string { return sortedKeys(s.edges) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *State) record(f func()) {
	if s.undo != nil {
		s.undo = append(s.undo, f)
	}
}

// begin starts recording changes for rollback, reusing the last recording's
// storage.
func (s *State) begin() {
	if s.undoBuf == nil {
		s.undoBuf = make([]func(), 0, 16)
	}
	s.undo = s.undoBuf[:0]
}

// mark returns a rollback point inside the current recording.
func (s *State) mark() int { return len(s.undo) }

// rollback reverts every change recorded after mark m.
func (s *State) rollback(m int) {
	for i := len(s.undo) - 1; i >= m; i-- {
		s.undo[i]()
	}
	s.undo = s.undo[:m]
}

// commit stops recording and keeps the changes.
func (s *State) commit() {
	clear(s.undo) // let the closures go
	s.undoBuf, s.undo = s.undo[:0], nil
}

// Apply folds one event into s, in place. It returns an error, and leaves s
// unchanged, when the event does not fit the state (which a valid chain never
// produces).
func Apply(s *State, ev *cairnv1.Event) error {
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
		n := &nodeState{comps: s.comps.internAll(na.GetComponents()), categories: na.GetCategories()}
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
			if !hasType(nc.GetSet(), c.GetType()) && !slices.Contains(nc.GetRemovedTypes(), c.GetType()) {
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
		e := &edgeState{source: ea.GetSource(), target: ea.GetTarget(), typ: ea.GetEdgeType(), comps: s.comps.internAll(ea.GetComponents())}
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

func hasType(cs []*cairnv1.Component, typ string) bool {
	for _, c := range cs {
		if c.GetType() == typ {
			return true
		}
	}
	return false
}

// interner stores each distinct component once (flyweight) with a reference
// count, and frees it when the last holder lets go.
type interner struct {
	m map[componentKey]*internedComponent
}

type componentKey struct{ typ, value string }

type internedComponent struct {
	c    *cairnv1.Component
	refs int
}

func (in *interner) intern(c *cairnv1.Component) *cairnv1.Component {
	// The lookup key does not escape: no copy of the value is made for it.
	if e, ok := in.m[componentKey{c.GetType(), string(c.GetValue())}]; ok {
		e.refs++
		return e.c
	}
	k := componentKey{c.GetType(), string(c.GetValue())}
	shared := &cairnv1.Component{Type: k.typ, Value: []byte(k.value)}
	in.m[k] = &internedComponent{c: shared, refs: 1}
	return shared
}

// internBytes interns the component of type typ and value value.
func (in *interner) internBytes(typ, value []byte) *cairnv1.Component {
	if e, ok := in.m[componentKey{string(typ), string(value)}]; ok {
		e.refs++
		return e.c
	}
	k := componentKey{string(typ), string(value)}
	shared := &cairnv1.Component{Type: k.typ, Value: []byte(k.value)}
	in.m[k] = &internedComponent{c: shared, refs: 1}
	return shared
}

func (in *interner) internAll(cs []*cairnv1.Component) []*cairnv1.Component {
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
func (in *interner) restoreAll(cs []*cairnv1.Component) {
	for _, c := range cs {
		k := componentKey{c.GetType(), string(c.GetValue())}
		if e, ok := in.m[k]; ok {
			e.refs++
		} else {
			in.m[k] = &internedComponent{c: c, refs: 1}
		}
	}
}

func (in *interner) release(c *cairnv1.Component) {
	k := componentKey{c.GetType(), string(c.GetValue())}
	if e, ok := in.m[k]; ok {
		if e.refs--; e.refs == 0 {
			delete(in.m, k)
		}
	}
}

func (in *interner) releaseAll(cs []*cairnv1.Component) {
	for _, c := range cs {
		in.release(c)
	}
}
