package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/ipfs/go-cid"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/tracing"
	"github.com/cairn-graph/cairn/internal/wire"
	"github.com/cairn-graph/cairn/internal/workers"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// GraphKind is the cluster kind of graph grains; a grain's identity is its
// graph id.
const GraphKind = "graph"

// EventStore is what a graph grain needs from the event store.
type EventStore interface {
	// AppendWithin stores tx if graph's last sequence is expectedSeq,
	// waiting at most about within (and until ctx ends) for the answer;
	// running out of time is ErrUnavailable.
	// sealed, when not nil, is tx's events and heads, for this member's
	// projections (persistence.Sealed).
	AppendWithin(ctx context.Context, within time.Duration, graph string, expectedSeq uint64, tx *cairnv1.Transaction, sealed *persistence.Sealed) (uint64, error)
	// AppendAsync is AppendWithin without the wait: done gets its result,
	// once, and must not block (persistence.Store.AppendAsync).
	AppendAsync(ctx context.Context, within time.Duration, graph string, expectedSeq uint64, tx *cairnv1.Transaction, sealed *persistence.Sealed, done func(seq uint64, err error))
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
	// LastSeq returns the stream sequence of graph's last transaction, 0
	// when it has none.
	LastSeq(ctx context.Context, graph string) (uint64, error)
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
	// slots holds a token per activation running (GrainConfig.MaxActivations).
	slots chan struct{}
	warm  *Warm
	// appends runs the grains' appends (each waits for the store's
	// acknowledgement) on goroutines that are used again.
	appends *workers.Pool
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
	// EncodeTotal and EncodeMax are how long grains were blocked freezing
	// their state for snapshots (the encoding runs aside), in all and at
	// most once.
	EncodeTotal, EncodeMax time.Duration
	// ReplayedTransactions and ReplayedEvents count what activations and
	// conflict reloads read from the event store and folded.
	ReplayedTransactions, ReplayedEvents uint64
	// ActivationWaits counts activations that waited for a turn
	// (GrainConfig.MaxActivations were running); ActivationsAtOnce is
	// the most that ran at once.
	ActivationWaits, ActivationsAtOnce uint64
	// AppendConflicts counts appends the event store refused because the
	// graph had moved on past the sequence the grain expected: another
	// writer (a second activation of the graph, on this member or another
	// one) appended first. The grain then reloads and decides again.
	AppendConflicts uint64
	// Quarantined names each graph whose last load found its stored
	// history failing a check, with the reason; its grain answers
	// DATA_LOSS.
	Quarantined map[string]string
	// LastSnapshot is when the last snapshot write succeeded (zero before
	// any).
	LastSnapshot time.Time
	// Nodes and Edges are what the active grains' states hold.
	Nodes, Edges int64
	// ChainFailures counts loads that found the graph's stored history
	// failing a check (each quarantine).
	ChainFailures uint64
}

type grainCounters struct {
	activations, snapshotLoads, fallbacks atomic.Uint64
	written, writeErrors, bytes           atomic.Uint64
	encodeTotal, encodeMax                atomic.Int64
	replayedTransactions, replayedEvents  atomic.Uint64
	appendConflicts                       atomic.Uint64
	activationWaits                       atomic.Uint64
	activating, activatingMax             atomic.Int64
	// lastWritten is when the last snapshot write succeeded (unix nanos);
	// nodes and edges are what the active grains' states hold.
	lastWritten   atomic.Int64
	nodes, edges  atomic.Int64
	chainFailures atomic.Uint64

	mu          sync.Mutex
	quarantined map[string]string
}

// quarantine records that graph's history failed a check; release, that it
// loaded since.
func (c *grainCounters) quarantine(graph string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quarantined == nil {
		c.quarantined = map[string]string{}
	}
	c.quarantined[graph] = err.Error()
}

func (c *grainCounters) release(graph string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.quarantined, graph)
}

// Stats returns the counters of this member's graph grains.
func (k *GraphGrains) Stats() GrainStats {
	c := &k.stats
	st := GrainStats{
		Activations: c.activations.Load(), SnapshotLoads: c.snapshotLoads.Load(), SnapshotFallbacks: c.fallbacks.Load(),
		SnapshotsWritten: c.written.Load(), SnapshotWriteErrors: c.writeErrors.Load(), SnapshotBytes: c.bytes.Load(),
		EncodeTotal: time.Duration(c.encodeTotal.Load()), EncodeMax: time.Duration(c.encodeMax.Load()),
		ReplayedTransactions: c.replayedTransactions.Load(), ReplayedEvents: c.replayedEvents.Load(),
		AppendConflicts: c.appendConflicts.Load(),
		Nodes:           c.nodes.Load(), Edges: c.edges.Load(), ChainFailures: c.chainFailures.Load(),
		ActivationWaits: c.activationWaits.Load(), ActivationsAtOnce: uint64(c.activatingMax.Load()),
		Quarantined: c.quarantinedCopy(),
	}
	if ns := c.lastWritten.Load(); ns != 0 {
		st.LastSnapshot = time.Unix(0, ns)
	}
	return st
}

func (c *grainCounters) quarantinedCopy() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.quarantined) == 0 {
		return nil
	}
	return maps.Clone(c.quarantined)
}

