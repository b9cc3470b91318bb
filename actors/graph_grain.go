package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/ipfs/go-cid"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// GraphKind is the cluster kind of graph grains; a grain's identity is its
// graph id.
const GraphKind = "graph"

// EventStore is what a graph grain needs from the event store.
type EventStore interface {
	// Append stores tx if graph's last sequence is expectedSeq.
	Append(ctx context.Context, graph string, expectedSeq uint64, tx *cairnv1.Transaction) (uint64, error)
	// Read calls fn for graph's transactions from fromSeq on and returns the
	// graph's last sequence.
	Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error)
	// ReadScan is Read without the server's subject filter: slower, for
	// when a filtered read skipped a message.
	ReadScan(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error)
	// CheckHead reports whether the transaction at stream sequence seq
	// belongs to graph and ends with the event head: an aggregate snapshot
	// is trusted only then.
	CheckHead(ctx context.Context, graph string, seq uint64, head persistence.Head) error
}

var _ EventStore = (*persistence.Store)(nil)

// GraphGrains hosts graph grains and keeps track of the ones active on this
// member, so that shutdown can drain them.
type GraphGrains struct {
	kind   *cluster.Kind
	mu     sync.Mutex
	active map[*actor.PID]struct{}
	stats  grainCounters
	// writes counts snapshot writes in flight; StopAll waits for them.
	writes sync.WaitGroup
}

// GrainStats counts what the graph grains of a member did since it started:
// activations, snapshots and replays.
type GrainStats struct {
	// Activations counts successful loads of a graph's state.
	Activations uint64
	// SnapshotLoads counts activations that started from a snapshot.
	SnapshotLoads uint64
	// SnapshotFallbacks counts snapshots passed over at activation because
	// they could not be read, decoded or trusted (each is logged).
	SnapshotFallbacks uint64
	// SnapshotsWritten and SnapshotWriteErrors count snapshot writes.
	SnapshotsWritten, SnapshotWriteErrors uint64
	// SnapshotBytes is the uncompressed size of the snapshots written.
	SnapshotBytes uint64
	// EncodeTotal and EncodeMax are how long grains were blocked copying
	// their state for snapshots (the rest of the encoding runs aside), in
	// all and at most once.
	EncodeTotal, EncodeMax time.Duration
	// ReplayedTransactions and ReplayedEvents count what activations and
	// conflict reloads read from the event store and folded.
	ReplayedTransactions, ReplayedEvents uint64
}

type grainCounters struct {
	activations, snapshotLoads, fallbacks atomic.Uint64
	written, writeErrors, bytes           atomic.Uint64
	encodeTotal, encodeMax                atomic.Int64
	replayedTransactions, replayedEvents  atomic.Uint64
}

// Stats returns the counters of this member's graph grains.
func (k *GraphGrains) Stats() GrainStats {
	c := &k.stats
	return GrainStats{
		Activations: c.activations.Load(), SnapshotLoads: c.snapshotLoads.Load(), SnapshotFallbacks: c.fallbacks.Load(),
		SnapshotsWritten: c.written.Load(), SnapshotWriteErrors: c.writeErrors.Load(), SnapshotBytes: c.bytes.Load(),
		EncodeTotal: time.Duration(c.encodeTotal.Load()), EncodeMax: time.Duration(c.encodeMax.Load()),
		ReplayedTransactions: c.replayedTransactions.Load(), ReplayedEvents: c.replayedEvents.Load(),
	}
}

// NewGraphKind returns the cluster kind that hosts graph grains over store.
// ctx bounds the grains' I/O: cancel it to abort appends.
func NewGraphKind(ctx context.Context, store EventStore, cfg GrainConfig) (*GraphGrains, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("grain config: %w", err)
	}
	k := &GraphGrains{active: make(map[*actor.PID]struct{})}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &graphGrain{base: ctx, store: store, cfg: cfg, kind: k}
	})
	k.kind = cluster.NewKind(GraphKind, props)
	return k, nil
}

