package cairn_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func cmdLink(edge, src, dstGraph, dst, typ string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{
		EdgeId: edge, Source: src, Target: dst, TargetGraph: dstGraph, EdgeType: typ}}}
}

func cmdDisconnect(edge string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: edge}}}
}

func cmdRemoveNode(id string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_RemoveNode{RemoveNode: &cairnv1.RemoveNode{NodeId: id}}}
}

// mustExec runs envelope and fails the test on a refusal; it returns the seq.
func mustExec(t testing.TB, eng *cairn.Engine, e *cairnv1.CommandEnvelope) uint64 {
	t.Helper()
	rep, err := eng.Execute(context.Background(), e)
	if err != nil {
		t.Fatalf("%s %s: %v", e.GetGraphId(), e.GetCommandId(), err)
	}
	return rep.GetSeq()
}

// links lists graph's links as "edge node->graph/node" lines (dangling
// ones end in " dangling"), read at seq.
func links(t testing.TB, eng *cairn.Engine, graph string, seq uint64) []string {
	t.Helper()
	rep, err := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: graph, MinSeq: seq,
		Query: &cairnv1.QueryRequest_ListLinks{ListLinks: &cairnv1.ListLinks{}}})
	if err != nil {
		t.Fatalf("links of %s: %v", graph, err)
	}
	var out []string
	for _, l := range rep.GetLinks().GetLinks() {
		arrow := "->"
		if l.GetDirection() == cairnv1.Direction_DIRECTION_IN {
			arrow = "<-"
		}
		s := fmt.Sprintf("%s %s%s%s/%s", l.GetEdgeId(), l.GetNodeId(), arrow, l.GetOtherGraph(), l.GetOtherNode())
		if l.GetDanglingSince() != 0 {
			s += " dangling"
		}
		out = append(out, s)
	}
	return out
}

func wantLinks(t testing.TB, eng *cairn.Engine, graph string, seq uint64, want ...string) {
	t.Helper()
	if got := links(t, eng, graph, seq); !slices.Equal(got, want) {
		t.Fatalf("links of %s = %q, want %q", graph, got, want)
	}
}

// twoGraphs makes graphs a (nodes a1, a2) and b (b1, b2).
func twoGraphs(t testing.TB, eng *cairn.Engine) {
	mustExec(t, eng, env("a", "a-init", cmdCreate(), cmdAdd("a1", nil), cmdAdd("a2", nil)))
	mustExec(t, eng, env("b", "b-init", cmdCreate(), cmdAdd("b1", nil), cmdAdd("b2", nil)))
}

