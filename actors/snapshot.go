package actors

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
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
	Delete(ctx context.Context, info persistence.SnapshotInfo) error
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

// stateCapture is what a snapshot of a State needs, taken by the grain,
// which may change its state right after; encode, the sorting and
// indexing, then runs on another goroutine. Only the maps are copied,
// each into one flat slice (a map iteration is several times faster than
// maps.Clone of a map with millions of entries): components, categories,
// metadata and edge states are shared (the state replaces them, never
// modifies them), and so are the nodes' edge lists (the state copies one
// before changing it in place, see nodeState).
type stateCapture struct {
	graph            string
	created, deleted bool
	typ              string
	metadata         map[string]string
	nodes            []capturedNode
	edges            []idEdge
	recent           []*cairnv1.CommandReply
}

type idEdge struct {
	key uint64 // sortKey(id), set by sort
	id  string
	e   *edgeState // never changes
}

type capturedNode struct {
	id         string
	comps      []*cairnv1.Component
	categories []string
	edges      []string // shared with the state: see nodeState
}

// captureState takes what a snapshot of s needs and starts a new epoch of s,
// so that edge lists it shares are copied before they are changed.
func captureState(s *State, recent []*cairnv1.CommandReply) *stateCapture {
	c := &stateCapture{graph: s.graph, created: s.created, deleted: s.deleted, typ: s.typ, metadata: s.metadata, recent: recent,
		nodes: make([]capturedNode, 0, len(s.nodes)), edges: make([]idEdge, 0, len(s.edges))}
	for id, e := range s.edges {
		c.edges = append(c.edges, idEdge{id: id, e: e})
	}
	for id, n := range s.nodes {
		c.nodes = append(c.nodes, capturedNode{id: id, comps: n.comps, categories: n.categories, edges: n.edges[:len(n.edges):len(n.edges)]})
	}
	s.epoch++
	return c
}

// sortKey is the first 8 bytes of id, big-endian, zero-padded: keys
// order as their ids do, except that ids equal in their first 8 bytes (or
// differing only by trailing zero bytes) tie. Sorting by it, comparing
// strings only on ties, spares most of the comparisons a trip to each
// id's bytes (ids of generated graphs, "n123456", fit in 8 bytes).
func sortKey(id string) uint64 {
	var k uint64
	for i := range 8 {
		k <<= 8
		if i < len(id) {
			k |= uint64(id[i])
		}
	}
	return k
}

type keyIndex struct {
	key uint64
	i   int32
}

// sort orders the capture for a snapshot: its edges by id in place, and
// returns the order of its nodes by id and each edge id's index.
func (c *stateCapture) sort() (nodeOrder []keyIndex, index map[string]uint32) {
	for i := range c.edges {
		c.edges[i].key = sortKey(c.edges[i].id)
	}
	slices.SortFunc(c.edges, func(a, b idEdge) int {
		if a.key != b.key {
			return cmpUint64(a.key, b.key)
		}
		return strings.Compare(a.id, b.id)
	})
	nodeOrder = make([]keyIndex, len(c.nodes))
	for i := range c.nodes {
		nodeOrder[i] = keyIndex{sortKey(c.nodes[i].id), int32(i)}
	}
	slices.SortFunc(nodeOrder, func(a, b keyIndex) int {
		if a.key != b.key {
			return cmpUint64(a.key, b.key)
		}
		return strings.Compare(c.nodes[a.i].id, c.nodes[b.i].id)
	})
	index = make(map[string]uint32, len(c.edges))
	for i := range c.edges {
		index[c.edges[i].id] = uint32(i)
	}
	return nodeOrder, index
}

func cmpUint64(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
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
	nodeOrder, index := c.sort()
	snap.Edges = make([]*cairnv1.SnapshotEdge, len(c.edges))
	edges := make([]cairnv1.SnapshotEdge, len(c.edges)) // one allocation for all
	for i, ie := range c.edges {
		se := &edges[i]
		se.Id, se.Source, se.Target, se.EdgeType, se.Components = ie.id, ie.e.source, ie.e.target, ie.e.typ, ie.e.comps
		snap.Edges[i] = se
	}
	snap.Nodes = make([]*cairnv1.SnapshotNode, len(c.nodes))
	nodes := make([]cairnv1.SnapshotNode, len(c.nodes))
	refs := make([]uint32, 0, 2*len(c.edges))
	for i, o := range nodeOrder {
		cn := &c.nodes[o.i]
		sn := &nodes[i]
		sn.Id, sn.Components, sn.Categories = cn.id, cn.comps, cn.categories
		if len(cn.edges) > 0 {
			from := len(refs)
			for _, eid := range cn.edges {
				refs = append(refs, index[eid])
			}
			sn.Edges = refs[from:len(refs):len(refs)]
		}
		snap.Nodes[i] = sn
	}
	return snap
}