// Kind returns the cluster kind to register with a member.
func (k *GraphGrains) Kind() *cluster.Kind { return k.kind }

// Active returns how many graph grains are active on this member.
func (k *GraphGrains) Active() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.active)
}

// StopAll stops every active grain and waits until each has answered its
// in-flight and queued commands, or until ctx ends.
func (k *GraphGrains) StopAll(ctx context.Context, root *actor.RootContext) error {
	k.mu.Lock()
	pids := make([]*actor.PID, 0, len(k.active))
	for pid := range k.active {
		pids = append(pids, pid)
	}
	k.mu.Unlock()
	futures := make([]*actor.Future, len(pids))
	for i, pid := range pids {
		futures[i] = root.StopFuture(pid)
	}
	for _, f := range futures {
		if err := f.Wait(); err != nil && ctx.Err() != nil {
			return fmt.Errorf("stop graph grains: %w", ctx.Err())
		}
	}
	// A stopped grain may have left a snapshot write behind (it waits
	// AppendTimeout at most): wait for it, within ctx.
	done := make(chan struct{})
	go func() {
		k.writes.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop graph grains: snapshot writes still running: %w", ctx.Err())
	}
}

func (k *GraphGrains) track(pid *actor.PID, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if on {
		k.active[pid] = struct{}{}
	} else {
		delete(k.active, pid)
	}
}

// graphGrain owns one graph aggregate. It decides commands against its
// state, appends them to the store, and only then answers. While one append
// is in flight, new envelopes queue; when it completes they are decided one
// by one on the new state and the valid ones go out together as the next
// transaction (group commit).
type graphGrain struct {
	base  context.Context
	store EventStore
	cfg   GrainConfig
	kind  *GraphGrains
	log   *slog.Logger

	graph   string
	state   *State
	head    persistence.Head
	lastSeq uint64
	loaded  bool
	recent  *resultWindow

	// sinceSnap counts events applied since the last snapshot (or since
	// the state was restored from one).
	sinceSnap int
	// snapWrite, when not nil, is the snapshot write in flight.
	snapWrite *snapWrite
	// snapBackoff grows after each failed snapshot write (1 s to 1 min);
	// no new snapshot starts before snapRetryAt.
	snapBackoff time.Duration
	snapRetryAt time.Time

	queue    []*request
	pending  map[string]*request // queued or in flight, by command id
	inflight *batch
	stopping bool
}

type request struct {
	env      *cairnv1.CommandEnvelope
	senders  []replyTo
	attempts int // appends of this request that hit a conflict
}

type batch struct {
	reqs   []*request
	counts []int // events per request
	tx     *cairnv1.Transaction
	heads  []persistence.Head // head after each request
	// held are refusals decided after the batch's first accepted command:
	// they may rest on it, so they are answered only once it is stored.
	held []held
	// done receives the append's outcome before the batch is sent back to
	// the grain as a message, so a stopping grain can wait for it.
	done chan appendDone
}

type held struct {
	r   *request
	rep *cairnv1.CommandReply
}

type appendDone struct {
	seq uint64
	err error
}

func (g *graphGrain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.graph = m.Identity.Identity
		g.log = g.cfg.Logger.With("component", "graph-grain", "graph", g.graph)
		g.pending = make(map[string]*request)
		g.kind.track(ctx.Self(), true)
		ctx.SetReceiveTimeout(g.cfg.PassivateAfter)
		if err := g.load(); err != nil {
			g.log.LogAttrs(context.Background(), slog.LevelWarn, "activation replay failed", slog.String("err", err.Error()))
		}
	case *cairnv1.CommandEnvelope:
		g.receive(ctx, m, replyTo{pid: ctx.Sender()})
	case *localCommand:
		g.receive(ctx, m.env, replyTo{ch: m.reply})
	case *batch:
		if m == g.inflight {
			g.appended(ctx, m, <-m.done)
		}
	case *stateProbe:
		g.probe(m)
	case *actor.ReceiveTimeout:
		if g.inflight == nil && len(g.queue) == 0 {
			ctx.Stop(ctx.Self())
		} else {
			// The timeout fires once; re-arm it, or a grain that was busy
			// when it fired never passivates.
			ctx.SetReceiveTimeout(g.cfg.PassivateAfter)
		}
	case *actor.Stopping:
		// Drain: the append in flight completes and is answered with its real
		// outcome; queued commands are refused (nothing of theirs was written).
		g.stopping = true
		if b := g.inflight; b != nil {
			g.appended(ctx, b, <-b.done)
		}
		for _, r := range g.queue {
			g.finish(ctx, r, errorReply(r.env, unavailable("graph %s is shutting down; retry with the same command id", g.graph)))
		}
		g.queue = nil
		g.finalSnapshot()
	case *actor.Stopped:
		g.kind.track(ctx.Self(), false)
	}
}

