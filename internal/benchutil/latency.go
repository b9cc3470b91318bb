// Package benchutil holds what Cairn's write-path benchmarks share: a
// latency histogram (HDR), closed-loop and open-loop load drivers, and the
// raw JetStream publish baseline with per-subject optimistic concurrency
// that engine numbers are compared against.
//
//	lat := benchutil.NewLatency()
//	took, err := benchutil.ClosedLoop(b.N, 1000, lat, func(worker, i int) error { ... })
//	b.ReportMetric(float64(b.N)/took.Seconds(), "events/s")
//	lat.Report(b) // p50-ms, p99-ms, max-ms
package benchutil

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency is a concurrency-safe HDR histogram of durations from 1 µs to 60 s
// with three significant digits. Longer durations are recorded as 60 s.
type Latency struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

const maxLatencyMicros = 60_000_000

// NewLatency returns an empty histogram.
func NewLatency() *Latency {
	return &Latency{h: hdrhistogram.New(1, maxLatencyMicros, 3)}
}

// Record adds one duration.
func (l *Latency) Record(d time.Duration) {
	us := d.Microseconds()
	us = max(us, 1)
	us = min(us, maxLatencyMicros)
	l.mu.Lock()
	_ = l.h.RecordValue(us) // cannot fail: us is within the histogram's range
	l.mu.Unlock()
}

// Count returns how many durations were recorded.
func (l *Latency) Count() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h.TotalCount()
}

// Quantile returns the duration at quantile q (0-100, for example 99).
func (l *Latency) Quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.h.ValueAtQuantile(q)) * time.Microsecond
}

// Max returns the longest recorded duration (to the histogram's precision).
func (l *Latency) Max() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.h.Max()) * time.Microsecond
}

// Reporter is what Report writes to; *testing.B is one.
type Reporter interface {
	ReportMetric(n float64, unit string)
}

// Report reports the median, the 99th percentile and the maximum in
// milliseconds as prefix+"p50-ms", prefix+"p99-ms" and prefix+"max-ms".
func (l *Latency) Report(r Reporter, prefix string) {
	r.ReportMetric(ms(l.Quantile(50)), prefix+"p50-ms")
	r.ReportMetric(ms(l.Quantile(99)), prefix+"p99-ms")
	r.ReportMetric(ms(l.Max()), prefix+"max-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
