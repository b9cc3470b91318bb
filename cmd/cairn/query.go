package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

const queryUsage = `Usage:
  cairn query node <graph> <node> [query flags]
  cairn query edge <graph> <edge> [query flags]
  cairn query find <graph> (--component-type T | --component type=value | --category c)
                   [--cursor C] [--limit N] [query flags]
  cairn query neighbors <graph> <node> [--direction out|in|both] [--edge-type T]
                   [--follow-links] [--cursor C] [--limit N] [query flags]
  cairn query khop <graph> <node> [--depth N] [--direction out|in|both] [--edge-type T]
                   [--max-frontier N] [--max-results N] [--follow-links] [query flags]
  cairn query path <graph> <from> <to> [--weight T] [--direction out|in|both]
                   [--edge-type T] [--max-frontier N] [--max-results N]
                   [--follow-links [--to-graph G]] [query flags]
  cairn query links <graph> [--node N] [--dangling] [--cursor C] [--limit N] [query flags]
  cairn query components <graph> [<node> [--cursor C] [--limit N]] [query flags]
  cairn query top <graph> [--k N] [--kind total|out|in] [query flags]
  cairn query stats <graph> [query flags]
  cairn query check <graph> <object>#<relation>@<subject> [query flags]
  cairn query expand <graph> <object>#<relation> [query flags]

query asks the engine's read model (the projection shards) over NATS.
node prints a node's degrees, components and categories; edge an edge's
source, target and type; find pages through
the nodes holding a component type, a component or a category; neighbors
pages through the edges at a node (default --direction out, any type).
khop lists the nodes within --depth hops (1-6, default 2) by distance; path
prints a shortest path, fewest edges or, with --weight T, least total
weight where entering a node costs its component T (a number; 1 when
absent). A traversal that would pass --max-frontier (one BFS level) or
--max-results (nodes reached) stops with RESOURCE_EXHAUSTED; 0 takes the
server's default. components with a node pages through its weakly
connected component; without one it prints the number of components. top
prints the --k (1-1000, default 10) nodes of highest degree. stats prints
node and edge counts, the degree histogram, the top-degree nodes and nodes
per component type. check (authorization graphs) prints "allowed" or
"denied", the as_of_seq it holds at (the zookie) and the usersets it
looked up; a denied check is an answer, exit status 0. expand prints the
userset tree of object#relation. A page holds --limit entries (1-1000, default 100) and
ends with "next=C" when there is more: pass --cursor C for the next page.

Cross-graph links (docs/cross-graph.md): links lists a graph's links to
other graphs' nodes (--node: at one node; --dangling: only those whose far
end was removed). neighbors --follow-links names a link's far end as
graph/node; khop --follow-links walks on into other graphs and prints each
node reached as graph/node; path --follow-links searches through links
into other graphs (--to-graph: the graph of <to>, default <graph>) and
prints each node as graph/node; --as-of then takes a stream seq, one point
for every graph.

Every answer starts with as_of_seq=N position=P head=CID: it reflects
every transaction up to stream sequence N, the last event it reflects is at
chain position P with that CID ("cached" follows when it came from the
query cache).
Write commands print seq=N: pass --min-seq N to read your writes (the query
waits, up to --timeout, until the graph's projection has applied N; else it
fails with DEADLINE_EXCEEDED). --json prints the protobuf
cairn.v1.QueryReply as one line of JSON (protojson, proto names).

Time travel: --as-of X asks the graph as it was at point X of its history:
the engine builds that view from the nearest earlier read-model snapshot
plus the events after it, and caches it. X is a stream sequence (every
transaction of the graph up to it; past the head is the head), an RFC 3339
time (every transaction stored at or before it) or an event CID (the chain
up to and including that very event). The answer names the event it
reflects, as_of_seq=N position=P head=bafy... (with --json: head_cid and
position).

Query flags:
  --min-seq N           wait until the projection has applied stream seq N
  --as-of X             answer as of X: a stream seq, an RFC 3339 time or an
                        event CID (not with --min-seq)
`