// marshal returns the snapshot encode builds, marshalled deterministically
// (the very bytes proto.MarshalOptions{Deterministic: true} gives), written
// straight from the capture: no message per node, edge and component.
func (c *stateCapture) marshal() ([]byte, error) {
	nodeOrder, index := c.sort()
	head := &cairnv1.GraphSnapshot{GraphId: c.graph, Created: c.created, Deleted: c.deleted, GraphType: c.typ, Metadata: c.metadata}
	b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(make([]byte, 0, 24*len(c.nodes)+48*len(c.edges)+1024), head)
	if err != nil {
		return nil, err
	}
	var refs []uint32
	for _, o := range nodeOrder {
		cn := &c.nodes[o.i]
		refs = refs[:0]
		for _, eid := range cn.edges {
			refs = append(refs, index[eid])
		}
		size := sizeString(1, cn.id) + sizeComponents(2, cn.comps)
		for _, cat := range cn.categories {
			size += protowire.SizeTag(3) + protowire.SizeBytes(len(cat))
		}
		packed := 0
		for _, r := range refs {
			packed += protowire.SizeVarint(uint64(r))
		}
		if len(refs) > 0 {
			size += protowire.SizeTag(4) + protowire.SizeBytes(packed)
		}
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		b = appendString(b, 1, cn.id)
		b = appendComponents(b, 2, cn.comps)
		for _, cat := range cn.categories {
			b = protowire.AppendTag(b, 3, protowire.BytesType)
			b = protowire.AppendString(b, cat)
		}
		if len(refs) > 0 {
			b = protowire.AppendTag(b, 4, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(packed))
			for _, r := range refs {
				b = protowire.AppendVarint(b, uint64(r))
			}
		}
	}
	for i := range c.edges {
		ie := &c.edges[i]
		e := ie.e
		size := sizeString(1, ie.id) + sizeString(2, e.source) + sizeString(3, e.target) + sizeString(4, e.typ) + sizeComponents(5, e.comps)
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		b = appendString(b, 1, ie.id)
		b = appendString(b, 2, e.source)
		b = appendString(b, 3, e.target)
		b = appendString(b, 4, e.typ)
		b = appendComponents(b, 5, e.comps)
	}
	return proto.MarshalOptions{Deterministic: true}.MarshalAppend(b, &cairnv1.GraphSnapshot{Recent: c.recent})
}

// sizeString and appendString size and write a proto3 string (or bytes)
// field: nothing when it is empty.
func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func sizeComponent(c *cairnv1.Component) int {
	n := sizeString(1, c.GetType())
	if len(c.GetValue()) > 0 {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(c.GetValue()))
	}
	return n
}

func sizeComponents(num protowire.Number, cs []*cairnv1.Component) int {
	n := 0
	for _, c := range cs {
		n += protowire.SizeTag(num) + protowire.SizeBytes(sizeComponent(c))
	}
	return n
}

func appendComponents(b []byte, num protowire.Number, cs []*cairnv1.Component) []byte {
	for _, c := range cs {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeComponent(c)))
		b = appendString(b, 1, c.GetType())
		if len(c.GetValue()) > 0 {
			b = protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), c.GetValue())
		}
	}
	return b
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
	s, recent, err := UnmarshalState(data)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", info.Name, err)
	}
	if s.Graph() != graph {
		return nil, nil, fmt.Errorf("%w: %s holds graph %q, not %q", ErrInvalidSnapshot, info.Name, s.Graph(), graph)
	}
	return s, recent, nil
}

