// Package adjacency stores the out- and in-edges of a graph as compressed
// sparse rows (CSR: one offset per node and one edge index per entry) plus a
// small mutable delta: per-node append lists for edges added since the last
// compaction and a bitset of edges removed since then. Compact folds the delta
// into fresh CSR arrays.
//
// Entries are dense edge indices; the caller keeps each edge's endpoints. An
// edge index removed here must not be reused until after the next Compact,
// since dead entries stay in place until then.
//
// Both parts of a row are kept in ascending edge-index order (Add inserts
// in place, Compact merges), so ScanFrom can walk a row in index order from
// any edge index: a cursor that holds the last index it returned resumes
// correctly across any writes and compactions, since a live edge keeps its
// index. Positions (Scan) are stable only while the index does not change.
// Epoch counts the compactions.
package adjacency

import (
	"math/bits"
	"slices"
	"sort"

	"github.com/cairn-graph/cairn/readmodel/internal/packed"
)

// Dir selects a direction.
type Dir uint8

// Directions.
const (
	Out Dir = iota
	In
)

type rows struct {
	offs  packed.Uints        // len nodes+1
	ents  packed.Uints        // edge indices, in the fewest bits that hold them
	added map[uint32][]uint32 // node -> edges appended since the last compaction
}

// Index holds both directions.
type Index struct {
	dir    [2]rows
	dead   []uint64 // bitset of edge indices removed since the last compaction
	nAdded int
	nDead  int
	epoch  uint64
}

// New returns an empty index.
func New() *Index {
	x := &Index{}
	for d := range x.dir {
		x.dir[d] = rows{offs: packed.Make(1, 0), added: map[uint32][]uint32{}}
	}
	return x
}

// Epoch returns the number of compactions so far.
func (x *Index) Epoch() uint64 { return x.epoch }

// Delta returns the number of entries added plus removed since the last compaction.
func (x *Index) Delta() int { return x.nAdded + x.nDead }

// Bytes returns the memory the CSR arrays and the dead bitset hold (the delta
// lists not counted).
func (x *Index) Bytes() int {
	n := 8 * cap(x.dead)
	for _, r := range x.dir {
		n += r.offs.Bytes() + r.ents.Bytes()
	}
	return n
}

// Add records edge e from src to dst.
func (x *Index) Add(e, src, dst uint32) {
	x.dir[Out].added[src] = insertSorted(x.dir[Out].added[src], e)
	x.dir[In].added[dst] = insertSorted(x.dir[In].added[dst], e)
	x.nAdded++
}

// insertSorted inserts e into the ascending list l; new edges mostly carry
// the highest index yet, so the common case is an append.
func insertSorted(l []uint32, e uint32) []uint32 {
	if n := len(l); n == 0 || l[n-1] < e {
		return append(l, e)
	}
	i, _ := slices.BinarySearch(l, e)
	return slices.Insert(l, i, e)
}

// Remove marks edge e dead.
func (x *Index) Remove(e uint32) {
	w := int(e / 64)
	for w >= len(x.dead) {
		x.dead = append(x.dead, 0)
	}
	x.dead[w] |= 1 << (e % 64)
	x.nDead++
}

// Dead reports whether edge e was removed since the last compaction.
func (x *Index) Dead(e uint32) bool {
	w := int(e / 64)
	return w < len(x.dead) && x.dead[w]&(1<<(e%64)) != 0
}

// Len returns the number of positions in node u's row, dead ones included.
func (x *Index) Len(d Dir, u uint32) int {
	r := &x.dir[d]
	n := len(r.added[u])
	if int(u)+1 < r.offs.Len() {
		n += int(r.offs.Get(int(u)+1) - r.offs.Get(int(u)))
	}
	return n
}

