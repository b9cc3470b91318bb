package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/metrics"
	"github.com/cairn-graph/cairn/persistence"
)

// GrainConfig tunes graph grains. DefaultGrainConfig documents every default.
type GrainConfig struct {
	// PassivateAfter stops a grain that received nothing for this long; its
	// next command re-activates it from the store. Default 5 minutes.
	PassivateAfter time.Duration
	// Aggregate tunes each grain's aggregate core: the idempotency window,
	// the group commit's command and byte budgets, the hard limit on one
	// transaction's size and the queue (see aggregate.Config). Default
	// aggregate.DefaultConfig(); MaxTxBytes is lowered to what the store
	// accepts when the store says (TransactionLimiter).
	Aggregate aggregate.Config
	// AppendTimeout bounds one append, publish retries included, how long
	// an activation's reads may go without folding a transaction (so that
	// a large history always activates, however long it takes in all), and
	// how long a stopping grain waits for its last snapshot write.
	// Default 10s.
	AppendTimeout time.Duration
	// AppendRetries is how often an append that got no answer is published
	// again with the same transaction id (de-duplicated by JetStream), after
	// a back-off that doubles from 50 ms to 250 ms, within AppendTimeout; each try
	// waits at most AppendTimeout / (AppendRetries + 1), at least a second,
	// for its acknowledgement (a stream leader that died never sends one).
	// Default 9: a try a second, so that an append reaches a newly elected
	// stream leader within about a second of its election. An append
	// refused because the stream has no leader (persistence.ErrNoLeader:
	// an election) does not count: it is sent again until AppendTimeout,
	// at once when the store says a leader was elected
	// (persistence.Store.LeaderElected), else after the back-off.
	AppendRetries int
	// MaxActivations bounds the activations (loads of a graph's state from
	// its snapshot and the store) that run at once on this member; more
	// wait their turn, their commands queued. After a failover or a
	// restart every graph of a member activates at once: unbounded, their
	// reads and folds share the CPUs and the NATS server, so every graph
	// waits as long as the slowest instead of most answering early.
	// Default 2 × GOMAXPROCS, at least 4.
	MaxActivations int
	// Logger receives grain diagnostics. Default: discard.
	Logger *slog.Logger
	// Metrics, when set, records appends, activations, passivations and
	// snapshot pauses and sizes (the engine sets it from Config.Metrics).
	// Default nil: none.
	Metrics *metrics.Metrics
	// Tracer, when set, traces the commands that come traced (a span per
	// command, the child of the dispatcher's) and their appends (a span
	// per transaction, whose traceparent the stored message carries).
	// Default nil: no spans.
	Tracer trace.Tracer
	// Snapshots, when not nil, is where grains keep aggregate snapshots
	// (persistence.Snapshots): a grain writes one once it applied (or an
	// activation replayed) SnapshotInterval events since the last, and when
	// it stops if events were applied since the last; activation starts
	// from the newest trusted one plus the transactions after it. Nil (the
	// default): no snapshots; every activation replays the graph's whole
	// history.
	Snapshots SnapshotStore
	// Warm, when set, holds aggregate states decoded at start from local
	// snapshot copies: an activation whose newest trusted snapshot has one
	// takes it instead of fetching and decoding the snapshot. Default nil.
	Warm *Warm
	// SnapshotEvery is the fewest events a grain applies between two
	// snapshots: the interval of any graph with fewer than
	// SnapshotEvery × SnapshotSizeDivisor nodes and edges. Default 1,000.
	SnapshotEvery int
	// SnapshotSizeDivisor makes the interval grow with the state, so that
	// the cost of a snapshot (the grain blocks only to freeze its state,
	// O(pages); the encoding, compression and write on a goroutine are
	// linear in it), spread over the events between two, stays bounded: a
	// grain whose state holds N nodes and edges waits max(SnapshotEvery,
	// N / SnapshotSizeDivisor) events (see SnapshotInterval). With the
	// default 16, a 4,000,000-item graph (1M nodes, 3M edges) snapshots
	// every 250,000 events, and its activation replays at most that many
	// after its snapshot (about a second). Default 16.
	SnapshotSizeDivisor int
	// SnapshotSpacing spaces a grain's snapshots out in time when they are
	// costly: the next starts no sooner than SnapshotSpacing times the
	// wall time the last one took (freeze, encoding, compression and
	// write) after that one started, so that snapshots take at most about
	// 1/SnapshotSpacing of the grain's time. It matters in a bulk load,
	// where the state grows by SnapshotInterval in less time than its
	// snapshot takes: without it a graph built from nothing to N items
	// writes about SnapshotSizeDivisor × N items of snapshots (1M nodes
	// and 3M edges: about 2 GB). The tail a crash then replays is at most
	// what was written in that spacing, which is at most a minute. 0
	// turns it off. Default 10.
	SnapshotSpacing int
	// SnapshotKeep is how many snapshots per graph are kept; older ones are
	// deleted after each write, except a stopping grain's last one, which
	// deletes only past SnapshotKeep + 1 (so that a drain costs one write
	// per grain): an idle graph may hold one more until its next write.
	// Default 3.
	SnapshotKeep int
	// Quarantined, when not nil, says whether graph is quarantined
	// elsewhere (the projections found its stored history failing a check:
	// Projections.Quarantined); a grain of such a graph does not load and
	// answers DATA_LOSS, so that it never writes on a history it cannot
	// trust. The engine sets it; nil: grains rely on their own checks.
	Quarantined func(graph string) error
	// Fence, when not nil, is checked before each append attempt: an error
	// refuses the batch (UNAVAILABLE, retry with the same command id)
	// without writing it. The engine sets it to its cluster member's lease
	// check (cluster.Member.Check), so that a member that fenced itself,
	// or whose lease ran out during a pause, writes nothing more.
	// It is called before each try of an append, the first on the grain's
	// own goroutine: it should answer at once in the common case.
	Fence func() error
	// OnDataLoss, when not nil, hears of each graph whose replay found its
	// stored history failing a check (err names the stream sequence seq),
	// so that the projections quarantine it too (Projections.Quarantine).
	OnDataLoss func(graph string, seq uint64, err error)
	// Signer, when set, signs every transaction a grain seals, once per
	// transaction (a group commit's batch is one), before it is appended.
	// Default nil: transactions are unsigned.
	Signer *persistence.Signer
	// Trust, when set, makes activations and conflict reloads check every
	// transaction's signature as they replay it (persistence.WithTrust): a
	// transaction that is unsigned, signed by another key or forged stops
	// the load. Default nil: no signature checks.
	Trust *persistence.Keyring
}

