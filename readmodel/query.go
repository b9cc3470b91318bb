package readmodel

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cairn-graph/cairn/readmodel/adjacency"
)

// Component is one (type, value) of a node.
type Component struct {
	Type  string
	Value []byte
}

// NodeView is what Node answers.
type NodeView struct {
	ID         string
	Components []Component // sorted by type
	Categories []string    // sorted
	OutDegree  int         // a self-loop counts once here and once in InDegree
	InDegree   int
}

// Page is one page of node ids, in dense-index order. Next is the cursor of
// the following page, empty on the last one.
type Page struct {
	IDs  []string
	Next string
}

// Direction selects which edges Neighbors follows.
type Direction uint8

// Directions.
const (
	Out  Direction = iota // edges leaving the node
	In                    // edges entering the node
	Both                  // Out, then In; a self-loop is listed once
)

// Neighbor is one edge at a node.
type Neighbor struct {
	EdgeID   string
	NodeID   string // the other end (the node itself for a self-loop)
	EdgeType string
}

// NeighborPage is one page of Neighbors. Next is empty on the last page.
type NeighborPage struct {
	Entries []Neighbor
	Next    string
}

func (g *Graph) live() error {
	if g.deleted {
		return fmt.Errorf("graph %s was deleted: %w", g.id, ErrNotFound)
	}
	return nil
}

func (g *Graph) lookupNode(id string) (uint32, error) {
	if err := g.live(); err != nil {
		return 0, err
	}
	u, ok := g.nodes.Lookup(id)
	if !ok {
		return 0, &NodeNotFoundError{ID: id}
	}
	return u, nil
}

// NodeNotFoundError names the unknown node a query was given; it wraps
// ErrNotFound.
type NodeNotFoundError struct{ ID string }

func (e *NodeNotFoundError) Error() string { return fmt.Sprintf("node %q: %v", e.ID, ErrNotFound) }

// Unwrap returns ErrNotFound.
func (e *NodeNotFoundError) Unwrap() error { return ErrNotFound }

func checkLimit(limit int) error {
	if limit <= 0 || limit > MaxLimit {
		return fmt.Errorf("limit %d not in 1..%d: %w", limit, MaxLimit, ErrInvalidArgument)
	}
	return nil
}

// Node returns node id's components, categories and degrees.
// Errors: ErrNotFound.
func (g *Graph) Node(id string) (NodeView, error) {
	u, err := g.lookupNode(id)
	if err != nil {
		return NodeView{}, err
	}
	v := NodeView{ID: id, OutDegree: int(g.outDeg.get(u)), InDegree: int(g.inDeg.get(u))}
	var buf [8]uint32
	for _, h := range g.compsOf(u, buf[:0]) {
		v.Components = append(v.Components, Component{Type: g.store.types.name(g.store.typ[h]), Value: []byte(g.store.val[h])})
	}
	slices.SortFunc(v.Components, func(a, b Component) int { return cmp.Compare(a.Type, b.Type) })
	for _, c := range g.catsOf(u, buf[:0]) {
		v.Categories = append(v.Categories, g.categories.name(c))
	}
	slices.Sort(v.Categories)
	return v, nil
}

// Cursor encoding: base64url of a kind byte and uvarints. Find cursors hold
// the next dense index and the graph version they were made at; neighbour
// cursors hold the node's dense index, the direction, the adjacency epoch,
// the phase (0 out, 1 in) and the position in the row.
const (
	kindFind     = 'f'
	kindNeighbor = 'n'
)

func encodeCursor(kind byte, vals ...uint64) string {
	b := []byte{kind}
	for _, v := range vals {
		b = binary.AppendUvarint(b, v)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, kind byte, n int) ([]uint64, error) {
	vals, rest, err := decodeCursorRest(s, kind, n)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("cursor %q: %w", s, ErrBadCursor)
	}
	return vals, err
}

// decodeCursorRest decodes a cursor of n values followed by any number of
// further ones (at most 64), returned as rest.
func decodeCursorRest(s string, kind byte, n int) (vals, rest []uint64, err error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || b[0] != kind {
		return nil, nil, fmt.Errorf("cursor %q: %w", s, ErrBadCursor)
	}
	b = b[1:]
	for len(b) > 0 || len(vals) < n {
		v, k := binary.Uvarint(b)
		if k <= 0 || len(vals) == n+64 {
			return nil, nil, fmt.Errorf("cursor %q: %w", s, ErrBadCursor)
		}
		vals, b = append(vals, v), b[k:]
	}
	return vals[:n], vals[n:], nil
}

