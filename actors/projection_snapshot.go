package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/offheap"
	"github.com/cairn-graph/cairn/internal/pace"
	"github.com/cairn-graph/cairn/internal/wire"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// Read-model snapshots.
//
// A snapshot round takes every shard's read models at one stream position
// P: right after delivering P, the reader sends a marker to every shard;
// each shard, between two messages, captures every graph that changed
// since its previous snapshot (readmodel.Graph.Freeze, O(pages), the only
// part that blocks the shard) and a goroutine encodes and stores them (persistence.SnapshotInfo
// of kind KindReadModel, Seq the graph's last transaction, Position and
// Head its last event). Unchanged graphs keep their last object. When every
// shard has stored its part, a manifest (kind KindManifest, graph
// "projections", Seq P) names the set, and old manifests and the read-model
// snapshots only they named are pruned. At most one round runs at a time.
//
// Start restores the newest manifest whose every snapshot loads and, with
// a Store, whose heads the event store confirms; a manifest that fails
// falls back to the next older one and finally to a rebuild from the stream
// start (a warning and Health's fallback counter say so). The reader then
// follows the stream from P+1.

// ManifestSeries is the Graph under which the projection manifests are
// stored (persistence.KindManifest).
const ManifestSeries = "projections"

// ManifestFormat is the version of the manifest's JSON payload.
const ManifestFormat = 1

// snapshotRoundTimeout bounds one snapshot round (its stores and manifest).
const snapshotRoundTimeout = 5 * time.Minute

// snapshotBufferMin is the smallest snapshot buffer a graph keeps for its
// next round: below it, a fresh buffer costs little.
const snapshotBufferMin = 1 << 20

// spareBuffer returns an empty buffer of capacity n whose pages are
// already mapped, so that the next encoding into it does not take their
// page faults: the store goroutine makes it when a graph's snapshot
// outgrew its buffer (or had none), with room for the graph to grow.
func spareBuffer(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		b[i] = 0
	}
	return b[:0]
}

// Pacer is a SnapshotStore that paces snapshot work
// (persistence.Snapshots): what is encoded for it goes through its Gate.
type Pacer interface {
	Pace() *pace.Gate
}

// Lender is a SnapshotStore that lends the buffers big snapshots are
// encoded into (persistence.Snapshots): outside the Go heap, mapped once,
// so that a snapshot round neither starts a garbage collection nor faults
// 100 MB in (see internal/offheap).
type Lender interface {
	Buffers() *offheap.Pool
}

// buffersOf returns the pool of snaps when it is a Lender, else nil (a nil
// pool lends nothing: the encodings grow their own buffers).
func buffersOf(snaps SnapshotStore) *offheap.Pool {
	if l, ok := snaps.(Lender); ok {
		return l.Buffers()
	}
	return nil
}

// encodePaced runs encode (a snapshot's encoding) through the Gate of snaps
// when it is a Pacer: encode calls step between bounded pieces of its work
// (wire.Step), and step sleeps there once the work has had its share (so
// the encodings of big read models and aggregates take one CPU at a time,
// and not all the time, whatever else snapshots, and never hold a CPU for
// longer than a piece and the Gate's Slice). It fails only when ctx ends
// before a slot is free; a sleep that ctx cuts short leaves the encoding
// good.
func encodePaced[T any](ctx context.Context, snaps SnapshotStore, encode func(step wire.Step) T) (T, error) {
	var gate *pace.Gate
	if p, ok := snaps.(Pacer); ok {
		gate = p.Pace()
	}
	w, err := gate.Begin(ctx)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("wait to encode a snapshot: %w", err)
	}
	defer w.End()
	v := encode(func() { _ = w.Step(ctx) })
	_ = w.Step(ctx)
	return v, nil
}

// prefixTimeout bounds a shard's read of a graph's archived prefix.
const prefixTimeout = 5 * time.Minute

// Manifest is a snapshot round's payload (JSON): the read-model snapshot of
// every graph as of stream sequence Seq.
type Manifest struct {
	Format int    `json:"format"`
	Seq    uint64 `json:"seq"`
	Shards int    `json:"shards"`
	// Graphs names each graph's snapshot, sorted by graph id.
	Graphs []ManifestGraph `json:"graphs"`
	// Rebuild names the graphs left out (their projection had stopped):
	// a restore folds them from the event store again.
	Rebuild []string `json:"rebuild,omitempty"`
}

