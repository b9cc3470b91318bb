package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Meter is a Recorder with a goroutine that, every second, closes an
// interval (Tick), samples the engine's memory and, when it has a live
// writer, prints one progress line, for example
//
//	ingest     12s  45,210 ops/s  p50 1.21 ms  p99 8.03 ms  errors 0  engine heap 120 MB  rss 310 MB
//
// On a terminal the line is redrawn in place; to any other writer each
// second is a line of its own. Record, Tick and the rest of the Recorder
// are used through the embedded *Recorder; Stop stops the goroutine.
type Meter struct {
	*Recorder

	live    io.Writer
	tty     bool
	label   string
	printed bool // a live line was written (owned by run, then by Stop)

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	sampleMem MemSampler // nil: no memory samples
	memMu     sync.Mutex
	mem       []MemSample

	// What Stop returned, for repeated calls.
	ops     []OpSummary
	series  []Interval
	elapsed time.Duration
}

// livePeriod is how often a Meter ticks.
const livePeriod = time.Second

// StartMeter starts a Meter whose measured phase starts now. live may be
// nil (no output); label names the run on each live line; mem samples the
// engine's memory at the start, every second and at Stop (a driver's
// Memory; nil for none). A sample that fails (the engine does not answer
// within half a second) is left out.
func StartMeter(live io.Writer, label string, mem MemSampler) *Meter {
	return startMeter(live, label, livePeriod, mem)
}

func startMeter(live io.Writer, label string, period time.Duration, mem MemSampler) *Meter {
	m := &Meter{
		Recorder:  NewRecorder(),
		live:      live,
		tty:       isTerminal(live),
		label:     label,
		sampleMem: mem,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	m.takeMem(0)
	go m.run(period)
	return m
}

func (m *Meter) run(period time.Duration) {
	defer close(m.done)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			iv := m.Tick()
			ms, ok := m.takeMem(iv.At)
			m.printLive(iv, ms, ok)
		}
	}
}

// SampleMem takes a memory sample now, at Elapsed, beside the ones per
// second: for a moment a scenario wants in the series (the recovery
// scenario's engine, once it serves, before the kill).
func (m *Meter) SampleMem() { m.takeMem(m.Elapsed()) }

// takeMem samples the engine's memory and records the sample at at; it
// reports false when there is no sampler or the sample failed.
func (m *Meter) takeMem(at time.Duration) (MemSample, bool) {
	if m.sampleMem == nil {
		return MemSample{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	s, err := m.sampleMem(ctx)
	cancel()
	if err != nil {
		return MemSample{}, false
	}
	s.At, s.AtS = at, at.Seconds()
	m.memMu.Lock()
	m.mem = append(m.mem, s)
	m.memMu.Unlock()
	return s, true
}

// Memory returns the memory samples taken so far, oldest first: one at the
// start, one per second and one at Stop.
func (m *Meter) Memory() []MemSample {
	m.memMu.Lock()
	defer m.memMu.Unlock()
	return append([]MemSample(nil), m.mem...)
}

// Stop stops the ticking goroutine and waits for it, freezes Elapsed,
// closes the last (partial) interval, takes a last memory sample and
// prints a summary line per op to the live writer. It returns the per-op
// summaries, the intervals, the memory samples and the measured time.
// Later calls return the same without doing anything.
func (m *Meter) Stop() (ops []OpSummary, series []Interval, mem []MemSample, elapsed time.Duration) {
	m.stopOnce.Do(func() {
		close(m.stop)
		<-m.done
		m.Recorder.Stop()
		ticked := m.Recorder.Series()
		var lastAt time.Duration
		if len(ticked) > 0 {
			lastAt = ticked[len(ticked)-1].At
		}
		m.elapsed = m.Elapsed()
		if m.elapsed > lastAt || len(ticked) == 0 {
			m.Tick()
		}
		m.takeMem(m.elapsed)
		m.ops = m.Summaries()
		m.series = m.Recorder.Series()
		m.printSummary()
	})
	return m.ops, m.series, m.Memory(), m.elapsed
}

// printLive writes one progress line for the interval iv.
func (m *Meter) printLive(iv Interval, mem MemSample, memOK bool) {
	if m.live == nil {
		return
	}
	var b strings.Builder
	if m.tty {
		b.WriteString("\r")
	}
	fmt.Fprintf(&b, "%-10s %5.0fs", m.label, iv.AtS)
	ops := iv.Ops
	if len(ops) > 3 {
		// The busiest op, then the total of all.
		busiest := ops[0]
		var errs int64
		var rate float64
		for _, o := range ops {
			if o.Count > busiest.Count {
				busiest = o
			}
			errs += o.Errors
			rate += o.Rate
		}
		b.WriteString(liveSegment(busiest, true))
		fmt.Fprintf(&b, "  | total of %d ops: %s ops/s  errors %s", len(iv.Ops), fmtRate(rate), fmtInt(errs))
	} else {
		for _, o := range ops {
			b.WriteString(liveSegment(o, len(ops) > 1))
		}
	}
	if memOK {
		if mem.HeapBytes > 0 {
			fmt.Fprintf(&b, "  engine heap %s", fmtMB(mem.HeapBytes))
		}
		if mem.RSSBytes > 0 {
			fmt.Fprintf(&b, "  rss %s", fmtMB(mem.RSSBytes))
		}
	}
	if m.tty {
		b.WriteString("\x1b[K")
	} else {
		b.WriteString("\n")
	}
	m.printed = true
	_, _ = io.WriteString(m.live, b.String()) // progress output is best effort
}

// liveSegment is one op's part of a live line.
func liveSegment(o OpInterval, named bool) string {
	var b strings.Builder
	if named {
		fmt.Fprintf(&b, "  | %s: %s ops/s", o.Op, fmtRate(o.Rate))
	} else {
		fmt.Fprintf(&b, "  %s ops/s", fmtRate(o.Rate))
	}
	if o.Items > 0 && o.Items != o.Count-o.Errors {
		fmt.Fprintf(&b, " (%s items/s)", fmtRate(o.ItemRate))
	}
	if o.Count > o.Errors {
		fmt.Fprintf(&b, "  p50 %s ms  p99 %s ms", fmtMS(o.P50MS), fmtMS(o.P99MS))
	}
	fmt.Fprintf(&b, "  errors %s", fmtInt(o.Errors))
	return b.String()
}

// printSummary writes the closing lines: one per op over the whole run.
func (m *Meter) printSummary() {
	if m.live == nil {
		return
	}
	var b strings.Builder
	if m.tty && m.printed {
		b.WriteString("\n") // end the redrawn progress line
	}
	if len(m.ops) == 0 {
		fmt.Fprintf(&b, "%-10s done in %s: no ops\n", m.label, m.elapsed.Round(time.Millisecond))
	}
	for _, o := range m.ops {
		fmt.Fprintf(&b, "%-10s done in %s  %s: %s ops, %s errors, %s ops/s",
			m.label, m.elapsed.Round(time.Millisecond), o.Op, fmtInt(o.Count), fmtInt(o.Errors), fmtRate(o.Rate))
		if o.Items > 0 {
			fmt.Fprintf(&b, ", %s items/s", fmtRate(o.ItemRate))
		}
		if o.Count > o.Errors {
			fmt.Fprintf(&b, "  p50 %s ms  p99 %s ms  p99.9 %s ms  max %s ms",
				fmtMS(o.P50MS), fmtMS(o.P99MS), fmtMS(o.P999MS), fmtMS(o.MaxMS))
		}
		b.WriteString("\n")
	}
	_, _ = io.WriteString(m.live, b.String()) // progress output is best effort
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
