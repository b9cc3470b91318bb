package aggregate

import (
	"fmt"
	"slices"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

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
		s.bindRules()
		s.log(undoRec{op: opCreated})
	case *cairnv1.Event_GraphDeleted:
		if !s.Exists() {
			return fmt.Errorf("apply GraphDeleted: graph %s does not exist", s.graph)
		}
		s.deleted = true
		s.log(undoRec{op: opDeleted})
	case *cairnv1.Event_NodeAdded:
		return s.addNode(k.NodeAdded)
	case *cairnv1.Event_NodeComponentsChanged:
		return s.changeNode(k.NodeComponentsChanged)
	case *cairnv1.Event_NodeRemoved:
		return s.removeNode(k.NodeRemoved.GetNodeId())
	case *cairnv1.Event_EdgeAdded:
		return s.addEdge(k.EdgeAdded)
	case *cairnv1.Event_EdgeRemoved:
		return s.removeEdge(k.EdgeRemoved.GetEdgeId())
	default:
		return fmt.Errorf("apply: event has no kind")
	}
	return nil
}

func (s *State) addNode(na *cairnv1.NodeAdded) error {
	id := na.GetNodeId()
	if s.HasNode(id) {
		return fmt.Errorf("apply NodeAdded: node %q exists", id)
	}
	var hbuf, cbuf [16]uint32
	var kbuf [128]byte
	hs := hbuf[:0]
	for _, c := range na.GetComponents() {
		hs = append(hs, s.acquireComponent(kbuf[:0], c))
	}
	cs := cbuf[:0]
	for _, c := range na.GetCategories() {
		cs = append(cs, s.cats.intern(c))
	}
	u := s.allocNode()
	s.nodes.Set(u, id)
	s.setNodeAttrs(u, hs, cs)
	s.nNodes++
	s.log(undoRec{op: opNodeAdded, idx: u})
	return nil
}

func (s *State) changeNode(nc *cairnv1.NodeComponentsChanged) error {
	u, ok := s.nodes.Lookup(nc.GetNodeId())
	if !ok {
		return fmt.Errorf("apply NodeComponentsChanged: node %q does not exist", nc.GetNodeId())
	}
	var obuf, nbuf [32]uint32
	var kbuf [128]byte
	old, cats := s.nodeAttrs(u, obuf[:0])
	next := nbuf[:0]
	for _, h := range old {
		t := s.ctypes.name(s.ctype.Get(int(h)))
		if !hasType(nc.GetSet(), t) && !slices.Contains(nc.GetRemovedTypes(), t) {
			s.comps.retain(h)
			next = append(next, h)
		}
	}
	for _, c := range nc.GetSet() {
		next = append(next, s.acquireComponent(kbuf[:0], c))
	}
	for _, h := range old {
		s.comps.release(h, s.recording)
	}
	prev := s.setNodeAttrs(u, next, cats)
	s.log(undoRec{op: opNodeChanged, idx: u, a: prev})
	return nil
}

func (s *State) removeNode(id string) error {
	u, ok := s.nodes.Lookup(id)
	if !ok {
		return fmt.Errorf("apply NodeRemoved: node %q does not exist", id)
	}
	if s.first.Get(int(u)) != 0 {
		return fmt.Errorf("apply NodeRemoved: node %q still has %d edges", id, s.Degree(id))
	}
	set := s.nodeSet.Get(int(u))
	s.holdSet(&s.nsets, set, true, false)
	s.nodes.Delete(u)
	s.nNodes--
	if !s.recording {
		s.freeNode(u)
		return nil
	}
	s.log(undoRec{op: opNodeRemoved, idx: u, s: id})
	return nil
}

func (s *State) addEdge(ea *cairnv1.EdgeAdded) error {
	id := ea.GetEdgeId()
	if s.HasEdge(id) {
		return fmt.Errorf("apply EdgeAdded: edge %q exists", id)
	}
	su, okS := s.nodes.Lookup(ea.GetSource())
	du, okT := s.nodes.Lookup(ea.GetTarget())
	if !okS || !okT {
		return fmt.Errorf("apply EdgeAdded: edge %q has a missing endpoint", id)
	}
	var hbuf [16]uint32
	var kbuf [128]byte
	hs := hbuf[:0]
	for _, c := range ea.GetComponents() {
		hs = append(hs, s.acquireComponent(kbuf[:0], c))
	}
	var typ uint32
	if t := ea.GetEdgeType(); t != "" {
		typ = s.etypes.intern(t) + 1
	}
	e := s.allocEdge()
	s.edges.Set(e, id)
	s.src.Set(int(e), su)
	s.dst.Set(int(e), du)
	var set uint32
	if typ != 0 || len(hs) > 0 {
		set = s.esets.acquire(string(edgeKey(kbuf[:0], typ, hs))) + 1
	}
	s.edgeSet.Set(int(e), set)
	s.link(e, su)
	if du != su {
		s.link(e, du)
	}
	s.nEdges++
	s.log(undoRec{op: opEdgeAdded, idx: e})
	return nil
}

func (s *State) removeEdge(id string) error {
	e, ok := s.edges.Lookup(id)
	if !ok {
		return fmt.Errorf("apply EdgeRemoved: edge %q does not exist", id)
	}
	su, du := s.src.Get(int(e)), s.dst.Get(int(e))
	s.unlink(e, su)
	if du != su {
		s.unlink(e, du)
	}
	s.holdSet(&s.esets, s.edgeSet.Get(int(e)), false, false)
	s.edges.Delete(e)
	s.nEdges--
	if !s.recording {
		s.freeEdge(e)
		return nil
	}
	s.log(undoRec{op: opEdgeRemoved, idx: e, s: id})
	return nil
}

// holdSet takes (retain) or drops the references a node or an edge holds
// to its attribute set (set is the handle + 1, 0: none) and to the
// components the set lists.
func (s *State) holdSet(r *refTable, set uint32, node, retain bool) {
	if set == 0 {
		return
	}
	var buf [32]uint32
	l := uvarints(buf[:0], r.key(set-1))
	comps := l[1:] // an edge set: its type, then its components
	if node {
		comps = l[1 : 1+l[0]] // a node set: the count, the components, the categories
	}
	for _, h := range comps {
		if retain {
			s.comps.retain(h)
		} else {
			s.comps.release(h, s.recording)
		}
	}
	if retain {
		r.retain(set - 1)
	} else {
		r.release(set-1, s.recording)
	}
}

// freeNode and freeEdge make a removed node's or edge's index reusable.
func (s *State) freeNode(u uint32) {
	s.nodeSet.Set(int(u), 0)
	s.freeNodes = append(s.freeNodes, u)
}

func (s *State) freeEdge(e uint32) {
	s.edgeSet.Set(int(e), 0)
	s.freeEdges = append(s.freeEdges, e)
}

func hasType(cs []*cairnv1.Component, typ string) bool {
	for _, c := range cs {
		if c.GetType() == typ {
			return true
		}
	}
	return false
}