// ManifestGraph names one read-model snapshot.
type ManifestGraph struct {
	Graph    string `json:"graph"`
	Seq      uint64 `json:"seq"`      // the graph's last transaction folded in
	Position uint64 `json:"position"` // chain position of its last event
	Head     string `json:"head,omitempty"`
	Name     string `json:"name"` // the snapshot object
	Format   uint32 `json:"format"`
	// Transactions counts the graph's transactions the snapshot holds,
	// from its first on (archived ones included); 0 when not known
	// (manifests written before it was kept). The audit checks it
	// against the store after a restart.
	Transactions uint64 `json:"transactions,omitempty"`
}

// manifestGraph names info's snapshot, which holds held transactions of
// its graph (-1: not known).
func manifestGraph(info persistence.SnapshotInfo, held int64) ManifestGraph {
	return ManifestGraph{Graph: info.Graph, Seq: info.Seq, Position: info.Position, Head: headCID(persistence.Head{N: info.Position, CID: info.Head}),
		Name: info.Name, Format: info.Format, Transactions: uint64(max(held, 0))}
}

// held is the count of transactions that m says its snapshot holds, -1
// when it does not say.
func (m ManifestGraph) held() int64 {
	if m.Transactions == 0 {
		return -1
	}
	return int64(m.Transactions)
}

// info returns the snapshot's SnapshotInfo.
func (m ManifestGraph) info() (persistence.SnapshotInfo, error) {
	info := persistence.SnapshotInfo{Kind: persistence.KindReadModel, Graph: m.Graph, Seq: m.Seq, Position: m.Position, Format: m.Format, Name: m.Name}
	if m.Head != "" {
		c, err := cid.Decode(m.Head)
		if err != nil {
			return info, fmt.Errorf("graph %s: head %q: %w", m.Graph, m.Head, err)
		}
		info.Head = c
	}
	return info, nil
}

// snapState is the snapshot bookkeeping of a Projections.
type snapState struct {
	// Owned by the reader goroutine (then by Close, once it stopped).
	resumed uint64 // the manifest's seq the reader resumed from
	last    uint64 // the last seq delivered
	since   int    // events delivered since the last round started
	total   int    // events delivered since Start

	lastBytes atomic.Int64 // what the last round that succeeded wrote
	// notBefore is when a round due by its interval may start (unix ns):
	// see ProjectionConfig.SnapshotSpacing.
	notBefore atomic.Int64

	inFlight  atomic.Pointer[snapRound]
	fallbacks atomic.Uint64
	rounds    atomic.Uint64
	failures  atomic.Uint64

	mu     sync.Mutex
	health api.SnapshotHealth // the fields not counted above

	// index lists the stored read-model snapshots (time travel's bases),
	// so that queries need not list the Object Store: filled by Start and
	// kept up to date by the rounds and their prunes.
	index snapIndex
}

// snapIndex lists read-model snapshots by graph, newest first.
type snapIndex struct {
	mu sync.Mutex
	m  map[string][]persistence.SnapshotInfo
}

func (x *snapIndex) add(info persistence.SnapshotInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string][]persistence.SnapshotInfo{}
	}
	l := x.m[info.Graph]
	i, found := slices.BinarySearchFunc(l, info.Seq, func(e persistence.SnapshotInfo, seq uint64) int {
		switch {
		case e.Seq > seq:
			return -1
		case e.Seq < seq:
			return 1
		}
		return 0
	})
	if found {
		l[i] = info
		return
	}
	x.m[info.Graph] = slices.Insert(l, i, info)
}

// keep keeps graph's newest n snapshots, as Prune does.
func (x *snapIndex) keep(graph string, n int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if l := x.m[graph]; len(l) > n {
		x.m[graph] = slices.Clone(l[:n])
	}
}

// get returns graph's snapshots, newest first.
func (x *snapIndex) get(graph string) []persistence.SnapshotInfo {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.m[graph])
}

// snapRound is one snapshot round.
type snapRound struct {
	seq     uint64
	series  string // the manifest series it writes
	started time.Time
	parts   chan roundPart // one per shard
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
}

