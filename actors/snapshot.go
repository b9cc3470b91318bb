package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// SnapshotStore is what grains and projection shards need from the snapshot
// store.
type SnapshotStore interface {
	Put(ctx context.Context, info persistence.SnapshotInfo, data []byte) (persistence.SnapshotInfo, error)
	List(ctx context.Context, kind persistence.SnapshotKind, graph string) ([]persistence.SnapshotInfo, error)
	Get(ctx context.Context, info persistence.SnapshotInfo) ([]byte, error)
	Prune(ctx context.Context, kind persistence.SnapshotKind, graph string, keep int) (int, error)
}

var _ SnapshotStore = (*persistence.Snapshots)(nil)

// AggregateSnapshotFormat is the format version of aggregate snapshots
// (cairn.v1.GraphSnapshot) this package writes and reads.
const AggregateSnapshotFormat = 1

// ErrInvalidSnapshot: an aggregate snapshot does not hold together, is of an
// unknown format, or does not match the chain it claims to be folded from.
var ErrInvalidSnapshot = errors.New("invalid aggregate snapshot")

// EncodeState returns s as a GraphSnapshot, with recent (the idempotency
// window, oldest first).
//
// The snapshot shares s's components, categories and metadata, which the
// state never modifies in place (a change replaces them), and the replies in
// recent: it may be marshalled on another goroutine while the state moves
// on. It must not be modified.
func EncodeState(s *State, recent []*cairnv1.CommandReply) *cairnv1.GraphSnapshot {
	return captureState(s, recent).encode()
}

// stateCapture is a State copied as it is, unsorted: the cheap part of
// encoding, done by the grain, which may change its state right after;
// encode, the sorting and indexing, can then run on another goroutine.
type stateCapture struct {
	graph            string
	created, deleted bool
	typ              string
	metadata         map[string]string
	nodes            []capturedNode
	edges            map[string]*edgeState // a clone: edge states never change
	nodeEdges        []string              // every node's edge ids, in the node's order
	recent           []*cairnv1.CommandReply
}

type capturedNode struct {
	id         string
	comps      []*cairnv1.Component
	categories []string
	from, to   int // its edges: nodeEdges[from:to]
}

// captureState copies what a snapshot of s needs. Components, categories,
// metadata and edge states are shared (the state replaces them, never
// modifies them); the nodes' edge lists, which the state modifies in place,
// are copied.
func captureState(s *State, recent []*cairnv1.CommandReply) *stateCapture {
	c := &stateCapture{graph: s.graph, created: s.created, deleted: s.deleted, typ: s.typ, metadata: s.metadata, recent: recent,
		nodes: make([]capturedNode, 0, len(s.nodes)), edges: maps.Clone(s.edges)}
	if len(s.edges) > 0 {
		c.nodeEdges = make([]string, 0, 2*len(s.edges))
	}
	for id, n := range s.nodes {
		from := len(c.nodeEdges)
		c.nodeEdges = append(c.nodeEdges, n.edges...)
		c.nodes = append(c.nodes, capturedNode{id: id, comps: n.comps, categories: n.categories, from: from, to: len(c.nodeEdges)})
	}
	return c
}

