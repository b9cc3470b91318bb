package cairn

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Traversals across graphs (docs/cross-graph.md): ShortestPath with
// follow_links runs here, in the engine, as a coordinator: a
// level-synchronous bidirectional BFS over (graph, node) pairs that asks
// each graph's projection shard, through the per-graph query routing
// (ask: here or at the graph's owner), for one batched ExpandNodes per
// graph per level. With as_of every graph is read as of that one stream
// sequence.

// crossQuery answers req when it is a traversal that follows links.
func (e *Engine) crossQuery(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, bool) {
	sp := req.GetShortestPath()
	if sp == nil || !sp.GetFollowLinks() {
		return nil, false
	}
	return e.crossPath(ctx, req), true
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
	caps := e.cfg.Projections.Traverse
	maxFrontier, maxResults := caps.MaxFrontier, caps.MaxResults
	if v := int(sp.GetLimits().GetMaxFrontier()); v > caps.MaxFrontier {
		return qerr(invalid, f+".limits.max_frontier", "%d is above the server's cap %d", v, caps.MaxFrontier)
	} else if v > 0 {
		maxFrontier = v
	}
	if v := int(sp.GetLimits().GetMaxResults()); v > caps.MaxResults {
		return qerr(invalid, f+".limits.max_results", "%d is above the server's cap %d", v, caps.MaxResults)
	} else if v > 0 {
		maxResults = v
	}
	for _, g := range []string{req.GetGraphId(), toGraph} {
		if err := e.mayUse(ctx, g, false); err != nil {
			return &cairnv1.QueryReply{Error: err.Proto()}
		}
	}
	x := &expander{e: e, req: req, edgeType: sp.GetEdgeType()}
	from, to := gnode{req.GetGraphId(), sp.GetFromNodeId()}, gnode{toGraph, sp.GetToNodeId()}
	fw := map[gnode]*reach{from: {}}
	bw := map[gnode]*reach{to: {}}
	dirF := sp.GetDirection()
	if dirF == cairnv1.Direction_DIRECTION_UNSPECIFIED {
		dirF = cairnv1.Direction_DIRECTION_OUT
	}
	dirB := dirF
	switch dirF {
	case cairnv1.Direction_DIRECTION_OUT:
		dirB = cairnv1.Direction_DIRECTION_IN
	case cairnv1.Direction_DIRECTION_IN:
		dirB = cairnv1.Direction_DIRECTION_OUT
	}
	frontF, frontB := []gnode{from}, []gnode{to}
	dead := map[gnode]bool{} // reached through a link whose far end is gone
	visited := 2
	for len(frontF) > 0 && len(frontB) > 0 {
		forward := len(frontF) <= len(frontB)
		mine, other, front, dir := fw, bw, frontF, dirF
		if !forward {
			mine, other, front, dir = bw, fw, frontB, dirB
		}
		if len(front) > maxFrontier {
			return qerr(cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, f+".limits", "a search frontier of %d nodes passed max_frontier %d", len(front), maxFrontier)
		}
		exp, rep := x.expand(ctx, front, dir)
		if rep != nil {
			return rep
		}
		var next []gnode
		for _, n := range front {
			hops, ok := exp[n]
			if !ok {
				if n == from || n == to {
					field := f + ".from_node_id"
					if n == to && n != from {
						field = f + ".to_node_id"
					}
					return qerr(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, field, "graph %s has no node %q", n.graph, n.node)
				}
				dead[n] = true
				delete(mine, n)
				delete(other, n)
				continue
			}
			mine[n].verified = true
			if o, ok := other[n]; ok {
				o.verified = true
			}
			for _, h := range hops {
				m := gnode{n.graph, h.GetNodeId()}
				if h.GetGraphId() != "" {
					m.graph = h.GetGraphId()
					if e.mayUse(ctx, m.graph, false) != nil {
						continue // a graph the caller may not read is not followed
					}
				}
				if _, seen := mine[m]; seen || dead[m] {
					continue
				}
				mine[m] = &reach{parent: n, edge: h.GetEdgeId(), dist: mine[n].dist + 1, verified: h.GetGraphId() == ""}
				if o, ok := other[m]; ok && h.GetGraphId() == "" {
					o.verified = true
				}
				if visited++; visited > maxResults {
					return qerr(cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, f+".limits", "the search visited more than max_results %d nodes", maxResults)
				}
				next = append(next, m)
			}
		}
		if from == to {
			if _, ok := exp[from]; ok {
				return x.path(fw, bw, from, from, to)
			}
		}
		if forward {
			frontF = next
		} else {
			frontB = next
		}
		// Where the two searches meet: the fewest edges wins; a meeting
		// node that neither side has seen in its own graph yet is asked
		// for first (a dangling link's far end is no node).
		var meets []gnode
		for _, m := range next {
			if _, ok := other[m]; ok {
				meets = append(meets, m)
			}
		}
		if len(meets) == 0 {
			continue
		}
		var unsure []gnode
		for _, m := range meets {
			if !fw[m].verified && !bw[m].verified {
				unsure = append(unsure, m)
			}
		}
		if len(unsure) > 0 {
			exp, rep := x.expand(ctx, unsure, dirF)
			if rep != nil {
				return rep
			}
			for _, m := range unsure {
				if _, ok := exp[m]; ok {
					fw[m].verified = true
				} else {
					dead[m] = true
					delete(fw, m)
					delete(bw, m)
				}
			}
		}
		best, bestLen := gnode{}, -1
		for _, m := range meets {
			a, ok1 := fw[m]
			b, ok2 := bw[m]
			if ok1 && ok2 && (bestLen < 0 || a.dist+b.dist < bestLen) {
				best, bestLen = m, a.dist+b.dist
			}
		}
		if bestLen >= 0 {
			return x.path(fw, bw, best, from, to)
		}
		// Drop the dead meeting nodes from the frontiers too.
		alive := func(ns []gnode, side map[gnode]*reach) []gnode {
			return slices.DeleteFunc(ns, func(n gnode) bool { _, ok := side[n]; return !ok })
		}
		frontF, frontB = alive(frontF, fw), alive(frontB, bw)
	}
	return qerr(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, "", "no path from graph %s node %q to graph %s node %q", from.graph, from.node, to.graph, to.node)
}

