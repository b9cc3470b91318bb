package readmodel

import (
	"errors"
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

// buildTraverse applies a power-law graph of travNodes nodes and travEdges
// edges (sources uniform, targets Zipf-distributed, as buildBig); each node
// holds a weight component "w" from 1 to 9.
func buildTraverse(b *testing.B) *Graph {
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
	for i := range travNodes {
		tx = append(tx, nodeAdded("n"+strconv.Itoa(i), nil, comp("w", strconv.Itoa(1+r.IntN(9)))))
		if len(tx) == 1000 {
			flush()
		}
	}
	zipf := rand.NewZipf(r, 1.2, 10, travNodes-1)
	for i := range travEdges {
		src, dst := "n"+strconv.Itoa(r.IntN(travNodes)), "n"+strconv.Itoa(int(zipf.Uint64()))
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
//	go test ./readmodel -run '^$' -bench Traverse -benchtime 2000x
func BenchmarkTraverse(b *testing.B) {
	g := buildTraverse(b)
	node := func(r *rand.Rand) string { return "n" + strconv.Itoa(r.IntN(travNodes)) }
	for _, dir := range []Direction{Out, Both} {
		name := map[Direction]string{Out: "Out", Both: "Both"}[dir]
		b.Run("KHop2/"+name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(4, 4))
			reached := 0
			timed(b, func(int) error {
				res, err := g.KHop(node(r), dir, "", 2, TraverseLimits{})
				reached += len(res.Nodes)
				return err
			})
			b.ReportMetric(float64(reached)/float64(b.N), "nodes/op")
		})
	}
	for _, weight := range []string{"", "w"} {
		name := map[string]string{"": "BFS", "w": "Dijkstra"}[weight]
		b.Run("ShortestPath/"+name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(5, 5))
			found := 0
			timed(b, func(int) error {
				_, err := g.ShortestPath(node(r), node(r), Both, "", weight, TraverseLimits{})
				if err == nil {
					found++
				}
				if errors.Is(err, ErrNotFound) {
					err = nil
				}
				return err
			})
			b.ReportMetric(float64(found)/float64(b.N), "found/op")
		})
	}
	b.Run("ComponentCount/rebuild", func(b *testing.B) {
		timed(b, func(int) error {
			g.trav.ccValid = false
			_, err := g.ComponentCount()
			return err
		})
	})
}
