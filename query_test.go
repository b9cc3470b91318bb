package cairn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// openEngineAt starts an engine on dir with shards projection shards.
func openEngineAt(t *testing.T, dir string, shards int) *cairn.Engine {
	t.Helper()
	return openEngineWith(t, dir, func(cfg *cairn.Config) { cfg.Projections.Shards = shards })
}

// openEngineWith starts an engine on dir with the defaults changed by tune.
func openEngineWith(t testing.TB, dir string, tune func(*cairn.Config)) *cairn.Engine {
	t.Helper()
	cfg := cairn.DefaultConfig(dir)
	cfg.NATSListen = persistence.ListenNone
	tune(&cfg)
	eng, err := cairn.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() { closeEngine(t, eng) })
	return eng
}

func closeEngine(t testing.TB, eng *cairn.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eng.Close(ctx); err != nil {
		t.Errorf("close engine: %v", err)
	}
}

func cmdCreate() *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}
}

func cmdAdd(id string, cats []string, comps ...*cairnv1.Component) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id, Components: comps, Categories: cats}}}
}

func cmdConnect(id, src, dst, typ string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{EdgeId: id, Source: src, Target: dst, EdgeType: typ}}}
}

func getNode(graph, node string, minSeq uint64) *cairnv1.QueryRequest {
	return &cairnv1.QueryRequest{GraphId: graph, MinSeq: minSeq, Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: node}}}
}

// A query with min_seq = a write's seq sees that write, on the written graph
// and on any other graph's shard; after a restart the projections rebuild
// from the stream.
func TestQueryReadYourWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	eng := openEngineAt(t, dir, 4)
	for _, g := range []string{"ryw-a", "ryw-b"} {
		if _, err := eng.Execute(ctx, env(g, "create-"+g, cmdCreate())); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for i := range 40 {
		node := fmt.Sprintf("n%d", i)
		rep, err := eng.Execute(ctx, env("ryw-a", "add-"+node, cmdAdd(node, []string{"c"}, &cairnv1.Component{Type: "i", Value: []byte(fmt.Sprint(i))})))
		if err != nil {
			t.Fatal(err)
		}
		last = rep.GetSeq()
		q, err := eng.Query(ctx, getNode("ryw-a", node, last))
		if err != nil {
			t.Fatalf("query %s at min_seq %d: %v", node, last, err)
		}
		if q.GetAsOfSeq() < last || q.GetNode().GetNodeId() != node {
			t.Fatalf("query %s at min_seq %d: %v", node, last, q)
		}
		// Another graph, maybe on another shard: its answer is as of the write too.
		s, err := eng.Query(ctx, &cairnv1.QueryRequest{GraphId: "ryw-b", MinSeq: last, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
		if err != nil || s.GetAsOfSeq() < last {
			t.Fatalf("stats of ryw-b at min_seq %d: %v %v", last, s, err)
		}
	}
	// A min_seq that is never reached ends with a clear timeout error.
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	rep, err := eng.Query(tctx, getNode("ryw-a", "n0", last+1000))
	if !errors.Is(err, aggregate.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "min_seq") || rep.GetAsOfSeq() < last {
		t.Fatalf("unreachable min_seq: %v %v", rep, err)
	}

	// Restart: the shards rebuild from the stream start.
	closeEngine(t, eng)
	eng2 := openEngineAt(t, dir, 2)
	q, err := eng2.Query(ctx, &cairnv1.QueryRequest{GraphId: "ryw-a", MinSeq: last,
		Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "c"}, Limit: 1000}}})
	if err != nil || len(q.GetNodes().GetNodeIds()) != 40 {
		t.Fatalf("after restart: %v %v", q, err)
	}
}

