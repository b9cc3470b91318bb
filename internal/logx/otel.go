package logx

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
)

// RouteOTel makes OpenTelemetry's errors (spans it could not export: a
// collector down or refusing) log through l at WARN with component=otel,
// instead of as plain lines on stderr that would break --log-format json.
// Like RouteGRPC, the handler is set once per process; later calls change
// where it logs.
func RouteOTel(l *slog.Logger) {
	otelLog.Store(l.With("component", "otel"))
	otelOnce.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			if l := otelLog.Load(); l != nil {
				l.LogAttrs(context.Background(), slog.LevelWarn, "tracing", slog.String("err", err.Error()))
			}
		}))
	})
}

var (
	otelLog  atomic.Pointer[slog.Logger]
	otelOnce sync.Once
)
