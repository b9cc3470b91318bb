package bench

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRecorderPercentilesMatchSortedReference checks Summaries against a
// naive reference: the nearest-rank percentile of the sorted latencies.
func TestRecorderPercentilesMatchSortedReference(t *testing.T) {
	const seed = 20261127
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)

	type rec struct {
		op      string
		items   int
		latency time.Duration
		err     error
	}
	counts := map[string]int{"append": 3001, "query": 2000, "scan": 777}
	ref := make(map[string][]time.Duration) // successful latencies
	wantErrors := make(map[string]int64)
	wantItems := make(map[string]int64)
	var recs []rec
	failed := errors.New("failed")
	for _, op := range []string{"append", "query", "scan"} {
		for range counts[op] {
			// Log-normal around 2 ms, clamped to 10 µs..5 s.
			ln := math.Log(2e6) + rng.NormFloat64()*2.2
			ns := min(max(math.Exp(ln), 10e3), 5e9)
			r := rec{op: op, items: 1 + rng.IntN(10), latency: time.Duration(ns)}
			if rng.IntN(20) == 0 {
				r.err = failed
				wantErrors[op]++
			} else {
				ref[op] = append(ref[op], r.latency)
				wantItems[op] += int64(r.items)
			}
			recs = append(recs, r)
		}
	}
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })

	r := NewRecorder()
	const workers = 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(recs); i += workers {
				x := recs[i]
				r.Record(x.op, x.items, x.latency, x.err)
			}
		})
	}
	wg.Wait()
	r.Stop()

	sums := r.Summaries()
	if got := len(sums); got != len(counts) {
		t.Fatalf("got %d summaries, want %d", got, len(counts))
	}
	if !slices.IsSortedFunc(sums, func(a, b OpSummary) int { return strings.Compare(a.Op, b.Op) }) {
		t.Errorf("summaries not sorted by op: %v", sums)
	}
	for _, s := range sums {
		lat := ref[s.Op]
		slices.Sort(lat)
		n := int64(len(lat))
		if s.Count != int64(counts[s.Op]) || s.Errors != wantErrors[s.Op] || s.Items != wantItems[s.Op] {
			t.Errorf("%s: count %d errors %d items %d, want %d %d %d",
				s.Op, s.Count, s.Errors, s.Items, counts[s.Op], wantErrors[s.Op], wantItems[s.Op])
		}
		var total time.Duration
		for _, d := range lat {
			total += d
		}
		if want := msOf(total) / float64(n); math.Abs(s.MeanMS-want) > 1e-9*want {
			t.Errorf("%s: mean %v ms, want %v", s.Op, s.MeanMS, want)
		}
		check := func(name string, tenths int64, gotMS float64) {
			t.Helper()
			rank := (tenths*n + 999) / 1000 // ceil(q/100 * n), exactly
			want := lat[rank-1]
			tol := 0.001*msOf(want) + msOf(time.Microsecond)
			if math.Abs(gotMS-msOf(want)) > tol {
				t.Errorf("%s %s: %v ms, want %v ms ± %v (n %d, rank %d, seed %d)", s.Op, name, gotMS, msOf(want), tol, n, rank, seed)
			}
		}
		check("p50", 500, s.P50MS)
		check("p90", 900, s.P90MS)
		check("p99", 990, s.P99MS)
		check("p99.9", 999, s.P999MS)
		check("max", 1000, s.MaxMS)
		wantQ := []float64{50, 75, 90, 95, 99, 99.9, 99.99, 100}
		if len(s.Distribution) != len(wantQ) {
			t.Fatalf("%s: distribution has %d points, want %d", s.Op, len(s.Distribution), len(wantQ))
		}
		for i, p := range s.Distribution {
			if p.Q != wantQ[i] {
				t.Errorf("%s: distribution[%d].Q = %v, want %v", s.Op, i, p.Q, wantQ[i])
			}
			check("distribution", int64(math.Round(p.Q*10)), p.MS)
		}
		if want := float64(n) / r.Elapsed().Seconds(); math.Abs(s.Rate-want) > 1e-9*want {
			t.Errorf("%s: rate %v, want successes/elapsed %v", s.Op, s.Rate, want)
		}
	}
}

