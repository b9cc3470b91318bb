package intern

import (
	"strconv"
	"testing"
	"time"
)

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