// encode builds the snapshot: nodes and edges sorted by id, each node's
// edges as indices into the edges.
func (c *stateCapture) encode() *cairnv1.GraphSnapshot {
	snap := &cairnv1.GraphSnapshot{
		GraphId:   c.graph,
		Created:   c.created,
		Deleted:   c.deleted,
		GraphType: c.typ,
		Metadata:  c.metadata,
		Recent:    c.recent,
	}
	edgeIDs := sortedKeys(c.edges)
	slices.SortFunc(c.nodes, func(a, b capturedNode) int { return strings.Compare(a.id, b.id) })
	index := make(map[string]uint32, len(edgeIDs))
	snap.Edges = make([]*cairnv1.SnapshotEdge, len(edgeIDs))
	edges := make([]cairnv1.SnapshotEdge, len(edgeIDs)) // one allocation for all
	for i, id := range edgeIDs {
		e := c.edges[id]
		index[id] = uint32(i)
		se := &edges[i]
		se.Id, se.Source, se.Target, se.EdgeType, se.Components = id, e.source, e.target, e.typ, e.comps
		snap.Edges[i] = se
	}
	snap.Nodes = make([]*cairnv1.SnapshotNode, len(c.nodes))
	nodes := make([]cairnv1.SnapshotNode, len(c.nodes))
	refs := make([]uint32, len(c.nodeEdges))
	for i := range c.nodes {
		cn := &c.nodes[i]
		sn := &nodes[i]
		sn.Id, sn.Components, sn.Categories = cn.id, cn.comps, cn.categories
		if cn.to > cn.from {
			for k, eid := range c.nodeEdges[cn.from:cn.to] {
				refs[cn.from+k] = index[eid]
			}
			sn.Edges = refs[cn.from:cn.to:cn.to]
		}
		snap.Nodes[i] = sn
	}
	return snap
}

// DecodeState rebuilds a State (and the idempotency window, oldest first)
// from a GraphSnapshot. A snapshot that does not hold together (an edge
// whose endpoint is missing, a duplicate id) is an error wrapping
// ErrInvalidSnapshot.
func DecodeState(snap *cairnv1.GraphSnapshot) (*State, []*cairnv1.CommandReply, error) {
	graph := snap.GetGraphId()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: graph %q: %s", ErrInvalidSnapshot, graph, fmt.Sprintf(format, args...))
	}
	if graph == "" {
		return nil, nil, bad("no graph id")
	}
	if snap.GetDeleted() && !snap.GetCreated() {
		return nil, nil, bad("deleted but never created")
	}
	if !snap.GetCreated() && (len(snap.GetNodes()) > 0 || len(snap.GetEdges()) > 0 || snap.GetGraphType() != "" || len(snap.GetMetadata()) > 0) {
		return nil, nil, bad("not created but holds a type, metadata, nodes or edges")
	}
	s := NewState(graph)
	s.created, s.deleted, s.typ = snap.GetCreated(), snap.GetDeleted(), snap.GetGraphType()
	if len(snap.GetMetadata()) > 0 {
		s.metadata = snap.GetMetadata()
	}
	checkComps := func(kind, id string, cs []*cairnv1.Component) error {
		for i, c := range cs {
			if c == nil {
				return bad("%s %q: component %d is null", kind, id, i)
			}
			for _, d := range cs[:i] {
				if d.GetType() == c.GetType() {
					return bad("%s %q has two components of type %q", kind, id, c.GetType())
				}
			}
		}
		return nil
	}
	edges := snap.GetEdges()
	s.edges = make(map[string]*edgeState, len(edges))
	for i, se := range edges {
		id := se.GetId()
		switch {
		case se == nil || id == "":
			return nil, nil, bad("edge %d has no id", i)
		case i > 0 && id <= edges[i-1].GetId():
			if id == edges[i-1].GetId() {
				return nil, nil, bad("duplicate edge %q", id)
			}
			return nil, nil, bad("edges not sorted by id at %q", id)
		}
		if err := checkComps("edge", id, se.GetComponents()); err != nil {
			return nil, nil, err
		}
		s.edges[id] = &edgeState{source: se.GetSource(), target: se.GetTarget(), typ: se.GetEdgeType(), comps: s.comps.internAll(se.GetComponents())}
	}
	// seen counts how often each edge is listed by its endpoints; lister
	// is the last node (index + 1) that listed it.
	seen := make([]uint8, len(edges))
	lister := make([]uint32, len(edges))
	ns := snap.GetNodes()
	s.nodes = make(map[string]*nodeState, len(ns))
	for i, sn := range ns {
		id := sn.GetId()
		switch {
		case sn == nil || id == "":
			return nil, nil, bad("node %d has no id", i)
		case i > 0 && id <= ns[i-1].GetId():
			if id == ns[i-1].GetId() {
				return nil, nil, bad("duplicate node %q", id)
			}
			return nil, nil, bad("nodes not sorted by id at %q", id)
		}
		if err := checkComps("node", id, sn.GetComponents()); err != nil {
			return nil, nil, err
		}
		n := &nodeState{comps: s.comps.internAll(sn.GetComponents())}
		if len(sn.GetCategories()) > 0 {
			n.categories = sn.GetCategories()
		}
		if len(sn.GetEdges()) > 0 {
			n.edges = make([]string, len(sn.GetEdges()))
			for k, ix := range sn.GetEdges() {
				if int(ix) >= len(edges) {
					return nil, nil, bad("node %q lists edge index %d of %d", id, ix, len(edges))
				}
				e := edges[ix]
				if e.GetSource() != id && e.GetTarget() != id {
					return nil, nil, bad("node %q lists edge %q of %s -> %s", id, e.GetId(), e.GetSource(), e.GetTarget())
				}
				if lister[ix] == uint32(i+1) {
					return nil, nil, bad("node %q lists edge %q twice", id, e.GetId())
				}
				lister[ix] = uint32(i + 1)
				seen[ix]++
				n.edges[k] = e.GetId()
			}
		}
		s.nodes[id] = n
	}
	for i, se := range edges {
		_, okS := s.nodes[se.GetSource()]
		_, okT := s.nodes[se.GetTarget()]
		if !okS || !okT {
			return nil, nil, bad("edge %q has a missing endpoint (%q -> %q)", se.GetId(), se.GetSource(), se.GetTarget())
		}
		want := uint8(2)
		if se.GetSource() == se.GetTarget() {
			want = 1
		}
		if seen[i] != want {
			return nil, nil, bad("edge %q is listed by %d of its endpoints, want %d", se.GetId(), seen[i], want)
		}
	}
	recent := snap.GetRecent()
	ids := make(map[string]struct{}, len(recent))
	for i, r := range recent {
		id := r.GetCommandId()
		if r == nil || id == "" {
			return nil, nil, bad("idempotency window entry %d has no command id", i)
		}
		if _, dup := ids[id]; dup {
			return nil, nil, bad("idempotency window lists command %q twice", id)
		}
		if r.GetError() != nil || r.GetDuplicate() {
			return nil, nil, bad("idempotency window entry for command %q is not a first acceptance", id)
		}
		ids[id] = struct{}{}
	}
	return s, recent, nil
}

