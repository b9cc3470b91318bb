package benchutil

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestLatencyQuantiles(t *testing.T) {
	l := NewLatency()
	for i := 1; i <= 100; i++ {
		l.Record(time.Duration(i) * time.Millisecond)
	}
	l.Record(2 * time.Minute) // clamped to the histogram's maximum
	for _, tc := range []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", l.Quantile(50), 51 * time.Millisecond}, // 101 values: the 51st
		{"p99", l.Quantile(99), 100 * time.Millisecond},
		{"max", l.Max(), time.Minute},
	} {
		// three significant digits: within 0.1%
		if d := tc.got - tc.want; d < -tc.want/1000 || d > tc.want/1000 {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if l.Count() != 101 {
		t.Errorf("count = %d, want 101", l.Count())
	}
}

func TestClosedLoopCallsEachOnceAndCountsFailures(t *testing.T) {
	const n = 1000
	var mu sync.Mutex
	seen := make(map[int]int)
	boom := errors.New("boom")
	_, err := ClosedLoop(n, 7, NewLatency(), func(worker, i int) error {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		if i%100 == 0 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want one wrapping boom", err)
	}
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("call %d made %d times", i, seen[i])
		}
	}
}

// TestOpenLoopDoesNotWaitForCalls: every call blocks until all n have
// started, which only an open loop lets happen.
func TestOpenLoopDoesNotWaitForCalls(t *testing.T) {
	const n = 50
	var started sync.WaitGroup
	started.Add(n)
	lat := NewLatency()
	_, err := OpenLoop(n, 10_000, lat, func(i int) error {
		started.Done()
		started.Wait()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lat.Count() != n {
		t.Fatalf("recorded %d latencies, want %d", lat.Count(), n)
	}
}
