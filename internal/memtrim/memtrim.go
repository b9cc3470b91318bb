// Package memtrim hands the heap a process no longer uses back to the OS
// once the process has gone quiet after a large drop, for `cairn serve`.
//
// The Go runtime keeps freed heap for reuse and returns it slowly, down to
// about the next collection's goal; and when a burst (a bulk load) is
// followed by little allocation, no collection runs at all, so the goal,
// and the heap the process holds, stay at twice the burst's live heap.
// A Trimmer looks at the runtime's metrics now and then. It trims when no
// collection ran for Quiet, the heap it holds beyond the live heap is at
// least Excess and a quarter of the live heap, and the process, at the
// rate it allocated since the last collection, would take more than
// Horizon (longer for a live heap above HeapRef) to fill that excess: an
// engine under steady load, which reuses its free heap within a few
// collections, is left alone. A trim runs two
// collections, so that what sits in sync.Pools is dropped (nats-server's
// file-store block buffers, see flushPools), then debug.FreeOSMemory (a
// third collection, then every free page handed back), then
// DropLazyFree.
//
// Under GODEBUG=madvdontneed=0 (internal/madvfree, which cairn serve
// sets) the runtime hands pages back with MADV_FREE: they would count in
// the process's RSS (LazyFree in /proc/PID/smaps_rollup) until the kernel
// needs the memory. DropLazyFree has the kernel take them at once
// (MADV_PAGEOUT; not where the machine has swap). The heap regrows from
// the live heap with page faults, once, instead of reusing free pages:
// the price of the smaller RSS. Trims are at least Gap apart.
//
// Example:
//
//	go memtrim.Run(ctx, memtrim.Config{}, logger)
package memtrim

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config tunes a Trimmer; zero fields take their defaults.
type Config struct {
	// Every is how often Run looks. Default 500 ms.
	Every time.Duration
	// Quiet is how long no collection must have run. Default 1 s.
	Quiet time.Duration
	// Horizon: trim only when, at the rate the process allocated since
	// the last collection, the heap held beyond the live heap would take
	// longer than this to fill: the pages a trim hands back are faulted
	// in again as the heap regrows, so a trim pays only where they stay
	// out a while. Default 10 s.
	Horizon time.Duration
	// Gap is the least time between two trims. Default 5 s.
	Gap time.Duration
	// HeapRef: with a live heap above it, Horizon grows in proportion
	// (see worth). Default 256 MiB.
	HeapRef uint64
	// Excess is the least heap held beyond the live heap (as of the last
	// collection) worth handing back; it must also be at least a quarter
	// of the live heap. Default 64 MiB.
	Excess uint64
}

