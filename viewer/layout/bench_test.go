package layout

import (
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's CPU time so far (user + system), so that a
// benchmark can report CPU per op beside wall time on a shared machine.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU milliseconds per op since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

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
	cpu := cpuTime(b)
	for b.Loop() {
		l.Relax(1)
	}
	reportCPU(b, cpu)
}

// BenchmarkFirstLayout100K times the multilevel first layout of 100K nodes
// / 200K edges with 20 iterations a level, from the positions one bulk
// transaction leaves.
func BenchmarkFirstLayout100K(b *testing.B) {
	g, _ := bench100K()
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		l, err := New(DefaultParams(), SeedFor("bench"))
		if err != nil {
			b.Fatal(err)
		}
		g.load(l)
		c := cpuTime(b)
		b.StartTimer()
		l.FirstLayout(20)
		cpu += cpuTime(b) - c
	}
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkEndTx1Node100K times a one-node transaction (the node and two
// edges) on the laid-out 100K graph: placement, the hot set and its ticks.
func BenchmarkEndTx1Node100K(b *testing.B) { benchEndTx(b, 2) }

// BenchmarkEndTxHotCap100K times a transaction whose hot set reaches
// HotCap: a node joined to 512 spread nodes (the per-EndTx worst case
// short of bulk placement).
func BenchmarkEndTxHotCap100K(b *testing.B) { benchEndTx(b, 512) }

// benchEndTx times transactions of one new node joined to edges spread
// nodes of the laid-out 100K graph, and reports the hot set's size.
func benchEndTx(b *testing.B, edges uint32) {
	l := settled100K(b)
	b.ReportAllocs()
	s, e := uint32(100_000), uint32(200_000)
	hot := 0
	cpu := cpuTime(b)
	for b.Loop() {
		l.AddNode(s)
		for k := range edges {
			l.AddEdge(e, s, (s*131+k*1543)%100_000)
			e++
		}
		l.EndTx()
		hot += len(l.sim.act)
		s++
	}
	reportCPU(b, cpu)
	b.ReportMetric(float64(hot)/float64(b.N), "hot-nodes")
}
