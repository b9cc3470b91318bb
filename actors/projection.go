package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/workers"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// ProjectionConfig tunes the projection shards. DefaultProjectionConfig
// documents every default.
type ProjectionConfig struct {
	// Shards is the number of projection shard actors; graph g goes to shard
	// FNV-1a(g) mod Shards. Default runtime.NumCPU().
	Shards int
	// ReadModel configures each graph's read model.
	ReadModel readmodel.Config
	// QueryTimeout bounds a query (its min_seq wait included) when the
	// caller's ctx has no deadline. Default 10 seconds.
	QueryTimeout time.Duration
	// Traverse caps k-hop and shortest-path queries: a request's own limits
	// may be lower, not higher. Default readmodel.DefaultTraverseLimits().
	Traverse readmodel.TraverseLimits
	// CacheEntries is the number of answers each shard's query cache holds
	// (an LRU, elastic/go-freelru); 0 turns the cache off. Default 4,096.
	CacheEntries int
	// CacheTTL is how long a cached answer is served. Answers are keyed by
	// the graph's version, so a write makes them unreachable at once (and
	// the next answer cached for the graph removes them); the TTL only
	// bounds how long an unused one holds memory. Default 1 minute.
	CacheTTL time.Duration
	// CacheMaxReplyBytes: larger answers are not cached. Default 8 KiB, so
	// that a shard's cache holds at most CacheEntries * 8 KiB (32 MiB).
	CacheMaxReplyBytes int
	// RetryAfter is how long the stream reader waits before following the
	// stream again after it lost it (NATS unreachable). Default 1 second.
	RetryAfter time.Duration
	// Logger. Default: discard.
	Logger *slog.Logger
	// Tracer, when set, traces the application of each transaction whose
	// message carries a traceparent (the append span's child), and the
	// first query answered on its graph after it. Default nil: no spans.
	Tracer trace.Tracer
	// Snapshots stores the read-model snapshots and manifests; nil turns
	// snapshots off (every start rebuilds from the stream start).
	Snapshots SnapshotStore
	// Warm, when set, holds read models decoded at start from local
	// snapshot copies: a restore (or adoption) whose manifest names a
	// snapshot with one takes it instead of fetching and decoding the
	// snapshot; its head is checked against Store the same. Default nil.
	Warm *Warm
	// Store is the event store read for time travel (QueryRequest.as_of),
	// to verify a snapshot's head before trusting it and to fold a graph
	// whose stream prefix was archived; *persistence.Store is one. nil
	// turns time travel off and snapshots are then trusted unverified.
	Store HistoryStore
	// SnapshotEvery is how many events the reader delivers, over all
	// shards, between two snapshot rounds, or a thousandth of the bytes
	// the last round wrote if more (big read models). A round also runs
	// when the reader first catches up with the stream after a rebuild or
	// a tail of at least half that, and on Close. Default 100,000.
	SnapshotEvery int
	// SnapshotSpacing spaces the rounds out in time when they are costly,
	// as GrainConfig.SnapshotSpacing does a grain's snapshots: a round due
	// by SnapshotEvery starts no sooner than SnapshotSpacing times the
	// wall time the last one took after that one started, at most a
	// minute. 0 turns it off. Default 10.
	SnapshotSpacing int
	// SnapshotKeep is how many snapshot rounds (manifests) are kept; every
	// read-model snapshot a kept manifest names is kept. Default 3.
	SnapshotKeep int
	// ViewCacheEntries is how many time-travel views (point-in-time read
	// models) an LRU keeps; 0 turns the cache off. Default 8.
	ViewCacheEntries int
	// ViewSnapshotBytes bounds the read-model snapshots (decompressed and
	// verified) that time travel keeps, by total size, so that views built
	// near one snapshot fetch it once; a snapshot larger than the bound is
	// not kept. 0 turns this cache off. Default 64 MiB.
	ViewSnapshotBytes int64
	// ViewBuilds is how many time-travel views are built at once; a query
	// that needs another build waits (see ViewBuildWait). Default 4.
	ViewBuilds int
	// ViewBuildBytes is the memory budget of the views being built,
	// estimated before each build at ViewBytesPerEvent per event up to its
	// point (the graph's chain position there, or its head's): a build
	// that would pass it waits, and one larger than the whole budget is
	// refused as RESOURCE_EXHAUSTED at once. Cached views are bounded by
	// ViewCacheEntries, not by this. Default 512 MiB (SizeCaches: a
	// quarter of the memory limit).
	ViewBuildBytes int64
	// ViewBuildWait is how long a query waits for a build slot (ViewBuilds,
	// ViewBuildBytes) before it is refused as RESOURCE_EXHAUSTED naming the
	// limit; the query's own deadline may end the wait sooner. Default 2
	// seconds.
	ViewBuildWait time.Duration
	// KeepSnapshotBuffers keeps each graph's snapshot encode buffer (for
	// snapshots of 1 MiB or more) between rounds, its pages mapped, so
	// that the encoding (which runs beside the shard: the shard only
	// captures the graph, see readmodel.Graph.Freeze) takes no page
	// faults, at the price of about 1.25 times the snapshot held in
	// memory for good (130 MB for 1M nodes, more than the read model
	// itself). Default false.
	KeepSnapshotBuffers bool
	// Trust, when set, makes every reader of the projections (the stream
	// reader, a fold of an archived prefix, time travel, repair) check each
	// transaction's signature against it (persistence.WithTrust) besides
	// its chain: a transaction that fails quarantines its graph. Default
	// nil: no signature checks.
	Trust *persistence.Keyring
	// Partition, when set, makes the projections hold the read models of
	// this engine's share of the graphs only, a cluster member's (see
	// projection_partition.go); nil: every graph of the stream.
	Partition *Partition
	// AuditEvery is how often the projections compare the event stream's
	// state (its census: sequence range, messages per graph) with what they
	// applied, when Store is an Auditor: a graph whose history was purged
	// or deleted behind the engine's back is quarantined (DATA_LOSS), the
	// stream's deletion quarantines every graph. With it, the deletion of
	// an archive object in Snapshots' object store quarantines its graph at
	// once. 0 turns both off. Default 5 seconds.
	AuditEvery time.Duration
}

