package benchutil

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Run is what a load driver measured.
type Run struct {
	// Wall is the time from the first (scheduled) start to the last return.
	Wall time.Duration
	// CPU is the CPU time (user and system) the whole process used
	// meanwhile, 0 where the platform does not say. It changes much less
	// than Wall when other processes compete for the CPUs.
	CPU time.Duration
}

// CPUPerOp returns the CPU time per op in microseconds, for n ops.
func (r Run) CPUPerOp(n int) float64 {
	return float64(r.CPU) / float64(time.Microsecond) / float64(n)
}

// Rate returns n ops over the wall time, per second.
func (r Run) Rate(n int) float64 { return float64(n) / r.Wall.Seconds() }

func startRun() func() Run {
	start := time.Now()
	cpu0, _ := CPUTime()
	return func() Run {
		r := Run{Wall: time.Since(start)}
		if cpu1, ok := CPUTime(); ok {
			r.CPU = cpu1 - cpu0
		}
		return r
	}
}

// ClosedLoop makes n calls of do from workers goroutines, each worker
// starting its next call when its previous one returned; i numbers the calls
// 0..n-1. It records each call's latency in lat (when not nil) and returns
// what the run took and, when calls failed, the first error and how many
// failed.
func ClosedLoop(n, workers int, lat *Latency, do func(worker, i int) error) (Run, error) {
	var next atomic.Int64
	var fails Failures
	var wg sync.WaitGroup
	done := startRun()
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				err := do(w, i)
				if lat != nil {
					lat.Record(time.Since(t))
				}
				fails.Add(err)
			}
		})
	}
	wg.Wait()
	return done(), fails.Err()
}

// OpenLoop makes n calls of do at rate calls per second, each in its own
// goroutine at its scheduled time whether or not earlier calls have
// returned. Each call's latency is measured from its scheduled start, not
// from when it actually began, so a stall counts against every call it
// delayed (no coordinated omission). It returns once every call has
// returned, with what the run took and the first error and failure count
// as ClosedLoop does.
func OpenLoop(n int, rate float64, lat *Latency, do func(i int) error) (Run, error) {
	interval := time.Duration(float64(time.Second) / rate)
	var fails Failures
	var wg sync.WaitGroup
	done := startRun()
	start := time.Now()
	for i := 0; i < n; {
		now := time.Now()
		due := start.Add(time.Duration(i) * interval)
		if wait := due.Sub(now); wait > 0 {
			time.Sleep(wait)
			continue
		}
		// Launch every call that is due by now: timer resolution, not the
		// schedule, decides how many go out together.
		for ; i < n && !start.Add(time.Duration(i)*interval).After(now); i++ {
			intended := start.Add(time.Duration(i) * interval)
			wg.Go(func() {
				err := do(i)
				if lat != nil {
					lat.Record(time.Since(intended))
				}
				fails.Add(err)
			})
		}
	}
	wg.Wait()
	return done(), fails.Err()
}

// Failures counts failed calls and keeps the first error; read Err only
// after every call has returned. The zero value is ready to use.
type Failures struct {
	mu    sync.Mutex
	n     int
	first error
}

// Add counts err when it is not nil.
func (f *Failures) Add(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	if f.n == 0 {
		f.first = err
	}
	f.n++
	f.mu.Unlock()
}

// Err returns nil when no call failed, else how many did and the first
// error.
func (f *Failures) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return nil
	}
	return fmt.Errorf("%d calls failed, the first with: %w", f.n, f.first)
}