// load rebuilds the state: from the newest trusted snapshot and the
// transactions after it when snapshots are on, else (or when none can be
// trusted) from the whole stream. On error the grain stays unloaded and
// answers UNAVAILABLE until a later load succeeds.
func (g *graphGrain) load() error {
	start := time.Now()
	g.reset()
	if g.cfg.Snapshots != nil {
		info, ok, err := g.loadSnapshot()
		if err != nil {
			return fmt.Errorf("load %s: %w", g.graph, err)
		}
		if ok {
			g.loaded = true
			g.kind.stats.activations.Add(1)
			g.kind.stats.snapshotLoads.Add(1)
			g.log.LogAttrs(context.Background(), slog.LevelDebug, "activated from snapshot", slog.String("snapshot", info.Name),
				slog.Uint64("snapshot_seq", info.Seq), slog.Uint64("last_seq", g.lastSeq), slog.Int("tail_events", g.sinceSnap), slog.Duration("took", time.Since(start)))
			g.maybeSnapshot()
			return nil
		}
		if g.base.Err() != nil {
			return fmt.Errorf("load %s: %w", g.graph, g.base.Err())
		}
	}
	g.reset()
	err := g.replay(g.store.Read, 1)
	if errors.Is(err, persistence.ErrChainBroken) {
		// A gap may be the server's filtered read skipping a message rather
		// than the chain itself: read the stream unfiltered once.
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "replay found a chain break; reading the stream unfiltered", slog.String("err", err.Error()))
		g.reset()
		err = g.replay(g.store.ReadScan, 1)
	}
	if err != nil {
		return err
	}
	g.loaded = true
	g.kind.stats.activations.Add(1)
	g.maybeSnapshot()
	return nil
}

// reset empties the state.
func (g *graphGrain) reset() {
	g.state = NewState(g.graph)
	g.head, g.lastSeq, g.loaded, g.sinceSnap = persistence.Head{}, 0, false, 0
	g.recent = newResultWindow(g.cfg.IdempotencyWindow)
}

// loadSnapshot restores the newest snapshot that can be trusted and replays
// the transactions after it. Each snapshot passed over is logged and
// counted. It reports false, with the state reset, when none would do, and
// an error when the store failed (no snapshot would do better then).
func (g *graphGrain) loadSnapshot() (persistence.SnapshotInfo, bool, error) {
	ctx, cancel := context.WithTimeout(g.base, g.cfg.AppendTimeout)
	infos, err := g.cfg.Snapshots.List(ctx, persistence.KindAggregate, g.graph)
	cancel()
	if err != nil {
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "listing snapshots failed; replaying the whole history", slog.String("err", err.Error()))
		return persistence.SnapshotInfo{}, false, nil
	}
	for _, info := range infos {
		if err := g.fromSnapshot(info); err != nil {
			g.reset()
			if g.base.Err() != nil {
				return persistence.SnapshotInfo{}, false, g.base.Err()
			}
			if errors.Is(err, persistence.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
				// The store did not answer: an older snapshot or a full
				// replay would read the same stretch. Fail this load.
				return persistence.SnapshotInfo{}, false, err
			}
			g.kind.stats.fallbacks.Add(1)
			g.log.LogAttrs(context.Background(), slog.LevelWarn, "snapshot not used; trying an older one", slog.String("snapshot", info.Name),
				slog.Uint64("snapshot_seq", info.Seq), slog.String("reason", err.Error()))
			continue
		}
		return info, true, nil
	}
	if len(infos) > 0 {
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "no snapshot can be trusted; replaying the whole history", slog.Int("snapshots", len(infos)))
	}
	return persistence.SnapshotInfo{}, false, nil
}