func TestRecorderClampsOutOfRangeLatencies(t *testing.T) {
	r := NewRecorder()
	r.Record("x", 0, 0, nil)
	r.Record("x", 0, -time.Second, nil)
	r.Record("x", 0, 90*time.Second, nil)
	s := r.Summaries()[0]
	if s.MaxMS != 90_000 {
		t.Errorf("max %v ms, want the exact 90000", s.MaxMS)
	}
	if s.P50MS != 0.001 {
		t.Errorf("p50 %v ms, want 0.001 (1 µs, the histogram's floor)", s.P50MS)
	}
}

// TestRecorderTickPartitionsCounts checks that the intervals add up to the
// totals.
func TestRecorderTickPartitionsCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	r := NewRecorder()
	fail := errors.New("fail")
	ticks := 0
	for round := range 12 {
		for range rng.IntN(200) {
			op := []string{"read", "write"}[rng.IntN(2)]
			var err error
			if rng.IntN(10) == 0 {
				err = fail
			}
			r.Record(op, rng.IntN(5), time.Duration(1+rng.IntN(1e6))*time.Microsecond, err)
		}
		if round%4 != 3 { // some rounds span two batches
			r.Tick()
			ticks++
		}
	}
	r.Stop()
	last := r.Tick()
	ticks++
	if last.At != r.Elapsed() {
		t.Errorf("last interval ends at %v, want the frozen elapsed %v", last.At, r.Elapsed())
	}

	series := r.Series()
	if len(series) != ticks {
		t.Fatalf("series has %d intervals, want %d", len(series), ticks)
	}
	sum := make(map[string]OpInterval)
	for i, iv := range series {
		if i > 0 && iv.At < series[i-1].At {
			t.Errorf("interval %d ends at %v, before interval %d at %v", i, iv.At, i-1, series[i-1].At)
		}
		if iv.AtS != iv.At.Seconds() {
			t.Errorf("interval %d: AtS %v, want %v", i, iv.AtS, iv.At.Seconds())
		}
		for _, o := range iv.Ops {
			s := sum[o.Op]
			s.Count += o.Count
			s.Errors += o.Errors
			s.Items += o.Items
			sum[o.Op] = s
			if o.Rate < 0 || o.ItemRate < 0 || o.P50MS > o.P99MS || o.P99MS > o.MaxMS {
				t.Errorf("interval %d %s: implausible %+v", i, o.Op, o)
			}
		}
	}
	for _, s := range r.Summaries() {
		got := sum[s.Op]
		if got.Count != s.Count || got.Errors != s.Errors || got.Items != s.Items {
			t.Errorf("%s: intervals sum to count %d errors %d items %d, totals are %d %d %d",
				s.Op, got.Count, got.Errors, got.Items, s.Count, s.Errors, s.Items)
		}
	}
}

func TestRecorderStopFreezesElapsed(t *testing.T) {
	r := NewRecorder()
	r.Stop()
	e := r.Elapsed()
	r.Stop()
	if got := r.Elapsed(); got != e {
		t.Errorf("elapsed moved after Stop: %v then %v", e, got)
	}
}