// NewGraphKind returns the cluster kind that hosts graph grains over store.
// ctx bounds the grains' I/O: cancel it to abort appends.
func NewGraphKind(ctx context.Context, store EventStore, cfg GrainConfig) (*GraphGrains, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("grain config: %w", err)
	}
	k := &GraphGrains{active: make(map[*actor.PID]struct{}), slots: make(chan struct{}, cfg.MaxActivations), warm: cfg.Warm,
		appends: workers.New(workerIdle)}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &graphGrain{base: ctx, store: store, cfg: cfg, kind: k}
	}, actor.WithDispatcher(poolDispatcher{workers.New(workerIdle)}))
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
	// Waited for within ctx: a grain may take AppendTimeout to stop (its
	// append in flight, its last snapshot). The goroutine ends when the
	// futures do (each is bounded by its own time-out).
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for _, f := range futures {
			_ = f.Wait()
		}
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		return fmt.Errorf("stop graph grains: %w", ctx.Err())
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

// graphGrain owns one graph aggregate: it is the I/O adapter around an
// aggregate.Core, which decides commands and batches them (group commit).
// The grain loads the state (snapshot and tail), seals each batch the core
// hands it into a CID-chained transaction, appends it to the store off the
// actor, feeds the outcome back, sends the answers, and writes snapshots.
type graphGrain struct {
	base  context.Context
	store EventStore
	cfg   GrainConfig
	kind  *GraphGrains
	log   *slog.Logger

	graph   string
	core    *aggregate.Core[replyTo]
	head    persistence.Head
	lastSeq uint64
	loaded  bool
	// quarantined: this grain recorded its graph in the grains' quarantine
	// (GrainStats.Quarantined) and has not loaded or run a command since.
	quarantined bool

	// sinceSnap counts events applied since the last snapshot (or since
	// the state was restored from one).
	sinceSnap int
	// snapWrite, when not nil, is the snapshot write in flight.
	snapWrite *snapWrite
	// snapBackoff grows after each failed snapshot write (1 s to 1 min);
	// no new snapshot starts before snapRetryAt.
	snapBackoff time.Duration
	snapRetryAt time.Time
	// snapNotBefore is when the next snapshot may start: see
	// GrainConfig.SnapshotSpacing.
	snapNotBefore time.Time
	// snapsStored is how many snapshots of the graph the store holds, as
	// far as the grain knows (listed at activation, counted since): older
	// ones are pruned only when a write takes it past SnapshotKeep, so that
	// a graph with few snapshots never looks for them. A stopping grain's
	// last snapshot prunes only past SnapshotKeep + 1 (see finalSnapshot).
	snapsStored int

	inflight *appendJob
	stopping bool
	// nodes and edges are what this grain last added to the grains'
	// counts (GrainStats.Nodes, Edges).
	nodes, edges int64
}

// appendJob is one sealed batch being appended.
type appendJob struct {
	batch *aggregate.Batch[replyTo]
	tx    *cairnv1.Transaction // &stored
	heads []persistence.Head   // head after each command
	// stored and head1 back tx and a one-command batch's heads: one
	// allocation for the job instead of three.
	stored cairnv1.Transaction
	head1  [1]persistence.Head
	res1   [1]aggregate.Head // the core's heads of a one-command batch
	// sealed is the batch's events and heads, handed with the append to
	// this member's projections: they need not decode them again.
	sealed persistence.Sealed
	// done is released once result holds the append's outcome, before the
	// job is sent back to the grain as a message, so a stopping grain can
	// wait for it (a WaitGroup in the job rather than a channel: no
	// allocation).
	done   sync.WaitGroup
	result appendDone

	// What the append needs off the grain's goroutine (startAppend):
	// the grain (its store, config and graph do not change), where to send
	// the job back, the expected sequence, when it started and must end,
	// the stream's next leader election, its span (nil: not traced) and
	// the error of a first try to repeat.
	g        *graphGrain
	self     *actor.PID
	sys      *actor.ActorSystem
	expected uint64
	start    time.Time
	deadline time.Time
	elected  <-chan struct{}
	sp       trace.Span
	first    error
}

// outcome waits for the append's outcome.
func (j *appendJob) outcome() appendDone {
	j.done.Wait()
	return j.result
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
		g.kind.track(ctx.Self(), true)
		ctx.SetReceiveTimeout(g.cfg.PassivateAfter)
		if err := g.load(); err != nil {
			g.log.LogAttrs(context.Background(), slog.LevelWarn, "activation replay failed", slog.String("err", err.Error()))
		}
	case *cairnv1.CommandEnvelope:
		to := replyTo{pid: ctx.Sender()}
		if g.cfg.Tracer != nil && m.GetTraceParent() != "" {
			to.span = g.startSpan(m, tracing.ParseParent(m.GetTraceParent()), trace.SpanKindServer)
		}
		g.receive(ctx, m, to)
	case *localCommand:
		to := replyTo{local: m}
		if g.cfg.Tracer != nil && m.parent != nil && m.parent.IsValid() {
			to.span = g.startSpan(m.env, *m.parent, trace.SpanKindInternal)
		}
		g.receive(ctx, m.env, to)
	case *appendJob:
		if m == g.inflight {
			g.appended(ctx, m, m.outcome())
		}
	case *stateProbe:
		g.probe(m)
	case *actor.ReceiveTimeout:
		if g.core == nil || !g.core.Busy() {
			g.cfg.Metrics.Passivation()
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
		if g.core != nil {
			g.send(ctx, g.core.Stop())
			if j := g.inflight; j != nil {
				g.appended(ctx, j, j.outcome())
			}
		}
		g.finalSnapshot()
	case *actor.Stopped:
		g.kind.track(ctx.Self(), false)
		g.count(0, 0)
	}
}

