package readmodel

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-graph/cairn/readmodel/adjacency"
)

// MaxDepth is the deepest k-hop traversal KHop accepts.
const MaxDepth = 6

// TraverseLimits bounds the work of one traversal. A zero field takes its
// default from DefaultTraverseLimits; a negative one is ErrInvalidArgument.
type TraverseLimits struct {
	// MaxFrontier bounds one BFS level (KHop, each side of a bidirectional
	// search) or the priority queue (Dijkstra). Default 100,000.
	MaxFrontier int
	// MaxResults bounds the nodes reached (KHop) or visited (ShortestPath).
	// Default 100,000.
	MaxResults int
}

// DefaultTraverseLimits returns the defaults documented on TraverseLimits.
func DefaultTraverseLimits() TraverseLimits {
	return TraverseLimits{MaxFrontier: 100_000, MaxResults: 100_000}
}

func (l TraverseLimits) resolve() (TraverseLimits, error) {
	if l.MaxFrontier < 0 || l.MaxResults < 0 {
		return l, fmt.Errorf("traverse limits %+v are negative: %w", l, ErrInvalidArgument)
	}
	d := DefaultTraverseLimits()
	if l.MaxFrontier == 0 {
		l.MaxFrontier = d.MaxFrontier
	}
	if l.MaxResults == 0 {
		l.MaxResults = d.MaxResults
	}
	return l, nil
}

// Reached is one node a KHop traversal reached, with its hop distance.
type Reached struct {
	ID       string
	Distance int
}

// KHopResult is what KHop answers: the nodes reached, by distance then id.
// The start node is not listed.
type KHopResult struct {
	Nodes []Reached
}

// PathResult is what ShortestPath answers: the nodes of the path from the
// source to the target, the edges between them (len(Nodes)-1) and its cost
// (the number of edges, or the sum of the weights).
type PathResult struct {
	Nodes []string
	Edges []string
	Cost  float64
}

// ComponentResult is one page of the weakly connected component of a node:
// its size and members in dense-index order. Next is the cursor of the
// following page, empty on the last one.
type ComponentResult struct {
	Size int
	IDs  []string
	Next string
}

// traversal is the scratch and the caches of the traversal queries. The
// visited marks are epoch-stamped so that one query costs nothing per node
// it does not touch; the arrays grow with the node indices and are reused.
type traversal struct {
	epoch uint32
	stamp [2][]uint32  // side -> node -> epoch of its last visit
	par   [2][]uint32  // side -> node -> edge it was reached by (noIndex for a start)
	dist  [2][]float64 // Dijkstra: side -> node -> tentative cost
	front [2][]uint32
	next  []uint32
	queue [2]pqueue

	// Dijkstra: component handle -> parsed weight, valid where wStamp is
	// the query's epoch.
	wStamp []uint32
	wVal   []float64

	// Weakly connected components, valid while version == Graph.version.
	ccValid   bool
	ccVersion uint64
	ccOf      []uint32 // node -> component number (noIndex for a free index)
	ccOffs    []uint32 // component -> start in ccMembers; len count+1
	ccMembers []uint32 // node indices grouped by component, dense order inside
}

const noIndex = ^uint32(0)

// release drops the per-query scratch (up to about 40 bytes per node after a
// weighted shortest path); the next query grows it again. The marks need no
// clearing: a fresh array holds only epoch 0, which no query uses. The
// component cache is kept.
func (t *traversal) release() {
	t.stamp, t.par, t.dist = [2][]uint32{}, [2][]uint32{}, [2][]float64{}
	t.front, t.next, t.queue = [2][]uint32{}, nil, [2]pqueue{}
	t.wStamp, t.wVal = nil, nil
}

// begin starts a query on n node indices and returns its epoch.
func (t *traversal) begin(n int) uint32 {
	for s := range t.stamp {
		if len(t.stamp[s]) < n {
			t.stamp[s] = append(t.stamp[s], make([]uint32, n-len(t.stamp[s]))...)
			t.par[s] = append(t.par[s], make([]uint32, n-len(t.par[s]))...)
		}
	}
	// Epochs go up by two so that Dijkstra can mark a settled node ep+1.
	if t.epoch >= math.MaxUint32-2 { // about to wrap: clear the old marks
		for s := range t.stamp {
			clear(t.stamp[s])
		}
		clear(t.wStamp)
		t.epoch = 0
	}
	t.epoch += 2
	return t.epoch
}

