package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The catalogue (cairn graph list, cairn graph show) and the find across
// graphs (cairn query find --graphs|--all-graphs).

const catalogueUsage = `
Catalogue:
  cairn graph list [--type T] [--deleted] [--limit N] [--cursor C] [--all]
                   [--as-of-seq N] [--min-seq N] [client flags]
  cairn graph show <graph> [--as-of-seq N] [--min-seq N] [client flags]

list pages through the catalogue the projections keep, by graph id: a
table of id, type, nodes, edges, head seq (the stream sequence of the
graph's last transaction) and the time of its last change. --type keeps
one type, --deleted lists deleted graphs too, --limit N (1-1000, default
100) entries a page, ending with "next=C" when there is more (pass --cursor
C); --all walks every page. show prints one graph's entry: type, metadata,
counts, head seq, CID and chain position, created and changed times,
deleted, and whether its projection stopped (DATA_LOSS) and why. With
--as-of-seq N both answer as every graph was at stream sequence N. --json
prints the protobuf cairn.v1.GraphPage (list; --all: every page's graphs in
one) or cairn.v1.GraphInfo (show) as JSON. With users, list shows only the
graphs the login may read.
`

// runGraphList is cairn graph list.
func runGraphList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("graph list")
	var c clientFlags
	c.register(fs, "graph", 10*time.Second)
	typ := fs.String("type", "", "only graphs of `type`")
	deleted := fs.Bool("deleted", false, "list deleted graphs too")
	limit := fs.Int("limit", 0, "page size `N`, 1-1000 (default 100)")
	cursor := fs.String("cursor", "", "`cursor` of the next page (printed as next=)")
	all := fs.Bool("all", false, "walk every page")
	asOf := fs.Uint64("as-of-seq", 0, "every graph as it was at stream sequence `N`")
	minSeq := fs.Uint64("min-seq", 0, "wait until the projections have applied stream `seq`")
	if _, err := parseArgs(fs, "graph", args); err != nil {
		return err
	}
	if *limit < 0 || *limit > 1000 {
		return &usageError{topic: "graph", err: fmt.Errorf("graph list: --limit %d is not in 1..1000", *limit)}
	}
	l := &cairnv1.ListGraphs{Type: *typ, IncludeDeleted: *deleted, Limit: uint32(*limit), Cursor: *cursor}
	req := &cairnv1.QueryRequest{MinSeq: *minSeq, TimeoutMs: uint32(engineTimeout(c.timeout).Milliseconds()),
		Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: l}}
	if *asOf > 0 {
		req.AsOf = &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: *asOf}}
	}
	out := &cairnv1.GraphPage{}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !c.json {
		fmt.Fprintln(tw, "GRAPH\tTYPE\tNODES\tEDGES\tHEAD\tCHANGED")
	}
	next, err := c.walkGraphs(ctx, req, *all, func(next string) { l.Cursor = next }, func(rep *cairnv1.QueryReply) string {
		page := rep.GetGraphs()
		out.Graphs = append(out.Graphs, page.GetGraphs()...)
		out.Pending = append(out.Pending, page.GetPending()...)
		for _, g := range page.GetGraphs() {
			if !c.json {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", g.GetGraphId(), orDash(g.GetType()), g.GetNodes(), g.GetEdges(), g.GetHeadSeq(), changed(g))
			}
		}
		return page.GetNextCursor()
	})
	if err != nil {
		return err
	}
	out.NextCursor = next
	notePartial(stderr, out.GetPending(), nil)
	return c.endPages(stdout, tw, out, next)
}

// notePartial tells stderr what pages did not hold: the graphs a cluster
// member was still adopting, and those a find skipped because their
// projection stopped.
func notePartial(stderr io.Writer, pending []string, skipped []*cairnv1.SkippedGraph) {
	if len(pending) > 0 {
		fmt.Fprintf(stderr, "cairn: note: %s being adopted by a cluster member (a membership change) and may be missing: ask again\n", strings.Join(pending, ", "))
	}
	for _, s := range skipped {
		fmt.Fprintf(stderr, "cairn: note: graph %s not searched: its projection stopped (%s at seq %d): %s\n", s.GetGraphId(), s.GetCode(), s.GetSeq(), s.GetReason())
	}
}

