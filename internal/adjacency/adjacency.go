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
	"context"
	"fmt"
	"math/bits"
	"slices"
	"sort"

	"github.com/cairn-graph/cairn/internal/pace"
	"github.com/cairn-graph/cairn/internal/packed"
	"github.com/cairn-graph/cairn/internal/wire"
)

// Dir selects a direction.
type Dir uint8

// Directions.
const (
	Out Dir = iota
	In
)

type rows struct {
	offs   packed.Uints // len nodes+1
	ents   packed.Uints // edge indices, in the fewest bits that hold them
	frozen delta        // node -> edges a running compaction folds in; empty when none runs
	added  delta        // node -> edges added since then
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
	nodes         int      // the node indices it covers
	dead          []uint64 // the removals it folds in
	nAdded, nDead int      // the changes it folds in
	out           [2]struct{ offs, ents packed.Uints }
	// hurry ends the compaction's pacing: a caller waits for it.
	hurry context.CancelFunc
	// folded: Fold swapped its arrays in early; Finish then only does the
	// bookkeeping (frees its dead edges, moves Delta on) at its own point.
	folded bool
}

// New returns an empty index.
func New() *Index {
	x := &Index{}
	for d := range x.dir {
		x.dir[d] = rows{offs: packed.Make(1, 0)}
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
	x.dir[Out].added.insert(src, e)
	x.dir[In].added.insert(dst, e)
	x.nAdded++
}

// insertSorted inserts e into the ascending list l; new edges mostly carry
// the highest index yet, so the common case is an append. It never writes
// within l's length, so that a frozen copy of the delta (Freeze) can share
// the lists: an insert in the middle makes a new list.
func insertSorted(l []uint32, e uint32) []uint32 {
	if n := len(l); n == 0 || l[n-1] < e {
		return append(l, e)
	}
	i, _ := slices.BinarySearch(l, e)
	return slices.Insert(l[:len(l):len(l)], i, e)
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
	return end - start + len(r.frozen.get(u)) + len(r.added.get(u))
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
	for _, part := range [2][]uint32{r.frozen.get(u), r.added.get(u)} {
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
	scanFrom(&r.ents, r.offs, r.frozen.get(u), r.added.get(u), u, from, x.dead, f)
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

// Fold folds the delta into the CSR arrays now, to give back the memory
// the delta maps hold, without changing anything a caller can see: removed
// edges stay marked dead (their indices are freed by the next compaction,
// as they would have been) and Delta stays as it was, so the compactions
// that follow start and finish at the same points as without the fold.
// A compaction that runs is waited for and its arrays swapped in, but it
// stays open: Finish frees its edges when the history says so.
func (x *Index) Fold(nodes int) {
	if j := x.job; j != nil && !j.folded {
		j.wait()
		for d := range x.dir {
			r := &x.dir[d]
			r.offs, r.ents, r.frozen = j.out[d].offs, j.out[d].ents, delta{}
			j.out[d].offs, j.out[d].ents = packed.Uints{}, packed.Uints{}
		}
		j.folded = true
	}
	for d := range x.dir {
		r := &x.dir[d]
		added := 0
		r.added.each(func(_ uint32, l []uint32) { added += len(l) })
		// A delta under 1/256 of the entries holds little memory (about
		// 0.5 MB per million edges), and rebuilding the arrays
		// costs O(edges): after a restore from a snapshot plus a short
		// tail, that would stall the first queries for nothing.
		if added*256 < r.ents.Len() && r.offs.Len() == nodes+1 {
			continue
		}
		r.frozen = r.added
		r.offs, r.ents = build(*r, x.dead, nodes, func() {})
		r.frozen, r.added = delta{}, delta{}
	}
}

// Begin starts a compaction of the delta so far for nodes [0, nodes) on
// another goroutine; it does nothing when one runs already.
func (x *Index) Begin(nodes int) { x.BeginPaced(nodes, nil) }

// BeginPaced is Begin with the compaction's work paced by gate (nil: not
// paced): it is O(nodes + edges) of background CPU that would otherwise
// take a CPU from queries for as long as it runs.
func (x *Index) BeginPaced(nodes int, gate *pace.Gate) {
	if x.job != nil {
		return
	}
	job := &compaction{done: make(chan struct{}), nodes: nodes, dead: slices.Clone(x.dead), nAdded: x.nAdded, nDead: x.nDead}
	for d := range x.dir {
		r := &x.dir[d]
		r.frozen, r.added = r.added, delta{}
	}
	x.start(job, gate)
}

// start runs job on another goroutine over the arrays and frozen delta the
// index holds now, which nobody changes until Finish; paced by gate when
// not nil.
func (x *Index) start(job *compaction, gate *pace.Gate) {
	in := [2]rows{x.dir[0], x.dir[1]}
	nodes := job.nodes
	x.job = job
	// Paced while nobody waits for it: once Finish or Fold does, ctx ends,
	// and the compaction stops waiting for a slot or sleeping.
	ctx, hurry := context.WithCancel(context.Background())
	job.hurry = hurry
	go func() {
		defer close(job.done)
		defer hurry()
		w, _ := gate.Begin(ctx) // nil (not paced) once hurried
		defer w.End()
		step := func() { _ = w.Step(ctx) }
		for d := range in {
			job.out[d].offs, job.out[d].ents = build(in[d], job.dead, nodes, step)
		}
	}()
}

// wait waits for the compaction, ending its pacing.
func (j *compaction) wait() {
	j.hurry()
	<-j.done
}

// buildStride is how many rows build goes through between two steps.
const buildStride = 1 << 14

// build returns the CSR arrays of r's rows and frozen delta without the
// edges in dead, calling step every buildStride rows of each pass.
func build(r rows, dead []uint64, nodes int, step func()) (packed.Uints, packed.Uints) {
	offs := make([]uint32, nodes+1)
	old := r.offs.Len() - 1 // nodes the old arrays cover
	maxEdge := uint32(0)
	for u := 0; u < min(old, nodes); u++ {
		if u%buildStride == buildStride-1 {
			step()
		}
		n := uint32(0)
		for k := r.offs.Get(u); k < r.offs.Get(u+1); k++ {
			if e := r.ents.Get(int(k)); !isDead(dead, e) {
				n++
				maxEdge = max(maxEdge, e)
			}
		}
		offs[u+1] = n
	}
	r.frozen.each(func(u uint32, add []uint32) {
		if int(u) >= nodes {
			return
		}
		for _, e := range add {
			if !isDead(dead, e) {
				offs[u+1]++
				maxEdge = max(maxEdge, e)
			}
		}
	})
	for u := range nodes {
		offs[u+1] += offs[u]
	}
	ents := packed.Make(int(offs[nodes]), maxEdge)
	for u := 0; u < nodes; u++ {
		if u%buildStride == buildStride-1 {
			step()
		}
		if offs[u] == offs[u+1] {
			continue
		}
		i := int(offs[u])
		if add := r.frozen.get(uint32(u)); add == nil && u < old {
			// Only the old row: copy its live entries.
			for k := r.offs.Get(u); k < r.offs.Get(u+1); k++ {
				if e := r.ents.Get(int(k)); !isDead(dead, e) {
					ents.Set(i, e)
					i++
				}
			}
			continue
		}
		scanFrom(&r.ents, r.offs, r.frozen.get(uint32(u)), nil, uint32(u), 0, dead, func(e uint32) bool { ents.Set(i, e); i++; return true })
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
	if !job.folded {
		job.wait()
		for d := range x.dir {
			r := &x.dir[d]
			r.offs, r.ents, r.frozen = job.out[d].offs, job.out[d].ents, delta{}
		}
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

// AppendSnapshot appends the index to dst as it stands: the CSR arrays, the
// delta and, when a compaction runs, its frozen delta and what it folds in,
// without waiting for it. ReadSnapshot starts that compaction again, so a
// restored index finishes it at the same point with the same result.
func (x *Index) AppendSnapshot(dst []byte) []byte { return x.Freeze().AppendSnapshot(dst) }

// Frozen is an immutable view of an Index as it was when Freeze returned
// it, for writing its snapshot while the index goes on changing.
type Frozen struct {
	epoch         uint64
	nAdded, nDead int
	dead          []uint64
	job           *compaction // only its inputs are read: nodes, counts, dead
	dir           [2]struct {
		offs, ents    packed.Uints
		added, frozen delta
	}
}

// Freeze returns an immutable view of the index. The CSR arrays are never
// written once built and the delta is paged copy-on-write, so it shares
// them and copies only the dead bitset: O(edges/64 + delta pages).
func (x *Index) Freeze() *Frozen {
	f := &Frozen{epoch: x.epoch, nAdded: x.nAdded, nDead: x.nDead, dead: slices.Clone(x.dead), job: x.job}
	for d := range x.dir {
		r := &x.dir[d]
		fd := &f.dir[d]
		fd.offs, fd.ents = r.offs, r.ents
		fd.added = r.added.freeze()
		// The frozen delta of a running compaction is never written.
		fd.frozen = r.frozen
	}
	return f
}

// Bytes returns about the size of the snapshot the view writes: the CSR
// arrays, the dead bitset and 12 bytes per delta row.
func (f *Frozen) Bytes() int {
	n := 8 * len(f.dead)
	for d := range f.dir {
		r := &f.dir[d]
		n += r.offs.Bytes() + r.ents.Bytes() + 12*(r.added.rows+r.frozen.rows)
	}
	return n
}

// AppendSnapshot appends what the index's AppendSnapshot would have
// appended when Freeze was called.
func (f *Frozen) AppendSnapshot(dst []byte) []byte { return f.AppendSnapshotPaced(dst, nil) }

// AppendSnapshotPaced is AppendSnapshot calling step (unless nil) after
// each array and each page of a delta (a delta of a 1M-node graph under
// writes is about 250 pages; sorting and writing all of them in one piece
// held a CPU for up to 20 ms).
func (f *Frozen) AppendSnapshotPaced(dst []byte, step wire.Step) []byte {
	dst = wire.AppendUvarint(dst, f.epoch)
	dst = wire.AppendUvarint(dst, uint64(f.nAdded))
	dst = wire.AppendUvarint(dst, uint64(f.nDead))
	dst = wire.AppendU64s(dst, f.dead)
	dst = wire.AppendBool(dst, f.job != nil)
	if j := f.job; j != nil {
		dst = wire.AppendUvarint(dst, uint64(j.nodes))
		dst = wire.AppendUvarint(dst, uint64(j.nAdded))
		dst = wire.AppendUvarint(dst, uint64(j.nDead))
		dst = wire.AppendU64s(dst, j.dead)
	}
	for d := range f.dir {
		r := &f.dir[d]
		dst = wire.AppendPacked(dst, &r.offs)
		step.Do()
		dst = wire.AppendPacked(dst, &r.ents)
		step.Do()
		dst = appendRows(dst, &r.added, step)
		step.Do()
		if f.job != nil {
			dst = appendRows(dst, &r.frozen, step)
			step.Do()
		}
	}
	return dst
}

// appendRows appends m's rows, by node, calling step after each page.
func appendRows(dst []byte, m *delta, step wire.Step) []byte {
	dst = wire.AppendUvarint(dst, uint64(m.rows))
	m.sorted(func(u uint32, l []uint32) {
		dst = wire.AppendUvarint(dst, uint64(u))
		dst = wire.AppendU32s(dst, l)
	}, step)
	return dst
}

// ReadSnapshot reads an index that AppendSnapshot wrote for a graph of
// nodes node indices and edges edge indices, checking that every entry fits
// them; nil when r fails (r.Err says why). A compaction that ran when the
// snapshot was taken starts again.
func ReadSnapshot(r *wire.Reader, nodes, edges int) *Index {
	x := &Index{}
	x.epoch = r.Uvarint()
	x.nAdded = r.Int(1<<40, "added count")
	x.nDead = r.Int(1<<40, "dead count")
	x.dead = r.U64s("dead bitset")
	if len(x.dead) > (edges+63)/64 {
		r.Failf("dead bitset of %d words for %d edges", len(x.dead), edges)
	}
	var job *compaction
	if r.Bool() {
		job = &compaction{done: make(chan struct{})}
		job.nodes = r.Int(nodes, "compaction nodes")
		job.nAdded = r.Int(x.nAdded, "compaction added count")
		job.nDead = r.Int(x.nDead, "compaction dead count")
		job.dead = r.U64s("compaction dead bitset")
		if len(job.dead) > len(x.dead) {
			r.Failf("compaction dead bitset of %d words, index has %d", len(job.dead), len(x.dead))
		}
	}
	for d := range x.dir {
		rw := &x.dir[d]
		rw.offs = r.Packed("offsets")
		rw.ents = r.Packed("entries")
		rw.added = readRows(r, nodes, edges)
		if job != nil {
			rw.frozen = readRows(r, nodes, edges)
		}
		if r.Err() != nil {
			return nil
		}
		if msg := checkCSR(&rw.offs, &rw.ents, nodes, edges); msg != "" {
			r.Failf("direction %d: %s", d, msg)
			return nil
		}
	}
	if r.Err() != nil {
		return nil
	}
	if job != nil {
		x.start(job, nil)
	}
	return x
}

// readRows reads delta rows: ascending edge indices below edges per node
// below nodes.
func readRows(r *wire.Reader, nodes, edges int) delta {
	var m delta
	for range r.Count(2, "delta rows") {
		u := r.Int(nodes-1, "delta row node")
		l := r.U32s("delta row")
		if r.Err() != nil {
			return delta{}
		}
		if m.get(uint32(u)) != nil || len(l) == 0 {
			r.Failf("delta row of node %d repeated or empty", u)
			return delta{}
		}
		for i, e := range l {
			if int(e) >= edges || i > 0 && e <= l[i-1] {
				r.Failf("delta row of node %d: edge %d out of range or order", u, e)
				return delta{}
			}
		}
		m.set(uint32(u), l)
	}
	return m
}

// checkCSR checks CSR arrays against the graph's size; "" when sound.
func checkCSR(offs, ents *packed.Uints, nodes, edges int) string {
	if offs.Len() < 1 || offs.Len() > nodes+1 {
		return fmt.Sprintf("%d offsets for %d nodes", offs.Len(), nodes)
	}
	prev := uint32(0)
	if offs.Get(0) != 0 {
		return "first offset not 0"
	}
	for i := 1; i < offs.Len(); i++ {
		o := offs.Get(i)
		if o < prev {
			return fmt.Sprintf("offset %d goes backwards", i)
		}
		prev = o
	}
	if int(prev) != ents.Len() {
		return fmt.Sprintf("last offset %d, %d entries", prev, ents.Len())
	}
	if ents.Len() > 0 && int(ents.Max()) >= edges {
		return fmt.Sprintf("entry %d past %d edges", ents.Max(), edges)
	}
	return ""
}