func TestLinkRecordedInBothGraphs(t *testing.T) {
	eng := openEngineWith(t, t.TempDir(), func(*cairn.Config) {})
	twoGraphs(t, eng)
	seq := mustExec(t, eng, env("a", "l1", cmdLink("e1", "a1", "b", "b1", "knows")))
	wantLinks(t, eng, "a", seq, "e1 a1->b/b1")
	last, _ := eng.Store().StreamLastSeq(context.Background())
	wantLinks(t, eng, "b", last, "e1 b1<-a/a1")

	// A retry with the same id changes nothing in either graph.
	rep, err := eng.Execute(context.Background(), env("a", "l1", cmdLink("e1", "a1", "b", "b1", "knows")))
	if err != nil || !rep.GetDuplicate() {
		t.Fatalf("retry: %v, duplicate %v", err, rep.GetDuplicate())
	}
	if last2, _ := eng.Store().StreamLastSeq(context.Background()); last2 != last {
		t.Fatalf("the retry appended: stream at %d, was %d", last2, last)
	}

	// Neighbours that follow links.
	nr, err := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: "a", MinSeq: last, Query: &cairnv1.QueryRequest_ListNeighbors{
		ListNeighbors: &cairnv1.ListNeighbors{NodeId: "a1", FollowLinks: true}}})
	if err != nil || len(nr.GetNeighbors().GetNeighbors()) != 1 {
		t.Fatalf("neighbours: %v %v", err, nr)
	}
	if n := nr.GetNeighbors().GetNeighbors()[0]; n.GetGraphId() != "b" || n.GetNodeId() != "b1" || n.GetEdgeId() != "e1" {
		t.Fatalf("neighbour = %v, want b/b1 over e1", n)
	}

	// Reference nodes are the engine's.
	for _, c := range []struct {
		name string
		env  *cairnv1.CommandEnvelope
		code error
	}{
		{"remove ref", env("a", "x1", cmdRemoveNode("b/b1")), aggregate.ErrFailedPrecondition},
		{"connect ref", env("a", "x2", cmdConnect("e9", "a2", "b/b1", "")), aggregate.ErrFailedPrecondition},
		{"reserved category", env("a", "x3", cmdAdd("n", []string{"cairn.ref"})), aggregate.ErrInvalidArgument},
		{"not alone", env("a", "x4", cmdAdd("n", nil), cmdLink("e8", "a1", "b", "b2", "")), aggregate.ErrInvalidArgument},
		{"reserved issuer", &cairnv1.CommandEnvelope{GraphId: "a", CommandId: "x5", Issuer: aggregate.LinkIssuer, Commands: []*cairnv1.Command{cmdDisconnect("e1")}}, aggregate.ErrInvalidArgument},
		{"missing target", env("a", "x6", cmdLink("e7", "a1", "b", "nope", "")), aggregate.ErrNotFound},
		{"missing source", env("a", "x7", cmdLink("e7", "nope", "b", "b1", "")), aggregate.ErrNotFound},
		{"to itself", env("a", "x8", cmdLink("e7", "a1", "a", "a2", "")), aggregate.ErrInvalidArgument},
	} {
		if _, err := eng.Execute(context.Background(), c.env); !errors.Is(err, c.code) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.code)
		}
	}
	// The refused link with a missing source left no half in b (undone).
	last, _ = eng.Store().StreamLastSeq(context.Background())
	wantLinks(t, eng, "b", last, "e1 b1<-a/a1")

	// A DisconnectNodes sent to either side removes both halves.
	mustExec(t, eng, env("b", "d1", cmdDisconnect("e1")))
	last, _ = eng.Store().StreamLastSeq(context.Background())
	wantLinks(t, eng, "a", last)
	wantLinks(t, eng, "b", last)
	// Its retry is answered, not refused.
	if rep, err := eng.Execute(context.Background(), env("b", "d1", cmdDisconnect("e1"))); err != nil || !rep.GetDuplicate() {
		t.Fatalf("disconnect retry: %v %v", err, rep)
	}
	// The reference nodes went with their last link.
	for _, g := range []string{"a", "b"} {
		ref := map[string]string{"a": "b/b1", "b": "a/a1"}[g]
		if _, err := eng.Query(context.Background(), getNode(g, ref, last)); !errors.Is(err, aggregate.ErrNotFound) {
			t.Errorf("reference node %s of %s: %v, want NOT_FOUND", ref, g, err)
		}
	}
}

// TestLinkSagaRetryAfterCrash drives the saga's first step by hand (as if
// the engine died after it), then retries the client's command: the link
// completes, once.
func TestLinkSagaRetryAfterCrash(t *testing.T) {
	dir := t.TempDir()
	eng := openEngineWith(t, dir, func(*cairn.Config) {})
	twoGraphs(t, eng)
	// The saga's refused step: a link from a missing node; b's half is
	// undone, and a retry after a2b exists completes it.
	if _, err := eng.Execute(context.Background(), env("a", "l2", cmdLink("e2", "a3", "b", "b2", ""))); !errors.Is(err, aggregate.ErrNotFound) {
		t.Fatalf("link from a missing node: %v", err)
	}
	mustExec(t, eng, env("a", "add-a3", cmdAdd("a3", nil)))
	mustExec(t, eng, env("a", "l2", cmdLink("e2", "a3", "b", "b2", "")))
	last, _ := eng.Store().StreamLastSeq(context.Background())
	wantLinks(t, eng, "a", last, "e2 a3->b/b2")
	wantLinks(t, eng, "b", last, "e2 b2<-a/a3")

	// Restart: the index and the links are read back.
	closeEngine(t, eng)
	eng2 := openEngineWith(t, dir, func(*cairn.Config) {})
	wantLinks(t, eng2, "a", last, "e2 a3->b/b2")
	rep, err := eng2.Execute(context.Background(), env("a", "l2", cmdLink("e2", "a3", "b", "b2", "")))
	if err != nil || !rep.GetDuplicate() {
		t.Fatalf("retry after restart: %v %v", err, rep)
	}
}

