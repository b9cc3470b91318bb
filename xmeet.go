package cairn

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Shortest paths across graphs (docs/cross-graph.md): a bidirectional BFS
// over (graph, node) pairs, run as rounds of LocalSearch requests with
// meet. The forward side walks from the source, the backward side from
// the target along the edges reversed. Each side has a radius r and, in
// every graph, seeds: the nodes its links enter, at their distances; the
// seeds hold every entry within r of the side's end, so a graph's walks
// from them to r are exactly the nodes within r. A round grows the side
// with the smaller ball by one and asks every graph holding that side's
// seeds to walk both sides and report the node both reached with the least
// sum of distances, and the new exits. Once some node is within rf of the
// source and rb of the target, the shortest path is at most rf+rb, and
// conversely a meeting within radii whose every node was checked is the
// shortest path (the node at rf along it is in both balls).

// xside is one side of a bidirectional search.
type xside struct {
	back    bool
	radius  int
	seeds   map[string]map[string]int // graph -> node -> distance
	via     map[gnode]gnode           // seed -> (graph, reference node) it was entered from
	visited map[string]int            // graph -> nodes its last walk reached
	// entry: graph -> the nodes of the ball where the other side's seeds
	// come in through links, and their distances, from its last walk.
	entry map[string]map[string]int
}

func newXSide(back bool, start gnode) *xside {
	return &xside{back: back, seeds: map[string]map[string]int{start.graph: {start.node: 0}}, via: map[gnode]gnode{}, visited: map[string]int{},
		entry: map[string]map[string]int{}}
}

func (s *xside) ball() int {
	n := 0
	for _, v := range s.visited {
		n += v
	}
	return n
}

// list returns graph's seeds sorted by node, and their distances.
func (s *xside) list(graph string) ([]string, []uint32) {
	ids := slices.Sorted(maps.Keys(s.seeds[graph]))
	dists := make([]uint32, len(ids))
	for i, n := range ids {
		dists[i] = uint32(s.seeds[graph][n])
	}
	return ids, dists
}

// xmeet is one shortest path across graphs.
type xmeet struct {
	*xsearch
	from, to  gnode
	fwd, back *xside
	best      int // the least meeting distance found, -1 while none
	meet      gnode
}

// shortest finds the shortest path from from to to; it returns a reply
// only for an error or when there is none.
func (m *xmeet) shortest() *cairnv1.QueryReply {
	m.fwd, m.back, m.best = newXSide(false, m.from), newXSide(true, m.to), -1
	graphs := []string{m.from.graph}
	if m.to.graph != m.from.graph {
		graphs = append(graphs, m.to.graph)
	}
	slices.Sort(graphs)
	var grown *xside // nil in the first round: both radii 0
	for {
		before := 0
		if grown != nil {
			before = grown.ball()
		}
		added, rep := m.round(graphs)
		if rep != nil {
			return rep
		}
		// Every node within the radii was checked (in the walks, and the
		// seeds this round added against the other side's entries), so
		// no path is shorter than rf+rb+1 unless a meeting found it.
		if m.best >= 0 && m.best <= m.fwd.radius+m.back.radius+1 {
			return nil
		}
		if grown != nil && !added && grown.ball() == before {
			// The grown side reached nothing new: its ball holds all it
			// can reach, and every meeting with it was checked.
			if m.best >= 0 {
				return nil
			}
			return qerr(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, "", "no path from graph %s node %q to graph %s node %q", m.from.graph, m.from.node, m.to.graph, m.to.node)
		}
		grown = m.fwd
		if m.back.ball() < m.fwd.ball() {
			grown = m.back
		}
		grown.radius++
		graphs = graphs[:0]
		for _, g := range slices.Sorted(maps.Keys(grown.seeds)) {
			if len(grown.seeds[g]) > 0 {
				graphs = append(graphs, g)
			}
		}
	}
}

