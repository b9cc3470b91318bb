// Package enginetest starts a whole Cairn engine for tests and benchmarks: an
// embedded NATS JetStream in a temporary directory, the event store, a
// cluster member and the gateway, closed in Cleanup.
package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
)

// Open starts an engine whose embedded NATS listens on listen (host:port,
// port 0 for a free one, or persistence.ListenNone for in-process only).
func Open(tb testing.TB, listen string) *cairn.Engine {
	tb.Helper()
	cfg := cairn.DefaultConfig(tb.TempDir())
	cfg.NATSListen = listen
	return OpenConfig(tb, cfg)
}

// OpenConfig starts an engine with cfg, closed in Cleanup.
func OpenConfig(tb testing.TB, cfg cairn.Config) *cairn.Engine {
	tb.Helper()
	eng, err := cairn.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open engine: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil {
			tb.Errorf("close engine: %v", err)
		}
	})
	return eng
}
