// Package deadline gives many waiters coarse time-outs without a timer (or
// a context) each: a Wheel hands out channels that close once a duration
// has passed, up to one tick late, and every waiter whose time runs out in
// the same tick shares one channel. The write path waits on it for each
// command's reply and each append's acknowledgement, where a
// context.WithTimeout per wait cost four allocations and a runtime timer
// that is almost always stopped unused.
//
//	w := deadline.New(10 * time.Millisecond)
//	select {
//	case r := <-reply:
//		return r
//	case <-w.After(timeout):
//		return errTimeout
//	}
//
// A Wheel has no goroutine: one runtime timer (time.AfterFunc) is armed
// for its earliest tick while any channel is open, and none when there is
// none.
package deadline

import (
	"sort"
	"sync"
	"time"
)

// Wheel hands out shared time-out channels; the zero value is not usable,
// New makes one. It is safe for concurrent use.
type Wheel struct {
	tick  time.Duration
	start time.Time // ticks count from here (monotonic)

	mu      sync.Mutex
	buckets []bucket // by tick, earliest first
	timer   *time.Timer
	armed   int64 // the tick timer fires at; 0: not armed
}

type bucket struct {
	tick int64
	ch   chan struct{}
}

// New returns a wheel whose channels close at most tick after their time
// (tick > 0).
func New(tick time.Duration) *Wheel {
	return &Wheel{tick: max(tick, time.Microsecond), start: time.Now()}
}

// After returns a channel that is closed once d has passed, between d and
// d plus one tick from now. d ≤ 0 gives a channel closed at the next tick.
func (w *Wheel) After(d time.Duration) <-chan struct{} {
	t := int64((time.Since(w.start)+max(d, 0))/w.tick) + 1
	w.mu.Lock()
	defer w.mu.Unlock()
	// Most waits use the same d, so their tick is the newest bucket's or
	// the one after it.
	n := len(w.buckets)
	i := n
	if n > 0 && w.buckets[n-1].tick >= t {
		i = sort.Search(n, func(k int) bool { return w.buckets[k].tick >= t })
	}
	if i < n && w.buckets[i].tick == t {
		return w.buckets[i].ch
	}
	b := bucket{tick: t, ch: make(chan struct{})}
	w.buckets = append(w.buckets, bucket{})
	copy(w.buckets[i+1:], w.buckets[i:])
	w.buckets[i] = b
	if i == 0 {
		w.arm(t)
	}
	return b.ch
}

// arm sets the timer to fire at tick t; w.mu is held.
func (w *Wheel) arm(t int64) {
	if w.armed != 0 && w.armed <= t {
		return
	}
	w.armed = t
	at := time.Duration(t) * w.tick
	if w.timer == nil {
		w.timer = time.AfterFunc(at-time.Since(w.start), w.fire)
		return
	}
	w.timer.Reset(at - time.Since(w.start))
}

// fire closes the channels whose tick has come and arms the timer for
// the next one.
func (w *Wheel) fire() {
	now := int64(time.Since(w.start) / w.tick)
	w.mu.Lock()
	defer w.mu.Unlock()
	k := 0
	for k < len(w.buckets) && w.buckets[k].tick <= now {
		close(w.buckets[k].ch)
		k++
	}
	w.buckets = append(w.buckets[:0], w.buckets[k:]...)
	w.armed = 0
	if len(w.buckets) > 0 {
		w.arm(w.buckets[0].tick)
	}
}
