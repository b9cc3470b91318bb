package packed

import (
	"encoding/binary"
	"unsafe"
)

// PageBits sets the page size of Pages: PageLen values a page.
const (
	PageBits = 12
	PageLen  = 1 << PageBits
)

// page is a run of up to PageLen values, bit-packed at its own width, with
// no pad after them: a whole page is then 1, 2, 4, 8, 12 or 16 KiB long,
// sizes the allocator's classes hold without waste, and the few values in
// its last 8 bytes take a slower path. Its epoch (kept apart, in
// Pages.epochs, so that the page list Get reads stays small) is the epoch
// of the Pages that made it: that Pages may write it while its own epoch is
// the same, and must copy it first once a Freeze has moved the epoch on
// (the page is then shared with a view, or may be).
type page struct {
	b    []byte
	w    uint32
	mask uint32
}

// Pages is a paged, copy-on-write packed array: the values in pages of
// PageLen, each packed in the fewest bits (2, 4, 8, 16, 24 or 32) that fit
// the largest value stored in it so far, so that a wider value copies only
// its page. Freeze returns an immutable view in O(pages): the page list is
// copied and the pages are shared, and a later write to a shared page
// copies that page first.
//
// The zero value is empty and ready. A Pages must not be copied by
// assignment and then written through both copies: copy one with
// Freeze().Thaw(). A Pages is not safe for concurrent use; its views are
// (they never change).
type Pages struct {
	pages  []page
	epochs []uint64 // per page
	n      int
	epoch  uint64
	minW   uint // the width Make asked for, for an array without values
}

// PagesView is an immutable view of a Pages as it was when Freeze returned
// it. The zero value is an empty view.
type PagesView struct {
	pages []page
	n     int
	epoch uint64 // greater than every page's epoch
	minW  uint
}

// MakePages returns an array of n zeros, wide enough for values up to max.
func MakePages(n int, max uint32) Pages {
	a := Pages{minW: width(max)}
	w := a.minW
	// One allocation for all pages, as a Uints would make: the pages lie
	// side by side in memory, which random reads measured about 20 % faster
	// (BenchmarkLookup of package intern) than pages allocated one by one.
	// The price: a page copied on write leaves its old bytes in the
	// allocation until every page of it is gone, so an array frozen and
	// then written sparsely holds up to twice its bytes until it is
	// remade.
	slab := make([]byte, size(n, w))
	for k := 0; k < n; k += PageLen {
		m := min(PageLen, n-k)
		o := k * int(w) / 8
		a.pages = append(a.pages, page{b: slab[o : o+size(m, w) : o+size(m, w)], w: uint32(w), mask: maskOf(w)})
		a.epochs = append(a.epochs, 0)
	}
	a.n = n
	return a
}

// Len returns the number of values.
func (a *Pages) Len() int { return a.n }

// Get returns value i (< Len).
func (a *Pages) Get(i int) uint32 {
	return a.pages[i>>PageBits].get(i & (PageLen - 1))
}

// Set stores v at i (< Len). It copies the page first when the page is
// shared with a view or v needs a wider page.
func (a *Pages) Set(i int, v uint32) {
	p := &a.pages[i>>PageBits]
	if v > p.mask || a.epochs[i>>PageBits] != a.epoch {
		p = a.own(i>>PageBits, width(v))
	}
	p.put(i&(PageLen-1), v)
}

// Append adds v at the end.
func (a *Pages) Append(v uint32) {
	k := a.n & (PageLen - 1)
	if k == 0 {
		w := max(width(v), a.minW)
		a.pages = append(a.pages, page{b: make([]byte, 0, size(min(64, PageLen), w)), w: uint32(w), mask: maskOf(w)})
		a.epochs = append(a.epochs, a.epoch)
	}
	pi := len(a.pages) - 1
	p := &a.pages[pi]
	if v > p.mask || a.epochs[pi] != a.epoch {
		p = a.own(pi, width(v))
	}
	if need := size(k+1, uint(p.w)); len(p.b) < need {
		if need <= cap(p.b) {
			p.b = p.b[:need]
		} else {
			// Double, up to a whole page, as append would.
			nb := make([]byte, need, min(max(2*cap(p.b), need), size(PageLen, uint(p.w))))
			copy(nb, p.b)
			p.b = nb
		}
	}
	a.n++
	p.put(k, v)
}

// own makes page pi writable by a: a private copy when the page is shared
// and at least w bits wide.
func (a *Pages) own(pi int, w uint) *page {
	p := &a.pages[pi]
	w = max(w, uint(p.w))
	if a.epochs[pi] == a.epoch && w == uint(p.w) {
		return p
	}
	m := a.n - pi<<PageBits
	m = min(m, PageLen)
	np := page{b: make([]byte, size(m, w)), w: uint32(w), mask: maskOf(w)}
	a.epochs[pi] = a.epoch
	if w == uint(p.w) {
		copy(np.b, p.b)
	} else {
		for j := range m {
			np.put(j, p.get(j))
		}
	}
	*p = np
	return p
}

