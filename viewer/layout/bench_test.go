package layout

import (
	"sync"
	"testing"
)

// bench100K is the benchmarks' graph, 100K nodes / 200K edges, laid out
// once by FirstLayout(20) and shared as a keyframe.
var bench100K = sync.OnceValues(func() (testGraph, []byte) {
	g := genGraph(1, 100_000, 200_000)
	l, err := New(DefaultParams(), SeedFor("bench"))
	if err != nil {
		panic(err)
	}
	g.load(l)
	l.FirstLayout(20)
	key, err := l.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return g, key
})

func settled100K(b *testing.B) *Layout {
	b.Helper()
	_, key := bench100K()
	l, err := Unmarshal(key)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkRelaxIteration100K times one global iteration on 100K nodes /
// 200K edges, laid out (the goal: ≤ 150 ms on 2 cores).
func BenchmarkRelaxIteration100K(b *testing.B) {
	l := settled100K(b)
	b.ReportAllocs()
	for b.Loop() {
		l.Relax(1)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/iteration")
}

// BenchmarkFirstLayout100K times the multilevel first layout of 100K nodes
// / 200K edges with 20 iterations a level, from the positions one bulk
// transaction leaves.
func BenchmarkFirstLayout100K(b *testing.B) {
	g, _ := bench100K()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		l, err := New(DefaultParams(), SeedFor("bench"))
		if err != nil {
			b.Fatal(err)
		}
		g.load(l)
		b.StartTimer()
		l.FirstLayout(20)
	}
}

// BenchmarkEndTx1Node100K times a one-node transaction (the node and two
// edges) on the laid-out 100K graph: placement, the hot set and its ticks.
func BenchmarkEndTx1Node100K(b *testing.B) {
	l := settled100K(b)
	b.ReportAllocs()
	s, e := uint32(100_000), uint32(200_000)
	for b.Loop() {
		l.AddNode(s)
		l.AddEdge(e, s, s/2%100_000)
		l.AddEdge(e+1, s, s*7%100_000)
		l.EndTx()
		s++
		e += 2
	}
}

// BenchmarkEndTxHotCap100K times a transaction whose hot set reaches
// HotCap: a node joined to 64 spread nodes (the per-EndTx worst case
// short of bulk placement).
func BenchmarkEndTxHotCap100K(b *testing.B) {
	l := settled100K(b)
	b.ReportAllocs()
	s, e := uint32(100_000), uint32(200_000)
	for b.Loop() {
		l.AddNode(s)
		for k := range uint32(64) {
			l.AddEdge(e, s, (s*131+k*1543)%100_000)
			e++
		}
		l.EndTx()
		s++
	}
}
