package cairn

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/internal/jsleader"
)

// metaApartEvery is how often an engine whose embedded NATS node leads
// the JetStream meta group checks that it does not lead the event stream
// too.
const metaApartEvery = 2 * time.Second

// keepStreamOffMeta keeps the event stream's leader off the node that
// leads the JetStream meta group, when that node is this engine's own
// (only a node knows that it leads the meta group: the account's API does
// not say). While the meta group has no leader, every node answers the
// stream's leader reads (STREAM.MSG.GET: activations, adoptions) with 503,
// even the stream's leader; so a node that led both and died cost the
// writes the stream's election and the graphs that moved the meta
// group's too, whichever came last. Apart, one node's death costs one of
// them. The stream's leader is asked to step down in favour of a current
// replica; a stream's step-down is a graceful hand-over (a fraction of a
// second), and the meta leader seldom changes. It runs until stop closes.
func (e *Engine) keepStreamOffMeta(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(metaApartEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		leads := e.server.MetaLeader
		if f := e.metaLeader.Load(); f != nil {
			leads = *f
		}
		if !leads() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), metaApartEvery/2)
		to, err := e.streamOffMeta(ctx)
		cancel()
		switch {
		case err != nil:
			e.cfg.Logger.LogAttrs(context.Background(), slog.LevelDebug, "could not move the event stream's leader off the meta leader", slog.String("err", err.Error()))
		case to != "":
			e.cfg.Logger.LogAttrs(context.Background(), slog.LevelInfo, "the event stream's leader stepped down: its node leads the JetStream meta group", slog.String("node", e.server.Name()), slog.String("to", to))
		}
	}
}

// streamOffMeta asks the event stream's leader to step down when it is
// this node, and returns the replica preferred ("" when it stayed).
func (e *Engine) streamOffMeta(ctx context.Context) (string, error) {
	js, err := jetstream.New(e.nc)
	if err != nil {
		return "", err
	}
	st, err := js.Stream(ctx, e.cfg.Store.Stream)
	if err != nil {
		return "", err
	}
	info := st.CachedInfo().Cluster
	if info == nil || info.Leader != e.server.Name() {
		return "", nil
	}
	return jsleader.StepDown(ctx, e.nc, e.cfg.Store.Stream, info, nil)
}
