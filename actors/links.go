package actors

import (
	"context"

	"github.com/cairn-graph/cairn/aggregate"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

// MaxExpandNodes caps the nodes of one ExpandNodes query.
const MaxExpandNodes = 4096

// validateLinkQuery checks a ListLinks, ExpandNodes or LocalSearch query;
// checkCaps checks traverse limits against the server's caps.
func validateLinkQuery(req *cairnv1.QueryRequest, checkCaps func(string, *cairnv1.TraverseLimits) *aggregate.CommandError) *aggregate.CommandError {
	switch q := req.GetQuery().(type) {
	case *cairnv1.QueryRequest_ListLinks:
		if l := q.ListLinks.GetLimit(); l > readmodel.MaxLimit {
			return invalid("list_links.limit", "limit %d is above %d", l, readmodel.MaxLimit)
		}
	case *cairnv1.QueryRequest_ExpandNodes:
		x := q.ExpandNodes
		if n := len(x.GetNodeIds()); n == 0 || n > MaxExpandNodes {
			return invalid("expand_nodes.node_ids", "%d node ids; give 1 to %d", n, MaxExpandNodes)
		}
		if _, ok := cairnv1.Direction_name[int32(x.GetDirection())]; !ok {
			return invalid("expand_nodes.direction", "unknown direction %d", x.GetDirection())
		}
	case *cairnv1.QueryRequest_LocalSearch:
		x := q.LocalSearch
		if len(x.GetSeedDists()) != len(x.GetSeedIds()) {
			return invalid("local_search.seed_dists", "%d distances for %d seeds", len(x.GetSeedDists()), len(x.GetSeedIds()))
		}
		if len(x.GetBackSeedDists()) != len(x.GetBackSeedIds()) {
			return invalid("local_search.back_seed_dists", "%d distances for %d seeds", len(x.GetBackSeedDists()), len(x.GetBackSeedIds()))
		}
		if _, ok := cairnv1.Direction_name[int32(x.GetDirection())]; !ok {
			return invalid("local_search.direction", "unknown direction %d", x.GetDirection())
		}
		return checkCaps("local_search.limits", x.GetLimits())
	}
	return nil
}

// runLinkQuery answers a ListLinks, ExpandNodes or LocalSearch query on g
// into rep; limits resolves traverse limits against the server's defaults.
func runLinkQuery(g *readmodel.Graph, req *cairnv1.QueryRequest, rep *cairnv1.QueryReply, limits func(*cairnv1.TraverseLimits) readmodel.TraverseLimits) error {
	switch q := req.GetQuery().(type) {
	case *cairnv1.QueryRequest_ListLinks:
		l := q.ListLinks
		limit := int(l.GetLimit())
		if limit == 0 {
			limit = defaultLimit
		}
		links, next, err := g.Links(l.GetNodeId(), l.GetEdgeId(), l.GetDangling(), l.GetCursor(), limit)
		if err != nil {
			return err
		}
		page := &cairnv1.LinkPage{NextCursor: next, Links: make([]*cairnv1.Link, 0, len(links))}
		for _, x := range links {
			d := cairnv1.Direction_DIRECTION_IN
			if x.Out {
				d = cairnv1.Direction_DIRECTION_OUT
			}
			page.Links = append(page.Links, &cairnv1.Link{EdgeId: x.EdgeID, NodeId: x.Node, OtherGraph: x.OtherGraph, OtherNode: x.OtherNode,
				Direction: d, DanglingSince: x.DanglingSince, EdgeType: x.EdgeType, RefNode: x.RefNode})
		}
		rep.Result = &cairnv1.QueryReply_Links{Links: page}
	case *cairnv1.QueryRequest_ExpandNodes:
		x := q.ExpandNodes
		found, hops, err := g.ExpandNodes(x.GetNodeIds(), direction(x.GetDirection()), x.GetEdgeType())
		if err != nil {
			return err
		}
		out := &cairnv1.Expansion{Nodes: make([]*cairnv1.ExpandedNode, len(found))}
		for i, id := range x.GetNodeIds() {
			n := &cairnv1.ExpandedNode{NodeId: id, Missing: !found[i], Hops: make([]*cairnv1.Hop, len(hops[i]))}
			for j, h := range hops[i] {
				n.Hops[j] = &cairnv1.Hop{EdgeId: h.EdgeID, GraphId: h.Graph, NodeId: h.Node}
			}
			out.Nodes[i] = n
		}
		rep.Result = &cairnv1.QueryReply_Expansion{Expansion: out}
	case *cairnv1.QueryRequest_LocalSearch:
		x := q.LocalSearch
		s := readmodel.LocalSearch{Seeds: x.GetSeedIds(), Dists: make([]int, len(x.GetSeedDists())), Dir: direction(x.GetDirection()),
			EdgeType: x.GetEdgeType(), MaxDist: int(x.GetMaxDist()), Target: x.GetTargetId(), ListReached: x.GetListReached(),
			PathTo: x.GetPathTo(), Limits: limits(x.GetLimits())}
		for i, d := range x.GetSeedDists() {
			s.Dists[i] = int(d)
		}
		if x.GetMeet() {
			out, err := meetReach(g, x, s)
			if err != nil {
				return err
			}
			rep.Result = &cairnv1.QueryReply_LocalReach{LocalReach: out}
			return nil
		}
		r, err := g.Search(s)
		if err != nil {
			return err
		}
		out := &cairnv1.LocalReach{TargetMissing: r.TargetMissing, TargetFound: r.TargetFound, TargetDist: uint32(r.TargetDist),
			Visited: uint32(r.Visited), PathNodes: r.PathNodes, PathEdges: r.PathEdges}
		out.MissingSeeds, out.ExitGraphs, out.ExitNodes, out.ExitDists = wireReach(r)
		out.EntryNodes, out.EntryDists = wireEntries(r)
		for _, e := range r.Reached {
			out.ReachedNodes, out.ReachedDists = append(out.ReachedNodes, e.ID), append(out.ReachedDists, uint32(e.Distance))
		}
		rep.Result = &cairnv1.QueryReply_LocalReach{LocalReach: out}
	}
	return nil
}

// wireReach returns a walk's missing seeds and exits as LocalReach's
// parallel lists.
func wireReach(r readmodel.LocalReach) (missing []uint32, graphs, nodes []string, dists []uint32) {
	for _, i := range r.MissingSeeds {
		missing = append(missing, uint32(i))
	}
	for _, e := range r.Exits {
		graphs, nodes, dists = append(graphs, e.Graph), append(nodes, e.Node), append(dists, uint32(e.Dist))
	}
	return missing, graphs, nodes, dists
}

// wireEntries returns a walk's entries as LocalReach's parallel lists.
func wireEntries(r readmodel.LocalReach) (nodes []string, dists []uint32) {
	for _, e := range r.Entries {
		nodes, dists = append(nodes, e.ID), append(dists, uint32(e.Distance))
	}
	return nodes, dists
}

// meetReach answers a LocalSearch with meet: fwd is its forward walk.
func meetReach(g *readmodel.Graph, x *cairnv1.LocalSearch, fwd readmodel.LocalSearch) (*cairnv1.LocalReach, error) {
	back := readmodel.LocalSearch{Seeds: x.GetBackSeedIds(), Dists: make([]int, len(x.GetBackSeedDists())), Dir: fwd.Dir.Reverse(),
		EdgeType: fwd.EdgeType, MaxDist: int(x.GetBackMaxDist()), Limits: fwd.Limits}
	for i, d := range x.GetBackSeedDists() {
		back.Dists[i] = int(d)
	}
	m, err := g.Meet(fwd, back)
	if err != nil {
		return nil, err
	}
	out := &cairnv1.LocalReach{Visited: uint32(m.Fwd.Visited), BackVisited: uint32(m.Back.Visited), Met: m.Met, MeetNode: m.Node, MeetDist: uint32(m.Dist)}
	out.MissingSeeds, out.ExitGraphs, out.ExitNodes, out.ExitDists = wireReach(m.Fwd)
	out.BackMissingSeeds, out.BackExitGraphs, out.BackExitNodes, out.BackExitDists = wireReach(m.Back)
	out.EntryNodes, out.EntryDists = wireEntries(m.Fwd)
	out.BackEntryNodes, out.BackEntryDists = wireEntries(m.Back)
	return out, nil
}

// followLinks rewrites neighbours that are reference nodes as the other
// graph's node (ListNeighbors.follow_links), leaving dangling ones out.
func followLinks(g *readmodel.Graph, ns []*cairnv1.Neighbor) []*cairnv1.Neighbor {
	out := ns[:0]
	for _, n := range ns {
		if graph, node, ok := g.RefTarget(n.NodeId); ok {
			n.GraphId, n.NodeId = graph, node
		} else if isRefID(g, n.NodeId) {
			continue // dangling
		}
		out = append(out, n)
	}
	return out
}

func isRefID(g *readmodel.Graph, id string) bool {
	v, err := g.Node(id)
	if err != nil {
		return false
	}
	for _, c := range v.Categories {
		if c == readmodel.RefCategory {
			return true
		}
	}
	return false
}

type callerKey struct{}

// WithCaller returns a context that carries the reply subject of the
// request being served (a NATS client's "_INBOX.<identity>.…"), from
// which the engine learns who asked (api.InboxPrefix).
func WithCaller(ctx context.Context, replySubject string) context.Context {
	return context.WithValue(ctx, callerKey{}, replySubject)
}

// Caller returns the reply subject WithCaller stored, "" when none (a Go
// program calling the engine directly).
func Caller(ctx context.Context) string {
	s, _ := ctx.Value(callerKey{}).(string)
	return s
}
