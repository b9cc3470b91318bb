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
//
// A compaction can run in the background (Begin, then Finish): Begin
// freezes the delta so far and builds the new arrays on another goroutine
// from data nobody writes any more, while Add and Remove go on into a fresh
// delta and reads merge the old arrays, the frozen delta and the fresh one.
// Finish swaps the new arrays in. Only Finish may wait, so a caller that
// finishes at a fixed point (say, after so many more changes) gets the same
// answers whatever the goroutine's timing.
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
	offs   packed.Uints        // len nodes+1
	ents   packed.Uints        // edge indices, in the fewest bits that hold them
	frozen map[uint32][]uint32 // node -> edges a running compaction folds in; nil when none runs
	added  map[uint32][]uint32 // node -> edges added since then
}

// Index holds both directions.
type Index struct {
	dir    [2]rows
	dead   []uint64 // bitset of edge indices removed and not yet compacted away
	nAdded int
	nDead  int
	epoch  uint64
	job    *compaction // the running compaction, nil when none
}

// compaction is a background build of fresh CSR arrays.
type compaction struct {
	done          chan struct{}
	dead          []uint64 // the removals it folds in
	nAdded, nDead int      // the changes it folds in
	out           [2]struct{ offs, ents packed.Uints }
}

// New returns an empty index.
func New() *Index {
	x := &Index{}
	for d := range x.dir {
		x.dir[d] = rows{offs: packed.Make(1, 0), added: map[uint32][]uint32{}}
	}
	return x
}

// Epoch returns the number of compactions finished so far.
func (x *Index) Epoch() uint64 { return x.epoch }

// Delta returns the number of entries added plus removed that no
// compaction, finished or running, has taken up yet.
func (x *Index) Delta() int {
	n := x.nAdded + x.nDead
	if x.job != nil {
		n -= x.job.nAdded + x.job.nDead
	}
	return n
}

// Compacting reports whether a compaction runs (Begin without Finish).
func (x *Index) Compacting() bool { return x.job != nil }

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

// Dead reports whether edge e was removed and not yet compacted away.
func (x *Index) Dead(e uint32) bool { return isDead(x.dead, e) }

func isDead(dead []uint64, e uint32) bool {
	w := int(e / 64)
	return w < len(dead) && dead[w]&(1<<(e%64)) != 0
}

// csrRow returns the bounds of node u's row in the CSR arrays.
func (r *rows) csrRow(u uint32) (start, end int) {
	if int(u)+1 < r.offs.Len() {
		return int(r.offs.Get(int(u))), int(r.offs.Get(int(u) + 1))
	}
	return 0, 0
}

// Len returns the number of positions in node u's row, dead ones included.
func (x *Index) Len(d Dir, u uint32) int {
	r := &x.dir[d]
	start, end := r.csrRow(u)
	return end - start + len(r.frozen[u]) + len(r.added[u])
}

// Scan calls f with each position from pos on in node u's row and the edge
// there, dead ones skipped, until f returns false: the CSR part, then the
// frozen delta, then the fresh one. Positions hold only while the index
// does not change.
func (x *Index) Scan(d Dir, u uint32, pos int, f func(pos int, e uint32) bool) {
	r := &x.dir[d]
	start, end := r.csrRow(u)
	for ; pos < end-start; pos++ {
		if e := r.ents.Get(start + pos); !x.Dead(e) && !f(pos, e) {
			return
		}
	}
	base := end - start
	for _, part := range [2][]uint32{r.frozen[u], r.added[u]} {
		for ; pos-base < len(part); pos++ {
			if e := part[pos-base]; !x.Dead(e) && !f(pos, e) {
				return
			}
		}
		base += len(part)
	}
}

// ScanFrom calls f with each live edge of node u's row whose index is at
// least from, in ascending index order, until f returns false.
func (x *Index) ScanFrom(d Dir, u uint32, from uint32, f func(e uint32) bool) {
	r := &x.dir[d]
	scanFrom(&r.ents, r.offs, r.frozen[u], r.added[u], u, from, x.dead, f)
}

