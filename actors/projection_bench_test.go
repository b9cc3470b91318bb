package actors_test

import (
	"context"
	"flag"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/internal/benchutil"
	"github.com/cairn-graph/cairn/internal/graphgen"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

var bigProjection = flag.Bool("actors.big", false,
	"run the projection benchmarks on 1,000,000 nodes and 3,000,000 edges (minutes and up to 2 GB each) instead of 20,000 nodes")

// projectionGraph is the benchmarks' graph: graphgen.Big with -actors.big,
// else the same shape at 20,000 nodes.
func projectionGraph() graphgen.Config {
	if *bigProjection {
		return graphgen.Big()
	}
	return graphgen.Big().Scaled(20_000)
}

const (
	// liveRate and liveTxEvents: the write load during the query
	// benchmarks, 10,000 events/s in transactions of 10 events.
	liveRate     = 10_000
	liveTxEvents = 10
	// loadWindow bounds how many transactions the benchmark's follower
	// hands out ahead of the shard during the initial load, so that the
	// decoded load does not pile up in the shard's mailbox (the reader's
	// own bound, 4,096 transactions, is the whole graph here; see
	// BenchmarkProjectionCatchUp).
	loadWindow = 64
)

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
}

// sealed generates cfg's graph and returns its transactions as the stream
// stores them (protobuf bytes, without pointers for the GC to scan) and the
// chain, to continue it.
func sealed(b *testing.B, cfg graphgen.Config) ([][]byte, *graphgen.Chain) {
	b.Helper()
	chain := graphgen.NewChain(cfg.Graph)
	var txs [][]byte
	err := cfg.Generate(func(events []*cairnv1.Event) error {
		tx, err := chain.Seal(events, time.Now().UnixNano())
		if err != nil {
			return err
		}
		data, err := proto.Marshal(tx)
		txs = append(txs, data)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return txs, chain
}

// feed is a Follower over a generated stream: it delivers the loaded
// transactions (decoding each from its stored bytes, as
// persistence.Store.Follow does), at most loadWindow ahead of the shard, then
// keeps delivering churn at liveRate events/s, sealed onto the same chain and
// handed over as built, until ctx ends.
type feed struct {
	cfg   graphgen.Config
	load  [][]byte // seq i+1 is load[i]; released once delivered
	chain *graphgen.Chain
	p     *actors.Projections // set before Start

	loaded   chan struct{} // closed when the whole load is handed out
	once     sync.Once
	liveTxs  atomic.Uint64 // live transactions handed out
	lastLive atomic.Uint64 // stream sequence of the last one
}

var _ actors.Follower = (*feed)(nil)

func (f *feed) Follow(ctx context.Context, fromSeq uint64, fn func(persistence.Followed) error) error {
	n := uint64(len(f.load))
	for seq := max(fromSeq, 1); seq <= n; seq++ {
		if seq > loadWindow {
			if _, err := f.p.WaitFor(ctx, f.cfg.Graph, seq-loadWindow); err != nil {
				return err
			}
		}
		tx := &cairnv1.Transaction{}
		if err := proto.Unmarshal(f.load[seq-1], tx); err != nil {
			return err
		}
		f.load[seq-1] = nil
		if err := fn(persistence.Followed{Record: persistence.Record{Seq: seq, Time: time.Now(), Tx: tx},
			Graph: f.cfg.Graph, Pending: n - seq}); err != nil {
			return err
		}
	}
	f.once.Do(func() { close(f.loaded) })
	churn := f.cfg.Churn(7)
	seq := n
	interval := time.Second * liveTxEvents / liveRate
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for sent := 0; ; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			for due := int(now.Sub(start) / interval); sent < due; sent++ {
				tx, err := f.chain.Seal(churn.Next(liveTxEvents), time.Now().UnixNano())
				if err != nil {
					return err
				}
				seq++
				if err := fn(persistence.Followed{Record: persistence.Record{Seq: seq, Time: time.Now(), Tx: tx}, Graph: f.cfg.Graph}); err != nil {
					return err
				}
				f.liveTxs.Add(1)
				f.lastLive.Store(seq)
			}
		}
	}
}

// queryKind is one query type of BenchmarkProjection: req makes a request
// from r.
type queryKind struct {
	name string
	req  func(r *rand.Rand) *cairnv1.QueryRequest
}