// edgeFilter resolves an edge type: any when typ is "", ok false when no edge
// has that type.
func (g *Graph) edgeFilter(typ string) (t uint16, anyType, ok bool) {
	if typ == "" {
		return 0, true, true
	}
	id, found := g.types.lookup(typ)
	return uint16(id), false, found
}

func checkDir(dir Direction) error {
	if dir > Both {
		return fmt.Errorf("direction %d: %w", dir, ErrInvalidArgument)
	}
	return nil
}

func reverse(dir Direction) Direction {
	switch dir {
	case Out:
		return In
	case In:
		return Out
	}
	return Both
}

// eachNeighbor calls f with each live edge at u in direction dir (of type
// typ unless anyType) and the node at its other end, until f returns false.
// With Both a self-loop comes twice; traversals do not mind.
func (g *Graph) eachNeighbor(u uint32, dir Direction, typ uint16, anyType bool, f func(e, v uint32) bool) {
	goOn := true
	if dir == Out || dir == Both {
		g.adj.Scan(adjacency.Out, u, 0, func(_ int, e uint32) bool {
			if !anyType && uint16(g.etype.Get(int(e))) != typ {
				return true
			}
			goOn = f(e, g.dst.Get(int(e)))
			return goOn
		})
	}
	if goOn && (dir == In || dir == Both) {
		g.adj.Scan(adjacency.In, u, 0, func(_ int, e uint32) bool {
			if !anyType && uint16(g.etype.Get(int(e))) != typ {
				return true
			}
			return f(e, g.src.Get(int(e)))
		})
	}
}

// KHop returns the nodes reachable from id in at most depth hops (1 to
// MaxDepth) along edges in direction dir of type edgeType ("" for any), each
// with its distance, ordered by distance then id. A level with more than
// limits.MaxFrontier nodes, or more than limits.MaxResults nodes reached in
// all, stops the walk with ErrLimitExceeded.
// Errors: ErrNotFound, ErrInvalidArgument (depth, direction, limits),
// ErrLimitExceeded.
func (g *Graph) KHop(id string, dir Direction, edgeType string, depth int, limits TraverseLimits) (KHopResult, error) {
	u, err := g.lookupNode(id)
	if err != nil {
		return KHopResult{}, err
	}
	if depth < 1 || depth > MaxDepth {
		return KHopResult{}, fmt.Errorf("depth %d not in 1..%d: %w", depth, MaxDepth, ErrInvalidArgument)
	}
	if err := checkDir(dir); err != nil {
		return KHopResult{}, err
	}
	if limits, err = limits.resolve(); err != nil {
		return KHopResult{}, err
	}
	typ, anyType, ok := g.edgeFilter(edgeType)
	if !ok {
		return KHopResult{}, nil
	}
	t := &g.trav
	ep := t.begin(g.nodes.Cap())
	seen := t.stamp[0]
	seen[u] = ep
	front := append(t.front[0][:0], u)
	type hit struct {
		u    uint32
		dist int
	}
	var hits []hit
	var exceeded error
	for d := 1; d <= depth && len(front) > 0 && exceeded == nil; d++ {
		next := t.next[:0]
		for _, x := range front {
			g.eachNeighbor(x, dir, typ, anyType, func(_, v uint32) bool {
				if seen[v] == ep {
					return true
				}
				seen[v] = ep
				if len(hits) == limits.MaxResults {
					exceeded = fmt.Errorf("k-hop from %q reaches more than %d nodes: %w", id, limits.MaxResults, ErrLimitExceeded)
					return false
				}
				if len(next) == limits.MaxFrontier {
					exceeded = fmt.Errorf("k-hop from %q: level %d holds more than %d nodes: %w", id, d, limits.MaxFrontier, ErrLimitExceeded)
					return false
				}
				hits = append(hits, hit{v, d})
				next = append(next, v)
				return true
			})
			if exceeded != nil {
				break
			}
		}
		front, t.next = next, front
	}
	t.front[0], t.next = front[:0], t.next[:0]
	if exceeded != nil {
		return KHopResult{}, exceeded
	}
	res := KHopResult{Nodes: make([]Reached, len(hits))}
	for i, h := range hits {
		res.Nodes[i] = Reached{ID: g.nodes.String(h.u), Distance: h.dist}
	}
	slices.SortFunc(res.Nodes, func(a, b Reached) int {
		if a.Distance != b.Distance {
			return a.Distance - b.Distance
		}
		return strings.Compare(a.ID, b.ID)
	})
	return res, nil
}