func TestLinkDanglingMarkedAndKept(t *testing.T) {
	dir := t.TempDir()
	eng := openEngineWith(t, dir, func(*cairn.Config) {})
	twoGraphs(t, eng)
	mustExec(t, eng, env("a", "l1", cmdLink("e1", "a1", "b", "b1", "")))
	mustExec(t, eng, env("a", "l2", cmdLink("e2", "a2", "b", "b2", "")))
	rm := mustExec(t, eng, env("b", "rm", cmdRemoveNode("b1")))
	// The linker marks a's reference node b/b1 in a transaction of its own.
	waitLinks(t, eng, "a", []string{"e1 a1->b/b1 dangling", "e2 a2->b/b2"})
	rep, _ := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: "a", Query: &cairnv1.QueryRequest_ListLinks{ListLinks: &cairnv1.ListLinks{Dangling: true}}})
	if l := rep.GetLinks().GetLinks(); len(l) != 1 || l[0].GetDanglingSince() != rm {
		t.Fatalf("dangling links = %v, want e1 since %d", l, rm)
	}
	// Deleting b leaves e2 dangling too.
	mustExec(t, eng, env("b", "del", &cairnv1.Command{Kind: &cairnv1.Command_DeleteGraph{DeleteGraph: &cairnv1.DeleteGraph{}}}))
	waitLinks(t, eng, "a", []string{"e1 a1->b/b1 dangling", "e2 a2->b/b2 dangling"})
	// A restart keeps the marks (they are events) and the linker resumes
	// where it was: no mark is sent twice.
	last, _ := eng.Store().StreamLastSeq(context.Background())
	closeEngine(t, eng)
	eng2 := openEngineWith(t, dir, func(*cairn.Config) {})
	wantLinks(t, eng2, "a", last, "e1 a1->b/b1 dangling", "e2 a2->b/b2 dangling")
	// A dangling link is not followed.
	nr, err := eng2.Query(context.Background(), &cairnv1.QueryRequest{GraphId: "a", Query: &cairnv1.QueryRequest_ListNeighbors{
		ListNeighbors: &cairnv1.ListNeighbors{NodeId: "a1", FollowLinks: true}}})
	if err != nil || len(nr.GetNeighbors().GetNeighbors()) != 0 {
		t.Fatalf("neighbours over a dangling link: %v %v", err, nr)
	}
	if after, _ := eng2.Store().StreamLastSeq(context.Background()); after != last {
		t.Fatalf("the restarted linker wrote again: stream at %d, was %d", after, last)
	}
}

// waitLinks polls graph's links until they are want.
func waitLinks(t *testing.T, eng *cairn.Engine, graph string, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		last, _ := eng.Store().StreamLastSeq(context.Background())
		got := links(t, eng, graph, last)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("links of %s = %q, want %q", graph, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCrossGraphPathDifferential checks shortest paths and neighbours
// that follow links, over 4 random graphs with random links and removals
// (some leaving links dangling), against a BFS over the union graph.
func TestCrossGraphPathDifferential(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runCrossGraphDifferential(t, seed, 30, 40, 25) })
	}
	// Larger graphs: longer paths, more rounds of the bidirectional search.
	for _, seed := range []uint64{4, 5} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runCrossGraphDifferential(t, seed, 200, 300, 80) })
	}
}

type xnode struct{ g, n string }
type xedge struct {
	id       string
	from, to xnode
}