// DefaultProjectionConfig returns the defaults.
func DefaultProjectionConfig() ProjectionConfig {
	return ProjectionConfig{
		Shards:             runtime.NumCPU(),
		ReadModel:          readmodel.DefaultConfig(),
		QueryTimeout:       10 * time.Second,
		Traverse:           readmodel.DefaultTraverseLimits(),
		CacheEntries:       4096,
		CacheTTL:           time.Minute,
		CacheMaxReplyBytes: 8 << 10,
		RetryAfter:         time.Second,
		Logger:             slog.New(slog.DiscardHandler),
		SnapshotEvery:      100_000,
		SnapshotSpacing:    10,
		SnapshotKeep:       3,
		ViewCacheEntries:   8,
		ViewSnapshotBytes:  64 << 20,
		AuditEvery:         5 * time.Second,
		ViewBuilds:         4,
		ViewBuildBytes:     512 << 20,
		ViewBuildWait:      2 * time.Second,
	}
}

// Validate returns every problem with c, joined.
func (c ProjectionConfig) Validate() error {
	var errs []error
	if c.Shards < 1 {
		errs = append(errs, fmt.Errorf("projection shards must be at least 1, not %d", c.Shards))
	}
	if err := c.ReadModel.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, errors.New("query timeout must be positive"))
	}
	if c.Traverse.MaxFrontier < 1 || c.Traverse.MaxResults < 1 {
		errs = append(errs, fmt.Errorf("traverse caps %+v must be at least 1", c.Traverse))
	}
	if c.CacheEntries < 0 || c.CacheEntries > 1<<24 {
		errs = append(errs, fmt.Errorf("query cache entries %d not in 0..%d", c.CacheEntries, 1<<24))
	}
	if c.CacheEntries > 0 && (c.CacheTTL <= 0 || c.CacheMaxReplyBytes <= 0) {
		errs = append(errs, errors.New("query cache TTL and max reply bytes must be positive"))
	}
	if c.RetryAfter <= 0 {
		errs = append(errs, errors.New("projection retry-after must be positive"))
	}
	if c.AuditEvery < 0 {
		errs = append(errs, fmt.Errorf("projection audit-every must be 0 (off) or positive, not %v", c.AuditEvery))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger is nil (use a discard logger)"))
	}
	if c.Partition != nil {
		errs = append(errs, c.Partition.validate())
	}
	if c.Snapshots != nil && c.SnapshotEvery < 1 {
		errs = append(errs, fmt.Errorf("snapshot every %d events: must be at least 1", c.SnapshotEvery))
	}
	if c.SnapshotSpacing < 0 {
		errs = append(errs, fmt.Errorf("snapshot spacing %d: must be 0 (off) or more", c.SnapshotSpacing))
	}
	if c.Snapshots != nil && c.SnapshotKeep < 1 {
		errs = append(errs, fmt.Errorf("snapshot keep %d: must be at least 1", c.SnapshotKeep))
	}
	if c.ViewCacheEntries < 0 || c.ViewCacheEntries > 1<<16 {
		errs = append(errs, fmt.Errorf("view cache entries %d not in 0..%d", c.ViewCacheEntries, 1<<16))
	}
	if c.ViewSnapshotBytes < 0 {
		errs = append(errs, fmt.Errorf("view snapshot bytes %d: must not be negative", c.ViewSnapshotBytes))
	}
	if c.ViewBuilds < 1 {
		errs = append(errs, fmt.Errorf("view builds %d: must be at least 1", c.ViewBuilds))
	}
	if c.ViewBuildBytes < 1 {
		errs = append(errs, fmt.Errorf("view build bytes %d: must be at least 1", c.ViewBuildBytes))
	}
	if c.ViewBuildWait < 0 {
		errs = append(errs, fmt.Errorf("view build wait %v: must not be negative", c.ViewBuildWait))
	}
	return errors.Join(errs...)
}

// Follower delivers the event-store stream in order; *persistence.Store is
// one.
type Follower interface {
	Follow(ctx context.Context, fromSeq uint64, fn func(persistence.Followed) error) error
}

var _ Follower = (*persistence.Store)(nil)

// rawFollower delivers the stream without decoding it (Followed.Data, see
// persistence.Store.FollowRaw); *persistence.Store is one. Partitioned
// projections follow with it when their source is one: a shard decodes
// only the transactions of the graphs it holds or owns (shardActor.apply),
// so each member decodes its own share of the stream, not all of it.
type rawFollower interface {
	FollowRaw(ctx context.Context, fromSeq uint64, fn func(persistence.Followed) error) error
}

