package readmodel

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cairn-graph/cairn/internal/adjacency"
	"github.com/cairn-graph/cairn/internal/intern"
	"github.com/cairn-graph/cairn/internal/packed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// maxEdgeTypes is the number of distinct edge types a graph may hold (they
// are stored as uint16).
const maxEdgeTypes = 1 << 16

// Graph is the compact read model of one graph. It is deterministic, does no
// I/O and is not safe for concurrent use: its owner (a projection shard
// actor) serialises Apply, ApplyTx and the queries.
type Graph struct {
	id  string
	cfg Config

	created, deleted bool
	asOf             uint64 // stream sequence of the last applied transaction
	version          uint64 // applied events so far

	// What GraphCreated set, and the times of the first and the last
	// transaction applied (NoteTime), for the catalogue.
	typ                 string
	metadata            map[string]string
	createdAt, changeAt int64 // Unix nanoseconds, 0: unknown
	// firstSeq is the stream sequence of the first transaction applied to
	// this model from empty; 0 when unknown (restored from a snapshot of
	// format 2 or 3, which does not carry it).
	firstSeq uint64

	// Nodes: dense index <-> external id, free slots reused.
	nodes     *intern.Table
	freeNodes []uint32
	attrs     lists // node -> [component count, component handles..., category ids...]
	outDeg    degrees
	inDeg     degrees

	// Edges: dense index <-> external id, endpoints and type. An index
	// freed by EdgeRemoved is reused only after the next compaction.
	edges     *intern.Table
	freeEdges []uint32
	src, dst  packed.Pages // node indices
	etype     packed.Pages // edge type ids, < maxEdgeTypes
	types     names        // edge types; ids fit a uint16
	adj       *adjacency.Index

	store *components

	categories names
	catNodes   []*roaring.Bitmap

	nEdges  int
	degHist map[uint32]int // total degree -> nodes
	top     topCache
	trav    traversal   // scratch and component cache of traverse.go
	authz   *authzIndex // authorization graphs' tuple index (authz.go): from GraphCreated, or built after a snapshot load
}

// New returns an empty read model for graph id.
func New(id string, cfg Config) (*Graph, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("readmodel config: %w", err)
	}
	g := &Graph{id: id, cfg: cfg}
	g.reset()
	return g, nil
}

func (g *Graph) reset() {
	g.nodes, g.freeNodes = intern.New(), nil
	g.attrs = lists{}
	g.outDeg, g.inDeg = degrees{}, degrees{}
	g.edges, g.freeEdges = intern.New(), nil
	g.src, g.dst, g.etype = packed.Pages{}, packed.Pages{}, packed.Pages{}
	g.types = names{}
	g.adj = adjacency.New()
	g.store = newComponents(g.cfg.BloomFalsePositive)
	g.categories, g.catNodes = names{}, nil
	g.nEdges, g.degHist, g.top = 0, map[uint32]int{}, topCache{}
	g.authz = nil
}

// ID returns the graph id.
func (g *Graph) ID() string { return g.id }

// AsOf returns the stream sequence of the last applied transaction.
func (g *Graph) AsOf() uint64 { return g.asOf }

// Size returns how many nodes and edges the graph holds.
func (g *Graph) Size() (nodes, edges int) { return g.nodes.Len(), g.nEdges }

// Type and Metadata return what the graph's GraphCreated event set (empty
// before it, and after GraphDeleted: a deleted graph keeps its type).
func (g *Graph) Type() string                { return g.typ }
func (g *Graph) Metadata() map[string]string { return g.metadata }

// Created and Deleted report whether GraphCreated and GraphDeleted were
// applied.
func (g *Graph) Created() bool { return g.created }
func (g *Graph) Deleted() bool { return g.deleted }

// NoteTime records the timestamp of a transaction just applied (Unix
// nanoseconds, the transaction's timestamp): the first one noted is the
// graph's creation time, the last its change time. Times going backwards
// (a clock step between writers) are kept as they come.
func (g *Graph) NoteTime(unixNano int64) {
	if g.createdAt == 0 {
		g.createdAt = unixNano
	}
	g.changeAt = unixNano
}