// fromSnapshot restores info and replays the transactions after it.
func (g *graphGrain) fromSnapshot(info persistence.SnapshotInfo) error {
	restore := func() error {
		ctx, cancel := context.WithTimeout(g.base, g.cfg.AppendTimeout)
		defer cancel()
		st, recent, err := restoreSnapshot(ctx, g.cfg.Snapshots, g.store, g.graph, info)
		if err != nil {
			return err
		}
		g.reset()
		g.state, g.head, g.lastSeq = st, persistence.Head{N: info.Position, CID: info.Head}, info.Seq
		g.recent.load(recent)
		return nil
	}
	if err := restore(); err != nil {
		return err
	}
	err := g.replay(g.store.Read, info.Seq+1)
	if errors.Is(err, persistence.ErrChainBroken) {
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "tail replay found a chain break; reading the stream unfiltered",
			slog.String("snapshot", info.Name), slog.String("err", err.Error()))
		if err = restore(); err == nil {
			err = g.replay(g.store.ReadScan, info.Seq+1)
		}
	}
	if err != nil {
		return fmt.Errorf("replay after snapshot %s: %w", info.Name, err)
	}
	return nil
}

// snapshotDue reports whether enough events were applied since the last
// snapshot: GrainConfig.SnapshotInterval of the state's size.
func (g *graphGrain) snapshotDue() bool {
	return g.sinceSnap >= g.cfg.SnapshotInterval(g.state.NodeCount()+g.state.EdgeCount())
}

// maybeSnapshot snapshots the state when snapshotDue and no snapshot write
// is in flight. It must only run with no batch in flight: the state then
// holds exactly lastSeq.
func (g *graphGrain) maybeSnapshot() {
	if g.cfg.Snapshots == nil || !g.loaded || g.inflight != nil || g.lastSeq == 0 || !g.snapshotDue() {
		return
	}
	if g.snapWrite != nil {
		select {
		case <-g.snapWrite.done:
			g.wrote()
		default:
			return // the next batch tries again
		}
		if !g.snapshotDue() {
			return
		}
	}
	if g.snapBackoff > 0 && time.Now().Before(g.snapRetryAt) {
		return
	}
	g.snapshot()
}

// snapWrite is one snapshot write; err is set before done is closed.
type snapWrite struct {
	done   chan struct{}
	err    error
	events int // events the snapshot covered since the one before
}

// wrote takes note of the finished write: when it failed, the events it
// covered still wait for a snapshot.
func (g *graphGrain) wrote() {
	if g.snapWrite.err != nil {
		g.sinceSnap += g.snapWrite.events
		// Retry later, not at the next batch: a store that keeps failing
		// would make every batch copy the whole state.
		g.snapBackoff = min(max(2*g.snapBackoff, time.Second), time.Minute)
		g.snapRetryAt = time.Now().Add(g.snapBackoff)
	} else {
		g.snapBackoff = 0
	}
	g.snapWrite = nil
}

