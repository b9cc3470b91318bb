package readmodel

import (
	"github.com/RoaringBitmap/roaring/v2"
	"github.com/bits-and-blooms/bloom/v3"
)

// components is the flyweight store: each distinct (type, value) is stored
// once, with a reference count, and freed when the last node lets go. It also
// keeps the node indices by component type and by (type, value), and a bloom
// filter over the (type, value) keys for fast negative answers.
type components struct {
	fp float64

	byKey map[string]uint32 // type "\x00" value -> handle
	typ   []uint32          // handle -> type id
	val   []string          // handle -> value
	refs  []uint32          // handle -> references; 0 when free
	nodes []*roaring.Bitmap // handle -> node indices
	free  []uint32
	live  int

	types     names
	typeNodes []*roaring.Bitmap // type id -> node indices

	bloom      *bloom.BloomFilter
	bloomCap   uint // keys the filter was sized for
	bloomAdded uint // keys added since it was built, dead ones included
}

func newComponents(fp float64) *components {
	c := &components{fp: fp, byKey: map[string]uint32{}}
	c.rebuildBloom()
	return c
}

func compKey(typ string, val []byte) string {
	return typ + "\x00" + string(val)
}

// acquire returns the handle of (typ, val), storing it if new, and counts one
// more reference.
func (c *components) acquire(typ string, val []byte) uint32 {
	// A known key (most of them) is looked up off the stack.
	var buf [128]byte
	kb := append(append(append(buf[:0], typ...), 0), val...)
	if h, ok := c.byKey[string(kb)]; ok {
		c.refs[h]++
		return h
	}
	key := string(kb)
	t, added := c.types.intern(typ)
	if added {
		c.typeNodes = append(c.typeNodes, newBitmap())
	}
	var h uint32
	if n := len(c.free); n > 0 {
		h, c.free = c.free[n-1], c.free[:n-1]
		c.typ[h], c.val[h], c.refs[h], c.nodes[h] = t, string(val), 1, newBitmap()
	} else {
		h = uint32(len(c.typ))
		c.typ = append(c.typ, t)
		c.val = append(c.val, string(val))
		c.refs = append(c.refs, 1)
		c.nodes = append(c.nodes, newBitmap())
	}
	c.byKey[key] = h
	c.live++
	c.bloom.AddString(key)
	c.bloomAdded++
	if c.bloomAdded > c.bloomCap {
		c.rebuildBloom()
	}
	return h
}

// release drops one reference to h and frees it with the last.
func (c *components) release(h uint32) {
	c.refs[h]--
	if c.refs[h] > 0 {
		return
	}
	delete(c.byKey, compKey(c.types.name(c.typ[h]), []byte(c.val[h])))
	c.val[h], c.nodes[h] = "", nil
	c.free = append(c.free, h)
	c.live--
}

// lookup returns the handle of (typ, val); the bloom filter answers most
// misses without touching the map.
func (c *components) lookup(typ string, val []byte) (uint32, bool) {
	key := compKey(typ, val)
	if !c.bloom.TestString(key) {
		return 0, false
	}
	h, ok := c.byKey[key]
	return h, ok
}

// rebuildBloom sizes a fresh filter for twice the live keys. Keys cannot be
// deleted from a bloom filter, so it is rebuilt when more keys were added
// since the last build than it was sized for (its false-positive rate then
// exceeds the target) and at every adjacency compaction where dead keys
// outnumber live ones.
func (c *components) rebuildBloom() {
	n := uint(2 * c.live)
	if n < 1024 {
		n = 1024
	}
	c.bloom = bloom.NewWithEstimates(n, c.fp)
	c.bloomCap, c.bloomAdded = n, uint(c.live)
	for k := range c.byKey {
		c.bloom.AddString(k)
	}
}

// trim gives back the spare capacity of the index bitmaps.
func (c *components) trim() {
	trimBitmaps(c.nodes)
	trimBitmaps(c.typeNodes)
}

// newBitmap returns an empty bitmap in copy-on-write mode: a Clone of it
// shares its containers, and whichever is written first copies the
// container it writes, so that a snapshot captures the indices in time
// O(containers) (see Graph.Freeze).
func newBitmap() *roaring.Bitmap {
	bm := roaring.New()
	bm.SetCopyOnWrite(true)
	return bm
}

// trimBitmaps replaces each bitmap with a deep copy: a roaring container
// grows by appending, and a copy holds exactly its values.
func trimBitmaps(bms []*roaring.Bitmap) {
	for i, bm := range bms {
		if bm != nil {
			bm.SetCopyOnWrite(false) // so that Clone copies the containers
			bms[i] = bm.Clone()
			bms[i].SetCopyOnWrite(true)
		}
	}
}

// cloneBitmaps returns copy-on-write clones of bms (nil stays nil).
func cloneBitmaps(bms []*roaring.Bitmap) []*roaring.Bitmap {
	out := make([]*roaring.Bitmap, len(bms))
	for i, bm := range bms {
		if bm != nil {
			out[i] = bm.Clone()
		}
	}
	return out
}

func (c *components) maybeRebuildBloom() {
	if c.bloomAdded > uint(2*c.live)+1024 {
		c.rebuildBloom()
	}
}