// ShortestPath returns a shortest path from one node to another along edges
// in direction dir of type edgeType ("" for any). With weight "" it counts
// hops, by bidirectional BFS. Otherwise it runs a bidirectional Dijkstra in
// which stepping onto a node costs that node's component of type weight read
// as a decimal number (strconv.ParseFloat); a node without one, or whose
// value is not a finite number at least 0, costs 1. Edges carry no components in the read
// model, hence the weight on the node an edge enters.
//
// Among several shortest paths the answer is deterministic for a given
// event history, not canonical. from == to is a path of one node and no
// edges. Visiting more than limits.MaxResults nodes, or a frontier (or
// queue) above limits.MaxFrontier, stops with ErrLimitExceeded.
// Errors: ErrNotFound (either node, or no path), ErrInvalidArgument
// (direction, limits), ErrLimitExceeded.
func (g *Graph) ShortestPath(from, to string, dir Direction, edgeType, weight string, limits TraverseLimits) (PathResult, error) {
	s, err := g.lookupNode(from)
	if err != nil {
		return PathResult{}, err
	}
	d, err := g.lookupNode(to)
	if err != nil {
		return PathResult{}, err
	}
	if err := checkDir(dir); err != nil {
		return PathResult{}, err
	}
	if limits, err = limits.resolve(); err != nil {
		return PathResult{}, err
	}
	if s == d {
		return PathResult{Nodes: []string{from}}, nil
	}
	noPath := fmt.Errorf("no path from %q to %q: %w", from, to, ErrNotFound)
	typ, anyType, ok := g.edgeFilter(edgeType)
	if !ok {
		return PathResult{}, noPath
	}
	if weight != "" {
		return g.dijkstra(s, d, dir, typ, anyType, weight, limits, noPath)
	}
	return g.bidiBFS(s, d, dir, typ, anyType, limits, noPath)
}

// bidiBFS expands whole levels, each time on the side with the smaller
// frontier. The first node found by one side that the other has visited lies
// on a shortest path: with both sides complete to depths df and db and no
// meeting yet, every path is longer than df+db, so a meeting while the
// forward side goes to df+1 gives exactly df+1+db (and symmetrically).
func (g *Graph) bidiBFS(s, d uint32, dir Direction, typ uint16, anyType bool, limits TraverseLimits, noPath error) (PathResult, error) {
	t := &g.trav
	ep := t.begin(g.nodes.Cap())
	dirs := [2]Direction{dir, reverse(dir)}
	t.stamp[0][s], t.par[0][s] = ep, noIndex
	t.stamp[1][d], t.par[1][d] = ep, noIndex
	t.front[0] = append(t.front[0][:0], s)
	t.front[1] = append(t.front[1][:0], d)
	visited := 2
	meet := noIndex
	var exceeded error
	for meet == noIndex && exceeded == nil {
		side := 0
		if len(t.front[1]) < len(t.front[0]) {
			side = 1
		}
		if len(t.front[side]) == 0 {
			break
		}
		mine, other, par := t.stamp[side], t.stamp[1-side], t.par[side]
		next := t.next[:0]
		for _, x := range t.front[side] {
			g.eachNeighbor(x, dirs[side], typ, anyType, func(e, v uint32) bool {
				if mine[v] == ep {
					return true
				}
				mine[v], par[v] = ep, e
				if other[v] == ep {
					meet = v
					return false
				}
				if visited++; visited > limits.MaxResults {
					exceeded = fmt.Errorf("shortest path visits more than %d nodes: %w", limits.MaxResults, ErrLimitExceeded)
					return false
				}
				if len(next) == limits.MaxFrontier {
					exceeded = fmt.Errorf("shortest path frontier holds more than %d nodes: %w", limits.MaxFrontier, ErrLimitExceeded)
					return false
				}
				next = append(next, v)
				return true
			})
			if meet != noIndex || exceeded != nil {
				break
			}
		}
		t.next, t.front[side] = t.front[side][:0], next
	}
	t.front[0], t.front[1], t.next = t.front[0][:0], t.front[1][:0], t.next[:0]
	if exceeded != nil {
		return PathResult{}, exceeded
	}
	if meet == noIndex {
		return PathResult{}, noPath
	}
	nodes, edges := g.joinPath(s, d, meet)
	res := g.pathResult(nodes, edges)
	res.Cost = float64(len(edges))
	return res, nil
}

