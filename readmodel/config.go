package readmodel

import (
	"errors"
	"fmt"

	"github.com/cairn-graph/cairn/internal/pace"
)

// MaxLimit is the largest page a query may ask for.
const MaxLimit = 1000

// Config holds a Graph's tunables.
type Config struct {
	// TopK is how many top-degree nodes Stats reports. Default 10.
	TopK int
	// CompactMin is the smallest adjacency delta (edges added plus removed
	// since the last compaction) that triggers a compaction. Default 4096.
	CompactMin int
	// CompactDivisor: a compaction also waits until the delta exceeds
	// (live edges + node indices) / CompactDivisor, which keeps the
	// amortised cost per change constant. Default 16.
	CompactDivisor int
	// BloomFalsePositive is the target false-positive rate of the bloom
	// filter in front of component (type, value) lookups. Default 0.01.
	BloomFalsePositive float64
	// Background paces the adjacency compactions' background work (an
	// O(nodes + edges) rebuild; see internal/pace). Default nil: not
	// paced. The projections set it to their snapshot store's gate.
	Background *pace.Gate
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{TopK: 10, CompactMin: 4096, CompactDivisor: 16, BloomFalsePositive: 0.01}
}

// Validate returns every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	if c.TopK < 0 {
		errs = append(errs, fmt.Errorf("TopK %d is negative", c.TopK))
	}
	if c.CompactMin < 1 {
		errs = append(errs, fmt.Errorf("CompactMin %d is below 1", c.CompactMin))
	}
	if c.CompactDivisor < 1 {
		errs = append(errs, fmt.Errorf("CompactDivisor %d is below 1", c.CompactDivisor))
	}
	if !(c.BloomFalsePositive > 0 && c.BloomFalsePositive < 1) {
		errs = append(errs, fmt.Errorf("BloomFalsePositive %v is not in (0, 1)", c.BloomFalsePositive))
	}
	return errors.Join(errs...)
}
