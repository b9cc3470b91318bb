package readmodel

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-graph/cairn/internal/adjacency"
)

// MaxDepth is the deepest k-hop traversal KHop accepts.
const MaxDepth = 6

// TraverseLimits bounds the work of one traversal. A zero field takes its
// default from DefaultTraverseLimits; a negative one is ErrInvalidArgument.
type TraverseLimits struct {
	// MaxFrontier bounds one BFS level (KHop, each side of a bidirectional
	// search) or each side's priority queue of rows (Dijkstra). Default
	// 100,000.
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
	vis   []visit      // node -> marks of both sides
	dist  [][2]float64 // Dijkstra: node -> side -> cost it was settled at
	front [2][]uint32
	next  []uint32
	heavy []uint64 // bidiBFS: degree<<32 | node of a level's nodes of high degree
	hits  []uint32 // KHop: the start, then the nodes reached, level by level
	keys  []keyed  // KHop: a level's ids to sort
	rowE  []uint32 // row: edges at the node being expanded
	rowV  []uint32 // row: the nodes at their other ends
	queue [2]pqueue

	// Dijkstra: component handle -> parsed weight, valid where wStamp is
	// the query's epoch.
	wStamp []uint32
	wVal   []float64
	// LocalSearch: the distances of hits; Meet: the forward walk's nodes
	// and distances.
	hitDist []int32
	kept    []hitAt

	// Weakly connected components, valid while version == Graph.version.
	ccValid   bool
	ccVersion uint64
	ccOf      []uint32 // node -> component number (noIndex for a free index)
	ccOffs    []uint32 // component -> start in ccMembers; len count+1
	ccMembers []uint32 // node indices grouped by component, dense order inside
}

// visit holds one node's marks for both sides of a search side by side, so
// that a step that checks both reads one cache line.
type visit struct {
	stamp [2]uint32 // side -> epoch of its last visit
	par   [2]uint32 // side -> edge it was reached by (noIndex for a start)
}

const noIndex = ^uint32(0)

// release drops the per-query scratch (16 bytes per node index once a
// traversal has run, 32 after a weighted shortest path, plus buffers that
// grow with the largest row, level and queue seen); the next query grows it
// again. The marks need no clearing: a fresh array holds only epoch 0, which
// no query uses. The component cache is kept.
func (t *traversal) release() {
	t.vis, t.dist = nil, nil
	t.front, t.next, t.hits, t.keys, t.queue = [2][]uint32{}, nil, nil, nil, [2]pqueue{}
	t.rowE, t.rowV, t.heavy = nil, nil, nil
	t.wStamp, t.wVal, t.hitDist, t.kept = nil, nil, nil, nil
}

