package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// Query answers req from its graph's read model, after waiting for its
// min_seq. Failures are in the reply's error: INVALID_ARGUMENT (a malformed
// request, a limit above readmodel.MaxLimit, a depth outside 1..6, a
// traversal cap above the server's, a bad cursor), NOT_FOUND (no such graph
// or node, no path), RESOURCE_EXHAUSTED (a traversal passed its frontier or
// result cap), DEADLINE_EXCEEDED (min_seq not reached in time), INTERNAL
// (the graph's projection stopped), UNAVAILABLE (closing), and for as_of
// (time travel, see timetravel.go) FAILED_PRECONDITION when time travel is
// off. The reply's head_cid and position name the last event it reflects.
//
// A reply may come from the shard's query cache (its cached field says so)
// and share its result with other callers: do not modify it.
func (p *Projections) Query(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	if err := p.validateQuery(req); err != nil {
		return &cairnv1.QueryReply{Error: err.Proto()}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.QueryTimeout)
		defer cancel()
	}
	if ms := req.GetTimeoutMs(); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	graph := req.GetGraphId()
	if err := p.lost.Load(); err != nil {
		return &cairnv1.QueryReply{Error: dataLoss(graph, *err).Proto()}
	}
	if req.GetAsOf() != nil {
		return p.tt.query(ctx, req)
	}
	if err := p.waitReady(ctx, graph); err != nil {
		return &cairnv1.QueryReply{Error: err.Proto()}
	}
	if seq, err := p.WaitFor(ctx, graph, req.GetMinSeq()); err != nil {
		return &cairnv1.QueryReply{AsOfSeq: seq, Error: aggregate.AsCommandError(err).Proto()}
	}
	if rep, ok := p.answerNow(req); ok {
		return rep
	}
	ch := make(chan *cairnv1.QueryReply, 1)
	rq := &runQuery{req: req, reply: ch}
	if p.cfg.Tracer != nil {
		sc := trace.SpanContextFromContext(ctx)
		rq.parent = &sc
	}
	p.root.Send(p.shards[p.Shard(graph)].pid, rq)
	return p.awaitShard(ctx, ch, "graph "+graph+": the projection shard")
}

// QueryNow answers req as Query does when it is a point query (get_node,
// get_edge, list_neighbors, find_nodes: one bounded page at most) that
// needs no wait: the projections are ready, the graph's shard has reached the request's
// min_seq, it asks for no as_of, and the shard is between two messages.
// It reads on the caller's goroutine, without the shard's mailbox; ok is
// false when it did not answer (the caller then calls Query).
func (p *Projections) QueryNow(req *cairnv1.QueryRequest) (rep *cairnv1.QueryReply, ok bool) {
	// Any other query is left to Query before it is validated, so that it
	// is not validated twice.
	switch req.GetQuery().(type) {
	case *cairnv1.QueryRequest_GetNode, *cairnv1.QueryRequest_GetEdge, *cairnv1.QueryRequest_ListNeighbors, *cairnv1.QueryRequest_FindNodes:
	default:
		return nil, false
	}
	if req.GetAsOf() != nil {
		return nil, false
	}
	if err := p.validateQuery(req); err != nil {
		return &cairnv1.QueryReply{Error: err.Proto()}, true
	}
	graph := req.GetGraphId()
	if err := p.lost.Load(); err != nil {
		return &cairnv1.QueryReply{Error: dataLoss(graph, *err).Proto()}, true
	}
	select {
	case <-p.ready:
	default:
		return nil, false
	}
	if p.shards[p.Shard(graph)].appliedSeq() < req.GetMinSeq() {
		return nil, false
	}
	return p.answerNow(req)
}

// answerNow answers req on the caller's goroutine under its shard's state
// lock, when the shard is not handling a message (TryLock) and answering
// needs nothing of the actor: no adoption to wait for, no first-read span.
func (p *Projections) answerNow(req *cairnv1.QueryRequest) (*cairnv1.QueryReply, bool) {
	sh := p.shards[p.Shard(req.GetGraphId())]
	if sh.actor == nil || !sh.state.TryLock() {
		return nil, false
	}
	defer sh.state.Unlock()
	a := sh.actor
	if a.firstRead != nil && p.cfg.Tracer != nil {
		if _, ok := a.firstRead[req.GetGraphId()]; ok {
			return nil, false
		}
	}
	if p.part != nil {
		if e := a.graphs[req.GetGraphId()]; e == nil {
			if _, ok := a.absent[req.GetGraphId()]; !ok {
				return nil, false // park would start an adoption
			}
		} else if e.adopt != nil {
			return nil, false
		}
	}
	return a.answer(req), true
}

