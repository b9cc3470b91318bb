package viewer

import (
	"runtime"
	"sync"
)

// glThread runs functions one after another on one locked OS thread, the
// only thread that makes GL calls for a context. It is pure Go (no GL):
// the GL files hand it closures. Calls from several goroutines are
// serialised.
type glThread struct {
	mu     sync.Mutex
	closed bool
	work   chan func()
	done   chan struct{}
}

// newGLThread starts the thread's goroutine; stop ends it and waits.
func newGLThread() *glThread {
	t := &glThread{work: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread() // never unlocked: the OS thread ends with the goroutine
		defer close(t.done)
		for f := range t.work {
			f()
		}
	}()
	return t
}

// do runs f on the GL thread and waits for its result. It returns
// ErrClosed after stop.
func (t *glThread) do(f func() error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	var err error
	ran := make(chan struct{})
	t.work <- func() {
		defer close(ran)
		err = f()
	}
	<-ran
	return err
}

// stop ends the thread and waits for it. It may be called more than once.
func (t *glThread) stop() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.work)
	}
	t.mu.Unlock()
	<-t.done
}
