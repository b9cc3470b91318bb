package deadline

import (
	"sync"
	"testing"
	"time"
)

// TestAfterNeverEarly: every channel closes, and never before its time,
// whatever order the waits come in.
func TestAfterNeverEarly(t *testing.T) {
	w := New(5 * time.Millisecond)
	ds := []time.Duration{40 * time.Millisecond, 0, 15 * time.Millisecond, -time.Second, 25 * time.Millisecond, 15 * time.Millisecond, time.Millisecond}
	var wg sync.WaitGroup
	for _, d := range ds {
		start := time.Now()
		ch := w.After(d)
		wg.Go(func() {
			<-ch
			if took := time.Since(start); took < d {
				t.Errorf("After(%v) closed after %v", d, took)
			}
		})
	}
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buckets) != 0 || w.armed != 0 {
		t.Errorf("after the last channel closed: %d buckets, armed at tick %d; want none", len(w.buckets), w.armed)
	}
}

// TestAfterShares: waits that end in the same tick share one channel; the
// wheel keeps its buckets in tick order.
func TestAfterShares(t *testing.T) {
	w := New(time.Hour)
	a, b := w.After(time.Minute), w.After(2*time.Minute)
	if a != b {
		t.Error("two waits ending in the same tick got different channels")
	}
	c := w.After(3 * time.Hour)
	d := w.After(90 * time.Minute)
	if c == a || d == a || c == d {
		t.Error("waits ending in different ticks share a channel")
	}
	for i := 1; i < len(w.buckets); i++ {
		if w.buckets[i-1].tick >= w.buckets[i].tick {
			t.Fatalf("buckets out of order: %v", w.buckets)
		}
	}
	if w.armed != w.buckets[0].tick {
		t.Errorf("timer armed at tick %d, want the earliest, %d", w.armed, w.buckets[0].tick)
	}
	select {
	case <-a:
		t.Error("a channel an hour away is closed")
	default:
	}
	w.timer.Stop()
}

func BenchmarkAfter(b *testing.B) {
	w := New(10 * time.Millisecond)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = w.After(time.Second)
		}
	})
}