// Times returns the noted creation and change times (Unix nanoseconds, 0
// when none was noted).
func (g *Graph) Times() (created, changed int64) { return g.createdAt, g.changeAt }

// FirstSeq returns the stream sequence of the graph's first transaction
// when this model folded it, or restored it from a snapshot of format 4
// or later (0: unknown, as after a restore from an older snapshot). The
// graph did not exist before it.
func (g *Graph) FirstSeq() uint64 { return g.firstSeq }

// Version counts the events applied so far; any write changes it.
func (g *Graph) Version() uint64 { return g.version }

// Apply folds one event of the transaction at stream sequence seq. Several
// events may share a seq; a seq below AsOf is refused with ErrInvalidArgument.
// An event that does not fit returns an *ApplyError wrapping ErrInvalidEvent
// and leaves g unchanged.
func (g *Graph) Apply(seq uint64, ev *cairnv1.Event) error {
	if seq < g.asOf {
		return fmt.Errorf("apply seq %d below as-of %d: %w", seq, g.asOf, ErrInvalidArgument)
	}
	return g.applyAll(seq, []*cairnv1.Event{ev})
}

// ApplyTx applies the whole transaction at stream sequence seq, or nothing:
// every event is validated against the graph as the earlier events of the
// transaction leave it before any is applied. A seq at or below AsOf is a
// redelivery and changes nothing. A transaction that does not fit returns an
// *ApplyError (wrapping ErrInvalidEvent) naming the event, and g is unchanged.
func (g *Graph) ApplyTx(seq uint64, events []*cairnv1.Event) error {
	if seq <= g.asOf {
		return nil
	}
	return g.applyAll(seq, events)
}

func (g *Graph) applyAll(seq uint64, events []*cairnv1.Event) error {
	if err := g.validate(seq, events); err != nil {
		return err
	}
	if g.version == 0 {
		g.firstSeq = seq
	}
	for _, ev := range events {
		g.apply(ev)
		g.version++
	}
	g.asOf = seq
	// A compaction costs O(nodes + edges): it starts when the delta is a
	// fixed share of that, so its cost per change stays constant, and runs
	// in the background; it is taken in (waiting for it if need be) once a
	// quarter as many changes again have come, a point fixed by the event
	// history, so answers do not depend on the goroutine's timing.
	threshold := max(g.cfg.CompactMin, (g.nEdges+g.nodes.Cap())/g.cfg.CompactDivisor)
	switch d := g.adj.Delta(); {
	case g.adj.Compacting() && d >= threshold/4:
		g.finishCompaction(g.adj.Finish())
	case !g.adj.Compacting() && d > threshold:
		g.adj.BeginPaced(g.nodes.Cap(), g.cfg.Background)
	}
	return nil
}

// finishCompaction releases the edge indices a compaction removed and
// rebuilds the bloom filter when dead keys dominate it.
func (g *Graph) finishCompaction(freed []uint32) {
	g.freeEdges = append(g.freeEdges, freed...)
	// Hand out low indices first.
	slices.SortFunc(g.freeEdges, func(a, b uint32) int { return cmp.Compare(b, a) })
	g.store.maybeRebuildBloom()
}

// Compact folds the adjacency delta into the CSR arrays now and gives back
// the spare capacity of the growing arrays and the traversal scratch. A shard
// calls it when it has caught up with the stream; the next writes and
// traversals grow them again.
func (g *Graph) Compact() {
	// Fold, not compact: when a shard catches up depends on timing, and a
	// compaction then would free edge indices earlier than the history
	// alone says, so later edges would get other indices and neighbour
	// order would depend on timing.
	g.adj.Fold(g.nodes.Cap())
	g.store.maybeRebuildBloom()
	g.trav.release()
	g.nodes.Trim()
	g.edges.Trim()
	g.attrs.trim()
	g.outDeg.trim()
	g.inDeg.trim()
	g.src.Clip()
	g.dst.Clip()
	g.etype.Clip()
	g.freeNodes, g.freeEdges = slices.Clone(g.freeNodes), slices.Clone(g.freeEdges)
	g.store.trim()
	trimBitmaps(g.catNodes)
}

