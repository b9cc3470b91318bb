// Package offheap lends big byte buffers that live outside the Go heap, for
// snapshot encodings: a Pool maps each buffer once and lends it again and
// again, its pages still mapped.
//
// A snapshot of the 1M-node, 3M-edge read model is a 100 MB buffer, and so
// is the graph's aggregate. Allocated on the Go heap for every snapshot
// round, such a buffer starts a garbage collection of its own (the heap
// passes its goal at once), is faulted in page by page (25,000 faults, slow
// on a virtual machine whose host backs guest memory lazily), and raises
// the next goal by its size until it is freed. In a traced mixed run the
// round's first encoding held its CPU for 248 ms while the collection it
// had started held the other: every query waited. A buffer from a Pool
// costs none of that after its first use, and the memory it holds is what
// a snapshot round held anyway (the runtime keeps freed heap for reuse).
//
//	buf := pool.Get(f.SizeHint())
//	data := f.AppendSnapshot(buf)
//	store(data)        // must not keep data
//	pool.Put(buf)      // buf, not data: data may have grown elsewhere
//
// A buffer must not be used once it is given back: Put may unmap it, and a
// read of an unmapped buffer kills the process. On systems without mmap
// (not unix) the buffers are ordinary heap slices.
package offheap

import (
	"slices"
	"sync"
)

// Min is the smallest buffer a Pool maps: below it Get returns nil, which
// append grows on the heap as usual.
const Min = 1 << 20

// Pool lends buffers of at least Min bytes. Its methods are safe for
// concurrent use; a nil *Pool lends nothing (Get returns nil).
type Pool struct {
	mu   sync.Mutex
	free [][]byte // mapped, not lent; smallest first
	keep int
	lent int64 // bytes lent and not given back
	held int64 // bytes mapped, lent or free
}

// New returns a Pool that keeps at most keep buffers mapped while none of
// them is lent (the rest are unmapped as they come back). Snapshot rounds
// encode one or two big snapshots at a time (pace.Gate's slots): 2 is
// enough.
func New(keep int) *Pool { return &Pool{keep: max(keep, 1)} }

// Get returns an empty buffer with room for at least n bytes: a free one,
// or a fresh mapping of n bytes and an eighth more (for the next, larger
// snapshot), rounded up to a MiB. For n below Min it returns nil.
func (p *Pool) Get(n int) []byte {
	if p == nil || n < Min {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range p.free {
		if cap(b) >= n {
			p.free = slices.Delete(p.free, i, i+1)
			p.lent += int64(cap(b))
			return b[:0]
		}
	}
	size := (n + n/8 + Min - 1) / Min * Min
	b, err := mapBytes(size)
	if err != nil {
		return nil // append grows it on the heap
	}
	p.lent += int64(size)
	p.held += int64(size)
	return b[:0]
}

// Put gives back a buffer that Get returned (its length does not matter;
// nil does nothing). The caller must not use it, nor any slice of it, again.
func (p *Pool) Put(b []byte) {
	if p == nil || b == nil {
		return
	}
	b = b[:0:cap(b)]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lent -= int64(cap(b))
	at, _ := slices.BinarySearchFunc(p.free, cap(b), func(x []byte, n int) int { return cap(x) - n })
	p.free = slices.Insert(p.free, at, b)
	for len(p.free) > p.keep {
		// Unmap the smallest: the next big snapshot needs the big ones.
		p.held -= int64(cap(p.free[0]))
		unmapBytes(p.free[0])
		p.free = p.free[1:]
	}
}

// Stats reports the bytes lent and not given back, and the bytes mapped in
// all (lent or free).
func (p *Pool) Stats() (lent, held int64) {
	if p == nil {
		return 0, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lent, p.held
}
