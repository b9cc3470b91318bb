package aggregate

import "github.com/cairn-graph/cairn/internal/intern"

// names interns a set of strings that only grows (component types,
// categories, edge types) as dense ids from 0, in an intern table: no Go
// object per name.
type names struct{ t *intern.Table }

func newNames() names { return names{t: intern.New()} }

func (n names) lookup(s string) (uint32, bool) { return n.t.Lookup(s) }

// intern returns s's id, storing s if new.
func (n names) intern(s string) uint32 {
	if id, ok := n.t.Lookup(s); ok {
		return id
	}
	id := uint32(n.t.Cap())
	n.t.Set(id, s)
	return id
}

func (n names) name(id uint32) string { return n.t.String(id) }

func (n names) bytes() int { return n.t.Bytes() }

// ids is an intern table of node or edge ids that remembers its last two
// lookups: Decide looks ids up (an edge's two endpoints, say) and Apply
// looks them up again right after, so every second lookup costs a string
// comparison instead of a hash probe (a few cache misses at a million ids).
type ids struct {
	*intern.Table
	memo [2]memo
	next int
}

type memo struct {
	id    string
	idx   uint32
	found bool
	valid bool
}

func newIDs() ids { return ids{Table: intern.New()} }

// Lookup returns the index that holds id.
func (t *ids) Lookup(id string) (uint32, bool) {
	for k := range t.memo {
		if m := &t.memo[k]; m.valid && m.id == id {
			return m.idx, m.found
		}
	}
	i, ok := t.Table.Lookup(id)
	t.remember(memo{id, i, ok, true})
	return i, ok
}

func (t *ids) remember(m memo) {
	t.memo[t.next] = m
	t.next ^= 1
}

// Set stores id at index i (free; id not present).
func (t *ids) Set(i uint32, id string) {
	t.Table.Set(i, id)
	for k := range t.memo {
		if t.memo[k].id == id {
			t.memo[k].valid = false
		}
	}
	t.remember(memo{id, i, true, true})
}

// Delete frees index i.
func (t *ids) Delete(i uint32) {
	t.Table.Delete(i)
	t.memo = [2]memo{}
}