// snapshot copies the state here, in the actor (the only part that blocks
// commands), and encodes, marshals, compresses and stores it on another
// goroutine.
func (g *graphGrain) snapshot() {
	start := time.Now()
	capture := captureState(g.state, g.recent.recentList())
	took := time.Since(start)
	c := &g.kind.stats
	c.encodeTotal.Add(int64(took))
	for {
		old := c.encodeMax.Load()
		if int64(took) <= old || c.encodeMax.CompareAndSwap(old, int64(took)) {
			break
		}
	}
	g.log.LogAttrs(context.Background(), slog.LevelDebug, "snapshot captured", slog.Uint64("seq", g.lastSeq),
		slog.Int("nodes", len(capture.nodes)), slog.Int("edges", len(capture.edges)), slog.Duration("blocked", took))
	info := persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: g.graph, Seq: g.lastSeq, Position: g.head.N, Head: g.head.CID, Format: AggregateSnapshotFormat}
	w := &snapWrite{done: make(chan struct{}), events: g.sinceSnap}
	g.sinceSnap = 0
	g.snapWrite = w
	g.kind.writes.Add(1)
	go func() {
		defer g.kind.writes.Done()
		defer close(w.done)
		w.err = g.writeSnapshot(info, capture)
	}()
}

// writeSnapshot stores snap and prunes the graph's older snapshots.
func (g *graphGrain) writeSnapshot(info persistence.SnapshotInfo, capture *stateCapture) error {
	start := time.Now()
	c := &g.kind.stats
	fail := func(what string, err error) error {
		c.writeErrors.Add(1)
		g.log.LogAttrs(context.Background(), slog.LevelWarn, what, slog.Uint64("seq", info.Seq), slog.String("err", err.Error()))
		return err
	}
	data, err := capture.marshal()
	if err != nil {
		return fail("snapshot marshal failed", err)
	}
	ctx, cancel := context.WithTimeout(g.base, max(g.cfg.AppendTimeout, 30*time.Second))
	defer cancel()
	stored, err := g.cfg.Snapshots.Put(ctx, info, data)
	if err != nil {
		return fail("snapshot write failed", err)
	}
	c.written.Add(1)
	c.bytes.Add(uint64(len(data)))
	g.log.LogAttrs(context.Background(), slog.LevelDebug, "snapshot written", slog.String("snapshot", stored.Name), slog.Int("bytes", len(data)),
		slog.Int64("stored", stored.Stored), slog.Duration("took", time.Since(start)))
	if _, err := g.cfg.Snapshots.Prune(ctx, persistence.KindAggregate, g.graph, g.cfg.SnapshotKeep); err != nil {
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "snapshot prune failed", slog.String("err", err.Error()))
	}
	return nil
}

// finalSnapshot, as the grain stops, waits for the snapshot write in flight
// and snapshots what was applied since, waiting for that write too, at most
// AppendTimeout in all.
func (g *graphGrain) finalSnapshot() {
	if g.cfg.Snapshots == nil {
		return
	}
	timer := time.NewTimer(g.cfg.AppendTimeout)
	defer timer.Stop()
	wait := func() bool {
		if g.snapWrite == nil {
			return true
		}
		select {
		case <-g.snapWrite.done:
			g.wrote()
			return true
		case <-timer.C:
			g.log.LogAttrs(context.Background(), slog.LevelWarn, "stopping without waiting for the snapshot write", slog.Duration("waited", g.cfg.AppendTimeout))
			return false
		}
	}
	if !wait() || !g.loaded || g.sinceSnap == 0 || g.lastSeq == 0 || g.inflight != nil {
		return
	}
	g.snapshot()
	wait()
}

type readFunc func(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error)