// awaitShard waits for a shard's answer on ch; who names the shard in the
// DEADLINE_EXCEEDED error of one that does not answer in time.
func (p *Projections) awaitShard(ctx context.Context, ch <-chan *cairnv1.QueryReply, who string) *cairnv1.QueryReply {
	select {
	case rep := <-ch:
		return rep
	case <-p.closing:
		return &cairnv1.QueryReply{Error: unavailable("projections are closing").Proto()}
	case <-ctx.Done():
		return &cairnv1.QueryReply{Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
			Message: fmt.Sprintf("%s did not answer in time (%v)", who, context.Cause(ctx))}).Proto()}
	}
}

// CacheStats returns the query cache's hits and misses over all shards.
func (p *Projections) CacheStats() (hits, misses uint64) { return p.hits.Load(), p.misses.Load() }

// validateQuery checks what does not depend on the read model.
func (p *Projections) validateQuery(req *cairnv1.QueryRequest) *aggregate.CommandError {
	if err := aggregate.ValidateGraphID("graph_id", req.GetGraphId()); err != nil {
		return aggregate.AsCommandError(err)
	}
	if req.GetAsOf() != nil {
		if err := p.validateAsOf(req.GetAsOf()); err != nil {
			return err
		}
	}
	checkLimit := func(field string, limit uint32) *aggregate.CommandError {
		if limit > readmodel.MaxLimit {
			return invalid(field, "limit %d is above %d", limit, readmodel.MaxLimit)
		}
		return nil
	}
	checkNode := func(field, id string) *aggregate.CommandError {
		if id == "" {
			return invalid(field, "node id is empty")
		}
		return nil
	}
	checkDir := func(field string, d cairnv1.Direction) *aggregate.CommandError {
		if _, ok := cairnv1.Direction_name[int32(d)]; !ok {
			return invalid(field, "unknown direction %d", d)
		}
		return nil
	}
	checkCaps := func(field string, l *cairnv1.TraverseLimits) *aggregate.CommandError {
		caps := p.cfg.Traverse
		if f := l.GetMaxFrontier(); f > uint32(min(caps.MaxFrontier, 1<<31)) {
			return invalid(field+".max_frontier", "%d is above the server's cap %d", f, caps.MaxFrontier)
		}
		if r := l.GetMaxResults(); r > uint32(min(caps.MaxResults, 1<<31)) {
			return invalid(field+".max_results", "%d is above the server's cap %d", r, caps.MaxResults)
		}
		return nil
	}
	switch q := req.GetQuery().(type) {
	case *cairnv1.QueryRequest_GetNode:
		return checkNode("get_node.node_id", q.GetNode.GetNodeId())
	case *cairnv1.QueryRequest_GetEdge:
		if q.GetEdge.GetEdgeId() == "" {
			return invalid("get_edge.edge_id", "edge id is empty")
		}
		return nil
	case *cairnv1.QueryRequest_FindNodes:
		f := q.FindNodes
		if err := checkFindBy("find_nodes", f); err != nil {
			return err
		}
		return checkLimit("find_nodes.limit", f.GetLimit())
	case *cairnv1.QueryRequest_ListNeighbors:
		n := q.ListNeighbors
		return firstError(checkNode("list_neighbors.node_id", n.GetNodeId()), checkDir("list_neighbors.direction", n.GetDirection()),
			checkLimit("list_neighbors.limit", n.GetLimit()))
	case *cairnv1.QueryRequest_KHop:
		k := q.KHop
		if d := k.GetDepth(); d < 1 || d > readmodel.MaxDepth {
			return firstError(checkNode("k_hop.node_id", k.GetNodeId()), invalid("k_hop.depth", "depth %d is not in 1..%d", d, readmodel.MaxDepth))
		}
		return firstError(checkNode("k_hop.node_id", k.GetNodeId()), checkDir("k_hop.direction", k.GetDirection()), checkCaps("k_hop.limits", k.GetLimits()))
	case *cairnv1.QueryRequest_ShortestPath:
		s := q.ShortestPath
		return firstError(checkNode("shortest_path.from_node_id", s.GetFromNodeId()), checkNode("shortest_path.to_node_id", s.GetToNodeId()),
			checkDir("shortest_path.direction", s.GetDirection()), checkCaps("shortest_path.limits", s.GetLimits()))
	case *cairnv1.QueryRequest_GetComponent:
		c := q.GetComponent
		return firstError(checkNode("get_component.node_id", c.GetNodeId()), checkLimit("get_component.limit", c.GetLimit()))
	case *cairnv1.QueryRequest_TopDegree:
		t := q.TopDegree
		if _, ok := cairnv1.DegreeKind_name[int32(t.GetKind())]; !ok {
			return invalid("top_degree.kind", "unknown degree kind %d", t.GetKind())
		}
		if t.GetK() > readmodel.MaxLimit {
			return invalid("top_degree.k", "k %d is above %d", t.GetK(), readmodel.MaxLimit)
		}
	case *cairnv1.QueryRequest_Check, *cairnv1.QueryRequest_Expand:
		return validateAuthzQuery(req)
	case *cairnv1.QueryRequest_ListLinks, *cairnv1.QueryRequest_ExpandNodes, *cairnv1.QueryRequest_LocalSearch:
		return validateLinkQuery(req, checkCaps)
	case *cairnv1.QueryRequest_GetStats, *cairnv1.QueryRequest_CountComponents, *cairnv1.QueryRequest_DescribeGraph:
	case *cairnv1.QueryRequest_ListGraphs, *cairnv1.QueryRequest_FindAcross:
		return invalid("query", "list_graphs and find_across are not about one graph: send them to the graphs subject (api.GraphsSubject)")
	default:
		return invalid("query", "the request holds no query")
	}
	return nil
}

