package cairn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/actors"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// openEngineAt starts an engine on dir with shards projection shards.
func openEngineAt(t *testing.T, dir string, shards int) *cairn.Engine {
	t.Helper()
	cfg := cairn.DefaultConfig(dir)
	cfg.NATSListen = persistence.ListenNone
	cfg.Projections.Shards = shards
	eng, err := cairn.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() { closeEngine(t, eng) })
	return eng
}

func closeEngine(t *testing.T, eng *cairn.Engine) {
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
	if !errors.Is(err, actors.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "min_seq") || rep.GetAsOfSeq() < last {
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
	recs, _, err := persistence.Seal("bad", "poison-tx", time.Now().UnixNano(), res.Head, []*cairnv1.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(&cairnv1.Transaction{GraphId: "bad", TxId: "poison-tx", TimestampUnixNano: time.Now().UnixNano(),
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
	if !errors.Is(err, actors.ErrInternal) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "missing endpoint") {
		t.Fatalf("query on the poisoned graph: err %v, want INTERNAL %q", err, want)
	}
	_, err = eng.Query(ctx, getNode("junk", "x", junk.Sequence))
	if !errors.Is(err, actors.ErrInternal) || !strings.Contains(err.Error(), fmt.Sprintf("stopped at seq %d", junk.Sequence)) {
		t.Fatalf("query on the junk graph: %v", err)
	}
	stopped := eng.Projections().Stopped()
	if len(stopped) != 2 || stopped["bad"].Seq != ack.Sequence || !errors.Is(stopped["bad"], actors.ErrProjectionStopped) ||
		eng.Projections().Failures() != 2 {
		t.Fatalf("health: stopped %v, failures %d", stopped, eng.Projections().Failures())
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
		msg, err := eng.Conn().Request(actors.QuerySubject, data, 5*time.Second)
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
// several graphs, projections with 1, 2 and 8 shards, and one whose stream
// redelivers transactions, answer every query identically.
func TestQueryShardCountsAgree(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := context.Background()
	eng := openEngineAt(t, t.TempDir(), 3)
	graphs := []string{"m0", "m1", "m2", "m3", "m4", "m5"}
	for _, g := range graphs {
		if _, err := eng.Execute(ctx, env(g, "create-"+g, cmdCreate())); err != nil {
			t.Fatal(err)
		}
	}
	types, cats, etypes := []string{"version", "name", "color"}, []string{"pkg", "person", "team"}, []string{"", "uses", "knows"}
	comp := func() *cairnv1.Component {
		return &cairnv1.Component{Type: types[rng.IntN(len(types))], Value: []byte(fmt.Sprint(rng.IntN(4)))}
	}
	node := func() string { return fmt.Sprintf("n%d", rng.IntN(25)) }
	edge := func() string { return fmt.Sprintf("e%d", rng.IntN(40)) }
	var last uint64
	for i := range 400 {
		g := graphs[rng.IntN(len(graphs))]
		var c *cairnv1.Command
		switch k := rng.IntN(10); {
		case k < 3:
			c = cmdAdd(node(), []string{cats[rng.IntN(3)]}, comp(), comp())
		case k < 6:
			c = cmdConnect(edge(), node(), node(), etypes[rng.IntN(3)])
		case k < 7:
			c = &cairnv1.Command{Kind: &cairnv1.Command_SetNodeComponents{SetNodeComponents: &cairnv1.SetNodeComponents{NodeId: node(), Components: []*cairnv1.Component{comp()}}}}
		case k < 8:
			c = &cairnv1.Command{Kind: &cairnv1.Command_RemoveNodeComponents{RemoveNodeComponents: &cairnv1.RemoveNodeComponents{NodeId: node(), Types: []string{types[rng.IntN(3)]}}}}
		case k < 9:
			c = &cairnv1.Command{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: edge()}}}
		default:
			c = &cairnv1.Command{Kind: &cairnv1.Command_RemoveNode{RemoveNode: &cairnv1.RemoveNode{NodeId: node()}}}
		}
		// Refused commands (a missing node, a taken id) write nothing.
		if rep, err := eng.Execute(ctx, env(g, fmt.Sprintf("c%d", i), c)); err == nil {
			last = rep.GetSeq()
		}
	}
	if _, err := eng.Execute(ctx, env("m5", "delete-m5", &cairnv1.Command{Kind: &cairnv1.Command_DeleteGraph{DeleteGraph: &cairnv1.DeleteGraph{}}})); err != nil {
		t.Fatal(err)
	}
	if last, _ = eng.Store().LastSeq(ctx, "m5"); last == 0 {
		t.Fatal("no last seq")
	}

	// Every query, paging with small pages to exercise cursors.
	var queries []*cairnv1.QueryRequest
	for _, g := range append(graphs, "none") {
		queries = append(queries, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
		for n := range 26 {
			id := fmt.Sprintf("n%d", n)
			queries = append(queries, getNode(g, id, 0))
			for _, d := range []cairnv1.Direction{cairnv1.Direction_DIRECTION_OUT, cairnv1.Direction_DIRECTION_IN, cairnv1.Direction_DIRECTION_BOTH} {
				for _, et := range etypes {
					queries = append(queries, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_ListNeighbors{
						ListNeighbors: &cairnv1.ListNeighbors{NodeId: id, Direction: d, EdgeType: et, Limit: 2}}})
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
	// replies in order.
	answers := func(q actors.Querier) []*cairnv1.QueryReply {
		var out []*cairnv1.QueryReply
		for _, req := range queries {
			req = proto.Clone(req).(*cairnv1.QueryRequest)
			req.MinSeq = last
			for {
				rep := q.Query(ctx, req)
				out = append(out, rep)
				next := rep.GetNodes().GetNextCursor() + rep.GetNeighbors().GetNextCursor()
				if next == "" {
					break
				}
				switch k := req.GetQuery().(type) {
				case *cairnv1.QueryRequest_FindNodes:
					k.FindNodes.Cursor = next
				case *cairnv1.QueryRequest_ListNeighbors:
					k.ListNeighbors.Cursor = next
				}
			}
		}
		return out
	}
	want := answers(eng.Projections())
	found := 0
	for _, r := range want {
		if r.GetError() == nil && r.GetNode() != nil {
			found++
		}
	}
	if found < 20 {
		t.Fatalf("only %d nodes found: the stream is too thin to compare", found)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	defer system.Shutdown()
	for _, tc := range []struct {
		name   string
		shards int
		src    actors.Follower
	}{{"1 shard", 1, eng.Store()}, {"2 shards", 2, eng.Store()}, {"8 shards", 8, eng.Store()}, {"8 shards, redelivered", 8, redelivering{eng.Store()}}} {
		cfg := actors.DefaultProjectionConfig()
		cfg.Shards = tc.shards
		p, err := actors.NewProjections(system, tc.src, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		got := answers(p)
		if err := p.Close(ctx); err != nil {
			t.Errorf("%s: close: %v", tc.name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d answers, want %d (seed %d)", tc.name, len(got), len(want), seed)
		}
		for i := range want {
			if !proto.Equal(got[i], want[i]) {
				t.Fatalf("%s: answer %d differs (seed %d):\n got %v\nwant %v", tc.name, i, seed, got[i], want[i])
			}
		}
	}
}