func projectionQueries(cfg graphgen.Config) []queryKind {
	node := func(r *rand.Rand) string { return graphgen.NodeID(r.IntN(cfg.Nodes)) }
	both := cairnv1.Direction_DIRECTION_BOTH
	return []queryKind{
		{"GetNode", func(r *rand.Rand) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{GraphId: cfg.Graph, Query: &cairnv1.QueryRequest_GetNode{
				GetNode: &cairnv1.GetNode{NodeId: node(r)}}}
		}},
		// Nodes n0..n999 are the Zipf hubs: their pages are full.
		{"Neighbors100/hub", func(r *rand.Rand) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{GraphId: cfg.Graph, Query: &cairnv1.QueryRequest_ListNeighbors{
				ListNeighbors: &cairnv1.ListNeighbors{NodeId: graphgen.NodeID(r.IntN(1000)), Direction: both, Limit: 100}}}
		}},
		{"Neighbors100/any", func(r *rand.Rand) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{GraphId: cfg.Graph, Query: &cairnv1.QueryRequest_ListNeighbors{
				ListNeighbors: &cairnv1.ListNeighbors{NodeId: node(r), Direction: both, Limit: 100}}}
		}},
		{"FindByComponent100", func(r *rand.Rand) *cairnv1.QueryRequest {
			c := &cairnv1.Component{Type: "t" + strconv.Itoa(r.IntN(cfg.Types)), Value: []byte(strconv.Itoa(r.IntN(cfg.Values)))}
			return &cairnv1.QueryRequest{GraphId: cfg.Graph, Query: &cairnv1.QueryRequest_FindNodes{
				FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Component{Component: c}, Limit: 100}}}
		}},
		{"KHop2/Out", func(r *rand.Rand) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{GraphId: cfg.Graph, Query: &cairnv1.QueryRequest_KHop{
				KHop: &cairnv1.KHop{NodeId: node(r), Direction: cairnv1.Direction_DIRECTION_OUT, Depth: 2}}}
		}},
		{"KHop2/Both", func(r *rand.Rand) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{GraphId: cfg.Graph, Query: &cairnv1.QueryRequest_KHop{
				KHop: &cairnv1.KHop{NodeId: node(r), Direction: both, Depth: 2}}}
		}},
		{"ShortestPath/BFS", func(r *rand.Rand) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{GraphId: cfg.Graph, Query: &cairnv1.QueryRequest_ShortestPath{
				ShortestPath: &cairnv1.ShortestPath{FromNodeId: node(r), ToNodeId: node(r), Direction: both}}}
		}},
		// "t0" holds the numbers 0..99 on about 30 % of the nodes; a node
		// without it costs 1.
		{"ShortestPath/Dijkstra", func(r *rand.Rand) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{GraphId: cfg.Graph, Query: &cairnv1.QueryRequest_ShortestPath{
				ShortestPath: &cairnv1.ShortestPath{FromNodeId: node(r), ToNodeId: node(r), Direction: both, Weight: "t0"}}}
		}},
	}
}

// BenchmarkProjection loads a generated power-law graph into ONE projection
// shard through actors.Projections and reports the shard's apply rate, then
// keeps applying 10,000 events/s (10-event transactions: new nodes, new
// edges, component changes) while it measures the latency of queries sent
// through Projections.Query, one at a time, as the engine sends them. The
// figures are reported, not asserted; the goals of issue 3 are p99 ≤ 1 ms
// for GetNode, Neighbors100 and FindByComponent100, ≤ 5 ms for KHop2 and
// ≤ 10 ms for ShortestPath, and ≥ 300,000 events/s applied per shard.
//
// heap-MB is the whole process's Go heap in use after a GC once the load is
// applied (read model, actors and the live writes; the sealed load is
// released by then). A query that hits the traversal limits
// (RESOURCE_EXHAUSTED) counts in exceeded/op, one without a path
// (NOT_FOUND) in notfound/op, an answer from the query cache in cached/op;
// all count in the latencies. On 1,000,000 nodes and 3,000,000 edges (about
// 2 GB while the sealed load is held in memory):
//
//	go test ./actors -run '^$' -bench Projection$ -benchtime 3s -timeout 30m -actors.big
func BenchmarkProjection(b *testing.B) {
	cfg := projectionGraph()
	load, chain := sealed(b, cfg)
	system := quietSystem()
	defer system.Shutdown()
	src := &feed{cfg: cfg, load: load, chain: chain, loaded: make(chan struct{})}
	pcfg := actors.DefaultProjectionConfig()
	pcfg.Shards = 1
	p, err := actors.NewProjections(system, src, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	src.p = p
	ctx := context.Background()
	defer func() {
		if err := p.Close(ctx); err != nil {
			b.Error(err)
		}
	}()
	lastLoad := uint64(len(load))
	cpu0, _ := benchutil.CPUTime()
	start := time.Now()
	p.Start()
	if _, err := p.WaitFor(ctx, cfg.Graph, lastLoad); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	cpu1, _ := benchutil.CPUTime()
	<-src.loaded
	checkHealthy(b, p)
	b.Run("apply", func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(float64(cfg.Events())/took.Seconds(), "events/s")
		b.ReportMetric(took.Seconds(), "load-s")
		b.ReportMetric(float64(cpu1-cpu0)/float64(time.Microsecond)/float64(cfg.Events()), "cpu-us/event")
		b.ReportMetric(float64(heapInUse())/1e6, "heap-MB")
	})

	live0, liveStart := src.liveTxs.Load(), time.Now()
	for _, k := range projectionQueries(cfg) {
		b.Run(k.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(11, 11))
			lat := benchutil.NewLatency()
			var exceeded, notFound, cached int
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				req := k.req(r)
				t := time.Now()
				rep := p.Query(ctx, req)
				lat.Record(time.Since(t))
				if rep.GetCached() {
					cached++
				}
				switch rep.GetError().GetCode() {
				case cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED:
				case cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED:
					exceeded++
				case cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND:
					if _, path := req.GetQuery().(*cairnv1.QueryRequest_ShortestPath); !path {
						b.Fatalf("%v: %v", req, rep.GetError())
					}
					notFound++
				default:
					b.Fatalf("%v: %v", req, rep.GetError())
				}
			}
			b.StopTimer()
			lat.Report(b, "")
			b.ReportMetric(float64(exceeded)/float64(b.N), "exceeded/op")
			b.ReportMetric(float64(notFound)/float64(b.N), "notfound/op")
			b.ReportMetric(float64(cached)/float64(b.N), "cached/op")
		})
	}
	// The write load that ran meanwhile: what was handed out, and how long
	// the shard then took to apply the last of it.
	liveTook := time.Since(liveStart)
	live := src.liveTxs.Load() - live0
	t := time.Now()
	if _, err := p.WaitFor(ctx, cfg.Graph, src.lastLive.Load()); err != nil {
		b.Fatal(err)
	}
	lag := time.Since(t)
	checkHealthy(b, p)
	b.Run("live", func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(float64(live*liveTxEvents)/liveTook.Seconds(), "events/s")
		b.ReportMetric(float64(lag)/float64(time.Millisecond), "lag-ms")
	})
}