// DefaultGrainConfig returns the defaults.
func DefaultGrainConfig() GrainConfig {
	return GrainConfig{
		PassivateAfter:      5 * time.Minute,
		Aggregate:           aggregate.DefaultConfig(),
		AppendTimeout:       10 * time.Second,
		AppendRetries:       9,
		MaxActivations:      max(4, 2*runtime.GOMAXPROCS(0)),
		Logger:              slog.New(slog.DiscardHandler),
		SnapshotEvery:       1000,
		SnapshotSizeDivisor: 16,
		SnapshotSpacing:     10,
		SnapshotKeep:        3,
	}
}

// Validate returns every problem with c, joined.
func (c GrainConfig) Validate() error {
	var errs []error
	if c.PassivateAfter <= 0 {
		errs = append(errs, errors.New("passivate-after must be positive"))
	}
	if err := c.Aggregate.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.AppendTimeout <= 0 {
		errs = append(errs, errors.New("append timeout must be positive"))
	}
	if c.AppendRetries < 0 {
		errs = append(errs, errors.New("append retries must not be negative"))
	}
	if c.MaxActivations < 1 {
		errs = append(errs, fmt.Errorf("activations at once must be at least 1, not %d", c.MaxActivations))
	}
	if c.SnapshotEvery < 1 {
		errs = append(errs, fmt.Errorf("snapshot interval must be at least 1 event, not %d", c.SnapshotEvery))
	}
	if c.SnapshotSpacing < 0 {
		errs = append(errs, fmt.Errorf("snapshot spacing must be 0 (off) or more, not %d", c.SnapshotSpacing))
	}
	if c.SnapshotSizeDivisor < 1 {
		errs = append(errs, fmt.Errorf("snapshot size divisor must be at least 1, not %d", c.SnapshotSizeDivisor))
	}
	if c.SnapshotKeep < 1 {
		errs = append(errs, fmt.Errorf("snapshots kept must be at least 1, not %d", c.SnapshotKeep))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger is nil (use a discard logger)"))
	}
	return errors.Join(errs...)
}

// SnapshotInterval returns how many events a grain whose state holds items
// nodes and edges applies between two snapshots:
// max(SnapshotEvery, items / SnapshotSizeDivisor).
func (c GrainConfig) SnapshotInterval(items int) int {
	return max(c.SnapshotEvery, items/max(c.SnapshotSizeDivisor, 1))
}
