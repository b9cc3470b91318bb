package layout

import (
	"hash/fnv"
	"math"
	"slices"

	"github.com/cairn-graph/cairn/viewer/scene"
)

var _ scene.Placer = (*Layout)(nil)

// Layout places one graph's nodes. It is not safe for concurrent use: one
// goroutine (the scene's) calls it, in history order; it uses worker
// goroutines inside Relax, FirstLayout and EndTx and waits for them.
type Layout struct {
	p       Params
	seed    uint64
	workers int

	x, y   []float64 // authoritative positions per slot
	pos    []float32 // x, y per slot as handed out by Positions
	live   []bool
	pinned []bool
	adj    [][]uint32 // per node slot: live incident edge slots, ascending

	from, to []uint32 // per edge slot
	elive    []bool

	txs     uint64   // EndTx calls so far: part of the hashed offsets
	pending []uint32 // nodes added since the last EndTx, unplaced
	isNew   []bool   // per node slot: in pending
	touched []uint32 // from, to of every edge added or removed since the last EndTx

	moved []uint64 // bitset of slots moved since the last TakeMoved

	sim   sim
	level []int8 // per node slot: hop ring in the current hot set (-1: none)
	mass  []float64
	fixed []int32 // scratch: the nodes that do not move in a run
	scale float64 // the last EndTx's length scale

	// The cold tree: a Barnes–Hut tree over every node as it was when the
	// tree was built (the base state), kept across transactions while
	// coldOK. The nodes changed since (stale, in order of first change)
	// keep their base position, mass and liveness; EndTx corrects the cold
	// tree's forces by theirs. See cold.go.
	cold                tree
	coldOK              bool
	stale               []uint32
	isStale, wasLive    []bool
	baseX, baseY, baseM []float64
}

// New returns an empty Layout. seed decides every hashed offset; derive it
// from the graph id with SeedFor so that every viewer of a graph gets the
// same picture. It returns an error wrapping ErrParams when p is invalid.
func New(p Params, seed uint64, opts ...Option) (*Layout, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	l := &Layout{p: p, seed: seed, workers: defaultWorkers()}
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// SeedFor returns the layout seed of a graph: a 64-bit hash of its id.
func SeedFor(graphID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(graphID))
	return mix(h.Sum64())
}

// mix is the splitmix64 finaliser.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Params returns the parameters l was made with.
func (l *Layout) Params() Params { return l.p }

// Seed returns the seed l was made with.
func (l *Layout) Seed() uint64 { return l.seed }

// Len returns the node slot high-water mark: Positions holds 2·Len values.
func (l *Layout) Len() int { return len(l.live) }

// growNodes makes node slot s addressable.
func (l *Layout) growNodes(s uint32) {
	n := int(s) + 1
	if n <= len(l.live) {
		return
	}
	l.x, l.y = extend(l.x, n), extend(l.y, n)
	l.pos = extend(l.pos, 2*n)
	l.live, l.pinned, l.isNew = extend(l.live, n), extend(l.pinned, n), extend(l.isNew, n)
	l.adj = extend(l.adj, n)
	l.moved = extend(l.moved, (n+63)/64)
	l.isStale, l.wasLive = extend(l.isStale, n), extend(l.wasLive, n)
	l.baseX, l.baseY, l.baseM = extend(l.baseX, n), extend(l.baseY, n), extend(l.baseM, n)
	l.mass = extend(l.mass, n)
}

func (l *Layout) growEdges(s uint32) {
	n := int(s) + 1
	if n <= len(l.elive) {
		return
	}
	l.from, l.to, l.elive = extend(l.from, n), extend(l.to, n), extend(l.elive, n)
}

// extend returns s lengthened with zero values to n elements (s itself
// when it is that long already).
func extend[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	return append(s, make([]T, n-len(s))...)
}

func (l *Layout) isLive(s uint32) bool { return int(s) < len(l.live) && l.live[s] }

// AddNode adds a node at slot. It sits at the origin until the next EndTx
// places it. Adding a live slot again does nothing. Slots are dense: memory
// grows with the highest slot used.
func (l *Layout) AddNode(slot uint32) {
	l.growNodes(slot)
	if l.live[slot] {
		return
	}
	l.markStale(slot)
	l.live[slot], l.pinned[slot], l.isNew[slot] = true, false, true
	l.adj[slot] = l.adj[slot][:0]
	l.setMass(slot)
	l.setPos(slot, 0, 0)
	l.pending = append(l.pending, slot)
}

