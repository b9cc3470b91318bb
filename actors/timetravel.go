package actors

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-freelru"
	"github.com/ipfs/go-cid"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// Time travel: a query with as_of runs on a point-in-time view of its
// graph, outside the shard actors. The point is resolved to a stream
// sequence (seq as is, a time through HistoryStore.SeqAtTime, a CID through
// HistoryStore.FindEvent, which also gives the event's chain position: the
// view then ends with that very event, mid-transaction if need be). The view
// is built from the nearest earlier base (a cached view, cloned, or the
// newest trusted read-model snapshot at or before the point, else an empty
// graph) plus the graph's transactions after it, read from the event store.
// Views are cached in a bounded LRU keyed by (graph, seq, position); one
// build per key runs at a time and concurrent askers wait for it. The
// snapshots fetched (decompressed and verified) are kept too, bounded by
// bytes, so that builds near one snapshot fetch it once; a snapshot's head
// is checked against the event store while its payload is fetched.
//
// A seq or time point past the graph's head (HistoryStore.LastHead) is
// the head: every such query shares the head's cached view. Builds are
// bounded (ProjectionConfig.ViewBuilds at once, ViewBuildBytes of
// estimated views in flight): a query that finds no room waits up to
// ViewBuildWait and is then refused as RESOURCE_EXHAUSTED naming the limit.
// The engine gives time travel an event store on a NATS connection of its
// own, so that a flood of builds reading the stream cannot make the
// service's connection a slow consumer.

// HistoryStore is what time travel, snapshot verification and archived
// prefixes need from the event store; *persistence.Store is one.
type HistoryStore interface {
	// Read calls fn for each of graph's transactions from fromSeq on, in
	// order, across archive and stream; an error from fn stops it.
	Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error)
	// CheckHead reports whether graph's transaction at seq ends with head.
	CheckHead(ctx context.Context, graph string, seq uint64, head persistence.Head) error
	// SeqAtTime returns the highest stream sequence stored at or before t.
	SeqAtTime(ctx context.Context, graph string, t time.Time) (uint64, error)
	// FindEvent returns the stream sequence and chain position of graph's
	// event c.
	FindEvent(ctx context.Context, graph string, c cid.Cid) (seq, position uint64, err error)
	// LastHead returns the stream sequence of graph's last transaction
	// and its head (0 and a zero head when it has none).
	LastHead(ctx context.Context, graph string) (uint64, persistence.Head, error)
}

var _ HistoryStore = (*persistence.Store)(nil)

// viewKey names a view: graph up to stream sequence seq, or, when position
// is not 0, up to the event at that chain position (in the transaction at
// seq).
type viewKey struct {
	graph         string
	seq, position uint64
}

// view is a point-in-time read model. Read models are not safe for
// concurrent use: mu guards g and answers.
type view struct {
	mu   sync.Mutex
	g    *readmodel.Graph
	seq  uint64           // the last transaction folded (0: none)
	head persistence.Head // the last event folded
	// whole is true when the view ends at a transaction's end: only such a
	// view can be the base of another.
	whole   bool
	answers map[cacheKey]*cairnv1.QueryReply
}

// cidKey names an event of a graph.
type cidKey struct{ graph, cid string }

// cidEntries bounds the CID resolution cache.
const cidEntries = 4096

// viewAnswers bounds the answers a view keeps.
const viewAnswers = 256

// build is a view being built; its askers wait on done.
type build struct {
	done chan struct{}
	v    *view
	err  *aggregate.CommandError
}

// timeTravel is the time-travel side of a Projections.
type timeTravel struct {
	p        *Projections
	mu       sync.Mutex
	lru      *freelru.LRU[viewKey, *view] // nil when off
	byGraph  map[string]map[viewKey]*view // the cached views, by graph
	building map[viewKey]*build
	// cids caches FindEvent's answers (a CID's place never changes), so
	// that a series of queries at one CID scans the graph's history once.
	cids *freelru.SyncedLRU[cidKey, viewKey]

	// snaps keeps recently fetched read-model snapshots.
	snaps *snapCache
	// gate bounds the builds in flight.
	gate *buildGate
	// scratch holds *[]byte buffers that views were cloned through
	// (encoded, then decoded): fresh ones cost page faults.
	scratch sync.Pool

	queries, hits, builds, fromSnap, fromView, bad, snapHits, refused atomic.Uint64
	lastBuild, baseNs, replayNs                                       atomic.Int64

	lastMu sync.Mutex
	last   api.TimeTravelBuild
}