func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "check" || args[0] == "expand") {
		return runAuthzQuery(ctx, args, stdout)
	}
	sub, args, err := subcommand("query", args, "node", "edge", "find", "neighbors", "khop", "path", "components", "top", "stats", "links", "check", "expand")
	if err != nil {
		return err
	}
	if sub == "find" && isFindAcross(args) { // catalogue.go
		return runFindAcross(ctx, args, stdout, stderr)
	}
	fs := newFlagSet("query " + sub)
	var c clientFlags
	c.register(fs, "query", 10*time.Second)
	minSeq := fs.Uint64("min-seq", 0, "wait until the projection has applied this stream `seq`")
	asOf := fs.String("as-of", "", "answer as of this `point`: stream seq, RFC 3339 time or event CID")
	var compType, component, category, cursor, direction, edgeType, weight, kind string
	var limit, depth, k, maxFrontier, maxResults int
	var followLinks, dangling bool
	var toGraph, linkNode string
	switch sub {
	case "neighbors", "khop", "path":
		fs.BoolVar(&followLinks, "follow-links", false, "follow cross-graph links into other graphs")
	case "links":
		fs.StringVar(&linkNode, "node", "", "only the links at local node `N`")
		fs.BoolVar(&dangling, "dangling", false, "only dangling links")
	}
	if sub == "path" {
		fs.StringVar(&toGraph, "to-graph", "", "with --follow-links, the `graph` of <to> (default <graph>)")
	}
	if sub == "find" || sub == "neighbors" || sub == "components" || sub == "links" {
		fs.StringVar(&cursor, "cursor", "", "`cursor` of the next page (printed as next=)")
		fs.IntVar(&limit, "limit", 0, "page size `N`, 1-1000 (default 100)")
	}
	switch sub {
	case "find":
		fs.StringVar(&compType, "component-type", "", "find nodes holding a component of `type`")
		fs.StringVar(&component, "component", "", "find nodes holding component `type=value`")
		fs.StringVar(&category, "category", "", "find nodes in `category`")
	case "neighbors", "khop", "path":
		fs.StringVar(&direction, "direction", "out", "`out`, in or both")
		fs.StringVar(&edgeType, "edge-type", "", "only edges of `type`")
	case "top":
		fs.IntVar(&k, "k", 10, "how many nodes, `N` 1-1000")
		fs.StringVar(&kind, "kind", "total", "rank by `total`, out or in degree")
	}
	switch sub {
	case "khop", "path":
		fs.IntVar(&maxFrontier, "max-frontier", 0, "stop with RESOURCE_EXHAUSTED past `N` nodes in one BFS level (0: server default)")
		fs.IntVar(&maxResults, "max-results", 0, "stop with RESOURCE_EXHAUSTED past `N` nodes reached (0: server default)")
	}
	switch sub {
	case "khop":
		fs.IntVar(&depth, "depth", 2, "hops, `N` 1-6")
	case "path":
		fs.StringVar(&weight, "weight", "", "least total weight: entering a node costs its component `T` (numeric)")
	}
	names := []string{"graph"}
	switch sub {
	case "node", "neighbors", "khop":
		names = append(names, "node")
	case "edge":
		names = append(names, "edge")
	case "path":
		names = append(names, "from", "to")
	case "components":
		names = append(names, "[node]")
	}
	pos, err := parseArgs(fs, "query", args, names...)
	if err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		return &usageError{topic: "query", err: fmt.Errorf("query %s: "+format, append([]any{sub}, a...)...)}
	}
	if limit < 0 || limit > 1000 {
		return usage("--limit %d is not in 1..1000", limit)
	}
	at, err := queryAsOf(*asOf, *minSeq)
	if err != nil {
		return usage("%v", err)
	}
	if maxFrontier < 0 || maxResults < 0 {
		return usage("--max-frontier and --max-results must not be negative")
	}
	dirs := map[string]cairnv1.Direction{"out": cairnv1.Direction_DIRECTION_OUT, "in": cairnv1.Direction_DIRECTION_IN, "both": cairnv1.Direction_DIRECTION_BOTH}
	dir, ok := dirs[direction]
	if direction != "" && !ok {
		return usage("--direction %q: want out, in or both", direction)
	}
	limits := &cairnv1.TraverseLimits{MaxFrontier: uint32(min(maxFrontier, 1<<31)), MaxResults: uint32(min(maxResults, 1<<31))}
	// The engine gives up a little before the client does, so that a
	// min_seq that is not reached is answered DEADLINE_EXCEEDED.
	req := &cairnv1.QueryRequest{GraphId: pos[0], MinSeq: *minSeq, AsOf: at, TimeoutMs: uint32(engineTimeout(c.timeout).Milliseconds())}
	switch sub {
	case "node":
		req.Query = &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: pos[1]}}
	case "edge":
		req.Query = &cairnv1.QueryRequest_GetEdge{GetEdge: &cairnv1.GetEdge{EdgeId: pos[1]}}
	case "find":
		f := &cairnv1.FindNodes{Cursor: cursor, Limit: uint32(limit)}
		given := 0
		if compType != "" {
			f.By, given = &cairnv1.FindNodes_ComponentType{ComponentType: compType}, given+1
		}
		if component != "" {
			typ, val, err := splitPair(component, "type")
			if err != nil {
				return usage("--component: %v", err)
			}
			f.By, given = &cairnv1.FindNodes_Component{Component: &cairnv1.Component{Type: typ, Value: []byte(val)}}, given+1
		}
		if category != "" {
			f.By, given = &cairnv1.FindNodes_Category{Category: category}, given+1
		}
		if given != 1 {
			return usage("give exactly one of --component-type, --component and --category")
		}
		req.Query = &cairnv1.QueryRequest_FindNodes{FindNodes: f}
	case "neighbors":
		req.Query = &cairnv1.QueryRequest_ListNeighbors{ListNeighbors: &cairnv1.ListNeighbors{
			NodeId: pos[1], Direction: dir, EdgeType: edgeType, Cursor: cursor, Limit: uint32(limit), FollowLinks: followLinks}}
	case "links":
		req.Query = &cairnv1.QueryRequest_ListLinks{ListLinks: &cairnv1.ListLinks{NodeId: linkNode, Dangling: dangling, Cursor: cursor, Limit: uint32(limit)}}
	case "khop":
		if depth < 1 || depth > 6 {
			return usage("--depth %d is not in 1..6", depth)
		}
		req.Query = &cairnv1.QueryRequest_KHop{KHop: &cairnv1.KHop{
			NodeId: pos[1], Direction: dir, EdgeType: edgeType, Depth: uint32(depth), Limits: limits, FollowLinks: followLinks}}
	case "path":
		req.Query = &cairnv1.QueryRequest_ShortestPath{ShortestPath: &cairnv1.ShortestPath{
			FromNodeId: pos[1], ToNodeId: pos[2], Direction: dir, EdgeType: edgeType, Weight: weight, Limits: limits,
			FollowLinks: followLinks, ToGraphId: toGraph}}
	case "components":
		if len(pos) < 2 || pos[1] == "" {
			if cursor != "" || limit != 0 {
				return usage("--cursor and --limit page through one node's component: name the node")
			}
			req.Query = &cairnv1.QueryRequest_CountComponents{CountComponents: &cairnv1.CountComponents{}}
		} else {
			req.Query = &cairnv1.QueryRequest_GetComponent{GetComponent: &cairnv1.GetComponent{NodeId: pos[1], Cursor: cursor, Limit: uint32(limit)}}
		}
	case "top":
		kinds := map[string]cairnv1.DegreeKind{"total": cairnv1.DegreeKind_DEGREE_KIND_TOTAL, "out": cairnv1.DegreeKind_DEGREE_KIND_OUT, "in": cairnv1.DegreeKind_DEGREE_KIND_IN}
		kd, ok := kinds[kind]
		if !ok {
			return usage("--kind %q: want total, out or in", kind)
		}
		if k < 1 || k > 1000 {
			return usage("--k %d is not in 1..1000", k)
		}
		req.Query = &cairnv1.QueryRequest_TopDegree{TopDegree: &cairnv1.TopDegree{K: uint32(k), Kind: kd}}
	case "stats":
		req.Query = &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}
	}
	if err := aggregate.ValidateGraphID("graph", req.GetGraphId()); err != nil {
		return err
	}
	return c.ask(ctx, stdout, req, printQueryReply)
}