// RemoveNode removes the node at slot and every edge still touching it; its
// neighbours run hot at the next EndTx. Removing a free slot does nothing.
// The slot's last position stays in Positions (the scene hides the slot).
func (l *Layout) RemoveNode(slot uint32) {
	if !l.isLive(slot) {
		return
	}
	for len(l.adj[slot]) > 0 {
		l.RemoveEdge(l.adj[slot][len(l.adj[slot])-1])
	}
	l.markStale(slot)
	l.live[slot], l.pinned[slot], l.isNew[slot] = false, false, false
}

// AddEdge adds edge slot from → to. An edge whose ends are not both live
// nodes, or whose slot is live already, is ignored. Its ends run hot at the
// next EndTx.
func (l *Layout) AddEdge(slot, from, to uint32) {
	if !l.isLive(from) || !l.isLive(to) {
		return
	}
	l.growEdges(slot)
	if l.elive[slot] {
		return
	}
	l.markStale(from)
	l.markStale(to)
	l.from[slot], l.to[slot], l.elive[slot] = from, to, true
	l.adj[from] = insertSorted(l.adj[from], slot)
	if to != from {
		l.adj[to] = insertSorted(l.adj[to], slot)
	}
	l.setMass(from)
	l.setMass(to)
	l.touched = append(l.touched, from, to)
}

// RemoveEdge removes edge slot; its ends run hot at the next EndTx.
// Removing a free edge slot does nothing.
func (l *Layout) RemoveEdge(slot uint32) {
	if int(slot) >= len(l.elive) || !l.elive[slot] {
		return
	}
	f, t := l.from[slot], l.to[slot]
	l.markStale(f)
	l.markStale(t)
	l.elive[slot] = false
	l.adj[f] = removeSorted(l.adj[f], slot)
	if t != f {
		l.adj[t] = removeSorted(l.adj[t], slot)
	}
	l.setMass(f)
	l.setMass(t)
	l.touched = append(l.touched, f, t)
}

func insertSorted(s []uint32, v uint32) []uint32 {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	return slices.Insert(s, i, v)
}

func removeSorted(s []uint32, v uint32) []uint32 {
	i, found := slices.BinarySearch(s, v)
	if !found {
		return s
	}
	return slices.Delete(s, i, i+1)
}

// other returns the end of edge e that is not n.
func (l *Layout) other(e, n uint32) uint32 {
	if l.from[e] == n {
		return l.to[e]
	}
	return l.from[e]
}

// Pin keeps the node at slot where it is: no tick, Relax or FirstLayout
// moves it until Unpin. A new node pinned before its EndTx is still placed
// by that EndTx, and stays there. Pinning a free slot does nothing; removal
// unpins.
func (l *Layout) Pin(slot uint32) {
	if l.isLive(slot) {
		l.pinned[slot] = true
	}
}

// Unpin lets the node at slot move again.
func (l *Layout) Unpin(slot uint32) {
	if l.isLive(slot) {
		l.pinned[slot] = false
	}
}

// Pinned reports whether the node at slot is pinned.
func (l *Layout) Pinned(slot uint32) bool { return l.isLive(slot) && l.pinned[slot] }

// Positions returns x, y per node slot (2·Len values), valid until the next
// call of any method. Free slots hold their last position.
func (l *Layout) Positions() []float32 { return l.pos }

// Position returns the exact position of the node at slot.
func (l *Layout) Position(slot uint32) (x, y float64) {
	if int(slot) >= len(l.x) {
		return 0, 0
	}
	return l.x[slot], l.y[slot]
}

func (l *Layout) setPos(s uint32, x, y float64) {
	l.markStale(s)
	l.x[s], l.y[s] = x, y
	l.pos[2*s], l.pos[2*s+1] = float32(x), float32(y)
	l.moved[s/64] |= 1 << (s % 64)
}

