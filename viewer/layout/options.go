package layout

import "runtime"

// Option sets optional behaviour of a Layout that does not change its
// positions.
type Option func(*Layout)

// WithWorkers sets how many goroutines compute forces inside one call
// (default GOMAXPROCS; n < 1 means 1). Positions are the same for any n.
func WithWorkers(n int) Option {
	return func(l *Layout) { l.workers = max(1, n) }
}

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }
