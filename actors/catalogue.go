package actors

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// The catalogue and the queries across graphs (issue 16).
//
// Every shard knows the graphs it holds: their catalogue entries
// (GraphInfo) come from their read models (type, metadata, counts, head,
// times) and from the shard's own state (stopped). A multi-graph request
// (ListGraphs, FindAcross) is scattered to every shard and the answers are
// merged (GatherAcross); a cluster member gathers the same way from every
// member (the engine's graphs.go), each member answering from its own
// shards. The order is the graph id, then, for FindAcross, each graph's
// own find order, and the cursors carry where a page ended (the last graph
// listed; the graph and its own find cursor), so a graph created or
// deleted between two pages makes no page repeat or skip another.
//
// Each source is asked for one more than the page (limit+1): a page whose
// sources answered no more than limit is the last. Where a page ends inside
// one graph's nodes, that graph is asked again for exactly what fits, so
// that the cursor names the node it ended at.

// DescribeGraph answers are built here, for shards and time-travel views.

// graphInfo is g's catalogue entry as of head.
func graphInfo(g *readmodel.Graph, head persistence.Head) *cairnv1.GraphInfo {
	nodes, edges := g.Size()
	refs := g.RefNodes()
	created, changed := g.Times()
	info := &cairnv1.GraphInfo{GraphId: g.ID(), Type: g.Type(), Nodes: uint64(nodes - refs), RefNodes: uint64(refs), Edges: uint64(edges),
		HeadSeq: g.AsOf(), HeadCid: headCID(head), Position: head.N, CreatedUnixNano: created, ChangedUnixNano: changed, Deleted: g.Deleted()}
	if md := g.Metadata(); len(md) > 0 {
		info.Metadata = make(map[string]string, len(md))
		for k, v := range md {
			info.Metadata[k] = v
		}
	}
	return info
}

// entryInfo is the catalogue entry of a graph a shard holds.
func entryInfo(id string, e *projected) *cairnv1.GraphInfo {
	info := &cairnv1.GraphInfo{GraphId: id}
	if e.g != nil {
		info = graphInfo(e.g, e.head)
	}
	if s := e.stopped; s != nil {
		rep := s.reply()
		info.Stopped, info.StoppedReason, info.StoppedSeq, info.StoppedCode = true, s.Error(), s.Seq, rep.Code
	}
	return info
}

// describeReply puts head's CID and position in a DescribeGraph answer
// (run builds it without them).
func describeReply(rep *cairnv1.QueryReply, head persistence.Head) {
	if info := rep.GetGraph(); info != nil {
		info.HeadCid, info.Position = headCID(head), head.N
	}
}

// Cursors: a list cursor names the last graph listed; a find cursor names
// the graph a page ended in and that graph's own find cursor, empty when
// the page ended at the graph's last node (the next page starts after it).

func encodeListCursor(graph string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("l" + graph))
}

func decodeListCursor(field, c string) (string, *aggregate.CommandError) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != 'l' {
		return "", invalid(field, "cursor %q is not a list_graphs cursor", c)
	}
	if err := aggregate.ValidateGraphID(field, string(b[1:])); err != nil {
		return "", invalid(field, "cursor %q names no graph", c)
	}
	return string(b[1:]), nil
}

func encodeFindCursor(graph, inner string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("f" + graph + "\x00" + inner))
}

func decodeFindCursor(field, c string) (graph, inner string, _ *aggregate.CommandError) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 3 || b[0] != 'f' {
		return "", "", invalid(field, "cursor %q is not a find_across cursor", c)
	}
	graph, inner, ok := strings.Cut(string(b[1:]), "\x00")
	if !ok || aggregate.ValidateGraphID(field, graph) != nil {
		return "", "", invalid(field, "cursor %q names no graph", c)
	}
	return graph, inner, nil
}

