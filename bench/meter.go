package bench

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 60 s with three significant digits, so every
// percentile is within 0.1% (plus the 1 µs unit) of the true value.
// Longer latencies are counted as 60 s in the histogram; the exact maximum
// is kept beside it.
const (
	histLowestUS  = 1
	histHighestUS = 60_000_000
	histDigits    = 3
)

// summaryQuantiles returns the ladder of percentiles in
// OpSummary.Distribution.
func summaryQuantiles() []float64 { return []float64{50, 75, 90, 95, 99, 99.9, 99.99, 100} }

// Recorder counts operations and their latencies, per operation name, over
// a whole run and per interval (see Tick). It is safe for concurrent use;
// Record holds a read lock on the op names and the op's own lock for a
// moment, and does not allocate once an op name has been seen.
//
// Count includes failed ops; Errors is the failed part of Count. The
// latency of a failed op goes into no histogram: percentiles, Mean and Max
// describe successful ops only, and Items counts what successful ops
// carried.
type Recorder struct {
	start time.Time

	mu      sync.RWMutex // guards ops; opStats have their own locks
	ops     map[string]*opStats
	tickMu  sync.Mutex // guards the fields below; serialises Tick and Stop
	stopped bool
	elapsed time.Duration // frozen by Stop
	lastAt  time.Duration // end of the last closed interval
	series  []Interval
}

// opStats is one op's totals and its current (open) interval.
type opStats struct {
	mu    sync.Mutex
	total window
	cur   window
}

// window is a count of ops with their latency histogram.
type window struct {
	hist   *hdrhistogram.Histogram
	count  int64
	errors int64
	items  int64
	sum    time.Duration // of successful ops, for the mean
	max    time.Duration // exact, of successful ops
}

func newWindow() window {
	return window{hist: hdrhistogram.New(histLowestUS, histHighestUS, histDigits)}
}

func (w *window) record(items int, latency time.Duration, err error) {
	w.count++
	latency = max(latency, 0)
	if err != nil {
		w.errors++
		return
	}
	w.items += int64(items)
	w.sum += latency
	w.max = max(w.max, latency)
	us := latency.Microseconds()
	us = min(max(us, histLowestUS), histHighestUS)
	_ = w.hist.RecordValue(us) // cannot fail: us is within the histogram's range
}

func (w *window) reset() {
	w.hist.Reset()
	w.count, w.errors, w.items, w.sum, w.max = 0, 0, 0, 0, 0
}

// quantiles returns the latency at each percentile q (0-100, ascending) of
// the successful ops, by nearest rank: the smallest recorded value with at
// least q% of the values at or below it, to the histogram's precision
// (the highest value equivalent to it, capped at the exact maximum).
func (w *window) quantiles(qs []float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	n := w.hist.TotalCount()
	if n == 0 {
		return out
	}
	// hdrhistogram rounds q*n/100 to the nearest rank; ask it for a
	// percentile whose rounding lands exactly on the nearest rank ceil(q*n/100).
	ps := make([]float64, len(qs))
	for i, q := range qs {
		r := nearestRank(q, n)
		ps[i] = (float64(r) - 0.25) / float64(n) * 100
	}
	vs := w.hist.ValueAtPercentilesSlice(ps)
	for i, v := range vs {
		out[i] = min(time.Duration(v)*time.Microsecond, w.max)
		if nearestRank(qs[i], n) == n {
			out[i] = w.max // exact, even beyond the histogram's 60 s
		}
	}
	return out
}

// nearestRank is ceil(q/100*n), at least 1 and at most n; the tiny relative
// slack keeps float error (99.9*3000/100 = 2997.0000000000005) from pushing
// an exact rank up by one.
func nearestRank(q float64, n int64) int64 {
	x := q / 100 * float64(n)
	r := int64(math.Ceil(x * (1 - 1e-12)))
	return min(max(r, 1), n)
}

// NewRecorder returns an empty Recorder; its measured phase starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), ops: make(map[string]*opStats)}
}

