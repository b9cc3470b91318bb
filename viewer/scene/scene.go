package scene

import (
	"hash/fnv"
	"time"

	"github.com/cairn-graph/cairn/internal/intern"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// HashedExtent is half the side of the square, centred on the origin, in
// which a scene without Placer puts each node, at a position hashed from
// its graph and id.
const HashedExtent = 1000

// Scene is one graph's nodes and edges in dense slots, folded from its
// transactions in history order. Slots are a pure function of the history:
// an add takes the lowest free slot; a removal hides its slot (size 0,
// alpha 0, a degenerate edge) and frees it for a later add, never
// compacting. A Scene is not safe for concurrent use: one goroutine (the
// render actor) folds into it and publishes it to an Exchange, and the GL
// thread reads only the Frames it acquires.
type Scene struct {
	graph  string
	placer Placer
	opt    options

	seq  uint64
	head string
	at   time.Time

	// Nodes by slot. The intern table maps ids to slots in a few bytes
	// per node; ids holds the same ids as strings, shared with the Frames.
	nodeIDs   *intern.Table
	ids       []string
	pos       []float32
	color     []uint32
	size      []float32
	deg       []uint32
	catHue    []uint8
	compHue   []uint8 // with WithColorComponent only
	freeNodes slotHeap
	liveNodes int

	// Edges by slot.
	edgeIDs   *intern.Table
	ends      []uint32
	freeEdges slotHeap
	liveEdges int

	fades map[uint32]fade // slots fading in or out

	// missing[b] holds the slots changed since buffer b of the Exchange
	// was last written: what it must copy before it is published again,
	// and, while the GL thread holds b, what the GL thread must upload
	// from the next Frame.
	missing [2]changes
	epoch   uint64 // counts Resets: a buffer written in an older one is rewritten whole

	moved []Range // scratch for Placer.TakeMoved
}

// changes is one set of dirty slots per kind of buffer.
type changes struct{ pos, node, edge dirtySet }

type fade struct {
	step int32
	out  bool
}

// New returns an empty scene of graph. placer lays its nodes out; with a
// nil placer each node sits at a position hashed from the graph and its id
// (within HashedExtent of the origin).
func New(graph string, placer Placer, opts ...Option) *Scene {
	s := &Scene{graph: graph, opt: defaultOptions()}
	for _, o := range opts {
		o(&s.opt)
	}
	s.Reset(placer)
	return s
}

// Reset empties the scene for a new start (a resynchronisation from a
// keyframe), with placer as its new Placer. The next Frame published is
// Full.
func (s *Scene) Reset(placer Placer) {
	s.placer = placer
	s.seq, s.head, s.at = 0, "", time.Time{}
	s.nodeIDs, s.edgeIDs = intern.New(), intern.New()
	s.ids, s.pos, s.color, s.size, s.deg, s.catHue, s.compHue = nil, nil, nil, nil, nil, nil, nil
	s.freeNodes, s.freeEdges = nil, nil
	s.liveNodes, s.liveEdges = 0, 0
	s.ends = nil
	s.fades = map[uint32]fade{}
	for i := range s.missing {
		s.missing[i] = changes{}
	}
	s.epoch++
}

// Graph returns the graph id.
func (s *Scene) Graph() string { return s.graph }

// Seq returns the stream sequence of the last transaction folded in (0:
// none), Head the CID of its last event and Time its time.
func (s *Scene) Seq() uint64 { return s.seq }

// Head returns the CID of the last event folded in ("" when Seq is 0).
func (s *Scene) Head() string { return s.head }

// Time returns the time of the last transaction folded in.
func (s *Scene) Time() time.Time { return s.at }

// Nodes returns the node slots in use (the high-water mark), LiveNodes
// those holding a node.
func (s *Scene) Nodes() int { return len(s.ids) }

// LiveNodes returns the nodes present.
func (s *Scene) LiveNodes() int { return s.liveNodes }

// Edges returns the edge slots in use (the high-water mark).
func (s *Scene) Edges() int { return len(s.ends) / 2 }

// LiveEdges returns the edges present.
func (s *Scene) LiveEdges() int { return s.liveEdges }

// Slot returns node id's slot, and false when the scene holds no such node.
func (s *Scene) Slot(id string) (uint32, bool) { return s.nodeIDs.Lookup(id) }

// NodeID returns the id of the node in slot ("" for a free slot).
func (s *Scene) NodeID(slot uint32) string {
	if int(slot) >= len(s.ids) {
		return ""
	}
	return s.ids[slot]
}

// EdgeSlot returns edge id's slot, and false when the scene holds no such
// edge.
func (s *Scene) EdgeSlot(id string) (uint32, bool) { return s.edgeIDs.Lookup(id) }

// Ends returns the from and to slots of edge slot e; a free edge slot
// holds the same slot twice.
func (s *Scene) Ends(e uint32) (from, to uint32) { return s.ends[2*e], s.ends[2*e+1] }

// Degree returns the degree (in + out; a self-loop counts twice) of the
// node in slot.
func (s *Scene) Degree(slot uint32) uint32 { return s.deg[slot] }

// Position returns the position of slot.
func (s *Scene) Position(slot uint32) (x, y float32) { return s.pos[2*slot], s.pos[2*slot+1] }

// Color returns the RGBA8 colour of slot (alpha 0: hidden).
func (s *Scene) Color(slot uint32) uint32 { return s.color[slot] }

// Size returns the diameter of slot in pixels at zoom 1 (0: hidden).
func (s *Scene) Size(slot uint32) float32 { return s.size[slot] }

// ApplyTx folds the transaction at stream sequence seq, whose last event
// has CID head and whose time is at: its events in order, each told to the
// Placer, then Placer.EndTx and the positions it moved. The caller has
// checked the transaction (persistence.Chain). An event that does not fit
// returns an *ApplyError (ErrInvalidEvent), after which the scene must be
// Reset: events before it in the transaction are folded.
func (s *Scene) ApplyTx(seq uint64, head string, at time.Time, events []*cairnv1.Event) error {
	for i, ev := range events {
		if reason := s.apply(ev); reason != "" {
			return &ApplyError{Graph: s.graph, Seq: seq, Index: i, Reason: reason}
		}
	}
	s.endTx()
	s.seq, s.head, s.at = seq, head, at
	return nil
}

// endTx ends a transaction: the Placer places what it was told and the
// positions it moved are copied in.
func (s *Scene) endTx() {
	if s.placer == nil {
		return
	}
	s.placer.EndTx()
	s.TakeMoved()
}

// Placer returns the scene's Placer (nil: hashed positions).
func (s *Scene) Placer() Placer { return s.placer }

// TakeMoved copies in the positions the Placer moved since it was last
// asked (after a global layout run between transactions, say) and
// reports whether any did.
func (s *Scene) TakeMoved() bool {
	if s.placer == nil {
		return false
	}
	s.moved = s.placer.TakeMoved(s.moved[:0])
	if len(s.moved) == 0 {
		return false
	}
	p := s.placer.Positions()
	n := uint32(min(len(p), len(s.pos)) / 2)
	for _, r := range s.moved {
		lo, hi := r.Lo, min(r.Hi, n)
		if lo >= hi {
			continue
		}
		copy(s.pos[2*lo:2*hi], p[2*lo:2*hi])
		s.missing[0].pos.setRange(lo, hi)
		s.missing[1].pos.setRange(lo, hi)
	}
	return true
}

func (s *Scene) apply(ev *cairnv1.Event) string {
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_GraphCreated:
	case *cairnv1.Event_GraphDeleted:
		s.deleteAll()
	case *cairnv1.Event_NodeAdded:
		return s.addNode(k.NodeAdded)
	case *cairnv1.Event_NodeComponentsChanged:
		return s.changeComponents(k.NodeComponentsChanged)
	case *cairnv1.Event_NodeRemoved:
		return s.removeNode(k.NodeRemoved.GetNodeId())
	case *cairnv1.Event_EdgeAdded:
		e := k.EdgeAdded
		return s.addEdge(e.GetEdgeId(), e.GetSource(), e.GetTarget())
	case *cairnv1.Event_EdgeRemoved:
		return s.removeEdge(k.EdgeRemoved.GetEdgeId())
	default:
		return "event has no kind"
	}
	return ""
}