// otherEnd returns the end of edge e that is not v (v for a self-loop).
func (g *Graph) otherEnd(e, v uint32) uint32 {
	if g.src.Get(int(e)) == v {
		return g.dst.Get(int(e))
	}
	return g.src.Get(int(e))
}

func (g *Graph) pathResult(nodes, edges []uint32) PathResult {
	res := PathResult{Nodes: make([]string, len(nodes)), Edges: make([]string, len(edges))}
	for i, u := range nodes {
		res.Nodes[i] = g.nodes.String(u)
	}
	for i, e := range edges {
		res.Edges[i] = g.edges.String(e)
	}
	return res
}

// weigher gives the cost of stepping onto a node (see ShortestPath), parsing
// each component value once per query.
type weigher struct {
	g     *Graph
	wt    uint32
	known bool
	ep    uint32
}

func (w *weigher) of(u uint32) float64 {
	if !w.known {
		return 1
	}
	g, t := w.g, &w.g.trav
	var buf [8]uint32
	for _, h := range g.compsOf(u, buf[:0]) {
		if g.store.typ[h] != w.wt {
			continue
		}
		if t.wStamp[h] == w.ep {
			return t.wVal[h]
		}
		v, err := strconv.ParseFloat(g.store.val[h], 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			v = 1
		}
		t.wStamp[h], t.wVal[h] = w.ep, v
		return v
	}
	return 1
}

type queued struct {
	cost float64
	u    uint32
}

func (a queued) less(b queued) bool {
	return a.cost < b.cost || (a.cost == b.cost && a.u < b.u)
}

// pqueue is a binary min-heap by (cost, node index). It is typed rather
// than a container/heap, whose Push and Pop box every entry.
type pqueue []queued

func (q *pqueue) push(x queued) {
	h := append(*q, x)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	*q = h
}

