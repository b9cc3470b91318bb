package cairn_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// floodNodes sizes TestTimeTravelFloodWithWrites; the attack of issue 12
// used 50,000 (a manual check, about a minute on 2 CPUs):
//
//	go test . -run Flood -v -count=1 -flood.nodes 50000
var floodNodes = flag.Int("flood.nodes", 3000, "nodes (and edges) of the time-travel flood's graph")

// watchedClient connects to eng's NATS as a client would, counting the
// slow-consumer errors and disconnects it sees.
type watchedClient struct {
	nc                *nats.Conn
	slow, disconnects atomic.Int64
}

func dialWatched(t *testing.T, eng *cairn.Engine, name string) *watchedClient {
	t.Helper()
	c := &watchedClient{}
	nc, err := nats.Connect(eng.ClientURL(), nats.Name(name),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				c.slow.Add(1)
			}
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, _ error) {
			if !nc.IsClosed() {
				c.disconnects.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	return c
}

func (c *watchedClient) exec(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	data, err := proto.Marshal(env)
	if err != nil {
		return nil, err
	}
	msg, err := c.nc.RequestWithContext(ctx, api.CommandSubject, data)
	if err != nil {
		return nil, err
	}
	rep := &cairnv1.CommandReply{}
	return rep, proto.Unmarshal(msg.Data, rep)
}

func (c *watchedClient) query(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	msg, err := c.nc.RequestWithContext(ctx, api.QuerySubject, data)
	if err != nil {
		return nil, err
	}
	rep := &cairnv1.QueryReply{}
	return rep, proto.Unmarshal(msg.Data, rep)
}

// TestTimeTravelFloodWithWrites: 50 concurrent as_of queries at distinct
// points of a graph of 3,000 nodes and 3,000 edges, through the gateway,
// while writers send commands through it too (the attack of issue 12 that
// made the engine's single connection a slow consumer and failed most
// writes with "no responders"). Every write succeeds; every query is
// answered correctly or refused as RESOURCE_EXHAUSTED; no connection of
// the engine's or the clients' sees a slow consumer or a disconnect.
func TestTimeTravelFloodWithWrites(t *testing.T) {
	eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) {
		cfg.NATSListen = "127.0.0.1:0" // the clients connect over TCP, as cairn's do
	})
	writer, reader := dialWatched(t, eng, "flood-writer"), dialWatched(t, eng, "flood-reader")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const graph, perTx = "flood", 30
	txs := max(*floodNodes/perTx, 50)
	mustExec := func(env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
		t.Helper()
		rep, err := writer.exec(ctx, env)
		if err != nil || rep.GetError() != nil {
			t.Fatalf("%s: %v %v", env.GetCommandId(), rep.GetError(), err)
		}
		return rep
	}
	mustExec(env(graph, "create", cmdCreate()))
	seqs := make([]uint64, txs) // seqs[i]: the transaction after which the graph holds (i+1)*perTx nodes
	for i := range txs {
		var cmds []*cairnv1.Command
		for k := range perTx {
			n := i*perTx + k
			cmds = append(cmds, cmdAdd(fmt.Sprint("n", n), []string{"c"}), cmdConnect(fmt.Sprint("e", n), fmt.Sprint("n", n), fmt.Sprint("n", n/2), "r"))
		}
		seqs[i] = mustExec(env(graph, fmt.Sprint("tx", i), cmds...)).GetSeq()
	}

	rssBefore := actors.ReadMemory().RSSBytes
	var peakRSS atomic.Uint64
	sampled := make(chan struct{})
	sampling := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss := actors.ReadMemory().RSSBytes; rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			select {
			case <-sampling:
				return
			case <-tick.C:
			}
		}
	}()
	var wg sync.WaitGroup
	var writes, writeFailures atomic.Int64
	var firstWriteErr atomic.Value
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					if i >= 25 {
						return
					}
				default:
				}
				target := graph
				if w%2 == 1 {
					target = fmt.Sprint("side", w)
				}
				cmds := []*cairnv1.Command{cmdAdd(fmt.Sprintf("w%d-%d", w, i), nil)}
				if i == 0 && target != graph {
					cmds = append([]*cairnv1.Command{cmdCreate()}, cmds...)
				}
				rep, err := writer.exec(ctx, env(target, fmt.Sprintf("w%d-%d", w, i), cmds...))
				writes.Add(1)
				if err != nil || rep.GetError() != nil {
					writeFailures.Add(1)
					firstWriteErr.CompareAndSwap(nil, fmt.Sprintf("write w%d-%d: %v %v", w, i, rep.GetError(), err))
				}
			}
		}()
	}

	const queries = 50
	var answered, refused atomic.Int64
	errs := make(chan error, queries)
	var qwg sync.WaitGroup
	for q := range queries {
		qwg.Add(1)
		go func() {
			defer qwg.Done()
			i := q * txs / queries // distinct points
			rep, err := reader.query(ctx, &cairnv1.QueryRequest{GraphId: graph, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}},
				AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: seqs[i]}}})
			switch {
			case err != nil:
				errs <- fmt.Errorf("query %d: %w", q, err)
			case rep.GetError().GetCode() == cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED:
				refused.Add(1)
			case rep.GetError() != nil:
				errs <- fmt.Errorf("query %d as of seq %d: %v", q, seqs[i], rep.GetError())
			case rep.GetStats().GetNodes() != uint64((i+1)*perTx) || rep.GetAsOfSeq() != seqs[i]:
				errs <- fmt.Errorf("query %d as of seq %d: %d nodes as of %d, want %d", q, seqs[i], rep.GetStats().GetNodes(), rep.GetAsOfSeq(), (i+1)*perTx)
			default:
				answered.Add(1)
			}
		}()
	}
	qwg.Wait()
	close(stop)
	wg.Wait()
	close(sampling)
	<-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := writeFailures.Load(); n != 0 {
		t.Errorf("%d of %d writes failed during the flood; the first: %v", n, writes.Load(), firstWriteErr.Load())
	}
	if answered.Load() == 0 {
		t.Errorf("no as_of query was answered (%d refused)", refused.Load())
	}
	for _, c := range eng.Connections() {
		if c.SlowConsumers != 0 || c.Disconnects != 0 {
			t.Errorf("engine connection %s: %d slow consumers, %d disconnects", c.Name, c.SlowConsumers, c.Disconnects)
		}
	}
	if len(eng.Connections()) != 3 {
		t.Errorf("engine connections %+v, want cairn-engine, cairn-history and cairn-commands", eng.Connections())
	}
	for name, c := range map[string]*watchedClient{"writer": writer, "reader": reader} {
		if c.slow.Load() != 0 || c.disconnects.Load() != 0 {
			t.Errorf("client %s: %d slow consumers, %d disconnects", name, c.slow.Load(), c.disconnects.Load())
		}
	}
	tt := eng.Projections().Health().TimeTravel
	t.Logf("%d nodes; %d writes; %d queries answered, %d refused; %d builds, %d view hits, %d refused by the gate; RSS %d MB before the flood, %d MB at most during it",
		txs*perTx, writes.Load(), answered.Load(), refused.Load(), tt.Builds, tt.ViewHits, tt.Refused, rssBefore>>20, peakRSS.Load()>>20)
	if tt.Building != 0 || tt.BuildingBytes != 0 {
		t.Errorf("builds left in flight: %d (%d bytes)", tt.Building, tt.BuildingBytes)
	}
}