func newTimeTravel(p *Projections) (*timeTravel, error) {
	tt := &timeTravel{p: p, byGraph: map[string]map[viewKey]*view{}, building: map[viewKey]*build{}, snaps: newSnapCache(p.cfg.ViewSnapshotBytes),
		gate: newBuildGate(p.cfg.ViewBuilds, p.cfg.ViewBuildBytes, p.cfg.ViewBuildWait)}
	var err error
	if tt.cids, err = freelru.NewSynced[cidKey, viewKey](cidEntries, func(k cidKey) uint32 { return uint32(maphash.Comparable(cacheSeed, k)) }); err != nil {
		return nil, fmt.Errorf("time-travel CID cache: %w", err)
	}
	if n := p.cfg.ViewCacheEntries; n > 0 {
		lru, err := freelru.New[viewKey, *view](uint32(n), func(k viewKey) uint32 { return uint32(maphash.Comparable(cacheSeed, k)) })
		if err != nil {
			return nil, fmt.Errorf("time-travel view cache: %w", err)
		}
		lru.SetOnEvict(func(k viewKey, _ *view) { // under tt.mu
			if m := tt.byGraph[k.graph]; m != nil {
				delete(m, k)
				if len(m) == 0 {
					delete(tt.byGraph, k.graph)
				}
			}
		})
		tt.lru = lru
	}
	return tt, nil
}

func (tt *timeTravel) health() api.TimeTravelHealth {
	h := api.TimeTravelHealth{Queries: tt.queries.Load(), ViewHits: tt.hits.Load(), Builds: tt.builds.Load(), FromSnapshot: tt.fromSnap.Load(),
		FromView: tt.fromView.Load(), BadSnapshots: tt.bad.Load(), LastBuildMs: ms(time.Duration(tt.lastBuild.Load())),
		BaseMs: ms(time.Duration(tt.baseNs.Load())), ReplayMs: ms(time.Duration(tt.replayNs.Load())), SnapshotHits: tt.snapHits.Load()}
	h.CachedSnapshots, h.CachedSnapshotBytes = tt.snaps.stats()
	h.Refused = tt.refused.Load()
	h.Building, h.BuildingBytes = tt.gate.stats()
	tt.lastMu.Lock()
	h.Last = tt.last
	tt.lastMu.Unlock()
	tt.mu.Lock()
	if tt.lru != nil {
		h.Cached = tt.lru.Len()
	}
	tt.mu.Unlock()
	return h
}

// validateAsOf checks a query's as_of.
func (p *Projections) validateAsOf(a *cairnv1.AsOf) *aggregate.CommandError {
	switch pt := a.GetPoint().(type) {
	case *cairnv1.AsOf_Seq:
		if pt.Seq == 0 {
			return invalid("as_of.seq", "sequence 0 names no point: stream sequences start at 1")
		}
	case *cairnv1.AsOf_TimeUnixNano:
		if pt.TimeUnixNano <= 0 {
			return invalid("as_of.time_unix_nano", "time %d is not after the Unix epoch", pt.TimeUnixNano)
		}
	case *cairnv1.AsOf_Cid:
		if _, err := cid.Decode(pt.Cid); err != nil {
			return invalid("as_of.cid", "%q is not a CID: %v", pt.Cid, err)
		}
	default:
		return invalid("as_of", "give a seq, a time_unix_nano or a cid")
	}
	if p.cfg.Store == nil {
		return failedPrecondition("as_of", "time travel is off: the projections were started without an event store to replay from")
	}
	return nil
}

