package logx_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/cairn-graph/cairn/internal/logx"
)

func TestDemoted(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	l := logx.Demoted(h).With("component", "protoactor")
	l.Info("actor system started")
	l.Warn("dead letter")
	if out := buf.String(); strings.Contains(out, "actor system started") || !strings.Contains(out, "level=WARN msg=\"dead letter\" component=protoactor") {
		t.Errorf("at INFO: %q", out)
	}
	buf.Reset()
	l = logx.Demoted(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l.Info("actor system started")
	if out := buf.String(); !strings.Contains(out, "level=DEBUG msg=\"actor system started\"") {
		t.Errorf("at DEBUG: %q", out)
	}
}

func TestServerNotice(t *testing.T) {
	for msg, want := range map[string]slog.Level{
		"Starting nats-server":                                slog.LevelInfo,
		"  Version:  2.15.2":                                  slog.LevelDebug,
		"    _ ___ _____ ___ _____ ___ ___   _   __  __":      slog.LevelDebug,
		" _ | | __|_   _/ __|_   _| _ \\ __| /_\\ |  \\/  |":  slog.LevelDebug,
		"| || | _|  | | \\__ \\ | | |   / _| / _ \\| |\\/| |": slog.LevelDebug,
		" \\__/|___| |_| |___/ |_| |_|_\\___/_/ \\_\\_|  |_|": slog.LevelDebug,
		"": slog.LevelDebug,
		"---------------- JETSTREAM ----------------":              slog.LevelDebug,
		"Starting JetStream":                                       slog.LevelDebug,
		"Took 742.335µs to start JetStream":                        slog.LevelDebug,
		"Listening for client connections on 127.0.0.1:4222":       slog.LevelInfo,
		"Server is ready":                                          slog.LevelInfo,
		"JetStream cluster new stream leader for 'cairn > EVENTS'": slog.LevelInfo,
	} {
		if got := logx.ServerNotice(msg); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
}

func TestRouteGRPC(t *testing.T) {
	var buf bytes.Buffer
	logx.RouteGRPC(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	g := &logx.GRPCLogger{}
	g.Infof("channel %d created", 3)
	g.Warningln("connection reset")
	if out := buf.String(); strings.Contains(out, "created") || !strings.Contains(out, `level=WARN msg="connection reset" component=grpc`) {
		t.Errorf("at INFO: %q", out)
	}
	if g.V(2) {
		t.Error("verbose gRPC lines enabled at INFO")
	}
}

func TestRouteOTel(t *testing.T) {
	var buf bytes.Buffer
	logx.RouteOTel(slog.New(slog.NewJSONHandler(&buf, nil)))
	otel.Handle(errors.New("traces export: connection refused"))
	if out := buf.String(); !strings.Contains(out, `"level":"WARN","msg":"tracing","component":"otel","err":"traces export: connection refused"`) {
		t.Errorf("otel error: %q", out)
	}
}