// roundPart is one shard's share of a round.
type roundPart struct {
	graphs  []ManifestGraph
	rebuild []string
	written int
	bytes   int64
	block   time.Duration
	err     error
}

// Messages of a shard actor for snapshots.
type (
	// snapshotMarker asks the shard to snapshot its graphs for round.
	snapshotMarker struct{ round *snapRound }
	// snapshotsStored says which snapshots of the shard's graphs were
	// stored, and hands back the large buffers they were encoded into.
	snapshotsStored struct {
		infos []persistence.SnapshotInfo
		bufs  map[string][]byte
	}
	// restoreGraphs hands the shard its restored read models.
	restoreGraphs struct {
		seq     uint64
		graphs  []restoredGraph
		rebuild []string
	}
)

// restoredGraph is one loaded read-model snapshot.
type restoredGraph struct {
	g    *readmodel.Graph
	info persistence.SnapshotInfo
	held int64 // see projected.held
}

// delivered counts f towards the next snapshot round and starts one when
// due: every SnapshotEvery events, or every snapshotBytesPerEvent-th of the
// bytes the last round wrote if more (so that the rounds of big read models
// write a bounded number of bytes per event), and when the reader first
// catches up after a rebuild or a long tail. Until then (a rebuild), rounds
// also wait until the events since the last one are at least half of all
// delivered so far: the rounds of a long rebuild come at doubling
// intervals, so that encoding the growing read models costs a bounded
// share of the rebuild (about twice the last snapshot) instead of one
// snapshot every SnapshotEvery events.
func (p *Projections) delivered(f persistence.Followed, firstCaughtUp, caughtUp bool) {
	if p.cfg.Snapshots == nil {
		return
	}
	n := max(f.Events(), 1)
	p.snap.last = f.Seq
	p.snap.since += n
	p.snap.total += n
	every := max(p.cfg.SnapshotEvery, int(p.snap.lastBytes.Load()/snapshotBytesPerEvent))
	due := p.snap.since >= every && (caughtUp || p.snap.since >= p.snap.total/2) && time.Now().UnixNano() >= p.snap.notBefore.Load()
	// Restored from a manifest with a short tail, the stored snapshots
	// are nearly current: a round now would rewrite every read model
	// while the engine starts.
	if firstCaughtUp && p.snap.resumed != 0 && p.snap.since < every/2 {
		firstCaughtUp = false
	}
	if (due || firstCaughtUp) && p.snap.inFlight.Load() == nil && p.snapshotWriter() {
		p.startRound(f.Seq)
	}
}

// snapshotWriter reports whether this engine takes snapshot rounds: a
// partitioned one once it has a manifest series (it joined its cluster).
func (p *Projections) snapshotWriter() bool {
	return p.part == nil || p.part.Series() != ""
}

// series returns the manifest series the next round writes: the member's
// own when partitioned.
func (p *Projections) series() string {
	if p.part != nil {
		return p.part.Series()
	}
	return ManifestSeries
}

// snapshotBytesPerEvent sets how far apart the rounds of big read models
// are: a round that wrote B bytes is followed by the next after at least
// B/snapshotBytesPerEvent events, so that rounds write about a kilobyte
// per event at most. That is SnapshotEvery's default for the 100 MB read
// model of 1M nodes and 3M edges (a round costs it about a second of CPU),
// and grows with bigger models; a restart replays at most that many events
// after the snapshots it restores.
const snapshotBytesPerEvent = 1000

// startRound sends every shard the marker of a round at seq (the reader
// delivered seq last) and collects the parts in the background.
func (p *Projections) startRound(seq uint64) *snapRound {
	r := &snapRound{seq: seq, series: p.series(), started: time.Now(), parts: make(chan roundPart, len(p.shards)), done: make(chan struct{})}
	r.ctx, r.cancel = context.WithTimeout(p.life, snapshotRoundTimeout)
	p.snap.inFlight.Store(r)
	p.snap.since = 0
	for _, sh := range p.shards {
		p.root.Send(sh.pid, &snapshotMarker{round: r})
	}
	go p.finishRound(r)
	return r
}

