// Package workers runs short functions on goroutines that outlive one
// function: a worker that finishes waits a while for the next function
// before it exits. A goroutine started for each function begins with a
// small stack and grows it (a copy) on every request whose call chain is
// deep, as a query's is; a worker's stack stays grown.
//
// Example:
//
//	p := workers.New(time.Second)
//	defer p.Close(ctx)
//	p.Go(func() { answer(req) })
package workers

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Pool hands functions to idle workers and starts a worker when none is
// idle; there is no bound on the workers (bound the callers instead).
type Pool struct {
	idle  time.Duration
	tasks chan func()
	stop  chan struct{}
	// mu orders starting a worker (wg.Add) against Close.
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	// started counts the workers started (under mu).
	started int
}

// New returns a pool whose workers exit after idle without a function.
func New(idle time.Duration) *Pool {
	return &Pool{idle: idle, tasks: make(chan func()), stop: make(chan struct{})}
}

// Go runs fn on an idle worker, or on a new one. After Close it runs fn on
// a goroutine of its own, which nothing waits for.
func (p *Pool) Go(fn func()) {
	select {
	case p.tasks <- fn:
		return
	default:
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		go fn()
		return
	}
	p.wg.Add(1)
	p.started++
	p.mu.Unlock()
	go p.work(fn)
}

func (p *Pool) work(fn func()) {
	defer p.wg.Done()
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		fn()
		t.Reset(p.idle)
		select {
		case fn = <-p.tasks:
		case <-t.C:
			return
		case <-p.stop:
			return
		}
	}
}

// Close stops the idle workers and waits, until ctx ends, for every
// worker to finish its function and exit; it returns ctx's error if ctx
// ended first. Functions given to Go after Close begins run on goroutines
// of their own.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("workers: %w", ctx.Err())
	}
}
