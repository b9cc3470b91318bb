package readmodel

import (
	"encoding/binary"
	"slices"

	"github.com/cairn-graph/cairn/internal/wire"
)

// bytePageBits sets the page size of pagedBytes: 64 KiB.
const (
	bytePageBits = 16
	bytePage     = 1 << bytePageBits
)

// pagedBytes is a growable byte array in fixed pages of bytePage bytes,
// copy-on-write: freeze returns a copy that shares the pages in O(pages)
// and moves the epoch on, and a page of an older epoch is copied before it
// is next written. The bytes lie at the offsets a plain slice would give
// them, so runs (the lists' uvarints) may cross a page end. The zero value
// is empty.
type pagedBytes struct {
	pages  [][]byte // all bytePage long but the last; cap bytePage
	epochs []uint64 // per page: the epoch it was made in
	n      int
	epoch  uint64
}

// len returns the length.
func (a *pagedBytes) len() int { return a.n }

// at returns byte i (< len).
func (a *pagedBytes) at(i int) byte { return a.pages[i>>bytePageBits][i&(bytePage-1)] }

// uvarint decodes the uvarint at offset i (< len) and returns it and its
// length; k <= 0 when it is malformed or cut off by the end.
func (a *pagedBytes) uvarint(i int) (uint64, int) {
	if i < 0 || i >= a.n {
		return 0, 0
	}
	p := a.pages[i>>bytePageBits][i&(bytePage-1):]
	if v, k := binary.Uvarint(p); k > 0 || len(p) >= binary.MaxVarintLen64 || i+len(p) == a.n {
		return v, k
	}
	// Cut by a page end: gather the bytes that follow.
	var buf [binary.MaxVarintLen64]byte
	m := copy(buf[:], p)
	for j := i + m; m < len(buf) && j < a.n; j++ {
		buf[m] = a.at(j)
		m++
	}
	return binary.Uvarint(buf[:m])
}

// own makes page k writable: a private copy when an older epoch made it.
func (a *pagedBytes) own(k int) []byte {
	if a.epochs[k] != a.epoch {
		a.pages[k] = append(make([]byte, 0, bytePage), a.pages[k]...)
		a.epochs[k] = a.epoch
	}
	return a.pages[k]
}

// set stores byte v at i (< len).
func (a *pagedBytes) set(i int, v byte) { a.own(i >> bytePageBits)[i&(bytePage-1)] = v }

// write copies b to offset i; i+len(b) <= len.
func (a *pagedBytes) write(i int, b []byte) {
	for len(b) > 0 {
		k := copy(a.own(i >> bytePageBits)[i&(bytePage-1):], b)
		i, b = i+k, b[k:]
	}
}

// append adds b at the end.
func (a *pagedBytes) append(b ...byte) {
	for len(b) > 0 {
		if a.n&(bytePage-1) == 0 && a.n>>bytePageBits == len(a.pages) {
			a.pages = append(a.pages, make([]byte, 0, min(bytePage, max(len(b), 64))))
			a.epochs = append(a.epochs, a.epoch)
		}
		k := len(a.pages) - 1
		p := a.own(k)
		m := min(len(b), bytePage-len(p))
		if len(p)+m > cap(p) {
			// A short first page grows as append would, up to a page.
			p = append(make([]byte, 0, min(bytePage, max(2*cap(p), len(p)+m))), p...)
		}
		a.pages[k] = append(p, b[:m]...)
		a.n += m
		b = b[m:]
	}
}

// slice returns bytes [from, to) (to <= len): an alias of a page when
// they lie in one, else a copy in buf.
func (a *pagedBytes) slice(from, to int, buf []byte) []byte {
	if from == to {
		return nil
	}
	if k := from >> bytePageBits; k == (to-1)>>bytePageBits {
		return a.pages[k][from&(bytePage-1) : to-k<<bytePageBits]
	}
	buf = buf[:0]
	for from < to {
		p := a.pages[from>>bytePageBits][from&(bytePage-1):]
		p = p[:min(len(p), to-from)]
		buf = append(buf, p...)
		from += len(p)
	}
	return buf
}

// freeze returns a copy that never changes, whatever a does next.
func (a *pagedBytes) freeze() pagedBytes {
	f := pagedBytes{pages: make([][]byte, len(a.pages)), n: a.n}
	for k, p := range a.pages {
		f.pages[k] = p[:len(p):len(p)]
	}
	a.epoch++
	return f
}

// appendTo appends the bytes to dst.
func (a *pagedBytes) appendTo(dst []byte, step wire.Step) []byte {
	dst = slices.Grow(dst, a.n)
	done := 0
	for _, p := range a.pages {
		dst = append(dst, p...)
		if done += len(p); done >= 1<<20 {
			step.Do()
			done = 0
		}
	}
	return dst
}

// bytes returns the memory the array holds.
func (a *pagedBytes) bytes() int {
	n := 32 * cap(a.pages)
	for _, p := range a.pages {
		n += cap(p)
	}
	return n
}

// pagedOf returns an array holding a copy of b.
func pagedOf(b []byte) pagedBytes {
	var a pagedBytes
	for k := 0; k < len(b); k += bytePage {
		a.pages = append(a.pages, append(make([]byte, 0, min(bytePage, len(b)-k)), b[k:min(len(b), k+bytePage)]...))
		a.epochs = append(a.epochs, 0)
	}
	a.n = len(b)
	return a
}

// clip drops the last page's spare capacity.
func (a *pagedBytes) clip() {
	if k := len(a.pages) - 1; k >= 0 && cap(a.pages[k]) > len(a.pages[k]) {
		a.pages[k] = slices.Clip(slices.Clone(a.pages[k]))
		a.epochs[k] = a.epoch
	}
}
