package actors_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/benchutil"
	"github.com/cairn-graph/cairn/internal/graphgen"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// Time-travel benchmark shape: a 100,000-node graph (graphgen.Big scaled,
// 300,000 edges) plus churn, read-model snapshots every 10,000 events, all
// kept.
const (
	ttNodes        = 100_000
	ttChurnEvents  = 100_000
	ttSnapEvery    = 10_000
	ttSnapKeep     = 1_000
	ttCachedPoints = 8 // points whose views are then queried again
	ttCachedEach   = 200
	ttNearGroups   = 25 // intervals between two snapshots browsed
)

// ttPoints is how many fresh random points BenchmarkTimeTravel queries.
var ttPoints = flag.Int("actors.ttpoints", 200, "BenchmarkTimeTravel: time-travel queries at fresh random points")

// ttCSV names a file BenchmarkTimeTravel writes each fresh point's build
// to.
var ttCSV = flag.String("actors.ttcsv", "", "BenchmarkTimeTravel: write each fresh point's latency and breakdown to this CSV file")

// openBenchEnv starts an embedded server with an event store that reads
// across archives and a snapshot store.
func openBenchEnv(b *testing.B) (*natstest.Server, *persistence.Store, *persistence.Snapshots) {
	b.Helper()
	srv := natstest.Start(b)
	ctx := context.Background()
	snaps, err := persistence.OpenSnapshots(ctx, srv.JetStream(), persistence.DefaultSnapshotConfig())
	if err != nil {
		b.Fatal(err)
	}
	store, err := persistence.OpenStore(ctx, srv.JetStream(), persistence.DefaultStoreConfig(), persistence.WithObjects(snaps.Objects()))
	if err != nil {
		b.Fatal(err)
	}
	return srv, store, snaps
}

// appendAll seals and appends events as transactions of txEvents events.
func appendAll(b testing.TB, store *persistence.Store, chain *graphgen.Chain, graph string, last uint64, events []*cairnv1.Event, txEvents int) uint64 {
	b.Helper()
	ctx := context.Background()
	for len(events) > 0 {
		n := min(txEvents, len(events))
		tx, err := chain.Seal(events[:n], time.Now().UnixNano())
		if err != nil {
			b.Fatal(err)
		}
		if last, err = store.Append(ctx, graph, last, tx); err != nil {
			b.Fatal(err)
		}
		events = events[n:]
	}
	return last
}

