package actors_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/internal/benchutil"
	"github.com/cairn-graph/cairn/internal/graphgen"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Time-travel benchmark shape: a 100,000-node graph (graphgen.Big scaled,
// 300,000 edges) plus churn, read-model snapshots every 10,000 events, all
// kept.
const (
	ttNodes        = 100_000
	ttChurnEvents  = 100_000
	ttSnapEvery    = 10_000
	ttSnapKeep     = 1_000
	ttUncached     = 100 // time-travel queries at fresh random points
	ttCachedPoints = 8   // points whose views are then queried again
	ttCachedEach   = 200
)

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
func appendAll(b *testing.B, store *persistence.Store, chain *graphgen.Chain, graph string, last uint64, events []*cairnv1.Event, txEvents int) uint64 {
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
			b.Fatalf("as of seq %d: %v", seq, actors.ErrorFromProto(e))
		}
		return rep, d
	}
	uncached, cached := benchutil.NewLatency(), benchutil.NewLatency()
	b.ResetTimer()
	for range b.N {
		seen := map[uint64]bool{}
		var points []uint64
		for len(points) < ttUncached {
			seq := 1 + r.Uint64N(last)
			if seen[seq] {
				continue
			}
			seen[seq] = true
			points = append(points, seq)
			_, d := query(seq)
			uncached.Record(d)
		}
		// The cache holds the last ttCachedPoints views.
		for range ttCachedEach {
			_, d := query(points[len(points)-1-r.IntN(ttCachedPoints)])
			cached.Record(d)
		}
	}
	b.StopTimer()
	tt := p.Health().TimeTravel
	b.Logf("time travel: %+v", tt)
	uncached.Report(b, "uncached-")
	cached.Report(b, "cached-")
	b.ReportMetric(float64(tt.FromSnapshot), "from-snapshot")
	b.ReportMetric(float64(tt.FromView), "from-view")
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
	var restore actors.SnapshotHealth
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
			b.Fatal(actors.ErrorFromProto(rep.GetError()))
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