// begin starts a query on n node indices and returns its epoch.
func (t *traversal) begin(n int) uint32 {
	if len(t.vis) < n {
		t.vis = append(t.vis, make([]visit, n-len(t.vis))...)
	}
	if t.epoch == math.MaxUint32 { // about to wrap: clear the old marks
		clear(t.vis)
		clear(t.wStamp)
		t.epoch = 0
	}
	t.epoch++
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

// row returns the live edges at u in direction dir (of type typ unless
// anyType) and the nodes at their other ends, in the traversal scratch,
// valid until the next call. With Both a self-loop comes twice; traversals
// do not mind. Gathering a row first keeps the traversals' inner loops
// free of callbacks.
func (g *Graph) row(u uint32, dir Direction, typ uint16, anyType bool) (edges, ends []uint32) {
	es, vs := g.trav.rowE[:0], g.trav.rowV[:0]
	if dir == Out || dir == Both {
		g.adj.Scan(adjacency.Out, u, 0, func(_ int, e uint32) bool {
			if anyType || uint16(g.etype.Get(int(e))) == typ {
				es, vs = append(es, e), append(vs, g.dst.Get(int(e)))
			}
			return true
		})
	}
	if dir == In || dir == Both {
		g.adj.Scan(adjacency.In, u, 0, func(_ int, e uint32) bool {
			if anyType || uint16(g.etype.Get(int(e))) == typ {
				es, vs = append(es, e), append(vs, g.src.Get(int(e)))
			}
			return true
		})
	}
	g.trav.rowE, g.trav.rowV = es, vs
	return es, vs
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
	vis := t.vis
	vis[u].stamp[0] = ep
	// hits holds the start and then each level in turn: level d is
	// hits[end[d-1]:end[d]].
	hits := append(t.hits[:0], u)
	end := [MaxDepth + 1]int{1}
	var exceeded error
	levels := 0 // levels walked
	for d, lo := 1, 0; d <= depth && lo < len(hits) && exceeded == nil; d++ {
		hi := len(hits) // level d-1 is hits[lo:hi]
		for i := lo; i < hi && exceeded == nil; i++ {
			_, ends := g.row(hits[i], dir, typ, anyType)
			for _, v := range ends {
				if vis[v].stamp[0] == ep {
					continue
				}
				vis[v].stamp[0] = ep
				if len(hits)-1 == limits.MaxResults {
					exceeded = fmt.Errorf("k-hop from %q reaches more than %d nodes: %w", id, limits.MaxResults, ErrLimitExceeded)
					break
				}
				if len(hits)-hi == limits.MaxFrontier {
					exceeded = fmt.Errorf("k-hop from %q: level %d holds more than %d nodes: %w", id, d, limits.MaxFrontier, ErrLimitExceeded)
					break
				}
				hits = append(hits, v)
			}
		}
		end[d], levels, lo = len(hits), d, hi
	}
	t.hits = hits[:0]
	if exceeded != nil {
		return KHopResult{}, exceeded
	}
	// The levels are in distance order already; each is sorted by id.
	ids := make([]string, len(hits)-1)
	for i, v := range hits[1:] {
		ids[i] = g.nodes.String(v)
	}
	res := KHopResult{Nodes: make([]Reached, len(ids))}
	for d := 1; d <= levels; d++ {
		lo, hi := end[d-1]-1, end[d]-1
		t.keys = sortedByID(ids[lo:hi], t.keys)
		for i, k := range t.keys[:hi-lo] {
			res.Nodes[lo+i] = Reached{ID: ids[lo+int(k.i)], Distance: d}
		}
	}
	return res, nil
}

// keyed is an id's first 8 bytes, big-endian and zero-padded, and its
// position: keys in order imply ids in order, equal keys need the whole ids.
type keyed struct {
	key uint64
	i   uint32
}

// sortedByID returns the keys of ids in the order of the ids, in buf's
// storage (the first len(ids) entries): a least-significant-byte radix sort
// of the keys that skips the bytes all keys share (the "n1" of "n123456"),
// then a comparison sort of each run of equal keys. Sorting the ids as
// strings, a call to compare two strings per step, made up most of a large
// KHop.
func sortedByID(ids []string, buf []keyed) []keyed {
	n := len(ids)
	a := slices.Grow(buf[:0], 2*n)[:2*n]
	src, dst := a[:n], a[n:]
	for i, id := range ids {
		var b [8]byte
		copy(b[:], id)
		src[i] = keyed{binary.BigEndian.Uint64(b[:]), uint32(i)}
	}
	if n < 64 {
		slices.SortFunc(src, func(x, y keyed) int {
			return cmp.Or(cmp.Compare(x.key, y.key), strings.Compare(ids[x.i], ids[y.i]))
		})
		return a
	}
	for shift := 0; shift < 64; shift += 8 {
		var count [256]int
		for _, k := range src {
			count[byte(k.key>>shift)]++
		}
		if count[byte(src[0].key>>shift)] == n {
			continue // every key has this byte
		}
		sum := 0
		for b, c := range count {
			count[b], sum = sum, sum+c
		}
		for _, k := range src {
			b := byte(k.key >> shift)
			dst[count[b]] = k
			count[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &a[0] {
		copy(a[:n], src)
	}
	src = a[:n]
	for i := 0; i < n; {
		// A run of equal keys is ordered by the whole ids.
		j := i + 1
		for j < n && src[j].key == src[i].key {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(src[i:j], func(x, y keyed) int { return strings.Compare(ids[x.i], ids[y.i]) })
		}
		i = j
	}
	return a
}

// ShortestPath returns a shortest path from one node to another along edges
// in direction dir of type edgeType ("" for any). With weight "" it counts
// hops, by bidirectional BFS. Otherwise it runs a bidirectional Dijkstra in
// which stepping onto a node costs that node's component of type weight read
// as a decimal number (strconv.ParseFloat); a node without one, or whose
// value is not a finite number at least 0, costs 1. Edges carry no
// components in the read model, hence the weight on the node an edge enters.
//
// Among several shortest paths the answer is deterministic for a given
// event history, not canonical. from == to is a path of one node and no
// edges. Visiting more than limits.MaxResults nodes, or a BFS frontier of
// more than limits.MaxFrontier nodes (a Dijkstra queue of more than that
// many rows), stops with ErrLimitExceeded.
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

// bidiBFS expands whole levels, each time on the side whose frontier has
// fewer edges to scan (on a power-law graph the number of nodes says little:
// one hub outweighs thousands of leaves). The first node found by one side
// that the other has visited lies on a shortest path: with both sides
// complete to depths df and db and no meeting yet, every path is longer
// than df+db, so a meeting while the forward side goes to df+1 gives
// exactly df+1+db (and symmetrically). Within a level any order will do,
// so the nodes of high degree come last.
func (g *Graph) bidiBFS(s, d uint32, dir Direction, typ uint16, anyType bool, limits TraverseLimits, noPath error) (PathResult, error) {
	t := &g.trav
	ep := t.begin(g.nodes.Cap())
	vis := t.vis
	dirs := [2]Direction{dir, reverse(dir)}
	vis[s].stamp[0], vis[s].par[0] = ep, noIndex
	vis[d].stamp[1], vis[d].par[1] = ep, noIndex
	t.front[0] = append(t.front[0][:0], s)
	t.front[1] = append(t.front[1][:0], d)
	visited := 2
	meet := noIndex
	var exceeded error
	fdeg := [2]int{g.degree(s, dirs[0]), g.degree(d, dirs[1])}
	for meet == noIndex && exceeded == nil {
		side := 0
		if fdeg[1] < fdeg[0] {
			side = 1
		}
		if len(t.front[side]) == 0 {
			break
		}
		next, heavy, nd := t.next[:0], t.heavy[:0], 0
	level:
		for _, x := range t.front[side] {
			edges, ends := g.row(x, dirs[side], typ, anyType)
			for i, v := range ends {
				vv := &vis[v]
				if vv.stamp[side] == ep {
					continue
				}
				vv.stamp[side], vv.par[side] = ep, edges[i]
				if vv.stamp[1-side] == ep {
					meet = v
					break level
				}
				if visited++; visited > limits.MaxResults {
					exceeded = fmt.Errorf("shortest path visits more than %d nodes: %w", limits.MaxResults, ErrLimitExceeded)
					break level
				}
				if len(next)+len(heavy) == limits.MaxFrontier {
					exceeded = fmt.Errorf("shortest path frontier holds more than %d nodes: %w", limits.MaxFrontier, ErrLimitExceeded)
					break level
				}
				k := g.degree(v, dirs[side])
				nd += k
				if k < heavyDegree {
					next = append(next, v)
				} else {
					heavy = append(heavy, uint64(k)<<32|uint64(v))
				}
			}
		}
		// The level is walked light nodes first, then the heavy ones by
		// degree, so that a meeting is often found before a hub's row.
		slices.Sort(heavy)
		for _, h := range heavy {
			next = append(next, uint32(h))
		}
		fdeg[side], t.heavy = nd, heavy[:0]
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

// queued is a Dijkstra queue entry: the rest of node u's row from position
// pos on, every edge of which leads on at cost. A node's row is queued once,
// when it is settled, and walked as the entry comes to the top, so a hub's
// thousands of edges cost nothing until they are reached and nothing at all
// once the search stops.
type queued struct {
	cost float64
	u    uint32
	pos  uint32 // out-row positions, then (Both) in-row positions; | heavyRow
}

// heavyRow marks the entry of a node of degree heavyDegree or more: among
// entries of equal cost the light rows are walked first, as bidiBFS walks a
// level's light nodes first, so that the sides often meet, and mu starts to
// prune, before a hub's row is walked. It takes pos's top bit: a row holds
// fewer than 1<<31 edges.
const heavyRow = 1 << 31

func (a queued) less(b queued) bool {
	if a.cost != b.cost {
		return a.cost < b.cost
	}
	if ha, hb := a.pos&heavyRow, b.pos&heavyRow; ha != hb {
		return ha < hb
	}
	return a.u < b.u
}

// pqueue is a 4-ary min-heap by (cost, heavyRow, node index): half the depth of a
// binary heap, and a node's children share a cache line or two. It is typed
// rather than a container/heap, whose Push and Pop box every entry.
type pqueue []queued

func (q *pqueue) push(x queued) {
	h := append(*q, x)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !x.less(h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = x
	*q = h
}

func (q *pqueue) pop() queued {
	h := *q
	top := h[0]
	n := len(h) - 1
	x := h[n]
	h = h[:n]
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < min(c+4, n); j++ {
			if h[j].less(h[m]) {
				m = j
			}
		}
		if !h[m].less(x) {
			break
		}
		h[i] = h[m]
		i = m
	}
	if n > 0 {
		h[i] = x
	}
	*q = h
	return top
}

// rowChunk is row from position pos on (out-row positions, then for Both
// in-row positions), stopping after most edges. next is the position to go
// on from, or -1 when the row is done.
func (g *Graph) rowChunk(u uint32, dir Direction, typ uint16, anyType bool, pos, most int) (edges, ends []uint32, next int) {
	es, vs := g.trav.rowE[:0], g.trav.rowV[:0]
	next = -1
	base := 0 // position of the in-row's first edge
	if dir == Out || dir == Both {
		base = g.adj.Len(adjacency.Out, u)
		if pos < base {
			g.adj.Scan(adjacency.Out, u, pos, func(p int, e uint32) bool {
				if anyType || uint16(g.etype.Get(int(e))) == typ {
					es, vs = append(es, e), append(vs, g.dst.Get(int(e)))
					if len(es) == most {
						next = p + 1
						return false
					}
				}
				return true
			})
		}
	}
	if next < 0 && (dir == In || dir == Both) {
		g.adj.Scan(adjacency.In, u, max(pos-base, 0), func(p int, e uint32) bool {
			if anyType || uint16(g.etype.Get(int(e))) == typ {
				es, vs = append(es, e), append(vs, g.src.Get(int(e)))
				if len(es) == most {
					next = base + p + 1
					return false
				}
			}
			return true
		})
	}
	g.trav.rowE, g.trav.rowV = es, vs
	return es, vs, next
}

// heavyDegree is the degree from which bidiBFS walks a node after the rest
// of its level.
const heavyDegree = 16

// dijkstraChunk is how many edges of a queued row one step takes.
const dijkstraChunk = 32

// dijkstra is a bidirectional Dijkstra. A path's cost is the sum of the
// weights of its nodes after the first, so the forward side, from s, pays a
// node's weight when it leaves the node (s leaves for free) and the backward
// side, from d over reversed edges, pays it likewise when it leaves a node:
// each side's cost of an edge then depends only on the node it is walked
// from, and a settled node queues its whole row at one cost (see queued).
// With f(v) the forward cost of reaching v and b(v) the backward one, the
// cheapest path through v costs f(v) + w(v) + b(v) (f(s) + b(s) through s).
//
// mu is the cheapest path through a node settled on both sides; the search
// stops once the two queue tops together cost at least mu (Goldberg and
// Harrelson's stopping rule: every cheaper path would have a node settled
// by neither side or an edge still queued). That rule holds whichever side
// each step grows, so a step grows the side that will have walked fewer
// edges once its top row is done: a side whose top is a hub's row waits
// while the other side has cheaper rows to walk, and the two often meet,
// or the other side's top rises enough to stop, before the hub's row is
// walked. (On BenchmarkTraverseBig's graph, choosing by edges walked alone
// took about twice the work at the 99th percentile, and choosing the lower
// queue top far more.) A settled node's row is not queued when the node is settled on both sides
// or when its cost plus the other side's top is already at least mu: no
// path on through it is cheaper. A node's stamp is ep once it is settled on
// that side; there are no tentative costs.
func (g *Graph) dijkstra(s, d uint32, dir Direction, typ uint16, anyType bool, weight string, limits TraverseLimits, noPath error) (PathResult, error) {
	t := &g.trav
	n := g.nodes.Cap()
	ep := t.begin(n)
	if len(t.dist) < n {
		t.dist = append(t.dist, make([][2]float64, n-len(t.dist))...)
	}
	if h := len(g.store.typ); len(t.wStamp) < h {
		t.wStamp = append(t.wStamp, make([]uint32, h-len(t.wStamp))...)
		t.wVal = append(t.wVal, make([]float64, h-len(t.wVal))...)
	}
	wt, known := g.store.types.lookup(weight)
	w := weigher{g: g, wt: wt, known: known, ep: ep}
	dirs := [2]Direction{dir, reverse(dir)}
	vis, dist := t.vis, t.dist
	q := [2]pqueue{t.queue[0][:0], t.queue[1][:0]}
	defer func() { t.queue = [2]pqueue{q[0][:0], q[1][:0]} }()
	vis[s].stamp[0], vis[s].par[0], dist[s][0] = ep, noIndex, 0
	vis[d].stamp[1], vis[d].par[1], dist[d][1] = ep, noIndex, 0
	q[0].push(queued{0, s, 0})
	q[1].push(queued{w.of(d), d, 0})
	mu, meet := math.Inf(1), noIndex
	settled := 2
	var work [2]int // edges walked
	for {
		tops := [2]float64{math.Inf(1), math.Inf(1)}
		for side := range q {
			if len(q[side]) > 0 {
				tops[side] = q[side][0].cost
			}
		}
		if tops[0]+tops[1] >= mu || math.IsInf(tops[0], 1) || math.IsInf(tops[1], 1) {
			break
		}
		side := 0
		if work[1]+g.rowLeft(q[1][0], dirs[1]) < work[0]+g.rowLeft(q[0][0], dirs[0]) {
			side = 1
		}
		o := 1 - side
		it := &q[side][0]
		c := it.cost
		edges, ends, next := g.rowChunk(it.u, dirs[side], typ, anyType, int(it.pos&^heavyRow), dijkstraChunk)
		if next < 0 {
			q[side].pop()
		} else {
			// Same cost and node, a later position: still the top.
			it.pos = it.pos&heavyRow | uint32(next)
		}
		work[side] += len(ends)
		for i, v := range ends {
			vv := &vis[v]
			if vv.stamp[side] == ep {
				continue
			}
			if settled++; settled > limits.MaxResults {
				return PathResult{}, fmt.Errorf("shortest path visits more than %d nodes: %w", limits.MaxResults, ErrLimitExceeded)
			}
			vv.stamp[side], vv.par[side], dist[v][side] = ep, edges[i], c
			wv := w.of(v)
			if vv.stamp[o] == ep {
				// Settled on both sides: every path through v costs at
				// least this, so v's row is not queued.
				through := dist[v][0] + dist[v][1]
				if v != s {
					through += wv
				}
				if through < mu {
					mu, meet = through, v
					if c+tops[o] >= mu {
						break // the loop stops now
					}
				}
				continue
			}
			if c+wv+tops[o] >= mu {
				continue
			}
			if len(q[side]) == limits.MaxFrontier {
				return PathResult{}, fmt.Errorf("shortest path queue holds more than %d rows: %w", limits.MaxFrontier, ErrLimitExceeded)
			}
			var h uint32
			if g.degree(v, dirs[side]) >= heavyDegree {
				h = heavyRow
			}
			q[side].push(queued{c + wv, v, h})
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

// rowLeft estimates the edges left in the row of queue entry e: its node's
// degree less the position reached.
func (g *Graph) rowLeft(e queued, dir Direction) int {
	return max(g.degree(e.u, dir)-int(e.pos&^heavyRow), 0)
}

// degree returns the number of edges at u in direction dir, of any type.
func (g *Graph) degree(u uint32, dir Direction) int {
	switch dir {
	case Out:
		return int(g.outDeg.get(u))
	case In:
		return int(g.inDeg.get(u))
	}
	return int(g.outDeg.get(u) + g.inDeg.get(u))
}

// joinPath follows the forward parents from meet back to s and the backward
// parents from meet on to d.
func (g *Graph) joinPath(s, d, meet uint32) (nodes, edges []uint32) {
	vis := g.trav.vis
	for v := meet; v != s; {
		e := vis[v].par[0]
		nodes, edges = append(nodes, v), append(edges, e)
		v = g.otherEnd(e, v)
	}
	nodes = append(nodes, s)
	slices.Reverse(nodes)
	slices.Reverse(edges)
	for v := meet; v != d; {
		e := vis[v].par[1]
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
// version (union-find over all edges, O(nodes + edges)) and cached.
//
// A cursor holds id's dense index and the dense index to go on from, so it
// survives writes: the next page lists the members of id's component as it
// is then, from the first whose dense index is at least that. A node that is
// a member on every page of a pagination is listed exactly once; a node that
// joins or leaves the component meanwhile may or may not be, and Size is the
// size when the page was made. A cursor made for another node, or one that
// does not decode, gets ErrBadCursor.
// Errors: ErrNotFound, ErrInvalidArgument (limit), ErrBadCursor.
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
		vals, err := decodeCursor(cursor, kindComponent, 2)
		if err != nil {
			return ComponentResult{}, err
		}
		if vals[0] != uint64(u) {
			return ComponentResult{}, fmt.Errorf("cursor %q belongs to another query: %w", cursor, ErrBadCursor)
		}
		if vals[1] > math.MaxUint32 {
			return ComponentResult{}, fmt.Errorf("cursor %q out of range: %w", cursor, ErrBadCursor)
		}
		// members is ascending, so the next page starts at the first
		// member at or after the cursor's index.
		start, _ = slices.BinarySearch(members, uint32(vals[1]))
	}
	end := min(start+limit, len(members))
	res := ComponentResult{Size: len(members), IDs: make([]string, 0, end-start)}
	for _, v := range members[start:end] {
		res.IDs = append(res.IDs, g.nodes.String(v))
	}
	if end < len(members) {
		res.Next = encodeCursor(kindComponent, uint64(u), uint64(members[end-1])+1)
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