// ValidateAcross checks a multi-graph request (ListGraphs, FindAcross) as
// a client sent it: the same limits and errors as FindNodes (a limit above
// maxLimit, a bad cursor: INVALID_ARGUMENT naming the field), graph ids,
// and an as_of that is a seq.
func ValidateAcross(req *cairnv1.QueryRequest, maxLimit uint32) *aggregate.CommandError {
	if a := req.GetAsOf(); a != nil {
		s, ok := a.GetPoint().(*cairnv1.AsOf_Seq)
		if !ok {
			return invalid("as_of", "a query across graphs takes a seq (one stream sequence for every graph), not %v", a)
		}
		if s.Seq == 0 {
			return invalid("as_of.seq", "sequence 0 names no point: stream sequences start at 1")
		}
	}
	ids := func(field string, ids []string) *aggregate.CommandError {
		for i, id := range ids {
			if err := aggregate.ValidateGraphID(fmt.Sprintf("%s[%d]", field, i), id); err != nil {
				return aggregate.AsCommandError(err)
			}
		}
		return nil
	}
	switch q := req.GetQuery().(type) {
	case *cairnv1.QueryRequest_ListGraphs:
		l := q.ListGraphs
		if l.GetLimit() > maxLimit {
			return invalid("list_graphs.limit", "limit %d is above %d", l.GetLimit(), maxLimit)
		}
		if c := l.GetCursor(); c != "" {
			if _, err := decodeListCursor("list_graphs.cursor", c); err != nil {
				return err
			}
		}
		return ids("list_graphs.graph_ids", l.GetGraphIds())
	case *cairnv1.QueryRequest_FindAcross:
		f := q.FindAcross
		if err := checkFindBy("find_across", findNodes(f, "", 0)); err != nil {
			return err
		}
		if len(f.GetGraphIds()) == 0 && !f.GetAllGraphs() {
			return invalid("find_across.graph_ids", "name the graphs to search, or set all_graphs")
		}
		if len(f.GetGraphIds()) > 0 && f.GetAllGraphs() {
			return invalid("find_across.all_graphs", "give graph_ids or all_graphs, not both")
		}
		if f.GetLimit() > maxLimit {
			return invalid("find_across.limit", "limit %d is above %d", f.GetLimit(), maxLimit)
		}
		if c := f.GetCursor(); c != "" {
			if _, _, err := decodeFindCursor("find_across.cursor", c); err != nil {
				return err
			}
		}
		return ids("find_across.graph_ids", f.GetGraphIds())
	}
	return invalid("query", "the graphs subject takes list_graphs or find_across")
}

// IsAcross reports whether req is a multi-graph request (ListGraphs,
// FindAcross), which goes to api.GraphsSubject, not to a graph's subject.
func IsAcross(req *cairnv1.QueryRequest) bool {
	return req.GetListGraphs() != nil || req.GetFindAcross() != nil
}

// pageLimit is a request's page size: its limit, 100 when 0.
func pageLimit(req *cairnv1.QueryRequest) int {
	l := req.GetListGraphs().GetLimit()
	if f := req.GetFindAcross(); f != nil {
		l = f.GetLimit()
	}
	if l == 0 {
		return defaultLimit
	}
	return int(l)
}

// withLimit returns a copy of req asking for limit entries.
func withLimit(req *cairnv1.QueryRequest, limit int) *cairnv1.QueryRequest {
	out := proto.CloneOf(req)
	if l := out.GetListGraphs(); l != nil {
		l.Limit = uint32(limit)
	}
	if f := out.GetFindAcross(); f != nil {
		f.Limit = uint32(limit)
	}
	return out
}