// checkFindBy checks what a find looks for; prefix is the request's path
// to it (find_nodes, find_across).
func checkFindBy(prefix string, f *cairnv1.FindNodes) *aggregate.CommandError {
	switch by := f.GetBy().(type) {
	case *cairnv1.FindNodes_ComponentType:
		if by.ComponentType == "" {
			return invalid(prefix+".component_type", "component type is empty")
		}
	case *cairnv1.FindNodes_Component:
		if by.Component.GetType() == "" {
			return invalid(prefix+".component.type", "component type is empty")
		}
	case *cairnv1.FindNodes_Category:
		if by.Category == "" {
			return invalid(prefix+".category", "category is empty")
		}
	default:
		return invalid(prefix+".by", "give a component type, a component or a category")
	}
	return nil
}

// firstError returns the first non-nil error.
func firstError(errs ...*aggregate.CommandError) *aggregate.CommandError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// cacheKey names one answer: the graph, its version (events applied), and
// the query's kind and deterministic wire form (min_seq and the timeout are
// not part of it). A write raises the version, so stale answers are never
// found again; the LRU and the TTL drop them.
type cacheKey struct {
	graph   string
	version uint64
	kind    int32
	query   string
}

var cacheSeed = maphash.MakeSeed()

// queryField returns req and the field of its "query" oneof that is set,
// nil when none is.
func queryField(req *cairnv1.QueryRequest) (protoreflect.Message, protoreflect.FieldDescriptor) {
	m := req.ProtoReflect()
	return m, m.WhichOneof(m.Descriptor().Oneofs().ByName("query"))
}

// queryKey returns req's cache key on graph g.
func queryKey(g *readmodel.Graph, req *cairnv1.QueryRequest) (cacheKey, bool) {
	m, fd := queryField(req)
	if fd == nil {
		return cacheKey{}, false
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Get(fd).Message().Interface())
	if err != nil {
		return cacheKey{}, false
	}
	return cacheKey{graph: g.ID(), version: g.Version(), kind: int32(fd.Number()), query: string(b)}, true
}

// answer runs req inside the shard actor, through the cache.
func (a *shardActor) answer(req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	graph, asOf := req.GetGraphId(), a.seq
	e := a.graphs[graph]
	switch {
	case e == nil:
		return &cairnv1.QueryReply{AsOfSeq: asOf, Error: notFound("graph_id", "graph %s has no transactions up to seq %d", graph, asOf).Proto()}
	case e.stopped != nil && req.GetDescribeGraph() != nil:
		// The catalogue entry says that the graph stopped, and why.
		return &cairnv1.QueryReply{AsOfSeq: asOf, Result: &cairnv1.QueryReply_Graph{Graph: entryInfo(graph, e)}}
	case e.stopped != nil:
		return &cairnv1.QueryReply{AsOfSeq: asOf, Error: e.stopped.reply().Proto()}
	}
	if a.cache == nil {
		return a.p.answerCached(e.g, req, asOf, e.head, a.headCID(e.head), nil, nil)
	}
	return a.p.answerCached(e.g, req, asOf, e.head, a.headCID(e.head), a.cache.Get, func(k cacheKey, r *cairnv1.QueryReply) { a.cache.Add(k, r) })
}