// snapshot captures the shard's changed graphs for round r
// (readmodel.Graph.Freeze, O(pages): the only part the shard waits for),
// then encodes and stores them in the background and hands its part to the
// round.
func (a *shardActor) snapshot(r *snapRound) {
	type pending struct {
		info persistence.SnapshotInfo
		f    *readmodel.Frozen
		buf  []byte // the graph's buffer from the last round, if kept
		held int64  // see projected.held
	}
	start := time.Now()
	var part roundPart
	var todo []pending
	for id, e := range a.graphs {
		switch {
		case e.adopt != nil:
			// Not here yet; its last snapshot stays where it is.
		case e.stopped != nil || e.g == nil:
			part.rebuild = append(part.rebuild, id)
		case e.snap.Seq != 0 && e.snap.Seq == e.g.AsOf():
			part.graphs = append(part.graphs, manifestGraph(e.snap, e.held))
		default:
			info := persistence.SnapshotInfo{Kind: persistence.KindReadModel, Graph: id, Seq: e.g.AsOf(), Position: e.head.N, Head: e.head.CID,
				Format: readmodel.SnapshotFormat}
			todo = append(todo, pending{info: info, f: e.g.Freeze(), buf: e.snapBuf[:0], held: e.held})
			e.snapBuf = nil // the store's until it hands it back
		}
	}
	part.block = time.Since(start)
	snaps, pid := a.p.cfg.Snapshots, a.shard.pid
	var pool *offheap.Pool
	if !a.p.cfg.KeepSnapshotBuffers {
		pool = buffersOf(snaps)
	}
	go func() {
		var stored []persistence.SnapshotInfo
		var bufs map[string][]byte
		for i := range todo {
			t := &todo[i]
			lent := pool.Get(t.f.SizeHint())
			buf := t.buf
			if lent != nil {
				buf = lent
			}
			data, err := encodePaced(r.ctx, snaps, func(step wire.Step) []byte { return t.f.AppendSnapshotPaced(buf, step) })
			t.f = nil // let the capture's pages go before the next encodes
			if err != nil {
				pool.Put(lent)
				part.err = errors.Join(part.err, fmt.Errorf("read-model snapshot of graph %s at seq %d: %w", t.info.Graph, t.info.Seq, err))
				continue
			}
			info, err := snaps.Put(r.ctx, t.info, data)
			// Put keeps no reference to the data once it returns.
			size := int64(len(data))
			if lent != nil {
				data = nil // lent's
				pool.Put(lent)
			}
			if a.p.cfg.KeepSnapshotBuffers && cap(data) >= snapshotBufferMin {
				if bufs == nil {
					bufs = map[string][]byte{}
				}
				buf := data
				if fits := cap(t.buf) > 0 && cap(data) == cap(t.buf); !fits {
					buf = spareBuffer(cap(data) + cap(data)/4)
				}
				bufs[t.info.Graph] = buf
			}
			if err != nil {
				part.err = errors.Join(part.err, fmt.Errorf("store the read-model snapshot of graph %s at seq %d: %w", t.info.Graph, t.info.Seq, err))
				continue
			}
			if info.Name == "" {
				info.Name = t.info.Name
			}
			stored = append(stored, info)
			part.graphs = append(part.graphs, manifestGraph(info, t.held))
			part.written++
			part.bytes += size
		}
		if len(stored) > 0 || len(bufs) > 0 {
			a.p.root.Send(pid, &snapshotsStored{infos: stored, bufs: bufs})
		}
		r.parts <- part
	}()
}