// replay applies the graph's transactions from stream sequence from on,
// checking the chain as it goes.
func (g *graphGrain) replay(read readFunc, from uint64) error {
	ctx, cancel := context.WithTimeout(g.base, g.cfg.AppendTimeout)
	defer cancel()
	chain := persistence.NewChainAt(g.graph, g.head)
	start := time.Now()
	n := 0
	last, err := read(ctx, g.graph, from, func(r persistence.Record) error {
		evs, err := chain.Check(r.Seq, r.Tx)
		if err != nil {
			return err
		}
		i := 0
		for _, cr := range r.Tx.GetCommands() {
			if cr.GetEventCount() == 0 {
				return fmt.Errorf("replay %s seq %d: command %q records no events", g.graph, r.Seq, cr.GetCommandId())
			}
			for range cr.GetEventCount() {
				if err := Apply(g.state, evs[i].Event); err != nil {
					return fmt.Errorf("replay %s seq %d: %w", g.graph, r.Seq, err)
				}
				i++
			}
			h := evs[i-1]
			g.recent.put(&cairnv1.CommandReply{CommandId: cr.GetCommandId(), HeadCid: h.CID.String(), Seq: r.Seq, Position: h.Envelope.N, TxId: r.Tx.GetTxId()})
		}
		g.head, g.lastSeq = chain.Head(), r.Seq
		g.sinceSnap += len(evs)
		g.kind.stats.replayedTransactions.Add(1)
		g.kind.stats.replayedEvents.Add(uint64(len(evs)))
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay %s: %w", g.graph, err)
	}
	if last > g.lastSeq {
		return fmt.Errorf("replay %s: read stopped at seq %d before the last seq %d", g.graph, g.lastSeq, last)
	}
	if n > 0 {
		g.log.LogAttrs(context.Background(), slog.LevelDebug, "replayed", slog.Int("transactions", n), slog.Uint64("last_seq", g.lastSeq), slog.Duration("took", time.Since(start)))
	}
	return nil
}

// replyTo is where an answer goes: the sender's PID (a future, local or
// remote) or, for a local caller, a channel with room for the answer.
type replyTo struct {
	pid *actor.PID
	ch  chan<- *cairnv1.CommandReply
}

func (t replyTo) valid() bool { return t.pid != nil || t.ch != nil }

func (t replyTo) send(ctx actor.Context, rep *cairnv1.CommandReply) {
	switch {
	case t.ch != nil:
		t.ch <- rep
	case t.pid != nil:
		ctx.Send(t.pid, rep)
	}
}

// localCommand is an envelope from a caller on this member, answered on its
// channel: no future, timer or registry entry per command.
type localCommand struct {
	env   *cairnv1.CommandEnvelope
	reply chan *cairnv1.CommandReply // buffered, capacity 1
}

func (g *graphGrain) receive(ctx actor.Context, env *cairnv1.CommandEnvelope, sender replyTo) {
	reply := func(r *cairnv1.CommandReply) { sender.send(ctx, r) }
	if err := ValidateEnvelope(env); err != nil {
		reply(errorReply(env, AsCommandError(err)))
		return
	}
	if env.GetGraphId() != g.graph {
		reply(errorReply(env, invalid("graph_id", "envelope for graph %s reached the grain of graph %s", env.GetGraphId(), g.graph)))
		return
	}
	if !g.loaded {
		if err := g.load(); err != nil {
			reply(errorReply(env, unavailable("graph %s could not be loaded: %v", g.graph, err)))
			return
		}
	}
	if r, ok := g.recent.get(env.GetCommandId()); ok {
		dup := proto.Clone(r).(*cairnv1.CommandReply)
		dup.Duplicate = true
		reply(dup)
		return
	}
	if r, ok := g.pending[env.GetCommandId()]; ok {
		if sender.valid() {
			r.senders = append(r.senders, sender)
		}
		return
	}
	if len(g.queue) >= g.cfg.MaxQueue {
		reply(errorReply(env, unavailable("graph %s has %d commands queued; retry later", g.graph, len(g.queue))))
		return
	}
	r := &request{env: env}
	if sender.valid() {
		r.senders = []replyTo{sender}
	}
	g.pending[env.GetCommandId()] = r
	g.queue = append(g.queue, r)
	if g.inflight == nil {
		g.flush(ctx)
	}
}

// flush decides queued envelopes on the state and starts appending the valid
// ones as one transaction.
func (g *graphGrain) flush(ctx actor.Context) {
	for g.inflight == nil && len(g.queue) > 0 && !g.stopping {
		b := &batch{}
		g.state.begin()
		var events []*cairnv1.Event
		taken := 0
		for _, r := range g.queue {
			if len(b.reqs) > 0 && len(events)+len(r.env.GetCommands()) > g.cfg.MaxBatchEvents {
				break
			}
			taken++
			evs, err := DecideEnvelope(g.state, r.env)
			if err != nil {
				if len(b.reqs) == 0 {
					// Decided on stored state alone: final.
					g.finish(ctx, r, errorReply(r.env, AsCommandError(err)))
				} else {
					// It may rest on the batch's own commands: answer when
					// the batch is stored, decide again if it is not.
					b.held = append(b.held, held{r, errorReply(r.env, AsCommandError(err))})
				}
				continue
			}
			b.reqs = append(b.reqs, r)
			b.counts = append(b.counts, len(evs))
			events = append(events, evs...)
		}
		g.queue = g.queue[taken:]
		if len(b.reqs) == 0 {
			g.state.commit()
			continue
		}
		if err := g.seal(b, events); err != nil {
			g.state.rollback(0)
			g.state.commit()
			for _, r := range b.reqs {
				g.finish(ctx, r, errorReply(r.env, AsCommandError(err)))
			}
			g.requeueHeld(b)
			continue
		}
		g.inflight = b
		g.startAppend(ctx, b)
	}
	if len(g.queue) == 0 {
		g.queue = nil // let a burst's backing array go
	}
}

func (g *graphGrain) seal(b *batch, events []*cairnv1.Event) error {
	now := time.Now().UnixNano()
	txID := nuid.Next()
	recs, _, err := persistence.Seal(g.graph, txID, now, g.head, events)
	if err != nil {
		return err
	}
	tx := &cairnv1.Transaction{GraphId: g.graph, TxId: txID, TimestampUnixNano: now, Events: recs}
	i := 0
	for k, r := range b.reqs {
		n := b.counts[k]
		tx.Commands = append(tx.Commands, &cairnv1.CommandRecord{
			CommandId: r.env.GetCommandId(), CorrelationId: r.env.GetCorrelationId(),
			CausationId: r.env.GetCausationId(), Issuer: r.env.GetIssuer(), EventCount: uint32(n),
		})
		i += n
		last := recs[i-1]
		_, id, err := cid.CidFromBytes(last.GetCid())
		if err != nil {
			return err
		}
		b.heads = append(b.heads, persistence.Head{N: g.head.N + uint64(i), CID: id})
	}
	b.tx = tx
	return nil
}

func (g *graphGrain) startAppend(ctx actor.Context, b *batch) {
	self, sys := ctx.Self(), ctx.ActorSystem()
	expected := g.lastSeq
	b.done = make(chan appendDone, 1)
	go func() {
		actx, cancel := context.WithTimeout(g.base, g.cfg.AppendTimeout)
		defer cancel()
		var seq uint64
		var err error
		for attempt := 0; ; attempt++ {
			seq, err = g.store.Append(actx, g.graph, expected, b.tx)
			if err == nil || !errors.Is(err, persistence.ErrUnavailable) || attempt >= g.cfg.AppendRetries || actx.Err() != nil {
				break
			}
		}
		b.done <- appendDone{seq: seq, err: err}
		sys.Root.Send(self, b)
	}()
}

func (g *graphGrain) appended(ctx actor.Context, b *batch, d appendDone) {
	g.inflight = nil
	switch {
	case d.err == nil:
		g.state.commit()
		g.lastSeq = d.seq
		g.head = b.heads[len(b.heads)-1]
		g.sinceSnap += len(b.tx.GetEvents())
		for k, r := range b.reqs {
			h := b.heads[k]
			rep := &cairnv1.CommandReply{CommandId: r.env.GetCommandId(), HeadCid: h.CID.String(), Seq: d.seq, Position: h.N, TxId: b.tx.GetTxId()}
			g.recent.put(rep)
			g.finish(ctx, r, rep)
		}
		for _, h := range b.held {
			g.finish(ctx, h.r, h.rep)
		}
	case errors.Is(d.err, persistence.ErrConflict):
		// Another writer moved the graph on: reload the tail and decide once
		// more; a second conflict is answered as CONFLICT.
		g.state.rollback(0)
		g.state.commit()
		g.log.LogAttrs(context.Background(), slog.LevelInfo, "append conflict; reloading", slog.Uint64("expected_seq", g.lastSeq))
		if err := g.replay(g.store.Read, g.lastSeq+1); err != nil {
			// The state may be half reloaded: decide nothing more on it (an
			// append could succeed unseen by the next full load). Refuse
			// what is queued too; the next command reloads from scratch.
			g.loaded = false
			g.requeueHeld(b)
			for _, r := range append(b.reqs, g.queue...) {
				g.finish(ctx, r, errorReply(r.env, unavailable("graph %s changed and could not be reloaded: %v", g.graph, err)))
			}
			g.queue = nil
			break
		}
		var retry []*request
		for _, r := range b.reqs {
			if prev, ok := g.recent.get(r.env.GetCommandId()); ok {
				// The other writer was an earlier activation of ours that
				// stored this very command.
				dup := proto.Clone(prev).(*cairnv1.CommandReply)
				dup.Duplicate = true
				g.finish(ctx, r, dup)
				continue
			}
			if r.attempts++; r.attempts > 1 {
				g.finish(ctx, r, errorReply(r.env, conflict("graph %s was changed by another writer twice while deciding; retry with the same command id", g.graph)))
				continue
			}
			retry = append(retry, r)
		}
		g.requeueHeld(b)
		g.queue = append(retry, g.queue...)
	default:
		// Nothing is known to be stored; if it was after all, the next append
		// conflicts and the reload finds it.
		g.state.rollback(0)
		g.state.commit()
		for _, r := range b.reqs {
			g.finish(ctx, r, errorReply(r.env, unavailable("append to graph %s failed: %v; retry with the same command id", g.graph, d.err)))
		}
		g.requeueHeld(b)
	}
	g.maybeSnapshot()
	g.flush(ctx)
}

// requeueHeld puts the batch's held refusals back at the head of the queue,
// to be decided again on the state as stored.
func (g *graphGrain) requeueHeld(b *batch) {
	if len(b.held) == 0 {
		return
	}
	again := make([]*request, 0, len(b.held)+len(g.queue))
	for _, h := range b.held {
		again = append(again, h.r)
	}
	g.queue = append(again, g.queue...)
	b.held = nil
}

func (g *graphGrain) finish(ctx actor.Context, r *request, rep *cairnv1.CommandReply) {
	delete(g.pending, r.env.GetCommandId())
	g.respond(ctx, r, rep)
}

func (g *graphGrain) respond(ctx actor.Context, r *request, rep *cairnv1.CommandReply) {
	for _, s := range r.senders {
		s.send(ctx, rep)
	}
}

func errorReply(env *cairnv1.CommandEnvelope, e *CommandError) *cairnv1.CommandReply {
	return &cairnv1.CommandReply{CommandId: env.GetCommandId(), Error: e.Proto()}
}

// stateProbe asks a grain for its state as a snapshot would hold it, with
// its head and last sequence (tests compare activations with it).
type stateProbe struct {
	reply chan<- probed // buffered, capacity 1
	// headOnly: answer with the head and sequence only.
	headOnly bool
}

type probed struct {
	snap *cairnv1.GraphSnapshot
	head persistence.Head
	seq  uint64
	err  error
}

func (g *graphGrain) probe(m *stateProbe) {
	if !g.loaded {
		if err := g.load(); err != nil {
			m.reply <- probed{err: err}
			return
		}
	}
	if g.inflight != nil {
		m.reply <- probed{err: fmt.Errorf("graph %s has an append in flight", g.graph)}
		return
	}
	if m.headOnly {
		m.reply <- probed{head: g.head, seq: g.lastSeq}
		return
	}
	m.reply <- probed{snap: EncodeState(g.state, g.recent.recentList()), head: g.head, seq: g.lastSeq}
}