// A transaction the read model cannot apply stops that graph's projection
// with a health error; other graphs go on being served.
func TestQueryPoisonedTransaction(t *testing.T) {
	ctx := context.Background()
	eng := openEngineAt(t, t.TempDir(), 2)
	for _, g := range []string{"good", "bad"} {
		if _, err := eng.Execute(ctx, env(g, "create-"+g, cmdCreate(), cmdAdd("x", nil))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := eng.Store().Verify(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	// A well-chained transaction whose edge has a missing endpoint: the
	// grain would never write it.
	ev := &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: "e", Source: "x", Target: "ghost"}}}
	now := time.Now().UnixNano()
	recs, _, err := persistence.Seal("bad", "poison-tx", now, res.Head, []*cairnv1.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(&cairnv1.Transaction{GraphId: "bad", TxId: "poison-tx", TimestampUnixNano: now,
		Commands: []*cairnv1.CommandRecord{{CommandId: "poison", EventCount: 1}}, Events: recs})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(eng.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, eng.Store().Subject("bad"), data)
	if err != nil {
		t.Fatal(err)
	}
	// And bytes that are no transaction at all, on a third graph.
	junk, err := js.Publish(ctx, eng.Store().Subject("junk"), []byte{0xff, 0x01})
	if err != nil {
		t.Fatal(err)
	}

	_, err = eng.Query(ctx, getNode("bad", "x", ack.Sequence))
	want := fmt.Sprintf("projection of graph bad stopped at seq %d", ack.Sequence)
	if !errors.Is(err, aggregate.ErrDataLoss) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "missing endpoint") {
		t.Fatalf("query on the poisoned graph: err %v, want DATA_LOSS %q", err, want)
	}
	_, err = eng.Query(ctx, getNode("junk", "x", junk.Sequence))
	if !errors.Is(err, aggregate.ErrDataLoss) || !strings.Contains(err.Error(), fmt.Sprintf("stopped at seq %d", junk.Sequence)) {
		t.Fatalf("query on the junk graph: %v", err)
	}
	stopped := eng.Projections().Stopped()
	if len(stopped) != 2 || stopped["bad"].Seq != ack.Sequence || !errors.Is(stopped["bad"], actors.ErrProjectionStopped) ||
		eng.Projections().Failures() != 2 {
		t.Fatalf("health: stopped %v, failures %d", stopped, eng.Projections().Failures())
	}
	if h := eng.Projections().Health(); h.Failures != 2 || len(h.Stopped) != 2 || !strings.Contains(h.Stopped["bad"], want) || h.AppliedSeq < junk.Sequence {
		t.Fatalf("Health() = %+v", h)
	}
	// The good graph is still served, writes included.
	rep, err := eng.Execute(ctx, env("good", "add-y", cmdAdd("y", nil)))
	if err != nil {
		t.Fatal(err)
	}
	if q, err := eng.Query(ctx, getNode("good", "y", rep.GetSeq())); err != nil || q.GetNode().GetNodeId() != "y" {
		t.Fatalf("good graph after the poison: %v %v", q, err)
	}
}

