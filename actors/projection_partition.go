package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// Partitioned projections: a cluster member's read models follow its
// graphs.
//
// With ProjectionConfig.Partition set, each member holds the read models
// of the graphs it owns (Partition.Owns, the graph grains' placement), not
// of every graph. The reader still follows the whole stream, from where it
// ended when the engine started, undecoded (persistence.Store.FollowRaw),
// and hands each transaction to its graph's shard, which decodes only those
// of the graphs it holds or owns and skips the others (their positions
// still count: WaitFor, watermarks). A graph a shard owns but does not hold
// is adopted: a goroutine loads its newest read-model snapshot that the
// event store confirms (whichever member wrote it), folds its transactions
// after the snapshot up to the shard's position from the event store, and
// hands the read model to the shard, which then applies what came
// meanwhile. Queries for the graph wait for that. A graph is adopted when:
//
//   - one of its transactions reaches the shard and it does not start the
//     graph's chain (it was created before, or moved here);
//   - a query for it reaches this member (queries are routed to the
//     owner, see Engine.Query; one routed by a member with an older view
//     of the cluster is answered here all the same);
//   - the membership changes (Rebalance): every graph of the stream's
//     census that this member owns and does not hold.
//
// At most Partition.Adoptions adoptions run at once, so that a member
// taking over a third of the graphs after a failover does not load them
// all at once; the others wait their turn (Health counts the waits).
// The transactions that reach a graph during its adoption are held as
// stored, up to Partition.HoldBytes; past that they are let go, and when
// the load ends the adoption folds them from the event store instead
// (Health counts these refolds), so that a slow adoption under heavy
// writes holds a bounded amount of memory.
//
// A graph held but owned by another member for Partition.DropAfter is
// dropped, giving its memory back. Snapshot rounds write the held graphs
// under a manifest series of the member's own (Partition.Series), so that
// members never prune or overwrite each other's manifests; a member's
// prune keeps every snapshot a kept manifest of any live member names,
// and deletes the manifests of series whose member is gone (Partition.Live).
// A restarted member starts with a fresh member id, so a fresh series: its
// graphs are adopted from their newest snapshots, whoever wrote them.

// Partition configures partitioned projections (ProjectionConfig.Partition).
type Partition struct {
	// Owns reports whether this engine owns graph now: false for every
	// graph while it has not joined its cluster.
	Owns func(graph string) bool
	// Series returns the manifest series the snapshot rounds write now
	// (MemberSeries of this member's id), "" while there is none: no round
	// runs then.
	Series func() string
	// Live reports whether a manifest series belongs to a member of the
	// cluster now; a series that is not is deleted by the next prune. It
	// must answer true when it cannot tell.
	Live func(series string) bool
	// DropAfter is how long a graph held but owned by another member is
	// kept before it is dropped (a membership change can be undone a
	// moment later). Default 30 seconds.
	DropAfter time.Duration
	// Adoptions bounds the adoptions that run at once. Default
	// 2 x GOMAXPROCS, at least 4.
	Adoptions int
	// HoldBytes bounds the transactions (as stored) held for one graph
	// while it is being adopted. Default 16 MiB.
	HoldBytes int

	adoptGate func(graph string) // tests: called as an adoption starts its load
}

func (c *Partition) validate() error {
	var errs []error
	if c.Owns == nil || c.Series == nil || c.Live == nil {
		errs = append(errs, errors.New("partition: Owns, Series and Live must all be set"))
	}
	if c.DropAfter < 0 {
		errs = append(errs, fmt.Errorf("partition: drop-after %v must not be negative", c.DropAfter))
	}
	if c.Adoptions < 0 {
		errs = append(errs, fmt.Errorf("partition: adoptions %d must not be negative", c.Adoptions))
	}
	if c.HoldBytes < 0 {
		errs = append(errs, fmt.Errorf("partition: hold-bytes %d must not be negative", c.HoldBytes))
	}
	return errors.Join(errs...)
}

