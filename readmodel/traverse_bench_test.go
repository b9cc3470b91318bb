package readmodel

import (
	"errors"
	"github.com/cairn-graph/cairn/internal/graphgen"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

const (
	travNodes = 100_000
	travEdges = 300_000
)

// buildTraverse applies a power-law graph of nodes nodes and edges edges
// (sources uniform, targets Zipf-distributed, as buildBig); each node holds
// a weight component "w" from 1 to 9.
func buildTraverse(b testing.TB, nodes, edges int) *Graph {
	b.Helper()
	g := newGraph(b)
	r := rand.New(rand.NewPCG(3, 3))
	seq := uint64(2)
	var tx []*cairnv1.Event
	flush := func() {
		if err := g.ApplyTx(seq, tx); err != nil {
			b.Fatal(err)
		}
		seq, tx = seq+1, tx[:0]
	}
	for i := range nodes {
		tx = append(tx, nodeAdded("n"+strconv.Itoa(i), nil, comp("w", strconv.Itoa(1+r.IntN(9)))))
		if len(tx) == 1000 {
			flush()
		}
	}
	zipf := rand.NewZipf(r, 1.2, 10, uint64(nodes-1))
	for i := range edges {
		src, dst := "n"+strconv.Itoa(r.IntN(nodes)), "n"+strconv.Itoa(int(zipf.Uint64()))
		tx = append(tx, edgeAdded("e"+strconv.Itoa(i), src, dst, "r"+strconv.Itoa(r.IntN(4))))
		if len(tx) == 1000 {
			flush()
		}
	}
	flush()
	g.Compact()
	return g
}

// timed runs op b.N times and reports the p50, p99 and max latency.
func timed(b *testing.B, op func(i int) error) {
	b.Helper()
	b.ReportAllocs()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
}

// BenchmarkTraverse measures the traversal queries on a 100,000-node,
// 300,000-edge power-law graph (not asserted):
//
//	go test ./readmodel -run '^$' -bench 'Traverse$' -benchtime 2000x
func BenchmarkTraverse(b *testing.B) {
	benchTraverse(b, buildTraverse(b, travNodes, travEdges), travNodes, true)
}

// BenchmarkTraverseBig measures them on 1,000,000 nodes and 3,000,000 edges
// built as BenchmarkTraverse's graph (building it takes about a minute):
//
//	go test ./readmodel -run '^$' -bench TraverseBig -benchtime 2000x -readmodel.big
func BenchmarkTraverseBig(b *testing.B) {
	if !*bigBench {
		b.Skip("pass -readmodel.big to run")
	}
	big := graphgen.Big()
	benchTraverse(b, buildTraverse(b, big.Nodes, big.Edges), big.Nodes, false)
}

// benchTraverse runs the sub-benchmarks on g, whose nodes are n0..n<nodes-1>.
// A query that stops with ErrLimitExceeded (the default limits, 100,000
// nodes) counts in "exceeded/op" and in the latencies.
func benchTraverse(b *testing.B, g *Graph, nodes int, rebuild bool) {
	node := func(r *rand.Rand) string { return "n" + strconv.Itoa(r.IntN(nodes)) }
	for _, dir := range []Direction{Out, Both} {
		name := map[Direction]string{Out: "Out", Both: "Both"}[dir]
		b.Run("KHop2/"+name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(4, 4))
			reached, exceeded := 0, 0
			timed(b, func(int) error {
				res, err := g.KHop(node(r), dir, "", 2, TraverseLimits{})
				reached += len(res.Nodes)
				if errors.Is(err, ErrLimitExceeded) {
					exceeded, err = exceeded+1, nil
				}
				return err
			})
			b.ReportMetric(float64(reached)/float64(b.N), "nodes/op")
			b.ReportMetric(float64(exceeded)/float64(b.N), "exceeded/op")
		})
	}
	for _, weight := range []string{"", "w"} {
		name := map[string]string{"": "BFS", "w": "Dijkstra"}[weight]
		b.Run("ShortestPath/"+name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(5, 5))
			found, exceeded := 0, 0
			timed(b, func(int) error {
				_, err := g.ShortestPath(node(r), node(r), Both, "", weight, TraverseLimits{})
				switch {
				case err == nil:
					found++
				case errors.Is(err, ErrLimitExceeded):
					exceeded, err = exceeded+1, nil
				case errors.Is(err, ErrNotFound):
					err = nil
				}
				return err
			})
			b.ReportMetric(float64(found)/float64(b.N), "found/op")
			b.ReportMetric(float64(exceeded)/float64(b.N), "exceeded/op")
		})
	}
	if !rebuild {
		return
	}
	b.Run("ComponentCount/rebuild", func(b *testing.B) {
		timed(b, func(int) error {
			g.trav.ccValid = false
			_, err := g.ComponentCount()
			return err
		})
	})
}
