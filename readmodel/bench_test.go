package readmodel

import (
	"flag"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

var bigBench = flag.Bool("readmodel.big", false, "run BenchmarkBigGraph (1,000,000 nodes, 3,000,000 edges; about a minute)")

const (
	bigNodes      = 1_000_000
	bigEdges      = 3_000_000
	bigTypes      = 10
	bigValues     = 100 // bigTypes*bigValues = 1,000 distinct components
	bigTxEvents   = 1000
	bigCategories = 5
)

// buildBig applies a power-law-ish graph: sources uniform, targets drawn from
// a Zipf distribution; each node holds 3 components of distinct types from a
// pool of 1,000 and one category.
func buildBig(b *testing.B) (*Graph, time.Duration) {
	g, err := New("big", DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	seq := uint64(1)
	var tx []*cairnv1.Event
	flush := func() {
		if err := g.ApplyTx(seq, tx); err != nil {
			b.Fatal(err)
		}
		seq++
		tx = tx[:0]
	}
	start := time.Now()
	tx = append(tx, created())
	for i := range bigNodes {
		t := r.Perm(bigTypes)[:3]
		cs := make([]*cairnv1.Component, 3)
		for j := range cs {
			cs[j] = comp("t"+strconv.Itoa(t[j]), strconv.Itoa(r.IntN(bigValues)))
		}
		tx = append(tx, nodeAdded("n"+strconv.Itoa(i), []string{"c" + strconv.Itoa(r.IntN(bigCategories))}, cs...))
		if len(tx) == bigTxEvents {
			flush()
		}
	}
	zipf := rand.NewZipf(r, 1.2, 10, bigNodes-1)
	for i := range bigEdges {
		src := "n" + strconv.Itoa(r.IntN(bigNodes))
		dst := "n" + strconv.Itoa(int(zipf.Uint64()))
		tx = append(tx, edgeAdded("e"+strconv.Itoa(i), src, dst, "r"+strconv.Itoa(r.IntN(4))))
		if len(tx) == bigTxEvents {
			flush()
		}
	}
	if len(tx) > 0 {
		flush()
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
	base := heapInUse()
	g, took := buildBig(b)
	total := float64(heapInUse() - base)
	edgePart := float64(g.edges.Bytes() + g.src.Bytes() + g.dst.Bytes() + g.etype.Bytes() + g.adj.Bytes())
	for _, p := range g.memory() {
		b.Logf("%-22s %7.1f MB", p.name, float64(p.bytes)/1e6)
	}
	b.Run("memory", func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(total/1e6, "MB")
		b.ReportMetric(edgePart/bigEdges, "bytes/edge")
		b.ReportMetric((total-edgePart)/bigNodes, "bytes/node")
		b.ReportMetric(float64(bigNodes+bigEdges)/took.Seconds(), "events/s")
	})
	r := rand.New(rand.NewPCG(2, 2))
	b.Run("Node", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := g.Node("n" + strconv.Itoa(r.IntN(bigNodes))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Neighbors100", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := g.Neighbors("n"+strconv.Itoa(r.IntN(1000)), Both, "", "", 100); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FindByComponent100", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			typ, val := "t"+strconv.Itoa(r.IntN(bigTypes)), strconv.Itoa(r.IntN(bigValues))
			if _, err := g.FindByComponent(typ, []byte(val), "", 100); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Stats", func(b *testing.B) {
		for range b.N {
			g.top.invalidate()
			if _, err := g.Stats(); err != nil {
				b.Fatal(err)
			}
		}
	})
	runtime.KeepAlive(g)
}
