package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Zipf draws ranks 0..n-1 with probability proportional to 1/(k+1)^s, for
// any exponent s >= 0: s = 0 is uniform, s = 1 classic Zipf. (math/rand/v2's
// Zipf needs s > 1.) It holds the cumulative distribution as a table of n
// float64s and draws by binary search, so a draw costs O(log n) and the
// table 8 bytes a rank. A Zipf is read-only after NewZipf: goroutines may
// share it, each with its own *rand.Rand.
type Zipf struct {
	s   float64
	cdf []float64 // cdf[k] = P(rank <= k); cdf[n-1] == 1
}

// NewZipf returns the distribution over n ranks with exponent s. It returns
// a *FieldError when n < 1 or s is negative, infinite or NaN.
func NewZipf(n int, s float64) (*Zipf, error) {
	if n < 1 {
		return nil, &FieldError{Field: "n", Problem: fmt.Sprintf("must be at least 1, not %d", n)}
	}
	if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, &FieldError{Field: "s", Problem: fmt.Sprintf("must be a finite number >= 0, not %v", s)}
	}
	cdf := make([]float64, n)
	// Sum from the smallest weight up: fewer rounding errors for long tails.
	total := 0.0
	for k := n - 1; k >= 0; k-- {
		total += zipfWeight(k, s)
	}
	acc := 0.0
	for k := range cdf {
		acc += zipfWeight(k, s)
		cdf[k] = acc / total
	}
	cdf[n-1] = 1 // a draw u in [0,1) always finds a rank
	return &Zipf{s: s, cdf: cdf}, nil
}

func zipfWeight(k int, s float64) float64 {
	if s == 0 {
		return 1
	}
	return math.Pow(float64(k+1), -s)
}

// N returns the number of ranks.
func (z *Zipf) N() int { return len(z.cdf) }

// S returns the exponent.
func (z *Zipf) S() float64 { return z.s }

// Prob returns the probability of rank k (0 outside 0..n-1).
func (z *Zipf) Prob(k int) float64 {
	switch {
	case k < 0 || k >= len(z.cdf):
		return 0
	case k == 0:
		return z.cdf[0]
	}
	return z.cdf[k] - z.cdf[k-1]
}

// Draw returns a rank in 0..n-1: the smallest k with cdf[k] > u for a
// uniform u in [0,1).
func (z *Zipf) Draw(r *rand.Rand) int {
	u := r.Float64()
	lo, hi := 0, len(z.cdf)-1 // the answer lies in [lo, hi]
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if z.cdf[mid] > u {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
