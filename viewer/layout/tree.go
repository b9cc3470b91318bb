package layout

// tree is a Barnes–Hut quadtree over a set of bodies. Its structure and
// every aggregate in it are a pure function of the bodies' positions and
// masses and of the order of the index list it is built from, so two builds
// from the same input are bit-identical.
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

	bx, by, bm []float64 // bodies in leaf order
	bid        []int32   // their node indexes

	idx, tmp []int32 // build scratch
}

const (
	leafCap  = 8  // a cell with at most this many bodies is a leaf
	maxDepth = 40 // deeper cells are leaves whatever they hold (coincident bodies)
)

// build rebuilds t over the bodies ids (node indexes into x, y, m), in that
// order.
func (t *tree) build(ids []int32, x, y, m []float64) {
	t.cx, t.cy, t.cm, t.w2 = t.cx[:0], t.cy[:0], t.cm[:0], t.w2[:0]
	t.first, t.n, t.kids = t.first[:0], t.n[:0], t.kids[:0]
	t.bx, t.by, t.bm, t.bid = t.bx[:0], t.by[:0], t.bm[:0], t.bid[:0]
	if len(ids) == 0 {
		return
	}
	t.idx = append(t.idx[:0], ids...)
	if cap(t.tmp) < len(ids) {
		t.tmp = make([]int32, len(ids))
	}
	t.tmp = t.tmp[:len(ids)]
	minX, minY := x[ids[0]], y[ids[0]]
	maxX, maxY := minX, minY
	for _, i := range ids {
		minX, maxX = min(minX, x[i]), max(maxX, x[i])
		minY, maxY = min(minY, y[i]), max(maxY, y[i])
	}
	w := max(maxX-minX, maxY-minY)
	if w == 0 {
		w = 1
	}
	t.push()
	t.fill(0, t.idx, t.tmp, minX, minY, w, 0, x, y, m)
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

// fill makes cell c the cell of square (x0, y0, w) holding idx, using tmp
// (as long as idx) as scratch. Children are summed in quadrant order and
// leaf bodies in idx order, products rounded before each sum (no fused
// multiply-add), so the aggregates do not depend on the machine.
func (t *tree) fill(c int32, idx, tmp []int32, x0, y0, w float64, depth int, x, y, m []float64) {
	t.w2[c] = float64(w * w)
	t.n[c] = int32(len(idx))
	if len(idx) <= leafCap || depth >= maxDepth {
		t.first[c] = int32(len(t.bx))
		var sm, sx, sy float64
		for _, i := range idx {
			t.bx = append(t.bx, x[i])
			t.by = append(t.by, y[i])
			t.bm = append(t.bm, m[i])
			t.bid = append(t.bid, i)
			sm += m[i]
			sx += float64(m[i] * x[i])
			sy += float64(m[i] * y[i])
		}
		t.cm[c], t.cx[c], t.cy[c] = sm, sx/sm, sy/sm
		return
	}
	h := w / 2
	mx, my := x0+h, y0+h
	var cnt [4]int
	for _, i := range idx {
		cnt[quad(x[i], y[i], mx, my)]++
	}
	var off [4]int
	for q := 1; q < 4; q++ {
		off[q] = off[q-1] + cnt[q-1]
	}
	pos := off
	for _, i := range idx {
		q := quad(x[i], y[i], mx, my)
		tmp[pos[q]] = i
		pos[q]++
	}
	copy(idx, tmp)
	first := int32(len(t.cx))
	var kids int8
	for q := 0; q < 4; q++ {
		if cnt[q] > 0 {
			t.push()
			kids++
		}
	}
	t.first[c], t.kids[c] = first, kids
	k := first
	var sm, sx, sy float64
	for q := 0; q < 4; q++ {
		if cnt[q] == 0 {
			continue
		}
		qx, qy := x0, y0
		if q&1 != 0 {
			qx = mx
		}
		if q&2 != 0 {
			qy = my
		}
		lo, hi := off[q], off[q]+cnt[q]
		t.fill(k, idx[lo:hi], tmp[lo:hi], qx, qy, h, depth+1, x, y, m)
		sm += t.cm[k]
		sx += float64(t.cm[k] * t.cx[k])
		sy += float64(t.cm[k] * t.cy[k])
		k++
	}
	t.cm[c], t.cx[c], t.cy[c] = sm, sx/sm, sy/sm
}

func quad(x, y, mx, my float64) int {
	q := 0
	if x >= mx {
		q |= 1
	}
	if y >= my {
		q |= 2
	}
	return q
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