func (c Config) defaulted() Config {
	if c.Every <= 0 {
		c.Every = 500 * time.Millisecond
	}
	if c.Quiet <= 0 {
		c.Quiet = time.Second
	}
	if c.Horizon <= 0 {
		c.Horizon = 10 * time.Second
	}
	if c.Gap <= 0 {
		c.Gap = 5 * time.Second
	}
	if c.HeapRef == 0 {
		c.HeapRef = 256 << 20
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
	"/gc/heap/allocs:bytes",
}

// Trimmer decides when to hand heap back. It is not safe for concurrent
// use.
type Trimmer struct {
	cfg     Config
	samples []metrics.Sample
	cycles  uint64    // the collections counted at the last look
	since   time.Time // since when that count has not changed
	allocs  uint64    // bytes allocated so far, at since
	trimmed time.Time // the last trim
	// floor is what the last trim left held beyond the live heap: the
	// runtime's own memory (stacks, span and collector metadata), which
	// no trim hands back; it is not counted in the excess.
	floor uint64
}

// New returns a Trimmer that counts quiet time from now.
func New(cfg Config, now time.Time) *Trimmer {
	t := &Trimmer{cfg: cfg.defaulted(), samples: make([]metrics.Sample, len(names))}
	for i, n := range names {
		t.samples[i].Name = n
	}
	s := t.read()
	t.cycles, t.allocs, t.since = s.cycles, s.allocs, now
	return t
}

type sample struct{ cycles, live, held, allocs uint64 }

// read returns the collections so far, the live heap after the last one,
// what the runtime holds from the OS (mapped, less what it released) and
// the bytes allocated so far.
func (t *Trimmer) read() sample {
	metrics.Read(t.samples)
	v := func(i int) uint64 {
		if t.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return t.samples[i].Value.Uint64()
	}
	return sample{cycles: v(0), live: v(1), held: v(2) - min(v(3), v(2)), allocs: v(4)}
}

// Result is what a Step saw and did.
type Result struct {
	// Trimmed: the Step called debug.FreeOSMemory.
	Trimmed bool
	// Dropped: then DropLazyFree had the kernel take the freed pages
	// back at once.
	Dropped bool
	// Err is DropLazyFree's error, if any (the trim itself stands).
	Err error
	// Live and Held are the live heap and what the runtime held from the
	// OS before the Step; LiveAfter and HeldAfter the same after a trim.
	Live, Held, LiveAfter, HeldAfter uint64
	// Rate is what the process allocated per second since the last
	// collection.
	Rate float64
}

// Step looks once, at now, and trims when due.
func (t *Trimmer) Step(now time.Time) Result {
	s := t.read()
	r := Result{Live: s.live, Held: s.held, LiveAfter: s.live, HeldAfter: s.held}
	if s.cycles != t.cycles {
		t.cycles, t.since, t.allocs = s.cycles, now, s.allocs
		return r
	}
	quiet := now.Sub(t.since)
	if quiet < t.cfg.Quiet || s.held < s.live || (!t.trimmed.IsZero() && now.Sub(t.trimmed) < t.cfg.Gap) {
		return r
	}
	r.Rate = float64(s.allocs-min(t.allocs, s.allocs)) / quiet.Seconds()
	if !t.cfg.worth(s.live, s.held-min(t.floor, s.held), r.Rate) {
		return r
	}
	flushPools()
	debug.FreeOSMemory()
	r.Trimmed = true
	r.Dropped, r.Err = DropLazyFree()
	after := t.read()
	r.LiveAfter, r.HeldAfter = after.live, after.held
	t.cycles, t.since, t.allocs, t.trimmed = after.cycles, now, after.allocs, now
	t.floor = after.held - min(after.live, after.held)
	return r
}

// worth reports whether a trim is worth its cost with live bytes live,
// held held and the process allocating rate bytes a second: the heap held
// beyond the live heap (the excess) is at least Excess and a quarter of
// the live heap, and at that rate would take longer than Horizon, scaled
// by the live heap over HeapRef when above it, to fill. A trim costs
// about three marks of the live heap and a fault for each page the heap
// takes back, so a big heap must keep the pages out longer for it to
// pay; an engine of a 1M-node graph under a mixed load (live 450-570 MB,
// 30-60 MB/s) is thus left alone.
func (c Config) worth(live, held uint64, rate float64) bool {
	if held < live {
		return false
	}
	excess := held - live
	horizon := c.Horizon.Seconds() * max(1, float64(live)/float64(c.HeapRef))
	return excess >= max(c.Excess, live/4) && float64(excess) > rate*horizon
}

// flushPools runs two collections before the trim's own, so that what
// sits in sync.Pools is freed by it: a pool keeps what it holds through
// one collection (in its victim cache) and drops it at the next. nats-server
// recycles each file-store block's cache buffer (8 MiB for the event
// stream) into a pool when the cache expires or is collected (a cleanup,
// run just after the collection that found it unreachable); after a bulk
// load they would stay there, about all the blocks written, until the
// next two collections, which an engine that has gone quiet may not run
// for minutes.
func flushPools() {
	runtime.GC()
	time.Sleep(10 * time.Millisecond) // the cleanups of the first collection recycle their buffers
	runtime.GC()
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
					slog.Uint64("live_bytes", r.Live), slog.Uint64("held_bytes", r.Held),
					slog.Uint64("live_after_bytes", r.LiveAfter), slog.Uint64("held_after_bytes", r.HeldAfter),
					slog.Float64("alloc_bytes_per_s", r.Rate), slog.Bool("lazyfree_dropped", r.Dropped), slog.Any("lazyfree_error", r.Err),
					slog.Duration("took", time.Since(now)))
			}
		}
	}
}
