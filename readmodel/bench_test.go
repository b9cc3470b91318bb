package readmodel

import (
	"flag"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/graphgen"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

var bigBench = flag.Bool("readmodel.big", false, "run BenchmarkBigGraph and BenchmarkSnapshot (1,000,000 nodes, 3,000,000 edges; about a minute each)")

// buildBig applies graphgen.Big, a power-law graph (sources uniform, targets
// Zipf-distributed) of 1,000,000 nodes and 3,000,000 edges, each node with 3
// components of distinct types from a pool of 1,000 and one category.
func buildBig(b *testing.B, cfg graphgen.Config) (*Graph, time.Duration) {
	g, err := New(cfg.Graph, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	seq := uint64(1)
	start := time.Now()
	err = cfg.Generate(func(tx []*cairnv1.Event) error {
		seq++
		return g.ApplyTx(seq-1, tx)
	})
	if err != nil {
		b.Fatal(err)
	}
	g.Compact()
	return g, time.Since(start)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkBigGraph reports the memory of a 1M-node, 3M-edge read model and
// the latency of the point queries on it. Run it with
//
//	go test ./readmodel -run '^$' -bench BigGraph -benchtime 100000x -readmodel.big
func BenchmarkBigGraph(b *testing.B) {
	if !*bigBench {
		b.Skip("pass -readmodel.big to run")
	}
	cfg := graphgen.Big()
	base := heapInUse()
	g, took := buildBig(b, cfg)
	total := float64(heapInUse() - base)
	edgePart := float64(g.edges.Bytes() + g.src.Bytes() + g.dst.Bytes() + g.etype.Bytes() + g.adj.Bytes())
	for _, p := range g.memory() {
		b.Logf("%-22s %7.1f MB", p.name, float64(p.bytes)/1e6)
	}
	b.Run("memory", func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(total/1e6, "MB")
		b.ReportMetric(edgePart/float64(cfg.Edges), "bytes/edge")
		b.ReportMetric((total-edgePart)/float64(cfg.Nodes), "bytes/node")
		b.ReportMetric(float64(cfg.Events())/took.Seconds(), "events/s")
	})
	r := rand.New(rand.NewPCG(2, 2))
	b.Run("Node", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := g.Node(graphgen.NodeID(r.IntN(cfg.Nodes))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Neighbors100", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := g.Neighbors(graphgen.NodeID(r.IntN(1000)), Both, "", "", 100); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FindByComponent100", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			typ, val := "t"+strconv.Itoa(r.IntN(cfg.Types)), strconv.Itoa(r.IntN(cfg.Values))
			if _, err := g.FindByComponent(typ, []byte(val), "", 100); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Stats", func(b *testing.B) {
		for range b.N {
			g.top = topCache{} // the full computation, not a cached answer
			if _, err := g.Stats(); err != nil {
				b.Fatal(err)
			}
		}
	})
	runtime.KeepAlive(g)
}