// finishRound waits for every shard's part, writes the manifest and prunes.
func (p *Projections) finishRound(r *snapRound) {
	defer func() {
		p.snap.inFlight.CompareAndSwap(r, nil)
		r.cancel()
		close(r.done)
	}()
	m := Manifest{Format: ManifestFormat, Seq: r.seq, Shards: len(p.shards)}
	var errs []error
	var bytes int64
	var written int
	var block time.Duration
	for range p.shards {
		select {
		case part := <-r.parts:
			m.Graphs = append(m.Graphs, part.graphs...)
			m.Rebuild = append(m.Rebuild, part.rebuild...)
			bytes += part.bytes
			written += part.written
			block = max(block, part.block)
			if part.err != nil {
				errs = append(errs, part.err)
			}
		case <-r.ctx.Done():
			errs = append(errs, fmt.Errorf("waiting for the shards: %w", context.Cause(r.ctx)))
		}
		if r.ctx.Err() != nil {
			break
		}
	}
	p.snap.mu.Lock()
	p.snap.health.LastBlockMs = ms(block)
	p.snap.health.MaxBlockMs = max(p.snap.health.MaxBlockMs, ms(block))
	p.snap.mu.Unlock()
	err := errors.Join(errs...)
	if err == nil {
		slices.SortFunc(m.Graphs, func(a, b ManifestGraph) int { return strings.Compare(a.Graph, b.Graph) })
		slices.Sort(m.Rebuild)
		data, merr := json.Marshal(m)
		if merr == nil {
			_, err = p.cfg.Snapshots.Put(r.ctx, persistence.SnapshotInfo{Kind: persistence.KindManifest, Graph: r.series, Seq: r.seq,
				Format: ManifestFormat}, data)
		} else {
			err = merr
		}
	}
	if err != nil {
		p.snap.failures.Add(1)
		p.log.LogAttrs(r.ctx, slog.LevelWarn, "projection snapshot round failed; no manifest written",
			slog.Uint64("seq", r.seq), slog.String("err", err.Error()))
		return
	}
	took := time.Since(r.started)
	p.snap.mu.Lock()
	h := &p.snap.health
	h.LastSeq, h.LastBytes, h.LastGraphs, h.LastRoundMs = r.seq, bytes, written, ms(took)
	h.LastTime = time.Now().UTC()
	p.snap.mu.Unlock()
	p.snap.lastBytes.Store(bytes)
	p.snap.notBefore.Store(spacedAfter(r.started, took, p.cfg.SnapshotSpacing).UnixNano())
	for _, g := range m.Graphs {
		if info, err := g.info(); err == nil {
			p.snap.index.add(info)
		}
	}
	// The round counts once pruned: the store is quiet then.
	defer p.snap.rounds.Add(1)
	p.log.LogAttrs(r.ctx, slog.LevelInfo, "projection snapshot round",
		slog.Uint64("seq", r.seq), slog.Int("graphs", len(m.Graphs)), slog.Int("written", written), slog.Int64("bytes", bytes),
		slog.Duration("took", took), slog.Duration("longest_block", block))
	if err := p.prune(r.ctx, r.series); err != nil {
		p.log.LogAttrs(r.ctx, slog.LevelWarn, "pruning projection snapshots failed", slog.Uint64("seq", r.seq), slog.String("err", err.Error()))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// prune keeps the newest SnapshotKeep manifests of series and, for each
// graph, every read-model snapshot at or after the oldest one a kept
// manifest names (which includes every snapshot a kept manifest names).
// Partitioned, the kept manifests are those of every live member's series
// (each member prunes only its own), and the manifests of series whose
// member is gone are deleted.
func (p *Projections) prune(ctx context.Context, series string) error {
	snaps, keep := p.cfg.Snapshots, p.cfg.SnapshotKeep
	if _, err := snaps.Prune(ctx, persistence.KindManifest, series, keep); err != nil {
		return fmt.Errorf("prune manifests: %w", err)
	}
	var kept []persistence.SnapshotInfo
	if p.part == nil {
		l, err := snaps.List(ctx, persistence.KindManifest, series)
		if err != nil {
			return fmt.Errorf("list manifests: %w", err)
		}
		kept = l[:min(len(l), keep)]
	} else {
		l, err := snaps.List(ctx, persistence.KindManifest, "")
		if err != nil {
			return fmt.Errorf("list manifests: %w", err)
		}
		perSeries := map[string]int{}
		for _, info := range l { // newest first
			switch {
			case info.Graph != series && !p.part.Live(info.Graph):
				if err := snaps.Delete(ctx, info); err != nil && !errors.Is(err, persistence.ErrNotFound) {
					return fmt.Errorf("delete manifest %s of a member gone: %w", info.Name, err)
				}
			case perSeries[info.Graph] < keep:
				perSeries[info.Graph]++
				kept = append(kept, info)
			}
		}
	}
	oldest := map[string]uint64{}
	for _, info := range kept {
		m, err := p.readManifest(ctx, info)
		if errors.Is(err, persistence.ErrNotFound) && info.Graph != series {
			continue // pruned by its member meanwhile
		}
		if err != nil {
			// Unreadable: it names nothing we know of, so keep everything.
			return fmt.Errorf("manifest %s: %w", info.Name, err)
		}
		for _, g := range m.Graphs {
			if o, ok := oldest[g.Graph]; !ok || g.Seq < o {
				oldest[g.Graph] = g.Seq
			}
		}
	}
	all, err := snaps.List(ctx, persistence.KindReadModel, "")
	if err != nil {
		return fmt.Errorf("list read-model snapshots: %w", err)
	}
	// Delete from the one listing (newest first per graph): a Prune per
	// graph would list the whole bucket again for each.
	var errs []error
	newer, pruned := map[string]int{}, map[string]bool{}
	for _, info := range all {
		o, ok := oldest[info.Graph]
		switch {
		case !ok:
		case info.Seq >= o:
			newer[info.Graph]++
		default:
			pruned[info.Graph] = true
			if err := snaps.Delete(ctx, info); err != nil && !errors.Is(err, persistence.ErrNotFound) {
				errs = append(errs, fmt.Errorf("prune read-model snapshot %s: %w", info.Name, err))
			}
		}
	}
	for g := range pruned {
		p.snap.index.keep(g, newer[g])
	}
	return errors.Join(errs...)
}

// readManifest fetches and decodes one manifest.
func (p *Projections) readManifest(ctx context.Context, info persistence.SnapshotInfo) (Manifest, error) {
	var m Manifest
	data, err := p.cfg.Snapshots.Get(ctx, info)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("decode: %w", err)
	}
	if m.Format != ManifestFormat {
		return m, fmt.Errorf("unknown manifest format %d (this engine reads %d)", m.Format, ManifestFormat)
	}
	if m.Seq != info.Seq {
		return m, fmt.Errorf("manifest holds seq %d, its object names seq %d", m.Seq, info.Seq)
	}
	return m, nil
}

// finalSnapshot runs the round Close takes: it waits for the round in
// flight, then snapshots what came since, bounded by ctx. The reader has
// stopped.
func (p *Projections) finalSnapshot(ctx context.Context) error {
	if p.cfg.Snapshots == nil {
		return nil
	}
	wait := func(r *snapRound) error {
		select {
		case <-r.done:
			return nil
		case <-ctx.Done():
			r.cancel()
			return fmt.Errorf("projections: the snapshot round at seq %d did not finish: %w", r.seq, ctx.Err())
		}
	}
	if r := p.snap.inFlight.Load(); r != nil {
		if err := wait(r); err != nil {
			return err
		}
	}
	if p.snap.since > 0 && p.snapshotWriter() {
		if err := wait(p.startRound(p.snap.last)); err != nil {
			return err
		}
	}
	return nil
}

// restore loads the newest manifest that restores whole and hands its read
// models to the shards; p.snap.resumed is then its seq.
func (p *Projections) restore(ctx context.Context) {
	start := time.Now()
	infos, err := p.cfg.Snapshots.List(ctx, persistence.KindManifest, ManifestSeries)
	if err != nil {
		if ctx.Err() == nil {
			p.snap.fallbacks.Add(1)
			p.log.LogAttrs(ctx, slog.LevelWarn, "listing the projection manifests failed; rebuilding from the stream start",
				slog.String("err", err.Error()))
		}
		return
	}
	for _, info := range infos {
		m, graphs, err := p.loadManifest(ctx, info)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.snap.fallbacks.Add(1)
			p.log.LogAttrs(ctx, slog.LevelWarn, "projection manifest not restorable; trying an older one",
				slog.String("manifest", info.Name), slog.Uint64("seq", info.Seq), slog.String("err", err.Error()))
			continue
		}
		byShard := make([]*restoreGraphs, len(p.shards))
		for i := range byShard {
			byShard[i] = &restoreGraphs{seq: m.Seq}
		}
		for _, rg := range graphs {
			s := byShard[p.Shard(rg.info.Graph)]
			s.graphs = append(s.graphs, rg)
		}
		for _, g := range m.Rebuild {
			s := byShard[p.Shard(g)]
			s.rebuild = append(s.rebuild, g)
		}
		for i, sh := range p.shards {
			p.root.Send(sh.pid, byShard[i])
		}
		p.snap.resumed = m.Seq
		p.snap.mu.Lock()
		p.snap.health.RestoredSeq, p.snap.health.RestoredGraphs, p.snap.health.RestoreMs = m.Seq, len(graphs), ms(time.Since(start))
		p.snap.mu.Unlock()
		p.log.LogAttrs(ctx, slog.LevelInfo, "projections restored from snapshots",
			slog.Uint64("seq", m.Seq), slog.Int("graphs", len(graphs)), slog.Duration("took", time.Since(start)))
		return
	}
	if len(infos) > 0 {
		p.log.LogAttrs(ctx, slog.LevelWarn, "no projection manifest restorable; rebuilding from the stream start",
			slog.Int("manifests", len(infos)))
	}
}