// History is what StateAt reads: the event store, across archive and stream.
type History interface {
	Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error)
	CheckHead(ctx context.Context, graph string, seq uint64, head persistence.Head) error
}

// headChecker verifies a snapshot's claim against the chain.
type headChecker interface {
	CheckHead(ctx context.Context, graph string, seq uint64, head persistence.Head) error
}

// restoreSnapshot loads one aggregate snapshot of graph and checks that it
// can be trusted: a known format, a payload that decodes to a consistent
// state of graph, and a head that is the chain's event at the snapshot's
// sequence. It returns the state and the idempotency window.
func restoreSnapshot(ctx context.Context, snaps SnapshotStore, hc headChecker, graph string, info persistence.SnapshotInfo) (*State, []*cairnv1.CommandReply, error) {
	switch {
	case info.Kind != persistence.KindAggregate:
		return nil, nil, fmt.Errorf("%w: %s is a %s snapshot", ErrInvalidSnapshot, info.Name, info.Kind)
	case info.Graph != graph:
		return nil, nil, fmt.Errorf("%w: %s is a snapshot of graph %q, not %q", ErrInvalidSnapshot, info.Name, info.Graph, graph)
	case info.Format != AggregateSnapshotFormat:
		return nil, nil, fmt.Errorf("%w: %s has format version %d; this engine reads %d", ErrInvalidSnapshot, info.Name, info.Format, AggregateSnapshotFormat)
	case info.Seq == 0 || info.Position == 0 || !info.Head.Defined():
		return nil, nil, fmt.Errorf("%w: %s names no head (seq %d, position %d)", ErrInvalidSnapshot, info.Name, info.Seq, info.Position)
	}
	if err := hc.CheckHead(ctx, graph, info.Seq, persistence.Head{N: info.Position, CID: info.Head}); err != nil {
		return nil, nil, fmt.Errorf("snapshot %s is not on the chain: %w", info.Name, err)
	}
	data, err := snaps.Get(ctx, info)
	if err != nil {
		return nil, nil, fmt.Errorf("read snapshot %s: %w", info.Name, err)
	}
	var snap cairnv1.GraphSnapshot
	if err := proto.Unmarshal(data, &snap); err != nil {
		return nil, nil, fmt.Errorf("%w: %s does not decode: %v", ErrInvalidSnapshot, info.Name, err)
	}
	if snap.GetGraphId() != graph {
		return nil, nil, fmt.Errorf("%w: %s holds graph %q, not %q", ErrInvalidSnapshot, info.Name, snap.GetGraphId(), graph)
	}
	s, recent, err := DecodeState(&snap)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", info.Name, err)
	}
	return s, recent, nil
}