// load rebuilds the state: from the newest trusted snapshot and the
// transactions after it when snapshots are on, else (or when none can be
// trusted) from the whole stream. On error the grain stays unloaded and
// answers UNAVAILABLE until a later load succeeds.
func (g *graphGrain) load() error {
	release, err := g.kind.activationTurn(g.base)
	if err != nil {
		return fmt.Errorf("load %s: %w", g.graph, err)
	}
	start := time.Now()
	err = g.loadChecked()
	release()
	g.cfg.Metrics.Activation(time.Since(start), err)
	switch {
	case err == nil:
		g.countState()
		if g.quarantined {
			g.quarantined = false
			g.kind.stats.release(g.graph)
		}
	case isDataLoss(err):
		g.dataLoss(err)
	}
	return err
}

// activationTurn waits until fewer than GrainConfig.MaxActivations
// activations run, or ctx ends, and returns the function that ends this
// one's turn.
func (k *GraphGrains) activationTurn(ctx context.Context) (release func(), err error) {
	c := &k.stats
	select {
	case k.slots <- struct{}{}:
	default:
		c.activationWaits.Add(1)
		select {
		case k.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	n := c.activating.Add(1)
	for {
		m := c.activatingMax.Load()
		if n <= m || c.activatingMax.CompareAndSwap(m, n) {
			break
		}
	}
	return func() {
		c.activating.Add(-1)
		<-k.slots
	}, nil
}

// dataLoss records that the graph's stored history failed a check, and
// tells the projections.
func (g *graphGrain) dataLoss(err error) {
	g.quarantined = true
	g.kind.stats.quarantine(g.graph, err)
	g.kind.stats.chainFailures.Add(1)
	g.log.LogAttrs(context.Background(), slog.LevelError, "graph quarantined: its stored history fails its check", slog.String("err", err.Error()))
	if f := g.cfg.OnDataLoss; f != nil {
		var seq uint64
		var ce *persistence.ChainError
		if errors.As(err, &ce) {
			seq = ce.Seq
		}
		f(g.graph, seq, err)
	}
}

// loadChecked is load less the quarantine's book-keeping.
func (g *graphGrain) loadChecked() error {
	if q := g.cfg.Quarantined; q != nil {
		if err := q(g.graph); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := g.reset(nil, nil); err != nil {
		return err
	}
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
	if err := g.reset(nil, nil); err != nil {
		return err
	}
	err := g.replay(g.store.Read, 1)
	if errors.Is(err, persistence.ErrChainBroken) {
		// A gap may be the server's filtered read skipping a message rather
		// than the chain itself: read the stream unfiltered once.
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "replay found a chain break; reading the stream unfiltered", slog.String("err", err.Error()))
		if err = g.reset(nil, nil); err == nil {
			err = g.replay(g.store.ReadScan, 1)
		}
	}
	if err != nil {
		return err
	}
	g.loaded = true
	g.kind.stats.activations.Add(1)
	g.maybeSnapshot()
	return nil
}

// reset starts over from state s and the window's replies (nil: the empty
// state, no replies).
func (g *graphGrain) reset(s *aggregate.State, recent []*cairnv1.CommandReply) error {
	if s == nil {
		s = aggregate.NewState(g.graph)
	}
	w := aggregate.NewWindow(g.cfg.Aggregate.Window)
	w.Load(recent)
	cfg := g.cfg.Aggregate
	if l, ok := g.store.(TransactionLimiter); ok {
		cfg.MaxTxBytes = min(cfg.MaxTxBytes, l.MaxTransactionBytes()-txHeadroom)
		cfg.MaxBatchBytes = min(cfg.MaxBatchBytes, cfg.MaxTxBytes)
	}
	core, err := aggregate.New[replyTo](s, w, cfg)
	if err != nil {
		return fmt.Errorf("graph %s: %w", g.graph, err)
	}
	g.core = core
	g.head, g.lastSeq, g.loaded, g.sinceSnap = persistence.Head{}, 0, false, 0
	return nil
}

// TransactionLimiter is an event store that says the largest transaction it
// accepts, marshalled.
type TransactionLimiter interface {
	MaxTransactionBytes() int
}

// txHeadroom is kept below the store's limit for the transaction's own
// fields, which the core's estimate of a batch leaves out.
const txHeadroom = 4 << 10

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
		g.snapsStored = g.cfg.SnapshotKeep // unknown: prune after the next write
		return persistence.SnapshotInfo{}, false, nil
	}
	defer func() { g.snapsStored = len(infos) }()
	for _, info := range infos {
		if err := g.fromSnapshot(info); err != nil {
			if rerr := g.reset(nil, nil); rerr != nil {
				return persistence.SnapshotInfo{}, false, rerr
			}
			if g.base.Err() != nil {
				return persistence.SnapshotInfo{}, false, g.base.Err()
			}
			if errors.Is(err, persistence.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
				// The store did not answer: an older snapshot or a full
				// replay would read the same stretch. Fail this load.
				return persistence.SnapshotInfo{}, false, err
			}
			if errors.Is(err, persistence.ErrNotFound) {
				// The snapshot's transaction is in neither stream nor
				// archive: is the stream behind what was stored?
				if terr := g.truncatedBefore(info); terr != nil {
					return persistence.SnapshotInfo{}, false, terr
				}
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

// truncatedBefore returns an ErrTruncated error when the stream's last
// transaction of the graph comes before the snapshot info's: the snapshot
// was folded from transactions the store no longer holds. (The store never
// drops a graph's last message of its own accord: Archive keeps it.)
func (g *graphGrain) truncatedBefore(info persistence.SnapshotInfo) error {
	ctx, cancel := context.WithTimeout(g.base, g.cfg.AppendTimeout)
	defer cancel()
	last, err := g.store.LastSeq(ctx, g.graph)
	if err != nil || last >= info.Seq {
		return nil
	}
	return fmt.Errorf("%w: snapshot %s was folded up to seq %d, but the stream holds the graph's transactions only up to seq %d",
		persistence.ErrTruncated, info.Name, info.Seq, last)
}

// fromSnapshot restores info and replays the transactions after it.
func (g *graphGrain) fromSnapshot(info persistence.SnapshotInfo) error {
	restore := func() error {
		ctx, cancel := context.WithTimeout(g.base, g.cfg.AppendTimeout)
		defer cancel()
		st, recent, err := restoreSnapshot(ctx, g.cfg.Snapshots, g.store, g.graph, info, g.cfg.Warm, g.cfg.Trust)
		if err != nil {
			return err
		}
		if err := g.reset(st, recent); err != nil {
			return err
		}
		g.head, g.lastSeq = persistence.Head{N: info.Position, CID: info.Head}, info.Seq
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
	s := g.core.State()
	return g.sinceSnap >= g.cfg.SnapshotInterval(s.NodeCount()+s.EdgeCount())
}

// maybeSnapshot snapshots the state when snapshotDue and no snapshot write
// is in flight. It must only run with no batch in flight: the state then
// holds exactly lastSeq.
func (g *graphGrain) maybeSnapshot() {
	if g.cfg.Snapshots == nil || !g.loaded || g.core.InFlight() || g.lastSeq == 0 || !g.snapshotDue() {
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
	if now := time.Now(); (g.snapBackoff > 0 && now.Before(g.snapRetryAt)) || now.Before(g.snapNotBefore) {
		return
	}
	g.snapshot()
}

// maxSnapshotSpacing bounds GrainConfig.SnapshotSpacing's and
// ProjectionConfig.SnapshotSpacing's wait: a write that was slow for once
// (a store that answered late) does not put the next off for long.
const maxSnapshotSpacing = time.Minute

// spacedAfter returns when the snapshot after one started at started and
// taking took may start under spacing (GrainConfig.SnapshotSpacing,
// ProjectionConfig.SnapshotSpacing).
func spacedAfter(started time.Time, took time.Duration, spacing int) time.Time {
	return started.Add(min(time.Duration(spacing)*took, maxSnapshotSpacing))
}

// snapWrite is one snapshot write; err is set before done is closed.
type snapWrite struct {
	done   chan struct{}
	err    error
	events int // events the snapshot covered since the one before
	// started is when the grain froze the state; took, set before done
	// is closed, how long freezing, encoding and writing took.
	started time.Time
	took    time.Duration
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
		g.snapNotBefore = spacedAfter(g.snapWrite.started, g.snapWrite.took, g.cfg.SnapshotSpacing)
	}
	g.snapWrite = nil
}

// snapshot freezes the state here, in the actor (the only part that blocks
// commands: O(pages), well under a millisecond at 1M nodes and 3M edges),
// and encodes, compresses and stores it on another goroutine while the
// state moves on (its pages are copied before they are written).
func (g *graphGrain) snapshot() {
	start := time.Now()
	capture, err := g.core.State().Freeze()
	replies := g.core.Window().List()
	took := time.Since(start)
	g.cfg.Metrics.SnapshotPause(took)
	c := &g.kind.stats
	c.encodeTotal.Add(int64(took))
	for {
		old := c.encodeMax.Load()
		if int64(took) <= old || c.encodeMax.CompareAndSwap(old, int64(took)) {
			break
		}
	}
	if err != nil {
		c.writeErrors.Add(1)
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "snapshot capture failed", slog.Uint64("seq", g.lastSeq), slog.String("err", err.Error()))
		return
	}
	g.log.LogAttrs(context.Background(), slog.LevelDebug, "snapshot captured", slog.Uint64("seq", g.lastSeq), slog.Duration("blocked", took))
	info := persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: g.graph, Seq: g.lastSeq, Position: g.head.N, Head: g.head.CID, Format: AggregateSnapshotFormat}
	w := &snapWrite{done: make(chan struct{}), events: g.sinceSnap, started: start}
	g.sinceSnap = 0
	g.snapWrite = w
	g.snapsStored++
	// A stopping grain's last snapshot prunes only past SnapshotKeep + 1,
	// so that activations that stop again before their first snapshot do
	// not pile snapshots up.
	prune := g.snapsStored > g.cfg.SnapshotKeep && (!g.stopping || g.snapsStored > g.cfg.SnapshotKeep+1)
	if prune {
		g.snapsStored = g.cfg.SnapshotKeep
	}
	g.kind.writes.Add(1)
	go func() {
		defer g.kind.writes.Done()
		defer close(w.done)
		defer func() { w.took = time.Since(start) }()
		type encoded struct {
			data []byte
			err  error
		}
		pool := buffersOf(g.cfg.Snapshots)
		lent := pool.Get(capture.SizeHint())
		// writeSnapshot keeps no reference to the data once it returns.
		defer pool.Put(lent)
		e, err := encodePaced(g.base, g.cfg.Snapshots, func(step wire.Step) encoded {
			data, err := capture.AppendMarshal(lent, replies, step)
			return encoded{data, err}
		})
		data, err := e.data, errors.Join(err, e.err)
		if err != nil {
			c.writeErrors.Add(1)
			g.log.LogAttrs(context.Background(), slog.LevelWarn, "snapshot encoding failed", slog.Uint64("seq", info.Seq), slog.String("err", err.Error()))
			w.err = err
			return
		}
		w.err = g.writeSnapshot(info, data, prune)
	}()
}

// writeSnapshot stores data and, when prune, the graph's older snapshots
// past SnapshotKeep.
func (g *graphGrain) writeSnapshot(info persistence.SnapshotInfo, data []byte, prune bool) error {
	start := time.Now()
	c := &g.kind.stats
	ctx, cancel := context.WithTimeout(g.base, max(g.cfg.AppendTimeout, 30*time.Second))
	defer cancel()
	stored, err := g.cfg.Snapshots.Put(ctx, info, data)
	if err != nil {
		c.writeErrors.Add(1)
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "snapshot write failed", slog.Uint64("seq", info.Seq), slog.String("err", err.Error()))
		return err
	}
	c.written.Add(1)
	c.bytes.Add(uint64(len(data)))
	c.lastWritten.Store(time.Now().UnixNano())
	g.cfg.Metrics.SnapshotWritten(len(data))
	g.log.LogAttrs(context.Background(), slog.LevelDebug, "snapshot written", slog.String("snapshot", stored.Name), slog.Int("bytes", len(data)),
		slog.Int64("stored", stored.Stored), slog.Duration("took", time.Since(start)))
	if !prune {
		return nil
	}
	if _, err := g.cfg.Snapshots.Prune(ctx, persistence.KindAggregate, g.graph, g.cfg.SnapshotKeep); err != nil {
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "snapshot prune failed", slog.String("err", err.Error()))
	}
	return nil
}

// finalSnapshot, as the grain stops, waits for the snapshot write in flight
// and snapshots what was applied since, waiting for that write too, at most
// AppendTimeout in all. That write prunes older snapshots only when the
// graph would hold more than SnapshotKeep + 1: a drain of many grains then
// costs one Put each, and the graph holds at most SnapshotKeep + 1
// snapshots until the first snapshot after its next activation prunes. A snapshot not written (the wait ran out, the store
// failed) loses nothing acknowledged: the next activation replays the
// events from the stream.
//
// A grain of a fenced member (Fence refuses) neither waits nor writes: it
// writes nothing more, and the member must stop its grains at once to
// join again (a paused member's snapshot writes hung for the whole
// AppendTimeout, and its rejoin with them).
func (g *graphGrain) finalSnapshot() {
	if g.cfg.Snapshots == nil {
		return
	}
	if g.cfg.Fence != nil && g.cfg.Fence() != nil {
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
	if !wait() || !g.loaded || g.sinceSnap == 0 || g.lastSeq == 0 || g.core.InFlight() {
		return
	}
	g.snapshot()
	wait()
}

type readFunc func(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error)

// replay folds the graph's transactions from stream sequence from on,
// checking the chain as it goes. It has no limit on its whole length, so
// that a large history always activates; it fails when the store goes
// AppendTimeout without delivering a transaction.
//
// Reading, decoding and checking run on a goroutine of their own, a few
// transactions ahead of the fold, which runs on the grain's: the two take
// about the same time per event, so with a CPU free a replay takes about
// half as long.
func (g *graphGrain) replay(read readFunc, from uint64) error {
	ctx, cancel := context.WithCancelCause(g.base)
	defer cancel(nil)
	errStalled := fmt.Errorf("no transaction read for %v", g.cfg.AppendTimeout)
	watchdog := time.AfterFunc(g.cfg.AppendTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	chain := persistence.NewChainAt(g.graph, g.head, persistence.WithTrust(g.cfg.Trust))
	start := time.Now()
	checked := make(chan checkedTx, replayAhead)
	type result struct {
		last uint64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer close(checked)
		last, err := read(ctx, g.graph, from, func(r persistence.Record) error {
			watchdog.Reset(g.cfg.AppendTimeout)
			c, err := foldable(g.graph, chain, r)
			if err != nil {
				return err
			}
			select {
			case checked <- c:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
		done <- result{last, err}
	}()
	n := 0
	var foldErr error
	for c := range checked {
		if foldErr != nil {
			continue // drain: the reader stops at ctx
		}
		if err := g.core.Fold(c.stored); err != nil {
			foldErr = fmt.Errorf("replay %s: seq %d: %w: %w", g.graph, c.stored.Seq, errInconsistent, err)
			cancel(foldErr)
			continue
		}
		// The reader may have waited on the fold: progress either way.
		watchdog.Reset(g.cfg.AppendTimeout)
		g.head, g.lastSeq = c.head, c.stored.Seq
		g.sinceSnap += len(c.stored.Events)
		g.kind.stats.replayedTransactions.Add(1)
		g.kind.stats.replayedEvents.Add(uint64(len(c.stored.Events)))
		n++
	}
	res := <-done
	if foldErr != nil {
		return foldErr
	}
	last, err := res.last, res.err
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		return fmt.Errorf("replay %s: %w", g.graph, err)
	}
	if last > g.lastSeq {
		return fmt.Errorf("replay %s: read stopped at seq %d before the last seq %d", g.graph, g.lastSeq, last)
	}
	if last < g.lastSeq {
		// The store lost what it acknowledged (or what a trusted snapshot
		// was folded from): a purge or a deletion behind the engine's back.
		return fmt.Errorf("replay %s: %w: the stream holds the graph's transactions only up to seq %d, but seq %d was stored",
			g.graph, persistence.ErrTruncated, last, g.lastSeq)
	}
	if n > 0 {
		g.log.LogAttrs(context.Background(), slog.LevelDebug, "replayed", slog.Int("transactions", n), slog.Uint64("last_seq", g.lastSeq), slog.Duration("took", time.Since(start)))
	}
	return nil
}

// replayAhead is how many checked transactions a replay's reader may hold
// ahead of the fold.
const replayAhead = 8

// checkedTx is a stored transaction whose chain link was checked, ready to
// fold, with the chain's head after it.
type checkedTx struct {
	stored aggregate.Stored
	head   persistence.Head
}

// foldable checks record r against chain and turns it into what the core
// folds.
func foldable(graph string, chain *persistence.Chain, r persistence.Record) (checkedTx, error) {
	evs, err := chain.Check(r.Seq, r.Tx)
	if err != nil {
		return checkedTx{}, err
	}
	events := make([]*cairnv1.Event, len(evs))
	for i := range evs {
		events[i] = evs[i].Event
	}
	heads := make([]aggregate.Head, 0, len(r.Tx.GetCommands()))
	i := 0
	for _, cr := range r.Tx.GetCommands() {
		if cr.GetEventCount() == 0 {
			return checkedTx{}, fmt.Errorf("replay %s seq %d: %w: command %q records no events", graph, r.Seq, errInconsistent, cr.GetCommandId())
		}
		i += int(cr.GetEventCount())
		if i > len(evs) {
			return checkedTx{}, fmt.Errorf("replay %s seq %d: %w: commands record more events than the transaction holds", graph, r.Seq, errInconsistent)
		}
		heads = append(heads, aggregate.Head{N: evs[i-1].Envelope.N, CID: persistence.CIDString(evs[i-1].CID)})
	}
	return checkedTx{
		stored: aggregate.Stored{Seq: r.Seq, TxID: r.Tx.GetTxId(), Commands: r.Tx.GetCommands(), Events: events, Heads: heads},
		head:   chain.Head(),
	}, nil
}

// replyTo is where an answer goes: the sender's PID (a future, local or
// remote) or, for a local caller, its command, answered on its channel.
type replyTo struct {
	pid   *actor.PID
	local *localCommand
	// span, when the command is traced, is its grain span: it ends when
	// the command is answered.
	span trace.Span
}

func (t replyTo) send(ctx actor.Context, rep *cairnv1.CommandReply) {
	if t.span != nil {
		tracing.End(t.span, rep.GetError())
	}
	switch {
	case t.local != nil:
		t.local.answer(rep)
	case t.pid != nil:
		ctx.Send(t.pid, rep)
	}
}

// localCommand is an envelope from a caller on this member, answered on its
// channel: no future, timer or registry entry per command.
type localCommand struct {
	env *cairnv1.CommandEnvelope
	// done gets a value once rep holds the answer (buffered, capacity 1):
	// a channel of empty values is one allocation, one of pointers two.
	done chan struct{}
	rep  *cairnv1.CommandReply
	// parent is the caller's span context when tracing is on (nil off).
	parent *trace.SpanContext
}

// answer gives the command its reply; it is called once.
func (c *localCommand) answer(rep *cairnv1.CommandReply) {
	c.rep = rep
	c.done <- struct{}{}
}

// startSpan starts the grain span of env, the child of its caller's span
// parent; it ends when env is answered (replyTo.send).
func (g *graphGrain) startSpan(env *cairnv1.CommandEnvelope, parent trace.SpanContext, kind trace.SpanKind) trace.Span {
	_, sp := g.cfg.Tracer.Start(trace.ContextWithSpanContext(context.Background(), parent), tracing.SpanGrain, trace.WithSpanKind(kind),
		trace.WithAttributes(tracing.GraphAttr(g.graph), tracing.CommandAttr(env.GetCommandId())))
	return sp
}

// appendSpan starts the span of job's append when any of its commands is
// traced: the child of the first traced command's grain span, linked to
// each of them (a group commit appends many commands as one
// transaction). Nil when none is.
func (g *graphGrain) appendSpan(job *appendJob) trace.Span {
	var links []trace.Link
	job.batch.Waiters(func(w replyTo) {
		if w.span != nil {
			links = append(links, trace.Link{SpanContext: w.span.SpanContext()})
		}
	})
	if len(links) == 0 {
		return nil
	}
	_, sp := g.cfg.Tracer.Start(trace.ContextWithSpanContext(context.Background(), links[0].SpanContext), tracing.SpanAppend,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(links...),
		trace.WithAttributes(tracing.GraphAttr(g.graph), attribute.String("cairn.tx_id", job.tx.GetTxId()),
			attribute.Int("cairn.commands", len(job.tx.GetCommands())), attribute.Int("cairn.events", len(job.tx.GetEvents())),
			attribute.Int64("cairn.expected_seq", int64(g.lastSeq))))
	return sp
}

func (g *graphGrain) receive(ctx actor.Context, env *cairnv1.CommandEnvelope, sender replyTo) {
	if q := g.cfg.Quarantined; q != nil && g.loaded {
		// Quarantined since it loaded (the projections' audit found the
		// history purged, say): write nothing more on it.
		if err := q(g.graph); err != nil {
			g.quarantined = true
			g.kind.stats.quarantine(g.graph, err)
			sender.send(ctx, aggregate.ErrorReply(env, dataLoss(g.graph, err)))
			return
		}
		if g.quarantined { // repaired
			g.quarantined = false
			g.kind.stats.release(g.graph)
		}
	}
	if !g.loaded {
		if err := aggregate.ValidateEnvelope(env); err != nil {
			sender.send(ctx, aggregate.ErrorReply(env, aggregate.AsCommandError(err)))
			return
		}
		if err := g.load(); err != nil {
			ce := unavailable("graph %s could not be loaded: %v", g.graph, err)
			if isDataLoss(err) {
				ce = dataLoss(g.graph, err)
			}
			sender.send(ctx, aggregate.ErrorReply(env, ce))
			return
		}
	}
	g.do(ctx, g.core.Propose(env, sender))
}

// do carries out what a step of the core asks: answers, a reload, an
// append.
func (g *graphGrain) do(ctx actor.Context, rd aggregate.Ready[replyTo]) {
	for {
		g.send(ctx, rd)
		switch {
		case rd.Reload:
			// Another writer moved the graph on: fold what it stored, then
			// the core decides its envelopes once more.
			g.log.LogAttrs(context.Background(), slog.LevelInfo, "append conflict; reloading", slog.Uint64("expected_seq", g.lastSeq))
			err := g.replay(g.store.Read, g.lastSeq+1)
			if err != nil {
				// The state may be half folded: decide nothing more on it
				// (an append could succeed unseen by the next full load).
				g.loaded = false
				if isDataLoss(err) {
					g.dataLoss(err)
					err = dataLoss(g.graph, err)
				}
			}
			if err == nil {
				g.countState()
			}
			rd = g.core.Reloaded(err)
			if err != nil {
				g.send(ctx, rd)
				return
			}
		case rd.Append != nil:
			job, err := g.seal(rd.Append)
			if err != nil {
				rd = g.core.Appended(aggregate.AppendResult{Err: err})
				continue
			}
			g.inflight = job
			g.startAppend(ctx, job)
			return
		default:
			return
		}
	}
}

func (g *graphGrain) send(ctx actor.Context, rd aggregate.Ready[replyTo]) {
	for _, a := range rd.Answers {
		for _, to := range a.To {
			to.send(ctx, a.Reply)
		}
	}
}

// seal turns a batch into a transaction chained to the head.
func (g *graphGrain) seal(b *aggregate.Batch[replyTo]) (*appendJob, error) {
	now := time.Now().UnixNano()
	txID := nuid.Next()
	recs, last, err := persistence.Seal(g.graph, txID, now, g.head, b.Events)
	if err != nil {
		return nil, err
	}
	job := &appendJob{batch: b}
	job.tx = &job.stored
	job.tx.GraphId, job.tx.TxId, job.tx.TimestampUnixNano, job.tx.Events, job.tx.Commands = g.graph, txID, now, recs, b.Commands
	if g.cfg.Signer != nil {
		if err := g.cfg.Signer.SignTransaction(job.tx); err != nil {
			return nil, err
		}
	}
	job.sealed = persistence.Sealed{Events: b.Events, Prev: g.head, Head: last}
	job.heads = job.head1[:0]
	i := 0
	for k, cr := range b.Commands {
		i += int(cr.GetEventCount())
		if k == len(b.Commands)-1 {
			// Seal parsed the last one.
			job.heads = append(job.heads, last)
			break
		}
		_, id, err := cid.CidFromBytes(recs[i-1].GetCid())
		if err != nil {
			return nil, err
		}
		job.heads = append(job.heads, persistence.Head{N: g.head.N + uint64(i), CID: id})
	}
	return job, nil
}

// leaderWatcher is an EventStore that says when its stream elects a
// leader (persistence.Store.LeaderElected): an append refused for want of
// one is sent again then, not at the end of its back-off.
type leaderWatcher interface {
	LeaderElected() <-chan struct{}
}

// appendBackoff is the first pause before an append is published again.
const appendBackoff = 50 * time.Millisecond

// maxAppendBackoff caps the pause between two tries: a stream leader
// elected while the pause doubled to seconds waited for it (the last
// graphs answered 6 s after the election in bench failover).
const maxAppendBackoff = 250 * time.Millisecond

func (g *graphGrain) startAppend(ctx actor.Context, job *appendJob) {
	job.done.Add(1)
	job.g, job.self, job.sys, job.expected = g, ctx.Self(), ctx.ActorSystem(), g.lastSeq
	if g.cfg.Tracer != nil {
		job.sp = g.appendSpan(job)
	}
	job.start = time.Now()
	job.deadline = job.start.Add(g.cfg.AppendTimeout)
	// Asked before the first try: an election during it wakes the retry.
	if w, ok := g.store.(leaderWatcher); ok {
		job.elected = w.LeaderElected()
	}
	if job.sp != nil {
		g.kind.appends.Go(job.tries)
		return
	}
	// The first try goes out from here, and its acknowledgement comes
	// back to the grain with no goroutine waiting for it; a try that is
	// to be repeated goes on on the pool.
	if g.cfg.Fence != nil {
		if err := g.cfg.Fence(); err != nil {
			job.finish(0, err)
			return
		}
	}
	g.store.AppendAsync(g.base, min(g.appendPerTry(), time.Until(job.deadline)), g.graph, job.expected, job.tx, &job.sealed, job.acked)
}

// acked takes the outcome of the first try of job's append: an
// ErrUnavailable is tried again on the pool.
func (j *appendJob) acked(seq uint64, err error) {
	if err == nil || !errors.Is(err, persistence.ErrUnavailable) {
		j.finish(seq, err)
		return
	}
	j.first = err
	j.g.kind.appends.Go(j.tries)
}

// tries runs job's tries (after the first, when j.first holds its
// error) and finishes it.
func (j *appendJob) tries() {
	actx := j.g.base
	if j.sp != nil {
		// The store sends the span's traceparent with the transaction.
		actx = trace.ContextWithSpan(actx, j.sp)
	}
	j.finish(j.g.appendTries(actx, j))
}

// finish records the outcome of j's append and sends j back to its grain.
func (j *appendJob) finish(seq uint64, err error) {
	j.g.cfg.Metrics.Append(time.Since(j.start), len(j.tx.GetCommands()), err != nil && !errors.Is(err, persistence.ErrConflict))
	if j.sp != nil {
		if err != nil {
			j.sp.SetStatus(codes.Error, err.Error())
		}
		j.sp.SetAttributes(attribute.Int64("cairn.seq", int64(seq)))
		j.sp.End()
	}
	j.result = appendDone{seq: seq, err: err}
	j.done.Done()
	j.sys.Root.Send(j.self, j)
}

// appendPerTry is the time each try of an append gets: a publish to a
// stream leader that died is never acknowledged, and the retry (same
// transaction id, de-duplicated) reaches the new leader.
func (g *graphGrain) appendPerTry() time.Duration {
	return max(time.Second, g.cfg.AppendTimeout/time.Duration(g.cfg.AppendRetries+1))
}

// appendTries appends job's transaction, trying again after an
// ErrUnavailable until job.deadline, at once when job.elected (the store's
// LeaderElected, asked before the first try) closes; job.first, when not
// nil, is the ErrUnavailable of a first try already made. No context or
// timer per try: the store's time-outs are shared, coarse ones
// (AppendWithin).
func (g *graphGrain) appendTries(actx context.Context, job *appendJob) (uint64, error) {
	var seq uint64
	err := job.first
	deadline, elected := job.deadline, job.elected
	pause := appendBackoff
	for attempt := 0; ; {
		if err == nil {
			if g.cfg.Fence != nil {
				if err = g.cfg.Fence(); err != nil {
					break
				}
			}
			seq, err = g.store.AppendWithin(actx, min(g.appendPerTry(), time.Until(deadline)), g.graph, job.expected, job.tx, &job.sealed)
			if err == nil || !errors.Is(err, persistence.ErrUnavailable) {
				break
			}
		}
		// A refusal for want of a leader (an election: seconds) is
		// sent again until the deadline, at once when the stream
		// elects one: answered UNAVAILABLE, the commands would come
		// back only after their clients' back-off. Other failures
		// count against AppendRetries.
		if !errors.Is(err, persistence.ErrNoLeader) {
			if attempt++; attempt > g.cfg.AppendRetries {
				break
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-t.C:
		case <-elected:
			if w, ok := g.store.(leaderWatcher); ok {
				elected = w.LeaderElected()
			}
			pause = appendBackoff / 2 // doubled below
		case <-g.base.Done():
		}
		t.Stop()
		if g.base.Err() != nil || !time.Now().Before(deadline) {
			break
		}
		pause = min(2*pause, maxAppendBackoff)
		err = nil
	}
	return seq, err
}

func (g *graphGrain) appended(ctx actor.Context, job *appendJob, d appendDone) {
	g.inflight = nil
	res := aggregate.AppendResult{Seq: d.seq, TxID: job.tx.GetTxId(), Err: d.err, Conflict: errors.Is(d.err, persistence.ErrConflict)}
	if res.Conflict {
		g.kind.stats.appendConflicts.Add(1)
	}
	if errors.Is(d.err, persistence.ErrTooLarge) {
		// The estimate the core budgets with bounds the stored size, so this
		// is a store whose limit shrank; retrying would not help.
		res.Err = aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, "commands", "%v", d.err)
	}
	if d.err == nil {
		g.lastSeq = d.seq
		g.head = job.heads[len(job.heads)-1]
		g.sinceSnap += len(job.tx.GetEvents())
		res.Heads = job.res1[:]
		if len(job.heads) != len(job.res1) {
			res.Heads = make([]aggregate.Head, len(job.heads))
		}
		for i, h := range job.heads {
			res.Heads[i] = aggregate.Head{N: h.N, CID: persistence.CIDString(h.CID)}
		}
	}
	rd := g.core.Appended(res)
	if d.err == nil {
		g.countState()
	}
	if rd.Reload {
		g.do(ctx, rd)
		return
	}
	g.send(ctx, rd)
	g.maybeSnapshot()
	g.do(ctx, g.core.Flush())
}

// countState brings the grains' node and edge counts up to this grain's
// state.
func (g *graphGrain) countState() {
	if g.core == nil {
		return
	}
	s := g.core.State()
	g.count(int64(s.NodeCount()), int64(s.EdgeCount()))
}

// count sets this grain's share of the grains' node and edge counts.
func (g *graphGrain) count(nodes, edges int64) {
	if nodes != g.nodes {
		g.kind.stats.nodes.Add(nodes - g.nodes)
		g.nodes = nodes
	}
	if edges != g.edges {
		g.kind.stats.edges.Add(edges - g.edges)
		g.edges = edges
	}
}

// stateProbe asks a grain for its state as aggregate.Export gives it, with
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
	if g.core.InFlight() {
		m.reply <- probed{err: fmt.Errorf("graph %s has an append in flight", g.graph)}
		return
	}
	if m.headOnly {
		m.reply <- probed{head: g.head, seq: g.lastSeq}
		return
	}
	m.reply <- probed{snap: aggregate.Export(g.core.State(), g.core.Window().List()), head: g.head, seq: g.lastSeq}
}