func (s *Scene) markNode(slot uint32) {
	s.missing[0].node.set(slot)
	s.missing[1].node.set(slot)
}

func (s *Scene) markPos(slot uint32) {
	s.missing[0].pos.set(slot)
	s.missing[1].pos.set(slot)
}

func (s *Scene) markEdge(slot uint32) {
	s.missing[0].edge.set(slot)
	s.missing[1].edge.set(slot)
}

// AddNode adds node id with the given categories (the first one colours
// it) and, with WithColorComponent, value as the chosen component's value
// (nil: none). It is the fold of NodeAdded, for a scene started from a
// read model rather than from events. It returns false when the scene
// already holds id.
func (s *Scene) AddNode(id string, categories []string, value []byte) bool {
	return s.add(id, categories, value, value != nil) == ""
}

func (s *Scene) addNode(na *cairnv1.NodeAdded) string {
	var value []byte
	has := false
	if s.opt.colorComponent != "" {
		for _, c := range na.GetComponents() {
			if c.GetType() == s.opt.colorComponent {
				value, has = c.GetValue(), true // the last one of the type wins, as in the read model
			}
		}
	}
	return s.add(na.GetNodeId(), na.GetCategories(), value, has)
}

func (s *Scene) add(id string, categories []string, value []byte, hasValue bool) string {
	if _, ok := s.nodeIDs.Lookup(id); ok {
		return "node " + quote(id) + " exists"
	}
	slot, ok := s.freeNodes.pop()
	if !ok {
		slot = uint32(len(s.ids))
		s.ids = append(s.ids, "")
		s.pos = append(s.pos, 0, 0)
		s.color = append(s.color, 0)
		s.size = append(s.size, 0)
		s.deg = append(s.deg, 0)
		s.catHue = append(s.catHue, noHue)
		if s.opt.colorComponent != "" {
			s.compHue = append(s.compHue, noHue)
		}
	}
	s.nodeIDs.Set(slot, id)
	s.ids[slot] = id
	s.deg[slot] = 0
	s.catHue[slot] = noHue
	if len(categories) > 0 {
		s.catHue[slot] = Hue([]byte(categories[0]))
	}
	if s.compHue != nil {
		s.compHue[slot] = noHue
		if hasValue {
			s.compHue[slot] = Hue(value)
		}
	}
	s.size[slot] = sizeFor(0, s.opt.maxSize)
	alpha := uint8(0xff)
	delete(s.fades, slot)
	if s.opt.fadeFrames > 0 {
		alpha = 0
		s.fades[slot] = fade{}
	}
	s.color[slot] = withAlpha(s.baseColor(slot), alpha)
	s.liveNodes++
	s.markNode(slot)
	if s.placer == nil {
		x, y := hashedPos(s.graph, id)
		s.pos[2*slot], s.pos[2*slot+1] = x, y
		s.markPos(slot)
	} else {
		s.placer.AddNode(slot)
	}
	return ""
}