// MemberSeries returns the manifest series of the cluster member id.
func MemberSeries(id string) string { return ManifestSeries + "/" + id }

// SeriesMember returns the member id of a manifest series that
// MemberSeries made, false for any other.
func SeriesMember(series string) (string, bool) {
	id, ok := strings.CutPrefix(series, ManifestSeries+"/")
	return id, ok && id != ""
}

// partState is the bookkeeping of partitioned projections.
type partState struct {
	*Partition
	sem chan struct{} // adoption slots

	adoptions, fromSnapshot, failures, waits, dropped, refolds atomic.Uint64
	maxNs, lastNs                                              atomic.Int64
}

// newPartState applies c's defaults.
func newPartState(c *Partition) *partState {
	cp := *c
	if cp.DropAfter == 0 {
		cp.DropAfter = 30 * time.Second
	}
	if cp.Adoptions == 0 {
		cp.Adoptions = max(2*runtime.GOMAXPROCS(0), 4)
	}
	if cp.HoldBytes == 0 {
		cp.HoldBytes = 16 << 20
	}
	return &partState{Partition: &cp, sem: make(chan struct{}, cp.Adoptions)}
}

// adoption is a graph being adopted.
type adoption struct {
	upTo    uint64                 // the stream position it is folded up to
	pending []persistence.Followed // its transactions after upTo, in order, as stored
	bytes   int                    // pending's size as stored
	// overflowed: pending passed HoldBytes and was let go; the
	// transactions after upTo are folded from the event store when the
	// load ends.
	overflowed bool
	waiters    []*runQuery // queries waiting for it
}

// heldOverhead is what a held transaction counts for against HoldBytes
// besides the message as stored (its Followed).
const heldOverhead = 160

// hold holds f, which reached the graph during its adoption, undecoded
// (it is decoded when applied), or lets it and every held one go once
// they pass limit bytes.
func (ad *adoption) hold(f persistence.Followed, limit int) {
	if ad.overflowed {
		return
	}
	ad.bytes += len(f.Data) + heldOverhead
	if f.Sealed != nil {
		ad.bytes += f.Sealed.Bytes()
	}
	if ad.bytes > limit {
		ad.pending, ad.bytes, ad.overflowed = nil, 0, true
		return
	}
	ad.pending = append(ad.pending, f)
}

// Messages of a shard actor for partitioned projections.
type (
	// adopted hands the shard an adopted read model.
	adopted struct {
		graph string
		e     *projected // the entry the adoption was started for
		g     *readmodel.Graph
		head  persistence.Head
		snap  persistence.SnapshotInfo // Name empty when none was used
		// held: see projected.held (not known when adopted from a
		// snapshot: a graph's snapshot does not say).
		held int64
		// absent: the store holds no transaction of the graph up to upTo.
		absent bool
		// failed is the stream sequence of the transaction that failed
		// its check or apply (err then quarantines the graph); 0 with
		// err set: the store could not be read (the adoption is dropped,
		// and tried again when next needed).
		failed uint64
		err    error
	}
	// adoptGraph asks the shard to adopt graph unless it holds it.
	adoptGraph struct{ graph string }
	// sweepGraphs asks the shard to drop the graphs another member has
	// owned for DropAfter.
	sweepGraphs struct{ now time.Time }
)

// put enters graph's entry.
func (a *shardActor) put(graph string, e *projected) {
	if _, ok := a.graphs[graph]; !ok {
		a.shard.held.Add(1)
	}
	a.graphs[graph] = e
}

// drop removes graph's entry.
func (a *shardActor) drop(graph string) {
	if _, ok := a.graphs[graph]; ok {
		a.shard.held.Add(-1)
		delete(a.graphs, graph)
	}
	if a.cache != nil {
		a.cache.Forget(graph)
	}
}

// startAdopt enters graph as being adopted up to stream sequence upTo and
// starts the adoption.
func (a *shardActor) startAdopt(graph string, upTo uint64) *projected {
	e := &projected{adopt: &adoption{upTo: upTo}}
	a.put(graph, e)
	go a.p.adopt(a, graph, e, upTo, nil)
	return e
}

