package actors

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// Warm decodes the local snapshot copies (persistence.LocalSnapshots) of a
// restarting engine while its NATS server recovers: the read models its
// projections restore and the aggregate states its grains activate from.
// A projection or grain that then fetches a snapshot's metadata from the
// Object Store takes the decoded one instead of fetching and decoding the
// payload, when the copy is of the same snapshot (kind, graph, seq, chain
// position, head, format; persistence.LocalCopy.Matches) and signed by a
// key it trusts; the head is checked against the event store either way.
// What nobody takes within WarmConfig.Keep is dropped.
//
// A nil *Warm is valid and holds nothing. Safe for concurrent use.
type Warm struct {
	cfg   WarmConfig
	local *persistence.LocalSnapshots
	mu    sync.Mutex
	rms   map[string]*warmEntry // by graph
	aggs  map[string]*warmEntry // by graph
	done  chan struct{}         // closed when every decode ended
	stop  chan struct{}

	hits, misses, loaded, failed atomic.Uint64
	took                         atomic.Int64 // ns from StartWarm until every decode ended
}

// WarmConfig tunes a Warm.
type WarmConfig struct {
	// AggregateBytes bounds the aggregate states decoded (by their
	// copies' payload sizes), the most recently written first. Default
	// 256 MiB; negative: none.
	AggregateBytes int64
	// ReadModel configures the read models decoded (the projections').
	ReadModel readmodel.Config
	// Keep is how long a decoded state waits to be taken. Default 2
	// minutes.
	Keep time.Duration
	// Logger. Default: discard.
	Logger *slog.Logger
}

type warmEntry struct {
	copy   persistence.LocalCopy
	ready  chan struct{}
	agg    *aggregate.State
	recent []*cairnv1.CommandReply
	rm     *readmodel.Graph
}

// StartWarm starts decoding local's copies on GOMAXPROCS goroutines: every
// read model (a restore needs them all), then aggregate states up to
// cfg.AggregateBytes. It returns at once; Take* wait for the entry they
// take.
func StartWarm(local *persistence.LocalSnapshots, cfg WarmConfig) *Warm {
	if cfg.AggregateBytes == 0 {
		cfg.AggregateBytes = 256 << 20
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Warm{cfg: cfg, local: local, rms: map[string]*warmEntry{}, aggs: map[string]*warmEntry{}, done: make(chan struct{}), stop: make(chan struct{})}
	start := time.Now()
	var jobs []*warmEntry
	budget := cfg.AggregateBytes
	var aggs []*warmEntry
	for _, c := range local.Scan() { // newest first, one copy per kind and graph
		e := &warmEntry{copy: c, ready: make(chan struct{})}
		switch c.Info.Kind {
		case persistence.KindReadModel:
			if !readmodel.ReadsFormat(c.Info.Format) {
				continue
			}
			w.rms[c.Info.Graph] = e
			jobs = append(jobs, e)
		case persistence.KindAggregate:
			if c.Info.Format != AggregateSnapshotFormat || c.Info.Size > budget {
				continue
			}
			budget -= c.Info.Size
			w.aggs[c.Info.Graph] = e
			aggs = append(aggs, e)
		}
	}
	jobs = append(jobs, aggs...)
	queue := make(chan *warmEntry, len(jobs))
	for _, e := range jobs {
		queue <- e
	}
	close(queue)
	var wg sync.WaitGroup
	// On every CPU, beside the NATS server's recovery: one CPU fewer left
	// NATS a CPU and answered the first query sooner, but the first
	// command later, beyond a second at 1M nodes (bench recovery: query
	// 0.68-0.81 s and command 0.86-1.08 s in 5 runs, against 0.85-0.96 s
	// and 0.85-0.97 s on every CPU).
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			for e := range queue {
				w.decode(local, e)
			}
		})
	}
	rms := len(jobs) - len(aggs)
	go func() {
		wg.Wait()
		w.took.Store(int64(time.Since(start)))
		close(w.done)
		if len(jobs) > 0 {
			cfg.Logger.LogAttrs(context.Background(), slog.LevelInfo, "local snapshots decoded",
				slog.Int("read_models", rms), slog.Int("aggregates", len(aggs)),
				slog.Uint64("failed", w.failed.Load()), slog.Duration("took", time.Since(start)))
		}
		t := time.NewTimer(cfg.Keep)
		defer t.Stop()
		select {
		case <-t.C:
		case <-w.stop:
		}
		w.drop()
	}()
	return w
}