// page walks bm from the cursor's position.
func (g *Graph) page(bm *roaring.Bitmap, cursor string, limit int) (Page, error) {
	if err := g.live(); err != nil {
		return Page{}, err
	}
	if err := checkLimit(limit); err != nil {
		return Page{}, err
	}
	start := uint64(0)
	if cursor != "" {
		vals, err := decodeCursor(cursor, kindFind, 2)
		if err != nil {
			return Page{}, err
		}
		if vals[0] > 1<<32 || vals[1] > g.version {
			return Page{}, fmt.Errorf("cursor %q out of range: %w", cursor, ErrBadCursor)
		}
		start = vals[0]
	}
	var p Page
	if bm == nil || start >= 1<<32 {
		return p, nil
	}
	it := bm.Iterator()
	it.AdvanceIfNeeded(uint32(start))
	var last uint32
	for it.HasNext() && len(p.IDs) < limit {
		last = it.Next()
		p.IDs = append(p.IDs, g.nodes.String(last))
	}
	if it.HasNext() {
		p.Next = encodeCursor(kindFind, uint64(last)+1, g.version)
	}
	return p, nil
}

// FindByComponentType pages through the nodes that hold a component of type
// typ. Errors: ErrInvalidArgument (limit), ErrBadCursor, ErrNotFound (graph
// deleted).
func (g *Graph) FindByComponentType(typ, cursor string, limit int) (Page, error) {
	var bm *roaring.Bitmap
	if t, ok := g.store.types.lookup(typ); ok {
		bm = g.store.typeNodes[t]
	}
	return g.page(bm, cursor, limit)
}

// FindByComponent pages through the nodes that hold component (typ, value).
// A bloom filter answers most misses. Errors as FindByComponentType.
func (g *Graph) FindByComponent(typ string, value []byte, cursor string, limit int) (Page, error) {
	var bm *roaring.Bitmap
	if h, ok := g.store.lookup(typ, value); ok {
		bm = g.store.nodes[h]
	}
	return g.page(bm, cursor, limit)
}

// FindByCategory pages through the nodes in category cat. Errors as
// FindByComponentType.
func (g *Graph) FindByCategory(cat, cursor string, limit int) (Page, error) {
	var bm *roaring.Bitmap
	if c, ok := g.categories.lookup(cat); ok {
		bm = g.catNodes[c]
	}
	return g.page(bm, cursor, limit)
}

// Neighbors pages through the edges at node id in direction dir, of type
// edgeType ("" for any). Pages neither skip nor repeat an edge that is there
// for the whole walk, even when the graph changes between pages: a row keeps
// its order across compactions (new edges go to its end), so a cursor holds
// the position of the next entry and, for the case where a compaction moved
// the entries since, the last few edges it returned; the next page starts
// after the latest of those that is still there. Only when all of them were
// removed and compacted away does the cursor fail with ErrBadCursor.
// Errors: ErrNotFound, ErrInvalidArgument (limit, direction), ErrBadCursor.
func (g *Graph) Neighbors(id string, dir Direction, edgeType, cursor string, limit int) (NeighborPage, error) {
	u, err := g.lookupNode(id)
	if err != nil {
		return NeighborPage{}, err
	}
	if err := checkLimit(limit); err != nil {
		return NeighborPage{}, err
	}
	if dir > Both {
		return NeighborPage{}, fmt.Errorf("direction %d: %w", dir, ErrInvalidArgument)
	}
	phases := []adjacency.Dir{adjacency.Out, adjacency.In}
	switch dir {
	case Out:
		phases = phases[:1]
	case In:
		phases = phases[1:]
	}
	phase, pos := 0, 0
	if cursor != "" {
		if phase, pos, err = g.resumeNeighbors(cursor, u, dir, phases); err != nil {
			return NeighborPage{}, err
		}
	}
	var p NeighborPage
	typ, anyType := uint16(0), edgeType == ""
	if !anyType {
		t, ok := g.types.lookup(edgeType)
		if !ok {
			return p, nil
		}
		typ = uint16(t)
	}
	var anchors []uint32 // the edges returned in the current phase
	full := false
	for ; phase < len(phases) && !full; phase, pos, anchors = phase+1, 0, anchors[:0] {
		d := phases[phase]
		g.adj.Scan(d, u, pos, func(at int, e uint32) bool {
			if (!anyType && uint16(g.etype.Get(int(e))) != typ) || (dir == Both && d == adjacency.In && g.src.Get(int(e)) == g.dst.Get(int(e))) {
				return true
			}
			if len(p.Entries) == limit {
				p.Next = g.neighborCursor(u, dir, phase, at, anchors)
				full = true
				return false
			}
			other := g.dst.Get(int(e))
			if d == adjacency.In {
				other = g.src.Get(int(e))
			}
			p.Entries = append(p.Entries, Neighbor{EdgeID: g.edges.String(e), NodeID: g.nodes.String(other), EdgeType: g.types.name(g.etype.Get(int(e)))})
			anchors = append(anchors, e)
			return true
		})
	}
	return p, nil
}