// get returns value j, reading the 8 bytes from its first one, or for the
// last few values of the page the bytes that are left.
func (p *page) get(j int) uint32 {
	bit := uint(j) * uint(p.w)
	if o := bit >> 3; o+8 <= uint(len(p.b)) {
		return uint32(binary.LittleEndian.Uint64(p.b[o:o+8])>>(bit&7)) & p.mask
	}
	return uint32(p.tail(bit>>3)>>(bit&7)) & p.mask
}

// tail returns the bytes from o to the page's end (fewer than 8) as a
// little-endian number.
func (p *page) tail(o uint) uint64 {
	var x uint64
	for i := len(p.b) - 1; i >= int(o); i-- {
		x = x<<8 | uint64(p.b[i])
	}
	return x
}

func (p *page) put(j int, v uint32) {
	bit := uint(j) * uint(p.w)
	o, s := bit>>3, bit&7
	if o+8 <= uint(len(p.b)) {
		b := p.b[o : o+8]
		x := binary.LittleEndian.Uint64(b)
		binary.LittleEndian.PutUint64(b, x&^(uint64(p.mask)<<s)|uint64(v)<<s)
		return
	}
	x := p.tail(o)&^(uint64(p.mask)<<s) | uint64(v)<<s
	for i := int(o); i < len(p.b); i++ {
		p.b[i], x = byte(x), x>>8
	}
}

// Bytes returns the memory the array holds: its pages and page list.
func (a *Pages) Bytes() int {
	n := cap(a.pages)*int(unsafe.Sizeof(page{})) + 8*cap(a.epochs)
	for i := range a.pages {
		n += cap(a.pages[i].b)
	}
	return n
}

// Max returns the largest value (0 when empty).
func (a *Pages) Max() uint32 { return maxOf(a.pages, a.n) }

func maxOf(pages []page, n int) uint32 {
	m := uint32(0)
	buf := make([]uint32, PageLen)
	scanPages(pages, n, buf, func(_ int, vals []uint32) bool {
		for _, v := range vals {
			m = max(m, v)
		}
		return m != 1<<32-1
	})
	return m
}

// Scan calls fn with the values of each page in order, unpacked into buf
// (of at least PageLen values; it is reused from page to page): start is
// the index of vals[0]. It stops when fn returns false. A whole-array read
// this way costs a fraction of Get per value.
func (a *Pages) Scan(buf []uint32, fn func(start int, vals []uint32) bool) {
	scanPages(a.pages, a.n, buf, fn)
}

// UnpackPage unpacks the values of page k (those from k*PageLen on, at
// most PageLen) into buf, of at least PageLen values, and returns them.
func (a *Pages) UnpackPage(k int, buf []uint32) []uint32 {
	vals := buf[:min(PageLen, a.n-k<<PageBits)]
	a.pages[k].unpack(vals)
	return vals
}

func scanPages(pages []page, n int, buf []uint32, fn func(int, []uint32) bool) {
	for pi := range pages {
		start := pi << PageBits
		vals := buf[:min(PageLen, n-start)]
		pages[pi].unpack(vals)
		if !fn(start, vals) {
			return
		}
	}
}

// unpack stores the page's first len(dst) values in dst.
func (p *page) unpack(dst []uint32) {
	if len(dst) == 0 {
		return
	}
	b := p.b
	switch p.w {
	case 8:
		b = b[:len(dst)]
		for j := range dst {
			dst[j] = uint32(b[j])
		}
	case 16:
		b = b[:2*len(dst)]
		for j := range dst {
			dst[j] = uint32(binary.LittleEndian.Uint16(b[2*j:]))
		}
	case 24:
		b = b[:3*len(dst)]
		for j := range dst {
			o := 3 * j
			dst[j] = uint32(b[o]) | uint32(b[o+1])<<8 | uint32(b[o+2])<<16
		}
	case 32:
		b = b[:4*len(dst)]
		for j := range dst {
			dst[j] = binary.LittleEndian.Uint32(b[4*j:])
		}
	case 4:
		for j := range dst {
			dst[j] = uint32(b[j>>1]>>(4*(j&1))) & 15
		}
	default:
		for j := range dst {
			dst[j] = p.get(j)
		}
	}
}

// Clip drops spare capacity: the last page's, and the page list's.
func (a *Pages) Clip() {
	if len(a.pages) == 0 {
		a.pages = nil
		return
	}
	if p := &a.pages[len(a.pages)-1]; cap(p.b) > len(p.b) {
		if a.epochs[len(a.pages)-1] == a.epoch {
			p.b = append([]byte(nil), p.b...)
		}
		// A shared page is clipped already: own copies it exactly.
	}
	if cap(a.pages) > len(a.pages) {
		a.pages = append([]page(nil), a.pages...)
		a.epochs = append([]uint64(nil), a.epochs...)
	}
}

