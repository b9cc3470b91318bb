package actors

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// viewOverhead is the least a view is estimated to take: a read model's
// fixed tables, whatever its size.
const viewOverhead = 64 << 10

// estimateView is the memory a view of events events is estimated to
// take before it is built (ViewBytesPerEvent each).
func estimateView(events uint64) int64 {
	if events > (1<<62)/ViewBytesPerEvent {
		return 1 << 62
	}
	return viewOverhead + int64(events)*ViewBytesPerEvent
}

// buildGate bounds the time-travel builds in flight by count and by their
// estimated memory. A build that finds no room waits until one ends, up to
// wait; it is not queued in order (a small build may pass a large one).
type buildGate struct {
	max    int
	budget int64
	wait   time.Duration

	mu    sync.Mutex
	n     int
	bytes int64
	freed chan struct{} // closed and replaced when a build ends
}

func newBuildGate(max int, budget int64, wait time.Duration) *buildGate {
	return &buildGate{max: max, budget: budget, wait: wait, freed: make(chan struct{})}
}

// acquire takes room for a build of key estimated at size bytes. It
// returns RESOURCE_EXHAUSTED, naming the limit, when size alone passes the
// budget or when no room freed up within the wait, and DEADLINE_EXCEEDED
// when ctx ends first.
func (g *buildGate) acquire(ctx context.Context, key viewKey, size int64) *aggregate.CommandError {
	if size > g.budget {
		return exhausted("as_of", "graph %s: the view as of seq %d is estimated at %d bytes, more than the time-travel build budget of %d bytes (ProjectionConfig.ViewBuildBytes; cairn serve: a quarter of --memory-limit)",
			key.graph, key.seq, size, g.budget)
	}
	var timeout <-chan time.Time
	for {
		g.mu.Lock()
		if g.n < g.max && g.bytes+size <= g.budget {
			g.n++
			g.bytes += size
			g.mu.Unlock()
			return nil
		}
		n, bytes, freed := g.n, g.bytes, g.freed
		g.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(g.wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return exhausted("as_of", "graph %s: no room to build the view as of seq %d within %v: %d of %d builds run (ProjectionConfig.ViewBuilds), holding %d of %d bytes (ViewBuildBytes), and this one needs %d; retry later",
				key.graph, key.seq, g.wait, n, g.max, bytes, g.budget, size)
		case <-ctx.Done():
			return &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
				Message: fmt.Sprintf("graph %s: waited for room to build the view as of seq %d (%v)", key.graph, key.seq, context.Cause(ctx))}
		}
	}
}

// release gives back what acquire took for a build of size bytes.
func (g *buildGate) release(size int64) {
	g.mu.Lock()
	g.n--
	g.bytes -= size
	close(g.freed)
	g.freed = make(chan struct{})
	g.mu.Unlock()
}

// stats returns the builds in flight and their estimated bytes.
func (g *buildGate) stats() (int, int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n, g.bytes
}