// answerCached runs req on g, as of stream sequence asOf with head (cid:
// headCID(head)), through a cache (get and put; none when get is nil), and
// counts hits and misses. Shards and time-travel views answer through it.
func (p *Projections) answerCached(g *readmodel.Graph, req *cairnv1.QueryRequest, asOf uint64, head persistence.Head, cid string,
	get func(cacheKey) (*cairnv1.QueryReply, bool), put func(cacheKey, *cairnv1.QueryReply)) *cairnv1.QueryReply {
	var key cacheKey
	cacheable := false
	if get != nil {
		if key, cacheable = queryKey(g, req); cacheable {
			if hit, ok := get(key); ok {
				p.hits.Add(1)
				// The result is shared, read-only; the graph has not changed
				// since it was computed, so it holds as of now.
				return &cairnv1.QueryReply{AsOfSeq: asOf, Cached: true, Result: hit.Result, HeadCid: cid, Position: head.N}
			}
			p.misses.Add(1)
		}
	}
	rep := p.run(g, req.GetGraphId(), req)
	describeReply(rep, head)
	if cacheable && rep.Error == nil && proto.Size(rep) <= p.cfg.CacheMaxReplyBytes {
		put(key, rep)
	}
	out := &cairnv1.QueryReply{AsOfSeq: asOf, Error: rep.Error, Result: rep.Result}
	if rep.Error == nil {
		out.HeadCid, out.Position = cid, head.N
	}
	return out
}

// headCID is h's CID in string form, "" when the chain is empty.
func headCID(h persistence.Head) string {
	if h.N == 0 || !h.CID.Defined() {
		return ""
	}
	return persistence.CIDString(h.CID)
}

// waitReady waits until Start has put the restored read models in the
// shards, bounded by ctx.
func (p *Projections) waitReady(ctx context.Context, graph string) *aggregate.CommandError {
	select {
	case <-p.ready:
		return nil
	default:
	}
	select {
	case <-p.ready:
		return nil
	case <-p.closing:
		return unavailable("projections are closing")
	case <-ctx.Done():
		return &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
			Message: fmt.Sprintf("graph %s: the projections are still restoring their snapshots (%v)", graph, context.Cause(ctx))}
	}
}

