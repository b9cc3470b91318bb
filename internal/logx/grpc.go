package logx

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/grpclog"
)

// RouteGRPC makes the gRPC library under Proto.Actor's remote log through
// l: its info lines at DEBUG, its warnings and errors at their level, with
// component=grpc. gRPC takes its logger once per process (before any
// gRPC call); later calls only change where it logs, so that a process
// that runs serve several times (tests) logs to the latest.
func RouteGRPC(l *slog.Logger) {
	grpcLog.Store(l.With("component", "grpc"))
	grpcOnce.Do(func() { grpclog.SetLoggerV2(&GRPCLogger{}) })
}

var (
	grpcLog  atomic.Pointer[slog.Logger]
	grpcOnce sync.Once
)

// GRPCLogger is a grpclog.LoggerV2 over RouteGRPC's logger.
type GRPCLogger struct{}

func (g *GRPCLogger) log(level slog.Level, msg string) {
	if l := grpcLog.Load(); l != nil {
		l.Log(context.Background(), level, strings.TrimSuffix(msg, "\n"))
	}
}

func (g *GRPCLogger) Info(args ...any)   { g.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (g *GRPCLogger) Infoln(args ...any) { g.log(slog.LevelDebug, fmt.Sprintln(args...)) }
func (g *GRPCLogger) Infof(format string, args ...any) {
	g.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (g *GRPCLogger) Warning(args ...any)   { g.log(slog.LevelWarn, fmt.Sprint(args...)) }
func (g *GRPCLogger) Warningln(args ...any) { g.log(slog.LevelWarn, fmt.Sprintln(args...)) }
func (g *GRPCLogger) Warningf(format string, args ...any) {
	g.log(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (g *GRPCLogger) Error(args ...any)   { g.log(slog.LevelError, fmt.Sprint(args...)) }
func (g *GRPCLogger) Errorln(args ...any) { g.log(slog.LevelError, fmt.Sprintln(args...)) }
func (g *GRPCLogger) Errorf(format string, args ...any) {
	g.log(slog.LevelError, fmt.Sprintf(format, args...))
}

// Fatal logs at ERROR and exits with status 1, as grpclog's contract says.
func (g *GRPCLogger) Fatal(args ...any) { g.log(slog.LevelError, fmt.Sprint(args...)); os.Exit(1) }
func (g *GRPCLogger) Fatalln(args ...any) {
	g.log(slog.LevelError, fmt.Sprintln(args...))
	os.Exit(1)
}
func (g *GRPCLogger) Fatalf(format string, args ...any) {
	g.log(slog.LevelError, fmt.Sprintf(format, args...))
	os.Exit(1)
}

// V reports whether verbosity level l is logged: gRPC's verbose lines go
// to DEBUG.
func (g *GRPCLogger) V(int) bool {
	l := grpcLog.Load()
	return l != nil && l.Enabled(context.Background(), slog.LevelDebug)
}