// runCrossGraphDifferential: 4 graphs of nodes nodes and localEdges random
// edges each, and up to links links between them.
func runCrossGraphDifferential(t *testing.T, seed uint64, nodes, localEdges, links int) {
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) { cfg.Projections.Shards = 3 })
	graphs := []string{"g0", "g1", "g2", "g3"}
	live := map[xnode]bool{}
	edges := map[string]xedge{} // by graph-qualified id: local edges "g/e", links "e"
	for _, g := range graphs {
		cmds := []*cairnv1.Command{cmdCreate()}
		for i := range nodes {
			cmds = append(cmds, cmdAdd(fmt.Sprintf("n%d", i), nil))
			live[xnode{g, fmt.Sprintf("n%d", i)}] = true
		}
		for i := range localEdges {
			a, b := fmt.Sprintf("n%d", rng.IntN(nodes)), fmt.Sprintf("n%d", rng.IntN(nodes))
			id := fmt.Sprintf("l%d", i)
			cmds = append(cmds, cmdConnect(id, a, b, ""))
			edges[g+"/"+id] = xedge{id, xnode{g, a}, xnode{g, b}}
		}
		mustExec(t, eng, env(g, "init-"+g, cmds...))
	}
	for i := range links {
		ga, gb := graphs[rng.IntN(len(graphs))], graphs[rng.IntN(len(graphs))]
		if ga == gb {
			continue
		}
		a, b := fmt.Sprintf("n%d", rng.IntN(nodes)), fmt.Sprintf("n%d", rng.IntN(nodes))
		id := fmt.Sprintf("x%d", i)
		mustExec(t, eng, env(ga, "link-"+id, cmdLink(id, a, gb, b, "")))
		edges[id] = xedge{id, xnode{ga, a}, xnode{gb, b}}
	}
	beforeRm, _ := eng.Store().StreamLastSeq(context.Background())
	adjBefore := map[xnode][]xnode{}
	var allNodes []xnode
	for _, e := range edges {
		adjBefore[e.from] = append(adjBefore[e.from], e.to)
	}
	for n := range live {
		allNodes = append(allNodes, n)
	}
	slices.SortFunc(allNodes, cmpX)
	// Removals: some nodes go, with their edges (links left dangling).
	for i := range 6 {
		g, n := graphs[rng.IntN(len(graphs))], fmt.Sprintf("n%d", rng.IntN(nodes))
		if !live[xnode{g, n}] {
			continue
		}
		mustExec(t, eng, env(g, fmt.Sprintf("rm%d", i), cmdRemoveNode(n)))
		delete(live, xnode{g, n})
	}
	last, _ := eng.Store().StreamLastSeq(context.Background())
	// The reference: an edge counts when both its ends are live.
	adj := map[xnode][]xnode{}
	for _, e := range edges {
		if live[e.from] && live[e.to] {
			adj[e.from] = append(adj[e.from], e.to)
		}
	}
	// The reference walked in, or both ways, for paths in those directions.
	adjIn, adjBoth := map[xnode][]xnode{}, map[xnode][]xnode{}
	for a, ms := range adj {
		for _, b := range ms {
			adjIn[b] = append(adjIn[b], a)
			adjBoth[a] = append(adjBoth[a], b)
			adjBoth[b] = append(adjBoth[b], a)
		}
	}
	dirAdj := map[cairnv1.Direction]map[xnode][]xnode{cairnv1.Direction_DIRECTION_OUT: adj, cairnv1.Direction_DIRECTION_IN: adjIn, cairnv1.Direction_DIRECTION_BOTH: adjBoth}
	hasEdge := func(id string, a, b xnode) bool {
		e, ok := edges[id]
		if a.g == b.g {
			e, ok = edges[a.g+"/"+id]
		}
		return ok && e.from == a && e.to == b && live[a] && live[b]
	}
	hasStep := func(dir cairnv1.Direction, id string, a, b xnode) bool {
		switch dir {
		case cairnv1.Direction_DIRECTION_IN:
			return hasEdge(id, b, a)
		case cairnv1.Direction_DIRECTION_BOTH:
			return hasEdge(id, a, b) || hasEdge(id, b, a)
		}
		return hasEdge(id, a, b)
	}
	var liveNodes []xnode
	for n := range live {
		liveNodes = append(liveNodes, n)
	}
	slices.SortFunc(liveNodes, func(a, b xnode) int { return cmpX(a, b) })
	found := 0
	for i := range 90 {
		from, to := liveNodes[rng.IntN(len(liveNodes))], liveNodes[rng.IntN(len(liveNodes))]
		dir := []cairnv1.Direction{cairnv1.Direction_DIRECTION_OUT, cairnv1.Direction_DIRECTION_IN, cairnv1.Direction_DIRECTION_BOTH}[i%3]
		want := bfsIn(dirAdj[dir], from, to)
		rep, err := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: from.g, MinSeq: last,
			Query: &cairnv1.QueryRequest_ShortestPath{ShortestPath: &cairnv1.ShortestPath{FromNodeId: from.n, ToNodeId: to.n, ToGraphId: to.g, FollowLinks: true, Direction: dir}}})
		if want < 0 {
			if !errors.Is(err, aggregate.ErrNotFound) {
				t.Fatalf("%v → %v %v: want no path, got %v %v", from, to, dir, err, rep.GetPath())
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v → %v %v: %v (want length %d)", from, to, dir, err, want)
		}
		p := rep.GetPath()
		if len(p.GetEdgeIds()) != want || p.GetNodeIds()[0] != from.n || p.GetGraphIds()[0] != from.g || p.GetNodeIds()[want] != to.n || p.GetGraphIds()[want] != to.g {
			t.Fatalf("%v → %v %v: path %v %v %v has %d edges, want %d", from, to, dir, p.GetGraphIds(), p.GetNodeIds(), p.GetEdgeIds(), len(p.GetEdgeIds()), want)
		}
		for i, id := range p.GetEdgeIds() {
			a, b := xnode{p.GetGraphIds()[i], p.GetNodeIds()[i]}, xnode{p.GetGraphIds()[i+1], p.GetNodeIds()[i+1]}
			if !hasStep(dir, id, a, b) {
				t.Fatalf("%v → %v %v: step %d %v -%s-> %v is no live edge", from, to, dir, i, a, id, b)
			}
		}
		found++
	}
	// Removed endpoints: NOT_FOUND naming the field.
	for _, n := range allNodes {
		if live[n] {
			continue
		}
		for _, c := range []struct {
			from, to xnode
			field    string
		}{{n, liveNodes[0], "shortest_path.from_node_id"}, {liveNodes[0], n, "shortest_path.to_node_id"}} {
			_, err := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: c.from.g, MinSeq: last,
				Query: &cairnv1.QueryRequest_ShortestPath{ShortestPath: &cairnv1.ShortestPath{FromNodeId: c.from.n, ToNodeId: c.to.n, ToGraphId: c.to.g, FollowLinks: true}}})
			var ce *aggregate.CommandError
			if !errors.Is(err, aggregate.ErrNotFound) || !errors.As(err, &ce) || ce.Field != c.field {
				t.Fatalf("path %v → %v (%v removed): got %v, want NOT_FOUND on %s", c.from, c.to, n, err, c.field)
			}
		}
	}
	if found == 0 {
		t.Fatalf("no query found a path: the test checks nothing")
	}
	// KHop that follows links, against the reference's levels, with and
	// without a cap on the nodes reached.
	reachedMany := 0
	for range 40 {
		from, depth := liveNodes[rng.IntN(len(liveNodes))], 1+rng.IntN(4)
		want := khopIn(adj, from, depth)
		var lim *cairnv1.TraverseLimits
		if rng.IntN(3) == 0 {
			lim = &cairnv1.TraverseLimits{MaxResults: uint32(1 + rng.IntN(10))}
		}
		rep, err := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: from.g, MinSeq: last,
			Query: &cairnv1.QueryRequest_KHop{KHop: &cairnv1.KHop{NodeId: from.n, Depth: uint32(depth), FollowLinks: true, Limits: lim}}})
		if lim != nil && len(want) > int(lim.GetMaxResults()) {
			if !errors.Is(err, aggregate.ErrResourceExhausted) {
				t.Fatalf("k-hop %v depth %d, max_results %d: want RESOURCE_EXHAUSTED (%d nodes), got %v", from, depth, lim.GetMaxResults(), len(want), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("k-hop %v depth %d: %v", from, depth, err)
		}
		var got []string
		for _, r := range rep.GetKHop().GetNodes() {
			got = append(got, fmt.Sprintf("%d %s/%s", r.GetDistance(), r.GetGraphId(), r.GetNodeId()))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("k-hop %v depth %d:\n got %q\nwant %q", from, depth, got, want)
		}
		if len(want) > 3 {
			reachedMany++
		}
	}
	if reachedMany == 0 {
		t.Fatalf("no k-hop reached more than 3 nodes: the test checks little")
	}
	// Neighbours that follow links, against the reference's out-edges,
	// once the linker has marked the links whose far end went.
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range liveNodes[:20] {
		var want []string
		for _, m := range adj[n] {
			want = append(want, m.g+"/"+m.n)
		}
		slices.Sort(want)
		for {
			rep, err := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: n.g, Query: &cairnv1.QueryRequest_ListNeighbors{
				ListNeighbors: &cairnv1.ListNeighbors{NodeId: n.n, FollowLinks: true, Limit: 1000}}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range rep.GetNeighbors().GetNeighbors() {
				g := x.GetGraphId()
				if g == "" {
					g = n.g
				}
				got = append(got, g+"/"+x.GetNodeId())
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("neighbours of %v = %v, want %v", n, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Time travel across graphs: as of the seq before the removals, the
	// paths are those of the graphs then.
	for range 20 {
		from, to := allNodes[rng.IntN(len(allNodes))], allNodes[rng.IntN(len(allNodes))]
		want := bfsIn(adjBefore, from, to)
		rep, err := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: from.g, AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: beforeRm}},
			Query: &cairnv1.QueryRequest_ShortestPath{ShortestPath: &cairnv1.ShortestPath{FromNodeId: from.n, ToNodeId: to.n, ToGraphId: to.g, FollowLinks: true}}})
		switch {
		case want < 0 && !errors.Is(err, aggregate.ErrNotFound):
			t.Fatalf("as of %d, %v → %v: want no path, got %v %v", beforeRm, from, to, err, rep.GetPath())
		case want >= 0 && err != nil:
			t.Fatalf("as of %d, %v → %v: %v (want length %d)", beforeRm, from, to, err, want)
		case want >= 0 && len(rep.GetPath().GetEdgeIds()) != want:
			t.Fatalf("as of %d, %v → %v: %d edges, want %d", beforeRm, from, to, len(rep.GetPath().GetEdgeIds()), want)
		}
	}
}

