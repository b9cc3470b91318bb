package aggregate

import (
	"encoding/binary"
	"slices"
	"unsafe"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"

	"github.com/cairn-graph/cairn/internal/intern"
	"github.com/cairn-graph/cairn/internal/packed"
)

// State is a graph aggregate: everything Decide needs to validate a command,
// folded from events by Apply. It is not safe for concurrent use.
//
// It holds no Go object per node or edge. Node and edge ids are interned
// (internal/intern) under dense indices; a node's components and categories
// are one handle to a shared attribute set, and so are an edge's type and
// components; each (type, value) component is stored once. Endpoints and the
// incidence lists are packed arrays: every edge is linked into the list of
// its source and the list of its target (doubly, so that a removal costs
// O(1) and a node removal O(edges)). Undo is a log of small records.
type State struct {
	graph            string
	created, deleted bool
	typ              string
	metadata         map[string]string
	rules            TypeRules // the rules of typ when registered (see types.go), else nil

	nodes     ids // node id <-> index
	freeNodes []uint32
	nodeSet   packed.Pages // node -> attribute set + 1 (0: none)
	first     packed.Pages // node -> first incident edge + 1 (0: none)
	nNodes    int

	edges     ids // edge id <-> index
	freeEdges []uint32
	src, dst  packed.Pages // edge -> node index
	edgeSet   packed.Pages // edge -> attribute set + 1 (0: no type, no components)
	// Incidence links, edge + 1 (0: end of list): the next and previous
	// edge in the list of the edge's source, and in that of its target.
	// A self-loop is in its node's list once, through its source links.
	srcNext, srcPrev, dstNext, dstPrev packed.Pages
	nEdges                             int

	comps  refTable // "type\x00value" -> component handle
	ctype  packed.Pages
	nsets  refTable // node attribute sets (see nodeKey)
	esets  refTable // edge attribute sets (see edgeKey)
	ctypes names    // component types
	cats   names    // categories
	etypes names    // edge types

	// undo, while recording, logs how to revert each change (see undo.go).
	undo      []undoRec
	recording bool
	// linkStep is set while DecideEnvelope decides an envelope of the
	// engine's own link steps (LinkIssuer; links.go).
	linkStep bool
}

// NewState returns the empty state of graph: it does not exist yet.
func NewState(graph string) *State {
	return &State{
		graph: graph, nodes: newIDs(), edges: newIDs(),
		comps: newRefTable(), nsets: newRefTable(), esets: newRefTable(),
		ctypes: newNames(), cats: newNames(), etypes: newNames(),
	}
}

// Graph returns the graph id.
func (s *State) Graph() string { return s.graph }

// Exists reports whether the graph was created and not deleted.
func (s *State) Exists() bool { return s.created && !s.deleted }

// Created reports whether the graph was ever created.
func (s *State) Created() bool { return s.created }

// Deleted reports whether the graph was deleted.
func (s *State) Deleted() bool { return s.deleted }

// Type and Metadata return what CreateGraph set.
func (s *State) Type() string                { return s.typ }
func (s *State) Metadata() map[string]string { return s.metadata }

// NodeCount and EdgeCount count live nodes and edges.
func (s *State) NodeCount() int { return s.nNodes }
func (s *State) EdgeCount() int { return s.nEdges }

// DistinctComponents counts distinct (type, value) pairs held, each stored
// once however many nodes and edges carry it.
func (s *State) DistinctComponents() int { return s.comps.len() }

// HasNode and HasEdge report whether a live node or edge has the id.
func (s *State) HasNode(id string) bool { _, ok := s.nodes.Lookup(id); return ok }
func (s *State) HasEdge(id string) bool { _, ok := s.edges.Lookup(id); return ok }

// Node returns a node's components and categories, freshly built.
func (s *State) Node(id string) (comps []*cairnv1.Component, categories []string, ok bool) {
	u, ok := s.nodes.Lookup(id)
	if !ok {
		return nil, nil, false
	}
	hs, cs := s.nodeAttrs(u, nil)
	for _, h := range hs {
		comps = append(comps, s.component(h))
	}
	for _, c := range cs {
		categories = append(categories, s.cats.name(c))
	}
	return comps, categories, true
}

// Edge returns an edge's endpoints, type and components.
func (s *State) Edge(id string) (source, target, typ string, comps []*cairnv1.Component, ok bool) {
	e, ok := s.edges.Lookup(id)
	if !ok {
		return "", "", "", nil, false
	}
	t, hs := s.edgeAttrs(e, nil)
	if t > 0 {
		typ = s.etypes.name(t - 1)
	}
	for _, h := range hs {
		comps = append(comps, s.component(h))
	}
	return s.nodes.String(s.src.Get(int(e))), s.nodes.String(s.dst.Get(int(e))), typ, comps, true
}