// run answers req on g. It turns a panic (a read-model bug) into INTERNAL so
// that the shard goes on.
func (p *Projections) run(g *readmodel.Graph, graph string, req *cairnv1.QueryRequest) (rep *cairnv1.QueryReply) {
	rep = &cairnv1.QueryReply{}
	defer func() {
		if r := recover(); r != nil {
			rep = &cairnv1.QueryReply{Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL,
				Message: fmt.Sprintf("graph %s: query panicked: %v", graph, r)}).Proto()}
		}
	}()
	limit := func(l uint32) int {
		if l == 0 {
			return defaultLimit
		}
		return int(l)
	}
	limits := func(l *cairnv1.TraverseLimits) readmodel.TraverseLimits {
		out := p.cfg.Traverse
		if f := l.GetMaxFrontier(); f > 0 {
			out.MaxFrontier = int(f)
		}
		if r := l.GetMaxResults(); r > 0 {
			out.MaxResults = int(r)
		}
		return out
	}
	var err error
	switch q := req.GetQuery().(type) {
	case *cairnv1.QueryRequest_Check, *cairnv1.QueryRequest_Expand:
		return runAuthz(g, graph, req)
	case *cairnv1.QueryRequest_GetNode:
		var v readmodel.NodeView
		if v, err = g.Node(q.GetNode.GetNodeId()); err == nil {
			rep.Result = &cairnv1.QueryReply_Node{Node: nodeProto(v)}
		}
	case *cairnv1.QueryRequest_GetEdge:
		var (
			e  readmodel.LiveEdge
			ok bool
		)
		switch e, ok, err = g.Edge(q.GetEdge.GetEdgeId()); {
		case err == nil && ok:
			rep.Result = &cairnv1.QueryReply_Edge{Edge: &cairnv1.EdgeView{EdgeId: e.ID, Source: e.From, Target: e.To, EdgeType: e.Type}}
		case err == nil:
			rep.Error = notFound("get_edge.edge_id", "graph %s has no edge %q", graph, q.GetEdge.GetEdgeId()).Proto()
		}
	case *cairnv1.QueryRequest_FindNodes:
		f := q.FindNodes
		var page readmodel.Page
		switch by := f.GetBy().(type) {
		case *cairnv1.FindNodes_ComponentType:
			page, err = g.FindByComponentType(by.ComponentType, f.GetCursor(), limit(f.GetLimit()))
		case *cairnv1.FindNodes_Component:
			page, err = g.FindByComponent(by.Component.GetType(), by.Component.GetValue(), f.GetCursor(), limit(f.GetLimit()))
		case *cairnv1.FindNodes_Category:
			page, err = g.FindByCategory(by.Category, f.GetCursor(), limit(f.GetLimit()))
		}
		if err == nil {
			rep.Result = &cairnv1.QueryReply_Nodes{Nodes: &cairnv1.NodePage{NodeIds: page.IDs, NextCursor: page.Next}}
		}
	case *cairnv1.QueryRequest_ListNeighbors:
		n := q.ListNeighbors
		var page readmodel.NeighborPage
		if page, err = g.Neighbors(n.GetNodeId(), direction(n.GetDirection()), n.GetEdgeType(), n.GetCursor(), limit(n.GetLimit())); err == nil {
			np := &cairnv1.NeighborPage{NextCursor: page.Next, Neighbors: make([]*cairnv1.Neighbor, 0, len(page.Entries))}
			for _, x := range page.Entries {
				np.Neighbors = append(np.Neighbors, &cairnv1.Neighbor{EdgeId: x.EdgeID, NodeId: x.NodeID, EdgeType: x.EdgeType})
			}
			if n.GetFollowLinks() {
				np.Neighbors = followLinks(g, np.Neighbors)
			}
			rep.Result = &cairnv1.QueryReply_Neighbors{Neighbors: np}
		}
	case *cairnv1.QueryRequest_KHop:
		k := q.KHop
		var res readmodel.KHopResult
		if res, err = g.KHop(k.GetNodeId(), direction(k.GetDirection()), k.GetEdgeType(), int(k.GetDepth()), limits(k.GetLimits())); err == nil {
			out := &cairnv1.KHopResult{Nodes: make([]*cairnv1.ReachedNode, 0, len(res.Nodes))}
			for _, r := range res.Nodes {
				out.Nodes = append(out.Nodes, &cairnv1.ReachedNode{NodeId: r.ID, Distance: uint32(r.Distance)})
			}
			rep.Result = &cairnv1.QueryReply_KHop{KHop: out}
		}
	case *cairnv1.QueryRequest_ShortestPath:
		s := q.ShortestPath
		var res readmodel.PathResult
		if res, err = g.ShortestPath(s.GetFromNodeId(), s.GetToNodeId(), direction(s.GetDirection()), s.GetEdgeType(), s.GetWeight(), limits(s.GetLimits())); err == nil {
			rep.Result = &cairnv1.QueryReply_Path{Path: &cairnv1.PathResult{NodeIds: res.Nodes, EdgeIds: res.Edges, Cost: res.Cost}}
		}
	case *cairnv1.QueryRequest_GetComponent:
		c := q.GetComponent
		var res readmodel.ComponentResult
		if res, err = g.Component(c.GetNodeId(), c.GetCursor(), limit(c.GetLimit())); err == nil {
			rep.Result = &cairnv1.QueryReply_Component{Component: &cairnv1.ComponentPage{Size: uint64(res.Size), NodeIds: res.IDs, NextCursor: res.Next}}
		}
	case *cairnv1.QueryRequest_CountComponents:
		var n int
		if n, err = g.ComponentCount(); err == nil {
			rep.Result = &cairnv1.QueryReply_ComponentCount{ComponentCount: &cairnv1.ComponentCount{Components: uint64(n)}}
		}
	case *cairnv1.QueryRequest_TopDegree:
		t := q.TopDegree
		k := int(t.GetK())
		if k == 0 {
			k = 10
		}
		kind := readmodel.TotalDegree
		switch t.GetKind() {
		case cairnv1.DegreeKind_DEGREE_KIND_OUT:
			kind = readmodel.OutDegree
		case cairnv1.DegreeKind_DEGREE_KIND_IN:
			kind = readmodel.InDegree
		}
		var top []readmodel.NodeDegree
		if top, err = g.TopDegree(k, kind); err == nil {
			rep.Result = &cairnv1.QueryReply_Top{Top: &cairnv1.TopNodes{Nodes: nodeDegrees(top)}}
		}
	case *cairnv1.QueryRequest_ListLinks, *cairnv1.QueryRequest_ExpandNodes, *cairnv1.QueryRequest_LocalSearch:
		err = runLinkQuery(g, req, rep, limits)
	case *cairnv1.QueryRequest_DescribeGraph:
		rep.Result = &cairnv1.QueryReply_Graph{Graph: graphInfo(g, persistence.Head{})}
	case *cairnv1.QueryRequest_GetStats:
		var s readmodel.Stats
		if s, err = g.Stats(); err == nil {
			rep.Result = &cairnv1.QueryReply_Stats{Stats: statsProto(s)}
		}
	}
	if err != nil {
		rep.Error = queryError(graph, req, err).Proto()
	}
	return rep
}

