package intern

import (
	"strconv"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/benchutil"
)

// cpuPerOp reports the process's CPU time per operation since cpu0
// (cpu-ns/op): on a shared machine it moves far less than the wall time.
func cpuPerOp(b *testing.B, cpu0 time.Duration) {
	if cpu, ok := benchutil.CPUTime(); ok {
		b.ReportMetric(float64(cpu-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkWorstSet grows a table to 3.2M prefix+number ids, as the edge
// table of a 1M-node, 3M-edge graph, and reports the slowest single Set
// (worst-set-ms) and the slowest of those that doubled the hash table
// (worst-doubling-ms), which used to rehash every entry at once.
//
//	go test ./internal/intern -run '^$' -bench WorstSet -benchtime 1x
func BenchmarkWorstSet(b *testing.B) {
	b.ReportAllocs()
	const n = 3_200_000
	var worst, worstDoubling time.Duration
	for range b.N {
		tab := New()
		for i := range n {
			s := "e" + strconv.Itoa(i)
			slots := tab.slots.Len()
			start := time.Now()
			tab.Set(uint32(i), s)
			d := time.Since(start)
			worst = max(worst, d)
			if tab.slots.Len() != slots {
				worstDoubling = max(worstDoubling, d)
			}
		}
	}
	b.ReportMetric(float64(worst.Microseconds())/1e3, "worst-set-ms")
	b.ReportMetric(float64(worstDoubling.Microseconds())/1e3, "worst-doubling-ms")
}

// benchKeys returns n keys of the two common kinds: prefix+number ids that
// fit an offset cell ("e123"), and plain ones that live in the arena.
func benchKeys(n int, plain bool) []string {
	keys := make([]string, n)
	for i := range keys {
		if plain {
			keys[i] = "node-" + strconv.Itoa(i) + "-x"
		} else {
			keys[i] = "e" + strconv.Itoa(i)
		}
	}
	return keys
}

// BenchmarkLookup looks up random present keys in a table of 3M.
//
//	go test ./internal/intern -run '^$' -bench 'Lookup|Set$' -count 5
func BenchmarkLookup(b *testing.B) { benchLookup(b, false) }

// BenchmarkLookupMiss looks up absent keys in a table of 1.5M, as a new
// node's or edge's id is looked up before it is added: every probe of the
// chain meets another entry.
//
//	go test ./internal/intern -run '^$' -bench 'LookupMiss' -count 5
func BenchmarkLookupMiss(b *testing.B) { benchLookup(b, true) }

// benchLookup looks up keys of both kinds: with miss, the half of 3M keys
// that the table does not hold, else the 3M it holds.
func benchLookup(b *testing.B, miss bool) {
	for _, plain := range []bool{false, true} {
		name := "inline"
		if plain {
			name = "arena"
		}
		b.Run(name, func(b *testing.B) {
			keys := benchKeys(3_000_000, plain)
			held, asked := keys, keys
			if miss {
				held, asked = keys[:len(keys)/2], keys[len(keys)/2:]
			}
			tab := New()
			for i, k := range held {
				tab.Set(uint32(i), k)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, _ := benchutil.CPUTime()
			for i := 0; b.Loop(); i++ {
				if _, ok := tab.Lookup(asked[(i*7919)%len(asked)]); ok == miss {
					b.Fatalf("Lookup(%q) found %v", asked[(i*7919)%len(asked)], ok)
				}
			}
			cpuPerOp(b, cpu0)
		})
	}
}

// BenchmarkSet grows tables to 1M keys, doublings and migration included,
// and reports the time per Set.
func BenchmarkSet(b *testing.B) {
	for _, plain := range []bool{false, true} {
		name := "inline"
		if plain {
			name = "arena"
		}
		b.Run(name, func(b *testing.B) {
			keys := benchKeys(1_000_000, plain)
			b.ReportAllocs()
			tab := New()
			for i := 0; b.Loop(); i++ {
				k := i % len(keys)
				if k == 0 {
					tab = New()
				}
				tab.Set(uint32(k), keys[k])
			}
		})
	}
}
