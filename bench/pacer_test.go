package bench

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

// onSchedule checks that intended[i] is start + (first+i)/rate.
func onSchedule(t *testing.T, start time.Time, first int, intended []time.Time, rate float64) {
	t.Helper()
	for i, at := range intended {
		want := time.Duration(float64(first+i) * float64(time.Second) / rate)
		if got := at.Sub(start); (got - want).Abs() > time.Microsecond {
			t.Fatalf("op %d intended at +%v, want +%v", first+i, got, want)
		}
	}
}

func TestPacerHoldsRate(t *testing.T) {
	const rate, n = 2000.0, 2001 // one second
	p := NewPacer(rate)
	if p.Rate() != rate {
		t.Errorf("Rate() = %v, want %v", p.Rate(), rate)
	}
	ctx := context.Background()
	intended := make([]time.Time, n)
	returned := make([]time.Time, n)
	for i := range n {
		at, err := p.Wait(ctx)
		returned[i] = time.Now()
		if err != nil {
			t.Fatal(err)
		}
		intended[i] = at
	}
	for i := range n {
		if returned[i].Before(intended[i]) {
			t.Fatalf("op %d returned %v before it was due", i, intended[i].Sub(returned[i]))
		}
	}
	onSchedule(t, intended[0], 0, intended, rate)

	schedule := float64(n-1) / intended[n-1].Sub(intended[0]).Seconds()
	if math.Abs(schedule-rate) > 0.01*rate {
		t.Errorf("scheduled rate %.1f/s, want %v/s ± 1%%", schedule, rate)
	}
	// Wait returns no earlier than due, so the achieved rate can only fall
	// short by the delay of the last op; 5% of the run is 50 ms.
	achieved := float64(n-1) / returned[n-1].Sub(returned[0]).Seconds()
	if math.Abs(achieved-rate) > 0.05*rate {
		t.Errorf("achieved rate %.1f/s, want %v/s ± 5%%", achieved, rate)
	}
}

func TestPacerCatchesUpAfterStall(t *testing.T) {
	const rate = 2000.0
	const stall = 100 * time.Millisecond
	p := NewPacer(rate)
	ctx := context.Background()
	var intended []time.Time
	wait := func() (called, due time.Time) {
		t.Helper()
		called = time.Now()
		due, err := p.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		intended = append(intended, due)
		return called, due
	}
	for range 50 {
		wait()
	}
	// The stall under test: the caller does not come back for 100 ms.
	time.Sleep(stall)
	overdue := 0
	for range 300 {
		called, due := wait()
		if !due.After(called) {
			overdue++
		}
	}
	// Every op due during the stall (100 ms × 2,000/s) was overdue when
	// asked for, and was handed out without waiting for its own slot.
	if want := int(stall.Seconds() * rate); overdue < want {
		t.Errorf("%d ops were overdue after the stall, want at least %d", overdue, want)
	}
	// Nothing was skipped: the intended times are the unbroken schedule.
	onSchedule(t, intended[0], 0, intended, rate)
}

func TestPacerConcurrentCallersShareSchedule(t *testing.T) {
	const rate = 20000.0
	p := NewPacer(rate)
	var mu sync.Mutex
	var all []time.Time
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				at, err := p.Wait(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, at)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	onSchedule(t, all[0], 0, all, rate)
}

func TestPacerCancel(t *testing.T) {
	p := NewPacer(0.001) // the second op is due in 1,000 s
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := p.Wait(ctx); err != nil {
		t.Fatalf("first op: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Wait(ctx)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Wait after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10 s of cancel")
	}
	if _, err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestPacerUnpaced(t *testing.T) {
	for _, rate := range []float64{0, -1, math.Inf(1), math.NaN()} {
		p := NewPacer(rate)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for range 1000 {
			if _, err := p.Wait(ctx); err != nil {
				t.Fatalf("rate %v: %v", rate, err)
			}
		}
		cancel()
	}
}

// TestPacerStopsAtDeadline: an op due at or after ctx's deadline is not
// handed out, at once, before the deadline has passed; StartAt fixes op
// 0's due time.
func TestPacerStopsAtDeadline(t *testing.T) {
	p := NewPacer(1) // op 1 is due 1 s after op 0
	start := time.Now()
	p.StartAt(start)
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(500*time.Millisecond))
	defer cancel()
	at, err := p.Wait(ctx)
	if err != nil || !at.Equal(start) {
		t.Fatalf("op 0: due %v, %v; want %v", at, err, start)
	}
	if _, err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("op 1, due after the deadline: %v, want DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Wait waited for the deadline")
	}
}

// A caller that comes back after the phase's deadline fired (a starved
// goroutine) still gets every op that was due before it, then
// DeadlineExceeded: the phase is offered exactly rate × duration ops.
func TestPacerLateCallerGetsOpsDueBeforeDeadline(t *testing.T) {
	p := NewPacer(100) // an op every 10 ms
	start := time.Now()
	p.StartAt(start)
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(100*time.Millisecond))
	defer cancel()
	<-ctx.Done() // the caller was off the CPU for the whole phase
	n := 0
	for {
		if _, err := p.Wait(ctx); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("after %d ops: %v, want DeadlineExceeded", n, err)
			}
			break
		}
		n++
	}
	if n != 10 {
		t.Fatalf("%d ops offered in a 100 ms phase at 100/s, want 10", n)
	}
	// Cancelled, not timed out: nothing more.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := NewPacer(100).Wait(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