// query answers an as_of query; req is valid and ctx bounded.
func (tt *timeTravel) query(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	tt.queries.Add(1)
	key, events, cerr := tt.resolve(ctx, req)
	if cerr != nil {
		return &cairnv1.QueryReply{Error: cerr.Proto()}
	}
	// notYet answers a point before the graph's first transaction: NOT_FOUND,
	// unless its history does not start at the chain's start (DATA_LOSS).
	notYet := func() *cairnv1.QueryReply {
		if err := tt.startsWhole(ctx, key.graph); err != nil {
			return &cairnv1.QueryReply{Error: storeError(key.graph, "graph_id", "read its first transaction", err).Proto()}
		}
		return &cairnv1.QueryReply{Error: notFound("graph_id", "graph %s has no transactions at that point (%v)", key.graph, req.GetAsOf()).Proto()}
	}
	if key.seq == 0 {
		return notYet()
	}
	v, cerr := tt.view(ctx, key, events)
	if cerr != nil {
		if cerr.Code == cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED {
			tt.refused.Add(1)
		}
		return &cairnv1.QueryReply{Error: cerr.Proto()}
	}
	v.mu.Lock()
	empty := v.seq == 0
	v.mu.Unlock()
	if empty {
		return notYet()
	}
	return tt.answer(v, req)
}

// resolve turns req's as_of into a view key, and bounds the events the
// view holds (its chain position, or the graph's head's). A seq or time
// past the graph's last transaction resolves to that transaction, so that
// the key names a view no later write can change: every key it returns can
// be cached.
func (tt *timeTravel) resolve(ctx context.Context, req *cairnv1.QueryRequest) (viewKey, uint64, *aggregate.CommandError) {
	st, graph := tt.p.cfg.Store, req.GetGraphId()
	key := viewKey{graph: graph}
	switch pt := req.GetAsOf().GetPoint().(type) {
	case *cairnv1.AsOf_Seq:
		key.seq = pt.Seq
	case *cairnv1.AsOf_TimeUnixNano:
		seq, err := st.SeqAtTime(ctx, graph, time.Unix(0, pt.TimeUnixNano))
		if err != nil {
			return key, 0, storeError(graph, "as_of.time_unix_nano", fmt.Sprintf("find the stream sequence at %s", time.Unix(0, pt.TimeUnixNano).UTC()), err)
		}
		key.seq = seq
	case *cairnv1.AsOf_Cid:
		c, err := cid.Decode(pt.Cid)
		if err != nil {
			return key, 0, invalid("as_of.cid", "%q is not a CID: %v", pt.Cid, err)
		}
		ck := cidKey{graph: graph, cid: c.KeyString()}
		if k, ok := tt.cids.Get(ck); ok {
			return k, k.position, nil
		}
		seq, pos, err := st.FindEvent(ctx, graph, c)
		if err != nil {
			return key, 0, storeError(graph, "as_of.cid", "find event "+pt.Cid, err)
		}
		key.seq, key.position = seq, pos
		tt.cids.Add(ck, key)
		return key, pos, nil
	}
	last, head, err := st.LastHead(ctx, graph)
	if err != nil {
		return key, 0, storeError(graph, "as_of", "find the graph's head", err)
	}
	key.seq = min(key.seq, last)
	return key, head.N, nil
}

// storeError classifies an event-store error of a time-travel query.
func storeError(graph, field, what string, err error) *aggregate.CommandError {
	msg := fmt.Sprintf("graph %s: %s: %v", graph, what, err)
	switch {
	case isDataLoss(err):
		return dataLoss(graph, err)
	case errors.Is(err, persistence.ErrNotFound):
		return notFound(field, "%s", msg)
	case errors.Is(err, persistence.ErrUnavailable):
		return unavailable("%s", msg)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, Message: msg}
	}
	return &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Message: msg}
}