// AcrossSource answers a multi-graph request from its share of the graphs
// (a shard, a cluster member): a page of up to the request's limit, whose
// next_cursor is set when it has more. Its limit may pass MaxLimit by the
// one more that GatherAcross asks for.
type AcrossSource func(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply

// GatherAcross answers req, a valid ListGraphs or FindAcross of page size
// limit (0: 100), from sources that each hold a share of the graphs:
// it asks every one for limit+1 at once, merges their pages by graph id
// (a graph two sources hold, a cluster member handing it over, counts
// once: the answer of the later head), and cuts the page at limit. The
// first source error is the answer.
func GatherAcross(ctx context.Context, req *cairnv1.QueryRequest, sources []AcrossSource) *cairnv1.QueryReply {
	limit := pageLimit(req)
	ask := withLimit(req, limit+1)
	reps := make([]*cairnv1.QueryReply, len(sources))
	done := make(chan struct{}, len(sources))
	for i, src := range sources {
		go func() {
			reps[i] = src(ctx, ask)
			done <- struct{}{}
		}()
	}
	for range sources {
		<-done
	}
	asOf := uint64(0)
	for i, rep := range reps {
		if rep.GetError() != nil {
			return &cairnv1.QueryReply{Error: rep.GetError()}
		}
		if i == 0 || rep.GetAsOfSeq() < asOf {
			asOf = rep.GetAsOfSeq()
		}
	}
	if req.GetListGraphs() != nil {
		return &cairnv1.QueryReply{AsOfSeq: asOf, Result: &cairnv1.QueryReply_Graphs{Graphs: mergeList(reps, limit)}}
	}
	page, err := mergeFind(ctx, req, reps, sources, limit)
	if err != nil {
		return &cairnv1.QueryReply{Error: err}
	}
	partialFind(page, reps)
	return &cairnv1.QueryReply{AsOfSeq: asOf, Result: &cairnv1.QueryReply_GraphNodes{GraphNodes: page}}
}

// mergeList merges sorted catalogue pages into one of limit entries.
func mergeList(reps []*cairnv1.QueryReply, limit int) *cairnv1.GraphPage {
	byID := map[string]*cairnv1.GraphInfo{}
	for _, rep := range reps {
		for _, info := range rep.GetGraphs().GetGraphs() {
			if old := byID[info.GetGraphId()]; old == nil || info.GetHeadSeq() > old.GetHeadSeq() {
				byID[info.GetGraphId()] = info
			}
		}
	}
	all := make([]*cairnv1.GraphInfo, 0, len(byID))
	for _, info := range byID {
		all = append(all, info)
	}
	slices.SortFunc(all, func(a, b *cairnv1.GraphInfo) int { return strings.Compare(a.GetGraphId(), b.GetGraphId()) })
	page := &cairnv1.GraphPage{Graphs: all}
	end := ""
	if len(all) > limit {
		page.Graphs = all[:limit]
		page.NextCursor = encodeListCursor(all[limit-1].GetGraphId())
		end = all[limit-1].GetGraphId()
	}
	var pending []string
	for _, rep := range reps {
		pending = append(pending, rep.GetGraphs().GetPending()...)
	}
	page.Pending = inPage(pending, func(id string) bool { return byID[id] != nil }, end)
	return page
}

// inPage returns the graphs of ids (sorted, once each) that a page ending
// at graph end ("" : the last page) could hold and that no source
// answered: the graphs a page names as pending or skipped.
func inPage(ids []string, answered func(string) bool, end string) []string {
	var out []string
	for _, id := range ids {
		if !answered(id) && (end == "" || id <= end) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// partialFind puts in page the graphs reps name as pending or skipped
// that its range holds (byID: the graphs some source found nodes in).
func partialFind(page *cairnv1.GraphNodePage, reps []*cairnv1.QueryReply) {
	end := ""
	if c := page.GetNextCursor(); c != "" {
		end, _, _ = decodeFindCursor("", c)
	}
	found := map[string]bool{}
	for _, rep := range reps {
		for _, g := range rep.GetGraphNodes().GetGraphs() {
			found[g.GetGraphId()] = true
		}
	}
	answered := func(id string) bool { return found[id] }
	var pending, skipped []string
	why := map[string]*cairnv1.SkippedGraph{}
	for _, rep := range reps {
		pending = append(pending, rep.GetGraphNodes().GetPending()...)
		for _, s := range rep.GetGraphNodes().GetSkipped() {
			skipped = append(skipped, s.GetGraphId())
			why[s.GetGraphId()] = s
		}
	}
	page.Pending = inPage(pending, answered, end)
	for _, id := range inPage(skipped, answered, end) {
		page.Skipped = append(page.Skipped, why[id])
	}
}

// mergeFind merges sorted find pages into one of limit nodes. Where the
// page ends inside a graph's nodes, that graph's source is asked again for
// what fits, for the graph's own cursor at that node.
func mergeFind(ctx context.Context, req *cairnv1.QueryRequest, reps []*cairnv1.QueryReply, sources []AcrossSource, limit int) (*cairnv1.GraphNodePage, *cairnv1.Error) {
	type group struct {
		g   *cairnv1.GraphNodes
		src int
	}
	byID := map[string]group{}
	for i, rep := range reps {
		for _, g := range rep.GetGraphNodes().GetGraphs() {
			if old, ok := byID[g.GetGraphId()]; !ok || g.GetAsOfSeq() > old.g.GetAsOfSeq() {
				byID[g.GetGraphId()] = group{g, i}
			}
		}
	}
	all := make([]group, 0, len(byID))
	for _, g := range byID {
		all = append(all, g)
	}
	slices.SortFunc(all, func(a, b group) int { return strings.Compare(a.g.GetGraphId(), b.g.GetGraphId()) })
	page := &cairnv1.GraphNodePage{}
	n := 0
	for _, gr := range all {
		g := gr.g
		if n+len(g.GetNodeIds()) <= limit {
			page.Graphs = append(page.Graphs, g)
			n += len(g.GetNodeIds())
			continue
		}
		// More than fits: the page ends in g, or just before it.
		if left := limit - n; left > 0 {
			start := ""
			if c := req.GetFindAcross().GetCursor(); c != "" {
				if cg, inner, _ := decodeFindCursor("", c); cg == g.GetGraphId() {
					start = inner
				}
			}
			cut, err := refine(ctx, req, sources[gr.src], g.GetGraphId(), start, left)
			if err != nil {
				return nil, err
			}
			page.Graphs = append(page.Graphs, cut)
			page.NextCursor = encodeFindCursor(cut.GetGraphId(), cut.GetNextCursor())
			return page, nil
		}
		last := page.Graphs[len(page.Graphs)-1]
		page.NextCursor = encodeFindCursor(last.GetGraphId(), last.GetNextCursor())
		return page, nil
	}
	return page, nil
}

// refine asks src for the first left nodes of graph from its own cursor
// start.
func refine(ctx context.Context, req *cairnv1.QueryRequest, src AcrossSource, graph, start string, left int) (*cairnv1.GraphNodes, *cairnv1.Error) {
	one := withLimit(req, left)
	f := one.GetFindAcross()
	f.GraphIds, f.AllGraphs, f.Cursor = []string{graph}, false, ""
	if start != "" {
		f.Cursor = encodeFindCursor(graph, start)
	}
	rep := src(ctx, one)
	if rep.GetError() != nil {
		return nil, rep.GetError()
	}
	gs := rep.GetGraphNodes().GetGraphs()
	if len(gs) != 1 || gs[0].GetGraphId() != graph || len(gs[0].GetNodeIds()) != left {
		// The graph changed between the two asks (a deletion): the page
		// ends before it.
		return nil, (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE,
			Message: fmt.Sprintf("graph %s changed while the page was gathered; ask again", graph)}).Proto()
	}
	return gs[0], nil
}

// acrossRequest asks one shard for its share of a multi-graph request.
type acrossRequest struct {
	req   *cairnv1.QueryRequest
	reply chan<- *cairnv1.QueryReply
	// ids, when set, asks only for the ids of the graphs the request's
	// filter and cursor select (deleted ones included), for time travel.
	ids bool
}

// across answers m inside the shard actor.
func (a *shardActor) across(m *acrossRequest) *cairnv1.QueryReply {
	req := m.req
	var only map[string]bool
	var from, inner string
	after := false
	switch {
	case req.GetListGraphs() != nil:
		l := req.GetListGraphs()
		only = set(l.GetGraphIds())
		if c := l.GetCursor(); c != "" {
			from, _ = decodeListCursor("", c)
			after = true
		}
	default:
		f := req.GetFindAcross()
		only = set(f.GetGraphIds())
		if c := f.GetCursor(); c != "" {
			from, inner, _ = decodeFindCursor("", c)
			after = inner == ""
		}
	}
	// As of a seq, a graph whose first transaction came later had no
	// history then: no view to build.
	at := req.GetAsOf().GetSeq()
	ids := make([]string, 0, len(a.graphs))
	for id, e := range a.graphs {
		if m.ids && at > 0 && e.g != nil && e.g.FirstSeq() > at {
			continue
		}
		if (only == nil || only[id]) && (id > from || id == from && !after) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := &cairnv1.QueryReply{AsOfSeq: a.seq}
	if m.ids {
		page := &cairnv1.GraphPage{}
		for _, id := range ids {
			page.Graphs = append(page.Graphs, &cairnv1.GraphInfo{GraphId: id})
		}
		out.Result = &cairnv1.QueryReply_Graphs{Graphs: page}
		return out
	}
	limit := pageLimit(req)
	if l := req.GetListGraphs(); l != nil {
		page := &cairnv1.GraphPage{}
		for _, id := range ids {
			e := a.graphs[id]
			if e.adopt != nil {
				page.Pending = append(page.Pending, id)
				continue
			}
			if e.g != nil && !e.g.Created() {
				continue
			}
			if !listInto(page, l, entryInfo(id, e), limit) {
				break
			}
		}
		out.Result = &cairnv1.QueryReply_Graphs{Graphs: page}
		return out
	}
	f := req.GetFindAcross()
	page := &cairnv1.GraphNodePage{}
	left := limit
	for _, id := range ids {
		e := a.graphs[id]
		switch {
		case e.adopt != nil:
			page.Pending = append(page.Pending, id)
			continue
		case e.stopped != nil:
			if e.g == nil || !e.g.Deleted() {
				page.Skipped = append(page.Skipped, skippedGraph(id, e.stopped))
			}
			continue
		case e.g == nil || e.g.Deleted() || !e.g.Created():
			continue
		}
		cur := ""
		if id == from {
			cur = inner
		}
		g, err := findIn(e.g, findNodes(f, cur, 0), left)
		if errors.Is(err, readmodel.ErrBadCursor) {
			out.Error = invalid("find_across.cursor", "graph %s: %v", id, err).Proto()
			return out
		}
		if err != nil {
			out.Error = queryError(id, &cairnv1.QueryRequest{GraphId: id, Query: &cairnv1.QueryRequest_FindAcross{FindAcross: f}}, err).Proto()
			return out
		}
		if len(g.NodeIds) == 0 {
			continue
		}
		g.AsOfSeq = e.g.AsOf()
		page.Graphs = append(page.Graphs, g)
		if left -= len(g.NodeIds); left == 0 {
			page.NextCursor = encodeFindCursor(id, g.NextCursor)
			break
		}
	}
	out.Result = &cairnv1.QueryReply_GraphNodes{GraphNodes: page}
	return out
}

// skippedGraph names a graph a find did not search because its
// projection stopped.
func skippedGraph(id string, s *ProjectionStoppedError) *cairnv1.SkippedGraph {
	return &cairnv1.SkippedGraph{GraphId: id, Code: s.reply().Code, Reason: s.Error(), Seq: s.Seq}
}

// findNodes is the FindNodes that f asks of each graph.
func findNodes(f *cairnv1.FindAcross, cursor string, limit uint32) *cairnv1.FindNodes {
	fn := &cairnv1.FindNodes{Cursor: cursor, Limit: limit}
	switch by := f.GetBy().(type) {
	case *cairnv1.FindAcross_ComponentType:
		fn.By = &cairnv1.FindNodes_ComponentType{ComponentType: by.ComponentType}
	case *cairnv1.FindAcross_Component:
		fn.By = &cairnv1.FindNodes_Component{Component: by.Component}
	case *cairnv1.FindAcross_Category:
		fn.By = &cairnv1.FindNodes_Category{Category: by.Category}
	}
	return fn
}

// findIn runs f on g from f's cursor for up to limit nodes (pages of
// readmodel.MaxLimit at most).
func findIn(g *readmodel.Graph, f *cairnv1.FindNodes, limit int) (*cairnv1.GraphNodes, error) {
	out := &cairnv1.GraphNodes{GraphId: g.ID()}
	cursor := f.GetCursor()
	for {
		n := min(limit-len(out.NodeIds), readmodel.MaxLimit)
		var page readmodel.Page
		var err error
		switch by := f.GetBy().(type) {
		case *cairnv1.FindNodes_ComponentType:
			page, err = g.FindByComponentType(by.ComponentType, cursor, n)
		case *cairnv1.FindNodes_Component:
			page, err = g.FindByComponent(by.Component.GetType(), by.Component.GetValue(), cursor, n)
		case *cairnv1.FindNodes_Category:
			page, err = g.FindByCategory(by.Category, cursor, n)
		default:
			return nil, fmt.Errorf("no find criterion: %w", readmodel.ErrInvalidArgument)
		}
		if err != nil {
			return nil, err
		}
		out.NodeIds = append(out.NodeIds, page.IDs...)
		out.NextCursor, cursor = page.Next, page.Next
		if page.Next == "" || len(out.NodeIds) >= limit {
			return out, nil
		}
	}
}

// set is ids as a set, nil when empty.
func set(ids []string) map[string]bool {
	if len(ids) == 0 {
		return nil
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// Across answers a multi-graph request (ListGraphs, FindAcross) from the
// graphs these projections hold, after waiting for its min_seq on every
// shard: a cluster member's share, or every graph. Its limit may be up to
// readmodel.MaxLimit+1 (GatherAcross asks one more); the engine validates
// clients' requests with ValidateAcross. With as_of (a seq), every graph
// as it was at that stream sequence (time travel), graphs without
// transactions up to it absent. Errors as FindNodes': INVALID_ARGUMENT
// (limit, cursor, graph ids), DEADLINE_EXCEEDED, UNAVAILABLE, and as_of's.
func (p *Projections) Across(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	if err := ValidateAcross(req, readmodel.MaxLimit+2); err != nil {
		return &cairnv1.QueryReply{Error: err.Proto()}
	}
	ctx, cancel := QueryContext(ctx, req, p.cfg.QueryTimeout)
	defer cancel()
	if err := p.lost.Load(); err != nil {
		return &cairnv1.QueryReply{Error: dataLoss("", *err).Proto()}
	}
	if err := p.waitReady(ctx, "(every graph)"); err != nil {
		return &cairnv1.QueryReply{Error: err.Proto()}
	}
	if req.GetAsOf() != nil {
		if err := p.validateAsOf(req.GetAsOf()); err != nil {
			return &cairnv1.QueryReply{Error: err.Proto()}
		}
		return p.acrossAt(ctx, req)
	}
	if minSeq := req.GetMinSeq(); minSeq > 0 {
		for i := range p.shards {
			if err := p.waitShard(ctx, i, minSeq); err != nil {
				return &cairnv1.QueryReply{Error: err.Proto()}
			}
		}
	}
	sources := make([]AcrossSource, len(p.shards))
	for i := range p.shards {
		sources[i] = func(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
			return p.askShard(ctx, i, &acrossRequest{req: req})
		}
	}
	return GatherAcross(ctx, req, sources)
}

// QueryContext bounds a query's ctx: by def when ctx has no deadline, and
// by the request's timeout_ms when it gives one.
func QueryContext(ctx context.Context, req *cairnv1.QueryRequest, def time.Duration) (context.Context, context.CancelFunc) {
	cancels := []context.CancelFunc{}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, def)
		cancels = append(cancels, cancel)
	}
	if ms := req.GetTimeoutMs(); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		cancels = append(cancels, cancel)
	}
	return ctx, func() {
		for _, c := range cancels {
			c()
		}
	}
}

// listInto adds info to a page of l when l's filters (deleted, type) keep
// it. It returns false when the page is full: then info is the first entry
// of the next page, and the page's cursor is set.
func listInto(page *cairnv1.GraphPage, l *cairnv1.ListGraphs, info *cairnv1.GraphInfo, limit int) bool {
	if (info.GetDeleted() && !l.GetIncludeDeleted()) || (l.GetType() != "" && info.GetType() != l.GetType()) {
		return true
	}
	if len(page.Graphs) == limit {
		page.NextCursor = encodeListCursor(page.Graphs[limit-1].GetGraphId())
		return false
	}
	page.Graphs = append(page.Graphs, info)
	return true
}

// askShard sends m to shard i and waits for its answer.
func (p *Projections) askShard(ctx context.Context, i int, m *acrossRequest) *cairnv1.QueryReply {
	ch := make(chan *cairnv1.QueryReply, 1)
	m.reply = ch
	p.root.Send(p.shards[i].pid, m)
	return p.awaitShard(ctx, ch, fmt.Sprintf("projection shard %d", i))
}

// waitShard waits until shard i has applied every transaction up to
// minSeq.
func (p *Projections) waitShard(ctx context.Context, i int, minSeq uint64) *aggregate.CommandError {
	sh := p.shards[i]
	for {
		seq, changed := sh.position()
		if seq >= minSeq {
			return nil
		}
		select {
		case <-changed:
		case <-p.closing:
			return unavailable("projections are closing")
		case <-ctx.Done():
			return &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, Field: "min_seq",
				Message: fmt.Sprintf("min_seq %d not reached in time: projection shard %d has applied up to seq %d (%v)", minSeq, i, seq, context.Cause(ctx))}
		}
	}
}

// acrossAt answers a multi-graph request as of a stream sequence: the
// graphs the shards hold (deleted ones too) that the request selects, in
// id order, each asked as it was then through time travel, until the page
// is full.
func (p *Projections) acrossAt(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	var ids []string
	for i := range p.shards {
		rep := p.askShard(ctx, i, &acrossRequest{req: req, ids: true})
		if rep.GetError() != nil {
			return rep
		}
		for _, info := range rep.GetGraphs().GetGraphs() {
			ids = append(ids, info.GetGraphId())
		}
	}
	slices.Sort(ids)
	seq := req.GetAsOf().GetSeq()
	limit := pageLimit(req)
	// at asks graph's time-travel view q; ok is false when the graph had
	// no transactions then (or was deleted).
	at := func(graph string, q *cairnv1.QueryRequest) (*cairnv1.QueryReply, bool, *cairnv1.Error) {
		q.GraphId, q.AsOf = graph, req.GetAsOf()
		rep := p.tt.query(ctx, q)
		switch rep.GetError().GetCode() {
		case cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED:
			return rep, true, nil
		case cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND:
			return nil, false, nil
		}
		return nil, false, rep.GetError()
	}
	// Views are built ahead, window graphs at once (the time-travel build
	// budget, ProjectionConfig.ViewBuilds): warm(i), at the start of each
	// window, describes ids[i:i+window] concurrently, which builds (and
	// caches) their views; the walk then reads them in id order and stops
	// when the page is full, at most window-1 views past it (cached for
	// the next page).
	window := max(p.cfg.ViewBuilds, 1)
	type described struct {
		rep *cairnv1.QueryReply
		ok  bool
		err *cairnv1.Error
	}
	desc := make([]described, len(ids))
	warm := func(i int) {
		if i%window != 0 {
			return
		}
		var wg sync.WaitGroup
		for j := i; j < min(i+window, len(ids)); j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := &desc[j]
				d.rep, d.ok, d.err = at(ids[j], &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_DescribeGraph{DescribeGraph: &cairnv1.DescribeGraph{}}})
			}()
		}
		wg.Wait()
	}
	out := &cairnv1.QueryReply{AsOfSeq: seq}
	if l := req.GetListGraphs(); l != nil {
		page := &cairnv1.GraphPage{}
		for i := range ids {
			warm(i)
			rep, ok, err := desc[i].rep, desc[i].ok, desc[i].err
			if err != nil {
				return &cairnv1.QueryReply{Error: err}
			}
			if ok && !listInto(page, l, rep.GetGraph(), limit) {
				break
			}
		}
		out.Result = &cairnv1.QueryReply_Graphs{Graphs: page}
		return out
	}
	f := req.GetFindAcross()
	var from, inner string
	if c := f.GetCursor(); c != "" {
		from, inner, _ = decodeFindCursor("", c)
	}
	page := &cairnv1.GraphNodePage{}
	left := limit
	for i, id := range ids {
		warm(i)
		if !desc[i].ok && desc[i].err == nil {
			continue // no transaction of it up to seq
		}
		cur := ""
		if id == from {
			cur = inner
		}
		g := &cairnv1.GraphNodes{GraphId: id, AsOfSeq: seq}
		for len(g.NodeIds) < left {
			fn := findNodes(f, cur, uint32(min(left-len(g.NodeIds), readmodel.MaxLimit)))
			rep, ok, err := at(id, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindNodes{FindNodes: fn}})
			if err.GetCode() == cairnv1.ErrorCode_ERROR_CODE_DATA_LOSS {
				// Its stored history fails a check: not searched, named.
				page.Skipped = append(page.Skipped, &cairnv1.SkippedGraph{GraphId: id, Code: err.GetCode(), Reason: err.GetMessage()})
				g.NodeIds = nil
				break
			}
			if err != nil {
				if err.GetField() == "find_nodes.cursor" {
					err.Field = "find_across.cursor"
				}
				return &cairnv1.QueryReply{Error: err}
			}
			if !ok {
				break
			}
			g.NodeIds = append(g.NodeIds, rep.GetNodes().GetNodeIds()...)
			g.NextCursor, cur = rep.GetNodes().GetNextCursor(), rep.GetNodes().GetNextCursor()
			if cur == "" {
				break
			}
		}
		if len(g.NodeIds) == 0 {
			continue
		}
		page.Graphs = append(page.Graphs, g)
		if left -= len(g.NodeIds); left == 0 {
			page.NextCursor = encodeFindCursor(id, g.NextCursor)
			break
		}
	}
	out.Result = &cairnv1.QueryReply_GraphNodes{GraphNodes: page}
	return out
}