// BenchmarkTimeTravel measures as_of query latency (a GetNode) at random
// stream sequences of a 100,000-node graph with churn: uncached (each point
// new: the view is built from the nearest read-model snapshot, taken every
// 10,000 events, plus the replay after it) and cached (other queries on
// views already built). Run it with -benchtime=1x: one iteration takes all
// the samples.
func BenchmarkTimeTravel(b *testing.B) {
	cfg := graphgen.Big().Scaled(ttNodes)
	_, store, snaps := openBenchEnv(b)
	ctx := context.Background()
	system := quietSystem()
	defer system.Shutdown()
	pcfg := actors.DefaultProjectionConfig()
	pcfg.Shards, pcfg.Snapshots, pcfg.Store = 2, snaps, store
	pcfg.SnapshotEvery, pcfg.SnapshotKeep, pcfg.ViewCacheEntries = ttSnapEvery, ttSnapKeep, ttCachedPoints
	p, err := actors.NewProjections(system, store, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	p.Start()
	defer func() { _ = p.Close(ctx) }()

	// Write the graph and its churn in batches of SnapshotEvery events,
	// each followed by its snapshot round, so that the snapshots lie
	// every 10,000 events.
	var events []*cairnv1.Event
	if err := cfg.Generate(func(evs []*cairnv1.Event) error { events = append(events, evs...); return nil }); err != nil {
		b.Fatal(err)
	}
	churn := cfg.Churn(7)
	events = append(events, churn.Next(ttChurnEvents)...)
	chain := graphgen.NewChain(cfg.Graph)
	var last uint64
	start := time.Now()
	// The first transaction makes the reader catch up: that round comes
	// first, then one every SnapshotEvery events.
	for i := 0; len(events) > 0; i++ {
		n := min(ttSnapEvery, len(events))
		if i == 0 {
			n = 1000
		}
		last = appendAll(b, store, chain, cfg.Graph, last, events[:n], 1000)
		events = events[n:]
		if _, err := p.WaitFor(ctx, cfg.Graph, last); err != nil {
			b.Fatal(err)
		}
		if n < ttSnapEvery && i > 0 {
			break // the tail: no round
		}
		deadline := time.Now().Add(time.Minute)
		for p.Health().Snapshots.Rounds < uint64(i+1) {
			if time.Now().After(deadline) {
				b.Fatalf("no snapshot round %d at seq %d: %+v", i+1, last, p.Health().Snapshots)
			}
			time.Sleep(time.Millisecond)
		}
	}
	events, churn = nil, nil // not the engine's: let them go
	runtime.GC()
	checkHealthy(b, p)
	hs := p.Health().Snapshots
	b.Logf("wrote %d events (%d transactions) with %d snapshot rounds (every %d events, keep %d) in %v; last round %+v",
		cfg.Events()+ttChurnEvents, last, hs.Rounds, ttSnapEvery, ttSnapKeep, time.Since(start).Round(time.Millisecond), hs)

	r := rand.New(rand.NewPCG(1, 2))
	query := func(seq uint64) (*cairnv1.QueryReply, time.Duration) {
		req := &cairnv1.QueryRequest{GraphId: cfg.Graph, AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: seq}},
			Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: graphgen.NodeID(r.IntN(1000))}}}
		t := time.Now()
		rep := p.Query(ctx, req)
		d := time.Since(t)
		if e := rep.GetError(); e != nil && e.GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
			b.Fatalf("as of seq %d: %v", seq, aggregate.ErrorFromProto(e))
		}
		return rep, d
	}
	gcm := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/memory/classes/heap/objects:bytes"}}
	fresh := func(lat *benchutil.Latency, seq uint64) ttSample {
		metrics.Read(gcm)
		gc0 := gcm[0].Value.Uint64()
		_, d := query(seq)
		metrics.Read(gcm)
		lat.Record(d)
		return ttSample{seq: seq, took: d, build: p.Health().TimeTravel.Last, gcs: gcm[0].Value.Uint64() - gc0, onHeap: gcm[1].Value.Uint64()}
	}
	uncached, cached, near := benchutil.NewLatency(), benchutil.NewLatency(), benchutil.NewLatency()
	var samples []ttSample
	seen := map[uint64]bool{}
	pick := func(lo, n uint64) uint64 { // a fresh point in lo+1..lo+n
		for {
			if seq := lo + 1 + r.Uint64N(n); !seen[seq] {
				seen[seq] = true
				return seq
			}
		}
	}
	b.ResetTimer()
	for range b.N {
		var points []uint64
		for range min(*ttPoints, int(last)/2) {
			seq := pick(0, last)
			points = append(points, seq)
			samples = append(samples, fresh(uncached, seq))
		}
		// The cache holds the last ttCachedPoints views.
		for range ttCachedEach {
			_, d := query(points[len(points)-1-r.IntN(ttCachedPoints)])
			cached.Record(d)
		}
		// Browsing: fresh points near each other, between two snapshots
		// (taken at seq 1, 11, 21, ...).
		for _, i := range r.Perm(int((last - 1) / 10))[:ttNearGroups] {
			lo := 1 + 10*uint64(i)
			for seq := lo + 1; seq <= lo+10 && seq <= last; seq++ {
				if !seen[seq] && r.IntN(2) == 0 {
					seen[seq] = true
					fresh(near, seq)
				}
			}
		}
	}
	b.StopTimer()
	tt := p.Health().TimeTravel
	b.Logf("time travel: %+v", tt)
	reportTimeTravel(b, samples, uncached)
	cached.Report(b, "cached-")
	near.Report(b, "near-")
	b.ReportMetric(float64(tt.FromSnapshot), "from-snapshot")
	b.ReportMetric(float64(tt.FromView), "from-view")
	b.ReportMetric(float64(tt.SnapshotHits), "snapshot-hits")
}

