// Package memtrim hands the heap a process no longer uses back to the OS
// once the process has gone quiet after a large drop, for `cairn serve`.
//
// The Go runtime keeps freed heap for reuse and returns it slowly, down to
// about the next collection's goal; and when a burst (a bulk load) is
// followed by little allocation, no collection runs at all, so the goal,
// and the heap the process holds, stay at twice the burst's live heap.
// A Trimmer looks at the runtime's metrics now and then; when no
// collection ran for Quiet and the heap it holds beyond the live heap is
// at least Excess and at least a quarter of the live heap, it calls
// debug.FreeOSMemory: a collection, then every free page handed back.
//
// Under GODEBUG=madvdontneed=0 (internal/madvfree, which cairn serve
// sets) the pages go back with MADV_FREE: the kernel takes them when it
// needs memory, without I/O, and until then they still count in the
// process's RSS (LazyFree in /proc/PID/smaps_rollup). What changes at
// once is the heap the runtime counts as its own (the memory limit's
// view) and the next goal, which is the live heap's again.
//
// Example:
//
//	go memtrim.Run(ctx, memtrim.Config{}, logger)
package memtrim

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config tunes a Trimmer; zero fields take their defaults.
type Config struct {
	// Every is how often Run looks. Default 5 s.
	Every time.Duration
	// Quiet is how long no collection must have run: the process
	// allocates slowly, so a forced collection costs little, and nothing
	// is about to reuse the pages. Default 10 s.
	Quiet time.Duration
	// Excess is the least heap held beyond the live heap (as of the last
	// collection) worth handing back; it must also be at least a quarter
	// of the live heap, so that a big engine is not collected again and
	// again while it idles. Default 64 MiB.
	Excess uint64
}

func (c Config) defaulted() Config {
	if c.Every <= 0 {
		c.Every = 5 * time.Second
	}
	if c.Quiet <= 0 {
		c.Quiet = 10 * time.Second
	}
	if c.Excess == 0 {
		c.Excess = 64 << 20
	}
	return c
}

// runtime/metrics names a Trimmer reads.
var names = []string{
	"/gc/cycles/total:gc-cycles",
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
}

// Trimmer decides when to hand heap back. It is not safe for concurrent
// use.
type Trimmer struct {
	cfg     Config
	samples []metrics.Sample
	cycles  uint64    // the collections counted at the last look
	since   time.Time // since when that count has not changed
}

// New returns a Trimmer that counts quiet time from now.
func New(cfg Config, now time.Time) *Trimmer {
	t := &Trimmer{cfg: cfg.defaulted(), samples: make([]metrics.Sample, len(names))}
	for i, n := range names {
		t.samples[i].Name = n
	}
	t.cycles, _, _ = t.read()
	t.since = now
	return t
}

// read returns the collections so far, the live heap after the last one
// and what the runtime holds from the OS (mapped, less what it released).
func (t *Trimmer) read() (cycles, live, held uint64) {
	metrics.Read(t.samples)
	v := func(i int) uint64 {
		if t.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return t.samples[i].Value.Uint64()
	}
	return v(0), v(1), v(2) - min(v(3), v(2))
}

// Result is what a Step saw and did.
type Result struct {
	// Trimmed: the Step called debug.FreeOSMemory.
	Trimmed bool
	// Live and Held are the live heap and what the runtime held from the
	// OS before the Step; HeldAfter what it holds after a trim.
	Live, Held, HeldAfter uint64
}

// Step looks once, at now, and trims when due.
func (t *Trimmer) Step(now time.Time) Result {
	cycles, live, held := t.read()
	r := Result{Live: live, Held: held, HeldAfter: held}
	if cycles != t.cycles {
		t.cycles, t.since = cycles, now
		return r
	}
	if now.Sub(t.since) < t.cfg.Quiet || held < live || held-live < max(t.cfg.Excess, live/4) {
		return r
	}
	debug.FreeOSMemory()
	r.Trimmed = true
	t.cycles, _, r.HeldAfter = t.read()
	t.since = now
	return r
}

// Run steps a Trimmer every cfg.Every until ctx ends, logging each trim.
func Run(ctx context.Context, cfg Config, log *slog.Logger) {
	t := New(cfg, time.Now())
	tick := time.NewTicker(t.cfg.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if r := t.Step(now); r.Trimmed {
				log.LogAttrs(ctx, slog.LevelInfo, "heap handed back to the OS after a drop",
					slog.Uint64("live_bytes", r.Live), slog.Uint64("held_bytes", r.Held), slog.Uint64("held_after_bytes", r.HeldAfter),
					slog.Duration("took", time.Since(now)))
			}
		}
	}
}
