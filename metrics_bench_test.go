package cairn_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/internal/benchutil"
	"github.com/cairn-graph/cairn/internal/enginetest"
	"github.com/cairn-graph/cairn/metrics"
	"github.com/cairn-graph/cairn/persistence"
)

var (
	benchScrape = flag.Bool("bench.scrape", true, "BenchmarkMetricsCost: gather the metrics every second while metrics are on")
	benchRounds = flag.Int("bench.rounds", 1, "BenchmarkMetricsCost: rounds of off and on, interleaved")
)

// BenchmarkMetricsCost measures what the metrics cost the write path: the
// same closed loops as BenchmarkCommandsOneGraphSequential (one caller,
// one graph) and BenchmarkCommands1000GraphsConcurrent (1,000 callers,
// 1,000 graphs), each with metrics off and on, on fresh engines, in turns
// (-bench.rounds N interleaves N rounds of off and on, named round=K:
// -count repeats each sub-benchmark back to back, so that a machine
// whose speed drifts favours one side). With metrics on, a scraper gathers the
// registry every second, as a demanding Prometheus would (every 15 s is
// usual). Compare events/s, cpu-us/event and allocs/op of metrics=off and
// metrics=on of the same shape (issue 15's goal: at most 3 % fewer
// events/s, no allocation more per command; allocs/op counts the whole
// process, the scraper's gathers included: -bench.scrape=false leaves
// them out):
//
//	go test -run '^$' -bench MetricsCost -benchtime 3s . -args -bench.rounds 6
func BenchmarkMetricsCost(b *testing.B) {
	for round := range *benchRounds {
		for _, graphs := range []int{1, benchGraphs} {
			benchMetricsCost(b, round+1, graphs)
		}
	}
}

func benchMetricsCost(b *testing.B, round, graphs int) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(fmt.Sprintf("round=%d/graphs=%d/metrics=%s", round, graphs, name), func(b *testing.B) {
			cfg := cairn.DefaultConfig(b.TempDir())
			cfg.NATSListen = persistence.ListenNone
			if on {
				cfg.Metrics = metrics.New(metrics.Options{})
			}
			eng := enginetest.OpenConfig(b, cfg)
			ids := createBenchGraphs(b, eng, graphs)
			if on && *benchScrape {
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					t := time.NewTicker(time.Second)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							if _, err := cfg.Metrics.Registry().Gather(); err != nil {
								b.Error(err)
							}
						}
					}
				}()
				defer func() { close(stop); <-done }()
			}
			ctx := context.Background()
			lat := benchutil.NewLatency()
			b.ReportAllocs()
			b.ResetTimer()
			run, err := benchutil.ClosedLoop(b.N, graphs, lat, func(w, i int) error {
				return benchExecute(ctx, eng, ids[w%len(ids)], i, 1)
			})
			reportEngine(b, run, err, b.N, lat)
		})
	}
}

// BenchmarkScrape is one scrape of an engine holding 1,000 graphs (a
// Gather of the registry: the hot paths' instruments, the engine's
// collector asking the grains, the shards and JetStream, and the Go
// runtime's and the process's collectors). JetStream's figures are cached
// for 2 s, so most ops reuse them, as scrapes from several Prometheus
// servers would.
func BenchmarkScrape(b *testing.B) {
	cfg := cairn.DefaultConfig(b.TempDir())
	cfg.NATSListen = persistence.ListenNone
	cfg.Metrics = metrics.New(metrics.Options{})
	eng := enginetest.OpenConfig(b, cfg)
	ids := createBenchGraphs(b, eng, benchGraphs)
	ctx := context.Background()
	if _, err := benchutil.ClosedLoop(10*benchGraphs, 100, nil, func(w, i int) error {
		return benchExecute(ctx, eng, ids[i%len(ids)], i, 1)
	}); err != nil {
		b.Fatal(err)
	}
	reg := cfg.Metrics.Registry()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		if len(mfs) < 50 {
			b.Fatalf("%d metric families", len(mfs))
		}
	}
}
