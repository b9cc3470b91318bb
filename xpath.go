package cairn

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

// Traversals across graphs (docs/cross-graph.md): ShortestPath and KHop
// with follow_links run here, in the engine, as coordinators that ask each
// graph's projection shard, through the per-graph query routing (ask: here
// or at the graph's owner), for LocalSearch walks inside it and cross
// between graphs only at links: KHop as rounds of forward walks (xsearch,
// this file), ShortestPath as a bidirectional search (xmeet.go). With
// as_of every graph is read as of that one stream sequence.

// crossQuery answers req when it is a traversal that follows links.
func (e *Engine) crossQuery(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, bool) {
	if k := req.GetKHop(); k != nil && k.GetFollowLinks() {
		return e.crossKHop(ctx, req), true
	}
	sp := req.GetShortestPath()
	if sp == nil || !sp.GetFollowLinks() {
		return nil, false
	}
	return e.crossPath(ctx, req), true
}

// traverseCaps resolves a traversal's limits against the server's caps.
func (e *Engine) traverseCaps(l *cairnv1.TraverseLimits, field string) (maxFrontier, maxResults int, rep *cairnv1.QueryReply) {
	invalid := cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT
	caps := e.cfg.Projections.Traverse
	maxFrontier, maxResults = caps.MaxFrontier, caps.MaxResults
	if v := int(l.GetMaxFrontier()); v > caps.MaxFrontier {
		return 0, 0, qerr(invalid, field+".max_frontier", "%d is above the server's cap %d", v, caps.MaxFrontier)
	} else if v > 0 {
		maxFrontier = v
	}
	if v := int(l.GetMaxResults()); v > caps.MaxResults {
		return 0, 0, qerr(invalid, field+".max_results", "%d is above the server's cap %d", v, caps.MaxResults)
	} else if v > 0 {
		maxResults = v
	}
	return maxFrontier, maxResults, nil
}

// crossKHop answers KHop with follow_links: the nodes within depth hops of
// the start, in every graph the walk enters, by distance, graph, then id.
func (e *Engine) crossKHop(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	k := req.GetKHop()
	const f = "k_hop"
	invalid := cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT
	if err := aggregate.ValidateGraphID("graph_id", req.GetGraphId()); err != nil {
		return &cairnv1.QueryReply{Error: aggregate.AsCommandError(err).Proto()}
	}
	switch {
	case k.GetNodeId() == "":
		return qerr(invalid, f+".node_id", "node id is empty")
	case k.GetDepth() < 1 || k.GetDepth() > readmodel.MaxDepth:
		return qerr(invalid, f+".depth", "depth %d is not in 1..%d", k.GetDepth(), readmodel.MaxDepth)
	case req.GetAsOf() != nil && req.GetAsOf().GetPoint() != nil && req.GetAsOf().GetSeq() == 0:
		return qerr(invalid, "as_of", "across graphs, as_of takes a stream sequence (one point for every graph), not a time or a CID")
	}
	if _, ok := cairnv1.Direction_name[int32(k.GetDirection())]; !ok {
		return qerr(invalid, f+".direction", "unknown direction %d", k.GetDirection())
	}
	maxFrontier, maxResults, rep := e.traverseCaps(k.GetLimits(), f+".limits")
	if rep != nil {
		return rep
	}
	if err := e.mayUse(ctx, req.GetGraphId(), false); err != nil {
		return &cairnv1.QueryReply{Error: err.Proto()}
	}
	x := newXSearch(ctx, e, req, k.GetDirection(), k.GetEdgeType(), maxFrontier, maxResults, f)
	x.maxDist, x.list = int(k.GetDepth()), true
	start := gnode{req.GetGraphId(), k.GetNodeId()}
	if rep := x.run(start); rep != nil {
		return rep
	}
	var out []*cairnv1.ReachedNode
	for g, lr := range x.last {
		for i, n := range lr.GetReachedNodes() {
			if (gnode{g, n}) != start {
				out = append(out, &cairnv1.ReachedNode{GraphId: g, NodeId: n, Distance: lr.GetReachedDists()[i]})
			}
		}
	}
	if len(out) > maxResults {
		return qerr(cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, f+".limits", "k-hop from graph %s node %q reaches more than %d nodes", start.graph, start.node, maxResults)
	}
	slices.SortFunc(out, func(a, b *cairnv1.ReachedNode) int {
		return cmp.Or(cmp.Compare(a.GetDistance(), b.GetDistance()), strings.Compare(a.GetGraphId(), b.GetGraphId()), strings.Compare(a.GetNodeId(), b.GetNodeId()))
	})
	return &cairnv1.QueryReply{AsOfSeq: x.asOfSeq, Result: &cairnv1.QueryReply_KHop{KHop: &cairnv1.KHopResult{Nodes: out}}}
}

// gnode is a node of a graph.
type gnode struct{ graph, node string }

// reach is how one side of the search reached a node.
type reach struct {
	parent   gnode
	edge     string
	dist     int
	verified bool // the node's graph said it exists
}

