package cairn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-graph/cairn/persistence"
)

// Ready returns nil when the engine serves commands and queries: it is
// connected to NATS, its projections have restored their read models and
// its cluster member has started (and not fenced itself); otherwise an
// error naming each condition that does not hold. It is what /readyz and
// cairn health report.
func (e *Engine) Ready() error {
	var errs []error
	if e.closing.Load() {
		errs = append(errs, errors.New("the engine is shutting down"))
	}
	if down := e.conns.down(); len(down) > 0 {
		errs = append(errs, fmt.Errorf("not connected to NATS: %s", strings.Join(down, ", ")))
	}
	if !e.proj.Ready() {
		errs = append(errs, errors.New("the projections are still restoring their read models"))
	}
	select {
	case <-e.memberReady:
		if e.memberErr != nil {
			errs = append(errs, fmt.Errorf("the cluster member did not start: %w", e.memberErr))
		} else if err := e.Fenced(); err != nil {
			errs = append(errs, fmt.Errorf("the cluster member fenced itself: %w", err))
		}
	default:
		errs = append(errs, errors.New("the cluster member is still starting"))
	}
	return errors.Join(errs...)
}

// Bytes per node and per edge the read model and the write state are
// estimated at (measured on 1M nodes and 3M edges: README, "Memory").
const (
	readModelNodeBytes, readModelEdgeBytes = 31.4, 22.4
	aggregateNodeBytes, aggregateEdgeBytes = 38.9, 27.6
)

// jsCacheFor is how long the collector reuses what JetStream said (the
// stream's and the bucket's state): scrapes from several Prometheus
// servers cost one request.
const jsCacheFor = 2 * time.Second

// scrapeWait bounds each question a scrape asks (JetStream, the shards).
const scrapeWait = time.Second

