package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

const queryUsage = `Usage:
  cairn query node <graph> <node> [query flags]
  cairn query find <graph> (--component-type T | --component type=value | --category c)
                   [--cursor C] [--limit N] [query flags]
  cairn query neighbors <graph> <node> [--direction out|in|both] [--edge-type T]
                   [--cursor C] [--limit N] [query flags]
  cairn query stats <graph> [query flags]

query asks the engine's read model (the projection shards) over NATS.
node prints a node's degrees, components and categories; find pages through
the nodes holding a component type, a component or a category; neighbors
pages through the edges at a node (default --direction out, any type); stats
prints node and edge counts, the degree histogram, the top-degree nodes and
nodes per component type. A page holds --limit entries (1-1000, default 100)
and ends with "next=C" when there is more: pass --cursor C for the next page.

Every answer starts with as_of_seq=N: it reflects every transaction up to
stream sequence N. Write commands print seq=N: pass --min-seq N to read
your writes (the query waits, up to --timeout, until the graph's projection
has applied N; else it fails with DEADLINE_EXCEEDED). --json prints the
protobuf cairn.v1.QueryReply as one line of JSON (protojson, proto names).

Query flags:
  --min-seq N           wait until the projection has applied stream seq N
`

func runQuery(ctx context.Context, args []string, stdout, _ io.Writer) error {
	sub, args, err := subcommand("query", args, "node", "find", "neighbors", "stats")
	if err != nil {
		return err
	}
	fs := newFlagSet("query " + sub)
	var c clientFlags
	c.register(fs, "query", 10*time.Second)
	minSeq := fs.Uint64("min-seq", 0, "wait until the projection has applied this stream `seq`")
	var compType, component, category, cursor, direction, edgeType string
	var limit int
	if sub == "find" || sub == "neighbors" {
		fs.StringVar(&cursor, "cursor", "", "`cursor` of the next page (printed as next=)")
		fs.IntVar(&limit, "limit", 0, "page size `N`, 1-1000 (default 100)")
	}
	switch sub {
	case "find":
		fs.StringVar(&compType, "component-type", "", "find nodes holding a component of `type`")
		fs.StringVar(&component, "component", "", "find nodes holding component `type=value`")
		fs.StringVar(&category, "category", "", "find nodes in `category`")
	case "neighbors":
		fs.StringVar(&direction, "direction", "out", "`out`, in or both")
		fs.StringVar(&edgeType, "edge-type", "", "only edges of `type`")
	}
	names := []string{"graph"}
	if sub == "node" || sub == "neighbors" {
		names = append(names, "node")
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
	// The engine gives up a little before the client does, so that a
	// min_seq that is not reached is answered DEADLINE_EXCEEDED.
	req := &cairnv1.QueryRequest{GraphId: pos[0], MinSeq: *minSeq, TimeoutMs: uint32(min(c.timeout*9/10, time.Hour).Milliseconds())}
	switch sub {
	case "node":
		req.Query = &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: pos[1]}}
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
		dirs := map[string]cairnv1.Direction{"out": cairnv1.Direction_DIRECTION_OUT, "in": cairnv1.Direction_DIRECTION_IN, "both": cairnv1.Direction_DIRECTION_BOTH}
		dir, ok := dirs[direction]
		if !ok {
			return usage("--direction %q: want out, in or both", direction)
		}
		req.Query = &cairnv1.QueryRequest_ListNeighbors{ListNeighbors: &cairnv1.ListNeighbors{
			NodeId: pos[1], Direction: dir, EdgeType: edgeType, Cursor: cursor, Limit: uint32(limit)}}
	case "stats":
		req.Query = &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}
	}
	if err := actors.ValidateGraphID("graph", req.GetGraphId()); err != nil {
		return err
	}
	rep, err := c.query(ctx, req)
	if err != nil {
		return err
	}
	if c.json {
		if err := writeProtoJSON(stdout, rep); err != nil {
			return err
		}
	} else if rep.GetError() == nil {
		printQueryReply(stdout, rep)
	}
	return actors.ErrorFromProto(rep.GetError())
}

// query makes one request to the "cairn" micro service's query endpoint.
func (c *clientFlags) query(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	rep := &cairnv1.QueryReply{}
	if err := c.request(ctx, actors.QuerySubject, "query", req, rep, ""); err != nil {
		return nil, err
	}
	return rep, nil
}

func printQueryReply(w io.Writer, rep *cairnv1.QueryReply) {
	switch r := rep.GetResult().(type) {
	case *cairnv1.QueryReply_Node:
		n := r.Node
		fmt.Fprintf(w, "as_of_seq=%d node %s out=%d in=%d\n", rep.GetAsOfSeq(), n.GetNodeId(), n.GetOutDegree(), n.GetInDegree())
		for _, c := range n.GetComponents() {
			fmt.Fprintf(w, "  component %s=%s\n", c.GetType(), c.GetValue())
		}
		for _, c := range n.GetCategories() {
			fmt.Fprintf(w, "  category %s\n", c)
		}
	case *cairnv1.QueryReply_Nodes:
		fmt.Fprintf(w, "as_of_seq=%d nodes=%d\n", rep.GetAsOfSeq(), len(r.Nodes.GetNodeIds()))
		for _, id := range r.Nodes.GetNodeIds() {
			fmt.Fprintf(w, "  %s\n", id)
		}
		if next := r.Nodes.GetNextCursor(); next != "" {
			fmt.Fprintf(w, "next=%s\n", next)
		}
	case *cairnv1.QueryReply_Neighbors:
		fmt.Fprintf(w, "as_of_seq=%d edges=%d\n", rep.GetAsOfSeq(), len(r.Neighbors.GetNeighbors()))
		for _, n := range r.Neighbors.GetNeighbors() {
			fmt.Fprintf(w, "  %s %s type=%q\n", n.GetEdgeId(), n.GetNodeId(), n.GetEdgeType())
		}
		if next := r.Neighbors.GetNextCursor(); next != "" {
			fmt.Fprintf(w, "next=%s\n", next)
		}
	case *cairnv1.QueryReply_Stats:
		s := r.Stats
		fmt.Fprintf(w, "as_of_seq=%d version=%d nodes=%d edges=%d distinct_components=%d\n",
			rep.GetAsOfSeq(), s.GetVersion(), s.GetNodes(), s.GetEdges(), s.GetDistinctComponents())
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