// kind names an event's kind for errors.
func kind(ev *cairnv1.Event) string {
	if k := persistence.EventType(ev); k != "" {
		return k
	}
	return "unknown"
}

// overlay is what a transaction's earlier events have changed, for
// validating its later ones.
type overlay struct {
	created, deleted bool
	nodes            map[string]bool // id -> exists
	degree           map[string]int  // id -> change of out+in degree
	edges            map[string]bool // id -> exists
	ends             map[string][2]string
	types            map[string]bool
}

func (g *Graph) nodeExists(o *overlay, id string) bool {
	if v, ok := o.nodes[id]; ok {
		return v
	}
	_, ok := g.nodes.Lookup(id)
	return ok
}

func (g *Graph) validate(seq uint64, events []*cairnv1.Event) error {
	o := &overlay{
		created: g.created, deleted: g.deleted,
		nodes: map[string]bool{}, degree: map[string]int{}, edges: map[string]bool{},
		ends: map[string][2]string{}, types: map[string]bool{},
	}
	for i, ev := range events {
		if err := g.check(o, ev); err != nil {
			return &ApplyError{Seq: seq, Index: i, Kind: kind(ev), Err: err}
		}
	}
	return nil
}

func (g *Graph) check(o *overlay, ev *cairnv1.Event) error {
	if o.deleted {
		return invalid("graph %s was deleted", g.id)
	}
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_GraphCreated:
		if o.created {
			return invalid("graph %s already exists", g.id)
		}
		o.created = true
	case *cairnv1.Event_GraphDeleted:
		if !o.created {
			return invalid("graph %s does not exist", g.id)
		}
		o.deleted = true
	case *cairnv1.Event_NodeAdded:
		id := k.NodeAdded.GetNodeId()
		if g.nodeExists(o, id) {
			return invalid("node %q exists", id)
		}
		if len(k.NodeAdded.GetComponents()) > maxList || len(k.NodeAdded.GetCategories()) > maxList {
			return invalid("node %q has too many components or categories", id)
		}
		o.nodes[id] = true
	case *cairnv1.Event_NodeComponentsChanged:
		id := k.NodeComponentsChanged.GetNodeId()
		if !g.nodeExists(o, id) {
			return invalid("node %q does not exist", id)
		}
		// A node holds at most one component per type, so the set alone
		// bounds how many it can gain.
		if len(k.NodeComponentsChanged.GetSet()) > maxList {
			return invalid("node %q gets too many components", id)
		}
	case *cairnv1.Event_NodeRemoved:
		id := k.NodeRemoved.GetNodeId()
		if !g.nodeExists(o, id) {
			return invalid("node %q does not exist", id)
		}
		deg := o.degree[id]
		if _, ok := o.nodes[id]; !ok {
			u, _ := g.nodes.Lookup(id)
			deg += int(g.outDeg.get(u) + g.inDeg.get(u))
		}
		if deg != 0 {
			return invalid("node %q still has edges", id)
		}
		o.nodes[id] = false
		delete(o.degree, id)
	case *cairnv1.Event_EdgeAdded:
		ea := k.EdgeAdded
		id := ea.GetEdgeId()
		if g.edgeExists(o, id) {
			return invalid("edge %q exists", id)
		}
		if !g.nodeExists(o, ea.GetSource()) || !g.nodeExists(o, ea.GetTarget()) {
			return invalid("edge %q has a missing endpoint", id)
		}
		if _, ok := g.types.lookup(ea.GetEdgeType()); !ok && !o.types[ea.GetEdgeType()] {
			if g.types.len()+len(o.types) >= maxEdgeTypes {
				return invalid("edge %q: more than %d edge types", id, maxEdgeTypes)
			}
			o.types[ea.GetEdgeType()] = true
		}
		o.edges[id] = true
		o.ends[id] = [2]string{ea.GetSource(), ea.GetTarget()}
		o.degree[ea.GetSource()]++
		o.degree[ea.GetTarget()]++
	case *cairnv1.Event_EdgeRemoved:
		id := k.EdgeRemoved.GetEdgeId()
		if !g.edgeExists(o, id) {
			return invalid("edge %q does not exist", id)
		}
		ends, ok := o.ends[id]
		if !ok {
			e, _ := g.edges.Lookup(id)
			ends = [2]string{g.nodes.String(g.src.Get(int(e))), g.nodes.String(g.dst.Get(int(e)))}
		}
		o.edges[id] = false
		o.degree[ends[0]]--
		o.degree[ends[1]]--
	default:
		return invalid("event has no kind")
	}
	return nil
}

