package intern

import (
	"encoding/binary"

	"github.com/cairn-graph/cairn/internal/wire"
)

// arenaPageBits sets the arena's page size: 64 KiB.
const (
	arenaPageBits = 16
	arenaPage     = 1 << arenaPageBits
	// minArenaAlloc is the smallest allocation of a page; a page's
	// allocation doubles from it up to arenaPage as entries come.
	minArenaAlloc = 256
)

// arena holds the encoded entries at offsets that never change, in pages
// of arenaPage bytes that are only ever appended to: growing it never
// copies more than one page (where append would copy the whole arena),
// and a frozen copy of the page list stays valid however the arena grows,
// so that Freeze shares the pages. A compaction builds a new arena.
//
// pages[k] starts at offset k*arenaPage and holds at least every entry
// that starts in page k whole: an entry that crosses the end of its page
// is appended to a new allocation that takes the start of the page with
// it, and the pages it reaches into alias that allocation. The last page
// ends at n; the others hold at least arenaPage bytes.
type arena struct {
	pages [][]byte
	n     int
}

// len returns the arena's length in bytes.
func (a *arena) len() int { return a.n }

// at returns the bytes from offset o to the end of o's entry, at least.
func (a *arena) at(o uint32) []byte { return a.pages[o>>arenaPageBits][o&(arenaPage-1):] }

// entry returns the encoded entry at offset o.
func (a *arena) entry(o uint32) []byte {
	b := a.at(o)
	return b[:entryLen(b)]
}

// append adds entry b at the end and returns its offset.
func (a *arena) append(b []byte) uint32 {
	o := uint32(a.n)
	last := len(a.pages) - 1
	if last < 0 || a.n == (last+1)*arenaPage {
		// The last page is full: start one.
		a.pages = append(a.pages, nil)
		last++
	}
	cur := a.pages[last]
	if len(cur)+len(b) <= cap(cur) {
		a.pages[last] = append(cur, b...)
		a.n += len(b)
		return o
	}
	// A new allocation for the page, taking the page's start with it: up
	// to the page boundary after b ends when b crosses it, else twice the
	// last (at least minArenaAlloc, at most the page), so that a small
	// table (one of a graph of a few nodes) does not hold a whole page.
	need := len(cur) + len(b)
	size := (need + arenaPage - 1) &^ (arenaPage - 1)
	if need <= arenaPage {
		size = min(arenaPage, max(need, 2*cap(cur), minArenaAlloc))
	}
	nb := make([]byte, len(cur), size)
	copy(nb, cur)
	nb = append(nb, b...)
	a.pages[last] = nb
	for k := arenaPage; k < len(nb); k += arenaPage {
		a.pages = append(a.pages, nb[k:])
	}
	a.n += len(b)
	return o
}

// frozen returns a copy of the arena whose bytes never change: the page
// list is copied, the pages shared, as appends only write past their ends.
func (a *arena) frozen() arena {
	pages := make([][]byte, len(a.pages))
	for k, p := range a.pages {
		pages[k] = p[:len(p):len(p)]
	}
	return arena{pages: pages, n: a.n}
}

// bytes returns the memory the arena holds.
func (a *arena) bytes() int {
	n := 24 * cap(a.pages)
	for _, p := range a.pages {
		n += min(cap(p), arenaPage)
	}
	return n
}

// appendTo appends the arena's length and bytes to dst, as
// wire.AppendBytes of the contiguous arena would.
func (a *arena) appendTo(dst []byte, step wire.Step) []byte {
	dst = binary.AppendUvarint(dst, uint64(a.n))
	for k, p := range a.pages {
		dst = append(dst, p[:min(arenaPage, a.n-k*arenaPage)]...)
		if (k+1)%arenaStepPages == 0 {
			step.Do()
		}
	}
	return dst
}

// arenaStepPages is how many pages appendTo copies between steps: a MiB.
const arenaStepPages = 1 << 20 / arenaPage

// arenaOf returns an arena holding a copy of b, which need not keep
// entries within pages: each page runs to b's end.
func arenaOf(b []byte) arena {
	if len(b) == 0 {
		return arena{}
	}
	buf := append([]byte(nil), b...)
	a := arena{n: len(buf)}
	for k := 0; k < len(buf); k += arenaPage {
		a.pages = append(a.pages, buf[k:])
	}
	return a
}
