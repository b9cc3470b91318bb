package layout

import (
	"math"
	"slices"
)

// EndTx ends one transaction. Its hot set is the nodes added, the ends of
// the edges added or removed between older nodes and the neighbours of the
// nodes removed (the seeds), then the seeds' neighbours and their
// neighbours, cut at Params.HotCap nodes (see Params.HotCap); its length
// scale is the mean length of the edges at the hot set's older nodes. EndTx
// places the new nodes in slot order, each at the barycentre of its
// neighbours placed before it plus a hashed offset of at most Jitter × scale
// (or at a hashed point near the origin when it has none), then runs
// Params.Ticks ticks on the hot set, each step at most MaxStep × scale. Hot
// nodes feel the whole graph through the Barnes–Hut tree; every other node
// stays put, and pinned nodes never move. The changed nodes move by their
// whole force, their neighbours (damped by HopDamp per hop) by the change
// of theirs since the first tick, so a settled neighbourhood follows the
// change without also drifting along its leftover forces.
//
// Its work follows the transaction, not the graph: placing its new nodes,
// then at most Ticks × HotCap force evaluations. A hot set of up to
// HotCap/4 moving nodes takes the other nodes' forces from the cold tree
// kept across transactions (see cold.go), rebuilt — one pass over the
// graph — once every few hundred small transactions; a larger one builds a
// tree of the other nodes. On 100K nodes / 200K edges a one-node
// transaction takes about 0.6 ms, one of 2,048 hot nodes about 30 ms.
func (l *Layout) EndTx() {
	l.txs++
	var seeds []uint32
	// An edge change seeds its live ends, unless one of them is new: then
	// the new one is the seed, and the other end is one hop from it.
	for k := 0; k+1 < len(l.touched); k += 2 {
		f, t := l.touched[k], l.touched[k+1]
		if l.isNew[f] || l.isNew[t] {
			continue
		}
		for _, s := range [2]uint32{f, t} {
			if l.live[s] {
				seeds = append(seeds, s)
			}
		}
	}
	slices.Sort(l.pending)
	var added []uint32
	for _, s := range l.pending {
		if l.isNew[s] && (len(added) == 0 || added[len(added)-1] != s) {
			added = append(added, s) // not removed again, not listed twice
		}
	}
	seeds = append(seeds, added...)
	l.pending, l.touched = l.pending[:0], l.touched[:0]
	if len(seeds) == 0 {
		return
	}
	slices.Sort(seeds)
	seeds = slices.Compact(seeds)
	hot, rings := l.hotSet(seeds)
	defer func() {
		for _, i := range hot {
			l.level[i] = -1
		}
	}()
	l.scale = l.hotScale(hot)
	for _, s := range added {
		l.isNew[s] = false
		l.place(s)
	}
	if l.p.Ticks == 0 {
		return
	}

	s := &l.sim
	s.p, s.workers = &l.p, l.workers
	s.x, s.y, s.m = l.x, l.y, l.masses()
	s.act, s.rows, s.nbr, s.w = s.act[:0], s.rows[:0], s.nbr[:0], s.w[:0]
	s.damp, s.maxStep, s.rel = s.damp[:0], float64(l.p.MaxStep*l.scale), s.rel[:0]
	for k, i := range hot {
		if l.pinned[i] {
			continue
		}
		s.act = append(s.act, int32(i))
		d := 1.0
		for range rings[k] {
			d = float64(d * l.p.HopDamp)
		}
		s.damp = append(s.damp, d)
		s.rel = append(s.rel, rings[k] > 0)
	}
	if len(s.act) == 0 {
		return
	}
	if len(s.act) <= l.p.HotCap/4 {
		// A small hot set: the cold tree, kept across transactions.
		if !l.coldOK || len(l.stale)+len(s.act) > l.staleCap() {
			l.buildCold()
		}
		l.coldForces(s)
	} else {
		// A large one: a fresh tree of the cold nodes costs less than the
		// corrections would. The cold tree stays true to the base state.
		for _, i := range s.act {
			l.markStale(uint32(i))
		}
		if len(l.stale) > l.staleCap() {
			l.dropCold()
		}
		l.fixed = l.fixed[:0]
		for i, ok := range l.live {
			if ok && (l.level[i] < 0 || l.pinned[i]) {
				l.fixed = append(l.fixed, int32(i))
			}
		}
		s.own.build(l.fixed, s.x, s.y, s.m)
		s.cold = &s.own
		s.minus.build(nil, nil, nil, nil)
		s.plus.build(nil, nil, nil, nil)
	}
	l.rowsFor(s)
	s.reset()
	for range l.p.Ticks {
		s.tick()
	}
	l.sync(s.act)
}