var _ rawFollower = (*persistence.Store)(nil)

// Querier answers queries; it always returns a reply, with the failure in
// its error.
type Querier interface {
	Query(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply
}

var _ Querier = (*Projections)(nil)

// NowQuerier is a Querier that can also answer a query that needs no
// wait on the caller's goroutine (Projections.QueryNow): the gateway
// answers such queries on the goroutine that received them, without a
// worker. ok false: the query needs Query.
type NowQuerier interface {
	Querier
	QueryNow(req *cairnv1.QueryRequest) (rep *cairnv1.QueryReply, ok bool)
}

var _ NowQuerier = (*Projections)(nil)

// ErrProjectionStopped is wrapped by *ProjectionStoppedError.
var ErrProjectionStopped = errors.New("projection stopped")

// ProjectionStoppedError says that a graph's projection stopped at a
// transaction it could not apply (a bug or a corrupt message). Its queries
// answer this error until the engine restarts; later transactions of the
// graph are not applied.
type ProjectionStoppedError struct {
	Graph string
	Seq   uint64 // the stream sequence of the transaction that failed
	Err   error
}

func (e *ProjectionStoppedError) Error() string {
	return fmt.Sprintf("projection of graph %s stopped at seq %d: %v", e.Graph, e.Seq, e.Err)
}

// Unwrap returns ErrProjectionStopped and the cause.
func (e *ProjectionStoppedError) Unwrap() []error { return []error{ErrProjectionStopped, e.Err} }

// DataLoss reports whether the projection stopped because the graph's
// stored history failed its check (and not on a read-model bug).
func (e *ProjectionStoppedError) DataLoss() bool { return isDataLoss(e.Err) }

// reply is what queries of the stopped graph answer: DATA_LOSS for a
// history that failed its check, INTERNAL for a read-model bug.
func (e *ProjectionStoppedError) reply() *aggregate.CommandError {
	if e.DataLoss() {
		return dataLoss(e.Graph, e)
	}
	return &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Field: "graph_id", Message: e.Error()}
}

// defaultLimit is a page's size when a query gives none.
const defaultLimit = 100

// watermarkEvery: while the reader is behind the stream, it tells every
// shard its position at least this often (and whenever it catches up), so
// that a min_seq wait on a graph that had no transaction for a while ends.
const watermarkEvery = 1024

// Projections is the read side: one stream reader and N shard actors that
// fold each graph's transactions into its readmodel.Graph and answer
// queries on it.
//
// The reader follows the whole event-store stream from its start with an
// ordered consumer and hands each transaction to its graph's shard, in
// stream order. A shard applies a transaction as a whole (ApplyTx), so a
// query, which runs inside the shard actor between two messages, never sees
// half of one; a redelivered sequence changes nothing.
//
// With ProjectionConfig.Snapshots set, the shards snapshot their read
// models every SnapshotEvery events, all at the same stream position, and
// a manifest names the set (see projection_snapshot.go); Start restores the
// newest valid set and follows the stream from just after it. With
// ProjectionConfig.Store set, queries may ask for a graph as it was at an
// earlier point (time travel, see timetravel.go).
type Projections struct {
	cfg    ProjectionConfig
	log    *slog.Logger
	src    Follower
	root   *actor.RootContext
	shards []*shard
	// workers run the shard actors' mailboxes (poolDispatcher).
	workers *workers.Pool

	cancel  context.CancelFunc
	done    chan struct{}
	closing chan struct{}
	once    sync.Once

	failures atomic.Uint64
	// audits counts audit rounds; lastAuditNs is the last one's duration.
	audits, lastAuditNs atomic.Int64
	auditDone           chan struct{} // closed when the audit stopped (or never ran)
	// lost is set when the audit found the event stream itself gone: every
	// graph answers DATA_LOSS until a restart.
	lost   atomic.Pointer[error]
	hits   atomic.Uint64
	misses atomic.Uint64
	// evictions counts answers the query caches dropped (full, or past
	// their lifetime; not the stale ones a newer version's answer drops);
	// chainFailures the graphs stopped because their
	// stored history failed a check.
	evictions, chainFailures atomic.Uint64
	mu                       sync.Mutex
	stopped                  map[string]*ProjectionStoppedError

	// life ends at Close; the shards' rare reads of the event store (an
	// archived prefix) and the snapshot writes use it.
	life     context.Context
	lifeStop context.CancelFunc
	// ready is closed once Start has handed the restored read models (if
	// any) to the shards; queries wait for it.
	ready chan struct{}
	snap  snapState
	tt    *timeTravel
	// part is set when the projections are partitioned
	// (ProjectionConfig.Partition).
	part *partState
	// adoptMu guards adoptCh, closed (and replaced) when an adoption ends
	// (AdoptionsChanged).
	adoptMu sync.Mutex
	adoptCh chan struct{}
}