func (g *Graph) edgeExists(o *overlay, id string) bool {
	if v, ok := o.edges[id]; ok {
		return v
	}
	_, ok := g.edges.Lookup(id)
	return ok
}

// apply folds one validated event; it cannot fail.
func (g *Graph) apply(ev *cairnv1.Event) {
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_GraphCreated:
		g.created = true
		g.typ, g.metadata = k.GraphCreated.GetGraphType(), k.GraphCreated.GetMetadata()
		g.BuildAuthzIndex() // empty yet: kept up to date edge by edge from here
	case *cairnv1.Event_GraphDeleted:
		g.reset()
		g.deleted = true
	case *cairnv1.Event_NodeAdded:
		g.addNode(k.NodeAdded)
	case *cairnv1.Event_NodeComponentsChanged:
		g.changeComponents(k.NodeComponentsChanged)
	case *cairnv1.Event_NodeRemoved:
		g.removeNode(k.NodeRemoved.GetNodeId())
	case *cairnv1.Event_EdgeAdded:
		g.addEdge(k.EdgeAdded)
		g.authzApply(ev)
	case *cairnv1.Event_EdgeRemoved:
		g.authzApply(ev)
		g.removeEdge(k.EdgeRemoved.GetEdgeId())
	}
}

// dedupe keeps the last component of each type, in order of first
// appearance. Without a repeated type (nearly always) it returns cs itself:
// its callers only read it.
func dedupe(cs []*cairnv1.Component) []*cairnv1.Component {
	if !repeatsType(cs) {
		return cs
	}
	out := make([]*cairnv1.Component, 0, len(cs))
	for _, c := range cs {
		if i := slices.IndexFunc(out, func(o *cairnv1.Component) bool { return o.GetType() == c.GetType() }); i >= 0 {
			out[i] = c
			continue
		}
		out = append(out, c)
	}
	return out
}

func (g *Graph) addNode(na *cairnv1.NodeAdded) {
	var u uint32
	if n := len(g.freeNodes); n > 0 {
		u, g.freeNodes = g.freeNodes[n-1], g.freeNodes[:n-1]
	} else {
		u = uint32(g.nodes.Cap())
		g.outDeg.grow()
		g.inDeg.grow()
	}
	g.nodes.Set(u, na.GetNodeId())
	g.setComponents(u, nil, dedupe(na.GetComponents()))
	var cats []uint32
	for _, c := range na.GetCategories() {
		id, added := g.categories.intern(c)
		if added {
			g.catNodes = append(g.catNodes, newBitmap())
		}
		if !slices.Contains(cats, id) {
			cats = append(cats, id)
			g.catNodes[id].Add(u)
		}
	}
	g.setAttrs(u, g.compsOf(u, nil), cats)
	g.degHist[0]++
	g.topNodeAdded(u)
}