// ttSample is one fresh point's query: its build's breakdown and the
// garbage collection that ran meanwhile.
type ttSample struct {
	seq    uint64
	took   time.Duration
	build  api.TimeTravelBuild
	gcs    uint64 // GC cycles
	onHeap uint64 // heap bytes after
}

// reportTimeTravel reports the fresh points' latency distribution and mean
// breakdown, and logs the slowest builds with the GC that ran meanwhile.
func reportTimeTravel(b *testing.B, samples []ttSample, lat *benchutil.Latency) {
	b.Helper()
	lat.Report(b, "uncached-")
	b.ReportMetric(float64(lat.Quantile(90))/1e6, "uncached-p90-ms")
	rows := slices.Clone(samples)
	var fetch, load, replay, gcFree, gcHit float64
	var nFree, nHit int
	for _, x := range rows {
		fetch += x.build.FetchMs
		load += x.build.LoadMs
		replay += x.build.ReplayMs
		if x.gcs == 0 {
			gcFree += float64(x.took) / 1e6
			nFree++
		} else {
			gcHit += float64(x.took) / 1e6
			nHit++
		}
	}
	n := float64(max(len(rows), 1))
	b.ReportMetric(fetch/n, "fetch-ms")
	b.ReportMetric(load/n, "load-ms")
	b.ReportMetric(replay/n, "replay-ms")
	slices.SortFunc(rows, func(a, b ttSample) int { return int(b.took - a.took) })
	// The slowest tenth against the rest: which part grows.
	mean := func(rs []ttSample) string {
		var t, f, l, r, tx, gcs float64
		for _, x := range rs {
			t += float64(x.took) / 1e6
			f, l, r = f+x.build.FetchMs, l+x.build.LoadMs, r+x.build.ReplayMs
			tx += float64(x.build.Replayed)
			gcs += float64(x.gcs)
		}
		k := float64(max(len(rs), 1))
		return fmt.Sprintf("%d builds: %.1f ms = fetch %.1f + load %.1f + replay %.1f (%.1f tx), %.2f GC cycles each", len(rs), t/k, f/k, l/k, r/k, tx/k, gcs/k)
	}
	tenth := max(len(rows)/10, 1)
	b.Logf("fresh points: slowest tenth %s; the rest %s; mean %.1f ms with no GC cycle during the query (%d), %.1f ms with one or more (%d)",
		mean(rows[:tenth]), mean(rows[tenth:]), gcFree/float64(max(nFree, 1)), nFree, gcHit/float64(max(nHit, 1)), nHit)
	if *ttCSV == "" {
		return
	}
	var out strings.Builder
	out.WriteString("seq,ms,from,base_seq,fetch_ms,load_ms,replay_ms,replayed,gcs,heap_mb\n")
	for _, x := range samples {
		fmt.Fprintf(&out, "%d,%.2f,%s,%d,%.2f,%.2f,%.2f,%d,%d,%d\n", x.seq, float64(x.took)/1e6, x.build.From, x.build.BaseSeq,
			x.build.FetchMs, x.build.LoadMs, x.build.ReplayMs, x.build.Replayed, x.gcs, x.onHeap>>20)
	}
	if err := os.WriteFile(*ttCSV, []byte(out.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkProjectionRestart builds the benchmark graph's read model
// (graphgen.Big with -actors.big: 1,000,000 nodes, else 20,000 nodes) from
// a real event store, lets the first snapshot round take it (when the
// reader catches up), closes the projections and measures the restart:
// from NewProjections to the first answered query (restart-ms), with the
// snapshot's size and the round's time.
func BenchmarkProjectionRestart(b *testing.B) {
	cfg := projectionGraph()
	_, store, snaps := openBenchEnv(b)
	ctx := context.Background()
	chain := graphgen.NewChain(cfg.Graph)
	var last uint64
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
	pcfg := actors.DefaultProjectionConfig()
	pcfg.Snapshots, pcfg.Store = snaps, store
	system := quietSystem()
	defer system.Shutdown()
	p, err := actors.NewProjections(system, store, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	p.Start()
	if _, err := p.WaitFor(ctx, cfg.Graph, last); err != nil {
		b.Fatal(err)
	}
	rebuild := time.Since(t0)
	for p.Health().Snapshots.LastSeq < last { // the round the catch-up took
		if time.Since(t0) > 10*time.Minute {
			b.Fatalf("no snapshot round: %+v", p.Health().Snapshots)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkHealthy(b, p)
	round := p.Health().Snapshots
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	infos, err := snaps.List(ctx, persistence.KindReadModel, cfg.Graph)
	if err != nil || len(infos) == 0 {
		b.Fatalf("read-model snapshots: %v %v", infos, err)
	}
	b.Logf("%d nodes, %d edges: rebuilt from the stream in %v; snapshot round %+v; stored %+v",
		cfg.Nodes, cfg.Edges, rebuild.Round(time.Millisecond), round, infos[0])

	req := &cairnv1.QueryRequest{GraphId: cfg.Graph, MinSeq: last, Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "n" + strconv.Itoa(cfg.Nodes/2)}}}
	var took time.Duration
	var restore api.SnapshotHealth
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		t := time.Now()
		p, err := actors.NewProjections(system, store, pcfg)
		if err != nil {
			b.Fatal(err)
		}
		p.Start()
		rep := p.Query(ctx, req)
		took += time.Since(t)
		if rep.GetError() != nil {
			b.Fatal(aggregate.ErrorFromProto(rep.GetError()))
		}
		restore = p.Health().Snapshots
		if restore.RestoredSeq != last {
			b.Fatalf("restart did not restore seq %d: %+v", last, restore)
		}
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "restart-ms")
	b.ReportMetric(restore.RestoreMs, "restore-ms")
	b.ReportMetric(rebuild.Seconds(), "rebuild-s")
	b.ReportMetric(float64(infos[0].Size)/1e6, "snapshot-MB")
	b.ReportMetric(float64(infos[0].Stored)/1e6, "stored-MB")
	b.ReportMetric(round.LastRoundMs, "round-ms")
	b.ReportMetric(round.LastBlockMs, "block-ms")
}

// BenchmarkSnapshotEncode measures what a snapshot round blocks a shard
// for: encoding the benchmark graph's read model (graphgen.Big with
// -actors.big: 1,000,000 nodes, else 20,000 nodes) into a fresh buffer,
// as a first round does, and into the buffer of the previous round, with
// the page faults and GC work each costs.
//
//	go test ./actors -run '^$' -bench SnapshotEncode -benchtime 10x -timeout 30m -actors.big
func BenchmarkSnapshotEncode(b *testing.B) {
	cfg := projectionGraph()
	g, err := readmodel.New(cfg.Graph, readmodel.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var seq uint64
	if err := cfg.Generate(func(evs []*cairnv1.Event) error { seq++; return g.ApplyTx(seq, evs) }); err != nil {
		b.Fatal(err)
	}
	gcm := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/mark/assist:cpu-seconds"}}
	for _, reuse := range []bool{false, true} {
		name := "fresh"
		if reuse {
			name = "reused"
		}
		b.Run(name, func(b *testing.B) {
			buf := g.AppendSnapshot(nil)
			runtime.GC()
			metrics.Read(gcm)
			gc0, assist0 := gcm[0].Value.Uint64(), gcm[1].Value.Float64()
			faults0 := minorFaults()
			b.ResetTimer()
			for range b.N {
				if reuse {
					buf = g.AppendSnapshot(buf[:0])
				} else {
					buf = g.AppendSnapshot(nil)
				}
			}
			b.StopTimer()
			metrics.Read(gcm)
			n := float64(b.N)
			b.ReportMetric(float64(len(buf))/1e6, "MB")
			b.ReportMetric(float64(minorFaults()-faults0)/n, "faults/op")
			b.ReportMetric(float64(gcm[0].Value.Uint64()-gc0)/n, "gcs/op")
			b.ReportMetric((gcm[1].Value.Float64()-assist0)*1e3/n, "assist-ms/op")
		})
	}
	runtime.KeepAlive(g)
}

// minorFaults returns the process's minor page faults so far.
func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}