// park holds a query back while its graph is being adopted, and starts the
// adoption of a graph this shard does not hold (a query for it reached
// this member, which may own it without having seen a transaction of it
// yet). It reports whether the query was parked. Time-travel queries do
// not come here.
func (a *shardActor) park(m *runQuery) bool {
	if a.p.part == nil {
		return false
	}
	e := a.graphs[m.req.GetGraphId()]
	if e == nil {
		if _, ok := a.absent[m.req.GetGraphId()]; ok {
			return false // known to have no transaction yet: NOT_FOUND
		}
		e = a.startAdopt(m.req.GetGraphId(), a.seq)
	}
	if e.adopt == nil {
		return false
	}
	e.adopt.waiters = append(e.adopt.waiters, m)
	return true
}

// adopted installs an adopted read model, applies the transactions that
// came meanwhile and answers the queries that waited.
func (a *shardActor) adopted(m *adopted) {
	defer a.p.NotifyAdoptions()
	e := a.graphs[m.graph]
	if e != m.e || e.adopt == nil {
		return // dropped meanwhile
	}
	ad := e.adopt
	e.adopt = nil
	switch {
	case m.err == nil && ad.overflowed:
		// More came meanwhile than it could hold: fold that from the
		// event store, from where the load ended up to the shard's
		// position, and come back here. The queries keep waiting.
		e.adopt = &adoption{upTo: a.seq, waiters: ad.waiters}
		a.p.part.refolds.Add(1)
		go a.p.adopt(a, m.graph, e, a.seq, m)
		return
	case m.err != nil && m.failed == 0:
		// The store could not be read: forget the graph, so that its next
		// transaction, query or rebalance adopts it again.
		a.drop(m.graph)
		for _, q := range ad.waiters {
			q.reply <- &cairnv1.QueryReply{AsOfSeq: a.seq, Error: unavailable("graph %s: its read model could not be loaded here: %v", m.graph, m.err).Proto()}
		}
		return
	case m.absent && len(ad.pending) == 0 && e.stopped == nil:
		a.drop(m.graph) // no such graph (yet): queries answer NOT_FOUND
		a.markAbsent(m.graph)
	default:
		e.g, e.head, e.snap, e.held = m.g, m.head, m.snap, m.held
		e.restored = m.snap.Name != ""
		if e.g == nil {
			e.g, _ = readmodel.New(m.graph, a.p.cfg.ReadModel)
		}
		if m.err != nil && e.stopped == nil {
			e.stopped = &ProjectionStoppedError{Graph: m.graph, Seq: m.failed, Err: m.err}
			a.p.fail(e.stopped)
		}
		for _, f := range ad.pending {
			f.Decode()
			a.applyTo(e, f)
		}
	}
	for _, q := range ad.waiters {
		q.reply <- a.answer(q.req)
	}
}

// AdoptionsChanged returns a channel closed when the next adoption ends
// (its read model installed, or given up) or NotifyAdoptions is called: a
// request that found graphs being adopted waits on it to look again.
func (p *Projections) AdoptionsChanged() <-chan struct{} {
	p.adoptMu.Lock()
	defer p.adoptMu.Unlock()
	if p.adoptCh == nil {
		p.adoptCh = make(chan struct{})
	}
	return p.adoptCh
}

// NotifyAdoptions closes the channel AdoptionsChanged returned.
func (p *Projections) NotifyAdoptions() {
	p.adoptMu.Lock()
	defer p.adoptMu.Unlock()
	if p.adoptCh != nil {
		close(p.adoptCh)
		p.adoptCh = nil
	}
}

// maxAbsent bounds a shard's set of graphs known to have no transaction.
const maxAbsent = 4096

