package retry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func TestBackoff(t *testing.T) {
	p := Policy{Attempts: 10, Initial: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		try      int
		min, max time.Duration // j = 0 and j close to 1
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second}, // capped
		{40, 500 * time.Millisecond, time.Second},
		{64, 500 * time.Millisecond, time.Second}, // the shift would overflow
		{1000, 500 * time.Millisecond, time.Second},
	} {
		if got := p.Backoff(tc.try, 0); got != tc.min {
			t.Errorf("Backoff(%d, 0) = %s, want %s", tc.try, got, tc.min)
		}
		got := p.Backoff(tc.try, 0.999999)
		if got > tc.max || got < tc.max-tc.max/1000 {
			t.Errorf("Backoff(%d, ~1) = %s, want about %s", tc.try, got, tc.max)
		}
	}
}

// fake is a clock that moves only when Do waits, and the largest jitter.
type fake struct {
	t     time.Time
	waits []time.Duration
}

func (f *fake) policy(p Policy) Policy {
	p.now = func() time.Time { return f.t }
	p.jitter = func() float64 { return 1 }
	p.wait = func(ctx context.Context, d time.Duration) error {
		f.waits = append(f.waits, d)
		f.t = f.t.Add(d)
		return ctx.Err()
	}
	return p
}

var errFlaky = errors.New("UNAVAILABLE: event store unavailable")

func TestDo(t *testing.T) {
	base := Policy{Attempts: 5, Initial: 100 * time.Millisecond, Max: time.Second}
	final := errors.New("RESOURCE_EXHAUSTED: transaction too large")
	for _, tc := range []struct {
		name      string
		policy    Policy
		failures  int   // tries that fail with errFlaky before one succeeds
		finalErr  error // when set, the try after the failures fails with it
		wantTries int
		wantWaits int
		wantErr   string // "" nil, "final", "give up"
	}{
		{"first try", base, 0, nil, 1, 0, ""},
		{"second try", base, 1, nil, 2, 1, ""},
		{"last try", base, 4, nil, 5, 4, ""},
		{"tries run out", base, 100, nil, 5, 4, "give up"},
		{"one attempt never retries", Policy{Attempts: 1, Initial: time.Millisecond, Max: time.Millisecond}, 100, nil, 1, 0, "give up"},
		{"final at once", base, 0, final, 1, 0, "final"},
		{"final after retries", base, 2, final, 3, 2, "final"},
		// Waits of 100 and 200 ms (the largest jitter): the third, of
		// 400 ms, would end past 0.5 s.
		{"budget runs out", Policy{Attempts: 100, Initial: 100 * time.Millisecond, Max: time.Second, Budget: 500 * time.Millisecond}, 100, nil, 3, 2, "give up"},
		{"invalid policy tries once", Policy{}, 100, nil, 1, 0, "give up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{t: time.Unix(0, 0)}
			tries := 0
			err := f.policy(tc.policy).Do(context.Background(), func(_ context.Context, n int) (bool, error) {
				tries++
				if n != tries {
					t.Errorf("try number %d, want %d", n, tries)
				}
				if tries <= tc.failures {
					return true, errFlaky
				}
				if tc.finalErr != nil {
					return false, tc.finalErr
				}
				return false, nil
			})
			if tries != tc.wantTries || len(f.waits) != tc.wantWaits {
				t.Errorf("%d tries, %d waits; want %d, %d", tries, len(f.waits), tc.wantTries, tc.wantWaits)
			}
			var total time.Duration
			for i, w := range f.waits {
				total += w
				if lo, hi := tc.policy.Backoff(i+1, 0), tc.policy.Backoff(i+1, 1); w < lo || w > hi {
					t.Errorf("wait %d: %s, want %s to %s", i+1, w, lo, hi)
				}
			}
			if tc.policy.Budget > 0 && total > tc.policy.Budget {
				t.Errorf("waited %s in all, past the budget %s", total, tc.policy.Budget)
			}
			var give *GiveUpError
			switch tc.wantErr {
			case "":
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
			case "final":
				if err != tc.finalErr {
					t.Errorf("err = %v, want the final failure as is", err)
				}
			case "give up":
				if !errors.As(err, &give) || give.Attempts != tc.wantTries || !errors.Is(err, errFlaky) || give.Stopped != nil {
					t.Fatalf("err = %#v, want a *GiveUpError after %d tries wrapping the last failure", err, tc.wantTries)
				}
				if msg := err.Error(); !strings.Contains(msg, errFlaky.Error()) || !strings.Contains(msg, "tries") {
					t.Errorf("message %q names neither the last failure nor the tries", msg)
				}
			}
		})
	}
}

// A cancelled context ends the back-off and no try follows.
func TestDoStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fake{t: time.Unix(0, 0)}
	tries := 0
	err := f.policy(DefaultPolicy()).Do(ctx, func(context.Context, int) (bool, error) {
		tries++
		if tries == 2 {
			cancel()
		}
		return true, errFlaky
	})
	var give *GiveUpError
	if tries != 2 || !errors.As(err, &give) || !errors.Is(err, context.Canceled) || !errors.Is(err, errFlaky) || give.Attempts != 2 {
		t.Fatalf("%d tries, err %v; want 2 tries and a *GiveUpError wrapping context.Canceled and the last failure", tries, err)
	}

	// The real wait returns as soon as ctx ends.
	p := DefaultPolicy()
	p.Initial, p.Max = time.Hour, time.Hour
	ctx, cancel = context.WithCancel(context.Background())
	tries = 0
	err = p.Do(ctx, func(context.Context, int) (bool, error) {
		tries++
		cancel() // the back-off after this try starts with ctx ended already
		return true, errFlaky
	})
	if tries != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("%d tries, err %v; want 1 try, context.Canceled", tries, err)
	}
	done := make(chan error)
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- sleep(ctx, time.Hour) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep: %v, want context.Canceled", err)
	}
}

func TestRetryable(t *testing.T) {
	for code, name := range cairnv1.ErrorCode_name {
		c := cairnv1.ErrorCode(code)
		want := c == cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE || c == cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED
		if got := Retryable(c); got != want {
			t.Errorf("Retryable(%s) = %v, want %v", name, got, want)
		}
	}
	for _, c := range []cairnv1.ErrorCode{cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT} {
		if Retryable(c) {
			t.Errorf("%s is retried", c)
		}
	}
}