// NodeIDs and EdgeIDs return the live ids, sorted.
func (s *State) NodeIDs() []string { return liveIDs(s.nodes.Table) }
func (s *State) EdgeIDs() []string { return liveIDs(s.edges.Table) }

func liveIDs(t *intern.Table) []string {
	out := make([]string, 0, t.Len())
	for i := range t.Cap() {
		if t.Has(uint32(i)) {
			out = append(out, t.String(uint32(i)))
		}
	}
	slices.Sort(out)
	return out
}

// Degree counts the edges that start or end at node id (a self-loop once).
func (s *State) Degree(id string) int {
	u, ok := s.nodes.Lookup(id)
	if !ok {
		return 0
	}
	n := 0
	for e := s.first.Get(int(u)); e != 0 && n <= s.nEdges; e = s.nextOf(e-1, u) {
		n++
	}
	return n
}

// Bytes returns the memory the state's structures hold, in bytes.
func (s *State) Bytes() int {
	n := s.nodes.Bytes() + s.edges.Bytes() + 4*(cap(s.freeNodes)+cap(s.freeEdges))
	for _, a := range []*packed.Pages{&s.nodeSet, &s.first, &s.src, &s.dst, &s.edgeSet, &s.srcNext, &s.srcPrev, &s.dstNext, &s.dstPrev, &s.ctype} {
		n += a.Bytes()
	}
	return n + s.comps.bytes() + s.nsets.bytes() + s.esets.bytes() + s.ctypes.bytes() + s.cats.bytes() + s.etypes.bytes()
}

// component returns handle h as a message.
func (s *State) component(h uint32) *cairnv1.Component {
	k := s.comps.key(h)
	t := len(s.ctypes.name(s.ctype.Get(int(h))))
	return &cairnv1.Component{Type: k[:t], Value: []byte(k[t+1:])}
}

// componentKey is the comps key of (typ, value): types never hold a NUL.
func componentKey(buf []byte, typ string, value []byte) []byte {
	return append(append(append(buf[:0], typ...), 0), value...)
}

// acquireComponent returns the handle of c, storing it if new.
func (s *State) acquireComponent(buf []byte, c *cairnv1.Component) uint32 {
	// The table copies the key: it can be read off buf.
	key := componentKey(buf, c.GetType(), c.GetValue())
	h := s.comps.acquire(unsafe.String(unsafe.SliceData(key), len(key)))
	for s.ctype.Len() <= int(h) {
		s.ctype.Append(0)
	}
	s.ctype.Set(int(h), s.ctypes.intern(c.GetType()))
	return h
}

// nodeKey encodes a node's attribute set: the number of components, their
// handles in order, then the category ids, as uvarints. Empty: no set.
func nodeKey(buf []byte, comps, cats []uint32) []byte {
	buf = binary.AppendUvarint(buf[:0], uint64(len(comps)))
	for _, h := range comps {
		buf = binary.AppendUvarint(buf, uint64(h))
	}
	for _, c := range cats {
		buf = binary.AppendUvarint(buf, uint64(c))
	}
	return buf
}

// edgeKey encodes an edge's attribute set: its type id + 1 (0: none),
// then its component handles.
func edgeKey(buf []byte, typ uint32, comps []uint32) []byte {
	buf = binary.AppendUvarint(buf[:0], uint64(typ))
	for _, h := range comps {
		buf = binary.AppendUvarint(buf, uint64(h))
	}
	return buf
}

// uvarints appends the uvarints of key to dst.
func uvarints(dst []uint32, key string) []uint32 {
	for len(key) > 0 {
		v, n := uvarintString(key)
		dst = append(dst, uint32(v))
		key = key[n:]
	}
	return dst
}

func uvarintString(s string) (uint64, int) {
	var v uint64
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			return v | uint64(b)<<(7*i), i + 1
		}
		v |= uint64(b&0x7f) << (7 * i)
	}
	return v, len(s) // malformed: end the key (sets are written by nodeKey/edgeKey only)
}

// nodeAttrs returns node u's component handles and category ids; buf is
// scratch for them.
func (s *State) nodeAttrs(u uint32, buf []uint32) (comps, cats []uint32) {
	set := s.nodeSet.Get(int(u))
	if set == 0 {
		return nil, nil
	}
	l := uvarints(buf[:0], s.nsets.key(set-1))
	n := int(l[0])
	return l[1 : 1+n], l[1+n:]
}