// markAbsent notes that graph has no transaction up to the shard's
// position, so that the next query for it answers NOT_FOUND without
// reading the store again (a flood of queries for graphs that do not exist
// would otherwise read it for each). Any transaction of graph that reaches
// the shard forgets it (apply).
func (a *shardActor) markAbsent(graph string) {
	if a.absent == nil || len(a.absent) >= maxAbsent {
		a.absent = make(map[string]struct{})
	}
	a.absent[graph] = struct{}{}
}

// sweep drops the graphs another member has owned for DropAfter.
func (a *shardActor) sweep(now time.Time) {
	part := a.p.part
	for id, e := range a.graphs {
		switch {
		case e.adopt != nil:
		case part.Owns(id):
			e.unowned = time.Time{}
		case e.unowned.IsZero():
			e.unowned = now
		case now.Sub(e.unowned) >= part.DropAfter:
			a.drop(id)
			part.dropped.Add(1)
			if e.stopped != nil {
				// Its owner finds what stopped it when it adopts it; this
				// member's grains no longer refuse it for that.
				a.p.forget(id)
			}
		}
	}
}

// adopt loads graph's read model as of stream sequence upTo, in its turn
// (partState.sem), and hands it to a. With from set it folds the
// transactions after from's read model instead of loading one (a refold:
// see adoption.overflowed).
func (p *Projections) adopt(a *shardActor, graph string, e *projected, upTo uint64, from *adopted) {
	part := p.part
	select {
	case part.sem <- struct{}{}:
	default:
		part.waits.Add(1)
		select {
		case part.sem <- struct{}{}:
		case <-p.life.Done():
			return
		}
	}
	defer func() { <-part.sem }()
	if part.adoptGate != nil {
		part.adoptGate(graph)
	}
	start := time.Now()
	m := p.loadAdopted(a, graph, upTo, from)
	m.e = e
	took := time.Since(start)
	part.adoptions.Add(1)
	part.lastNs.Store(int64(took))
	for {
		prev := part.maxNs.Load()
		if int64(took) <= prev || part.maxNs.CompareAndSwap(prev, int64(took)) {
			break
		}
	}
	if m.snap.Name != "" {
		part.fromSnapshot.Add(1)
	}
	if m.err != nil {
		part.failures.Add(1)
		p.log.LogAttrs(p.life, slog.LevelWarn, "adopting a graph's read model failed",
			slog.String("graph", graph), slog.Uint64("up_to", upTo), slog.String("err", m.err.Error()))
	}
	p.root.Send(a.shard.pid, m)
}

// loadAdopted builds graph's read model as of upTo: its newest read-model
// snapshot at or before upTo that loads and that the event store confirms
// (or from's read model), then its later transactions from the event
// store.
func (p *Projections) loadAdopted(a *shardActor, graph string, upTo uint64, from *adopted) *adopted {
	m := &adopted{graph: graph}
	ctx, cancel := context.WithTimeout(p.life, prefixTimeout)
	defer cancel()
	tmp := &projected{}
	if from != nil {
		tmp.g, tmp.head, tmp.held, m.snap = from.g, from.head, from.held, from.snap
	} else if p.cfg.Snapshots != nil {
		infos, err := inTries(ctx, func(ctx context.Context) ([]persistence.SnapshotInfo, error) {
			return p.cfg.Snapshots.List(ctx, persistence.KindReadModel, graph)
		})
		if err != nil && ctx.Err() == nil {
			p.log.LogAttrs(ctx, slog.LevelWarn, "listing a graph's read-model snapshots failed; folding it from the event store",
				slog.String("graph", graph), slog.String("err", err.Error()))
		}
		for _, info := range infos {
			if info.Seq > upTo {
				continue
			}
			g, err := inTries(ctx, func(ctx context.Context) (*readmodel.Graph, error) { return p.loadReadModel(ctx, info) })
			if err != nil {
				p.snap.fallbacks.Add(1)
				p.log.LogAttrs(ctx, slog.LevelWarn, "read-model snapshot not restorable; trying an older one",
					slog.String("graph", graph), slog.String("snapshot", info.Name), slog.String("err", err.Error()))
				continue
			}
			tmp.g, tmp.head, tmp.held, m.snap = g, persistence.Head{N: info.Position, CID: info.Head}, -1, info
			p.snap.index.add(info)
			break
		}
	}
	if tmp.g == nil {
		tmp.g, _ = readmodel.New(graph, p.cfg.ReadModel)
	}
	m.g = tmp.g
	st := p.cfg.Store
	if st == nil {
		m.head, m.held = tmp.head, tmp.held
		m.absent = m.snap.Name == ""
		if m.absent && upTo > 0 {
			// Without a store only new graphs can be followed.
			m.err = fmt.Errorf("graph %s: its transactions up to seq %d are not in this engine and the projections have no event store to read them from", graph, upTo)
		}
		return m
	}
	if next := m.g.AsOf() + 1; next <= upTo {
		m.failed, m.err = a.foldRange(st, tmp, next, upTo)
	}
	m.head, m.held = tmp.head, tmp.held
	m.absent = m.err == nil && tmp.head.N == 0
	return m
}

