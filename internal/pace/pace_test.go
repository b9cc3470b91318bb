package pace

import (
	"context"
	"errors"
	"testing"
	"time"
)

// recorder replaces a Gate's sleep: it records what was asked.
type recorder struct{ slept []time.Duration }

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.slept = append(r.slept, d)
	return context.Cause(ctx)
}

func newGate(t *testing.T, cfg Config) (*Gate, *recorder) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	g.sleep = r.sleep
	return g, r
}

func TestNilGatePacesNothing(t *testing.T) {
	var g *Gate
	w, err := g.Begin(context.Background())
	if err != nil || w != nil {
		t.Fatalf("nil gate: Begin = %v, %v; want nil, nil", w, err)
	}
	if err := w.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.End()
}

func TestStepSleepsTheWorksShare(t *testing.T) {
	g, r := newGate(t, Config{Slots: 1, Duty: 0.25, Slice: 5 * time.Millisecond})
	ctx := context.Background()
	w, err := g.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.End()
	// Less than a slice of work: no sleep yet.
	if err := w.Step(ctx); err != nil || len(r.slept) != 0 {
		t.Fatalf("after no work: err %v, slept %v; want no sleep", err, r.slept)
	}
	// 20 ms of work at duty 0.25: at least 60 ms of sleep.
	w.mark = w.mark.Add(-20 * time.Millisecond)
	if err := w.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if len(r.slept) != 1 || r.slept[0] < 60*time.Millisecond || r.slept[0] > 10*time.Second {
		t.Fatalf("after 20 ms of work at duty 0.25: slept %v, want one sleep of at least 60 ms", r.slept)
	}
	// The sleep starts a new stretch: a Step right after sleeps no more.
	if err := w.Step(ctx); err != nil || len(r.slept) != 1 {
		t.Fatalf("right after a sleep: err %v, slept %v; want no more sleep", err, r.slept)
	}
}

func TestDutyOneNeverSleeps(t *testing.T) {
	g, r := newGate(t, Config{Slots: 1, Duty: 1, Slice: time.Millisecond})
	w, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.End()
	w.mark = w.mark.Add(-time.Second)
	if err := w.Step(context.Background()); err != nil || len(r.slept) != 0 {
		t.Fatalf("duty 1: err %v, slept %v; want no sleep", err, r.slept)
	}
}

func TestBeginWaitsForASlot(t *testing.T) {
	g, _ := newGate(t, Config{Slots: 1, Duty: 0.5, Slice: time.Millisecond})
	first, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The only slot is taken: a second Begin waits until its ctx ends.
	cause := errors.New("gave up")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if w, err := g.Begin(ctx); !errors.Is(err, cause) || w != nil {
		t.Fatalf("Begin with the slot taken: %v, %v; want nil, the ctx's cause", w, err)
	}
	// Once the first ends, a second gets the slot.
	got := make(chan *Worker)
	go func() {
		w, _ := g.Begin(context.Background())
		got <- w
	}()
	first.End()
	w := <-got
	if w == nil {
		t.Fatal("Begin after End: no worker")
	}
	w.End()
}

func TestStepReturnsTheCauseWhenCancelledWhileSleeping(t *testing.T) {
	g, _ := newGate(t, Config{Slots: 1, Duty: 0.5, Slice: time.Millisecond})
	g.sleep = sleep // the real one
	cause := errors.New("stopping")
	ctx, cancel := context.WithCancelCause(context.Background())
	w, err := g.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.End()
	cancel(cause)
	w.mark = w.mark.Add(-time.Hour) // an hour's sleep is due
	if err := w.Step(ctx); !errors.Is(err, cause) {
		t.Fatalf("Step on an ended ctx: %v, want %v", err, cause)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", DefaultConfig(), true},
		{"no slots", Config{Slots: 0, Duty: 0.5, Slice: time.Millisecond}, false},
		{"duty 0", Config{Slots: 1, Duty: 0, Slice: time.Millisecond}, false},
		{"duty above 1", Config{Slots: 1, Duty: 1.5, Slice: time.Millisecond}, false},
		{"no slice", Config{Slots: 1, Duty: 0.5}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate(%+v) = %v, want ok %v", tc.cfg, err, tc.ok)
			}
		})
	}
}
