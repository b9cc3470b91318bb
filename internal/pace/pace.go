// Package pace runs background CPU work (snapshot encoding and
// compression) in paced slices, so that it leaves the CPUs to commands and
// queries.
//
// Go's scheduler gives a goroutine that computes without blocking its CPU
// for up to 10 ms before it preempts it, and it knows no priorities: when
// background goroutines hold every CPU, a query that becomes runnable waits
// for one of them to be preempted, at every hop of its way (NATS read, actor
// mailbox, reply). A Gate bounds the work that goes through it to Slots
// goroutines at a time, each busy at most Duty of the time: a worker calls
// Step between pieces of work, and a Step after more than Slice of work
// sleeps (holding its slot) until the work's share of the time since it
// began is back to Duty. So on a 2-core machine, one slot at duty 0.5 leaves
// at least 1.5 CPUs to the foreground whatever the background does, and
// the background still gets its work done, later.
//
//	w, err := gate.Begin(ctx)
//	if err != nil {
//		return err
//	}
//	defer w.End()
//	for _, piece := range pieces {
//		encode(piece)
//		if err := w.Step(ctx); err != nil {
//			return err
//		}
//	}
//
// A nil *Gate paces nothing: Begin returns a nil *Worker, whose methods do
// nothing.
package pace

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Config shapes a Gate.
type Config struct {
	// Slots is how many workers run at once. Default: half the GOMAXPROCS,
	// at least 1.
	Slots int
	// Duty is the share of the time a worker may be busy, in (0, 1].
	// Default 0.5.
	Duty float64
	// Slice is how much work a worker does before a Step may sleep.
	// Default 2 ms.
	Slice time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Slots: max(runtime.GOMAXPROCS(0)/2, 1), Duty: 0.5, Slice: 2 * time.Millisecond}
}

// Defaulted returns c with its zero fields set to DefaultConfig's.
func (c Config) Defaulted() Config {
	d := DefaultConfig()
	if c.Slots == 0 {
		c.Slots = d.Slots
	}
	if c.Duty == 0 {
		c.Duty = d.Duty
	}
	if c.Slice == 0 {
		c.Slice = d.Slice
	}
	return c
}

// Validate returns every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	if c.Slots < 1 {
		errs = append(errs, fmt.Errorf("pace: slots must be at least 1, not %d", c.Slots))
	}
	if !(c.Duty > 0 && c.Duty <= 1) {
		errs = append(errs, fmt.Errorf("pace: duty must be in (0, 1], not %g", c.Duty))
	}
	if c.Slice <= 0 {
		errs = append(errs, fmt.Errorf("pace: slice must be positive, not %s", c.Slice))
	}
	return errors.Join(errs...)
}

// Gate paces the background work that goes through it. Its methods are
// safe for concurrent use.
type Gate struct {
	slots chan struct{}
	cfg   Config
	sleep func(context.Context, time.Duration) error
}

// New returns a Gate; see Config.
func New(cfg Config) (*Gate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Gate{slots: make(chan struct{}, cfg.Slots), cfg: cfg, sleep: sleep}, nil
}

// Worker is one piece of background work holding a slot of its Gate.
type Worker struct {
	g    *Gate
	busy time.Duration // work since the last sleep
	mark time.Time     // the last Step's end (or Begin)
}

// Begin waits for a free slot, or for ctx's end (then it returns ctx's
// cause). The caller must call End.
func (g *Gate) Begin(ctx context.Context) (*Worker, error) {
	if g == nil {
		return nil, nil
	}
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	return &Worker{g: g, mark: time.Now()}, nil
}

// Step counts the time since the last Step (or Begin) as work and, once
// more than the Gate's Slice of work is counted, sleeps long enough that
// the work is Duty of the work and the sleep together, holding the slot.
// It returns ctx's cause if ctx ends while it sleeps.
func (w *Worker) Step(ctx context.Context) error {
	if w == nil {
		return nil
	}
	now := time.Now()
	w.busy += now.Sub(w.mark)
	w.mark = now
	if w.busy < w.g.cfg.Slice {
		return nil
	}
	// busy / (busy + sleep) = duty  ⇔  sleep = busy (1-duty)/duty
	var err error
	if d := time.Duration(float64(w.busy) * (1 - w.g.cfg.Duty) / w.g.cfg.Duty); d > 0 {
		err = w.g.sleep(ctx, d)
	}
	w.busy, w.mark = 0, time.Now()
	return err
}

// End gives the worker's slot back.
func (w *Worker) End() {
	if w == nil {
		return
	}
	<-w.g.slots
}

// sleep waits d or until ctx ends, and returns ctx's cause then (Step's
// callers learn why their work was cut short; retry.Policy's sleep
// returns ctx.Err()).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