// shard is what the reader and queries share with one shard actor.
type shard struct {
	pid    *actor.PID
	held   atomic.Int64  // graphs the shard holds (adopting ones included)
	queued atomic.Int64  // events handed over and not applied yet
	txs    atomic.Uint64 // transactions the shard went through since Start (applied, or passed over as another member's)
	space  chan struct{} // signalled when queued drops to maxQueued or below

	// state guards the shard actor's state (actor): the actor holds it
	// while it handles each message, and a query that needs no wait reads
	// under it on the caller's goroutine (Projections.answerNow) instead of
	// queueing in the mailbox. Readers only TryLock it: one that finds it
	// held takes the mailbox path.
	state sync.Mutex
	actor *shardActor

	mu      sync.Mutex
	applied uint64 // every transaction of the shard up to here is applied
	// changed is closed when applied advances; made by the first waiter
	// (position), so that a shard nobody waits on allocates nothing per
	// transaction.
	changed chan struct{}
}

func (s *shard) advance(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.applied {
		s.applied = seq
		if s.changed != nil {
			close(s.changed)
			s.changed = nil
		}
	}
}

// appliedSeq is position's sequence, without making a channel to wait on.
func (s *shard) appliedSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

func (s *shard) position() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.applied, s.changed
}

// NewProjections spawns cfg.Shards shard actors on system over src; Start
// starts reading.
func NewProjections(system *actor.ActorSystem, src Follower, cfg ProjectionConfig) (*Projections, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("projection config: %w", err)
	}
	if pc, ok := cfg.Snapshots.(Pacer); ok && cfg.ReadModel.Background == nil {
		// The adjacency compactions are paced with the snapshots.
		cfg.ReadModel.Background = pc.Pace()
	}
	p := &Projections{
		cfg: cfg, log: cfg.Logger.With("component", "projections"), src: src, root: system.Root,
		done: make(chan struct{}), closing: make(chan struct{}), stopped: map[string]*ProjectionStoppedError{},
		ready: make(chan struct{}), auditDone: make(chan struct{}), workers: workers.New(workerIdle),
	}
	p.life, p.lifeStop = context.WithCancel(context.Background())
	if cfg.Partition != nil {
		if _, ok := src.(tailer); !ok {
			p.lifeStop()
			return nil, errors.New("projection config: partitioned projections need a source that tells where the stream ends (StreamLastSeq)")
		}
		p.part = newPartState(cfg.Partition)
	}
	if cfg.Snapshots == nil && cfg.Partition == nil {
		close(p.ready) // nothing to restore (partitioned: read closes it once it knows the stream's end)
	}
	var err error
	if p.tt, err = newTimeTravel(p); err != nil {
		p.lifeStop()
		return nil, err
	}
	for i := range cfg.Shards {
		sh := &shard{space: make(chan struct{}, 1)}
		a := &shardActor{p: p, shard: sh, index: i, graphs: map[string]*projected{}}
		sh.actor = a
		if cfg.CacheEntries > 0 {
			if a.cache, err = newQueryCache(cfg, &p.evictions); err != nil {
				p.stopShards(context.Background())
				p.lifeStop()
				return nil, err
			}
		}
		pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return a }, actor.WithDispatcher(poolDispatcher{p.workers})),
			fmt.Sprintf("projection-%d-%p", i, p))
		if err != nil {
			p.stopShards(context.Background())
			p.lifeStop()
			return nil, fmt.Errorf("spawn projection shard %d: %w", i, err)
		}
		sh.pid = pid
		p.shards = append(p.shards, sh)
	}
	return p, nil
}

// Start starts the stream reader; it runs until Close. With snapshots on,
// the reader first restores the newest valid snapshot set (queries wait
// until it is in the shards) and follows the stream from just after it.
func (p *Projections) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.read(ctx)
	if p.part != nil {
		go p.sweepEvery(ctx)
	}
	if st, ok := p.cfg.Store.(Auditor); ok && p.cfg.AuditEvery > 0 {
		var wg sync.WaitGroup
		wg.Go(func() { p.audit(ctx, st) })
		if o, ok := p.cfg.Snapshots.(interface{ Objects() jetstream.ObjectStore }); ok {
			wg.Go(func() { p.watchArchives(ctx, o.Objects()) })
		}
		go func() {
			wg.Wait()
			close(p.auditDone)
		}()
	} else {
		close(p.auditDone)
	}
}

// Shard returns the shard index of graph.
func (p *Projections) Shard(graph string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(graph))
	return int(h.Sum32() % uint32(len(p.shards)))
}