// decode loads and decodes one copy; a copy that fails is dropped (its
// snapshot is fetched from the Object Store as without a copy).
func (w *Warm) decode(local *persistence.LocalSnapshots, e *warmEntry) {
	defer close(e.ready)
	info := e.copy.Info
	data, err := local.Load(e.copy) // the decoders check the formats' own CRC-32C
	if err == nil {
		switch info.Kind {
		case persistence.KindReadModel:
			var g *readmodel.Graph
			if g, err = readmodel.LoadSnapshot(data, w.cfg.ReadModel); err == nil {
				if g.ID() != info.Graph || g.AsOf() != info.Seq {
					err = ErrInvalidSnapshot
				} else {
					g.BuildAuthzIndex()
					e.rm = g
				}
			}
		case persistence.KindAggregate:
			var s *aggregate.State
			if s, e.recent, err = aggregate.Unmarshal(data); err == nil {
				if s.Graph() != info.Graph {
					err = ErrInvalidSnapshot
				} else {
					e.agg = s
				}
			}
		}
	}
	if err != nil {
		w.failed.Add(1)
		w.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "local snapshot copy not used",
			slog.String("file", e.copy.Path), slog.String("err", err.Error()))
		return
	}
	w.loaded.Add(1)
}

// take removes graph's entry from m and returns it once decoded, when it
// is of the snapshot info and trusted; nil otherwise.
func (w *Warm) take(ctx context.Context, m map[string]*warmEntry, info persistence.SnapshotInfo, trust *persistence.Keyring) *warmEntry {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	e := m[info.Graph]
	delete(m, info.Graph)
	w.mu.Unlock()
	if e == nil {
		return nil
	}
	if !e.copy.Matches(info) || (trust != nil && !trust.Trusts(e.copy.Info.KeyID)) {
		w.misses.Add(1)
		return nil
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil
	}
	if e.agg == nil && e.rm == nil {
		w.misses.Add(1)
		return nil
	}
	w.hits.Add(1)
	return e
}

// TakeAggregate returns the aggregate state and idempotency window decoded
// from the local copy of info, if there is one; the caller checks info's
// head against the event store.
func (w *Warm) TakeAggregate(ctx context.Context, info persistence.SnapshotInfo, trust *persistence.Keyring) (*aggregate.State, []*cairnv1.CommandReply, bool) {
	if w == nil {
		return nil, nil, false
	}
	e := w.take(ctx, w.aggs, info, trust)
	if e == nil || e.agg == nil {
		return nil, nil, false
	}
	return e.agg, e.recent, true
}

// TakeReadModel returns the read model decoded from the local copy of
// info, if there is one; the caller checks info's head against the event
// store.
func (w *Warm) TakeReadModel(ctx context.Context, info persistence.SnapshotInfo, trust *persistence.Keyring) (*readmodel.Graph, bool) {
	if w == nil {
		return nil, false
	}
	e := w.take(ctx, w.rms, info, trust)
	if e == nil || e.rm == nil {
		return nil, false
	}
	return e.rm, true
}

// drop forgets what was not taken.
func (w *Warm) drop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.rms)
	clear(w.aggs)
}

// Close drops what was not taken (once the decodes end).
func (w *Warm) Close() {
	if w == nil {
		return
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
}

// Done is closed when every decode has ended.
func (w *Warm) Done() <-chan struct{} { return w.done }

// Health returns the counters for cairn health.
func (w *Warm) Health() api.WarmHealth {
	if w == nil {
		return api.WarmHealth{}
	}
	st := w.local.Stats()
	return api.WarmHealth{Decoded: w.loaded.Load(), Failed: w.failed.Load(), Hits: w.hits.Load(), Misses: w.misses.Load(),
		DecodeMs: float64(w.took.Load()) / float64(time.Millisecond), Saved: st.Saves, SaveErrors: st.Errors}
}
