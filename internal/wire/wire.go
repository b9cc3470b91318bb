// Package wire holds the primitives of the read model's binary snapshot: an
// appender's helpers and a bounds-checked Reader whose every length is
// checked against the input left, so that corrupt input yields an error,
// never a panic or an absurd allocation.
//
// Integers are uvarints; runs of uint32 and uint64 are a uvarint count then
// fixed-width little-endian values; byte strings a uvarint length then the
// bytes.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairn-graph/cairn/internal/packed"
)

// ErrCorrupt is what every Reader error wraps.
var ErrCorrupt = errors.New("corrupt")

// AppendUvarint appends v.
func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// AppendString appends len(s) and s.
func AppendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// AppendU32s appends len(v) and the values, 4 bytes each.
func AppendU32s(dst []byte, v []uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, x)
	}
	return dst
}

// AppendU64s appends len(v) and the values, 8 bytes each.
func AppendU64s(dst []byte, v []uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint64(dst, x)
	}
	return dst
}

// AppendBool appends b as one byte.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// Reader decodes from a byte slice. The first error sticks: later reads
// return zero values, and Err reports it.
type Reader struct {
	b    []byte
	size int // the input's total length, for offsets in errors
	what string
	err  error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b, size: len(b)} }

// Section names the part being read, for errors.
func (r *Reader) Section(what string) { r.what = what }

// Err returns the first error.
func (r *Reader) Err() error { return r.err }

// Len returns the bytes left.
func (r *Reader) Len() int { return len(r.b) }

// Offset returns the offset of the next byte in the input.
func (r *Reader) Offset() int { return r.size - len(r.b) }

// Failf records an error at the current offset, unless one is recorded.
func (r *Reader) Failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: offset %d: %s: %w", r.what, r.Offset(), fmt.Sprintf(format, args...), ErrCorrupt)
	}
	r.b = nil
}

// Uvarint reads a uvarint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.Failf("bad uvarint")
		return 0
	}
	r.b = r.b[k:]
	return v
}

// Int reads a uvarint that must be at most max.
func (r *Reader) Int(max int, what string) int {
	v := r.Uvarint()
	if max < 0 || v > uint64(max) {
		r.Failf("%s %d exceeds %d", what, v, max)
		return 0
	}
	return int(v)
}

// Count reads a count of items of at least size bytes each; it fails when
// the input left cannot hold them.
func (r *Reader) Count(size int, what string) int {
	v := r.Uvarint()
	if r.err == nil && v > uint64(len(r.b)/max(size, 1)) {
		r.Failf("%s count %d exceeds the %d bytes left", what, v, len(r.b))
		return 0
	}
	return int(v)
}

// Bool reads one byte that must be 0 or 1.
func (r *Reader) Bool() bool {
	b := r.Next(1)
	if b == nil {
		return false
	}
	if b[0] > 1 {
		r.Failf("bad bool %d", b[0])
	}
	return b[0] == 1
}

// Next returns the next n bytes (aliasing the input), or nil when fewer are
// left.
func (r *Reader) Next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.Failf("%d bytes wanted, %d left", n, len(r.b))
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

// Bytes reads a length and that many bytes (aliasing the input).
func (r *Reader) Bytes() []byte { return r.Next(r.Count(1, "byte")) }

// String reads a length and that many bytes as a string.
func (r *Reader) String() string { return string(r.Bytes()) }