// baseColor is slot's opaque colour: its component's hue, else its first
// category's.
func (s *Scene) baseColor(slot uint32) uint32 {
	if s.compHue != nil && s.compHue[slot] != noHue {
		return Color(s.compHue[slot])
	}
	return Color(s.catHue[slot])
}

func (s *Scene) changeComponents(nc *cairnv1.NodeComponentsChanged) string {
	id := nc.GetNodeId()
	slot, ok := s.nodeIDs.Lookup(id)
	if !ok {
		return "node " + quote(id) + " does not exist"
	}
	if s.compHue == nil {
		return ""
	}
	hue := s.compHue[slot]
	for _, t := range nc.GetRemovedTypes() {
		if t == s.opt.colorComponent {
			hue = noHue
		}
	}
	for _, c := range nc.GetSet() {
		if c.GetType() == s.opt.colorComponent {
			hue = Hue(c.GetValue())
		}
	}
	if hue != s.compHue[slot] {
		s.compHue[slot] = hue
		s.color[slot] = withAlpha(s.baseColor(slot), uint8(s.color[slot]>>24))
		s.markNode(slot)
	}
	return ""
}

func (s *Scene) removeNode(id string) string {
	slot, ok := s.nodeIDs.Lookup(id)
	if !ok {
		return "node " + quote(id) + " does not exist"
	}
	if s.deg[slot] != 0 {
		return "node " + quote(id) + " still has edges"
	}
	if s.placer != nil {
		s.placer.RemoveNode(slot)
	}
	s.nodeIDs.Delete(slot)
	s.ids[slot] = ""
	s.liveNodes--
	s.freeNodes.push(slot)
	if s.opt.fadeFrames > 0 && s.color[slot]>>24 != 0 {
		s.fades[slot] = fade{out: true}
	} else {
		delete(s.fades, slot)
		s.color[slot], s.size[slot] = withAlpha(s.color[slot], 0), 0
	}
	s.markNode(slot)
	return ""
}