// The "query" endpoint of the cairn micro service answers protobuf over
// NATS; malformed input gets INVALID_ARGUMENT and the service keeps serving.
func TestQueryGatewayOverNATS(t *testing.T) {
	ctx := context.Background()
	eng := openEngineAt(t, t.TempDir(), 2)
	rep, err := eng.Execute(ctx, env("gw", "c1", cmdCreate(), cmdAdd("a", []string{"pkg"}), cmdAdd("b", nil), cmdConnect("e", "a", "b", "uses")))
	if err != nil {
		t.Fatal(err)
	}
	ask := func(data []byte) *cairnv1.QueryReply {
		t.Helper()
		msg, err := eng.Conn().Request(api.QuerySubject, data, 5*time.Second)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		out := &cairnv1.QueryReply{}
		if err := proto.Unmarshal(msg.Data, out); err != nil {
			t.Fatalf("reply is no QueryReply: %v", err)
		}
		return out
	}
	askQ := func(q *cairnv1.QueryRequest) *cairnv1.QueryReply {
		t.Helper()
		data, err := proto.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		return ask(data)
	}
	invalid := cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT
	for _, junk := range [][]byte{{0xff, 0xff, 0xff}, []byte("{\"graph_id\":\"gw\"}")} {
		if r := ask(junk); r.GetError().GetCode() != invalid {
			t.Fatalf("junk %q: %v", junk, r)
		}
	}
	bad := []*cairnv1.QueryRequest{
		{GraphId: "gw"}, // no query
		{GraphId: "a.b", Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}},
		{GraphId: "gw", Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "pkg"}, Limit: 5000}}},
		{GraphId: "gw", Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{}}},
		{GraphId: "gw", MinSeq: rep.GetSeq(), Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "pkg"}, Cursor: "!!"}}},
		{GraphId: "gw", Query: &cairnv1.QueryRequest_ListNeighbors{ListNeighbors: &cairnv1.ListNeighbors{NodeId: "a", Direction: 9}}},
	}
	for _, q := range bad {
		if r := askQ(q); r.GetError().GetCode() != invalid {
			t.Errorf("%v: %v, want INVALID_ARGUMENT", q, r)
		}
	}
	r := askQ(&cairnv1.QueryRequest{GraphId: "gw", MinSeq: rep.GetSeq(), Query: &cairnv1.QueryRequest_ListNeighbors{
		ListNeighbors: &cairnv1.ListNeighbors{NodeId: "a", Direction: cairnv1.Direction_DIRECTION_BOTH}}})
	want := &cairnv1.NeighborPage{Neighbors: []*cairnv1.Neighbor{{EdgeId: "e", NodeId: "b", EdgeType: "uses"}}}
	if r.GetError() != nil || r.GetAsOfSeq() < rep.GetSeq() || !proto.Equal(r.GetNeighbors(), want) {
		t.Fatalf("neighbours: %v", r)
	}
	r = askQ(&cairnv1.QueryRequest{GraphId: "gw", MinSeq: rep.GetSeq() + 1000, TimeoutMs: 50, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
	if r.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED {
		t.Fatalf("unreachable min_seq: %v", r)
	}
}

// redelivering follows the stream and hands every transaction on twice, and
// every third one once more a few messages later, as a redelivering
// consumer could.
type redelivering struct{ src actors.Follower }

func (r redelivering) Follow(ctx context.Context, from uint64, fn func(persistence.Followed) error) error {
	var back []persistence.Followed
	return r.src.Follow(ctx, from, func(f persistence.Followed) error {
		for range 2 {
			if err := fn(f); err != nil {
				return err
			}
		}
		if f.Seq%3 == 0 {
			back = append(back, f)
		}
		if len(back) > 2 {
			if err := fn(back[0]); err != nil {
				return err
			}
			back = back[1:]
		}
		return nil
	})
}

// Metamorphic and redelivery: on a seeded random command stream over
// several graphs, projections with 1, 2 and 8 shards, one without query
// cache, one that compacts its adjacency every few changes, and one whose
// stream redelivers transactions, answer every query kind identically.
func TestQueryShardCountsAgree(t *testing.T) {
	forEachQuerySeed(t, runQueryShardCountsAgree)
}

func runQueryShardCountsAgree(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := context.Background()
	eng := openEngineAt(t, t.TempDir(), 3)
	graphs := []string{"m0", "m1", "m2", "m3"}
	for _, g := range graphs {
		if _, err := eng.Execute(ctx, env(g, "create-"+g, cmdCreate())); err != nil {
			t.Fatal(err)
		}
	}
	types, cats, etypes := []string{"version", "name", "color"}, []string{"pkg", "person", "team"}, []string{"", "uses", "knows"}
	comp := func() *cairnv1.Component {
		return &cairnv1.Component{Type: types[rng.IntN(len(types))], Value: []byte(fmt.Sprint(rng.IntN(4)))}
	}
	node := func() string { return fmt.Sprintf("n%d", rng.IntN(12)) }
	edge := func() string { return fmt.Sprintf("e%d", rng.IntN(60)) }
	var last uint64
	for i := range 400 {
		g := graphs[rng.IntN(len(graphs))]
		var c *cairnv1.Command
		switch k := rng.IntN(20); {
		case k < 7:
			comps := []*cairnv1.Component{comp(), comp()}
			if comps[0].Type == comps[1].Type { // a node holds one component of a type
				comps = comps[:1]
			}
			c = cmdAdd(node(), []string{cats[rng.IntN(3)]}, comps...)
		case k < 14:
			c = cmdConnect(edge(), node(), node(), etypes[rng.IntN(3)])
		case k < 16:
			c = &cairnv1.Command{Kind: &cairnv1.Command_SetNodeComponents{SetNodeComponents: &cairnv1.SetNodeComponents{NodeId: node(), Components: []*cairnv1.Component{comp()}}}}
		case k < 17:
			c = &cairnv1.Command{Kind: &cairnv1.Command_RemoveNodeComponents{RemoveNodeComponents: &cairnv1.RemoveNodeComponents{NodeId: node(), Types: []string{types[rng.IntN(3)]}}}}
		case k < 19:
			c = &cairnv1.Command{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: edge()}}}
		default:
			c = &cairnv1.Command{Kind: &cairnv1.Command_RemoveNode{RemoveNode: &cairnv1.RemoveNode{NodeId: node()}}}
		}
		// Refused commands (a missing node, a taken id) write nothing.
		if rep, err := eng.Execute(ctx, env(g, fmt.Sprintf("c%d", i), c)); err == nil {
			last = rep.GetSeq()
		}
	}
	if _, err := eng.Execute(ctx, env("m3", "delete-m3", &cairnv1.Command{Kind: &cairnv1.Command_DeleteGraph{DeleteGraph: &cairnv1.DeleteGraph{}}})); err != nil {
		t.Fatal(err)
	}
	if last, _ = eng.Store().LastSeq(ctx, "m3"); last == 0 {
		t.Fatal("no last seq")
	}

	// Every query, paging with small pages to exercise cursors.
	var queries []*cairnv1.QueryRequest
	for _, g := range append(graphs, "none") {
		queries = append(queries, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}},
			&cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_CountComponents{CountComponents: &cairnv1.CountComponents{}}})
		for kind := range cairnv1.DegreeKind(4) {
			for _, k := range []uint32{0, 3} {
				queries = append(queries, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_TopDegree{TopDegree: &cairnv1.TopDegree{K: k, Kind: kind}}})
			}
		}
		for n := range 13 { // n12 is never written
			id := fmt.Sprintf("n%d", n)
			queries = append(queries, getNode(g, id, 0),
				&cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_GetComponent{GetComponent: &cairnv1.GetComponent{NodeId: id, Limit: 2}}})
			for _, d := range []cairnv1.Direction{cairnv1.Direction_DIRECTION_OUT, cairnv1.Direction_DIRECTION_IN, cairnv1.Direction_DIRECTION_BOTH} {
				for _, et := range etypes {
					queries = append(queries, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_ListNeighbors{
						ListNeighbors: &cairnv1.ListNeighbors{NodeId: id, Direction: d, EdgeType: et, Limit: 2}}},
						&cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_KHop{
							KHop: &cairnv1.KHop{NodeId: id, Direction: d, EdgeType: et, Depth: uint32(1 + (n+len(et))%3)}}})
				}
				for _, w := range []string{"", "version"} {
					queries = append(queries, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_ShortestPath{
						ShortestPath: &cairnv1.ShortestPath{FromNodeId: id, ToNodeId: fmt.Sprintf("n%d", (n*5+3)%12), Direction: d, Weight: w}}})
				}
			}
		}
		for _, typ := range types {
			queries = append(queries, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_FindNodes{
				FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_ComponentType{ComponentType: typ}, Limit: 3}}})
			for v := range 4 {
				queries = append(queries, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_FindNodes{
					FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Component{Component: &cairnv1.Component{Type: typ, Value: []byte(fmt.Sprint(v))}}, Limit: 3}}})
			}
		}
		for _, c := range cats {
			queries = append(queries, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_FindNodes{
				FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: c}, Limit: 3}}})
		}
	}
	// answers runs every query, following next cursors, and returns the
	// replies in order. With canon, the pages of a neighbour walk come as
	// one reply sorted by edge id, and a path as its cost and length only:
	// the order of a node's edges and the choice among equal paths follow
	// the edge indices, which depend on when the adjacency was compacted.
	answers := func(q actors.Querier, canon bool) []*cairnv1.QueryReply {
		var out []*cairnv1.QueryReply
		for _, req := range queries {
			req = proto.Clone(req).(*cairnv1.QueryRequest)
			req.MinSeq = last
			var walk *cairnv1.QueryReply
			for {
				rep := q.Query(ctx, req)
				switch {
				case canon && rep.GetNeighbors() != nil && walk != nil:
					walk.GetNeighbors().Neighbors = append(walk.GetNeighbors().Neighbors, rep.GetNeighbors().GetNeighbors()...)
				case canon && rep.GetNeighbors() != nil:
					walk = proto.Clone(rep).(*cairnv1.QueryReply)
					out = append(out, walk)
				case canon && rep.GetPath() != nil:
					p := rep.GetPath()
					out = append(out, &cairnv1.QueryReply{AsOfSeq: rep.GetAsOfSeq(), Result: &cairnv1.QueryReply_Path{Path: &cairnv1.PathResult{
						Cost: p.GetCost(), EdgeIds: make([]string, len(p.GetEdgeIds()))}}})
				default:
					out = append(out, rep)
				}
				next := rep.GetNodes().GetNextCursor() + rep.GetNeighbors().GetNextCursor() + rep.GetComponent().GetNextCursor()
				if next == "" {
					break
				}
				switch k := req.GetQuery().(type) {
				case *cairnv1.QueryRequest_FindNodes:
					k.FindNodes.Cursor = next
				case *cairnv1.QueryRequest_ListNeighbors:
					k.ListNeighbors.Cursor = next
				case *cairnv1.QueryRequest_GetComponent:
					k.GetComponent.Cursor = next
				}
			}
			if walk != nil {
				n := walk.GetNeighbors()
				n.NextCursor = ""
				slices.SortFunc(n.Neighbors, func(a, b *cairnv1.Neighbor) int { return strings.Compare(a.GetEdgeId(), b.GetEdgeId()) })
			}
		}
		return out
	}
	want := answers(eng.Projections(), false)
	canonWant := answers(eng.Projections(), true)
	found, paths, reached := 0, 0, 0
	for _, r := range want {
		if r.GetError() == nil && r.GetNode() != nil {
			found++
		}
		if len(r.GetPath().GetEdgeIds()) > 1 {
			paths++
		}
		reached += len(r.GetKHop().GetNodes())
	}
	t.Logf("%d nodes found, %d paths of 2 edges or more, %d nodes reached by k-hops", found, paths, reached)
	if found < 20 || paths < 5 || reached < 100 {
		t.Fatalf("%d nodes found, %d paths of 2 edges or more, %d nodes reached by k-hops: the stream is too thin to compare", found, paths, reached)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	defer system.Shutdown()
	for _, tc := range []struct {
		name   string
		shards int
		src    actors.Follower
		tune   func(*actors.ProjectionConfig)
		// canon: compare answers as answers(q, true) gives them.
		canon bool
	}{
		{"1 shard", 1, eng.Store(), nil, false},
		{"2 shards", 2, eng.Store(), nil, false},
		{"8 shards", 8, eng.Store(), nil, false},
		{"2 shards, no cache", 2, eng.Store(), func(c *actors.ProjectionConfig) { c.CacheEntries = 0 }, false},
		{"2 shards, compacting", 2, eng.Store(), func(c *actors.ProjectionConfig) { c.ReadModel.CompactMin, c.ReadModel.CompactDivisor = 2, 1 }, true},
		{"8 shards, redelivered", 8, redelivering{eng.Store()}, nil, false},
	} {
		cfg := actors.DefaultProjectionConfig()
		cfg.Shards = tc.shards
		if tc.tune != nil {
			tc.tune(&cfg)
		}
		p, err := actors.NewProjections(system, tc.src, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		got := answers(p, tc.canon)
		if err := p.Close(ctx); err != nil {
			t.Errorf("%s: close: %v", tc.name, err)
		}
		want := want
		if tc.canon {
			want = canonWant
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d answers, want %d", tc.name, len(got), len(want))
		}
		for i := range want {
			// Whether an answer came from a cache is no part of it.
			g, w := proto.Clone(got[i]).(*cairnv1.QueryReply), proto.Clone(want[i]).(*cairnv1.QueryReply)
			g.Cached, w.Cached = false, false
			if !proto.Equal(g, w) {
				t.Fatalf("%s: answer %d differs:\n got %v\nwant %v", tc.name, i, got[i], want[i])
			}
		}
	}
}

// Bad query input gets a typed error: its code and the field at fault.
func TestQueryBadInput(t *testing.T) {
	ctx := context.Background()
	eng := openEngineAt(t, t.TempDir(), 2)
	cmds := []*cairnv1.Command{cmdCreate(), cmdAdd("lonely", []string{"c"})}
	for i := range 5 {
		cmds = append(cmds, cmdAdd(fmt.Sprintf("p%d", i), []string{"c"}, &cairnv1.Component{Type: "w", Value: []byte("1")}))
		if i > 0 {
			cmds = append(cmds, cmdConnect(fmt.Sprintf("e%d", i), fmt.Sprintf("p%d", i-1), fmt.Sprintf("p%d", i), "k"))
		}
	}
	rep, err := eng.Execute(ctx, env("bad", "setup", cmds...))
	if err != nil {
		t.Fatal(err)
	}
	seq := rep.GetSeq()
	q := func(query proto.Message) *cairnv1.QueryRequest { return queryOf("bad", seq, query) }
	// Real cursors of each kind, to hand to the wrong query.
	cursor := func(query proto.Message) string {
		t.Helper()
		r, err := eng.Query(ctx, q(query))
		next := r.GetNodes().GetNextCursor() + r.GetNeighbors().GetNextCursor() + r.GetComponent().GetNextCursor()
		if err != nil || next == "" {
			t.Fatalf("%v: no cursor: %v %v", query, r, err)
		}
		return next
	}
	findCursor := cursor(&cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "c"}, Limit: 1})
	nbrCursor := cursor(&cairnv1.ListNeighbors{NodeId: "p1", Direction: cairnv1.Direction_DIRECTION_BOTH, Limit: 1})
	compCursor := cursor(&cairnv1.GetComponent{NodeId: "p0", Limit: 1})

	const (
		invalid   = cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT
		notFound  = cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND
		exhausted = cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED
		anyField  = "?"
	)
	byCat := &cairnv1.FindNodes_Category{Category: "c"}
	both := cairnv1.Direction_DIRECTION_BOTH
	huge := uint32(1 << 31)
	for _, tc := range []struct {
		name  string
		req   *cairnv1.QueryRequest
		code  cairnv1.ErrorCode
		field string
	}{
		{"unknown graph", &cairnv1.QueryRequest{GraphId: "nope", MinSeq: seq, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}}, notFound, "graph_id"},
		{"unknown graph, traversal", &cairnv1.QueryRequest{GraphId: "nope", Query: &cairnv1.QueryRequest_KHop{KHop: &cairnv1.KHop{NodeId: "p0", Depth: 1}}}, notFound, "graph_id"},
		{"malformed graph id", &cairnv1.QueryRequest{GraphId: "a.b", Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}}, invalid, "graph_id"},
		{"no query", q(nil), invalid, "query"},

		{"find limit above 1000", q(&cairnv1.FindNodes{By: byCat, Limit: 1001}), invalid, "find_nodes.limit"},
		{"neighbours limit above 1000", q(&cairnv1.ListNeighbors{NodeId: "p0", Limit: 1001}), invalid, "list_neighbors.limit"},
		{"component limit above 1000", q(&cairnv1.GetComponent{NodeId: "p0", Limit: 1001}), invalid, "get_component.limit"},
		{"top k above 1000", q(&cairnv1.TopDegree{K: 1001}), invalid, "top_degree.k"},
		{"depth 0", q(&cairnv1.KHop{NodeId: "p0"}), invalid, "k_hop.depth"},
		{"depth 7", q(&cairnv1.KHop{NodeId: "p0", Depth: 7}), invalid, "k_hop.depth"},

		{"find without a key", q(&cairnv1.FindNodes{}), invalid, "find_nodes.by"},
		{"find by an empty type", q(&cairnv1.FindNodes{By: &cairnv1.FindNodes_ComponentType{}}), invalid, "find_nodes.component_type"},
		{"find by a component without type", q(&cairnv1.FindNodes{By: &cairnv1.FindNodes_Component{Component: &cairnv1.Component{Value: []byte("1")}}}), invalid, "find_nodes.component.type"},
		{"find by an empty category", q(&cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{}}), invalid, "find_nodes.category"},

		{"find, malformed cursor", q(&cairnv1.FindNodes{By: byCat, Cursor: "!!"}), invalid, "find_nodes.cursor"},
		{"neighbours, malformed cursor", q(&cairnv1.ListNeighbors{NodeId: "p1", Cursor: "!!"}), invalid, "list_neighbors.cursor"},
		{"component, malformed cursor", q(&cairnv1.GetComponent{NodeId: "p0", Cursor: "!!"}), invalid, "get_component.cursor"},
		{"find, truncated cursor", q(&cairnv1.FindNodes{By: byCat, Cursor: findCursor[:2]}), invalid, "find_nodes.cursor"},
		{"find, a neighbours cursor", q(&cairnv1.FindNodes{By: byCat, Cursor: nbrCursor}), invalid, "find_nodes.cursor"},
		{"find, a component cursor", q(&cairnv1.FindNodes{By: byCat, Cursor: compCursor}), invalid, "find_nodes.cursor"},
		{"neighbours, a find cursor", q(&cairnv1.ListNeighbors{NodeId: "p1", Direction: both, Cursor: findCursor}), invalid, "list_neighbors.cursor"},
		{"neighbours, a component cursor", q(&cairnv1.ListNeighbors{NodeId: "p1", Direction: both, Cursor: compCursor}), invalid, "list_neighbors.cursor"},
		{"neighbours, another node's cursor", q(&cairnv1.ListNeighbors{NodeId: "p2", Direction: both, Cursor: nbrCursor}), invalid, "list_neighbors.cursor"},
		{"neighbours, another direction's cursor", q(&cairnv1.ListNeighbors{NodeId: "p1", Direction: cairnv1.Direction_DIRECTION_IN, Cursor: nbrCursor}), invalid, "list_neighbors.cursor"},
		{"component, a find cursor", q(&cairnv1.GetComponent{NodeId: "p0", Cursor: findCursor}), invalid, "get_component.cursor"},
		{"component, a neighbours cursor", q(&cairnv1.GetComponent{NodeId: "p0", Cursor: nbrCursor}), invalid, "get_component.cursor"},
		{"component, another node's cursor", q(&cairnv1.GetComponent{NodeId: "lonely", Cursor: compCursor}), invalid, "get_component.cursor"},

		{"neighbours, unknown direction", q(&cairnv1.ListNeighbors{NodeId: "p0", Direction: 9}), invalid, "list_neighbors.direction"},
		{"k-hop, unknown direction", q(&cairnv1.KHop{NodeId: "p0", Depth: 1, Direction: 4}), invalid, "k_hop.direction"},
		{"path, unknown direction", q(&cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "p1", Direction: -1}), invalid, "shortest_path.direction"},
		{"top, unknown degree kind", q(&cairnv1.TopDegree{Kind: 4}), invalid, "top_degree.kind"},

		{"node, empty id", q(&cairnv1.GetNode{}), invalid, "get_node.node_id"},
		{"neighbours, empty id", q(&cairnv1.ListNeighbors{}), invalid, "list_neighbors.node_id"},
		{"k-hop, empty id", q(&cairnv1.KHop{Depth: 1}), invalid, "k_hop.node_id"},
		{"path, empty from", q(&cairnv1.ShortestPath{ToNodeId: "p1"}), invalid, "shortest_path.from_node_id"},
		{"path, empty to", q(&cairnv1.ShortestPath{FromNodeId: "p0"}), invalid, "shortest_path.to_node_id"},
		{"component, empty id", q(&cairnv1.GetComponent{}), invalid, "get_component.node_id"},

		{"node, unknown", q(&cairnv1.GetNode{NodeId: "ghost"}), notFound, "get_node.node_id"},
		{"neighbours, unknown node", q(&cairnv1.ListNeighbors{NodeId: "ghost"}), notFound, "list_neighbors.node_id"},
		{"k-hop, unknown node", q(&cairnv1.KHop{NodeId: "ghost", Depth: 1}), notFound, "k_hop.node_id"},
		{"path to an unknown node", q(&cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "ghost"}), notFound, "shortest_path.to_node_id"},
		{"path from an unknown node", q(&cairnv1.ShortestPath{FromNodeId: "ghost", ToNodeId: "p0"}), notFound, "shortest_path.from_node_id"},
		{"weighted path to an unknown node", q(&cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "ghost", Weight: "w"}), notFound, "shortest_path.to_node_id"},
		{"component, unknown node", q(&cairnv1.GetComponent{NodeId: "ghost"}), notFound, "get_component.node_id"},
		{"no path", q(&cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "lonely", Direction: both}), notFound, anyField},
		{"no path against the edges", q(&cairnv1.ShortestPath{FromNodeId: "p4", ToNodeId: "p0", Weight: "w"}), notFound, anyField},

		{"k-hop above its result cap", q(&cairnv1.KHop{NodeId: "p0", Depth: 3, Limits: &cairnv1.TraverseLimits{MaxResults: 2}}), exhausted, "k_hop.limits"},
		{"k-hop above its frontier cap", q(&cairnv1.KHop{NodeId: "p1", Depth: 1, Direction: both, Limits: &cairnv1.TraverseLimits{MaxFrontier: 1}}), exhausted, "k_hop.limits"},
		{"path above its result cap", q(&cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "p4", Limits: &cairnv1.TraverseLimits{MaxResults: 3}}), exhausted, "shortest_path.limits"},
		{"weighted path above its result cap", q(&cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "p4", Weight: "w", Limits: &cairnv1.TraverseLimits{MaxResults: 3}}), exhausted, "shortest_path.limits"},
		{"k-hop cap above the server's", q(&cairnv1.KHop{NodeId: "p0", Depth: 1, Limits: &cairnv1.TraverseLimits{MaxResults: huge}}), invalid, "k_hop.limits.max_results"},
		{"path cap above the server's", q(&cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "p1", Limits: &cairnv1.TraverseLimits{MaxFrontier: huge}}), invalid, "shortest_path.limits.max_frontier"},

		{"min_seq never reached", &cairnv1.QueryRequest{GraphId: "bad", MinSeq: seq + 1000, TimeoutMs: 50, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}},
			cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, "min_seq"},
	} {
		r, err := eng.Query(ctx, tc.req)
		e := r.GetError()
		switch {
		case e.GetCode() != tc.code || (tc.field != anyField && e.GetField() != tc.field):
			t.Errorf("%s: got %v %q, want %v %q (%s)", tc.name, e.GetCode(), e.GetField(), tc.code, tc.field, e.GetMessage())
		case e.GetMessage() == "" || err == nil || r.GetResult() != nil:
			t.Errorf("%s: a failed reply with no message or with a result: %v, %v", tc.name, r, err)
		}
	}

	// The edges of the ranges are fine.
	for _, req := range []*cairnv1.QueryRequest{
		q(&cairnv1.FindNodes{By: byCat, Limit: 1000}),
		q(&cairnv1.ListNeighbors{NodeId: "p0", Limit: 1000}),
		q(&cairnv1.GetComponent{NodeId: "p0", Limit: 1000}),
		q(&cairnv1.TopDegree{K: 1000}),
		q(&cairnv1.KHop{NodeId: "p0", Depth: 1}),
		q(&cairnv1.KHop{NodeId: "p0", Depth: 6}),
		q(&cairnv1.KHop{NodeId: "p0", Depth: 6, Limits: &cairnv1.TraverseLimits{MaxResults: 4, MaxFrontier: 1}}),
		q(&cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "p4", Limits: &cairnv1.TraverseLimits{MaxResults: 5, MaxFrontier: 1}}),
		q(&cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "p0"}),
		q(&cairnv1.CountComponents{}),
	} {
		if r, err := eng.Query(ctx, req); err != nil {
			t.Errorf("%v: %v", req, err)
		} else if r.GetResult() == nil {
			t.Errorf("%v: no result", req)
		}
	}
}