// U32s reads a count and that many uint32 into a fresh slice (nil when 0).
func (r *Reader) U32s(what string) []uint32 {
	n := r.Count(4, what)
	b := r.Next(4 * n)
	if n == 0 || b == nil {
		return nil
	}
	v := make([]uint32, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return v
}

// U64s reads a count and that many uint64 into a fresh slice (nil when 0).
func (r *Reader) U64s(what string) []uint64 {
	n := r.Count(8, what)
	b := r.Next(8 * n)
	if n == 0 || b == nil {
		return nil
	}
	v := make([]uint64, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return v
}

// AppendPacked appends a packed array: its length, width and bytes.
func AppendPacked(dst []byte, a *packed.Uints) []byte {
	w, b := a.Raw()
	dst = binary.AppendUvarint(dst, uint64(a.Len()))
	dst = append(dst, byte(w))
	return append(dst, b...)
}

// Packed reads a packed array that AppendPacked wrote, into fresh memory.
func (r *Reader) Packed(what string) packed.Uints {
	n := r.Int(1<<32, what+" length")
	wb := r.Next(1)
	if wb == nil {
		return packed.Uints{}
	}
	w := uint(wb[0])
	sz := (n*int(w) + 7) / 8
	if r.Len() < sz {
		r.Failf("%s: %d values of %d bits need %d bytes, %d left", what, n, w, sz, r.Len())
		return packed.Uints{}
	}
	a, ok := packed.FromRaw(n, w, r.Next(sz))
	if !ok {
		r.Failf("%s: bad width %d for %d values", what, w, n)
	}
	return a
}

// AppendPackedView appends a view of a paged array in AppendPacked's
// format: the bytes a packed.Uints with the same values and history would
// give (its width is the widest page's).
func AppendPackedView(dst []byte, v *packed.PagesView) []byte {
	w := v.Width()
	dst = binary.AppendUvarint(dst, uint64(v.Len()))
	dst = append(dst, byte(w))
	return v.AppendBits(dst, w)
}

// PackedPages reads a packed array that AppendPacked or AppendPackedView
// wrote into a fresh paged array.
func (r *Reader) PackedPages(what string) packed.Pages {
	n := r.Int(1<<32, what+" length")
	wb := r.Next(1)
	if wb == nil {
		return packed.Pages{}
	}
	w := uint(wb[0])
	sz := (n*int(w) + 7) / 8
	if r.Len() < sz {
		r.Failf("%s: %d values of %d bits need %d bytes, %d left", what, n, w, sz, r.Len())
		return packed.Pages{}
	}
	a, ok := packed.PagesFromRaw(n, w, r.Next(sz))
	if !ok {
		r.Failf("%s: bad width %d for %d values", what, w, n)
	}
	return a
}

// AppendPages appends a view of a paged array page by page, each at its
// own width: the length, then per page its width (one byte) and bytes.
func AppendPages(dst []byte, v *packed.PagesView) []byte {
	dst = binary.AppendUvarint(dst, uint64(v.Len()))
	for k := range v.PageCount() {
		w, b := v.Page(k)
		dst = append(dst, byte(w))
		dst = append(dst, b...)
	}
	return dst
}

// Pages reads a paged array that AppendPages wrote into fresh memory.
func (r *Reader) Pages(what string) packed.Pages {
	n := r.Int(1<<32, what+" length")
	if r.Err() != nil {
		return packed.Pages{}
	}
	np := (n + packed.PageLen - 1) / packed.PageLen
	// Each page takes at least its width byte and a byte of values.
	if np > r.Len()/2 {
		r.Failf("%s: %d values need %d pages, %d bytes left", what, n, np, r.Len())
		return packed.Pages{}
	}
	ws := make([]uint, np)
	bs := make([][]byte, np)
	for k := range np {
		wb := r.Next(1)
		if wb == nil {
			return packed.Pages{}
		}
		w := uint(wb[0])
		switch w {
		case 2, 4, 8, 16, 24, 32:
		default:
			r.Failf("%s: page %d: bad width %d", what, k, w)
			return packed.Pages{}
		}
		m := min(packed.PageLen, n-k*packed.PageLen)
		sz := (m*int(w) + 7) / 8
		if r.Len() < sz {
			r.Failf("%s: page %d: %d values of %d bits need %d bytes, %d left", what, k, m, w, sz, r.Len())
			return packed.Pages{}
		}
		ws[k], bs[k] = w, r.Next(sz)
	}
	a, ok := packed.PagesFromPages(n, ws, bs)
	if !ok {
		r.Failf("%s: pages do not make %d values", what, n)
	}
	return a
}