// CheckAggregateSnapshot says why the grain would not trust the aggregate
// snapshot info of graph, nil when it would: the same checks activation
// makes (kind, format, head on the chain, payload that decodes to graph).
func CheckAggregateSnapshot(ctx context.Context, snaps SnapshotStore, store History, graph string, info persistence.SnapshotInfo) error {
	_, _, err := restoreSnapshot(ctx, snaps, store, graph, info)
	return err
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

// UnmarshalState is proto.Unmarshal of a GraphSnapshot followed by
// DecodeState, done in one pass over the wire bytes: nodes and edges go
// straight into the State, without the millions of intermediate messages
// (and their garbage) a big graph's snapshot would unmarshal to, and
// components are interned as they are read. It accepts what proto.Unmarshal
// accepts (unknown fields, packed or unpacked edge lists) and refuses what
// DecodeState refuses; bytes that do not decode are an error wrapping
// ErrInvalidSnapshot.
func UnmarshalState(data []byte) (*State, []*cairnv1.CommandReply, error) {
	d := stateDecoder{}
	return d.decode(data)
}

// DecodeState rebuilds a State (and the idempotency window, oldest first)
// from a GraphSnapshot. A snapshot that does not hold together (an edge
// whose endpoint is missing, a duplicate id) is an error wrapping
// ErrInvalidSnapshot. It marshals snap and decodes it with UnmarshalState,
// which holds the checks.
func DecodeState(snap *cairnv1.GraphSnapshot) (*State, []*cairnv1.CommandReply, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: graph %q: %s", ErrInvalidSnapshot, snap.GetGraphId(), fmt.Sprintf(format, args...))
	}
	nullComp := func(kind, id string, cs []*cairnv1.Component) error {
		for i, c := range cs {
			if c == nil {
				return bad("%s %q: component %d is null", kind, id, i)
			}
		}
		return nil
	}
	for i, se := range snap.GetEdges() {
		if se == nil {
			return nil, nil, bad("edge %d has no id", i)
		}
		if err := nullComp("edge", se.GetId(), se.GetComponents()); err != nil {
			return nil, nil, err
		}
	}
	for i, sn := range snap.GetNodes() {
		if sn == nil {
			return nil, nil, bad("node %d has no id", i)
		}
		if err := nullComp("node", sn.GetId(), sn.GetComponents()); err != nil {
			return nil, nil, err
		}
	}
	for i, r := range snap.GetRecent() {
		if r == nil {
			return nil, nil, bad("idempotency window entry %d has no command id", i)
		}
	}
	data, err := proto.Marshal(snap)
	if err != nil {
		return nil, nil, bad("%v", err)
	}
	return UnmarshalState(data)
}

// stateDecoder holds what one UnmarshalState allocates in slabs rather
// than item by item: the components and categories lists and the nodes'
// edge lists, each carved with its length as capacity (components and
// categories are replaced, never modified; an append moves an edge list
// out). A slab lives as long as one of its items. Small pools of strings
// (edge types, categories) are shared rather than copied for each item.
type stateDecoder struct {
	s     *State
	comps []*cairnv1.Component
	strs  []string
	pool  map[string]string
}

const (
	slabChunk = 1 << 14
	poolMax   = 1 << 12 // distinct strings pooled at most
)

func (d *stateDecoder) compSlab(n int) []*cairnv1.Component {
	if len(d.comps) < n {
		d.comps = make([]*cairnv1.Component, max(n, slabChunk))
	}
	out := d.comps[:n:n]
	d.comps = d.comps[n:]
	return out
}

func (d *stateDecoder) strSlab(n int) []string {
	if len(d.strs) < n {
		d.strs = make([]string, max(n, slabChunk))
	}
	out := d.strs[:n:n]
	d.strs = d.strs[n:]
	return out
}

// pooled returns b as a string, shared with earlier equal ones while the
// pool is small.
func (d *stateDecoder) pooled(b []byte) string {
	if s, ok := d.pool[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.pool) < poolMax {
		d.pool[s] = s
	}
	return s
}

// errWire: bytes that do not decode as protobuf.
var errWire = errors.New("malformed protobuf")

// field reads one field: its number, wire type, and for a length-delimited
// one its bytes, for a varint its value; n is the length consumed (< 0:
// malformed).
func field(b []byte) (num protowire.Number, typ protowire.Type, val []byte, v uint64, n int) {
	num, typ, n = protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, 0, n
	}
	var m int
	switch typ {
	case protowire.BytesType:
		val, m = protowire.ConsumeBytes(b[n:])
	case protowire.VarintType:
		v, m = protowire.ConsumeVarint(b[n:])
	default:
		m = protowire.ConsumeFieldValue(num, typ, b[n:])
	}
	if m < 0 {
		return 0, 0, nil, 0, m
	}
	return num, typ, val, v, n + m
}

// str checks that b is UTF-8, as proto3 strings must be.
func str(b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: invalid UTF-8 in a string field", errWire)
	}
	return b, nil
}