// neighborAnchors is how many edges a neighbour cursor holds on each side of
// its position (the last ones returned, the next ones in the row), to find
// its place again after a compaction moved the row.
const neighborAnchors = 4

// neighborCursor encodes the node, the direction, the adjacency epoch, the
// phase, the position at, then the number of anchors before it and the
// anchors before and after it as (edge index, hash of the edge id) pairs.
func (g *Graph) neighborCursor(u uint32, dir Direction, phase, at int, returned []uint32) string {
	returned = returned[max(0, len(returned)-neighborAnchors):]
	vals := []uint64{uint64(u), uint64(dir), g.adj.Epoch(), uint64(phase), uint64(at), uint64(len(returned))}
	for _, e := range returned {
		vals = append(vals, uint64(e), uint64(g.edgeHash(e)))
	}
	d := adjacency.Out
	if dir == In || (dir == Both && phase == 1) {
		d = adjacency.In
	}
	n := 0
	g.adj.Scan(d, u, at, func(_ int, e uint32) bool {
		vals = append(vals, uint64(e), uint64(g.edgeHash(e)))
		n++
		return n < neighborAnchors
	})
	return encodeCursor(kindNeighbor, vals...)
}

// edgeHash tells an edge index from a later reuse of it by another edge.
func (g *Graph) edgeHash(e uint32) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(g.edges.String(e)))
	return h.Sum32()
}

// resumeNeighbors returns the phase and row position a neighbour cursor
// continues from. In the epoch it was made in, that is its position; after
// a compaction, it is just after the latest returned anchor still in the
// row, else at the first next anchor still there.
func (g *Graph) resumeNeighbors(cursor string, u uint32, dir Direction, phases []adjacency.Dir) (phase, pos int, err error) {
	vals, rest, err := decodeCursorRest(cursor, kindNeighbor, 6)
	if err != nil {
		return 0, 0, err
	}
	if vals[0] != uint64(u) || vals[1] != uint64(dir) {
		return 0, 0, fmt.Errorf("cursor %q belongs to another query: %w", cursor, ErrBadCursor)
	}
	nBefore := vals[5]
	if vals[3] >= uint64(len(phases)) || len(rest)%2 != 0 || nBefore > neighborAnchors ||
		2*nBefore > uint64(len(rest)) || uint64(len(rest))-2*nBefore > 2*neighborAnchors {
		return 0, 0, fmt.Errorf("cursor %q out of range: %w", cursor, ErrBadCursor)
	}
	phase = int(vals[3])
	d := phases[phase]
	if vals[2] == g.adj.Epoch() {
		if vals[4] > uint64(g.adj.Len(d, u)) {
			return 0, 0, fmt.Errorf("cursor %q out of range: %w", cursor, ErrBadCursor)
		}
		return phase, int(vals[4]), nil
	}
	if nBefore == 0 {
		// Nothing of this phase returned yet: start it again.
		return phase, 0, nil
	}
	// Anchors in order: returned ones (oldest first), then next ones. The
	// best is the latest returned one still there (resume after it), else
	// the earliest next one (resume at it).
	anchors := len(rest) / 2
	rank := func(i int) int { // higher is better
		if i < int(nBefore) {
			return anchors + i
		}
		return anchors - i
	}
	best, bestRank := 0, -1
	g.adj.Scan(d, u, 0, func(p int, e uint32) bool {
		for i := range anchors {
			if rest[2*i] == uint64(e) && rank(i) > bestRank && rest[2*i+1] == uint64(g.edgeHash(e)) {
				best, bestRank = p, rank(i)
				if i < int(nBefore) {
					best++
				}
			}
		}
		return true
	})
	if bestRank < 0 {
		return 0, 0, fmt.Errorf("cursor %q: the edges it stood between were removed since: %w", cursor, ErrBadCursor)
	}
	return phase, best, nil
}
