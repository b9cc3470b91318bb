package layout

// tree is a Barnes–Hut quadtree over a set of bodies. Its structure and
// every aggregate in it are a pure function of the bodies' positions and
// masses and of the order of the index list it is built from, so two builds
// from the same input are bit-identical.
//
// It is built from the bodies sorted by Morton key (their positions
// quantised to a 2³¹ grid over the bounding square, bits interleaved): a
// cell is a key prefix, its bodies a run of the sorted order, and its
// children are found by binary search. Ties keep the input order.
//
// Cells are stored flat in depth-first pre-order: a cell's subtree is the
// cells after it up to skip, so a traversal is one forward scan.
type tree struct {
	cells  []cell
	bodies []body // in leaf (Morton) order
	key    []uint64
	bid    []int32 // bodies' node indexes, in leaf order

	tkey  []uint64 // sort scratch
	tid   []int32
	count []int32
}

// cell is one square of the tree. A leaf (leaf true) holds bodies
// first .. first+n-1; an internal cell's children follow it.
type cell struct {
	cx, cy, cm float64 // centre of mass and mass
	w2         float64 // squared width
	skip       int32   // index of the first cell after this one's subtree
	first, n   int32
	leaf       bool
}

type body struct {
	x, y, m float64
	id      int32
}

const (
	leafCap  = 8  // a cell with at most this many bodies is a leaf
	levels   = 31 // bits per coordinate in a Morton key: cells this deep are leaves
	topShift = 2 * (levels - 1)
)

// build rebuilds t over the bodies ids (node indexes into x, y, m), in that
// order.
func (t *tree) build(ids []int32, x, y, m []float64) {
	t.cells, t.bodies, t.bid, t.key = t.cells[:0], t.bodies[:0], t.bid[:0], t.key[:0]
	if len(ids) == 0 {
		return
	}
	minX, minY := x[ids[0]], y[ids[0]]
	maxX, maxY := minX, minY
	for _, i := range ids {
		minX, maxX = min(minX, x[i]), max(maxX, x[i])
		minY, maxY = min(minY, y[i]), max(maxY, y[i])
	}
	w := max(maxX-minX, maxY-minY)
	if !(w > 0) {
		w = 1
	}
	scale := float64(1<<levels-1) / w
	for _, i := range ids {
		qx := uint32(float64((x[i] - minX) * scale))
		qy := uint32(float64((y[i] - minY) * scale))
		t.key = append(t.key, spread(qx)|spread(qy)<<1)
		t.bid = append(t.bid, i)
	}
	t.sort()
	for _, i := range t.bid {
		t.bodies = append(t.bodies, body{x[i], y[i], m[i], i})
	}
	t.fill(0, int32(len(t.bid)), 0, w)
}

// spread puts the bits of v at the even bit positions.
func spread(v uint32) uint64 {
	x := uint64(v)
	x = (x | x<<16) & 0x0000ffff0000ffff
	x = (x | x<<8) & 0x00ff00ff00ff00ff
	x = (x | x<<4) & 0x0f0f0f0f0f0f0f0f
	x = (x | x<<2) & 0x3333333333333333
	x = (x | x<<1) & 0x5555555555555555
	return x
}

// sort orders key and bid by key, stably: a radix sort of 11-bit digits, or
// an insertion sort for few bodies.
func (t *tree) sort() {
	n := len(t.key)
	if n < 64 {
		for i := 1; i < n; i++ {
			for j := i; j > 0 && t.key[j] < t.key[j-1]; j-- {
				t.key[j], t.key[j-1] = t.key[j-1], t.key[j]
				t.bid[j], t.bid[j-1] = t.bid[j-1], t.bid[j]
			}
		}
		return
	}
	const bits = 11
	if cap(t.tkey) < n {
		t.tkey, t.tid = make([]uint64, n), make([]int32, n)
	}
	t.tkey, t.tid = t.tkey[:n], t.tid[:n]
	if len(t.count) != 1<<bits {
		t.count = make([]int32, 1<<bits)
	}
	for shift := 0; shift < 2*levels; shift += bits {
		clear(t.count)
		for _, k := range t.key {
			t.count[(k>>shift)&(1<<bits-1)]++
		}
		if t.count[(t.key[0]>>shift)&(1<<bits-1)] == int32(n) {
			continue // every key has this digit
		}
		var sum int32
		for d, c := range t.count {
			t.count[d] = sum
			sum += c
		}
		for j, k := range t.key {
			d := (k >> shift) & (1<<bits - 1)
			t.tkey[t.count[d]], t.tid[t.count[d]] = k, t.bid[j]
			t.count[d]++
		}
		t.key, t.tkey = t.tkey, t.key
		t.bid, t.tid = t.tid, t.bid
	}
}