func (s *Scene) addEdge(id, from, to string) string {
	if _, ok := s.edgeIDs.Lookup(id); ok {
		return "edge " + quote(id) + " exists"
	}
	a, ok1 := s.nodeIDs.Lookup(from)
	b, ok2 := s.nodeIDs.Lookup(to)
	if !ok1 || !ok2 {
		return "edge " + quote(id) + " has a missing endpoint"
	}
	slot, ok := s.freeEdges.pop()
	if !ok {
		slot = uint32(len(s.ends) / 2)
		s.ends = append(s.ends, 0, 0)
	}
	s.edgeIDs.Set(slot, id)
	s.ends[2*slot], s.ends[2*slot+1] = a, b
	s.liveEdges++
	s.markEdge(slot)
	s.bump(a, 1)
	s.bump(b, 1)
	if s.placer != nil {
		s.placer.AddEdge(slot, a, b)
	}
	return ""
}

// AddEdge adds edge id from node from to node to, the fold of EdgeAdded,
// for a scene started from a read model. It returns false when the edge
// exists or an endpoint does not.
func (s *Scene) AddEdge(id, from, to string) bool { return s.addEdge(id, from, to) == "" }

// EndTx ends a batch of AddNode and AddEdge calls as ApplyTx ends a
// transaction (the Placer places them), and sets the scene's position in
// the history: the stream sequence, head CID and time of the state it now
// holds.
func (s *Scene) EndTx(seq uint64, head string, at time.Time) {
	s.endTx()
	s.seq, s.head, s.at = seq, head, at
}

func (s *Scene) removeEdge(id string) string {
	slot, ok := s.edgeIDs.Lookup(id)
	if !ok {
		return "edge " + quote(id) + " does not exist"
	}
	a, b := s.ends[2*slot], s.ends[2*slot+1]
	if s.placer != nil {
		s.placer.RemoveEdge(slot)
	}
	s.edgeIDs.Delete(slot)
	s.ends[2*slot+1] = a
	s.liveEdges--
	s.freeEdges.push(slot)
	s.markEdge(slot)
	s.bump(a, -1)
	s.bump(b, -1)
	return ""
}

// bump changes slot's degree by d and resizes it.
func (s *Scene) bump(slot uint32, d int) {
	s.deg[slot] = uint32(int(s.deg[slot]) + d)
	if s.size[slot] != 0 || s.color[slot]>>24 != 0 {
		s.size[slot] = sizeFor(s.deg[slot], s.opt.maxSize)
	}
	s.markNode(slot)
}

// deleteAll folds GraphDeleted: every edge, then every node, removed in
// slot order.
func (s *Scene) deleteAll() {
	for e := range uint32(len(s.ends) / 2) {
		if id := s.edgeIDs.String(e); id != "" {
			s.removeEdge(id)
		}
	}
	for n := range uint32(len(s.ids)) {
		if id := s.ids[n]; id != "" {
			s.removeNode(id)
		}
	}
}

// Advance moves every fade one frame on and reports whether any is still
// running. A replay calls it once per frame it shows.
func (s *Scene) Advance() bool {
	n := int32(s.opt.fadeFrames)
	for slot, f := range s.fades {
		f.step++
		a := uint8(255 * min(f.step, n) / max(n, 1))
		if f.out {
			a = 255 - a
		}
		s.color[slot] = withAlpha(s.color[slot], a)
		if f.step >= n {
			delete(s.fades, slot)
			if f.out {
				s.size[slot] = 0
			}
		} else {
			s.fades[slot] = f
		}
		s.markNode(slot)
	}
	return len(s.fades) > 0
}

// hashedPos is the position of node id of graph without a Placer.
func hashedPos(graph, id string) (x, y float32) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(graph))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(id))
	v := h.Sum64()
	f := func(u uint32) float32 { return (float32(u)/(1<<32)*2 - 1) * HashedExtent }
	return f(uint32(v)), f(uint32(v >> 32))
}

func quote(s string) string { return `"` + s + `"` }

// Fading reports whether a fade is running (Advance has work).
func (s *Scene) Fading() bool { return len(s.fades) > 0 }