func direction(d cairnv1.Direction) readmodel.Direction {
	switch d {
	case cairnv1.Direction_DIRECTION_IN:
		return readmodel.In
	case cairnv1.Direction_DIRECTION_BOTH:
		return readmodel.Both
	}
	return readmodel.Out
}

// queryError turns a read-model error into a typed one whose field is the
// request's path to the culprit, for example "list_neighbors.cursor" or
// "shortest_path.to_node_id".
func queryError(graph string, req *cairnv1.QueryRequest, err error) *aggregate.CommandError {
	msg := fmt.Sprintf("graph %s: %v", graph, err)
	prefix := ""
	if _, fd := queryField(req); fd != nil {
		prefix = string(fd.Name()) + "."
	}
	var nf *readmodel.NodeNotFoundError
	switch {
	case errors.As(err, &nf):
		field := prefix + "node_id"
		if p := req.GetShortestPath(); p != nil {
			field = prefix + "from_node_id"
			if nf.ID != p.GetFromNodeId() {
				field = prefix + "to_node_id"
			}
		}
		return notFound(field, "%s", msg)
	case errors.Is(err, readmodel.ErrNotFound):
		field := ""
		if req.GetShortestPath() == nil { // no path is not about one field
			field = "graph_id" // the graph was deleted
		}
		return notFound(field, "%s", msg)
	case errors.Is(err, readmodel.ErrBadCursor):
		return invalid(prefix+"cursor", "%s", msg)
	case errors.Is(err, readmodel.ErrInvalidArgument):
		return invalid(strings.TrimSuffix(prefix, "."), "%s", msg)
	case errors.Is(err, readmodel.ErrLimitExceeded):
		return &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, Field: prefix + "limits", Message: msg}
	}
	return &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Message: msg}
}

func nodeProto(v readmodel.NodeView) *cairnv1.NodeView {
	out := &cairnv1.NodeView{NodeId: v.ID, Categories: v.Categories, OutDegree: uint32(v.OutDegree), InDegree: uint32(v.InDegree)}
	for _, c := range v.Components {
		out.Components = append(out.Components, &cairnv1.Component{Type: c.Type, Value: c.Value})
	}
	return out
}

func nodeDegrees(ns []readmodel.NodeDegree) []*cairnv1.NodeDegree {
	out := make([]*cairnv1.NodeDegree, 0, len(ns))
	for _, t := range ns {
		out = append(out, &cairnv1.NodeDegree{NodeId: t.ID, Degree: uint32(t.Degree)})
	}
	return out
}

func statsProto(s readmodel.Stats) *cairnv1.GraphStats {
	out := &cairnv1.GraphStats{Version: s.Version, Nodes: uint64(s.Nodes), Edges: uint64(s.Edges), DistinctComponents: uint64(s.DistinctComponents),
		Top: nodeDegrees(s.Top)}
	for _, d := range s.Degrees {
		out.Degrees = append(out.Degrees, &cairnv1.DegreeCount{Degree: uint32(d.Degree), Nodes: uint64(d.Nodes)})
	}
	for _, t := range s.ComponentTypes {
		out.ComponentTypes = append(out.ComponentTypes, &cairnv1.TypeCount{Type: t.Type, Nodes: uint64(t.Nodes)})
	}
	return out
}