// Freeze returns an immutable view of the array as it is now, in time
// O(pages): it copies the page list and moves the array's epoch on, so
// that every page now in it is copied before it is next written.
func (a *Pages) Freeze() PagesView {
	v := PagesView{pages: append([]page(nil), a.pages...), n: a.n, minW: a.minW}
	a.epoch++
	v.epoch = a.epoch
	return v
}

// Len returns the number of values.
func (v *PagesView) Len() int { return v.n }

// Get returns value i (< Len).
func (v *PagesView) Get(i int) uint32 {
	return v.pages[i>>PageBits].get(i & (PageLen - 1))
}

// Max returns the largest value (0 when empty).
func (v *PagesView) Max() uint32 { return maxOf(v.pages, v.n) }

// Width returns the bits per value of a Uints holding the same history:
// the widest page's width, or the width Make asked for; 0 for an array
// that never held a value.
func (v *PagesView) Width() uint {
	w := v.minW
	for i := range v.pages {
		w = max(w, uint(v.pages[i].w))
	}
	return w
}

// Thaw returns a mutable array with the view's values that shares its
// pages, copying each before it first writes it.
func (v *PagesView) Thaw() Pages {
	return Pages{pages: append([]page(nil), v.pages...), epochs: make([]uint64, len(v.pages)), n: v.n, epoch: v.epoch + 1, minW: v.minW}
}

// AppendBits appends the values packed at width w (≥ Width, one of the
// widths), as Uints.Raw's bytes of an array of that width: a page of
// width w is copied whole, any other repacked.
func (v *PagesView) AppendBits(dst []byte, w uint) []byte {
	if v.n == 0 || w == 0 {
		return dst
	}
	start := len(dst)
	total := size(v.n, w)
	dst = append(dst, make([]byte, total)...)
	out := page{b: dst[start:], w: uint32(w), mask: maskOf(w)}
	for pi := range v.pages {
		p := &v.pages[pi]
		m := min(PageLen, v.n-pi<<PageBits)
		base := pi << PageBits
		if uint(p.w) == w {
			// PageLen values of any width fill whole bytes, so a page
			// starts on a byte; the last byte of a short page may hold
			// stray bits of nothing, which are zero.
			copy(out.b[base*int(w)/8:], p.b[:size(m, w)])
			continue
		}
		for j := range m {
			out.put(base+j, p.get(j))
		}
	}
	return dst
}

// PagesFromRaw returns an array of n values of w bits copied from b, as
// AppendBits or Uints.Raw gave them; ok is false when w is not a width or
// b is not n values long.
func PagesFromRaw(n int, w uint, b []byte) (a Pages, ok bool) {
	switch w {
	case 0:
		return Pages{}, n == 0 && len(b) == 0
	case 2, 4, 8, 16, 24, 32:
	default:
		return Pages{}, false
	}
	if n < 0 || len(b) != size(n, w) {
		return Pages{}, false
	}
	a = Pages{n: n, minW: w, pages: make([]page, 0, (n+PageLen-1)/PageLen), epochs: make([]uint64, (n+PageLen-1)/PageLen)}
	slab := append([]byte(nil), b...) // see MakePages
	for k := 0; k < n; k += PageLen {
		m := min(PageLen, n-k)
		o := k * int(w) / 8
		a.pages = append(a.pages, page{b: slab[o : o+size(m, w) : o+size(m, w)], w: uint32(w), mask: maskOf(w)})
	}
	return a, true
}

// PageCount returns the number of pages.
func (v *PagesView) PageCount() int { return len(v.pages) }

// Page returns page k's width and values' bytes (aliasing the view), for a
// snapshot that keeps each page's width.
func (v *PagesView) Page(k int) (w uint, b []byte) {
	p := &v.pages[k]
	return uint(p.w), p.b[:size(min(PageLen, v.n-k<<PageBits), uint(p.w))]
}

// PagesFromPages returns an array of n values from pages of the given
// widths and bytes (copied), as Page gave them; ok is false when the
// pages do not make n values, a width is not a width, or a page's bytes
// are not its values' length.
func PagesFromPages(n int, ws []uint, bs [][]byte) (a Pages, ok bool) {
	if n < 0 || len(ws) != len(bs) || len(ws) != (n+PageLen-1)/PageLen {
		return Pages{}, false
	}
	a = Pages{n: n, pages: make([]page, len(ws)), epochs: make([]uint64, len(ws))}
	for k, w := range ws {
		switch w {
		case 2, 4, 8, 16, 24, 32:
		default:
			return Pages{}, false
		}
		m := min(PageLen, n-k<<PageBits)
		if len(bs[k]) != size(m, w) {
			return Pages{}, false
		}
		pb := make([]byte, size(m, w))
		copy(pb, bs[k])
		a.pages[k] = page{b: pb, w: uint32(w), mask: maskOf(w)}
	}
	return a, true
}
