package cairn_test

import (
	"context"
	"flag"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/internal/benchutil"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

var (
	manyGraphs = flag.Int("many.graphs", 5000, "graphs of BenchmarkManyGraphs")
	manySample = flag.Int("many.sample", 300, "graphs BenchmarkManyGraphs times a cold and a warm command on")
	manyFiller = flag.Int("many.filler", 3, "extra read-model snapshot objects per graph in BenchmarkManyGraphs, so that listing the bucket costs what it does in a store that has run a while")
	manyDrain  = flag.Bool("many.drain", true, "BenchmarkManyGraphs: activate every graph and time the drain (without: the cold and warm samples only)")
)

// BenchmarkManyGraphs is issue 12's many-graphs case, end to end through
// Engine.Execute and Engine.Close, in one run (-benchtime 1x). First an
// engine creates many.graphs graphs (a graph and a node each, 32 callers)
// and closes: every grain is active and writes its last snapshot as it
// stops (drain-fresh-s). A restarted engine then finds a bucket of about
// (2 + many.filler) × many.graphs objects (the aggregate and read-model
// snapshots, and many.filler small read-model snapshots per graph put
// beside them). It sends one command to each of many.sample graphs (4
// callers: cold-p50-ms, each activation loads its graph's snapshot), then
// one more to each (warm-p50-ms); cold-warm-ratio is cold ÷ warm medians.
// fetch-p50-ms is the graph's own snapshot fetch alone (List and Get of its
// newest aggregate snapshot), for the goal cold ≈ warm + fetch.
// Last it sends one command to every graph, so that every grain is active
// with an event since its snapshot, and Close drains them (drain-s: the
// engine's whole Close, the grains' last snapshots, the projections' last
// snapshot round, NATS and the server; -many.drain=false leaves this
// part out). SnapshotKeep is 1, so that a grain
// prunes at every write after its first, as one that has run a while does.
//
//	go test -run '^$' -bench ManyGraphs -benchtime 1x .
func BenchmarkManyGraphs(b *testing.B) {
	dir := b.TempDir()
	n, sample := *manyGraphs, min(*manySample, *manyGraphs)
	open := func() *cairn.Engine {
		cfg := cairn.DefaultConfig(dir)
		cfg.NATSListen = persistence.ListenNone
		cfg.Grain.SnapshotKeep = 1
		eng, err := cairn.Open(context.Background(), cfg)
		if err != nil {
			b.Fatalf("open engine: %v", err)
		}
		return eng
	}
	closeEng := func(eng *cairn.Engine) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		if err := eng.Close(ctx); err != nil {
			b.Fatalf("close engine: %v", err)
		}
		return time.Since(start)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("many%05d", i)
	}
	send := func(eng *cairn.Engine, graphs []string, workers int, id string, cmds func(i int) []*cairnv1.Command, lat *benchutil.Latency) {
		b.Helper()
		_, err := benchutil.ClosedLoop(len(graphs), workers, lat, func(_, i int) error {
			_, err := eng.Execute(context.Background(), &cairnv1.CommandEnvelope{GraphId: graphs[i], CommandId: id, Commands: cmds(i)})
			return err
		})
		if err != nil {
			b.Fatalf("%s: %v", id, err)
		}
	}
	node := func(id string) func(int) []*cairnv1.Command {
		return func(int) []*cairnv1.Command { return []*cairnv1.Command{benchAddNode(id)} }
	}

	for range b.N {
		eng := open()
		create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "bench"}}}
		send(eng, ids, 32, "create", func(int) []*cairnv1.Command { return []*cairnv1.Command{create, benchAddNode("a")} }, nil)
		b.ReportMetric(closeEng(eng).Seconds(), "drain-fresh-s")

		eng = open()
		snaps := eng.Snapshots()
		_, err := benchutil.ClosedLoop(n**manyFiller, 16, nil, func(_, i int) error {
			_, err := snaps.Put(context.Background(), persistence.SnapshotInfo{
				Kind: persistence.KindReadModel, Graph: ids[i%n], Seq: uint64(i / n), Format: 1}, []byte("filler"))
			return err
		})
		if err != nil {
			b.Fatalf("filler: %v", err)
		}
		all, err := snaps.Objects().List(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(all)), "objects")
		cold, warm := benchutil.NewLatency(), benchutil.NewLatency()
		send(eng, ids[:sample], 4, "cold", node("b"), cold)
		send(eng, ids[:sample], 4, "warm", node("c"), warm)
		b.ReportMetric(float64(cold.Quantile(0.5))/1e6, "cold-p50-ms")
		b.ReportMetric(float64(warm.Quantile(0.5))/1e6, "warm-p50-ms")
		b.ReportMetric(float64(cold.Quantile(0.5))/float64(warm.Quantile(0.5)), "cold-warm-ratio")
		// The graph's own snapshot fetch, alone: find its snapshots, read
		// the newest (what an activation does before checking it).
		fetch := benchutil.NewLatency()
		_, err = benchutil.ClosedLoop(sample, 4, fetch, func(_, i int) error {
			infos, err := snaps.List(context.Background(), persistence.KindAggregate, ids[i])
			if err == nil && len(infos) == 0 {
				err = fmt.Errorf("graph %s has no snapshot", ids[i])
			}
			if err == nil {
				_, err = snaps.Get(context.Background(), infos[0])
			}
			return err
		})
		if err != nil {
			b.Fatalf("fetch: %v", err)
		}
		b.ReportMetric(float64(fetch.Quantile(0.5))/1e6, "fetch-p50-ms")
		if !*manyDrain {
			closeEng(eng)
			continue
		}
		// Commands that time out (before the index, activations that
		// list the bucket queued past the command timeout) are counted,
		// not fatal: the drain is still measured.
		var failed atomic.Int64
		_, _ = benchutil.ClosedLoop(n, 32, nil, func(_, i int) error {
			_, err := eng.Execute(context.Background(), &cairnv1.CommandEnvelope{GraphId: ids[i], CommandId: "all", Commands: node("d")(i)})
			if err != nil {
				failed.Add(1)
			}
			return nil
		})
		b.ReportMetric(float64(failed.Load()), "all-failed")
		b.ReportMetric(closeEng(eng).Seconds(), "drain-s")
	}
}