// hotSet returns the transaction's hot set in slot order and each node's
// ring (0: changed, 1 or 2 hops away), leaving l.level set for them. Each
// ring is gathered from the previous one in slot order, each node's edges
// in edge slot order, and stops at HotCap nodes or after scanning
// 16 × HotCap edges, so its work is bounded whatever the degrees.
func (l *Layout) hotSet(seeds []uint32) (hot []uint32, rings []int8) {
	for len(l.level) < len(l.live) {
		l.level = append(l.level, -1)
	}
	hotCap := l.p.HotCap
	ring := seeds[:min(len(seeds), hotCap)]
	for _, s := range ring {
		l.level[s] = 0
	}
	hot = append(hot, ring...)
	for r := int8(1); r <= 2 && len(hot) < hotCap; r++ {
		var next []uint32
		budget := 16 * hotCap
	gather:
		for _, s := range ring {
			for _, e := range l.adj[s] {
				if budget--; budget < 0 || len(hot)+len(next) == hotCap {
					break gather
				}
				j := l.other(e, s)
				if l.level[j] < 0 {
					l.level[j] = r
					next = append(next, j)
				}
			}
		}
		slices.Sort(next)
		hot = append(hot, next...)
		ring = next
	}
	slices.Sort(hot)
	rings = make([]int8, len(hot))
	for k, i := range hot {
		rings[k] = l.level[i]
	}
	return hot, rings
}

// scaleEdges caps the edges hotScale measures.
const scaleEdges = 8192

// hotScale returns the transaction's length scale: the mean length of the
// edges between older (placed) nodes of the hot set and their older
// neighbours, the first scaleEdges of them in slot and edge order; 1 when
// there are none.
func (l *Layout) hotScale(hot []uint32) float64 {
	var sum float64
	n := 0
	for _, i := range hot {
		if l.isNew[i] {
			continue
		}
		for _, e := range l.adj[i] {
			j := l.other(e, i)
			if j == i || l.isNew[j] {
				continue
			}
			dx, dy := l.x[i]-l.x[j], l.y[i]-l.y[j]
			sum += math.Sqrt(float64(dx*dx) + float64(dy*dy))
			if n++; n == scaleEdges {
				break
			}
		}
		if n == scaleEdges {
			break
		}
	}
	if n == 0 || !(sum > 0) || !isFinite(sum) {
		return 1
	}
	return sum / float64(n)
}

// place sets a new node's first position.
func (l *Layout) place(s uint32) {
	var sx, sy float64
	n := 0
	for _, e := range l.adj[s] {
		j := l.other(e, s)
		if j == s || l.isNew[j] {
			continue
		}
		sx += l.x[j]
		sy += l.y[j]
		n++
	}
	ox, oy := l.offset(s)
	r := float64(l.p.Jitter * l.scale)
	if n == 0 {
		l.setPos(s, float64(ox*r), float64(oy*r))
		return
	}
	l.setPos(s, sx/float64(n)+float64(ox*r), sy/float64(n)+float64(oy*r))
}

// offset returns a point of the unit disc hashed from the seed, the slot and
// the transaction count.
func (l *Layout) offset(s uint32) (float64, float64) {
	return disc(mix(l.seed ^ mix(uint64(s)^mix(l.txs))))
}

// disc returns a point of the unit disc drawn from h by rejection sampling
// (no trigonometry, whose results may differ between machines).
func disc(h uint64) (float64, float64) {
	for {
		h = mix(h)
		u := float64(float64(h>>11)/(1<<52)) - 1
		h = mix(h)
		v := float64(float64(h>>11)/(1<<52)) - 1
		if d := float64(u*u) + float64(v*v); d <= 1 && d > 0 {
			return u, v
		}
	}
}
