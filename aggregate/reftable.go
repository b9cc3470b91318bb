package aggregate

import (
	"github.com/cairn-graph/cairn/internal/intern"
	"github.com/cairn-graph/cairn/internal/packed"
)

// refTable stores each distinct key once (a flyweight) under a dense handle,
// with a reference count, in an intern table: no Go object per entry. A key
// whose last reference goes is deleted at once, or, while its owner records
// changes for rollback (hold), at settle: a rollback may take it back.
type refTable struct {
	t    *intern.Table
	refs packed.Pages
	free []uint32
	// zero holds handles that lost their last reference while held.
	zero []uint32
}

func newRefTable() refTable { return refTable{t: intern.New()} }

// acquire returns key's handle, storing key if new, and counts one more
// reference.
func (r *refTable) acquire(key string) uint32 {
	if h, ok := r.t.Lookup(key); ok {
		r.refs.Set(int(h), r.refs.Get(int(h))+1)
		return h
	}
	var h uint32
	if n := len(r.free); n > 0 {
		h, r.free = r.free[n-1], r.free[:n-1]
	} else {
		h = uint32(r.t.Cap())
	}
	r.t.Set(h, key)
	for r.refs.Len() <= int(h) {
		r.refs.Append(0)
	}
	r.refs.Set(int(h), 1)
	return h
}

// retain counts one more reference to a handle that is stored (its count
// may be zero while held).
func (r *refTable) retain(h uint32) { r.refs.Set(int(h), r.refs.Get(int(h))+1) }

// release drops one reference; with the last, the key is deleted now or,
// when hold, at the next settle.
func (r *refTable) release(h uint32, hold bool) {
	n := r.refs.Get(int(h)) - 1
	r.refs.Set(int(h), n)
	if n > 0 {
		return
	}
	if hold {
		r.zero = append(r.zero, h)
		return
	}
	r.drop(h)
}

func (r *refTable) drop(h uint32) {
	r.t.Delete(h)
	r.free = append(r.free, h)
}

// settle deletes the held keys that still have no reference.
func (r *refTable) settle() {
	for _, h := range r.zero {
		if r.t.Has(h) && r.refs.Get(int(h)) == 0 {
			r.drop(h)
		}
	}
	r.zero = r.zero[:0]
}

// key returns the key of handle h.
func (r *refTable) key(h uint32) string { return r.t.String(h) }

// len counts the keys that are referenced: stored ones less those held
// without a reference until settle.
func (r *refTable) len() int {
	n := r.t.Len()
	if len(r.zero) == 0 {
		return n
	}
	seen := make(map[uint32]struct{}, len(r.zero))
	for _, h := range r.zero {
		if _, dup := seen[h]; !dup && r.t.Has(h) && r.refs.Get(int(h)) == 0 {
			seen[h] = struct{}{}
			n--
		}
	}
	return n
}

func (r *refTable) bytes() int { return r.t.Bytes() + r.refs.Bytes() + 4*cap(r.free) }