// Scan calls f with each position from pos on in node u's row and the edge
// there, dead ones skipped, until f returns false.
func (x *Index) Scan(d Dir, u uint32, pos int, f func(pos int, e uint32) bool) {
	r := &x.dir[d]
	base := 0
	if int(u)+1 < r.offs.Len() {
		start, end := int(r.offs.Get(int(u))), int(r.offs.Get(int(u)+1))
		for ; pos < end-start; pos++ {
			if e := r.ents.Get(start + pos); !x.Dead(e) && !f(pos, e) {
				return
			}
		}
		base = end - start
	}
	add := r.added[u]
	for ; pos-base < len(add); pos++ {
		if e := add[pos-base]; !x.Dead(e) && !f(pos, e) {
			return
		}
	}
}

// ScanFrom calls f with each live edge of node u's row whose index is at
// least from, in ascending index order, until f returns false.
func (x *Index) ScanFrom(d Dir, u uint32, from uint32, f func(e uint32) bool) {
	r := &x.dir[d]
	i, end := 0, 0
	if int(u)+1 < r.offs.Len() {
		start := int(r.offs.Get(int(u)))
		end = int(r.offs.Get(int(u) + 1))
		i = start + sort.Search(end-start, func(k int) bool { return r.ents.Get(start+k) >= from })
	}
	add := r.added[u]
	j, _ := slices.BinarySearch(add, from)
	for i < end || j < len(add) {
		var e uint32
		if j == len(add) || (i < end && r.ents.Get(i) < add[j]) {
			e, i = r.ents.Get(i), i+1
		} else {
			e, j = add[j], j+1
		}
		if !x.Dead(e) && !f(e) {
			return
		}
	}
}

// Compact folds the delta into fresh CSR arrays for nodes [0, nodes) and
// returns the edge indices that died since the last compaction, now free for
// reuse. It walks the old arrays once per direction to count and once to
// fill, looking at the delta lists only for the nodes that have one.
func (x *Index) Compact(nodes int) (freed []uint32) {
	for d := range x.dir {
		r := &x.dir[d]
		// Count the live entries per node: old row minus dead, plus added.
		offs := make([]uint32, nodes+1)
		old := r.offs.Len() - 1 // nodes the old CSR covers
		maxEdge := uint32(0)
		var start uint32
		if old >= 0 {
			start = r.offs.Get(0)
		}
		for u := 0; u < nodes; u++ {
			n := uint32(0)
			if u < old {
				end := r.offs.Get(u + 1)
				for i := start; i < end; i++ {
					if e := r.ents.Get(int(i)); !x.Dead(e) {
						n++
						maxEdge = max(maxEdge, e)
					}
				}
				start = end
			}
			offs[u+1] = n
		}
		for u, add := range r.added {
			if int(u) >= nodes {
				continue
			}
			for _, e := range add {
				if !x.Dead(e) {
					offs[u+1]++
					maxEdge = max(maxEdge, e)
				}
			}
		}
		for u := range nodes {
			offs[u+1] += offs[u]
		}
		ents := packed.Make(int(offs[nodes]), maxEdge)
		for u := 0; u < nodes; u++ {
			if offs[u] == offs[u+1] {
				continue
			}
			i := int(offs[u])
			if len(r.added) == 0 || r.added[uint32(u)] == nil {
				// Only the old row: copy its live entries.
				if u < old {
					for k := r.offs.Get(u); k < r.offs.Get(u+1); k++ {
						if e := r.ents.Get(int(k)); !x.Dead(e) {
							ents.Set(i, e)
							i++
						}
					}
				}
				continue
			}
			x.ScanFrom(Dir(d), uint32(u), 0, func(e uint32) bool { ents.Set(i, e); i++; return true })
		}
		poffs := packed.Make(nodes+1, offs[nodes])
		for u, o := range offs {
			poffs.Set(u, o)
		}
		*r = rows{offs: poffs, ents: ents, added: map[uint32][]uint32{}}
	}
	for w, word := range x.dead {
		for ; word != 0; word &= word - 1 {
			freed = append(freed, uint32(w*64+bits.TrailingZeros64(word)))
		}
	}
	x.dead = x.dead[:0]
	x.nAdded, x.nDead = 0, 0
	x.epoch++
	return freed
}