// bfsIn is the length of a shortest path in adj, -1 when there is none.
func bfsIn(adj map[xnode][]xnode, from, to xnode) int {
	dist := map[xnode]int{from: 0}
	q := []xnode{from}
	for len(q) > 0 {
		n := q[0]
		q = q[1:]
		if n == to {
			return dist[n]
		}
		for _, m := range adj[n] {
			if _, ok := dist[m]; !ok {
				dist[m] = dist[n] + 1
				q = append(q, m)
			}
		}
	}
	return -1
}

// khopIn lists the nodes within depth hops of from in adj as "dist g/n",
// by distance, graph, then node.
func khopIn(adj map[xnode][]xnode, from xnode, depth int) []string {
	dist := map[xnode]int{from: 0}
	level := []xnode{from}
	var out []xnode
	for d := 1; d <= depth; d++ {
		var next []xnode
		for _, n := range level {
			for _, m := range adj[n] {
				if _, ok := dist[m]; !ok {
					dist[m] = d
					next = append(next, m)
				}
			}
		}
		slices.SortFunc(next, cmpX)
		out = append(out, next...)
		level = next
	}
	var s []string
	for _, n := range out {
		s = append(s, fmt.Sprintf("%d %s/%s", dist[n], n.g, n.n))
	}
	return s
}