// queryAsOf is a query's --as-of point (nil when not given); it refuses
// one given with --min-seq.
func queryAsOf(asOf string, minSeq uint64) (*cairnv1.AsOf, error) {
	if asOf == "" {
		return nil, nil
	}
	p, err := parsePoint("--as-of", asOf)
	if err != nil {
		return nil, err
	}
	if minSeq != 0 {
		return nil, errors.New("--as-of and --min-seq do not go together: a view as of a point needs no wait")
	}
	return p.asOf(), nil
}

// ask makes the query req and writes its answer to stdout: the reply as
// JSON with --json, else, when it holds no error, as print writes it. It
// returns the reply's error.
func (c *clientFlags) ask(ctx context.Context, stdout io.Writer, req *cairnv1.QueryRequest, print func(io.Writer, *cairnv1.QueryReply)) error {
	rep, err := c.query(ctx, req)
	if err != nil {
		return err
	}
	if c.json {
		if err := writeProtoJSON(stdout, rep); err != nil {
			return err
		}
	} else if rep.GetError() == nil {
		print(stdout, rep)
	}
	return aggregate.ErrorFromProto(rep.GetError())
}

// query makes one request to the "cairn" micro service's query endpoint.
// engineTimeout is how long the engine may take over a query the client
// waits timeout for: a tenth less, and at least 100 ms less (half of
// timeout when it is shorter than 200 ms), so that the engine's
// DEADLINE_EXCEEDED reaches the client before it gives up, even on a busy
// machine; at most an hour.
func engineTimeout(timeout time.Duration) time.Duration {
	margin := max(timeout/10, min(100*time.Millisecond, timeout/2))
	return min(timeout-margin, time.Hour)
}