// edgeAttrs returns edge e's type id + 1 (0: none) and component handles.
func (s *State) edgeAttrs(e uint32, buf []uint32) (typ uint32, comps []uint32) {
	set := s.edgeSet.Get(int(e))
	if set == 0 {
		return 0, nil
	}
	l := uvarints(buf[:0], s.esets.key(set-1))
	return l[0], l[1:]
}

// setNodeAttrs makes node u's attribute set the one of comps and cats,
// whose handles it takes over, and returns the set it had (+1), whose
// reference it drops.
func (s *State) setNodeAttrs(u uint32, comps, cats []uint32) (old uint32) {
	old = s.nodeSet.Get(int(u))
	var set uint32
	if len(comps)+len(cats) > 0 {
		var buf [64]byte
		set = s.nsets.acquire(string(nodeKey(buf[:0], comps, cats))) + 1
	}
	s.nodeSet.Set(int(u), set)
	if old != 0 {
		s.nsets.release(old-1, s.recording)
	}
	return old
}

// grow makes a packed array hold index i.
func grow(a *packed.Pages, i uint32) {
	for a.Len() <= int(i) {
		a.Append(0)
	}
}

// allocNode and allocEdge return a free index.
func (s *State) allocNode() uint32 {
	if n := len(s.freeNodes); n > 0 {
		u := s.freeNodes[n-1]
		s.freeNodes = s.freeNodes[:n-1]
		return u
	}
	u := uint32(s.nodes.Cap())
	grow(&s.nodeSet, u)
	grow(&s.first, u)
	return u
}

func (s *State) allocEdge() uint32 {
	if n := len(s.freeEdges); n > 0 {
		e := s.freeEdges[n-1]
		s.freeEdges = s.freeEdges[:n-1]
		return e
	}
	e := uint32(s.edges.Cap())
	for _, a := range []*packed.Pages{&s.src, &s.dst, &s.edgeSet, &s.srcNext, &s.srcPrev, &s.dstNext, &s.dstPrev} {
		grow(a, e)
	}
	return e
}

// nextOf returns the link after edge e in node u's list (edge + 1, 0: end).
func (s *State) nextOf(e, u uint32) uint32 {
	if s.src.Get(int(e)) == u {
		return s.srcNext.Get(int(e))
	}
	return s.dstNext.Get(int(e))
}

// setNext and setPrev set edge e's links in node u's list.
func (s *State) setNext(e, u, v uint32) {
	if s.src.Get(int(e)) == u {
		s.srcNext.Set(int(e), v)
	} else {
		s.dstNext.Set(int(e), v)
	}
}

func (s *State) setPrev(e, u, v uint32) {
	if s.src.Get(int(e)) == u {
		s.srcPrev.Set(int(e), v)
	} else {
		s.dstPrev.Set(int(e), v)
	}
}

// links returns edge e's previous and next links in node u's list.
func (s *State) links(e, u uint32) (prev, next uint32) {
	if s.src.Get(int(e)) == u {
		return s.srcPrev.Get(int(e)), s.srcNext.Get(int(e))
	}
	return s.dstPrev.Get(int(e)), s.dstNext.Get(int(e))
}

// link puts edge e at the head of node u's list.
func (s *State) link(e, u uint32) {
	head := s.first.Get(int(u))
	s.setPrev(e, u, 0)
	s.setNext(e, u, head)
	if head != 0 {
		s.setPrev(head-1, u, e+1)
	}
	s.first.Set(int(u), e+1)
}

// unlink takes edge e out of node u's list. Its own links are left as they
// were, so that relink can put it back (undo runs newest first, so its
// neighbours are then next to each other again).
func (s *State) unlink(e, u uint32) {
	prev, next := s.links(e, u)
	if prev != 0 {
		s.setNext(prev-1, u, next)
	} else {
		s.first.Set(int(u), next)
	}
	if next != 0 {
		s.setPrev(next-1, u, prev)
	}
}

// relink undoes unlink(e, u).
func (s *State) relink(e, u uint32) {
	prev, next := s.links(e, u)
	if prev != 0 {
		s.setNext(prev-1, u, e+1)
	} else {
		s.first.Set(int(u), e+1)
	}
	if next != 0 {
		s.setPrev(next-1, u, e+1)
	}
}

// incident appends the indices of the edges at node u to dst. It stops
// after as many as the state holds, so that a corrupt list cannot make it
// loop (Verify finds such a list).
func (s *State) incident(dst []uint32, u uint32) []uint32 {
	for e, n := s.first.Get(int(u)), 0; e != 0 && n <= s.nEdges; e, n = s.nextOf(e-1, u), n+1 {
		dst = append(dst, e-1)
	}
	return dst
}