// walkGraphs asks req on api.GraphsSubject, page by page while all (else
// once), handing each answer to page, which returns its next cursor;
// setCursor puts that cursor in req. It returns the last next cursor.
func (c *clientFlags) walkGraphs(ctx context.Context, req *cairnv1.QueryRequest, all bool, setCursor func(string), page func(*cairnv1.QueryReply) string) (string, error) {
	for {
		rep, err := c.graphs(ctx, req)
		if err != nil {
			return "", err
		}
		next := page(rep)
		if !all || next == "" {
			return next, nil
		}
		setCursor(next)
	}
}

// endPages prints out as JSON with --json, else the table in tw and
// "next=C" when there is more.
func (c *clientFlags) endPages(stdout io.Writer, tw *tabwriter.Writer, out proto.Message, next string) error {
	if c.json {
		return writeProtoJSON(stdout, out)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(stdout, "next=%s\n", next)
	}
	return nil
}

// changed is a catalogue entry's last change, and what it is now.
func changed(g *cairnv1.GraphInfo) string {
	s := stamp(g.GetChangedUnixNano())
	switch {
	case g.GetStopped():
		s += " STOPPED (" + g.GetStoppedCode().String() + ")"
	case g.GetDeleted():
		s += " deleted"
	}
	return s
}

func stamp(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runGraphShow is cairn graph show.
func runGraphShow(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("graph show")
	var c clientFlags
	c.register(fs, "graph", 10*time.Second)
	asOf := fs.Uint64("as-of-seq", 0, "the graph as it was at stream sequence `N`")
	minSeq := fs.Uint64("min-seq", 0, "wait until the projection has applied stream `seq`")
	pos, err := parseArgs(fs, "graph", args, "graph")
	if err != nil {
		return err
	}
	if err := aggregate.ValidateGraphID("graph", pos[0]); err != nil {
		return err
	}
	req := &cairnv1.QueryRequest{GraphId: pos[0], MinSeq: *minSeq, TimeoutMs: uint32(engineTimeout(c.timeout).Milliseconds()),
		Query: &cairnv1.QueryRequest_DescribeGraph{DescribeGraph: &cairnv1.DescribeGraph{}}}
	if *asOf > 0 {
		req.AsOf = &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: *asOf}}
	}
	rep, err := c.query(ctx, req)
	if err != nil {
		return err
	}
	if err := aggregate.ErrorFromProto(rep.GetError()); err != nil {
		return err
	}
	g := rep.GetGraph()
	if c.json {
		return writeProtoJSON(stdout, g)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("graph", g.GetGraphId())
	row("type", orDash(g.GetType()))
	for _, k := range slices.Sorted(maps.Keys(g.GetMetadata())) {
		row("meta "+k, g.GetMetadata()[k])
	}
	row("nodes", g.GetNodes())
	if g.GetRefNodes() > 0 {
		row("ref nodes", fmt.Sprintf("%d (nodes of other graphs that edges here point at; not in nodes)", g.GetRefNodes()))
	}
	row("edges", g.GetEdges())
	row("head seq", g.GetHeadSeq())
	row("head", fmt.Sprintf("%s (position %d)", orDash(g.GetHeadCid()), g.GetPosition()))
	row("created", stamp(g.GetCreatedUnixNano()))
	row("changed", stamp(g.GetChangedUnixNano()))
	row("deleted", g.GetDeleted())
	if g.GetStopped() {
		row("stopped", fmt.Sprintf("%s at seq %d: %s", g.GetStoppedCode(), g.GetStoppedSeq(), g.GetStoppedReason()))
	}
	return tw.Flush()
}

// graphs makes one request on api.GraphsSubject; a refusal is its error.
func (c *clientFlags) graphs(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	rep := &cairnv1.QueryReply{}
	if err := c.request(ctx, api.GraphsSubject, "query", req, rep, ""); err != nil {
		return nil, err
	}
	return rep, aggregate.ErrorFromProto(rep.GetError())
}

// isFindAcross reports whether a cairn query find's arguments ask across
// graphs (--graphs or --all-graphs) rather than in one.
func isFindAcross(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "graphs" || name == "all-graphs") {
			return true
		}
	}
	return false
}

const findAcrossUsage = `
Across graphs:
  cairn query find (--graphs a,b,c | --all-graphs)
                   (--component-type T | --component type=value | --category c)
                   [--as-of-seq N] [--cursor C] [--limit N] [--all] [query flags]

find with --graphs or --all-graphs pages through the nodes of those graphs
(or of every graph) that match, by graph id then in each graph's own find
order, one "graph node" line each; deleted graphs are left out, and graphs
whose projection stopped are not searched: a note on stderr names each
(code, seq, reason), as does "skipped" in --json. --limit counts nodes; --all walks every
page. --as-of-seq N answers as every graph was at stream sequence N
(graphs created later are absent). With users, only the graphs the login
may read are searched. --json prints the protobuf cairn.v1.GraphNodePage
(--all: every page's in one).
`

