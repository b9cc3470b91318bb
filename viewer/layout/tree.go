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
// Cells are stored flat. A cell with kids > 0 is internal: its non-empty
// children are cells first .. first+kids-1. A cell with kids == 0 is a leaf:
// its bodies are bx/by/bm/bid[first : first+n].
type tree struct {
	cx, cy, cm []float64 // centre of mass and mass per cell
	w2         []float64 // squared cell width per cell
	first      []int32
	n          []int32
	kids       []int8

	bx, by, bm []float64 // bodies in leaf (Morton) order
	bid        []int32   // their node indexes
	key        []uint64  // their Morton keys

	tkey  []uint64 // sort scratch
	tid   []int32
	count []int32
}

const (
	leafCap  = 8  // a cell with at most this many bodies is a leaf
	levels   = 31 // bits per coordinate in a Morton key: cells this deep are leaves
	topShift = 2 * (levels - 1)
)

// build rebuilds t over the bodies ids (node indexes into x, y, m), in that
// order.
func (t *tree) build(ids []int32, x, y, m []float64) {
	t.cx, t.cy, t.cm, t.w2 = t.cx[:0], t.cy[:0], t.cm[:0], t.w2[:0]
	t.first, t.n, t.kids = t.first[:0], t.n[:0], t.kids[:0]
	t.bx, t.by, t.bm, t.bid, t.key = t.bx[:0], t.by[:0], t.bm[:0], t.bid[:0], t.key[:0]
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
		t.bx = append(t.bx, x[i])
		t.by = append(t.by, y[i])
		t.bm = append(t.bm, m[i])
	}
	t.push()
	t.fill(0, 0, int32(len(t.bid)), 0, w)
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

func (t *tree) push() int32 {
	t.cx = append(t.cx, 0)
	t.cy = append(t.cy, 0)
	t.cm = append(t.cm, 0)
	t.w2 = append(t.w2, 0)
	t.first = append(t.first, 0)
	t.n = append(t.n, 0)
	t.kids = append(t.kids, 0)
	return int32(len(t.cx) - 1)
}

// fill makes cell c the cell at depth level, of width w, holding bodies
// lo..hi-1. Children are summed in quadrant order and leaf bodies in key
// order, products rounded before each sum (no fused multiply-add), so the
// aggregates do not depend on the machine.
func (t *tree) fill(c, lo, hi int32, level int, w float64) {
	t.w2[c] = float64(w * w)
	t.n[c] = hi - lo
	if hi-lo <= leafCap || level >= levels {
		t.first[c] = lo
		var sm, sx, sy float64
		for b := lo; b < hi; b++ {
			sm += t.bm[b]
			sx += float64(t.bm[b] * t.bx[b])
			sy += float64(t.bm[b] * t.by[b])
		}
		t.cm[c], t.cx[c], t.cy[c] = sm, sx/sm, sy/sm
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
	first := int32(len(t.cx))
	var kids int8
	for q := range 4 {
		if bounds[q+1] > bounds[q] {
			t.push()
			kids++
		}
	}
	t.first[c], t.kids[c] = first, kids
	k := first
	var sm, sx, sy float64
	for q := range 4 {
		if bounds[q+1] == bounds[q] {
			continue
		}
		t.fill(k, bounds[q], bounds[q+1], level+1, w/2)
		sm += t.cm[k]
		sx += float64(t.cm[k] * t.cx[k])
		sy += float64(t.cm[k] * t.cy[k])
		k++
	}
	t.cm[c], t.cx[c], t.cy[c] = sm, sx/sm, sy/sm
}

// repel adds to (fx, fy) the ForceAtlas2 repulsion kr·m·mc/d on a body of
// mass m at (x, y) from every body of t but self, approximating a cell by
// its centre of mass when its width is under theta times its distance. The
// traversal order is fixed, so the sum is too. stack is scratch.
func (t *tree) repel(self int32, x, y, m, kr, theta2 float64, fx, fy float64, stack []int32) (float64, float64, []int32) {
	if len(t.cx) == 0 {
		return fx, fy, stack
	}
	stack = append(stack[:0], 0)
	km := float64(kr * m)
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if t.kids[c] == 0 {
			lo := t.first[c]
			hi := lo + t.n[c]
			for b := lo; b < hi; b++ {
				if t.bid[b] == self {
					continue
				}
				dx, dy := x-t.bx[b], y-t.by[b]
				d2 := float64(dx*dx) + float64(dy*dy)
				if d2 < minDist2 {
					continue
				}
				f := float64(km*t.bm[b]) / d2
				fx += float64(dx * f)
				fy += float64(dy * f)
			}
			continue
		}
		dx, dy := x-t.cx[c], y-t.cy[c]
		d2 := float64(dx*dx) + float64(dy*dy)
		if t.w2[c] < float64(theta2*d2) {
			f := float64(km*t.cm[c]) / d2
			fx += float64(dx * f)
			fy += float64(dy * f)
			continue
		}
		for k := t.first[c] + int32(t.kids[c]) - 1; k >= t.first[c]; k-- {
			stack = append(stack, k)
		}
	}
	return fx, fy, stack
}

// minDist2 is the squared distance under which two bodies are taken to
// coincide and do not repel (their direction is undefined).
const minDist2 = 1e-18