// round asks each of graphs for both walks; added reports whether new
// seeds came from their exits.
func (m *xmeet) round(graphs []string) (added bool, rep *cairnv1.QueryReply) {
	type answer struct {
		fids, bids []string
		rep        *cairnv1.QueryReply
	}
	answers := make([]answer, len(graphs))
	var wg sync.WaitGroup
	for i, g := range graphs {
		a := &answers[i]
		var fd, bd []uint32
		a.fids, fd = m.fwd.list(g)
		a.bids, bd = m.back.list(g)
		ls := &cairnv1.LocalSearch{Meet: true, SeedIds: a.fids, SeedDists: fd, MaxDist: uint32(m.fwd.radius),
			BackSeedIds: a.bids, BackSeedDists: bd, BackMaxDist: uint32(m.back.radius)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.rep = m.local(g, ls)
		}()
	}
	wg.Wait()
	for i, g := range graphs {
		a := answers[i]
		if err := a.rep.GetError(); err != nil {
			if err.GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
				if g != m.from.graph {
					err.Message = fmt.Sprintf("following links into graph %s: %s", g, err.GetMessage())
				}
				if err.GetCode() == cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED {
					err.Field = m.field + ".limits"
				}
				return false, &cairnv1.QueryReply{AsOfSeq: a.rep.GetAsOfSeq(), Error: err}
			}
			// No such graph (or deleted): its nodes are missing.
			switch g {
			case m.from.graph:
				return false, m.notFound(m.from)
			case m.to.graph:
				return false, m.notFound(m.to)
			}
			for _, n := range a.fids {
				m.dead[gnode{g, n}] = true
			}
			for _, n := range a.bids {
				m.dead[gnode{g, n}] = true
			}
			delete(m.fwd.seeds, g)
			delete(m.back.seeds, g)
			delete(m.fwd.entry, g)
			delete(m.back.entry, g)
			m.fwd.visited[g], m.back.visited[g] = 0, 0
			continue
		}
		m.asOfSeq = max(m.asOfSeq, a.rep.GetAsOfSeq())
		lr := a.rep.GetLocalReach()
		for _, k := range lr.GetMissingSeeds() {
			if n := (gnode{g, a.fids[k]}); n == m.from {
				return false, m.notFound(n)
			}
			m.dead[gnode{g, a.fids[k]}] = true
			delete(m.fwd.seeds[g], a.fids[k])
		}
		for _, k := range lr.GetBackMissingSeeds() {
			if n := (gnode{g, a.bids[k]}); n == m.to {
				return false, m.notFound(n)
			}
			m.dead[gnode{g, a.bids[k]}] = true
			delete(m.back.seeds[g], a.bids[k])
		}
		if lr.GetMet() && (m.best < 0 || int(lr.GetMeetDist()) < m.best) {
			m.best, m.meet = int(lr.GetMeetDist()), gnode{g, lr.GetMeetNode()}
		}
		m.fwd.visited[g], m.back.visited[g] = int(lr.GetVisited()), int(lr.GetBackVisited())
		m.fwd.entry[g] = entries(lr.GetEntryNodes(), lr.GetEntryDists())
		m.back.entry[g] = entries(lr.GetBackEntryNodes(), lr.GetBackEntryDists())
	}
	if total := m.fwd.ball() + m.back.ball(); total > m.maxResults {
		return false, qerr(cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, m.field+".limits", "the search visited more than max_results %d nodes", m.maxResults)
	}
	// The exits, once every answer of the round is in.
	for i, g := range graphs {
		lr := answers[i].rep.GetLocalReach()
		if lr == nil {
			continue
		}
		added = m.enter(m.fwd, m.back, g, lr.GetExitGraphs(), lr.GetExitNodes(), lr.GetExitDists()) || added
		added = m.enter(m.back, m.fwd, g, lr.GetBackExitGraphs(), lr.GetBackExitNodes(), lr.GetBackExitDists()) || added
	}
	return added, nil
}

