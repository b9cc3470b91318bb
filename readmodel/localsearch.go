package readmodel

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// LocalSearch is one graph's part of a traversal across graphs: a BFS
// inside the graph from several seeds, each entering at its own distance,
// that stops at reference nodes (the walk's exits into other graphs). The
// engine's coordinator sends one per graph per round and crosses between
// graphs only at links.
type LocalSearch struct {
	Seeds    []string
	Dists    []int // parallel to Seeds
	Dir      Direction
	EdgeType string // "" for any
	// MaxDist: no node farther than this is reached; 0 for no bound.
	MaxDist int
	// Target, when not "", stops the walk at the level that reaches it.
	Target string
	// ListReached asks for every node reached (KHop).
	ListReached bool
	// PathTo, when not "", asks for the path from a seed to this node
	// (and stops the walk at the level that reaches it).
	PathTo string
	Limits TraverseLimits
}

// LocalExit is a live reference node the walk reached, as the other
// graph's node, at the distance of that node (the link counted).
type LocalExit struct {
	Graph, Node string
	Dist        int
}

// LocalReach answers a LocalSearch.
type LocalReach struct {
	MissingSeeds []int // indices of seeds that are no node (or reference nodes)
	Exits        []LocalExit
	// Entries are the nodes reached that a link enters (walking from a
	// reference node in the walk's direction; for Meet, in the reverse
	// direction: where the other walk's seeds come in), with their
	// distances.
	Entries       []Reached
	TargetMissing bool
	TargetFound   bool
	TargetDist    int
	Visited       int       // nodes reached but reference nodes and seeds at distance 0
	Reached       []Reached // ListReached: every node reached but reference nodes
	PathNodes     []string  // PathTo: from a seed to PathTo; empty when not reached
	PathEdges     []string
}

// Search runs s on the graph.
// Errors: ErrNotFound (graph deleted), ErrInvalidArgument (direction,
// limits), ErrLimitExceeded (a level above Limits.MaxFrontier, more than
// Limits.MaxResults nodes reached).
func (g *Graph) Search(s LocalSearch) (LocalReach, error) {
	return g.search(s, false, nil)
}