func TestMeterStop(t *testing.T) {
	var live bytes.Buffer
	m := StartMeter(&live, "test", selfMem)
	for i := range 1000 {
		var err error
		if i%100 == 0 {
			err = errors.New("boom")
		}
		m.Record("ingest", 10, time.Duration(100+i)*time.Microsecond, err)
	}
	m.Record("query", 1, 3*time.Millisecond, nil)
	ops, series, mem, elapsed := m.Stop()

	if len(ops) != 2 || ops[0].Op != "ingest" || ops[0].Count != 1000 || ops[0].Errors != 10 || ops[0].Items != 9900 {
		t.Errorf("ops = %+v, want ingest (1000 ops, 10 errors, 9900 items) and query", ops)
	}
	if len(series) == 0 {
		t.Fatal("no intervals")
	}
	var n int64
	for _, iv := range series {
		for _, o := range iv.Ops {
			n += o.Count
		}
	}
	if n != 1001 {
		t.Errorf("intervals count %d ops, want 1001", n)
	}
	if len(mem) < 2 {
		t.Fatalf("%d memory samples, want the start and the end", len(mem))
	}
	for _, s := range mem {
		if s.HeapBytes == 0 {
			t.Errorf("memory sample %+v has no heap", s)
		}
	}
	if got := mem[len(mem)-1].At; got != elapsed {
		t.Errorf("last memory sample at %v, want at the end %v", got, elapsed)
	}
	if elapsed <= 0 || elapsed != m.Elapsed() {
		t.Errorf("elapsed %v, recorder says %v", elapsed, m.Elapsed())
	}
	out := live.String()
	for _, want := range []string{"test", "done in", "ingest: 1,000 ops, 10 errors", "query: 1 ops", "p99"} {
		if !strings.Contains(out, want) {
			t.Errorf("live output lacks %q:\n%s", want, out)
		}
	}

	// Stop again: same answer, no more output.
	before := live.Len()
	ops2, series2, mem2, elapsed2 := m.Stop()
	if elapsed2 != elapsed || len(ops2) != len(ops) || len(series2) != len(series) || len(mem2) != len(mem) {
		t.Error("second Stop returned something else")
	}
	if live.Len() != before {
		t.Error("second Stop printed again")
	}
}

// TestMeterLiveLines runs the ticking goroutine fast and checks that it
// closes intervals, samples memory and prints one line per tick.
func TestMeterLiveLines(t *testing.T) {
	var live bytes.Buffer // written only by the meter's goroutine until Stop returns
	m := startMeter(&live, "fast", 2*time.Millisecond, selfMem)
	// Until two intervals hold both ops: on a loaded machine a tick can
	// fall between the two Records, and that interval holds one op only.
	both := func() int {
		n := 0
		for _, iv := range m.Series() {
			if len(iv.Ops) == 2 {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(m.Series()) < 3 || both() < 2 {
		if time.Now().After(deadline) {
			m.Stop()
			t.Fatal("meter did not tick within 10 s")
		}
		m.Record("a", 1, time.Millisecond, nil)
		m.Record("b", 2, 2*time.Millisecond, nil)
		time.Sleep(time.Millisecond) // polling interval
	}
	_, series, mem, _ := m.Stop()
	if len(mem) < len(series) {
		t.Errorf("%d memory samples for %d intervals", len(mem), len(series))
	}
	lines := strings.Split(strings.TrimSpace(live.String()), "\n")
	named := 0
	for _, l := range lines {
		if !strings.Contains(l, "ops/s") || !strings.Contains(l, "heap") {
			continue
		}
		switch n := strings.Count(l, "ops/s"); {
		case n > 1 && (!strings.Contains(l, "| a") || !strings.Contains(l, "| b")):
			t.Errorf("progress line of two ops lacks a named segment per op: %q", l)
		case n > 1:
			named++
		case strings.Contains(l, "|"):
			t.Errorf("progress line of one op names it: %q", l)
		}
	}
	if named < 2 {
		t.Errorf("%d progress lines name both ops, want one per interval that held both (%d):\n%s", named, both(), live.String())
	}
	if !strings.Contains(lines[len(lines)-1], "done in") {
		t.Errorf("output does not end with the summary:\n%s", live.String())
	}
}

func TestReadMem(t *testing.T) {
	m := ReadMem()
	if m.HeapBytes == 0 {
		t.Error("heap is 0")
	}
	if m.At != 0 {
		t.Errorf("At = %v, want 0", m.At)
	}
}

// selfMem samples this process: the in-process driver's sampler.
func selfMem(context.Context) (MemSample, error) { return ReadMem(), nil }

// A sampler that fails leaves no sample; without one there are none.
func TestMeterMemSamplerFails(t *testing.T) {
	m := StartMeter(nil, "x", func(context.Context) (MemSample, error) { return MemSample{}, errors.New("engine gone") })
	if _, _, mem, _ := m.Stop(); len(mem) != 0 {
		t.Errorf("%d samples from a failing sampler", len(mem))
	}
	m = StartMeter(nil, "y", nil)
	if _, _, mem, _ := m.Stop(); len(mem) != 0 {
		t.Errorf("%d samples without a sampler", len(mem))
	}
}
