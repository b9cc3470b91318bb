package adjacency

import (
	"maps"
	"slices"
)

// deltaPageBits sets how many consecutive nodes share a page of a delta.
const deltaPageBits = 12

// delta maps nodes to their ascending lists of edges added since the last
// compaction, in pages of 1<<deltaPageBits nodes, each a small map, so
// that it can be frozen in O(pages): freeze copies the page list and moves
// the epoch on, and a page of an older epoch is copied (its map, not the
// lists) before it is next written. The lists are shared: insertSorted
// never writes within a list's length. The zero value is empty.
type delta struct {
	pages []*deltaPage // nil where no node of the page has a list
	rows  int          // nodes with a list
	epoch uint64
}

type deltaPage struct {
	m     map[uint32][]uint32
	epoch uint64 // the delta's epoch when the page was made or copied
	// has marks the page's nodes that m holds a list for: most rows of a
	// traversal have none, and a bit test is cheaper than a map miss.
	has [1 << deltaPageBits / 64]uint64
}

func (p *deltaPage) mark(u uint32) {
	i := u & (1<<deltaPageBits - 1)
	p.has[i>>6] |= 1 << (i & 63)
}

// get returns node u's list (nil when none).
func (d *delta) get(u uint32) []uint32 {
	if k := int(u >> deltaPageBits); k < len(d.pages) && d.pages[k] != nil {
		p, i := d.pages[k], u&(1<<deltaPageBits-1)
		if p.has[i>>6]&(1<<(i&63)) == 0 {
			return nil
		}
		return p.m[u]
	}
	return nil
}

// insert adds edge e to node u's list.
func (d *delta) insert(u, e uint32) {
	k := int(u >> deltaPageBits)
	if k >= len(d.pages) {
		d.pages = slices.Grow(d.pages, k+1-len(d.pages))[:k+1]
	}
	p := d.pages[k]
	switch {
	case p == nil:
		p = &deltaPage{m: map[uint32][]uint32{}, epoch: d.epoch}
		d.pages[k] = p
	case p.epoch != d.epoch:
		p = &deltaPage{m: maps.Clone(p.m), epoch: d.epoch, has: p.has}
		d.pages[k] = p
	}
	l, ok := p.m[u]
	if !ok {
		d.rows++
		p.mark(u)
	}
	p.m[u] = insertSorted(l, e)
}

// set stores node u's list l (not empty), for a reader.
func (d *delta) set(u uint32, l []uint32) {
	k := int(u >> deltaPageBits)
	if k >= len(d.pages) {
		d.pages = slices.Grow(d.pages, k+1-len(d.pages))[:k+1]
	}
	if d.pages[k] == nil {
		d.pages[k] = &deltaPage{m: map[uint32][]uint32{}, epoch: d.epoch}
	}
	if _, ok := d.pages[k].m[u]; !ok {
		d.rows++
		d.pages[k].mark(u)
	}
	d.pages[k].m[u] = l
}

// freeze returns a copy of d that never changes, whatever d does next.
func (d *delta) freeze() delta {
	f := delta{pages: slices.Clone(d.pages), rows: d.rows}
	d.epoch++
	return f
}

// each calls f with every node's list, in no order.
func (d *delta) each(f func(u uint32, l []uint32)) {
	for _, p := range d.pages {
		if p != nil {
			for u, l := range p.m {
				f(u, l)
			}
		}
	}
}

// sorted calls f with every node's list, by node, and page (unless nil)
// after each page.
func (d *delta) sorted(f func(u uint32, l []uint32), page func()) {
	var us []uint32
	for _, p := range d.pages {
		if p != nil {
			us = slices.AppendSeq(us[:0], maps.Keys(p.m))
			slices.Sort(us)
			for _, u := range us {
				f(u, p.m[u])
			}
			if page != nil {
				page()
			}
		}
	}
}