func (c *clientFlags) query(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	rep := &cairnv1.QueryReply{}
	if err := c.request(ctx, api.QuerySubjectFor(req.GetGraphId()), "query", req, rep, ""); err != nil {
		return nil, err
	}
	return rep, nil
}

func printQueryReply(w io.Writer, rep *cairnv1.QueryReply) {
	head := fmt.Sprintf("as_of_seq=%d", rep.GetAsOfSeq())
	if h := rep.GetHeadCid(); h != "" {
		head += fmt.Sprintf(" position=%d head=%s", rep.GetPosition(), h)
	}
	if rep.GetCached() {
		head += " cached"
	}
	next := func(c string) {
		if c != "" {
			fmt.Fprintf(w, "next=%s\n", c)
		}
	}
	switch r := rep.GetResult().(type) {
	case *cairnv1.QueryReply_Edge:
		e := r.Edge
		fmt.Fprintf(w, "%s edge %s %s -> %s type=%q\n", head, e.GetEdgeId(), e.GetSource(), e.GetTarget(), e.GetEdgeType())
	case *cairnv1.QueryReply_Node:
		n := r.Node
		fmt.Fprintf(w, "%s node %s out=%d in=%d\n", head, n.GetNodeId(), n.GetOutDegree(), n.GetInDegree())
		for _, c := range n.GetComponents() {
			fmt.Fprintf(w, "  component %s=%s\n", c.GetType(), c.GetValue())
		}
		for _, c := range n.GetCategories() {
			fmt.Fprintf(w, "  category %s\n", c)
		}
	case *cairnv1.QueryReply_Nodes:
		fmt.Fprintf(w, "%s nodes=%d\n", head, len(r.Nodes.GetNodeIds()))
		for _, id := range r.Nodes.GetNodeIds() {
			fmt.Fprintf(w, "  %s\n", id)
		}
		next(r.Nodes.GetNextCursor())
	case *cairnv1.QueryReply_Neighbors:
		fmt.Fprintf(w, "%s edges=%d\n", head, len(r.Neighbors.GetNeighbors()))
		for _, n := range r.Neighbors.GetNeighbors() {
			id := n.GetNodeId()
			if g := n.GetGraphId(); g != "" {
				id = g + "/" + id
			}
			fmt.Fprintf(w, "  %s %s type=%q\n", n.GetEdgeId(), id, n.GetEdgeType())
		}
		next(r.Neighbors.GetNextCursor())
	case *cairnv1.QueryReply_KHop:
		fmt.Fprintf(w, "%s reached=%d\n", head, len(r.KHop.GetNodes()))
		for _, n := range r.KHop.GetNodes() {
			id := n.GetNodeId()
			if n.GetGraphId() != "" {
				id = n.GetGraphId() + "/" + id
			}
			fmt.Fprintf(w, "  %d %s\n", n.GetDistance(), id)
		}
	case *cairnv1.QueryReply_Path:
		p := r.Path
		fmt.Fprintf(w, "%s hops=%d cost=%g\n", head, len(p.GetEdgeIds()), p.GetCost())
		for i, id := range p.GetNodeIds() {
			if gs := p.GetGraphIds(); len(gs) == len(p.GetNodeIds()) {
				id = gs[i] + "/" + id
			}
			if i > 0 {
				fmt.Fprintf(w, "  -[%s]-> %s\n", p.GetEdgeIds()[i-1], id)
			} else {
				fmt.Fprintf(w, "  %s\n", id)
			}
		}
	case *cairnv1.QueryReply_Links:
		fmt.Fprintf(w, "%s links=%d\n", head, len(r.Links.GetLinks()))
		for _, l := range r.Links.GetLinks() {
			arrow := "->"
			if l.GetDirection() == cairnv1.Direction_DIRECTION_IN {
				arrow = "<-"
			}
			line := fmt.Sprintf("  %s %s %s %s/%s type=%q", l.GetEdgeId(), l.GetNodeId(), arrow, l.GetOtherGraph(), l.GetOtherNode(), l.GetEdgeType())
			if s := l.GetDanglingSince(); s != 0 {
				line += fmt.Sprintf(" dangling since seq %d", s)
			}
			fmt.Fprintln(w, line)
		}
		next(r.Links.GetNextCursor())
	case *cairnv1.QueryReply_Component:
		fmt.Fprintf(w, "%s component size=%d nodes=%d\n", head, r.Component.GetSize(), len(r.Component.GetNodeIds()))
		for _, id := range r.Component.GetNodeIds() {
			fmt.Fprintf(w, "  %s\n", id)
		}
		next(r.Component.GetNextCursor())
	case *cairnv1.QueryReply_ComponentCount:
		fmt.Fprintf(w, "%s components=%d\n", head, r.ComponentCount.GetComponents())
	case *cairnv1.QueryReply_Top:
		fmt.Fprintf(w, "%s top=%d\n", head, len(r.Top.GetNodes()))
		for _, t := range r.Top.GetNodes() {
			fmt.Fprintf(w, "  %s degree %d\n", t.GetNodeId(), t.GetDegree())
		}
	case *cairnv1.QueryReply_Stats:
		s := r.Stats
		fmt.Fprintf(w, "%s version=%d nodes=%d edges=%d distinct_components=%d\n",
			head, s.GetVersion(), s.GetNodes(), s.GetEdges(), s.GetDistinctComponents())
		for _, d := range s.GetDegrees() {
			fmt.Fprintf(w, "  degree %d: %d nodes\n", d.GetDegree(), d.GetNodes())
		}
		for _, t := range s.GetTop() {
			fmt.Fprintf(w, "  top %s degree %d\n", t.GetNodeId(), t.GetDegree())
		}
		for _, t := range s.GetComponentTypes() {
			fmt.Fprintf(w, "  type %s: %d nodes\n", t.GetType(), t.GetNodes())
		}
	}
}

// writeProtoJSON prints m as one line of protojson with proto field names.
// protojson varies its whitespace on purpose; compacting makes it stable.
func writeProtoJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}