// collector reads the engine's state at each scrape: the grains', the
// projections', JetStream's, the machine's. The hot paths' instruments are
// in metrics.Metrics.
type collector struct {
	e *Engine

	mu       sync.Mutex
	jsAt     time.Time
	stream   persistence.StreamStats
	objBytes uint64
	objOK    bool
	jsErrors uint64
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	dGrainsActive     = desc("cairn_grains_active", "Graph grains active on this member.")
	dActivations      = desc("cairn_grain_activations_total", "Graph grain activations by where their state came from (snapshot, replay).", "source")
	dGrainSnapshots   = desc("cairn_grain_snapshots_total", "Aggregate snapshots written, by outcome (ok, error).", "outcome")
	dGrainSnapLast    = desc("cairn_grain_last_snapshot_timestamp_seconds", "Unix time of the last aggregate snapshot written; 0 before any.")
	dQuarantined      = desc("cairn_grains_quarantined", "Graphs whose grain refused their stored history (DATA_LOSS).")
	dConflicts        = desc("cairn_append_conflicts_total", "Appends refused because another activation of the graph wrote first (each a duplicate activation); the grain reloaded and decided again.")
	dAggNodes         = desc("cairn_aggregate_nodes", "Nodes held by the active grains' states.")
	dAggEdges         = desc("cairn_aggregate_edges", "Edges held by the active grains' states.")
	dAggMemory        = desc("cairn_aggregate_memory_bytes", "Estimated bytes of the active grains' states (38.9 B per node, 27.6 B per edge, as measured).")
	dHeadSeq          = desc("cairn_stream_head_seq", "Last sequence of the event stream.")
	dApplied          = desc("cairn_projection_applied_seq", "Stream sequence up to which the shard has applied every transaction of its graphs.", "shard")
	dLagSeqs          = desc("cairn_projection_lag_sequences", "Stream sequences the shard has not applied yet (head - applied).", "shard")
	dLagSeconds       = desc("cairn_projection_lag_seconds", "Age of the oldest transaction the shard has not applied yet; 0 when caught up.", "shard")
	dShardTxs         = desc("cairn_projection_applied_transactions_total", "Transactions of the stream the shard went through since the engine started: applied, or, on a cluster member, passed over as another member's graph's.", "shard")
	dProjFailures     = desc("cairn_projection_failures_total", "Transactions the projections could not apply.")
	dStopped          = desc("cairn_projection_stopped_graphs", "Graphs whose projection stopped (queries answer INTERNAL or DATA_LOSS).")
	dDataLoss         = desc("cairn_projection_data_loss_graphs", "Stopped graphs quarantined because their stored history failed a check.")
	dChainFailures    = desc("cairn_chain_check_failures_total", "Chain or signature checks of stored history that failed (each quarantine by the projections or a grain).")
	dStreamLost       = desc("cairn_stream_lost", "1 when the event stream is gone (deleted).")
	dRMNodes          = desc("cairn_readmodel_nodes", "Nodes held by the read models.")
	dRMEdges          = desc("cairn_readmodel_edges", "Edges held by the read models.")
	dRMGraphs         = desc("cairn_readmodel_graphs", "Graphs whose read model this member holds.")
	dRMMemory         = desc("cairn_readmodel_memory_bytes", "Estimated bytes of the read models (31.4 B per node, 22.4 B per edge, as measured).")
	dRMRounds         = desc("cairn_readmodel_snapshot_rounds_total", "Read-model snapshot rounds, by outcome (ok: a manifest was written; error).", "outcome")
	dRMSnapLast       = desc("cairn_readmodel_snapshot_last_timestamp_seconds", "Unix time of the last read-model manifest written; 0 before any.")
	dRMPause          = desc("cairn_readmodel_snapshot_pause_seconds_max", "The longest a shard was blocked capturing its graphs for a snapshot round since the start.")
	dAudits           = desc("cairn_audit_rounds_total", "Audit rounds comparing the stream with what the projections applied.")
	dCacheHits        = desc("cairn_query_cache_hits_total", "Queries answered from a shard's query cache.")
	dCacheMisses      = desc("cairn_query_cache_misses_total", "Cacheable queries not in the cache.")
	dCacheEvictions   = desc("cairn_query_cache_evictions_total", "Answers the query caches dropped (full, or past their lifetime).")
	dTTQueries        = desc("cairn_timetravel_queries_total", "Queries as of an earlier point (as_of).")
	dTTViewHits       = desc("cairn_timetravel_view_hits_total", "as_of queries answered on a cached view.")
	dTTRefused        = desc("cairn_timetravel_refused_total", "as_of queries refused as RESOURCE_EXHAUSTED (no build room in time).")
	dTTBuilds         = desc("cairn_timetravel_builds_total", "Time-travel views built, by base (snapshot, view, start).", "from")
	dTTLastBuild      = desc("cairn_timetravel_build_last_seconds", "Duration of the last time-travel view build.")
	dStreamBytes      = desc("cairn_jetstream_stream_bytes", "Bytes the event stream holds.")
	dStreamMsgs       = desc("cairn_jetstream_stream_messages", "Messages (transactions) the event stream holds.")
	dStreamConsumers  = desc("cairn_jetstream_stream_consumers", "Consumers of the event stream.")
	dStreamMax        = desc("cairn_jetstream_stream_max_bytes", "The event stream's size limit in bytes; -1 for none.")
	dObjBytes         = desc("cairn_jetstream_objectstore_bytes", "Bytes of the object store bucket (snapshots, archives).")
	dJSErrors         = desc("cairn_jetstream_scrape_errors_total", "Scrapes whose questions to JetStream failed (the last answers are reported meanwhile).")
	dDiskFree         = desc("cairn_disk_free_bytes", "Free bytes on the file system of the embedded server's data directory.")
	dDiskSize         = desc("cairn_disk_size_bytes", "Size in bytes of the file system of the embedded server's data directory.")
	dMemLimit         = desc("cairn_memory_limit_bytes", "The Go runtime's soft memory limit (--memory-limit); 0 for none.")
	dReady            = desc("cairn_ready", "1 when the engine serves commands and queries (what /readyz says).")
	dBuild            = desc("cairn_build_info", "The engine's build: its version and Go version.", "version", "go_version")
	dNATS             = desc("cairn_nats_connected", "1 while every one of the engine's NATS connections is up.")
	dNATSDisconnects  = desc("cairn_nats_disconnects_total", "Times the engine's NATS connection was disconnected, by connection (cairn-engine, cairn-commands, cairn-history, cairn-membership).", "connection")
	dNATSSlow         = desc("cairn_nats_slow_consumers_total", "Slow-consumer errors NATS reported on the engine's connection (a subscription fell behind and dropped messages), by connection.", "connection")
	dMembers          = desc("cairn_cluster_members", "Members of the cluster this member sees (1 for a single engine).")
	dRejoins          = desc("cairn_cluster_rejoins_total", "Fresh cluster members this engine started after its member fenced itself.")
	dFenced           = desc("cairn_cluster_fenced", "1 while this engine's cluster member is fenced (it refuses commands).")
	dAdoptions        = desc("cairn_cluster_adoptions_total", "Read models of graphs that moved to this member, loaded here.")
	dAdoptionFailures = desc("cairn_cluster_adoption_failures_total", "Read-model adoptions that failed.")
)