// runFindAcross is cairn query find --graphs|--all-graphs.
func runFindAcross(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("query find")
	var c clientFlags
	c.register(fs, "query", 10*time.Second)
	graphs := fs.String("graphs", "", "search these graphs, `a,b,c`")
	allGraphs := fs.Bool("all-graphs", false, "search every graph")
	compType := fs.String("component-type", "", "find nodes holding a component of `type`")
	component := fs.String("component", "", "find nodes holding component `type=value`")
	category := fs.String("category", "", "find nodes in `category`")
	limit := fs.Int("limit", 0, "page size `N` in nodes, 1-1000 (default 100)")
	cursor := fs.String("cursor", "", "`cursor` of the next page (printed as next=)")
	all := fs.Bool("all", false, "walk every page")
	asOf := fs.Uint64("as-of-seq", 0, "every graph as it was at stream sequence `N`")
	minSeq := fs.Uint64("min-seq", 0, "wait until the projections have applied stream `seq`")
	if _, err := parseArgs(fs, "query", args); err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		return &usageError{topic: "query", err: fmt.Errorf("query find: "+format, a...)}
	}
	if *limit < 0 || *limit > 1000 {
		return usage("--limit %d is not in 1..1000", *limit)
	}
	f := &cairnv1.FindAcross{AllGraphs: *allGraphs, Cursor: *cursor, Limit: uint32(*limit)}
	if *graphs != "" {
		f.GraphIds = strings.Split(*graphs, ",")
	}
	if (len(f.GraphIds) > 0) == *allGraphs {
		return usage("give --graphs a,b,c or --all-graphs")
	}
	given := 0
	if *compType != "" {
		f.By, given = &cairnv1.FindAcross_ComponentType{ComponentType: *compType}, given+1
	}
	if *component != "" {
		typ, val, err := splitPair(*component, "type")
		if err != nil {
			return usage("--component: %v", err)
		}
		f.By, given = &cairnv1.FindAcross_Component{Component: &cairnv1.Component{Type: typ, Value: []byte(val)}}, given+1
	}
	if *category != "" {
		f.By, given = &cairnv1.FindAcross_Category{Category: *category}, given+1
	}
	if given != 1 {
		return usage("give exactly one of --component-type, --component and --category")
	}
	req := &cairnv1.QueryRequest{MinSeq: *minSeq, TimeoutMs: uint32(engineTimeout(c.timeout).Milliseconds()),
		Query: &cairnv1.QueryRequest_FindAcross{FindAcross: f}}
	if *asOf > 0 {
		req.AsOf = &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: *asOf}}
	}
	out := &cairnv1.GraphNodePage{}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	first := true
	next, err := c.walkGraphs(ctx, req, *all, func(next string) { f.Cursor = next }, func(rep *cairnv1.QueryReply) string {
		page := rep.GetGraphNodes()
		out.Pending = append(out.Pending, page.GetPending()...)
		out.Skipped = append(out.Skipped, page.GetSkipped()...)
		for _, g := range page.GetGraphs() {
			// A graph a page boundary split is one entry of the whole.
			if n := len(out.Graphs); n > 0 && out.Graphs[n-1].GetGraphId() == g.GetGraphId() {
				out.Graphs[n-1].NodeIds = append(out.Graphs[n-1].NodeIds, g.GetNodeIds()...)
				out.Graphs[n-1].NextCursor, out.Graphs[n-1].AsOfSeq = g.GetNextCursor(), g.GetAsOfSeq()
				continue
			}
			out.Graphs = append(out.Graphs, g)
		}
		if !c.json {
			if first {
				fmt.Fprintf(tw, "as_of_seq=%d\n", rep.GetAsOfSeq())
				first = false
			}
			for _, g := range page.GetGraphs() {
				for _, n := range g.GetNodeIds() {
					fmt.Fprintf(tw, "%s\t%s\n", g.GetGraphId(), n)
				}
			}
		}
		return page.GetNextCursor()
	})
	if err != nil {
		return err
	}
	out.NextCursor = next
	notePartial(stderr, out.GetPending(), out.GetSkipped())
	return c.endPages(stdout, tw, out, next)
}