func (p *Projections) read(ctx context.Context) {
	defer close(p.done)
	switch {
	case p.part != nil:
		// Each graph is adopted when needed; the reader follows what
		// comes after the stream's end now.
		if !p.findTail(ctx) {
			return
		}
		close(p.ready)
		if p.cfg.Snapshots != nil {
			p.fillIndex(ctx)
		}
	case p.cfg.Snapshots != nil:
		p.restore(ctx)
		close(p.ready)
		start := time.Now()
		p.fillIndex(ctx)
		p.log.LogAttrs(ctx, slog.LevelDebug, "read-model snapshots listed", slog.Duration("took", time.Since(start)))
	}
	follow := p.src.Follow
	if r, ok := p.src.(rawFollower); ok && p.part != nil {
		follow = r.FollowRaw
	}
	next, sinceMark, caughtUp := p.snap.resumed+1, 0, false
	for {
		followStart := time.Now()
		err := follow(ctx, next, func(f persistence.Followed) error {
			if !caughtUp && f.Pending == 0 {
				p.log.LogAttrs(ctx, slog.LevelDebug, "projections caught up", slog.Uint64("seq", f.Seq), slog.Duration("took", time.Since(followStart)))
			}
			if err := p.deliver(ctx, f); err != nil {
				return err
			}
			next = f.Seq + 1
			first := f.Pending == 0 && !caughtUp
			if sinceMark++; f.Pending == 0 || sinceMark >= watermarkEvery {
				p.watermark(f.Seq, first)
				caughtUp = caughtUp || f.Pending == 0
				sinceMark = 0
			}
			p.delivered(f, first, caughtUp)
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		p.log.LogAttrs(ctx, slog.LevelWarn, "following the event stream failed; retrying",
			slog.Uint64("next_seq", next), slog.String("err", err.Error()))
		t := time.NewTimer(p.cfg.RetryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// tailer tells where the stream ends; *persistence.Store is one.
type tailer interface {
	StreamLastSeq(ctx context.Context) (uint64, error)
}

// findTail sets the reader's resume point to the stream's last sequence,
// retrying until it is known; false when ctx ended first.
func (p *Projections) findTail(ctx context.Context) bool {
	for {
		seq, err := p.src.(tailer).StreamLastSeq(ctx)
		if err == nil {
			p.snap.resumed = seq
			for _, sh := range p.shards {
				p.root.Send(sh.pid, &watermark{seq: seq})
			}
			return true
		}
		p.log.LogAttrs(ctx, slog.LevelWarn, "finding the event stream's end failed; retrying", slog.String("err", err.Error()))
		t := time.NewTimer(p.cfg.RetryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// deliver hands f to its graph's shard, waiting while that shard already
// has more than maxQueued events to apply: a reader far ahead of a slow
// shard holds back instead of buffering the stream in memory. (A single
// transaction larger than that goes when the shard's queue is empty.)
func (p *Projections) deliver(ctx context.Context, f persistence.Followed) error {
	sh := p.shards[p.Shard(f.Graph)]
	n := int64(max(f.Events(), 1))
	for q := sh.queued.Load(); q > 0 && q+n > maxQueued; q = sh.queued.Load() {
		select {
		case <-sh.space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	sh.queued.Add(n)
	p.root.Send(sh.pid, &deliverTx{f: f, events: n})
	return nil
}

// maxQueued bounds the events handed to one shard and not yet applied.
const maxQueued = 65536

// watermark tells every shard that the reader has handed out everything up
// to seq: once a shard has processed the message, it has applied all of its
// transactions up to seq. With caughtUp (the first time the reader reaches
// the end of the stream) the shards also compact their read models.
func (p *Projections) watermark(seq uint64, caughtUp bool) {
	for _, sh := range p.shards {
		p.root.Send(sh.pid, &watermark{seq: seq, caughtUp: caughtUp})
	}
}

// Ready reports whether Start has restored the read models (or found
// none to restore) and queries are answered.
func (p *Projections) Ready() bool {
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

// Stopped returns the graphs whose projection stopped, by graph id.
func (p *Projections) Stopped() map[string]*ProjectionStoppedError {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]*ProjectionStoppedError, len(p.stopped))
	for k, v := range p.stopped {
		out[k] = v
	}
	return out
}

// Quarantined returns the error that stopped graph's projection when its
// stored history failed a check (a *ProjectionStoppedError that isDataLoss),
// nil otherwise: a GrainConfig.Quarantined.
func (p *Projections) Quarantined(graph string) error {
	if err := p.lost.Load(); err != nil {
		return *err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.stopped[graph]; e != nil && e.DataLoss() {
		return e
	}
	return nil
}

// Failures counts transactions that could not be applied.
func (p *Projections) Failures() uint64 { return p.failures.Load() }

// Health returns the projections' health.
func (p *Projections) Health() api.ProjectionHealth {
	h := api.ProjectionHealth{Shards: len(p.shards), Failures: p.Failures()}
	h.CacheHits, h.CacheMisses = p.CacheStats()
	h.CacheEvictions, h.ChainFailures = p.evictions.Load(), p.chainFailures.Load()
	for i, sh := range p.shards {
		if seq, _ := sh.position(); i == 0 || seq < h.AppliedSeq {
			h.AppliedSeq = seq
		}
	}
	for g, e := range p.Stopped() {
		if h.Stopped == nil {
			h.Stopped = map[string]string{}
		}
		h.Stopped[g] = e.Error()
		if e.DataLoss() {
			h.DataLoss++
		}
	}
	if err := p.lost.Load(); err != nil {
		h.StreamLost = (*err).Error()
	}
	h.Audits, h.LastAuditMs = uint64(p.audits.Load()), ms(time.Duration(p.lastAuditNs.Load()))
	h.Snapshots = p.snapHealth()
	h.Partition = p.partHealth()
	h.TimeTravel = p.tt.health()
	return h
}

func (p *Projections) fail(e *ProjectionStoppedError) {
	p.failures.Add(1)
	if e.DataLoss() {
		p.chainFailures.Add(1)
	}
	p.mu.Lock()
	p.stopped[e.Graph] = e
	p.mu.Unlock()
	p.log.LogAttrs(context.Background(), slog.LevelError, "projection stopped",
		slog.String("graph", e.Graph), slog.Uint64("seq", e.Seq), slog.String("err", e.Err.Error()))
}

// forget forgets graph's stop: the projections no longer hold it.
func (p *Projections) forget(graph string) {
	p.mu.Lock()
	delete(p.stopped, graph)
	p.mu.Unlock()
}

// unfail forgets graph's stop: a repair resumed it.
func (p *Projections) unfail(graph string) {
	p.mu.Lock()
	delete(p.stopped, graph)
	p.mu.Unlock()
	p.log.LogAttrs(context.Background(), slog.LevelInfo, "projection resumed", slog.String("graph", graph))
}

// Applied returns the stream sequence up to which graph's shard has applied
// every transaction.
func (p *Projections) Applied(graph string) uint64 {
	seq, _ := p.shards[p.Shard(graph)].position()
	return seq
}

// WaitFor blocks until graph's shard has applied every transaction up to
// stream sequence minSeq and returns the shard's position. It returns a
// *aggregate.CommandError: DEADLINE_EXCEEDED when ctx ends first, UNAVAILABLE when the
// projections are closing.
func (p *Projections) WaitFor(ctx context.Context, graph string, minSeq uint64) (uint64, error) {
	sh := p.shards[p.Shard(graph)]
	for {
		seq, changed := sh.position()
		if seq >= minSeq {
			return seq, nil
		}
		select {
		case <-changed:
		case <-p.closing:
			return seq, unavailable("projections are closing")
		case <-ctx.Done():
			return seq, &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, Field: "min_seq",
				Message: fmt.Sprintf("graph %s: min_seq %d not reached in time: the projection has applied up to seq %d (%v)",
					graph, minSeq, seq, context.Cause(ctx))}
		}
	}
}

// Close stops the reader, takes a last snapshot round when snapshots are on
// and events came since the previous one (bounded by ctx), then stops the
// shard actors, waiting until ctx ends.
func (p *Projections) Close(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		close(p.closing)
		readerStopped := p.cancel == nil
		if p.cancel != nil {
			p.cancel()
			select {
			case <-p.done:
				readerStopped = true
			case <-ctx.Done():
				err = fmt.Errorf("projections: reader did not stop: %w", ctx.Err())
			}
			select {
			case <-p.auditDone:
			case <-ctx.Done():
				err = errors.Join(err, fmt.Errorf("projections: audit did not stop: %w", ctx.Err()))
			}
		}
		if readerStopped {
			err = errors.Join(err, p.finalSnapshot(ctx))
		}
		p.lifeStop()
		err = errors.Join(err, p.stopShards(ctx))
		err = errors.Join(err, p.workers.Close(ctx))
	})
	return err
}

// poolDispatcher runs actor mailboxes on a worker pool instead of a new
// goroutine each time a mailbox gets messages (protoactor's default): a
// shard's query runs on a stack that has grown already, where a fresh
// goroutine copied its stack to grow it on every query.
type poolDispatcher struct{ pool *workers.Pool }

func (d poolDispatcher) Schedule(fn func()) { d.pool.Go(fn) }

// Throughput is protoactor's default: messages a mailbox handles before
// it yields.
func (poolDispatcher) Throughput() int { return 300 }

func (p *Projections) stopShards(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, sh := range p.shards {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.root.StopFuture(sh.pid).Wait() }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("projections: shards did not stop: %w", ctx.Err())
	}
}

// Messages of a shard actor.
type (
	deliverTx struct {
		f      persistence.Followed
		events int64 // counted in shard.queued
	}
	watermark struct {
		seq      uint64
		caughtUp bool
	}
	// runQuery answers req inside the shard actor, between two
	// transactions, on reply.
	runQuery struct {
		req   *cairnv1.QueryRequest
		reply chan<- *cairnv1.QueryReply
		// parent is the query's span context when tracing is on (nil
		// off).
		parent *trace.SpanContext
	}
)

// projected is one graph in a shard.
type projected struct {
	g       *readmodel.Graph
	stopped *ProjectionStoppedError
	head    persistence.Head // the last event applied
	// snap is the graph's newest stored read-model snapshot (Name is empty
	// when there is none); a round reuses it while g.AsOf() is its Seq.
	snap persistence.SnapshotInfo
	// snapBuf is the buffer the graph's last snapshot was encoded into,
	// back from the store (nil while a round holds it, or when small), for
	// the next round to encode into: a fresh buffer of a large graph costs
	// its page faults and zeroing (BenchmarkSnapshotEncode).
	snapBuf []byte
	// applied counts the transactions of the graph this run applied from
	// the stream; recent holds the stream sequences of the last few (for
	// the audit: how many of them the stream must still hold).
	applied uint64
	recent  [auditRecent]uint64
	// held counts the transactions of the graph the read model holds,
	// from its first on (across restarts: a manifest keeps it), for the
	// audit to compare with what the store holds; -1 when not known (a
	// read model restored from a snapshot that did not say).
	held int64
	// restored is set for a read model loaded from a snapshot: its arrays
	// came exactly sized, so catching up does not compact it (a rebuild's
	// spare capacity is what that gives back).
	restored bool
	// adopt is set while the graph is being adopted (a partitioned
	// engine's graph that moved here, see projection_partition.go): g is
	// nil until it is done.
	adopt *adoption
	// unowned is when a partitioned engine first found the graph owned by
	// another member (zero while it owns it).
	unowned time.Time
}

// count counts one more transaction held, when the count is known.
func (e *projected) count() {
	if e.held >= 0 {
		e.held++
	}
}

// shardActor owns its graphs' read models; only its Receive touches them.
type shardActor struct {
	p      *Projections
	shard  *shard
	index  int
	graphs map[string]*projected
	seq    uint64 // last stream sequence seen (transaction or watermark)
	// absent holds graphs a partitioned shard found without transactions
	// up to seq (see markAbsent); nil until one is.
	absent map[string]struct{}
	cache  *queryCache // nil when off
	// firstRead holds, per graph, the apply span of the last traced
	// transaction applied to it, until a query on the graph is answered
	// (nil until tracing sees one: see applyTraced).
	firstRead map[string]trace.SpanContext
	// lastHead and lastHeadCID memoize the string form of the head last
	// answered with: a base32 encoding per reply otherwise.
	lastHead    persistence.Head
	lastHeadCID string
}

// headCID is headCID(h), memoized for the head last asked about.
func (a *shardActor) headCID(h persistence.Head) string {
	if h.N != a.lastHead.N || !h.CID.Equals(a.lastHead.CID) {
		a.lastHead, a.lastHeadCID = h, headCID(h)
	}
	return a.lastHeadCID
}

func (a *shardActor) Receive(ctx actor.Context) {
	a.shard.state.Lock()
	defer a.shard.state.Unlock()
	switch m := ctx.Message().(type) {
	case *deliverTx:
		if a.p.cfg.Tracer != nil && m.f.Header != nil {
			a.applyTraced(m.f)
		} else {
			a.apply(m.f)
		}
		a.mark(m.f.Seq)
		a.shard.txs.Add(1)
		if a.shard.queued.Add(-m.events) <= maxQueued {
			select {
			case a.shard.space <- struct{}{}:
			default:
			}
		}
	case *watermark:
		a.mark(m.seq)
		if m.caughtUp {
			// Fold the adjacency deltas and give back the spare capacity
			// the rebuild left (BenchmarkBigGraph: 142 MB -> 98 MB). Not
			// for read models restored from snapshots: they hold no
			// rebuild's spare capacity, and compacting a 1M-node one
			// after the short tail of a restart held the shard's queries
			// for about a second.
			for _, e := range a.graphs {
				if e.stopped == nil && e.g != nil && !e.restored {
					e.g.Compact()
				}
			}
		}
	case *runQuery:
		if a.park(m) {
			return
		}
		if a.firstRead != nil {
			a.answerTraced(m)
			return
		}
		m.reply <- a.answer(m.req)
	case *acrossRequest:
		m.reply <- a.across(m)
	case *adopted:
		a.adopted(m)
	case *adoptGraph:
		if a.graphs[m.graph] == nil {
			a.startAdopt(m.graph, a.seq)
		}
	case *sweepGraphs:
		a.sweep(m.now)
	case *snapshotMarker:
		a.snapshot(m.round)
	case *snapshotsStored:
		for _, info := range m.infos {
			if e := a.graphs[info.Graph]; e != nil && info.Seq > e.snap.Seq {
				e.snap = info
			}
		}
		for id, buf := range m.bufs {
			if e := a.graphs[id]; e != nil && e.snapBuf == nil {
				e.snapBuf = buf
			}
		}
	case *restoreGraphs:
		a.restore(m)
	case *headsRequest:
		m.reply <- a.heads(m.upTo)
	case *sizeRequest:
		m.reply <- a.size()
	case *quarantineGraph:
		a.quarantine(m)
	case *stoppedRequest:
		m.reply <- a.stoppedState(m.graph)
	case *resumeGraph:
		m.reply <- a.resume(m.graph)
	}
}

func (a *shardActor) mark(seq uint64) {
	if seq > a.seq {
		a.seq = seq
		a.shard.advance(seq)
	}
}

func (a *shardActor) apply(f persistence.Followed) {
	e := a.graphs[f.Graph]
	if a.p.part != nil && e == nil {
		if a.absent != nil {
			delete(a.absent, f.Graph)
		}
		if !a.p.part.Owns(f.Graph) {
			// Another member's graph: left undecoded (Followed.Data, see
			// rawFollower). The shard decides, not the reader: it holds
			// the graphs and their adoptions, so a graph held or being
			// adopted here gets every transaction, whoever owns it now.
			return
		}
	}
	if a.p.part != nil && e != nil && e.adopt != nil {
		e.adopt.hold(f, a.p.part.HoldBytes)
		return
	}
	f.Decode()
	if a.p.part != nil {
		switch {
		case e == nil && (f.Err != nil || firstPosition(f.Tx) != 1):
			// A graph that moved here (or whose prefix is archived):
			// adopt it as of the transaction before this one, which
			// then follows.
			ad := a.startAdopt(f.Graph, f.Seq-1).adopt
			ad.hold(f, a.p.part.HoldBytes)
			return
		}
	}
	a.applyTo(e, f)
}

// applyTo applies f to its graph's entry e, nil when the shard holds none
// yet (a new graph).
func (a *shardActor) applyTo(e *projected, f persistence.Followed) {
	fresh := e == nil
	if fresh {
		// New fails only on an invalid config, which NewProjections
		// refused; safeApply reports a nil graph all the same.
		g, _ := readmodel.New(f.Graph, a.p.cfg.ReadModel)
		e = &projected{g: g}
		a.put(f.Graph, e)
	}
	if e.stopped != nil {
		return
	}
	if e.g != nil && f.Seq <= e.g.AsOf() {
		// Folded already: the graph was restored from a snapshot taken
		// after the reader's resume point.
		return
	}
	err := f.Err
	if err == nil && fresh && e.head.N == 0 && firstPosition(f.Tx) > 1 {
		// The graph's chain does not start here: its prefix was archived
		// (or this start resumed from a snapshot set that left the graph
		// out). Fold it from the event store first.
		err = a.foldPrefix(e, f.Seq-1)
	}
	var d decodedTx
	if err == nil {
		d, err = checkFollowed(a.p.cfg.Trust, e.head, f)
	}
	if err == nil {
		err = safeApply(e.g, f.Seq, f.Tx.GetTimestampUnixNano(), d.events)
	}
	if err != nil {
		e.stopped = &ProjectionStoppedError{Graph: f.Graph, Seq: f.Seq, Err: err}
		a.p.fail(e.stopped)
		return
	}
	e.head = d.head
	e.recent[e.applied%auditRecent] = f.Seq
	e.applied++
	e.count()
}

// safeApply applies a transaction, turning a panic (a read-model bug) into
// an error so that the actor, and every other graph of the shard, goes on,
// and notes its timestamp ts (Unix nanoseconds; 0: none) as the graph's
// last change (readmodel.Graph.NoteTime, for the catalogue).
func safeApply(g *readmodel.Graph, seq uint64, ts int64, events []*cairnv1.Event) (err error) {
	if g == nil {
		return errors.New("no read model")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("read model panicked: %v", r)
		}
	}()
	if err := g.ApplyTx(seq, events); err != nil {
		return fmt.Errorf("seq %d: %w: %w", seq, errInconsistent, err)
	}
	if ts != 0 {
		g.NoteTime(ts)
	}
	return nil
}

// decodedTx is a transaction's checked events.
type decodedTx struct {
	events []*cairnv1.Event
	prev   persistence.Head // what its first event links to
	head   persistence.Head // its last event
}

// checkTx checks the transaction stored at seq as the continuation of
// graph's chain after head (persistence.Chain: every CID, the prev link to
// head, contiguous positions, the fields each envelope repeats) and decodes
// its events. Nothing a projection reads is trusted because of where it
// came from: the error, a *persistence.ChainError, quarantines the graph.
func checkTx(trust *persistence.Keyring, graph string, head persistence.Head, seq uint64, tx *cairnv1.Transaction) (decodedTx, error) {
	d, err := decodeChecked(trust, graph, seq, tx)
	if err != nil {
		return decodedTx{}, err
	}
	if err := d.linksTo(graph, seq, head); err != nil {
		return decodedTx{}, err
	}
	return d, nil
}

// checkFollowed is checkTx for a transaction the reader delivered: one
// that this member's store appended and read back byte for byte
// (Followed.Sealed) is checked without decoding it again
// (persistence.CheckSealed); it must still continue the chain after
// head.
func checkFollowed(trust *persistence.Keyring, head persistence.Head, f persistence.Followed) (decodedTx, error) {
	if f.Sealed == nil {
		return checkTx(trust, f.Graph, head, f.Seq, f.Tx)
	}
	evs, prev, last, err := persistence.CheckSealed(trust, f.Graph, f.Seq, f.Tx, f.Sealed)
	if err != nil {
		return decodedTx{}, err
	}
	d := decodedTx{events: evs, prev: prev, head: last}
	if err := d.linksTo(f.Graph, f.Seq, head); err != nil {
		return decodedTx{}, err
	}
	return d, nil
}

// decodeChecked checks tx as a stretch of graph's chain on its own
// (persistence.CheckStretch) and decodes it; where its first event links to
// is left to linksTo, for a reader that does not know the head yet.
func decodeChecked(trust *persistence.Keyring, graph string, seq uint64, tx *cairnv1.Transaction) (decodedTx, error) {
	evs, prev, head, err := persistence.CheckStretchTrusting(trust, graph, seq, tx)
	if err != nil {
		return decodedTx{}, err
	}
	d := decodedTx{events: make([]*cairnv1.Event, len(evs)), prev: prev, head: head}
	for i := range evs {
		d.events[i] = evs[i].Event
	}
	return d, nil
}

// position is the chain position of d's event i: the check found them
// contiguous after prev.
func (d decodedTx) position(i int) uint64 { return d.prev.N + 1 + uint64(i) }

// linksTo checks that d continues the chain that ends at head.
func (d decodedTx) linksTo(graph string, seq uint64, head persistence.Head) error {
	return head.Links(graph, seq, d.prev)
}

// firstPosition is the chain position of tx's first event, 0 when it does
// not decode (the chain check then says why).
func firstPosition(tx *cairnv1.Transaction) uint64 {
	recs := tx.GetEvents()
	if len(recs) == 0 {
		return 0
	}
	env, err := persistence.DecodeEnvelope(recs[0].GetDagCbor())
	if err != nil {
		return 0
	}
	return env.N
}
