package layout

import "math"

// graph is a compact weighted graph, one level of the multilevel layout.
type graph struct {
	m    []float64 // mass per node
	rows []int32   // CSR: neighbours of node i are nbr[rows[i]:rows[i+1]]
	nbr  []int32
	w    []float64
}

func (g *graph) len() int { return len(g.m) }

// FirstLayout lays the whole graph out from scratch; call it between
// transactions, for example after a bulk load in one transaction (whose
// EndTx only places the nodes and runs its hot set). Up to
// Params.MultilevelAbove live nodes it is Relax(iterations) from the
// current positions. Above, it coarsens the graph by matching (each node
// with its heaviest unmatched neighbour, then the leftover neighbours of a
// node with each other) until Params.Coarsest nodes are left or a round
// shrinks the graph by less than 5 %; lays the coarsest graph out from
// hashed positions with 4 × iterations ticks; then places each finer level
// at its coarse node plus a hashed offset and runs iterations ticks on it.
// The finest level is Relax(iterations): pinned nodes keep their positions
// (coarser levels ignore pins).
func (l *Layout) FirstLayout(iterations int) {
	live := 0
	for _, ok := range l.live {
		if ok {
			live++
		}
	}
	if live <= l.p.MultilevelAbove || iterations <= 0 {
		l.Relax(iterations)
		return
	}
	l.dropCold()
	ids := make([]uint32, 0, live) // level 0 index → slot
	index := make([]int32, len(l.live))
	for i, ok := range l.live {
		if ok {
			index[i] = int32(len(ids))
			ids = append(ids, uint32(i))
		}
	}
	g0 := &graph{m: make([]float64, 0, live), rows: make([]int32, 1, live+1)}
	for _, s := range ids {
		g0.m = append(g0.m, float64(len(l.adj[s])+1))
		for _, e := range l.adj[s] {
			if j := l.other(e, s); j != s {
				g0.nbr = append(g0.nbr, index[j])
				g0.w = append(g0.w, 1)
			}
		}
		g0.rows = append(g0.rows, int32(len(g0.nbr)))
	}
	levels := []*graph{g0}
	var parents [][]int32 // parents[k]: level k node → level k+1 node
	for g := g0; g.len() > l.p.Coarsest; {
		c, parent := coarsen(g)
		if c.len()*20 > g.len()*19 {
			break
		}
		levels = append(levels, c)
		parents = append(parents, parent)
		g = c
	}
	top := len(levels) - 1
	x := make([]float64, levels[top].len())
	y := make([]float64, levels[top].len())
	r := float64(l.p.Jitter * float64(len(x)))
	for i := range x {
		ox, oy := l.hashed(uint64(top), uint64(i))
		x[i], y[i] = float64(ox*r), float64(oy*r)
	}
	l.relaxGraph(levels[top], x, y, 4*iterations)
	for k := top - 1; k >= 0; k-- {
		n := levels[k].len()
		r := float64(l.p.Jitter * meanEdge(levels[k+1], x, y))
		fx, fy := make([]float64, n), make([]float64, n)
		for i := range n {
			p := parents[k][i]
			ox, oy := l.hashed(uint64(k), uint64(i))
			fx[i] = x[p] + float64(ox*r)
			fy[i] = y[p] + float64(oy*r)
		}
		x, y = fx, fy
		if k > 0 {
			l.relaxGraph(levels[k], x, y, iterations)
		}
	}
	for i, s := range ids {
		if !l.pinned[s] {
			l.setPos(s, x[i], y[i])
		}
	}
	l.Relax(iterations)
}

// meanEdge returns the mean length of g's edges at x, y (1 when none).
func meanEdge(g *graph, x, y []float64) float64 {
	var sum float64
	n := 0
	for i := range g.len() {
		for _, j := range g.nbr[g.rows[i]:g.rows[i+1]] {
			dx, dy := x[i]-x[j], y[i]-y[j]
			sum += math.Sqrt(float64(dx*dx) + float64(dy*dy))
			n++
		}
	}
	if n == 0 || !(sum > 0) || !isFinite(sum) {
		return 1
	}
	return sum / float64(n)
}

// hashed returns a point of the unit disc hashed from the seed, a level and
// an index.
func (l *Layout) hashed(level, i uint64) (float64, float64) {
	return disc(mix(l.seed ^ mix(level^mix(i^0x5bd1e995))))
}

// relaxGraph runs iterations ticks on every node of g at x, y.
func (l *Layout) relaxGraph(g *graph, x, y []float64, iterations int) {
	s := &sim{p: &l.p, workers: l.workers, x: x, y: y, m: g.m, rows: g.rows, nbr: g.nbr, w: g.w, maxStep: math.Inf(1)}
	s.act = make([]int32, g.len())
	for i := range s.act {
		s.act[i] = int32(i)
	}
	s.reset()
	for range iterations {
		s.tick()
	}
}

// coarsen matches g's nodes in pairs and returns the graph of the pairs
// (masses and edge weights summed, edges inside a pair dropped) and each
// node's pair. A node is matched first with the unmatched neighbour of
// greatest w/(m₁·m₂) (the first such in its row on ties); then the nodes
// left unmatched around each node are paired with each other (the leaves
// of a star), in index order.
func coarsen(g *graph) (*graph, []int32) {
	n := g.len()
	mate := make([]int32, n)
	for i := range mate {
		mate[i] = -1
	}
	for u := range int32(n) {
		if mate[u] >= 0 {
			continue
		}
		best, score := int32(-1), 0.0
		for e := g.rows[u]; e < g.rows[u+1]; e++ {
			v := g.nbr[e]
			if v == u || mate[v] >= 0 {
				continue
			}
			if s := g.w[e] / float64(g.m[u]*g.m[v]); s > score {
				best, score = v, s
			}
		}
		if best >= 0 {
			mate[u], mate[best] = best, u
		}
	}
	for h := range int32(n) {
		prev := int32(-1)
		for e := g.rows[h]; e < g.rows[h+1]; e++ {
			v := g.nbr[e]
			if v == h || mate[v] >= 0 {
				continue
			}
			if prev < 0 {
				prev = v
				continue
			}
			mate[prev], mate[v] = v, prev
			prev = -1
		}
	}
	parent := make([]int32, n)
	for i := range parent {
		parent[i] = -1
	}
	var members []int32 // coarse node k: members[2k], members[2k+1] (-1: none)
	for u := range int32(n) {
		if parent[u] >= 0 {
			continue
		}
		k := int32(len(members) / 2)
		parent[u] = k
		v := mate[u]
		if v >= 0 {
			parent[v] = k
		}
		members = append(members, u, v)
	}
	cn := len(members) / 2
	c := &graph{m: make([]float64, cn), rows: make([]int32, 1, cn+1)}
	at := make([]int32, cn) // coarse neighbour → index in the current row, +1
	for k := range cn {
		start := int32(len(c.nbr))
		for _, u := range members[2*k : 2*k+2] {
			if u < 0 {
				continue
			}
			c.m[k] += g.m[u]
			for e := g.rows[u]; e < g.rows[u+1]; e++ {
				q := parent[g.nbr[e]]
				if q == int32(k) {
					continue
				}
				if a := at[q]; a > 0 {
					c.w[a-1] += g.w[e]
					continue
				}
				c.nbr = append(c.nbr, q)
				c.w = append(c.w, g.w[e])
				at[q] = int32(len(c.nbr))
			}
		}
		for _, q := range c.nbr[start:] {
			at[q] = 0
		}
		c.rows = append(c.rows, int32(len(c.nbr)))
	}
	return c, parent
}