// scanFrom merges, in ascending order from index from, the CSR row of u and
// the sorted lists a and b, skipping the edges in dead.
func scanFrom(ents *packed.Uints, offs packed.Uints, a, b []uint32, u, from uint32, dead []uint64, f func(e uint32) bool) {
	i, end := 0, 0
	if int(u)+1 < offs.Len() {
		start := int(offs.Get(int(u)))
		end = int(offs.Get(int(u) + 1))
		i = start + sort.Search(end-start, func(k int) bool { return ents.Get(start+k) >= from })
	}
	j, _ := slices.BinarySearch(a, from)
	k, _ := slices.BinarySearch(b, from)
	const none = ^uint32(0)
	for {
		c, e := 0, none
		if i < end {
			c, e = 1, ents.Get(i)
		}
		if j < len(a) && a[j] < e {
			c, e = 2, a[j]
		}
		if k < len(b) && b[k] < e {
			c, e = 3, b[k]
		}
		switch c {
		case 0:
			return
		case 1:
			i++
		case 2:
			j++
		case 3:
			k++
		}
		if !isDead(dead, e) && !f(e) {
			return
		}
	}
}

// Compact folds the whole delta into fresh CSR arrays for nodes [0, nodes)
// now and returns the edge indices that died since the last compaction,
// now free for reuse.
func (x *Index) Compact(nodes int) (freed []uint32) {
	if x.job != nil {
		freed = x.Finish()
	}
	x.Begin(nodes)
	return append(freed, x.Finish()...)
}

// Begin starts a compaction of the delta so far for nodes [0, nodes) on
// another goroutine; it does nothing when one runs already.
func (x *Index) Begin(nodes int) {
	if x.job != nil {
		return
	}
	job := &compaction{done: make(chan struct{}), dead: slices.Clone(x.dead), nAdded: x.nAdded, nDead: x.nDead}
	var in [2]rows
	for d := range x.dir {
		r := &x.dir[d]
		r.frozen, r.added = r.added, map[uint32][]uint32{}
		in[d] = *r
	}
	x.job = job
	go func() {
		defer close(job.done)
		for d := range in {
			job.out[d].offs, job.out[d].ents = build(in[d], job.dead, nodes)
		}
	}()
}

// build returns the CSR arrays of r's rows and frozen delta without the
// edges in dead.
func build(r rows, dead []uint64, nodes int) (packed.Uints, packed.Uints) {
	offs := make([]uint32, nodes+1)
	old := r.offs.Len() - 1 // nodes the old arrays cover
	maxEdge := uint32(0)
	for u := 0; u < min(old, nodes); u++ {
		n := uint32(0)
		for k := r.offs.Get(u); k < r.offs.Get(u+1); k++ {
			if e := r.ents.Get(int(k)); !isDead(dead, e) {
				n++
				maxEdge = max(maxEdge, e)
			}
		}
		offs[u+1] = n
	}
	for u, add := range r.frozen {
		if int(u) >= nodes {
			continue
		}
		for _, e := range add {
			if !isDead(dead, e) {
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
		if add := r.frozen[uint32(u)]; add == nil && u < old {
			// Only the old row: copy its live entries.
			for k := r.offs.Get(u); k < r.offs.Get(u+1); k++ {
				if e := r.ents.Get(int(k)); !isDead(dead, e) {
					ents.Set(i, e)
					i++
				}
			}
			continue
		}
		scanFrom(&r.ents, r.offs, r.frozen[uint32(u)], nil, uint32(u), 0, dead, func(e uint32) bool { ents.Set(i, e); i++; return true })
	}
	poffs := packed.Make(nodes+1, offs[nodes])
	for u, o := range offs {
		poffs.Set(u, o)
	}
	return poffs, ents
}

// Finish waits for the running compaction, swaps its arrays in and returns
// the edge indices it compacted away, now free for reuse; nil when none
// runs.
func (x *Index) Finish() (freed []uint32) {
	job := x.job
	if job == nil {
		return nil
	}
	<-job.done
	for d := range x.dir {
		r := &x.dir[d]
		r.offs, r.ents, r.frozen = job.out[d].offs, job.out[d].ents, nil
	}
	for w, word := range job.dead {
		x.dead[w] &^= word
		for ; word != 0; word &= word - 1 {
			freed = append(freed, uint32(w*64+bits.TrailingZeros64(word)))
		}
	}
	x.nAdded -= job.nAdded
	x.nDead -= job.nDead
	x.epoch++
	x.job = nil
	return freed
}
