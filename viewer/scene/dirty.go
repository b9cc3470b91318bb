package scene

import "math/bits"

// dirtySet is a set of slots, one bit per slot, so that many writes to one
// slot between two frames mark it once (last write wins) and the set turns
// into sorted ranges by a scan of its words, without sorting.
type dirtySet struct {
	words []uint64
	any   bool
}

func (d *dirtySet) grow(slots int) {
	if n := (slots + 63) / 64; n > len(d.words) {
		d.words = append(d.words, make([]uint64, n-len(d.words))...)
	}
}

func (d *dirtySet) set(i uint32) {
	w := int(i / 64)
	if w >= len(d.words) {
		d.grow(int(i) + 1)
	}
	d.words[w] |= 1 << (i % 64)
	d.any = true
}

// setRange marks the slots [lo, hi).
func (d *dirtySet) setRange(lo, hi uint32) {
	if lo >= hi {
		return
	}
	d.grow(int(hi))
	d.any = true
	for lo < hi && lo%64 != 0 {
		d.words[lo/64] |= 1 << (lo % 64)
		lo++
	}
	for ; lo+64 <= hi; lo += 64 {
		d.words[lo/64] = ^uint64(0)
	}
	for ; lo < hi; lo++ {
		d.words[lo/64] |= 1 << (lo % 64)
	}
}

func (d *dirtySet) clear() {
	if d.any {
		clear(d.words)
		d.any = false
	}
}

// ranges appends the set's slots below limit to dst as sorted ranges: runs
// closer than gap slots apart are merged into one (an upload of a few
// unchanged slots costs less than another call), and when more than
// maxRanges remain the gap doubles until they fit. A scan costs a word per
// 64 slots: about 1,600 words at 100K slots.
func (d *dirtySet) ranges(dst []Range, limit uint32, gap uint32, maxRanges int) []Range {
	if !d.any {
		return dst
	}
	start := len(dst)
	for {
		dst = d.scan(dst[:start], limit, gap)
		if len(dst)-start <= maxRanges || gap >= limit {
			return dst
		}
		gap *= 2
	}
}

func (d *dirtySet) scan(dst []Range, limit, gap uint32) []Range {
	start := len(dst)
	d.runs(limit, func(lo, hi uint32) {
		if n := len(dst); n > start && lo <= dst[n-1].Hi+gap {
			dst[n-1].Hi = hi
			return
		}
		dst = append(dst, Range{lo, hi})
	})
	return dst
}

// runs calls fn with each run [lo, hi) of consecutive slots below limit,
// in order.
func (d *dirtySet) runs(limit uint32, fn func(lo, hi uint32)) {
	if !d.any {
		return
	}
	open := false
	var cur Range
	for wi, w := range d.words {
		for w != 0 {
			b := uint32(bits.TrailingZeros64(w))
			lo := uint32(wi)*64 + b
			if lo >= limit {
				w = 0
				break
			}
			run := uint32(bits.TrailingZeros64(^(w >> b)))
			hi := min(lo+run, limit)
			if b+run >= 64 {
				w = 0
			} else {
				w &^= (uint64(1)<<run - 1) << b
			}
			switch {
			case open && lo == cur.Hi:
				cur.Hi = hi
			case open:
				fn(cur.Lo, cur.Hi)
				cur = Range{lo, hi}
			default:
				cur, open = Range{lo, hi}, true
			}
		}
	}
	if open {
		fn(cur.Lo, cur.Hi)
	}
}
