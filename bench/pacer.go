package bench

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// Pacer schedules ops open loop at a fixed rate: the i-th op (from 0) is
// due at start + i/rate, where start is the first call to Wait. The
// schedule does not depend on how long ops take, so a slow system is
// offered the same load as a fast one.
//
// Wait never skips or drops an op: after a stall (a GC pause, a slow
// caller) the overdue ops are handed out at once until the schedule is
// caught up, so the long-run rate holds.
//
// Measure an open-loop op's latency from the intended time Wait returns,
// not from when the op was actually sent:
//
//	intended, err := p.Wait(ctx)
//	if err != nil {
//		return err
//	}
//	err = do(ctx)
//	rec.Record("write", 1, time.Since(intended), err)
//
// That way the time an op spent waiting behind a stalled system counts
// against the system, and the percentiles do not suffer from coordinated
// omission (a stalled system otherwise records one slow op instead of
// the many it delayed).
//
// A Pacer is safe for concurrent use: concurrent callers share one
// schedule, each getting the next due op.
type Pacer struct {
	rate float64
	step float64 // nanoseconds between ops; 0 when unpaced

	mu      sync.Mutex
	started bool
	start   time.Time
	next    int64 // index of the next op to hand out
}

// NewPacer returns a Pacer for rate ops per second. A rate that is not a
// positive finite number means no pacing: Wait returns at once.
func NewPacer(rate float64) *Pacer {
	p := &Pacer{rate: rate}
	if rate > 0 && !math.IsInf(rate, 0) {
		p.step = float64(time.Second) / rate
	}
	return p
}

// StartAt fixes the schedule's start, op 0's due time, at t, for a phase
// that starts before its first Wait; by default the first Wait starts it.
// Call it before the first Wait.
func (p *Pacer) StartAt(t time.Time) {
	p.mu.Lock()
	p.started, p.start = true, t
	p.mu.Unlock()
}

// Rate returns the target rate in ops per second, as given to NewPacer.
func (p *Pacer) Rate() float64 { return p.rate }

// Wait blocks until the next op is due and returns the time it was due.
// When the schedule is behind, it returns at once with a due time in the
// past. It returns ctx.Err() when ctx is cancelled before the op is due,
// and context.DeadlineExceeded at once for an op due at or after ctx's
// deadline (even when the deadline's timer has not fired yet, on a
// starved machine), while an op due before the deadline is returned even
// when the deadline fired first (the caller was late for it), so that a
// phase bounded by a deadline is offered exactly the ops due within it. The op's slot in the schedule is then
// given up (the next Wait gets the op after it), so cancellation does not
// shift the schedule.
func (p *Pacer) Wait(ctx context.Context) (intended time.Time, err error) {
	dl, bounded := ctx.Deadline()
	// A deadline that fired while this goroutine waited for a CPU ends
	// the phase only for the ops due after it: those due before still
	// go (checked against the deadline below).
	if err := ctx.Err(); err != nil && !(bounded && errors.Is(err, context.DeadlineExceeded) && p.step != 0) {
		return time.Time{}, err
	}
	p.mu.Lock()
	now := time.Now()
	if !p.started {
		p.started, p.start = true, now
	}
	if p.step == 0 {
		p.next++
		p.mu.Unlock()
		return now, nil
	}
	i := p.next
	p.next++
	p.mu.Unlock()

	due := p.start.Add(time.Duration(float64(i) * p.step))
	if bounded && !due.Before(dl) {
		return time.Time{}, context.DeadlineExceeded
	}
	wait := due.Sub(now)
	if wait <= 0 {
		return due, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return due, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return due, nil // due before the deadline (above): the timers fired together
		}
		return time.Time{}, ctx.Err()
	}
}