// view returns key's view: cached, being built by another asker, or built
// now, once the build gate lets a view of events events in.
func (tt *timeTravel) view(ctx context.Context, key viewKey, events uint64) (*view, *aggregate.CommandError) {
	tt.mu.Lock()
	if tt.lru != nil {
		if v, ok := tt.lru.Get(key); ok {
			tt.mu.Unlock()
			tt.hits.Add(1)
			return v, nil
		}
	}
	if b := tt.building[key]; b != nil {
		tt.mu.Unlock()
		select {
		case <-b.done:
			if b.err != nil && b.err.Code == cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED && ctx.Err() == nil {
				// The builder's deadline ran out, not ours: build it again.
				return tt.view(ctx, key, events)
			}
			return b.v, b.err
		case <-ctx.Done():
			return nil, &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
				Message: fmt.Sprintf("graph %s: the view as of seq %d was not built in time (%v)", key.graph, key.seq, context.Cause(ctx))}
		}
	}
	b := &build{done: make(chan struct{})}
	tt.building[key] = b
	base := tt.nearest(key)
	tt.mu.Unlock()

	size := estimateView(events)
	if b.err = tt.gate.acquire(ctx, key, size); b.err == nil {
		start := time.Now()
		b.v, b.err = tt.build(ctx, key, base)
		tt.gate.release(size)
		tt.builds.Add(1)
		tt.lastBuild.Store(int64(time.Since(start)))
	}
	tt.mu.Lock()
	delete(tt.building, key)
	if b.err == nil && tt.lru != nil {
		tt.lru.Add(key, b.v)
		if tt.lru.Contains(key) {
			m := tt.byGraph[key.graph]
			if m == nil {
				m = map[viewKey]*view{}
				tt.byGraph[key.graph] = m
			}
			m[key] = b.v
		}
	}
	tt.mu.Unlock()
	close(b.done)
	return b.v, b.err
}

// nearest returns the cached whole view of key's graph that ends closest
// before key's point, nil when none; under tt.mu.
func (tt *timeTravel) nearest(key viewKey) *view {
	limit := key.seq
	if key.position != 0 {
		limit-- // the target's own transaction is applied event by event
	}
	var best *view
	for _, v := range tt.byGraph[key.graph] {
		if v.whole && v.seq <= limit && (best == nil || v.seq > best.seq) {
			best = v
		}
	}
	return best
}

// build folds key's view from the nearest base plus the event store. The
// transactions after the planned base are read and decoded in the
// background while the base loads.
func (tt *timeTravel) build(ctx context.Context, key viewKey, base *view) (*view, *aggregate.CommandError) {
	start := time.Now()
	p, graph := tt.p, key.graph
	limit := key.seq
	if key.position != 0 {
		limit-- // the target's own transaction is applied event by event
	}
	// The read-model snapshots after the cached base (if any) and at or
	// before the point, newest first.
	var cands []persistence.SnapshotInfo
	if p.cfg.Snapshots != nil {
		for _, info := range p.snap.index.get(graph) {
			if base != nil && info.Seq <= base.seq {
				break
			}
			if info.Seq <= limit {
				cands = append(cands, info)
			}
		}
	}
	planned := uint64(0)
	switch {
	case len(cands) > 0:
		planned = cands[0].Seq
	case base != nil:
		planned = base.seq
	}
	fetch, stop := tt.prefetch(ctx, graph, planned+1, key.seq)
	defer func() { stop() }()

	var st api.TimeTravelBuild
	v := &view{whole: true, answers: map[cacheKey]*cairnv1.QueryReply{}}
	for _, info := range cands {
		g, hit, fetched, err := tt.loadSnapshot(ctx, info)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			tt.bad.Add(1)
			p.log.LogAttrs(ctx, slog.LevelWarn, "read-model snapshot skipped for time travel",
				slog.String("graph", graph), slog.String("snapshot", info.Name), slog.String("err", err.Error()))
			continue
		}
		v.g, v.seq, v.head = g, info.Seq, persistence.Head{N: info.Position, CID: info.Head}
		st.From, st.FetchMs = "snapshot", ms(fetched.Sub(start))
		if hit {
			st.From = "cached-snapshot"
			tt.snapHits.Add(1)
		}
		tt.fromSnap.Add(1)
		break
	}
	if v.g == nil && base != nil {
		buf, _ := tt.scratch.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
		}
		base.mu.Lock()
		*buf = base.g.AppendSnapshot((*buf)[:0])
		v.seq, v.head = base.seq, base.head
		base.mu.Unlock()
		g, err := readmodel.LoadSnapshot(*buf, p.cfg.ReadModel) // does not retain it
		tt.scratch.Put(buf)
		if err != nil {
			return nil, &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Message: fmt.Sprintf("graph %s: clone the view as of seq %d: %v", graph, base.seq, err)}
		}
		v.g, st.From = g, "view"
		tt.fromView.Add(1)
	}
	if v.g == nil {
		// New fails only on an invalid config, which NewProjections refused.
		g, err := readmodel.New(graph, p.cfg.ReadModel)
		if err != nil {
			return nil, &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Message: fmt.Sprintf("graph %s: %v", graph, err)}
		}
		v.g, v.seq, v.head, st.From = g, 0, persistence.Head{}, "empty"
	}
	if v.seq != planned {
		// The planned snapshot did not load: read from the base we got.
		stop()
		fetch, stop = tt.prefetch(ctx, graph, v.seq+1, key.seq)
	}
	replayStart := time.Now()
	st.BaseSeq, st.LoadMs = v.seq, ms(replayStart.Sub(start))-st.FetchMs
	tt.baseNs.Add(int64(replayStart.Sub(start)))
	n, err := tt.replay(v, key, fetch)
	st.Replayed, st.ReplayMs = n, ms(time.Since(replayStart))
	tt.replayNs.Add(int64(time.Since(replayStart)))
	tt.lastMu.Lock()
	tt.last = st
	tt.lastMu.Unlock()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err() // the read may have stopped short: never keep that view
	}
	if err != nil {
		if ce := storeError(graph, "", fmt.Sprintf("replay up to seq %d", key.seq), err); ce.Code != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
			return nil, ce
		}
		return nil, &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Message: fmt.Sprintf("graph %s: replay up to seq %d: %v", graph, key.seq, err)}
	}
	return v, nil
}

