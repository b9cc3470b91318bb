// Package packed holds a growable array of unsigned integers in the fewest
// bits (2, 4, 8, 16, 24 or 32) that fit the largest value stored so far. A
// graph of a million nodes keeps its node indices in 3 bytes instead of 4,
// and a handful of edge types in 2 bits instead of 2 bytes. The array widens
// itself, copying once per width, when a larger value arrives.
package packed

import "encoding/binary"

// pad bytes follow the values so that Get and put can always move a whole
// 8-byte word, one formula for every width.
const pad = 7

// Uints is the array. The zero value is empty and ready.
type Uints struct {
	b    []byte // the values, then pad zero bytes
	w    uint   // bits per value; 0 until a value arrives
	mask uint32 // 1<<w - 1
	n    int
}

// Make returns an array of n zeros, wide enough for values up to max.
func Make(n int, max uint32) Uints {
	w := width(max)
	return Uints{b: make([]byte, size(n, w)+pad), w: w, mask: maskOf(w), n: n}
}

func width(v uint32) uint {
	switch {
	case v < 1<<2:
		return 2
	case v < 1<<4:
		return 4
	case v < 1<<8:
		return 8
	case v < 1<<16:
		return 16
	case v < 1<<24:
		return 24
	}
	return 32
}

func maskOf(w uint) uint32 { return uint32(uint64(1)<<w - 1) }

// size returns the bytes that n values of w bits take.
func size(n int, w uint) int { return (n*int(w) + 7) / 8 }

// Len returns the number of values.
func (a *Uints) Len() int { return a.n }

// Bytes returns the memory the array holds.
func (a *Uints) Bytes() int { return cap(a.b) }

// Get returns value i.
func (a *Uints) Get(i int) uint32 {
	bit := uint(i) * a.w
	return uint32(binary.LittleEndian.Uint64(a.b[bit>>3:])>>(bit&7)) & a.mask
}

// Set stores v at i (< Len), widening the array when v needs it.
func (a *Uints) Set(i int, v uint32) {
	if w := width(v); w > a.w {
		a.widen(w)
	}
	a.put(i, v)
}

func (a *Uints) put(i int, v uint32) {
	bit := uint(i) * a.w
	p, s := a.b[bit>>3:], bit&7
	x := binary.LittleEndian.Uint64(p)
	binary.LittleEndian.PutUint64(p, x&^(uint64(a.mask)<<s)|uint64(v)<<s)
}

// Append adds v at the end.
func (a *Uints) Append(v uint32) {
	if w := width(v); w > a.w {
		a.widen(w)
	}
	a.n++
	for len(a.b) < size(a.n, a.w)+pad {
		a.b = append(a.b, 0)
	}
	a.put(a.n-1, v)
}

func (a *Uints) widen(w uint) {
	c := 0
	if a.w > 0 {
		c = size(cap(a.b)*8/int(a.w), w)
	}
	n := size(a.n, w) + pad
	wider := Uints{b: make([]byte, n, max(n, c)), w: w, mask: maskOf(w), n: a.n}
	for i := range a.n {
		wider.put(i, a.Get(i))
	}
	*a = wider
}

// Clip drops spare capacity.
func (a *Uints) Clip() {
	if cap(a.b) > len(a.b) {
		a.b = append([]byte(nil), a.b...)
	}
}

// Raw returns the array's width in bits and its values' bytes (aliasing
// the array), for a snapshot.
func (a *Uints) Raw() (w uint, b []byte) {
	if a.w == 0 {
		return 0, nil
	}
	return a.w, a.b[:size(a.n, a.w)]
}

// FromRaw returns an array of n values of w bits copied from b, as Raw
// gave them; ok is false when w is not a width or b is not n values long.
func FromRaw(n int, w uint, b []byte) (a Uints, ok bool) {
	switch w {
	case 0:
		return Uints{}, n == 0 && len(b) == 0
	case 2, 4, 8, 16, 24, 32:
	default:
		return Uints{}, false
	}
	if n < 0 || len(b) != size(n, w) {
		return Uints{}, false
	}
	// Appending the pad to a full slice copies b once, clearing only the
	// pad (make then copy would clear it all first).
	buf := append(b[:len(b):len(b)], make([]byte, pad)...)
	return Uints{b: buf, w: w, mask: maskOf(w), n: n}, true
}

// Max returns the largest value (0 when empty).
func (a *Uints) Max() uint32 {
	m := uint32(0)
	for i := range a.n {
		m = max(m, a.Get(i))
	}
	return m
}