// expander asks the graphs' shards for one level of the search.
type expander struct {
	e        *Engine
	req      *cairnv1.QueryRequest
	edgeType string
	asOfSeq  uint64 // the highest as_of_seq of the answers
	mu       sync.Mutex
}

// expand returns the hops of each node of ns that exists, by node; a
// node missing from the map does not exist (or its graph does not).
func (x *expander) expand(ctx context.Context, ns []gnode, dir cairnv1.Direction) (map[gnode][]*cairnv1.Hop, *cairnv1.QueryReply) {
	byGraph := map[string][]string{}
	for _, n := range ns {
		byGraph[n.graph] = append(byGraph[n.graph], n.node)
	}
	type batch struct {
		graph string
		ids   []string
	}
	var batches []batch
	for g, ids := range byGraph {
		for len(ids) > 0 {
			k := min(len(ids), actors.MaxExpandNodes)
			batches = append(batches, batch{g, ids[:k]})
			ids = ids[k:]
		}
	}
	replies := make([]*cairnv1.QueryReply, len(batches))
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = x.e.ask(ctx, &cairnv1.QueryRequest{GraphId: b.graph, MinSeq: x.req.GetMinSeq(), AsOf: x.req.GetAsOf(), TimeoutMs: x.req.GetTimeoutMs(),
				Query: &cairnv1.QueryRequest_ExpandNodes{ExpandNodes: &cairnv1.ExpandNodes{NodeIds: b.ids, Direction: dir, EdgeType: x.edgeType}}})
		}()
	}
	wg.Wait()
	out := make(map[gnode][]*cairnv1.Hop, len(ns))
	for i, r := range replies {
		if err := r.GetError(); err != nil {
			if err.GetCode() == cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
				continue // no such graph (or deleted): its nodes are missing
			}
			err.Message = fmt.Sprintf("following links into graph %s: %s", batches[i].graph, err.GetMessage())
			return nil, &cairnv1.QueryReply{AsOfSeq: r.GetAsOfSeq(), Error: err}
		}
		x.mu.Lock()
		x.asOfSeq = max(x.asOfSeq, r.GetAsOfSeq())
		x.mu.Unlock()
		for _, n := range r.GetExpansion().GetNodes() {
			if !n.GetMissing() {
				out[gnode{batches[i].graph, n.GetNodeId()}] = n.GetHops()
			}
		}
	}
	return out, nil
}

// path joins the two searches at meet.
func (x *expander) path(fw, bw map[gnode]*reach, meet, from, to gnode) *cairnv1.QueryReply {
	var nodes []gnode
	var edges []string
	for n := meet; ; {
		nodes = append(nodes, n)
		if n == from {
			break
		}
		r := fw[n]
		edges = append(edges, r.edge)
		n = r.parent
	}
	slices.Reverse(nodes)
	slices.Reverse(edges)
	for n := meet; n != to; {
		r := bw[n]
		edges = append(edges, r.edge)
		n = r.parent
		nodes = append(nodes, n)
	}
	p := &cairnv1.PathResult{EdgeIds: edges, Cost: float64(len(edges))}
	for _, n := range nodes {
		p.NodeIds = append(p.NodeIds, n.node)
		p.GraphIds = append(p.GraphIds, n.graph)
	}
	return &cairnv1.QueryReply{AsOfSeq: x.asOfSeq, Result: &cairnv1.QueryReply_Path{Path: p}}
}