// loadSnapshot loads the read-model snapshot info, from the snapshot cache
// when it holds it (hit), else fetched (and verified) from the store and
// then cached; fetched is when its payload was at hand.
func (tt *timeTravel) loadSnapshot(ctx context.Context, info persistence.SnapshotInfo) (g *readmodel.Graph, hit bool, fetched time.Time, err error) {
	key := snapKey{graph: info.Graph, seq: info.Seq, position: info.Position}
	data := tt.snaps.get(key)
	hit = data != nil
	if !hit {
		if data, err = tt.p.fetchReadModel(ctx, info); err != nil {
			return nil, false, time.Time{}, err
		}
	}
	fetched = time.Now()
	if g, err = tt.p.decodeReadModel(info, data); err != nil {
		return nil, hit, fetched, err
	}
	if !hit {
		tt.snaps.add(key, data) // decoded and verified: worth keeping
	}
	return g, hit, fetched, nil
}

// fetched is one transaction read and decoded by prefetch, or the read's
// error.
type fetched struct {
	rec persistence.Record
	d   decodedTx
	err error
}

// prefetch reads and decodes graph's transactions from seq from up to seq
// to in the background; stop ends it.
func (tt *timeTravel) prefetch(ctx context.Context, graph string, from, to uint64) (<-chan fetched, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan fetched, 64)
	go func() {
		defer close(ch)
		_, err := tt.p.cfg.Store.Read(ctx, graph, from, func(rec persistence.Record) error {
			if rec.Seq > to {
				return errStopReplay
			}
			// Checked here as far as it can be without the base's head;
			// replay checks where each transaction links to.
			d, err := decodeChecked(tt.p.cfg.Trust, graph, rec.Seq, rec.Tx)
			if err != nil {
				return err
			}
			select {
			case ch <- fetched{rec: rec, d: d}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && !errors.Is(err, errStopReplay) {
			select {
			case ch <- fetched{err: err}:
			case <-ctx.Done():
			}
		}
	}()
	// Stopping waits for the goroutine: it closes ch, and once ctx is
	// cancelled it blocks on nothing.
	return ch, func() {
		cancel()
		for range ch {
		}
	}
}

// replay folds the fetched transactions onto v up to key's point and
// returns how many it folded.
func (tt *timeTravel) replay(v *view, key viewKey, fetch <-chan fetched) (n int, err error) {
	for f := range fetch {
		if f.err != nil {
			return n, f.err
		}
		rec, d := f.rec, f.d
		if rec.Seq <= v.seq {
			continue
		}
		if err := d.linksTo(v.g.ID(), rec.Seq, v.head); err != nil {
			return n, err
		}
		n++
		if key.position == 0 || rec.Seq < key.seq {
			if err := safeApply(v.g, rec.Seq, rec.Tx.GetTimestampUnixNano(), d.events); err != nil {
				return n, fmt.Errorf("seq %d: %w", rec.Seq, err)
			}
			v.seq, v.head = rec.Seq, d.head
			continue
		}
		// The target transaction: its events up to the target position.
		for i, ev := range d.events {
			if d.position(i) > key.position {
				v.whole = false
				break
			}
			if err := v.g.Apply(rec.Seq, ev); err != nil {
				return n, fmt.Errorf("seq %d event %d: %w", rec.Seq, i, err)
			}
			c, err := cid.Cast(rec.Tx.GetEvents()[i].GetCid())
			if err != nil {
				return n, fmt.Errorf("seq %d event %d: cid: %w: %v", rec.Seq, i, persistence.ErrMalformed, err)
			}
			v.seq, v.head = rec.Seq, persistence.Head{N: d.position(i), CID: c}
		}
		if ts := rec.Tx.GetTimestampUnixNano(); ts != 0 && v.seq == rec.Seq {
			v.g.NoteTime(ts)
		}
		return n, nil
	}
	return n, nil
}

// startsWhole returns an error wrapping persistence.ErrTruncated when
// graph's first transaction in archive and stream is not its chain's first:
// a point before it is then not "before the graph existed" but history gone
// (an archive object deleted, a purge).
func (tt *timeTravel) startsWhole(ctx context.Context, graph string) error {
	_, err := tt.p.cfg.Store.Read(ctx, graph, 1, func(rec persistence.Record) error {
		if n := firstPosition(rec.Tx); n != 1 {
			return fmt.Errorf("%w: graph %s's first transaction in archive and stream (seq %d) starts at chain position %d, not 1: the transactions before it are gone",
				persistence.ErrTruncated, graph, rec.Seq, n)
		}
		return errStopReplay
	})
	if errors.Is(err, errStopReplay) {
		return nil
	}
	return err
}

// answer runs req on v, through v's own answer cache.
func (tt *timeTravel) answer(v *view, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	graph := req.GetGraphId()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seq == 0 {
		return &cairnv1.QueryReply{Error: notFound("graph_id", "graph %s has no transactions at that point (%v)", graph, req.GetAsOf()).Proto()}
	}
	get := func(k cacheKey) (*cairnv1.QueryReply, bool) { r, ok := v.answers[k]; return r, ok }
	put := func(k cacheKey, r *cairnv1.QueryReply) {
		if len(v.answers) >= viewAnswers {
			clear(v.answers)
		}
		v.answers[k] = r
	}
	return tt.p.answerCached(v.g, req, v.seq, v.head, headCID(v.head), get, put)
}

// snapKey names a read-model snapshot.
type snapKey struct {
	graph         string
	seq, position uint64
}

// snapCache keeps read-model snapshot payloads (decompressed, decoded once
// and verified), bounded by their total size, least recently used out
// first. The payloads are only read (readmodel.LoadSnapshot does not
// retain or change its input), so builds share them.
type snapCache struct {
	mu         sync.Mutex
	limit, sum int64
	order      *list.List // of *snapEntry, most recently used first
	m          map[snapKey]*list.Element
}

type snapEntry struct {
	key  snapKey
	data []byte
}

// newSnapCache returns a cache of at most limit bytes; 0 keeps nothing.
func newSnapCache(limit int64) *snapCache {
	return &snapCache{limit: limit, order: list.New(), m: map[snapKey]*list.Element{}}
}

func (c *snapCache) get(k snapKey) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*snapEntry).data
}

func (c *snapCache) add(k snapKey, data []byte) {
	size := int64(cap(data))
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.limit || c.m[k] != nil {
		return
	}
	for c.sum+size > c.limit {
		old := c.order.Remove(c.order.Back()).(*snapEntry)
		delete(c.m, old.key)
		c.sum -= int64(cap(old.data))
	}
	c.m[k] = c.order.PushFront(&snapEntry{key: k, data: data})
	c.sum += size
}

// stats returns how many snapshots the cache holds and their size.
func (c *snapCache) stats() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.sum
}
