package layout

import "slices"

// The cold tree spares EndTx a Barnes–Hut tree over the whole graph per
// transaction. It is built over every live node at the end of an EndTx
// (the base state) and kept while transactions change few nodes: each node
// changed since (added, removed, moved, or its degree changed) is stale and
// keeps its base position, mass and liveness. The force of the cold nodes
// on a hot node is then
//
//	cold tree − stale nodes at their base state + stale nodes as they are now
//
// (the two corrections through small trees of their own), less the hot
// nodes themselves, which repel through the moving tree. Only transactions
// with at most HotCap/4 moving nodes use it (a larger hot set sits close
// together, and subtracting it costs more than a fresh tree of the cold
// nodes); such a transaction builds the cold tree (after placing its new
// nodes) when there is none, as after Relax or FirstLayout (which move
// everything), or when it would leave more than staleCap nodes stale. All of this is a pure function of the
// history, and a keyframe holds the stale nodes' base state, so Unmarshal
// rebuilds the very same tree.

// markStale records node slot s's base state before its first change since
// the cold tree was built.
func (l *Layout) markStale(s uint32) {
	if !l.coldOK || l.isStale[s] {
		return
	}
	l.isStale[s], l.wasLive[s] = true, l.live[s]
	l.baseX[s], l.baseY[s], l.baseM[s] = l.x[s], l.y[s], float64(len(l.adj[s])+1)
	l.stale = append(l.stale, s)
}

// dropCold forgets the cold tree (before everything moves).
func (l *Layout) dropCold() {
	for _, s := range l.stale {
		l.isStale[s] = false
	}
	l.stale, l.coldOK = l.stale[:0], false
}

// staleCap is how many stale nodes the cold tree tolerates: past it, the
// corrections' trees cost about as much as a fresh tree of the cold nodes.
func (l *Layout) staleCap() int { return l.p.HotCap + len(l.live)/32 }

// buildCold builds the cold tree over every live node as it is now, with
// no node stale.
func (l *Layout) buildCold() {
	l.dropCold()
	l.fixed = l.fixed[:0]
	for i, ok := range l.live {
		if ok {
			l.fixed = append(l.fixed, int32(i))
		}
	}
	l.cold.build(l.fixed, l.x, l.y, l.masses())
	l.coldOK = true
}

// rebuildCold rebuilds the cold tree from the base state: what a keyframe
// holds.
func (l *Layout) rebuildCold() {
	n := len(l.live)
	x, y, m := make([]float64, n), make([]float64, n), make([]float64, n)
	var ids []int32
	for i := range n {
		if l.isStale[i] {
			if l.wasLive[i] {
				ids = append(ids, int32(i))
				x[i], y[i], m[i] = l.baseX[i], l.baseY[i], l.baseM[i]
			}
			continue
		}
		if l.live[i] {
			ids = append(ids, int32(i))
			x[i], y[i], m[i] = l.x[i], l.y[i], float64(len(l.adj[i])+1)
		}
	}
	l.cold.build(ids, x, y, m)
}

// coldForces sets s to take the cold nodes' forces from the cold tree and
// the stale nodes' corrections; s.act, s.x, s.y and s.m are set, and the
// active nodes are about to move: they become stale first.
func (l *Layout) coldForces(s *sim) {
	for _, i := range s.act {
		l.markStale(uint32(i))
	}
	l.fixed = l.fixed[:0]
	for _, i := range l.stale {
		l.fixed = append(l.fixed, int32(i))
	}
	slices.Sort(l.fixed)
	was := make([]int32, 0, len(l.fixed))
	now := make([]int32, 0, len(l.fixed))
	for _, i := range l.fixed {
		if l.wasLive[i] {
			was = append(was, i)
		}
		if l.live[i] && (l.level[i] < 0 || l.pinned[i]) {
			now = append(now, i)
		}
	}
	s.cold = &l.cold
	s.minus.build(was, l.baseX, l.baseY, l.baseM)
	s.plus.build(now, s.x, s.y, s.m)
}
