// Package retry is the back-off that Cairn's clients (cairn import, and any
// caller of the "cairn" service that retries) use when the outcome of a
// request is unknown: exponential back-off with jitter, bounded both in
// tries and in time, interrupted by its context, giving up with an error
// that names the last failure and the number of tries.
//
// Whether a failure is worth another try is the caller's decision (for
// command replies, Retryable): a refusal such as RESOURCE_EXHAUSTED or
// INVALID_ARGUMENT is final, and sending it again can only be refused
// again.
//
//	p := retry.DefaultPolicy()
//	err := p.Do(ctx, func(ctx context.Context, try int) (bool, error) {
//		rep, err := send(ctx, env)
//		return retryable(rep, err), failure(rep, err)
//	})
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Policy bounds the tries of one request. DefaultPolicy documents the
// defaults.
type Policy struct {
	// Attempts is the most tries, the first included; 1 never retries.
	// Default 6.
	Attempts int
	// Initial is the back-off after the first try; each further one
	// doubles, up to Max. Default 200 ms.
	Initial time.Duration
	// Max caps one back-off. Default 5 s.
	Max time.Duration
	// Budget bounds the time from the first try to the last: no try starts
	// after it, and no back-off is begun that would end past it. 0: bounded
	// by Attempts only. Default 1 minute.
	Budget time.Duration

	// wait, now and jitter stand in for the timer, the clock and the
	// random source in tests.
	wait   func(context.Context, time.Duration) error
	now    func() time.Time
	jitter func() float64
}

// DefaultPolicy returns the defaults documented on Policy.
func DefaultPolicy() Policy {
	return Policy{Attempts: 6, Initial: 200 * time.Millisecond, Max: 5 * time.Second, Budget: time.Minute}
}

// Validate returns every problem with p, joined.
func (p Policy) Validate() error {
	var errs []error
	if p.Attempts < 1 {
		errs = append(errs, fmt.Errorf("retry attempts %d: want 1 or more", p.Attempts))
	}
	if p.Initial <= 0 {
		errs = append(errs, fmt.Errorf("retry back-off %s: want a positive duration", p.Initial))
	}
	if p.Max < p.Initial {
		errs = append(errs, fmt.Errorf("retry back-off cap %s: want at least the first back-off %s", p.Max, p.Initial))
	}
	if p.Budget < 0 {
		errs = append(errs, fmt.Errorf("retry budget %s: want 0 (none) or a positive duration", p.Budget))
	}
	return errors.Join(errs...)
}

// Backoff is the pause after try number try (1 after the first) when
// jitter is j, in [0, 1): Initial·2^(try-1), capped at Max, of which the
// upper half is random ("equal jitter": at least half the step, so the
// pauses still grow, and callers that failed together spread out).
func (p Policy) Backoff(try int, j float64) time.Duration {
	d := p.Max
	if try < 1 {
		try = 1
	}
	if try <= 62 {
		if step := p.Initial << (try - 1); step > 0 && step < p.Max && step>>(try-1) == p.Initial {
			d = step
		}
	}
	half := d / 2
	return d - half + time.Duration(j*float64(half))
}

// GiveUpError is Do's failure after more than one try: the tries ran out,
// the budget did, or the context ended between tries.
type GiveUpError struct {
	Attempts int           // tries made
	Elapsed  time.Duration // from the first try's start
	Last     error         // the last try's failure
	Stopped  error         // the context's error when it ended the retries, else nil
}

func (e *GiveUpError) Error() string {
	if e.Stopped != nil {
		return fmt.Sprintf("stopped (%v) after %d tries in %s; last failure: %v", e.Stopped, e.Attempts, e.Elapsed.Round(time.Millisecond), e.Last)
	}
	return fmt.Sprintf("gave up after %d tries in %s; last failure: %v", e.Attempts, e.Elapsed.Round(time.Millisecond), e.Last)
}

// Unwrap returns the last failure and, when the context ended the
// retries, its error.
func (e *GiveUpError) Unwrap() []error {
	if e.Stopped != nil {
		return []error{e.Last, e.Stopped}
	}
	return []error{e.Last}
}

// Do calls try (with the try's number, from 1) until it returns a nil
// error, a failure it says is not worth another try, the policy's tries or
// budget are spent, or ctx ends; between tries it backs off (Backoff with
// random jitter), waiting on ctx, never in a bare sleep.
//
// It returns nil, try's final failure as is (also after the first try), or
// a *GiveUpError wrapping the last failure (and ctx's error, when ctx
// ended the retries). An invalid policy tries once.
func (p Policy) Do(ctx context.Context, try func(ctx context.Context, try int) (retry bool, err error)) error {
	wait, now, jitter := p.wait, p.now, p.jitter
	if wait == nil {
		wait = sleep
	}
	if now == nil {
		now = time.Now
	}
	if jitter == nil {
		jitter = rand.Float64
	}
	if p.Validate() != nil {
		p.Attempts = 1
	}
	start := now()
	for n := 1; ; n++ {
		retry, err := try(ctx, n)
		if err == nil || !retry {
			return err
		}
		give := &GiveUpError{Attempts: n, Elapsed: now().Sub(start), Last: err}
		if ctx.Err() != nil {
			give.Stopped = ctx.Err()
			return give
		}
		if n >= p.Attempts {
			return give
		}
		d := p.Backoff(n, jitter())
		if p.Budget > 0 && give.Elapsed+d > p.Budget {
			return give
		}
		if err := wait(ctx, d); err != nil {
			give.Elapsed, give.Stopped = now().Sub(start), err
			return give
		}
	}
}

// sleep waits d or until ctx ends, and returns ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Retryable reports whether a command or query reply's error code leaves
// the request worth another try: UNAVAILABLE (the store or the engine did
// not answer; nothing or all of it was written, and a retry with the same
// command id is answered once) and DEADLINE_EXCEEDED. Every other code is
// final: RESOURCE_EXHAUSTED (too large, too much work: it would be refused
// again), INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, CONFLICT, DATA_LOSS,
// INTERNAL and the rest.
func Retryable(code cairnv1.ErrorCode) bool {
	return code == cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE || code == cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED
}