// components reads the components of one node or edge (the raw
// length-delimited values of their field) into the interner, and checks
// that no type repeats.
func (d *stateDecoder) components(raw [][]byte) ([]*cairnv1.Component, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := d.compSlab(len(raw))
	for i, b := range raw {
		var typ, val []byte
		for len(b) > 0 {
			num, wt, fv, _, n := field(b)
			if n < 0 {
				return nil, errWire
			}
			b = b[n:]
			switch {
			case num == 1 && wt == protowire.BytesType:
				t, err := str(fv)
				if err != nil {
					return nil, err
				}
				typ = t
			case num == 2 && wt == protowire.BytesType:
				val = fv
			}
		}
		for _, c := range out[:i] {
			if c.GetType() == string(typ) {
				return nil, fmt.Errorf("two components of type %q", typ)
			}
		}
		out[i] = d.s.comps.internBytes(typ, val)
	}
	return out, nil
}

func (d *stateDecoder) decode(data []byte) (*State, []*cairnv1.CommandReply, error) {
	// The header (every field but nodes and edges) is small: proto.Unmarshal
	// reads it, from its fields gathered.
	var rest []byte
	nNodes, nEdges := 0, 0
	for b := data; len(b) > 0; {
		num, wt, _, _, n := field(b)
		if n < 0 {
			return nil, nil, fmt.Errorf("%w: does not decode: %v", ErrInvalidSnapshot, errWire)
		}
		switch {
		case num == 6 && wt == protowire.BytesType:
			nNodes++
		case num == 7 && wt == protowire.BytesType:
			nEdges++
		default:
			rest = append(rest, b[:n]...)
		}
		b = b[n:]
	}
	var hdr cairnv1.GraphSnapshot
	if err := proto.Unmarshal(rest, &hdr); err != nil {
		return nil, nil, fmt.Errorf("%w: does not decode: %v", ErrInvalidSnapshot, err)
	}
	graph := hdr.GetGraphId()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: graph %q: %s", ErrInvalidSnapshot, graph, fmt.Sprintf(format, args...))
	}
	wire := func(err error) error {
		if errors.Is(err, errWire) {
			return fmt.Errorf("%w: graph %q does not decode: %v", ErrInvalidSnapshot, graph, err)
		}
		return bad("%v", err)
	}
	switch {
	case graph == "":
		return nil, nil, bad("no graph id")
	case hdr.GetDeleted() && !hdr.GetCreated():
		return nil, nil, bad("deleted but never created")
	case !hdr.GetCreated() && (nNodes > 0 || nEdges > 0 || hdr.GetGraphType() != "" || len(hdr.GetMetadata()) > 0):
		return nil, nil, bad("not created but holds a type, metadata, nodes or edges")
	}
	s := NewState(graph)
	d.s, d.pool = s, make(map[string]string)
	// Ids and endpoints are substrings of one copy of data rather than a
	// string each: a few allocations instead of millions of small objects
	// for the garbage collector to mark, for as long as the state lives.
	// The copy stays as long as one of them does; it is about the size the
	// strings would take on their own.
	all := string(data)
	sub := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		i := cap(data) - cap(b) // b is a slice of data
		return all[i : i+len(b)]
	}
	s.created, s.deleted, s.typ = hdr.GetCreated(), hdr.GetDeleted(), hdr.GetGraphType()
	if len(hdr.GetMetadata()) > 0 {
		s.metadata = hdr.GetMetadata()
	}

	// Edges first: the nodes' lists refer to them.
	s.edges = make(map[string]*edgeState, nEdges)
	edgeSlab := make([]edgeState, nEdges)
	edgeIDs := make([]string, nEdges)
	var raw [][]byte
	i := 0
	for b := data; len(b) > 0; {
		num, wt, msg, _, n := field(b)
		b = b[n:]
		if num != 7 || wt != protowire.BytesType {
			continue
		}
		var id, src, dst, typ []byte
		raw = raw[:0]
		for len(msg) > 0 {
			num, wt, fv, _, n := field(msg)
			if n < 0 {
				return nil, nil, wire(errWire)
			}
			msg = msg[n:]
			if wt != protowire.BytesType {
				continue
			}
			var err error
			switch num {
			case 1:
				id, err = str(fv)
			case 2:
				src, err = str(fv)
			case 3:
				dst, err = str(fv)
			case 4:
				typ, err = str(fv)
			case 5:
				raw = append(raw, fv)
			}
			if err != nil {
				return nil, nil, wire(err)
			}
		}
		switch {
		case len(id) == 0:
			return nil, nil, bad("edge %d has no id", i)
		case i > 0 && string(id) <= edgeIDs[i-1]:
			if string(id) == edgeIDs[i-1] {
				return nil, nil, bad("duplicate edge %q", id)
			}
			return nil, nil, bad("edges not sorted by id at %q", id)
		}
		e := &edgeSlab[i]
		edgeIDs[i] = sub(id)
		cs, err := d.components(raw)
		if err != nil {
			return nil, nil, wire(fmt.Errorf("edge %q has %w", id, err))
		}
		e.source, e.target, e.typ, e.comps = sub(src), sub(dst), d.pooled(typ), cs
		s.edges[edgeIDs[i]] = e
		i++
	}

	// seen marks which endpoints listed each edge: 1 its source, 2 its
	// target (a loop's one node sets both). A node only sets the bits of
	// the ends it is, so an edge listed by both its ends has both of them
	// among the nodes.
	seen := make([]uint8, nEdges)
	s.nodes = make(map[string]*nodeState, nNodes)
	nodeSlab := make([]nodeState, nNodes)
	var prev string
	var cats [][]byte
	var refs []uint32
	i = 0
	for b := data; len(b) > 0; {
		num, wt, msg, _, n := field(b)
		b = b[n:]
		if num != 6 || wt != protowire.BytesType {
			continue
		}
		var id []byte
		raw, cats, refs = raw[:0], cats[:0], refs[:0]
		for len(msg) > 0 {
			num, wt, fv, v, n := field(msg)
			if n < 0 {
				return nil, nil, wire(errWire)
			}
			msg = msg[n:]
			switch {
			case num == 1 && wt == protowire.BytesType:
				var err error
				if id, err = str(fv); err != nil {
					return nil, nil, wire(err)
				}
			case num == 2 && wt == protowire.BytesType:
				raw = append(raw, fv)
			case num == 3 && wt == protowire.BytesType:
				c, err := str(fv)
				if err != nil {
					return nil, nil, wire(err)
				}
				cats = append(cats, c)
			case num == 4 && wt == protowire.VarintType:
				refs = append(refs, uint32(v))
			case num == 4 && wt == protowire.BytesType: // packed
				for len(fv) > 0 {
					v, m := protowire.ConsumeVarint(fv)
					if m < 0 {
						return nil, nil, wire(errWire)
					}
					refs = append(refs, uint32(v))
					fv = fv[m:]
				}
			}
		}
		switch {
		case len(id) == 0:
			return nil, nil, bad("node %d has no id", i)
		case i > 0 && string(id) <= prev:
			if string(id) == prev {
				return nil, nil, bad("duplicate node %q", id)
			}
			return nil, nil, bad("nodes not sorted by id at %q", id)
		}
		nid := sub(id)
		prev = nid
		node := &nodeSlab[i]
		cs, err := d.components(raw)
		if err != nil {
			return nil, nil, wire(fmt.Errorf("node %q has %w", id, err))
		}
		node.comps = cs
		if len(cats) > 0 {
			node.categories = d.strSlab(len(cats))
			for k, c := range cats {
				node.categories[k] = d.pooled(c)
			}
		}
		if len(refs) > 0 {
			node.edges = d.strSlab(len(refs))
			for k, ix := range refs {
				if int(ix) >= nEdges {
					return nil, nil, bad("node %q lists edge index %d of %d", nid, ix, nEdges)
				}
				e := &edgeSlab[ix]
				var end uint8
				if e.source == nid {
					end = 1
				}
				if e.target == nid {
					end |= 2
				}
				switch {
				case end == 0:
					return nil, nil, bad("node %q lists edge %q of %s -> %s", nid, edgeIDs[ix], e.source, e.target)
				case seen[ix]&end != 0:
					return nil, nil, bad("node %q lists edge %q twice", nid, edgeIDs[ix])
				}
				seen[ix] |= end
				node.edges[k] = edgeIDs[ix]
			}
		}
		s.nodes[nid] = node
		i++
	}
	for i, e := range edgeSlab {
		if seen[i] == 3 {
			continue
		}
		_, okS := s.nodes[e.source]
		_, okT := s.nodes[e.target]
		if !okS || !okT {
			return nil, nil, bad("edge %q has a missing endpoint (%q -> %q)", edgeIDs[i], e.source, e.target)
		}
		if e.source == e.target {
			return nil, nil, bad("edge %q is listed by 0 of its endpoints, want 1", edgeIDs[i])
		}
		return nil, nil, bad("edge %q is listed by %d of its endpoints, want 2", edgeIDs[i], bits.OnesCount8(seen[i]))
	}
	recent := hdr.GetRecent()
	ids := make(map[string]struct{}, len(recent))
	for i, r := range recent {
		id := r.GetCommandId()
		if id == "" {
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
	if len(recent) == 0 {
		recent = nil
	}
	return s, recent, nil
}