func cmpX(a, b xnode) int {
	if a.g != b.g {
		if a.g < b.g {
			return -1
		}
		return 1
	}
	switch {
	case a.n < b.n:
		return -1
	case a.n > b.n:
		return 1
	}
	return 0
}

// The catalogue counts a graph's reference nodes apart: nodes are its own,
// ref_nodes the nodes of other graphs its links point at (a link made
// from the other side leaves one too), in the list, in describe and as of
// a seq.
func TestCatalogueRefNodesApart(t *testing.T) {
	eng := openEngineWith(t, t.TempDir(), func(*cairn.Config) {})
	twoGraphs(t, eng)
	mustExec(t, eng, env("a", "l1", cmdLink("e1", "a1", "b", "b1", "knows")))
	mustExec(t, eng, env("a", "l2", cmdLink("e2", "a2", "b", "b2", "knows")))
	last, _ := eng.Store().StreamLastSeq(context.Background())
	wantLinks(t, eng, "b", last, "e1 b1<-a/a1", "e2 b2<-a/a2")
	want := map[string][3]uint64{"a": {2, 2, 2}, "b": {2, 2, 2}} // nodes, ref nodes, edges
	check := func(what string, infos []*cairnv1.GraphInfo) {
		t.Helper()
		if len(infos) != 2 {
			t.Fatalf("%s: %v", what, infos)
		}
		for _, info := range infos {
			w := want[info.GetGraphId()]
			if got := [3]uint64{info.GetNodes(), info.GetRefNodes(), info.GetEdges()}; got != w {
				t.Errorf("%s %s: nodes, ref nodes, edges = %v, want %v", what, info.GetGraphId(), got, w)
			}
		}
	}
	check("list", listAll(t, eng, &cairnv1.ListGraphs{}, last))
	var described []*cairnv1.GraphInfo
	for _, g := range []string{"a", "b"} {
		rep, err := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: g, MinSeq: last,
			Query: &cairnv1.QueryRequest_DescribeGraph{DescribeGraph: &cairnv1.DescribeGraph{}}})
		if err != nil {
			t.Fatal(err)
		}
		described = append(described, rep.GetGraph())
	}
	check("describe", described)
	rep, err := eng.Graphs(context.Background(), &cairnv1.QueryRequest{AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: last}},
		Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{}}})
	if err != nil {
		t.Fatal(err)
	}
	check("as of", rep.GetGraphs().GetGraphs())
}