func (q *pqueue) pop() queued {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && h[l].less(h[m]) {
			m = l
		}
		if r := l + 1; r < n && h[r].less(h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// dijkstra is a bidirectional Dijkstra: the forward side from s steps onto a
// node v at cost w(v); the backward side from d, over reversed edges, leaves
// a node x at cost w(x), so that forward cost + backward cost at any node is
// the cost of a whole path through it. mu is the cheapest such path seen so
// far; the search stops once the two queue tops together cost at least mu
// (Goldberg and Harrelson's stopping rule). Entries are deleted lazily. A
// node's stamp is ep once it has a tentative cost on that side, ep+1 once it
// is settled.
func (g *Graph) dijkstra(s, d uint32, dir Direction, typ uint16, anyType bool, weight string, limits TraverseLimits, noPath error) (PathResult, error) {
	t := &g.trav
	n := g.nodes.Cap()
	ep := t.begin(n)
	for side := range t.dist {
		if len(t.dist[side]) < n {
			t.dist[side] = append(t.dist[side], make([]float64, n-len(t.dist[side]))...)
		}
	}
	if h := len(g.store.typ); len(t.wStamp) < h {
		t.wStamp = append(t.wStamp, make([]uint32, h-len(t.wStamp))...)
		t.wVal = append(t.wVal, make([]float64, h-len(t.wVal))...)
	}
	wt, known := g.store.types.lookup(weight)
	w := weigher{g: g, wt: wt, known: known, ep: ep}
	dirs := [2]Direction{dir, reverse(dir)}
	var q [2]pqueue
	for side, start := range [2]uint32{s, d} {
		t.stamp[side][start], t.par[side][start], t.dist[side][start] = ep, noIndex, 0
		q[side] = append(t.queue[side][:0], queued{0, start})
	}
	defer func() { t.queue = [2]pqueue{q[0][:0], q[1][:0]} }()
	mu, meet := math.Inf(1), noIndex
	settled := 0
	open := [2]int{1, 1} // nodes with a tentative cost, not yet settled
	// top drops stale entries and returns the cost of side's cheapest one.
	top := func(side int) float64 {
		for len(q[side]) > 0 {
			it := q[side][0]
			if t.stamp[side][it.u] == ep && it.cost == t.dist[side][it.u] {
				return it.cost
			}
			q[side].pop()
		}
		return math.Inf(1)
	}
	for {
		tf, tb := top(0), top(1)
		if tf+tb >= mu || math.IsInf(tf, 1) || math.IsInf(tb, 1) {
			break
		}
		side := 0
		if tb < tf || (tb == tf && len(q[1]) < len(q[0])) {
			side = 1
		}
		it := q[side].pop()
		mine, other := t.stamp[side], t.stamp[1-side]
		mine[it.u] = ep + 1
		open[side]--
		if settled++; settled > limits.MaxResults {
			return PathResult{}, fmt.Errorf("shortest path visits more than %d nodes: %w", limits.MaxResults, ErrLimitExceeded)
		}
		dist, odist, par := t.dist[side], t.dist[1-side], t.par[side]
		leave := 0.0 // backward: the cost of leaving it.u
		if side == 1 {
			leave = w.of(it.u)
		}
		var exceeded bool
		g.eachNeighbor(it.u, dirs[side], typ, anyType, func(e, v uint32) bool {
			if mine[v] == ep+1 {
				return true
			}
			c := it.cost + leave
			if side == 0 {
				c += w.of(v)
			}
			if mine[v] == ep && c >= dist[v] {
				return true
			}
			if mine[v] != ep {
				if open[side] == limits.MaxFrontier {
					exceeded = true
					return false
				}
				open[side]++
			}
			mine[v], par[v], dist[v] = ep, e, c
			if other[v] >= ep && c+odist[v] < mu {
				mu, meet = c+odist[v], v
			}
			q[side].push(queued{c, v})
			return true
		})
		if exceeded {
			return PathResult{}, fmt.Errorf("shortest path frontier holds more than %d nodes: %w", limits.MaxFrontier, ErrLimitExceeded)
		}
	}
	if meet == noIndex {
		return PathResult{}, noPath
	}
	nodes, edges := g.joinPath(s, d, meet)
	res := g.pathResult(nodes, edges)
	res.Cost = mu
	return res, nil
}

// joinPath follows the forward parents from meet back to s and the backward
// parents from meet on to d.
func (g *Graph) joinPath(s, d, meet uint32) (nodes, edges []uint32) {
	t := &g.trav
	for v := meet; v != s; {
		e := t.par[0][v]
		nodes, edges = append(nodes, v), append(edges, e)
		v = g.otherEnd(e, v)
	}
	nodes = append(nodes, s)
	slices.Reverse(nodes)
	slices.Reverse(edges)
	for v := meet; v != d; {
		e := t.par[1][v]
		v = g.otherEnd(e, v)
		nodes, edges = append(nodes, v), append(edges, e)
	}
	return nodes, edges
}

// components builds, unless cached for this version, the weakly connected
// components: union-find (union by size, path halving) over the live edges,
// then the members grouped by component with a counting sort.
func (g *Graph) components() *traversal {
	t := &g.trav
	if t.ccValid && t.ccVersion == g.version {
		return t
	}
	n := g.nodes.Cap()
	parent := make([]uint32, n)
	size := make([]uint32, n)
	for i := range parent {
		parent[i], size[i] = uint32(i), 1
	}
	find := func(x uint32) uint32 {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	for e := range g.edges.Cap() {
		if !g.edges.Has(uint32(e)) {
			continue
		}
		a, b := find(g.src.Get(int(e))), find(g.dst.Get(int(e)))
		if a == b {
			continue
		}
		if size[a] < size[b] {
			a, b = b, a
		}
		parent[b] = a
		size[a] += size[b]
	}
	// Number the components in order of their smallest node index, then
	// group the members: offs counts, then prefix sums, then a fill pass.
	of := slices.Grow(t.ccOf[:0], n)[:n]
	offs := append(t.ccOffs[:0], 0)
	num := size // root -> component number; size is no longer needed
	for i := range num {
		num[i] = noIndex
	}
	for u := range n {
		if !g.nodes.Has(uint32(u)) {
			of[u] = noIndex
			continue
		}
		r := find(uint32(u))
		if num[r] == noIndex {
			num[r] = uint32(len(offs) - 1)
			offs = append(offs, 0)
		}
		of[u] = num[r]
		offs[of[u]+1]++
	}
	count := len(offs) - 1
	for c := range count {
		offs[c+1] += offs[c]
	}
	members := slices.Grow(t.ccMembers[:0], int(offs[count]))[:offs[count]]
	fill := append(parent[:0], offs[:count]...) // component -> next slot
	for u := range n {
		if c := of[u]; c != noIndex {
			members[fill[c]] = uint32(u)
			fill[c]++
		}
	}
	t.ccOf, t.ccOffs, t.ccMembers = of, offs, members
	t.ccValid, t.ccVersion = true, g.version
	return t
}

// Component pages through the weakly connected component of node id (edges
// followed in both directions, any type): its size and up to limit members
// per page in dense-index order. The components are computed once per graph
// version (union-find over all edges, O(nodes + edges)) and cached. A cursor
// holds the position and the graph version; after any write it gets
// ErrBadCursor. Errors: ErrNotFound, ErrInvalidArgument (limit),
// ErrBadCursor.
func (g *Graph) Component(id, cursor string, limit int) (ComponentResult, error) {
	u, err := g.lookupNode(id)
	if err != nil {
		return ComponentResult{}, err
	}
	if err := checkLimit(limit); err != nil {
		return ComponentResult{}, err
	}
	t := g.components()
	c := t.ccOf[u]
	members := t.ccMembers[t.ccOffs[c]:t.ccOffs[c+1]]
	start := 0
	if cursor != "" {
		vals, err := decodeCursor(cursor, kindComponent, 3)
		if err != nil {
			return ComponentResult{}, err
		}
		if vals[0] != uint64(u) {
			return ComponentResult{}, fmt.Errorf("cursor %q belongs to another query: %w", cursor, ErrBadCursor)
		}
		if vals[1] != g.version {
			return ComponentResult{}, fmt.Errorf("cursor %q predates a write: %w", cursor, ErrBadCursor)
		}
		if vals[2] > uint64(len(members)) {
			return ComponentResult{}, fmt.Errorf("cursor %q out of range: %w", cursor, ErrBadCursor)
		}
		start = int(vals[2])
	}
	end := min(start+limit, len(members))
	res := ComponentResult{Size: len(members), IDs: make([]string, 0, end-start)}
	for _, v := range members[start:end] {
		res.IDs = append(res.IDs, g.nodes.String(v))
	}
	if end < len(members) {
		res.Next = encodeCursor(kindComponent, uint64(u), g.version, uint64(end))
	}
	return res, nil
}

// ComponentCount returns the number of weakly connected components (an
// isolated node is one), cached per graph version as Component's.
// Errors: ErrNotFound (graph deleted).
func (g *Graph) ComponentCount() (int, error) {
	if err := g.live(); err != nil {
		return 0, err
	}
	return len(g.components().ccOffs) - 1, nil
}

const kindComponent = 'c'