func qerr(code cairnv1.ErrorCode, field, format string, a ...any) *cairnv1.QueryReply {
	return &cairnv1.QueryReply{Error: aggregate.Errorf(code, field, format, a...).Proto()}
}

func (e *Engine) crossPath(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	sp := req.GetShortestPath()
	const f = "shortest_path"
	invalid := cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT
	if err := aggregate.ValidateGraphID("graph_id", req.GetGraphId()); err != nil {
		return &cairnv1.QueryReply{Error: aggregate.AsCommandError(err).Proto()}
	}
	toGraph := sp.GetToGraphId()
	if toGraph == "" {
		toGraph = req.GetGraphId()
	} else if err := aggregate.ValidateGraphID(f+".to_graph_id", toGraph); err != nil {
		return &cairnv1.QueryReply{Error: aggregate.AsCommandError(err).Proto()}
	}
	switch {
	case sp.GetFromNodeId() == "":
		return qerr(invalid, f+".from_node_id", "node id is empty")
	case sp.GetToNodeId() == "":
		return qerr(invalid, f+".to_node_id", "node id is empty")
	case sp.GetWeight() != "":
		return qerr(invalid, f+".weight", "a weighted shortest path does not follow links (yet): drop weight or follow_links")
	case req.GetAsOf() != nil && req.GetAsOf().GetPoint() != nil && req.GetAsOf().GetSeq() == 0:
		return qerr(invalid, "as_of", "across graphs, as_of takes a stream sequence (one point for every graph), not a time or a CID")
	}
	if _, ok := cairnv1.Direction_name[int32(sp.GetDirection())]; !ok {
		return qerr(invalid, f+".direction", "unknown direction %d", sp.GetDirection())
	}
	maxFrontier, maxResults, rep := e.traverseCaps(sp.GetLimits(), f+".limits")
	if rep != nil {
		return rep
	}
	for _, g := range []string{req.GetGraphId(), toGraph} {
		if err := e.mayUse(ctx, g, false); err != nil {
			return &cairnv1.QueryReply{Error: err.Proto()}
		}
	}
	x := newXSearch(ctx, e, req, sp.GetDirection(), sp.GetEdgeType(), maxFrontier, maxResults, f)
	from, to := gnode{req.GetGraphId(), sp.GetFromNodeId()}, gnode{toGraph, sp.GetToNodeId()}
	x.origin, x.target, x.hasTarget = from, to, true
	m := &xmeet{xsearch: x, from: from, to: to}
	if rep := m.shortest(); rep != nil {
		return rep
	}
	return m.path()
}

// xsearch is one KHop across graphs: a BFS over (graph, node) pairs
// run as rounds of LocalSearch requests, one per graph whose seeds changed
// (the nodes links enter, at their distances). Each graph walks every level
// it can inside its own shard and reports the reference nodes it reached;
// the coordinator turns them into the other graphs' seeds. Distances only
// fall from round to round, so the rounds end; a graph's last answer is the
// BFS from its final seeds.
type xsearch struct {
	e          *Engine
	ctx        context.Context
	req        *cairnv1.QueryRequest
	dir        cairnv1.Direction
	edgeType   string
	limits     *cairnv1.TraverseLimits
	maxResults int
	field      string // the query's field path, for errors

	target    gnode // ShortestPath's target, for notFound
	hasTarget bool
	maxDist   int // KHop's depth; 0 for none
	list      bool

	origin  gnode
	seeds   map[string]map[string]int // graph -> node -> distance
	known   map[string]map[string]int // graph -> entry node -> its distance in the graph's last answer
	dead    map[gnode]bool            // entered through a link whose far end is gone
	visited map[string]int
	last    map[string]*cairnv1.LocalReach
	asOfSeq uint64
	readOK  map[string]bool
}

func newXSearch(ctx context.Context, e *Engine, req *cairnv1.QueryRequest, dir cairnv1.Direction, edgeType string, maxFrontier, maxResults int, field string) *xsearch {
	return &xsearch{e: e, ctx: ctx, req: req, dir: dir, edgeType: edgeType, maxResults: maxResults, field: field,
		limits: &cairnv1.TraverseLimits{MaxFrontier: uint32(maxFrontier), MaxResults: uint32(maxResults)},
		seeds:  map[string]map[string]int{}, known: map[string]map[string]int{},
		dead: map[gnode]bool{}, visited: map[string]int{}, last: map[string]*cairnv1.LocalReach{}, readOK: map[string]bool{}}
}

// mayRead caches Engine.mayUse for the graphs links lead into.
func (x *xsearch) mayRead(graph string) bool {
	ok, seen := x.readOK[graph]
	if !seen {
		ok = x.e.mayUse(x.ctx, graph, false) == nil
		x.readOK[graph] = ok
	}
	return ok
}

