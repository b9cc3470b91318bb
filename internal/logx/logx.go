// Package logx adapts the logs of the libraries the engine embeds to its
// log/slog logger at sensible levels: Proto.Actor's life-cycle lines
// (actor system started, gossip state, endpoint managers) and NATS server's
// start-up banner are noise at INFO on every start, so they go to DEBUG;
// their warnings and errors keep their level.
package logx

import (
	"context"
	"log/slog"
	"strings"
)

// Demoted returns a logger over h that logs INFO records at DEBUG.
func Demoted(h slog.Handler) *slog.Logger { return slog.New(demote{h}) }

type demote struct{ h slog.Handler }

func (d demote) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, lower(l))
}

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	if l := lower(r.Level); l != r.Level {
		r = r.Clone()
		r.Level = l
	}
	return d.h.Handle(ctx, r)
}

func (d demote) WithAttrs(as []slog.Attr) slog.Handler { return demote{d.h.WithAttrs(as)} }
func (d demote) WithGroup(name string) slog.Handler    { return demote{d.h.WithGroup(name)} }

func lower(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}

// ServerNotice returns the level a NATS server notice is logged at: DEBUG
// for the lines of its start-up banner (indented settings, the JetStream
// art, rulers, blank lines) and its routine start and stop steps, INFO
// for the rest (listening addresses, ready, cluster and JetStream events).
func ServerNotice(msg string) slog.Level {
	t := strings.TrimSpace(msg)
	switch {
	case t == "", strings.HasPrefix(msg, "  "), strings.HasPrefix(t, "---"), strings.HasPrefix(t, "_ "),
		strings.HasPrefix(t, "| "), strings.HasPrefix(t, "\\__"), strings.HasPrefix(t, "_ |"),
		strings.HasPrefix(t, "https://docs.nats.io"), t == "Starting JetStream",
		strings.HasPrefix(t, "Took ") && strings.HasSuffix(t, "to start JetStream"),
		strings.HasPrefix(t, "Initiating"), t == "JetStream Shutdown", t == "Server Exiting..":
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