// setComponents replaces node u's components (handles old) with cs.
func (g *Graph) setComponents(u uint32, old []uint32, cs []*cairnv1.Component) {
	hs := make([]uint32, 0, len(cs))
	for _, c := range cs {
		hs = append(hs, g.store.acquire(c.GetType(), c.GetValue()))
	}
	for _, h := range old {
		g.store.nodes[h].Remove(u)
		g.store.typeNodes[g.store.typ[h]].Remove(u)
		g.store.release(h)
	}
	for _, h := range hs {
		g.store.nodes[h].Add(u)
		g.store.typeNodes[g.store.typ[h]].Add(u)
	}
	g.setAttrs(u, hs, g.catsOf(u, nil))
}

// repeatsType says whether two of cs have the same type.
func repeatsType(cs []*cairnv1.Component) bool {
	for i := 1; i < len(cs); i++ {
		for _, o := range cs[:i] {
			if o.GetType() == cs[i].GetType() {
				return true
			}
		}
	}
	return false
}

func (g *Graph) changeComponents(nc *cairnv1.NodeComponentsChanged) {
	u, _ := g.nodes.Lookup(nc.GetNodeId())
	old := g.compsOf(u, nil)
	set := dedupe(nc.GetSet())
	next := make([]*cairnv1.Component, 0, len(old)+len(set))
	for _, h := range old {
		typ := g.store.types.name(g.store.typ[h])
		if slices.ContainsFunc(set, func(c *cairnv1.Component) bool { return c.GetType() == typ }) ||
			slices.Contains(nc.GetRemovedTypes(), typ) {
			continue
		}
		next = append(next, &cairnv1.Component{Type: typ, Value: []byte(g.store.val[h])})
	}
	next = append(next, set...)
	g.setComponents(u, old, next)
}

func (g *Graph) removeNode(id string) {
	u, _ := g.nodes.Lookup(id)
	g.topNodeRemoved(u)
	g.setComponents(u, g.compsOf(u, nil), nil)
	for _, c := range g.catsOf(u, nil) {
		g.catNodes[c].Remove(u)
	}
	g.setAttrs(u, nil, nil)
	g.nodes.Delete(u)
	g.freeNodes = append(g.freeNodes, u)
	g.degHist[0]--
	if g.degHist[0] == 0 {
		delete(g.degHist, 0)
	}
}

// bumpDegree moves node u in the degree histogram after its degrees change.
func (g *Graph) bumpDegree(u uint32, dOut, dIn int) {
	out0, in0 := g.outDeg.get(u), g.inDeg.get(u)
	before := out0 + in0
	out, in := uint32(int(out0)+dOut), uint32(int(in0)+dIn)
	g.outDeg.set(u, out)
	g.inDeg.set(u, in)
	if after := out + in; after != before {
		if g.degHist[before]--; g.degHist[before] == 0 {
			delete(g.degHist, before)
		}
		g.degHist[after]++
	}
	g.topDegreesChanged(u, int(out0), int(in0), int(out), int(in))
}

func (g *Graph) addEdge(ea *cairnv1.EdgeAdded) {
	s, _ := g.nodes.Lookup(ea.GetSource())
	t, _ := g.nodes.Lookup(ea.GetTarget())
	id, _ := g.types.intern(ea.GetEdgeType())
	typ := id
	var e uint32
	if n := len(g.freeEdges); n > 0 {
		e, g.freeEdges = g.freeEdges[n-1], g.freeEdges[:n-1]
		g.src.Set(int(e), s)
		g.dst.Set(int(e), t)
		g.etype.Set(int(e), typ)
	} else {
		e = uint32(g.edges.Cap())
		g.src.Append(s)
		g.dst.Append(t)
		g.etype.Append(typ)
	}
	g.edges.Set(e, ea.GetEdgeId())
	g.adj.Add(e, s, t)
	g.bumpDegree(s, 1, 0)
	g.bumpDegree(t, 0, 1)
	g.nEdges++
}

func (g *Graph) removeEdge(id string) {
	e, _ := g.edges.Lookup(id)
	g.adj.Remove(e)
	g.edges.Delete(e)
	g.bumpDegree(g.src.Get(int(e)), -1, 0)
	g.bumpDegree(g.dst.Get(int(e)), 0, -1)
	g.nEdges--
}