// seedList returns graph's seeds that may still matter, sorted by node.
func (x *xsearch) seedList(graph string) ([]string, []uint32) {
	ids := make([]string, 0, len(x.seeds[graph]))
	for n := range x.seeds[graph] {
		ids = append(ids, n)
	}
	slices.Sort(ids)
	dists := make([]uint32, len(ids))
	for i, n := range ids {
		dists[i] = uint32(x.seeds[graph][n])
	}
	return ids, dists
}

func (x *xsearch) local(graph string, ls *cairnv1.LocalSearch) *cairnv1.QueryReply {
	return x.localDir(graph, x.dir, ls)
}

// localDir asks graph for ls, walking in direction dir.
func (x *xsearch) localDir(graph string, dir cairnv1.Direction, ls *cairnv1.LocalSearch) *cairnv1.QueryReply {
	ls.Direction, ls.EdgeType, ls.Limits = dir, x.edgeType, x.limits
	return x.e.ask(x.ctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: x.req.GetMinSeq(), AsOf: x.req.GetAsOf(), TimeoutMs: x.req.GetTimeoutMs(),
		Query: &cairnv1.QueryRequest_LocalSearch{LocalSearch: ls}})
}

func (x *xsearch) notFound(n gnode) *cairnv1.QueryReply {
	field := x.field + ".from_node_id"
	if x.field == "k_hop" {
		field = "k_hop.node_id"
	} else if x.hasTarget && n == x.target && n != x.origin {
		field = x.field + ".to_node_id"
	}
	return qerr(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, field, "graph %s has no node %q", n.graph, n.node)
}

// run walks from origin until no graph's seeds change; it returns a reply
// only for an error.
func (x *xsearch) run(origin gnode) *cairnv1.QueryReply {
	x.origin = origin
	x.seeds[origin.graph] = map[string]int{origin.node: 0}
	dirty := map[string]bool{origin.graph: true}
	for len(dirty) > 0 {
		graphs := slices.Sorted(maps.Keys(dirty))
		clear(dirty)
		type answer struct {
			ids []string
			rep *cairnv1.QueryReply
		}
		answers := make([]answer, len(graphs))
		var wg sync.WaitGroup
		for i, g := range graphs {
			ids, dists := x.seedList(g)
			answers[i].ids = ids
			ls := &cairnv1.LocalSearch{SeedIds: ids, SeedDists: dists, ListReached: x.list, MaxDist: uint32(x.maxDist)}
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i].rep = x.local(g, ls)
			}()
		}
		wg.Wait()
		for i, g := range graphs {
			ids, r := answers[i].ids, answers[i].rep
			if err := r.GetError(); err != nil {
				if err.GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
					if g != x.origin.graph {
						err.Message = fmt.Sprintf("following links into graph %s: %s", g, err.GetMessage())
					}
					if err.GetCode() == cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED {
						err.Field = x.field + ".limits"
					}
					return &cairnv1.QueryReply{AsOfSeq: r.GetAsOfSeq(), Error: err}
				}
				// No such graph (or deleted): its nodes are missing.
				if g == x.origin.graph {
					return x.notFound(x.origin)
				}
				for _, n := range ids {
					x.dead[gnode{g, n}] = true
					delete(x.seeds[g], n)
				}
				continue
			}
			x.asOfSeq = max(x.asOfSeq, r.GetAsOfSeq())
			lr := r.GetLocalReach()
			for _, k := range lr.GetMissingSeeds() {
				n := gnode{g, ids[k]}
				if n == x.origin {
					return x.notFound(n)
				}
				x.dead[n] = true
				delete(x.seeds[g], n.node)
			}
			x.last[g] = lr
			x.visited[g] = int(lr.GetVisited())
			total := 0
			for _, v := range x.visited {
				total += v
			}
			if total > x.maxResults {
				return qerr(cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, x.field+".limits", "the search visited more than max_results %d nodes", x.maxResults)
			}
			known := make(map[string]int, len(lr.GetEntryNodes()))
			for j, n := range lr.GetEntryNodes() {
				known[n] = int(lr.GetEntryDists()[j])
			}
			x.known[g] = known
		}
		// The exits, once every answer of the round is in.
		for i := range graphs {
			lr := answers[i].rep.GetLocalReach()
			if lr == nil {
				continue
			}
			for j, b := range lr.GetExitGraphs() {
				m, d := gnode{b, lr.GetExitNodes()[j]}, int(lr.GetExitDists()[j])
				if x.dead[m] || (x.maxDist > 0 && d > x.maxDist) {
					continue
				}
				if kd, ok := x.known[b][m.node]; ok && kd <= d {
					continue
				}
				if cur, ok := x.seeds[b][m.node]; ok && cur <= d {
					continue
				}
				if !x.mayRead(b) {
					continue // a graph the caller may not read is not followed
				}
				if x.seeds[b] == nil {
					x.seeds[b] = map[string]int{}
				}
				x.seeds[b][m.node] = d
				dirty[b] = true
			}
		}
	}
	return nil
}