// fillIndex lists the stored read-model snapshots into p.snap.index, before
// the first round.
func (p *Projections) fillIndex(ctx context.Context) {
	all, err := p.cfg.Snapshots.List(ctx, persistence.KindReadModel, "")
	if err != nil {
		if ctx.Err() == nil {
			p.log.LogAttrs(ctx, slog.LevelWarn, "listing the read-model snapshots failed; time travel replays without the older ones",
				slog.String("err", err.Error()))
		}
		return
	}
	for _, info := range all {
		p.snap.index.add(info)
	}
}

// loadManifest loads every read-model snapshot a manifest names, in
// parallel; any failure fails the manifest.
func (p *Projections) loadManifest(ctx context.Context, info persistence.SnapshotInfo) (Manifest, []restoredGraph, error) {
	m, err := p.readManifest(ctx, info)
	if err != nil {
		return m, nil, err
	}
	out := make([]restoredGraph, len(m.Graphs))
	errs := make([]error, len(m.Graphs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, mg := range m.Graphs {
		if mg.Seq > m.Seq {
			errs[i] = fmt.Errorf("graph %s: snapshot at seq %d is after the manifest's seq %d", mg.Graph, mg.Seq, m.Seq)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			si, err := mg.info()
			if err == nil {
				out[i].g, err = p.loadReadModel(ctx, si)
				out[i].info, out[i].held = si, mg.held()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return m, out, errors.Join(errs...)
}

// loadReadModel fetches and decodes one read-model snapshot and checks it:
// its graph and sequence match info and, with a Store, the event store
// confirms that the graph's transaction at info.Seq ends with info's head.
// An authorization graph's index is built here (restore and adoption).
func (p *Projections) loadReadModel(ctx context.Context, info persistence.SnapshotInfo) (*readmodel.Graph, error) {
	if g, ok := p.cfg.Warm.TakeReadModel(ctx, info, p.cfg.Trust); ok {
		if err := p.checkHead(ctx, info); err != nil {
			return nil, err
		}
		return g, nil
	}
	data, err := p.fetchReadModel(ctx, info)
	if err != nil {
		return nil, err
	}
	g, err := p.decodeReadModel(info, data)
	if err != nil {
		return nil, err
	}
	// Here, off the shard and before the graph serves queries, rather
	// than on its first check (a few hundred ms at 1M tuples).
	g.BuildAuthzIndex()
	return g, nil
}

// fetchReadModel fetches one read-model snapshot's payload and, with a
// Store, has the event store confirm meanwhile that the graph's transaction
// at info.Seq ends with info's head.
func (p *Projections) fetchReadModel(ctx context.Context, info persistence.SnapshotInfo) ([]byte, error) {
	if !readmodel.ReadsFormat(info.Format) {
		return nil, fmt.Errorf("read-model snapshot %s of graph %s: unknown format %d (this engine reads up to %d)",
			info.Name, info.Graph, info.Format, readmodel.SnapshotFormat)
	}
	var headErr error
	var wg sync.WaitGroup
	wg.Go(func() { headErr = p.checkHead(ctx, info) })
	data, err := p.cfg.Snapshots.Get(ctx, info)
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("read-model snapshot %s of graph %s: %w", info.Name, info.Graph, err)
	}
	if headErr != nil {
		return nil, headErr
	}
	return data, nil
}

// checkHead has the event store, if there is one, confirm that the
// graph's transaction at info.Seq ends with info's head.
func (p *Projections) checkHead(ctx context.Context, info persistence.SnapshotInfo) error {
	st := p.cfg.Store
	if st == nil {
		return nil
	}
	if err := st.CheckHead(ctx, info.Graph, info.Seq, persistence.Head{N: info.Position, CID: info.Head}); err != nil {
		return fmt.Errorf("read-model snapshot %s of graph %s: head (position %d) not confirmed by the event store: %w",
			info.Name, info.Graph, info.Position, err)
	}
	return nil
}

// decodeReadModel decodes a read-model snapshot's payload and checks that
// it holds info's graph as of info.Seq. data is not retained.
func (p *Projections) decodeReadModel(info persistence.SnapshotInfo, data []byte) (*readmodel.Graph, error) {
	g, err := readmodel.LoadSnapshot(data, p.cfg.ReadModel)
	if err != nil {
		return nil, fmt.Errorf("read-model snapshot %s of graph %s: %w", info.Name, info.Graph, err)
	}
	if g.ID() != info.Graph || g.AsOf() != info.Seq {
		return nil, fmt.Errorf("read-model snapshot %s holds graph %s as of seq %d, not graph %s as of seq %d",
			info.Name, g.ID(), g.AsOf(), info.Graph, info.Seq)
	}
	return g, nil
}

// restore puts the restored read models in the shard and folds the graphs
// that the snapshot round left out.
func (a *shardActor) restore(m *restoreGraphs) {
	for _, rg := range m.graphs {
		a.put(rg.info.Graph, &projected{g: rg.g, head: persistence.Head{N: rg.info.Position, CID: rg.info.Head}, snap: rg.info, held: rg.held, restored: true})
	}
	for _, id := range m.rebuild {
		g, _ := readmodel.New(id, a.p.cfg.ReadModel)
		e := &projected{g: g}
		a.put(id, e)
		if err := a.foldPrefix(e, m.seq); err != nil {
			e.stopped = &ProjectionStoppedError{Graph: id, Seq: max(e.g.AsOf(), 1), Err: err}
			a.p.fail(e.stopped)
		}
	}
	a.mark(m.seq)
}

// errStopReplay ends a Store.Read early.
var errStopReplay = errors.New("replay reached its target")

// foldPrefix folds graph e's transactions up to stream sequence upTo from
// the event store (across archive and stream), inside the shard: a graph
// whose archived prefix the stream no longer holds, or that a restore must
// rebuild. Rare, and it blocks the shard while it reads.
func (a *shardActor) foldPrefix(e *projected, upTo uint64) error {
	graph := e.g.ID()
	st := a.p.cfg.Store
	if st == nil {
		return fmt.Errorf("graph %s: its transactions up to seq %d are not in the stream (archived, or left out of the snapshot set) and the projections have no event store to read them from",
			graph, upTo)
	}
	if _, err := a.foldRange(st, e, 1, upTo); err != nil {
		return fmt.Errorf("fold graph %s up to seq %d from the event store: %w", graph, upTo, err)
	}
	return nil
}

// foldRange checks and applies graph e's transactions with stream
// sequences from from to upTo, read from st (across archive and stream),
// inside the shard. On failure it returns the error with the sequence of
// the transaction that failed its check or its apply, 0 when the store
// failed.
func (a *shardActor) foldRange(st HistoryStore, e *projected, from, upTo uint64) (uint64, error) {
	graph := e.g.ID()
	ctx, cancel := context.WithTimeout(a.p.life, prefixTimeout)
	defer cancel()
	var failed uint64
	_, err := st.Read(ctx, graph, from, func(rec persistence.Record) error {
		if rec.Seq > upTo {
			return errStopReplay
		}
		d, err := checkTx(a.p.cfg.Trust, graph, e.head, rec.Seq, rec.Tx)
		if err == nil {
			err = safeApply(e.g, rec.Seq, rec.Tx.GetTimestampUnixNano(), d.events)
		}
		if err != nil {
			failed = rec.Seq
			return fmt.Errorf("seq %d: %w", rec.Seq, err)
		}
		e.head = d.head
		e.count()
		return nil
	})
	if err != nil && !errors.Is(err, errStopReplay) {
		return failed, err
	}
	return 0, nil
}

// snapHealth returns the snapshot part of Health.
func (p *Projections) snapHealth() api.SnapshotHealth {
	p.snap.mu.Lock()
	h := p.snap.health
	p.snap.mu.Unlock()
	h.Fallbacks, h.Rounds, h.Failures = p.snap.fallbacks.Load(), p.snap.rounds.Load(), p.snap.failures.Load()
	return h
}