// Record counts one op named op that took latency. A non-nil err counts it
// as an error: it adds to Count and Errors only. Otherwise its latency goes
// into the op's histograms and items (the units it carried, events for
// example) into Items. Latencies below 1 µs count as 1 µs and above 60 s as
// 60 s in the percentiles; Mean and Max use the exact values.
func (r *Recorder) Record(op string, items int, latency time.Duration, err error) {
	r.mu.RLock()
	s := r.ops[op]
	r.mu.RUnlock()
	if s == nil {
		r.mu.Lock()
		if s = r.ops[op]; s == nil {
			s = &opStats{total: newWindow(), cur: newWindow()}
			r.ops[op] = s
		}
		r.mu.Unlock()
	}
	s.mu.Lock()
	s.total.record(items, latency, err)
	s.cur.record(items, latency, err)
	s.mu.Unlock()
}

// Stop freezes Elapsed at the time of the first call; later calls do
// nothing. Ops recorded after Stop are still counted, against the frozen
// Elapsed.
func (r *Recorder) Stop() {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	if !r.stopped {
		r.stopped = true
		r.elapsed = time.Since(r.start)
	}
}

// Elapsed returns the time since NewRecorder, or until Stop once stopped.
func (r *Recorder) Elapsed() time.Duration {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	return r.elapsedLocked()
}

func (r *Recorder) elapsedLocked() time.Duration {
	if r.stopped {
		return r.elapsed
	}
	return time.Since(r.start)
}

// sortedOps returns the op names and their stats, sorted by name.
func (r *Recorder) sortedOps() ([]string, []*opStats) {
	r.mu.RLock()
	names := make([]string, 0, len(r.ops))
	for name := range r.ops {
		names = append(names, name)
	}
	slices.Sort(names)
	stats := make([]*opStats, len(names))
	for i, name := range names {
		stats[i] = r.ops[name]
	}
	r.mu.RUnlock()
	return names, stats
}

// Tick closes the interval since the previous Tick (or since NewRecorder)
// and returns it: At is its end, measured from the start (the frozen
// Elapsed once stopped), and Ops holds, for every op seen so far, sorted by
// name, what happened in that interval alone, with rates per second of the
// interval. The interval is also appended to Series. An interval of zero
// length reports zero rates.
func (r *Recorder) Tick() Interval {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	at := r.elapsedLocked()
	dt := at - r.lastAt
	r.lastAt = at
	names, stats := r.sortedOps()
	iv := Interval{At: at, AtS: at.Seconds(), Ops: make([]OpInterval, len(names))}
	for i, s := range stats {
		s.mu.Lock()
		w := &s.cur
		qs := w.quantiles([]float64{50, 99})
		iv.Ops[i] = OpInterval{
			Op:       names[i],
			Count:    w.count,
			Errors:   w.errors,
			Rate:     perSecond(w.count-w.errors, dt),
			Items:    w.items,
			ItemRate: perSecond(w.items, dt),
			P50MS:    msOf(qs[0]),
			P99MS:    msOf(qs[1]),
			MaxMS:    msOf(w.max),
		}
		w.reset()
		s.mu.Unlock()
	}
	r.series = append(r.series, iv)
	return iv
}

// Series returns the intervals closed so far by Tick, oldest first. The
// slice is a copy; the Ops slices within are shared and must not be
// modified.
func (r *Recorder) Series() []Interval {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	return slices.Clone(r.series)
}

// Summaries returns every op's totals over the whole run, sorted by op
// name; Rate and ItemRate are per second of Elapsed.
func (r *Recorder) Summaries() []OpSummary {
	elapsed := r.Elapsed()
	names, stats := r.sortedOps()
	qs := summaryQuantiles()
	out := make([]OpSummary, len(names))
	for i, s := range stats {
		s.mu.Lock()
		w := &s.total
		vs := w.quantiles(qs)
		sum := OpSummary{
			Op:       names[i],
			Count:    w.count,
			Errors:   w.errors,
			Rate:     perSecond(w.count-w.errors, elapsed),
			Items:    w.items,
			ItemRate: perSecond(w.items, elapsed),
			MaxMS:    msOf(w.max),
		}
		if ok := w.count - w.errors; ok > 0 {
			sum.MeanMS = msOf(w.sum) / float64(ok)
			sum.Distribution = make([]Percentile, len(qs))
			for j, q := range qs {
				sum.Distribution[j] = Percentile{Q: q, MS: msOf(vs[j])}
			}
			sum.P50MS = msOf(vs[0])
			sum.P90MS = msOf(vs[2])
			sum.P99MS = msOf(vs[4])
			sum.P999MS = msOf(vs[5])
		}
		s.mu.Unlock()
		out[i] = sum
	}
	return out
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