// search runs s. For Meet, meet makes s.MaxDist a bound even at 0 and
// Entries the nodes reached that a link enters in the reverse direction
// (where the other walk's seeds come in). keep, when not nil, receives the
// nodes reached but reference nodes, with their distances.
func (g *Graph) search(s LocalSearch, meet bool, keep *[]hitAt) (LocalReach, error) {
	var r LocalReach
	if err := g.live(); err != nil {
		return r, err
	}
	if err := checkDir(s.Dir); err != nil {
		return r, err
	}
	limits, err := s.Limits.resolve()
	if err != nil {
		return r, err
	}
	var refs, marked *roaring.Bitmap
	if c, ok := g.categories.lookup(RefCategory); ok && int(c) < len(g.catNodes) {
		refs = g.catNodes[c]
	}
	if t, ok := g.store.types.lookup(RefDanglingComponent); ok {
		marked = g.store.typeNodes[t]
	}
	t := &g.trav
	ep := t.begin(g.nodes.Cap())
	vis := t.vis
	// The search's own marks: stamp[1] == ep on a reference node, with
	// par[1] 1 when it is dangling; par[1] is a reached node's distance.
	if refs != nil {
		it := refs.Iterator()
		for it.HasNext() {
			u := it.Next()
			vis[u].stamp[1], vis[u].par[1] = ep, 0
			if marked != nil && marked.Contains(u) {
				vis[u].par[1] = 1
			}
		}
	}
	isRef := func(u uint32) bool { return vis[u].stamp[1] == ep }
	dangling := func(u uint32) bool { return vis[u].par[1] == 1 }
	stop := noIndex // the target or PathTo node
	if s.Target != "" {
		u, ok := g.nodes.Lookup(s.Target)
		if !ok || isRef(u) {
			r.TargetMissing = true
			return r, nil
		}
		stop = u
	}
	pathTo := noIndex
	if s.PathTo != "" {
		if u, ok := g.nodes.Lookup(s.PathTo); ok {
			pathTo, stop = u, u
		}
	}
	type seed struct {
		u uint32
		d int
	}
	seeds := make([]seed, 0, len(s.Seeds))
	for i, id := range s.Seeds {
		u, ok := g.nodes.Lookup(id)
		if !ok || isRef(u) {
			r.MissingSeeds = append(r.MissingSeeds, i)
			continue
		}
		seeds = append(seeds, seed{u, s.Dists[i]})
	}
	slices.SortFunc(seeds, func(a, b seed) int { return cmp.Compare(a.d, b.d) })
	typ, anyType, typeOK := g.edgeFilter(s.EdgeType)

	hits, hitDist := t.hits[:0], t.hitDist[:0]
	front, next := t.front[0][:0], t.front[1][:0]
	defer func() { t.hits, t.hitDist, t.front[0], t.front[1] = hits[:0], hitDist[:0], front[:0], next[:0] }()
	reach := func(u, e uint32, d int) error {
		vis[u].stamp[0], vis[u].par[0] = ep, e
		hits, hitDist = append(hits, u), append(hitDist, int32(d))
		if !isRef(u) {
			vis[u].par[1] = uint32(d)
			if d == 0 {
				return nil // the walk's start
			}
			if r.Visited++; r.Visited > limits.MaxResults {
				return fmt.Errorf("the search reached more than %d nodes: %w", limits.MaxResults, ErrLimitExceeded)
			}
		}
		return nil
	}
	si, level := 0, 0
	for {
		for ; si < len(seeds) && seeds[si].d <= level; si++ {
			if u := seeds[si].u; vis[u].stamp[0] != ep {
				if err := reach(u, noIndex, level); err != nil {
					return LocalReach{}, err
				}
				front = append(front, u)
			}
		}
		if len(front) == 0 {
			if si == len(seeds) {
				break
			}
			level = seeds[si].d
			continue
		}
		if len(front) > limits.MaxFrontier {
			return LocalReach{}, fmt.Errorf("level %d holds more than %d nodes: %w", level, limits.MaxFrontier, ErrLimitExceeded)
		}
		if stop != noIndex && vis[stop].stamp[0] == ep {
			break
		}
		if (meet || s.MaxDist > 0) && level >= s.MaxDist {
			break
		}
		if !typeOK { // no edge has the type: only the seeds are reached
			front = front[:0]
			continue
		}
		next = next[:0]
		for _, u := range front {
			if isRef(u) {
				continue // an exit: the other graph goes on from there
			}
			es, ends := g.row(u, s.Dir, typ, anyType)
			for i, v := range ends {
				if vis[v].stamp[0] == ep || (isRef(v) && dangling(v)) {
					continue
				}
				if err := reach(v, es[i], level+1); err != nil {
					return LocalReach{}, err
				}
				next = append(next, v)
			}
		}
		front, next = next, front
		level++
	}
	if stop != noIndex && stop != pathTo && vis[stop].stamp[0] == ep {
		r.TargetFound = true
		for i, u := range hits {
			if u == stop {
				r.TargetDist = int(hitDist[i])
				break
			}
		}
	}
	for i, u := range hits {
		if !isRef(u) {
			if keep != nil {
				*keep = append(*keep, hitAt{u, hitDist[i]})
			}
			if s.ListReached {
				r.Reached = append(r.Reached, Reached{ID: g.nodes.String(u), Distance: int(hitDist[i])})
			}
			continue
		}
		graph, node := splitRef(g.nodes.String(u))
		r.Exits = append(r.Exits, LocalExit{Graph: graph, Node: node, Dist: int(hitDist[i])})
	}
	if refs != nil {
		// The nodes links enter, in the walk's direction, that it reached.
		dir := s.Dir
		if meet {
			dir = dir.Reverse()
		}
		it := refs.Iterator()
		for it.HasNext() {
			ref := it.Next()
			if dangling(ref) {
				continue
			}
			_, ends := g.row(ref, dir, typ, anyType)
			for _, v := range ends {
				if vis[v].stamp[0] == ep && !isRef(v) {
					r.Entries = append(r.Entries, Reached{ID: g.nodes.String(v), Distance: int(vis[v].par[1])})
				}
			}
		}
	}
	if pathTo != noIndex && vis[pathTo].stamp[0] == ep {
		for u := pathTo; ; {
			r.PathNodes = append(r.PathNodes, g.nodes.String(u))
			e := vis[u].par[0]
			if e == noIndex {
				break
			}
			r.PathEdges = append(r.PathEdges, g.edges.String(e))
			if src := g.src.Get(int(e)); src != u {
				u = src
			} else {
				u = g.dst.Get(int(e))
			}
		}
		slices.Reverse(r.PathNodes)
		slices.Reverse(r.PathEdges)
	}
	return r, nil
}

// hitAt is a node a walk reached and its distance.
type hitAt struct {
	u uint32
	d int32
}

// Meeting answers Meet.
type Meeting struct {
	// Fwd and Back answer the walks; their Entries are the nodes each
	// reached where the other walk's seeds come in through links.
	Fwd, Back LocalReach
	// Met: a node both walks reached; Node is the one with the least Dist
	// (forward plus backward distance), the least node index among equals.
	Met  bool
	Node string
	Dist int
}

// Meet runs fwd and back, a walk in the reverse direction from the nodes a
// backward search from a target entered this graph at (their distances to
// the target), and finds the node both reach with the least sum of
// distances: one graph's step of a bidirectional search across graphs.
// MaxDist bounds each walk even at 0; Target, ListReached and PathTo are
// not used.
// Errors: those of Search.
func (g *Graph) Meet(fwd, back LocalSearch) (Meeting, error) {
	var m Meeting
	fwd.Target, fwd.ListReached, fwd.PathTo = "", false, ""
	back.Target, back.ListReached, back.PathTo = "", false, ""
	t := &g.trav
	kept := t.kept[:0]
	defer func() { t.kept = kept[:0] }()
	var err error
	if m.Fwd, err = g.search(fwd, true, &kept); err != nil {
		return Meeting{}, err
	}
	if m.Back, err = g.search(back, true, nil); err != nil {
		return Meeting{}, err
	}
	// The backward walk's marks are still in place: a node it reached has
	// stamp[0] == its epoch and its distance in par[1].
	ep, vis := t.epoch, t.vis
	best := hitAt{noIndex, -1}
	for _, h := range kept {
		if vis[h.u].stamp[0] != ep {
			continue
		}
		d := h.d + int32(vis[h.u].par[1])
		if best.d < 0 || d < best.d || (d == best.d && h.u < best.u) {
			best = hitAt{h.u, d}
		}
	}
	if best.d >= 0 {
		m.Met, m.Node, m.Dist = true, g.nodes.String(best.u), int(best.d)
	}
	return m, nil
}