// errStopRead ends a read early.
var errStopRead = errors.New("stop reading")

// StateAt folds graph's aggregate state as of stream sequence seq (0: the
// head) from the newest trusted aggregate snapshot at or before seq (snaps
// may be nil) plus the transactions after it. It returns the state, the
// chain head it reflects and the sequence of the last transaction folded.
// Snapshots that cannot be trusted are skipped; the chain of the replayed
// transactions is checked.
func StateAt(ctx context.Context, store History, snaps SnapshotStore, graph string, seq uint64) (*State, persistence.Head, uint64, error) {
	s := NewState(graph)
	var head persistence.Head
	var last uint64
	if snaps != nil {
		infos, err := snaps.List(ctx, persistence.KindAggregate, graph)
		if err != nil && ctx.Err() != nil {
			return nil, persistence.Head{}, 0, fmt.Errorf("state of %s at seq %d: %w", graph, seq, err)
		}
		for _, info := range infos { // a listing error: no snapshots, replay it all
			if seq != 0 && info.Seq > seq {
				continue
			}
			st, _, err := restoreSnapshot(ctx, snaps, store, graph, info)
			if err != nil {
				if ctx.Err() != nil {
					return nil, persistence.Head{}, 0, fmt.Errorf("state of %s at seq %d: %w", graph, seq, err)
				}
				continue
			}
			s, head, last = st, persistence.Head{N: info.Position, CID: info.Head}, info.Seq
			break
		}
	}
	chain := persistence.NewChainAt(graph, head)
	_, err := store.Read(ctx, graph, last+1, func(r persistence.Record) error {
		if seq != 0 && r.Seq > seq {
			return errStopRead
		}
		evs, err := chain.Check(r.Seq, r.Tx)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := Apply(s, ev.Event); err != nil {
				return fmt.Errorf("seq %d position %d: %w", r.Seq, ev.Envelope.N, err)
			}
		}
		last = r.Seq
		return nil
	})
	if err != nil && !errors.Is(err, errStopRead) {
		return nil, persistence.Head{}, 0, fmt.Errorf("state of %s at seq %d: %w", graph, seq, err)
	}
	return s, chain.Head(), last, nil
}

// recentList returns the window's replies, oldest first.
func (w *resultWindow) recentList() []*cairnv1.CommandReply {
	out := make([]*cairnv1.CommandReply, 0, len(w.order))
	for i := range w.order {
		out = append(out, w.m[w.order[(w.next+i)%len(w.order)]])
	}
	return out
}

// load puts replies, oldest first, into the window; with more than it
// holds, the oldest are forgotten.
func (w *resultWindow) load(replies []*cairnv1.CommandReply) {
	for _, r := range replies {
		w.put(r)
	}
}
