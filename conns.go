package cairn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// The engine's NATS connections, by job, so that no job can starve
// another: a client that floods one kind of request slows down only the
// connection that serves it.
const (
	// connEngine carries the event store's appends, the projections'
	// stream reader, the snapshot store and the gateway's query endpoint.
	connEngine = "cairn-engine"
	// connCommands carries the gateway's command endpoint only.
	connCommands = "cairn-commands"
	// connHistory carries the projections' event-store reads: time-travel
	// builds, snapshot head checks and archived prefixes.
	connHistory = "cairn-history"
	// connMembership carries the cluster membership's heartbeats and
	// watch (cairn serve --cluster only), so that no other traffic delays
	// a heartbeat past the member's lease.
	connMembership = "cairn-membership"
)

// ConnStats is what one of the engine's NATS connections went through.
type ConnStats struct {
	// Name is the connection's name (its nats.Name): cairn-engine,
	// cairn-commands, cairn-history or cairn-membership.
	Name string
	// SlowConsumers counts the slow-consumer errors NATS reported on it
	// (a subscription that fell behind and dropped messages).
	SlowConsumers uint64
	// Disconnects counts the times it was disconnected (the server drops
	// a connection that does not read fast enough, for one).
	Disconnects uint64
}

// connWatch counts the slow consumers and disconnects of one connection.
type connWatch struct {
	name              string
	slow, disconnects atomic.Uint64
}

// conns are the engine's connections, in the order they were opened.
type conns struct {
	mu      sync.Mutex
	nc      []*nats.Conn
	watches []*connWatch
}

// stats returns each connection's counts.
func (c *conns) stats() []ConnStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ConnStats, 0, len(c.watches))
	for _, w := range c.watches {
		out = append(out, ConnStats{Name: w.name, SlowConsumers: w.slow.Load(), Disconnects: w.disconnects.Load()})
	}
	return out
}

// down names each connection that is not connected now, with its status
// (RECONNECTING, CLOSED, ...).
func (c *conns) down() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for i, nc := range c.nc {
		if !nc.IsConnected() {
			out = append(out, fmt.Sprintf("%s (%s)", c.watches[i].name, nc.Status()))
		}
	}
	return out
}

// watchOption is a nats.Option, applied after every other, that counts
// and logs w's slow consumers and disconnects and then calls the handlers
// set before it (Config.NATSOptions may carry some).
func watchOption(w *connWatch, log *slog.Logger) nats.Option {
	return func(o *nats.Options) error {
		asyncErr, disconnected := o.AsyncErrorCB, o.DisconnectedErrCB
		o.AsyncErrorCB = func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				w.slow.Add(1)
				subject := ""
				if sub != nil {
					subject = sub.Subject
				}
				log.LogAttrs(context.Background(), slog.LevelWarn, "NATS slow consumer", slog.String("connection", w.name), slog.String("subject", subject))
			}
			if asyncErr != nil {
				asyncErr(nc, sub, err)
			}
		}
		o.DisconnectedErrCB = func(nc *nats.Conn, err error) {
			if !nc.IsClosed() {
				w.disconnects.Add(1)
				attrs := []slog.Attr{slog.String("connection", w.name)}
				if err != nil {
					attrs = append(attrs, slog.String("err", err.Error()))
				}
				log.LogAttrs(context.Background(), slog.LevelWarn, "NATS connection lost", attrs...)
			}
			if disconnected != nil {
				disconnected(nc, err)
			}
		}
		return nil
	}
}

// connect opens one of the engine's connections, named name: in-process to
// the embedded server, else to Config.NATSURL with Config.NATSOptions
// (credentials, TLS), so that every connection of the engine is made
// alike. The engine drains it on Close.
func (e *Engine) connect(name string) (*nats.Conn, error) {
	w := &connWatch{name: name}
	watch := watchOption(w, e.cfg.Logger)
	var nc *nats.Conn
	var err error
	if e.server != nil {
		nc, err = e.server.Connect(nats.Name(name), watch)
	} else {
		opts := append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1)}, e.cfg.NATSOptions...)
		nc, err = nats.Connect(e.cfg.NATSURL, append(opts, watch)...)
		if err != nil {
			err = fmt.Errorf("connect to %s: %w", e.cfg.NATSURL, err)
		}
	}
	if err != nil {
		return nil, err
	}
	e.conns.mu.Lock()
	e.conns.nc = append(e.conns.nc, nc)
	e.conns.watches = append(e.conns.watches, w)
	e.conns.mu.Unlock()
	return nc, nil
}

// Connections reports, for each of the engine's NATS connections, the slow
// consumers and disconnects it went through.
func (e *Engine) Connections() []ConnStats { return e.conns.stats() }

// drainConns drains the engine's connections, the main one last, and waits
// until they are closed or ctx ends.
func (e *Engine) drainConns(ctx context.Context) []error {
	e.conns.mu.Lock()
	ncs := append([]*nats.Conn(nil), e.conns.nc...)
	e.conns.mu.Unlock()
	var errs []error
	for i := len(ncs) - 1; i >= 0; i-- {
		nc := ncs[i]
		if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("drain nats connection %s: %w", nc.Opts.Name, err))
		}
		tick := time.NewTicker(5 * time.Millisecond)
		for !nc.IsClosed() && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		tick.Stop()
	}
	return errs
}
