package readmodel

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cairn-graph/cairn/internal/adjacency"
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

// Reverse returns the direction that walks d's edges backwards: In for
// Out, Out for In, Both for Both.
func (d Direction) Reverse() Direction {
	switch d {
	case Out:
		return In
	case In:
		return Out
	}
	return d
}

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
// the next dense index, the graph version they were made at and the
// query's key (queryKey of the kind of find and its arguments); neighbour
// cursors hold the node's dense index, the direction, the phase (0 out, 1
// in), the next edge index and the key of the edge type. A cursor presented
// to another kind of find, to a find with other arguments, or to another
// query is refused with ErrBadCursor.
const (
	kindFind     = 'f'
	kindNeighbor = 'n'
)

// queryKey binds a cursor to the query that made it: the low 32 bits of
// the FNV-64a of the parts, each length-prefixed (enough to tell one
// query from another; a cursor is no secret).
func queryKey(parts ...string) uint64 {
	h := fnv.New64a()
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	return h.Sum64() & 0xffffffff
}

func encodeCursor(kind byte, vals ...uint64) string {
	b := []byte{kind}
	for _, v := range vals {
		b = binary.AppendUvarint(b, v)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, kind byte, n int) ([]uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || b[0] != kind {
		return nil, fmt.Errorf("cursor %q: %w", s, ErrBadCursor)
	}
	b = b[1:]
	vals := make([]uint64, n)
	for i := range vals {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("cursor %q: %w", s, ErrBadCursor)
		}
		vals[i], b = v, b[k:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("cursor %q: %w", s, ErrBadCursor)
	}
	return vals, nil
}

// page walks bm from the cursor's position; key is the find's queryKey.
func (g *Graph) page(bm *roaring.Bitmap, key uint64, cursor string, limit int) (Page, error) {
	if err := g.live(); err != nil {
		return Page{}, err
	}
	if err := checkLimit(limit); err != nil {
		return Page{}, err
	}
	start := uint64(0)
	if cursor != "" {
		vals, err := decodeCursor(cursor, kindFind, 3)
		if err != nil {
			return Page{}, err
		}
		if vals[2] != key {
			return Page{}, fmt.Errorf("cursor %q belongs to another query: %w", cursor, ErrBadCursor)
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
		p.Next = encodeCursor(kindFind, uint64(last)+1, g.version, key)
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
	return g.page(bm, queryKey("type", typ), cursor, limit)
}

// FindByComponent pages through the nodes that hold component (typ, value).
// A bloom filter answers most misses. Errors as FindByComponentType.
func (g *Graph) FindByComponent(typ string, value []byte, cursor string, limit int) (Page, error) {
	var bm *roaring.Bitmap
	if h, ok := g.store.lookup(typ, value); ok {
		bm = g.store.nodes[h]
	}
	return g.page(bm, queryKey("component", typ, string(value)), cursor, limit)
}

// FindByCategory pages through the nodes in category cat. Errors as
// FindByComponentType.
func (g *Graph) FindByCategory(cat, cursor string, limit int) (Page, error) {
	var bm *roaring.Bitmap
	if c, ok := g.categories.lookup(cat); ok {
		bm = g.catNodes[c]
	}
	return g.page(bm, queryKey("category", cat), cursor, limit)
}

// Neighbors pages through the edges at node id in direction dir, of type
// edgeType ("" for any): out-edges, then in-edges (Both), each in ascending
// edge-index order. A cursor holds the phase and the next edge index (and
// is bound to the node, the direction and the edge type), and
// a live edge keeps its index, so pages neither skip nor repeat an edge that
// is there for the whole walk, whatever is written or compacted between
// them; an edge added meanwhile may or may not be listed.
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
	phase, from := 0, uint32(0)
	if cursor != "" {
		vals, err := decodeCursor(cursor, kindNeighbor, 5)
		if err != nil {
			return NeighborPage{}, err
		}
		if vals[0] != uint64(u) || vals[1] != uint64(dir) || vals[4] != queryKey(edgeType) {
			return NeighborPage{}, fmt.Errorf("cursor %q belongs to another query: %w", cursor, ErrBadCursor)
		}
		if vals[2] >= uint64(len(phases)) || vals[3] > math.MaxUint32 {
			return NeighborPage{}, fmt.Errorf("cursor %q out of range: %w", cursor, ErrBadCursor)
		}
		phase, from = int(vals[2]), uint32(vals[3])
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
	full := false
	for ; phase < len(phases) && !full; phase, from = phase+1, 0 {
		d := phases[phase]
		g.adj.ScanFrom(d, u, from, func(e uint32) bool {
			if (!anyType && uint16(g.etype.Get(int(e))) != typ) || (dir == Both && d == adjacency.In && g.src.Get(int(e)) == g.dst.Get(int(e))) {
				return true
			}
			if len(p.Entries) == limit {
				p.Next = encodeCursor(kindNeighbor, uint64(u), uint64(dir), uint64(phase), uint64(e), queryKey(edgeType))
				full = true
				return false
			}
			other := g.dst.Get(int(e))
			if d == adjacency.In {
				other = g.src.Get(int(e))
			}
			p.Entries = append(p.Entries, Neighbor{EdgeID: g.edges.String(e), NodeID: g.nodes.String(other), EdgeType: g.types.name(g.etype.Get(int(e)))})
			return true
		})
	}
	return p, nil
}