// adoptSnapshotTry bounds one try to load a read-model snapshot for an
// adoption. Reading an object makes a consumer, which takes the JetStream
// meta leader: a request sent to one that was just killed is never
// answered, and the next try reaches the new leader.
const adoptSnapshotTry = 5 * time.Second

// adoptSnapshotTries is how many tries a snapshot listing or read gets
// while the store does not answer (one that fails its checks gets one).
const adoptSnapshotTries = 3

// inTries runs f in tries of adoptSnapshotTry, adoptSnapshotTries at
// most, while a try times out or finds the store unavailable.
func inTries[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	var v T
	var err error
	for range adoptSnapshotTries {
		tctx, cancel := context.WithTimeout(ctx, adoptSnapshotTry)
		v, err = f(tctx)
		timedOut := tctx.Err() != nil
		cancel()
		if err == nil || ctx.Err() != nil || !(timedOut || errors.Is(err, persistence.ErrUnavailable)) {
			break
		}
	}
	return v, err
}

// Rebalance adopts every graph of the stream's census that this engine
// owns and does not hold, and starts a sweep of the graphs it no longer
// owns. The engine calls it when the cluster's membership changes.
// Without a partition it does nothing.
func (p *Projections) Rebalance(ctx context.Context) error {
	if p.part == nil {
		return nil
	}
	p.Sweep()
	st, ok := p.cfg.Store.(Auditor)
	if !ok {
		return nil
	}
	c, err := st.Census(ctx)
	if err != nil {
		return fmt.Errorf("rebalance: %w", err)
	}
	for g := range c.Graphs {
		if p.part.Owns(g) {
			p.root.Send(p.shards[p.Shard(g)].pid, &adoptGraph{graph: g})
		}
	}
	return nil
}

// Sweep asks every shard to drop the graphs another member has owned for
// DropAfter.
func (p *Projections) Sweep() {
	if p.part == nil {
		return
	}
	now := time.Now()
	for _, sh := range p.shards {
		p.root.Send(sh.pid, &sweepGraphs{now: now})
	}
}

// sweepEvery runs Sweep every DropAfter/2 until ctx ends.
func (p *Projections) sweepEvery(ctx context.Context) {
	t := time.NewTicker(max(p.part.DropAfter/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.Sweep()
		}
	}
}

// partHealth returns the partition part of Health, nil without one.
func (p *Projections) partHealth() *api.PartitionHealth {
	part := p.part
	if part == nil {
		return nil
	}
	h := &api.PartitionHealth{Adoptions: part.adoptions.Load(), FromSnapshot: part.fromSnapshot.Load(), Failures: part.failures.Load(),
		Waits: part.waits.Load(), Dropped: part.dropped.Load(), Refolds: part.refolds.Load(), LastAdoptMs: ms(time.Duration(part.lastNs.Load())),
		MaxAdoptMs: ms(time.Duration(part.maxNs.Load())), Series: part.Series()}
	for _, sh := range p.shards {
		h.Graphs += int(sh.held.Load())
	}
	return h
}