// enter makes graph g's exits seeds of side s where they are new or
// closer, and checks each against the other side o's ball; it reports
// whether any was.
func (m *xmeet) enter(s, o *xside, g string, graphs, nodes []string, dists []uint32) bool {
	added := false
	for j, b := range graphs {
		n, d := gnode{b, nodes[j]}, int(dists[j])
		if m.dead[n] {
			continue
		}
		if cur, ok := s.seeds[b][n.node]; ok && cur <= d {
			continue
		}
		if !m.mayRead(b) {
			continue // a graph the caller may not read is not followed
		}
		if s.seeds[b] == nil {
			s.seeds[b] = map[string]int{}
		}
		s.seeds[b][n.node] = d
		s.via[n] = gnode{g, b + "/" + n.node}
		added = true
		// The seed is in the other side's ball when its last walk there
		// reached it, or it is one of its seeds (not walked yet).
		od, ok := o.entry[b][n.node]
		if sd, seed := o.seeds[b][n.node]; seed && (!ok || sd < od) {
			od, ok = sd, true
		}
		if ok && (m.best < 0 || d+od < m.best) {
			m.best, m.meet = d+od, n
		}
	}
	return added
}

// piece asks graph for side s's path from one of its seeds to node want:
// nodes and edges in the walk's order, from the seed.
func (m *xmeet) piece(s *xside, graph, want string) ([]string, []string, *cairnv1.QueryReply) {
	ids, dists := s.list(graph)
	ls := &cairnv1.LocalSearch{SeedIds: ids, SeedDists: dists, PathTo: want}
	dir := m.dir
	if s.back {
		dir = reverse(dir)
	}
	r := m.localDir(graph, dir, ls)
	if r.GetError() != nil {
		return nil, nil, &cairnv1.QueryReply{AsOfSeq: r.GetAsOfSeq(), Error: r.GetError()}
	}
	return r.GetLocalReach().GetPathNodes(), r.GetLocalReach().GetPathEdges(), nil
}

// trace follows side s from node at back to its end: the nodes after at
// and the edges before each, in the order of the walk backwards (towards
// the source for the forward side, the target for the backward one).
func (m *xmeet) trace(s *xside, at gnode) ([]gnode, []string, *cairnv1.QueryReply) {
	end := m.from
	if s.back {
		end = m.to
	}
	var nodes []gnode
	var edges []string
	want := at
	for range len(s.via) + 1 {
		pn, pe, rep := m.piece(s, want.graph, want.node)
		if rep != nil {
			return nil, nil, rep
		}
		if len(pn) == 0 {
			break
		}
		for i := len(pn) - 2; i >= 0; i-- {
			edges = append(edges, pe[i])
			nodes = append(nodes, gnode{want.graph, pn[i]})
		}
		start := gnode{want.graph, pn[0]}
		if start == end {
			return nodes, edges, nil
		}
		v, ok := s.via[start]
		if !ok {
			break
		}
		want = v
	}
	return nil, nil, qerr(cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE, "", "the path from graph %s node %q to graph %s node %q changed while it was read; retry", m.from.graph, m.from.node, m.to.graph, m.to.node)
}

// path reads the path back from the meeting node, both ways.
func (m *xmeet) path() *cairnv1.QueryReply {
	fn, fe, rep := m.trace(m.fwd, m.meet)
	if rep != nil {
		return rep
	}
	bn, be, rep := m.trace(m.back, m.meet)
	if rep != nil {
		return rep
	}
	slices.Reverse(fn)
	slices.Reverse(fe)
	nodes := append(append(fn, m.meet), bn...)
	edges := append(fe, be...)
	p := &cairnv1.PathResult{EdgeIds: edges, Cost: float64(len(edges))}
	for _, n := range nodes {
		p.NodeIds = append(p.NodeIds, n.node)
		p.GraphIds = append(p.GraphIds, n.graph)
	}
	return &cairnv1.QueryReply{AsOfSeq: m.asOfSeq, Result: &cairnv1.QueryReply_Path{Path: p}}
}

func entries(nodes []string, dists []uint32) map[string]int {
	out := make(map[string]int, len(nodes))
	for i, n := range nodes {
		out[n] = int(dists[i])
	}
	return out
}

func reverse(d cairnv1.Direction) cairnv1.Direction {
	switch d {
	case cairnv1.Direction_DIRECTION_IN:
		return cairnv1.Direction_DIRECTION_OUT
	case cairnv1.Direction_DIRECTION_BOTH:
		return cairnv1.Direction_DIRECTION_BOTH
	}
	return cairnv1.Direction_DIRECTION_IN
}