// The query cache answers a repeated query while its graph is unchanged, and
// never after the graph changed; writes to other graphs do not matter.
func TestQueryCache(t *testing.T) {
	ctx := context.Background()
	eng := openEngineAt(t, t.TempDir(), 1) // one shard: both graphs share its cache
	rep, err := eng.Execute(ctx, env("qc", "c1", cmdCreate(), cmdAdd("a", []string{"c"}), cmdAdd("b", []string{"c"}), cmdConnect("ab", "a", "b", "")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Execute(ctx, env("other", "o1", cmdCreate())); err != nil {
		t.Fatal(err)
	}
	ask := func(req *cairnv1.QueryRequest, minSeq uint64, cached bool) *cairnv1.QueryReply {
		t.Helper()
		req = proto.Clone(req).(*cairnv1.QueryRequest)
		req.MinSeq = minSeq
		r, err := eng.Query(ctx, req)
		if err != nil || r.GetCached() != cached || r.GetAsOfSeq() < minSeq {
			t.Fatalf("%v: %v %v, want cached %v", req, r, err, cached)
		}
		return r
	}
	khop := &cairnv1.QueryRequest{GraphId: "qc", Query: &cairnv1.QueryRequest_KHop{KHop: &cairnv1.KHop{NodeId: "a", Depth: 2}}}
	find := &cairnv1.QueryRequest{GraphId: "qc", Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "c"}, Limit: 1}}}
	first := ask(khop, rep.GetSeq(), false)
	if again := ask(khop, rep.GetSeq(), true); !proto.Equal(again.GetKHop(), first.GetKHop()) {
		t.Fatalf("cached %v, computed %v", again, first)
	}
	page := ask(find, rep.GetSeq(), false)
	ask(find, 0, true)
	next := proto.Clone(find).(*cairnv1.QueryRequest)
	next.GetFindNodes().Cursor = page.GetNodes().GetNextCursor()
	ask(next, 0, false) // another page is another query

	// A write to another graph leaves qc's answers cached, and they are as
	// of that write.
	o, err := eng.Execute(ctx, env("other", "o2", cmdAdd("x", nil)))
	if err != nil {
		t.Fatal(err)
	}
	ask(khop, o.GetSeq(), true)

	// A write to qc makes its cached answers unreachable.
	w, err := eng.Execute(ctx, env("qc", "c2", cmdAdd("c", []string{"c"}), cmdConnect("bc", "b", "c", "")))
	if err != nil {
		t.Fatal(err)
	}
	got := ask(khop, w.GetSeq(), false)
	want := &cairnv1.KHopResult{Nodes: []*cairnv1.ReachedNode{{NodeId: "b", Distance: 1}, {NodeId: "c", Distance: 2}}}
	if !proto.Equal(got.GetKHop(), want) {
		t.Fatalf("after the write: %v, want %v", got, want)
	}
	ask(khop, w.GetSeq(), true)
	ask(find, w.GetSeq(), false)
	if hits, misses := eng.Projections().CacheStats(); hits != 4 || misses != 5 {
		t.Fatalf("cache stats: %d hits, %d misses; want 4 and 5", hits, misses)
	}
}