// descs lists every desc Collect uses: Describe must not collect (a
// collection asks JetStream, and caches what it said).
var descs = []*prometheus.Desc{
	dGrainsActive, dActivations, dGrainSnapshots, dGrainSnapLast, dQuarantined, dConflicts, dAggNodes, dAggEdges, dAggMemory, dHeadSeq, dApplied, dLagSeqs, dLagSeconds, dShardTxs, dProjFailures, dStopped, dDataLoss, dChainFailures, dStreamLost, dRMNodes, dRMEdges, dRMGraphs, dRMMemory, dRMRounds, dRMSnapLast, dRMPause, dAudits, dCacheHits, dCacheMisses, dCacheEvictions, dTTQueries, dTTViewHits, dTTRefused, dTTBuilds, dTTLastBuild, dStreamBytes, dStreamMsgs, dStreamConsumers, dStreamMax, dObjBytes, dJSErrors, dDiskFree, dDiskSize, dMemLimit, dReady, dBuild, dNATS, dNATSDisconnects, dNATSSlow, dMembers, dRejoins, dFenced, dAdoptions, dAdoptionFailures,
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	e := c.e
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	bool01 := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeWait)
	defer cancel()

	// The write side.
	g := e.grains.Stats()
	gauge(dGrainsActive, float64(e.grains.Active()))
	counter(dActivations, g.SnapshotLoads, "snapshot")
	counter(dActivations, g.Activations-min(g.SnapshotLoads, g.Activations), "replay")
	counter(dGrainSnapshots, g.SnapshotsWritten, "ok")
	counter(dGrainSnapshots, g.SnapshotWriteErrors, "error")
	gauge(dGrainSnapLast, unix(g.LastSnapshot))
	gauge(dQuarantined, float64(len(g.Quarantined)))
	counter(dConflicts, g.AppendConflicts)
	gauge(dAggNodes, float64(g.Nodes))
	gauge(dAggEdges, float64(g.Edges))
	gauge(dAggMemory, math.Round(float64(g.Nodes)*aggregateNodeBytes+float64(g.Edges)*aggregateEdgeBytes))

	// The read side.
	h := e.proj.Health()
	stream, objBytes, objOK, jsErrors := c.jetStream(ctx)
	head := stream.LastSeq
	shards := e.proj.ShardStats()
	for i, s := range shards {
		shard := strconv.Itoa(i)
		head = max(head, s.Applied)
		gauge(dApplied, float64(s.Applied), shard)
		counter(dShardTxs, s.Transactions, shard)
	}
	gauge(dHeadSeq, float64(head))
	storedAt := map[uint64]time.Time{}
	for i, s := range shards {
		shard := strconv.Itoa(i)
		lag, age := head-min(s.Applied, head), 0.0
		if lag > 0 {
			t, ok := storedAt[s.Applied+1]
			if !ok {
				var err error
				if t, err = e.store.StoredAt(ctx, s.Applied+1); err != nil {
					t = time.Time{}
				}
				storedAt[s.Applied+1] = t
			}
			if !t.IsZero() {
				age = max(time.Since(t).Seconds(), 0)
			}
		}
		gauge(dLagSeqs, float64(lag), shard)
		gauge(dLagSeconds, age, shard)
	}
	counter(dProjFailures, h.Failures)
	gauge(dStopped, float64(len(h.Stopped)))
	gauge(dDataLoss, float64(h.DataLoss))
	counter(dChainFailures, h.ChainFailures+g.ChainFailures)
	gauge(dStreamLost, bool01(h.StreamLost != ""))
	if rm, ok := e.proj.ReadModelSize(ctx); ok {
		gauge(dRMGraphs, float64(rm.Graphs))
		gauge(dRMNodes, float64(rm.Nodes))
		gauge(dRMEdges, float64(rm.Edges))
		gauge(dRMMemory, math.Round(float64(rm.Nodes)*readModelNodeBytes+float64(rm.Edges)*readModelEdgeBytes))
	}
	counter(dRMRounds, h.Snapshots.Rounds, "ok")
	counter(dRMRounds, h.Snapshots.Failures, "error")
	gauge(dRMSnapLast, unix(h.Snapshots.LastTime))
	gauge(dRMPause, h.Snapshots.MaxBlockMs/1e3)
	counter(dAudits, h.Audits)
	counter(dCacheHits, h.CacheHits)
	counter(dCacheMisses, h.CacheMisses)
	counter(dCacheEvictions, h.CacheEvictions)
	tt := h.TimeTravel
	counter(dTTQueries, tt.Queries)
	counter(dTTViewHits, tt.ViewHits)
	counter(dTTRefused, tt.Refused)
	counter(dTTBuilds, tt.FromSnapshot, "snapshot")
	counter(dTTBuilds, tt.FromView, "view")
	counter(dTTBuilds, tt.Builds-min(tt.Builds, tt.FromSnapshot+tt.FromView), "start")
	gauge(dTTLastBuild, tt.LastBuildMs/1e3)

	// Storage and the machine.
	gauge(dStreamBytes, float64(stream.Bytes))
	gauge(dStreamMsgs, float64(stream.Messages))
	gauge(dStreamConsumers, float64(stream.Consumers))
	gauge(dStreamMax, float64(stream.MaxBytes))
	if objOK {
		gauge(dObjBytes, float64(objBytes))
	}
	counter(dJSErrors, jsErrors)
	if dir := e.DataDir(); dir != "" {
		if free, size, ok := diskSpace(dir); ok {
			gauge(dDiskFree, float64(free))
			gauge(dDiskSize, float64(size))
		}
	}
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		limit = 0
	}
	gauge(dMemLimit, float64(limit))

	// The engine and the cluster.
	gauge(dReady, bool01(e.Ready() == nil))
	gauge(dBuild, 1, Version(), runtime.Version())
	gauge(dNATS, bool01(len(e.conns.down()) == 0))
	for _, cs := range e.conns.stats() {
		counter(dNATSDisconnects, cs.Disconnects, cs.Name)
		counter(dNATSSlow, cs.SlowConsumers, cs.Name)
	}
	members := 0
	if m := e.startedMember(); m != nil {
		members = max(len(m.Lookup().Members()), 1)
	}
	gauge(dMembers, float64(members))
	counter(dRejoins, e.Rejoins())
	gauge(dFenced, bool01(e.Fenced() != nil))
	var adoptions, adoptionFailures uint64
	if p := h.Partition; p != nil {
		adoptions, adoptionFailures = p.Adoptions, p.Failures
	}
	counter(dAdoptions, adoptions)
	counter(dAdoptionFailures, adoptionFailures)
}

// jetStream returns the stream's and the bucket's state, asking JetStream
// at most every jsCacheFor.
func (c *collector) jetStream(ctx context.Context) (persistence.StreamStats, uint64, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.jsAt) >= jsCacheFor {
		c.jsAt = time.Now()
		st, err := c.e.store.StreamStats(ctx)
		if err == nil {
			c.stream = st
		} else {
			c.jsErrors++
		}
		if s := c.e.snaps; s != nil {
			n, err := s.Bytes(ctx)
			if err == nil {
				c.objBytes, c.objOK = n, true
			} else {
				c.jsErrors++
			}
		}
	}
	return c.stream, c.objBytes, c.objOK, c.jsErrors
}