// A find cursor given to another kind of find, or to a find with other
// arguments, is INVALID_ARGUMENT, as documented, not an empty page.
func TestFindCursorOfAnotherQuery(t *testing.T) {
	eng := openEngineAt(t, t.TempDir(), 1)
	ctx := context.Background()
	var cmds []*cairnv1.Command
	cmds = append(cmds, cmdCreate())
	for i := range 5 {
		cmds = append(cmds, cmdAdd(fmt.Sprint("n", i), []string{"c"}, &cairnv1.Component{Type: "t", Value: []byte("v")}))
	}
	rep, err := eng.Execute(ctx, env("g", "c1", cmds...))
	if err != nil {
		t.Fatal(err)
	}
	find := func(f *cairnv1.FindNodes) *cairnv1.QueryReply {
		f.Limit = 2
		r, _ := eng.Query(ctx, &cairnv1.QueryRequest{GraphId: "g", MinSeq: rep.GetSeq(), Query: &cairnv1.QueryRequest_FindNodes{FindNodes: f}})
		return r
	}
	first := find(&cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "c"}})
	cursor := first.GetNodes().GetNextCursor()
	if cursor == "" {
		t.Fatalf("first page: %v, want a next cursor", first)
	}
	if r := find(&cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "c"}, Cursor: cursor}); r.GetError() != nil || len(r.GetNodes().GetNodeIds()) != 2 {
		t.Fatalf("the cursor's own query: %v", r)
	}
	for name, f := range map[string]*cairnv1.FindNodes{
		"by component type": {By: &cairnv1.FindNodes_ComponentType{ComponentType: "t"}, Cursor: cursor},
		"by component":      {By: &cairnv1.FindNodes_Component{Component: &cairnv1.Component{Type: "t", Value: []byte("v")}}, Cursor: cursor},
		"another category":  {By: &cairnv1.FindNodes_Category{Category: "d"}, Cursor: cursor},
	} {
		if r := find(f); r.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
			t.Errorf("category cursor given to find %s: %v, want INVALID_ARGUMENT", name, r)
		}
	}
}