func checkHealthy(b *testing.B, p *actors.Projections) {
	b.Helper()
	if n := p.Failures(); n > 0 {
		b.Fatalf("%d transactions failed to apply: %v", n, p.Stopped())
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkProjectionCatchUp writes the generated graph to a real event
// store (embedded nats-server, JetStream file storage in a temp dir) as
// chained transactions of 1,000 events through Store.Append, then times a
// fresh Projections (default config) from Start until it has applied the
// last transaction: the catch-up of the whole graph from the stream. It
// reports seconds, events/s, the CPU time per event of the whole process
// (the embedded NATS server included) and the peak Go heap meanwhile
// (sampled every 10 ms; the reader holds back only when a shard has 4,096
// transactions queued, which at 1,000 events each is the whole graph).
//
//	go test ./actors -run '^$' -bench ProjectionCatchUp -benchtime 1x -timeout 30m -actors.big
func BenchmarkProjectionCatchUp(b *testing.B) {
	cfg := projectionGraph()
	srv := natstest.Start(b)
	store := srv.Store()
	ctx := context.Background()
	chain := graphgen.NewChain(cfg.Graph)
	var last uint64
	start := time.Now()
	err := cfg.Generate(func(events []*cairnv1.Event) error {
		tx, err := chain.Seal(events, time.Now().UnixNano())
		if err != nil {
			return err
		}
		last, err = store.Append(ctx, cfg.Graph, last, tx)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	wrote := time.Since(start)
	b.Logf("wrote %d events in %d transactions in %v", cfg.Events(), last, wrote.Round(time.Millisecond))
	if !*bigProjection {
		if _, err := store.Verify(ctx, cfg.Graph); err != nil {
			b.Fatal(err)
		}
	}
	system := quietSystem()
	defer system.Shutdown()
	var took, cpu time.Duration
	var peak uint64
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		p, err := actors.NewProjections(system, store, actors.DefaultProjectionConfig())
		if err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { peak = max(peak, samplePeakHeap(stop)) })
		cpu0, _ := benchutil.CPUTime()
		t := time.Now()
		p.Start()
		_, err = p.WaitFor(ctx, cfg.Graph, last)
		took += time.Since(t)
		cpu1, _ := benchutil.CPUTime()
		cpu += cpu1 - cpu0
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		checkHealthy(b, p)
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	s := took.Seconds() / float64(b.N)
	b.ReportMetric(s, "catchup-s")
	b.ReportMetric(float64(cfg.Events())/s, "events/s")
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N)/float64(cfg.Events()), "cpu-us/event")
	b.ReportMetric(float64(cfg.Events())/wrote.Seconds(), "write-events/s")
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
}

// samplePeakHeap returns the largest heap in use (objects and the free
// space of their spans, as MemStats.HeapInuse, but read without stopping
// the world) seen every 10 ms until stop is closed.
func samplePeakHeap(stop <-chan struct{}) uint64 {
	var peak uint64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	for {
		metrics.Read(sample)
		peak = max(peak, sample[0].Value.Uint64()+sample[1].Value.Uint64())
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// streamFeed is a Follower over a stream of several graphs' transactions,
// held as the stream stores them: Follow decodes each message as
// persistence.Store.Follow does, then waits for ctx.
type streamFeed struct {
	graphs []string // the graph of seq i+1
	txs    [][]byte
}

func (f *streamFeed) StreamLastSeq(context.Context) (uint64, error) { return 0, nil }

func (f *streamFeed) Follow(ctx context.Context, fromSeq uint64, fn func(persistence.Followed) error) error {
	return f.follow(ctx, fromSeq, fn, true)
}

func (f *streamFeed) follow(ctx context.Context, fromSeq uint64, fn func(persistence.Followed) error, decode bool) error {
	n := uint64(len(f.txs))
	for seq := max(fromSeq, 1); seq <= n; seq++ {
		m := persistence.Followed{Graph: f.graphs[seq-1], Pending: n - seq, Data: f.txs[seq-1]}
		m.Seq, m.Time = seq, time.Now()
		if decode {
			m.Decode()
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// rawFeed is a streamFeed that also delivers undecoded, as
// persistence.Store.FollowRaw does.
type rawFeed struct{ *streamFeed }

func (f rawFeed) FollowRaw(ctx context.Context, fromSeq uint64, fn func(persistence.Followed) error) error {
	return f.follow(ctx, fromSeq, fn, false)
}

// BenchmarkPartitionedFollow: a cluster member's projections follow a
// stream of 30 graphs' interleaved transactions (10 events each) and own
// a third of the graphs (owns-third), or none of them (owns-none: what a
// skipped transaction costs). decode-all follows a source that only decodes
// (the reader before FollowRaw: every member decodes every transaction);
// skip-others follows undecoded, and the shards decode their own graphs'
// transactions only. cpu-us/tx is the process's CPU time per transaction
// of the stream, the reader's and the shards' together.
//
//	go test ./actors -run '^$' -bench PartitionedFollow -benchtime 5x
func BenchmarkPartitionedFollow(b *testing.B) {
	const graphs = 30
	feed := &streamFeed{}
	per := make([][][]byte, graphs)
	for i := range graphs {
		cfg := graphgen.Big().Scaled(1500)
		cfg.Graph, cfg.TxEvents, cfg.Seed = "g"+strconv.Itoa(i), 10, uint64(i+1)
		per[i], _ = sealed(b, cfg)
	}
	for k := 0; ; k++ {
		more := false
		for i := range graphs {
			if k < len(per[i]) {
				feed.graphs, feed.txs, more = append(feed.graphs, "g"+strconv.Itoa(i)), append(feed.txs, per[i][k]), true
			}
		}
		if !more {
			break
		}
	}
	last := uint64(len(feed.txs))
	third := func(g string) bool { n, _ := strconv.Atoi(g[1:]); return n%3 == 0 }
	none := func(string) bool { return false }
	for _, variant := range []struct {
		name string
		src  actors.Follower
		owns func(string) bool
		held int
	}{
		{"owns-third/decode-all", feed, third, graphs / 3}, {"owns-third/skip-others", rawFeed{feed}, third, graphs / 3},
		{"owns-none/decode-all", feed, none, 0}, {"owns-none/skip-others", rawFeed{feed}, none, 0},
	} {
		b.Run(variant.name, func(b *testing.B) {
			system := quietSystem()
			defer system.Shutdown()
			ctx := context.Background()
			var took, cpu time.Duration
			b.ReportAllocs()
			for range b.N {
				runtime.GC()
				cfg := actors.DefaultProjectionConfig()
				cfg.Partition = &actors.Partition{Owns: variant.owns, Series: func() string { return "" }, Live: func(string) bool { return true }}
				p, err := actors.NewProjections(system, variant.src, cfg)
				if err != nil {
					b.Fatal(err)
				}
				cpu0, _ := benchutil.CPUTime()
				t := time.Now()
				p.Start()
				for i := range graphs {
					if _, err := p.WaitFor(ctx, "g"+strconv.Itoa(i), last); err != nil {
						b.Fatal(err)
					}
				}
				took += time.Since(t)
				cpu1, _ := benchutil.CPUTime()
				cpu += cpu1 - cpu0
				checkHealthy(b, p)
				if h := p.Health().Partition; h.Graphs != variant.held {
					b.Fatalf("holds %d graphs, want %d", h.Graphs, variant.held)
				}
				if err := p.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N)/float64(last), "cpu-us/tx")
			b.ReportMetric(float64(last)*float64(b.N)/took.Seconds(), "tx/s")
		})
	}
}