// TestLocalSearchMeetOverWire: local_search with meet through the engine's
// query path: both walks, the meeting, and the checks on its lists.
func TestLocalSearchMeetOverWire(t *testing.T) {
	eng := openEngineWith(t, t.TempDir(), func(*cairn.Config) {})
	seq := mustExec(t, eng, env("m", "m1", cmdCreate(), cmdAdd("a", nil), cmdAdd("b", nil), cmdAdd("c", nil),
		cmdConnect("e1", "a", "b", ""), cmdConnect("e2", "b", "c", "")))
	q := func(ls *cairnv1.LocalSearch) (*cairnv1.QueryReply, error) {
		return eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: "m", MinSeq: seq, Query: &cairnv1.QueryRequest_LocalSearch{LocalSearch: ls}})
	}
	r, err := q(&cairnv1.LocalSearch{Meet: true, SeedIds: []string{"a"}, SeedDists: []uint32{0}, MaxDist: 1,
		BackSeedIds: []string{"c", "zz"}, BackSeedDists: []uint32{0, 0}, BackMaxDist: 1})
	if err != nil {
		t.Fatal(err)
	}
	lr := r.GetLocalReach()
	if !lr.GetMet() || lr.GetMeetNode() != "b" || lr.GetMeetDist() != 2 || lr.GetVisited() != 1 || lr.GetBackVisited() != 1 || !slices.Equal(lr.GetBackMissingSeeds(), []uint32{1}) {
		t.Fatalf("meet: %v", lr)
	}
	_, err = q(&cairnv1.LocalSearch{Meet: true, BackSeedIds: []string{"c"}})
	var ce *aggregate.CommandError
	if !errors.Is(err, aggregate.ErrInvalidArgument) || !errors.As(err, &ce) || ce.Field != "local_search.back_seed_dists" {
		t.Fatalf("back seeds without distances: %v", err)
	}
}

// GetEdge answers an edge's ends and type, a link's half included (its far
// end is the reference node); an unknown id is NOT_FOUND on
// get_edge.edge_id, an empty one INVALID_ARGUMENT. The link saga reads it
// to refuse an edge id the source graph holds before writing anything.
func TestGetEdge(t *testing.T) {
	eng := openEngineWith(t, t.TempDir(), func(*cairn.Config) {})
	twoGraphs(t, eng)
	mustExec(t, eng, env("a", "p", cmdConnect("p", "a1", "a2", "dep")))
	seq := mustExec(t, eng, env("a", "l", cmdLink("l", "a2", "b", "b1", "knows")))
	get := func(edge string) *cairnv1.QueryReply {
		rep, _ := eng.Query(context.Background(), &cairnv1.QueryRequest{GraphId: "a", MinSeq: seq,
			Query: &cairnv1.QueryRequest_GetEdge{GetEdge: &cairnv1.GetEdge{EdgeId: edge}}})
		return rep
	}
	for edge, want := range map[string]*cairnv1.EdgeView{
		"p": {EdgeId: "p", Source: "a1", Target: "a2", EdgeType: "dep"},
		"l": {EdgeId: "l", Source: "a2", Target: "b/b1", EdgeType: "knows"},
	} {
		if got := get(edge).GetEdge(); !proto.Equal(got, want) {
			t.Errorf("edge %s: %v, want %v", edge, got, want)
		}
	}
	for edge, code := range map[string]cairnv1.ErrorCode{"zz": cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, "": cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT} {
		if e := get(edge).GetError(); e.GetCode() != code || e.GetField() != "get_edge.edge_id" {
			t.Errorf("edge %q: %v, want %v on get_edge.edge_id", edge, e, code)
		}
	}
}