// queryOf wraps one query message (a *cairnv1.GetNode, *cairnv1.KHop, …; nil
// for none) in a request.
func queryOf(graph string, minSeq uint64, query proto.Message) *cairnv1.QueryRequest {
	req := &cairnv1.QueryRequest{GraphId: graph, MinSeq: minSeq}
	if query == nil {
		return req
	}
	m := req.ProtoReflect()
	fields := m.Descriptor().Oneofs().ByName("query").Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Message().FullName() == query.ProtoReflect().Descriptor().FullName() {
			m.Set(fd, protoreflect.ValueOfMessage(query.ProtoReflect()))
			return req
		}
	}
	panic(fmt.Sprintf("no query of type %T", query))
}

// A reply names the head it reflects: after each write, a query on its
// graph (two graphs on one shard, written in turn, with the same number of
// transactions) carries that write's head CID and position.
func TestQueryHeadFollowsWrites(t *testing.T) {
	ctx := context.Background()
	eng := openEngineAt(t, t.TempDir(), 1)
	for i := range 3 {
		for _, g := range []string{"ha", "hb"} {
			cmds := []*cairnv1.Command{cmdAdd(fmt.Sprintf("n%d", i), nil)}
			if i == 0 {
				cmds = append([]*cairnv1.Command{cmdCreate()}, cmds...)
			}
			rep, err := eng.Execute(ctx, env(g, fmt.Sprintf("%s-%d", g, i), cmds...))
			if err != nil || rep.GetError() != nil {
				t.Fatal(err, rep.GetError())
			}
			for range 2 { // computed, then cached
				q, err := eng.Query(ctx, getNode(g, fmt.Sprintf("n%d", i), rep.GetSeq()))
				if err != nil || q.GetError() != nil {
					t.Fatal(err, q.GetError())
				}
				if q.GetHeadCid() != rep.GetHeadCid() || q.GetPosition() != rep.GetPosition() {
					t.Fatalf("%s after write %d: reply head %s at %d, want %s at %d", g, i, q.GetHeadCid(), q.GetPosition(), rep.GetHeadCid(), rep.GetPosition())
				}
			}
		}
	}
}
