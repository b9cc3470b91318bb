package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// workers is a protoactor Dispatcher that runs mailboxes (and the grains'
// appends) on goroutines that outlive one run. Protoactor's default starts a goroutine per
// mailbox run (go fn()): on the write path a grain's mailbox runs once or
// twice per command, and each new goroutine grows its stack from the
// smallest size to what deciding a command needs, copying it each time
// (runtime.newstack was 4.6% of the write benchmark's CPU, under the
// grain's first deep call). Here a run is handed to an idle worker when
// one waits; else a new worker starts, runs it, and then waits up to
// linger for more before it exits. Nothing is ever queued behind a busy
// worker, so a blocked mailbox run holds up no other.
type workers struct {
	idle       chan func()
	throughput int
	linger     time.Duration
}

var _ actor.Dispatcher = (*workers)(nil)

// mailboxThroughput is how many messages a mailbox run takes at most
// before it yields: protoactor's default.
const mailboxThroughput = 300

// workerLinger is how long an idle worker waits for another mailbox run.
const workerLinger = time.Second

// newWorkers returns a dispatcher that runs up to throughput messages of a
// mailbox per run (as protoactor's default, 300) and keeps idle workers
// for linger.
func newWorkers(throughput int, linger time.Duration) *workers {
	return &workers{idle: make(chan func()), throughput: throughput, linger: linger}
}

// Schedule implements actor.Dispatcher.
func (w *workers) Schedule(fn func()) {
	select {
	case w.idle <- fn:
	default:
		go w.run(fn)
	}
}

// Throughput implements actor.Dispatcher.
func (w *workers) Throughput() int { return w.throughput }

// run runs fn, then whatever Schedule hands it, until it has waited
// linger for work.
func (w *workers) run(fn func()) {
	t := time.NewTimer(w.linger)
	defer t.Stop()
	for {
		fn()
		t.Reset(w.linger)
		select {
		case fn = <-w.idle:
		case <-t.C:
			return
		}
	}
}