// sync copies the exact positions of nodes to Positions and marks those
// that changed there as moved.
func (l *Layout) sync(nodes []int32) {
	for _, i := range nodes {
		fx, fy := float32(l.x[i]), float32(l.y[i])
		if fx != l.pos[2*i] || fy != l.pos[2*i+1] {
			l.pos[2*i], l.pos[2*i+1] = fx, fy
			l.moved[i/64] |= 1 << (i % 64)
		}
	}
}

// TakeMoved appends to dst the slot ranges whose position changed since the
// last TakeMoved, ascending, and forgets them.
func (l *Layout) TakeMoved(dst []scene.Range) []scene.Range {
	open := false
	var lo uint32
	for w, bits := range l.moved {
		if bits == 0 && !open {
			continue
		}
		if bits == ^uint64(0) && open {
			l.moved[w] = 0
			continue
		}
		for b := range uint32(64) {
			s := uint32(w)*64 + b
			set := bits&(1<<b) != 0
			switch {
			case set && !open:
				open, lo = true, s
			case !set && open:
				open = false
				dst = append(dst, scene.Range{Lo: lo, Hi: s})
			}
		}
		l.moved[w] = 0
	}
	if open {
		dst = append(dst, scene.Range{Lo: lo, Hi: uint32(len(l.moved)) * 64})
	}
	if n := uint32(len(l.live)); len(dst) > 0 && dst[len(dst)-1].Hi > n {
		dst[len(dst)-1].Hi = n
	}
	return dst
}

// Hash returns a 64-bit hash of every live slot and its exact position, for
// determinism checks: two layouts with the same Hash show the same picture.
func (l *Layout) Hash() uint64 {
	h := mix(uint64(len(l.live)))
	for i, ok := range l.live {
		if !ok {
			continue
		}
		h = mix(h ^ uint64(i))
		h = mix(h ^ math.Float64bits(l.x[i]))
		h = mix(h ^ math.Float64bits(l.y[i]))
	}
	return h
}

// masses returns degree + 1 per slot, kept up to date by every change of
// the adjacency.
func (l *Layout) masses() []float64 { return l.mass }

// setMass sets node slot s's mass from its degree.
func (l *Layout) setMass(s uint32) { l.mass[s] = float64(len(l.adj[s]) + 1) }

// Relax runs iterations global ForceAtlas2 ticks on every live, unpinned
// node, with repulsion from the whole graph. Call it between transactions.
// Each call starts the adaptive speed afresh, so Relax(2) is not Relax(1)
// twice. Steps are not capped by Params.MaxStep (that cap is for EndTx's
// hot ticks): the adaptive speed bounds them, and gravity the layout. One
// iteration of 100K nodes / 200K edges costs about 75–90 ms of CPU, spread
// over the workers (45 ms on two idle cores).
func (l *Layout) Relax(iterations int) {
	if iterations <= 0 {
		return
	}
	l.dropCold()
	s := &l.sim
	s.p, s.workers = &l.p, l.workers
	s.x, s.y, s.m = l.x, l.y, l.masses()
	s.act, s.rows, s.nbr, s.w = s.act[:0], s.rows[:0], s.nbr[:0], s.w[:0]
	l.fixed = l.fixed[:0]
	for i, ok := range l.live {
		if !ok {
			continue
		}
		if l.pinned[i] {
			l.fixed = append(l.fixed, int32(i))
			continue
		}
		s.act = append(s.act, int32(i))
	}
	l.rowsFor(s)
	s.damp, s.maxStep, s.rel = nil, math.Inf(1), nil
	s.own.build(l.fixed, s.x, s.y, s.m)
	s.cold = &s.own
	s.minus.build(nil, nil, nil, nil)
	s.plus.build(nil, nil, nil, nil)
	s.reset()
	for range iterations {
		s.tick()
	}
	l.sync(s.act)
}

// rowsFor fills s's attraction rows for s.act from the adjacency, in edge
// slot order.
func (l *Layout) rowsFor(s *sim) {
	s.rows = append(s.rows[:0], 0)
	for _, i := range s.act {
		for _, e := range l.adj[i] {
			j := l.other(e, uint32(i))
			if j == uint32(i) {
				continue
			}
			s.nbr = append(s.nbr, int32(j))
			s.w = append(s.w, 1)
		}
		s.rows = append(s.rows, int32(len(s.nbr)))
	}
}