// fill appends the subtree of the cell at depth level, of width w, holding
// bodies lo..hi-1. Children are summed in quadrant order and leaf bodies in
// key order, products rounded before each sum (no fused multiply-add), so
// the aggregates do not depend on the machine.
func (t *tree) fill(lo, hi int32, level int, w float64) {
	c := int32(len(t.cells))
	t.cells = append(t.cells, cell{w2: float64(w * w), n: hi - lo, first: lo})
	var sm, sx, sy float64
	if hi-lo <= leafCap || level >= levels {
		for _, b := range t.bodies[lo:hi] {
			sm += b.m
			sx += float64(b.m * b.x)
			sy += float64(b.m * b.y)
		}
		cl := &t.cells[c]
		cl.leaf, cl.skip = true, c+1
		cl.cm, cl.cx, cl.cy = sm, sx/sm, sy/sm
		return
	}
	shift := uint(topShift - 2*level)
	var bounds [5]int32
	bounds[0], bounds[4] = lo, hi
	for q := uint64(1); q < 4; q++ {
		// first body at or after bounds[q-1] whose quadrant is ≥ q
		a, b := bounds[q-1], hi
		for a < b {
			h := a + (b-a)/2
			if (t.key[h]>>shift)&3 < q {
				a = h + 1
			} else {
				b = h
			}
		}
		bounds[q] = a
	}
	for q := range 4 {
		if bounds[q+1] == bounds[q] {
			continue
		}
		k := int32(len(t.cells))
		t.fill(bounds[q], bounds[q+1], level+1, w/2)
		sm += t.cells[k].cm
		sx += float64(t.cells[k].cm * t.cells[k].cx)
		sy += float64(t.cells[k].cm * t.cells[k].cy)
	}
	cl := &t.cells[c]
	cl.skip = int32(len(t.cells))
	cl.cm, cl.cx, cl.cy = sm, sx/sm, sy/sm
}

// repel adds to (fx, fy) the ForceAtlas2 repulsion kr·m·mc/d on a body of
// mass m at (x, y) from every body of t but self, approximating a cell by
// its centre of mass when its width is under theta times its distance. The
// traversal order is fixed, so the sum is too.
func (t *tree) repel(self int32, x, y, m, kr, theta2 float64, fx, fy float64) (float64, float64) {
	km := float64(kr * m)
	cells, bodies := t.cells, t.bodies
	for c := int32(0); c < int32(len(cells)); {
		cl := &cells[c]
		dx, dy := x-cl.cx, y-cl.cy
		d2 := float64(dx*dx) + float64(dy*dy)
		if cl.w2 < float64(theta2*d2) {
			f := float64(km*cl.cm) / d2
			fx += float64(dx * f)
			fy += float64(dy * f)
			c = cl.skip
			continue
		}
		if !cl.leaf {
			c++
			continue
		}
		for _, b := range bodies[cl.first : cl.first+cl.n] {
			if b.id == self {
				continue
			}
			dx, dy := x-b.x, y-b.y
			d2 := float64(dx*dx) + float64(dy*dy)
			if d2 < minDist2 {
				continue
			}
			f := float64(km*b.m) / d2
			fx += float64(dx * f)
			fy += float64(dy * f)
		}
		c = cl.skip
	}
	return fx, fy
}

// minDist2 is the squared distance under which two bodies are taken to
// coincide and do not repel (their direction is undefined).
const minDist2 = 1e-18
