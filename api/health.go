package api

import "time"

// GrainHealth is the graph grains' counters as the gateway's command
// endpoint reports them in its stats (`nats micro stats cairn`,
// `cairn health`).
type GrainHealth struct {
	// Active counts the grains active on this member now.
	Active               int     `json:"active"`
	Activations          uint64  `json:"activations"`
	SnapshotLoads        uint64  `json:"snapshot_loads"`
	SnapshotFallbacks    uint64  `json:"snapshot_fallbacks"`
	SnapshotsWritten     uint64  `json:"snapshots_written"`
	SnapshotWriteErrors  uint64  `json:"snapshot_write_errors"`
	SnapshotBytes        uint64  `json:"snapshot_bytes"`
	SnapshotBlockMsTotal float64 `json:"snapshot_block_ms_total"`
	SnapshotBlockMsMax   float64 `json:"snapshot_block_ms_max"`
	ReplayedTransactions uint64  `json:"replayed_transactions"`
	ReplayedEvents       uint64  `json:"replayed_events"`
	// AppendConflicts counts appends refused because another writer (a
	// second activation of the graph) had appended first; each made the
	// grain reload and decide again.
	AppendConflicts uint64 `json:"append_conflicts"`
	// ActivationWaits counts activations that waited for their turn
	// (serve's activations at once were running, as after a failover);
	// ActivationsAtOnce is the most that ran at once.
	ActivationWaits   uint64 `json:"activation_waits"`
	ActivationsAtOnce uint64 `json:"activations_at_once_max"`
	// Quarantined names each graph whose grain found its stored history
	// failing a check (DATA_LOSS), with the reason.
	Quarantined map[string]string `json:"quarantined_graphs,omitempty"`
	// Warm reports the local snapshot copies decoded at start (nil
	// without any).
	Warm *WarmHealth `json:"warm_start,omitempty"`
}

// WarmHealth counts the local snapshot copies a restart decoded while its
// NATS server recovered (actors.Warm): decoded and failed copies, how
// long the decodes took from the start, the activations and restores
// that took one (hits) or found it not of the snapshot they load (misses),
// and the copies written since.
type WarmHealth struct {
	Decoded  uint64  `json:"decoded"`
	Failed   uint64  `json:"failed"`
	Hits     uint64  `json:"hits"`
	Misses   uint64  `json:"misses"`
	DecodeMs float64 `json:"decode_ms"`
	// Saved and SaveErrors count the local copies this run wrote and the
	// writes that failed (a full disk, say: restarts then fetch from the
	// Object Store).
	Saved      uint64 `json:"copies_saved"`
	SaveErrors uint64 `json:"copy_save_errors"`
}

// CommandStats is the data of the gateway's command endpoint in the
// service's stats (`nats micro stats cairn`): the grains' counters, when
// the gateway has grains, flattened, and the engine process's memory under
// "memory".
type CommandStats struct {
	*GrainHealth
	Memory MemoryHealth `json:"memory"`
	// Ready is what the engine's /readyz says: whether it serves commands
	// and queries, and if not, why (one reason per unmet condition). Nil
	// from an engine from before readiness was reported.
	Ready *ReadyHealth `json:"ready,omitempty"`
}

// ReadyHealth says whether an engine is ready (cairn.Engine.Ready).
type ReadyHealth struct {
	Ready    bool     `json:"ready"`
	NotReady []string `json:"not_ready,omitempty"`
}

// NewReadyHealth is ReadyHealth from the error Engine.Ready returns
// (errors.Join of one error per unmet condition).
func NewReadyHealth(err error) *ReadyHealth {
	if err == nil {
		return &ReadyHealth{Ready: true}
	}
	h := &ReadyHealth{}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			h.NotReady = append(h.NotReady, e.Error())
		}
	} else {
		h.NotReady = []string{err.Error()}
	}
	return h
}

// MemoryHealth is the engine process's memory as the gateway reports it in
// the command endpoint's stats (`cairn health`, `nats micro stats cairn`).
type MemoryHealth struct {
	// RSSBytes is the resident set size (/proc/self/statm), 0 where
	// unknown.
	RSSBytes uint64 `json:"rss_bytes"`
	// HeapAllocBytes is the Go heap in live and not yet swept objects
	// (runtime.MemStats.HeapAlloc).
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	// HeapInUseBytes is the Go heap in spans in use (HeapInuse).
	HeapInUseBytes uint64 `json:"heap_in_use_bytes"`
	// GoBytes is all the memory the Go runtime holds from the OS (heap,
	// stacks, runtime structures), less what it returned: what the memory
	// limit bounds.
	GoBytes uint64 `json:"go_bytes"`
	// GCCycles counts completed garbage collections.
	GCCycles uint64 `json:"gc_cycles"`
	// LimitBytes is the Go runtime's memory limit (debug.SetMemoryLimit,
	// GOMEMLIMIT, cairn serve --memory-limit), 0 when there is none.
	LimitBytes int64 `json:"limit_bytes"`
	// GOGC is the garbage collector's percentage, -1 when off.
	GOGC int64 `json:"gogc"`
}

// ProjectionHealth is what the gateway reports in the query endpoint's
// stats (`nats micro stats cairn`, `cairn health`).
type ProjectionHealth struct {
	Shards int `json:"shards"`
	// AppliedSeq is the lowest shard position: every transaction up to it
	// is applied (or stopped its graph).
	AppliedSeq  uint64 `json:"applied_seq"`
	CacheHits   uint64 `json:"cache_hits"`
	CacheMisses uint64 `json:"cache_misses"`
	// CacheEvictions counts answers the query caches dropped (full, or
	// past their lifetime).
	CacheEvictions uint64 `json:"cache_evictions"`
	// ChainFailures counts graphs stopped because their stored history
	// failed a chain or signature check (each quarantine, since the start).
	ChainFailures uint64 `json:"chain_check_failures"`
	// Failures counts transactions that could not be applied; Stopped
	// names each graph whose projection stopped, with the reason.
	Failures uint64            `json:"projection_failures"`
	Stopped  map[string]string `json:"stopped_graphs,omitempty"`
	// DataLoss counts the stopped graphs that are quarantined because
	// their stored history failed a check (their queries answer
	// DATA_LOSS), as against a read-model failure (INTERNAL).
	DataLoss int `json:"data_loss_graphs"`
	// StreamLost says why every graph answers DATA_LOSS: the event
	// stream itself is gone (deleted); empty otherwise.
	StreamLost string `json:"stream_lost,omitempty"`
	// Audits counts the rounds in which the stream's state was compared
	// with what the projections applied; LastAuditMs is the last one's
	// duration.
	Audits      uint64  `json:"audits"`
	LastAuditMs float64 `json:"last_audit_ms"`
	// Snapshot rounds and restarts (zero when snapshots are off).
	Snapshots SnapshotHealth `json:"snapshots"`
	// TimeTravel counts as_of queries.
	TimeTravel TimeTravelHealth `json:"time_travel"`
	// Partition reports a cluster member's share of the read models; nil
	// when the projections hold every graph (one engine).
	Partition *PartitionHealth `json:"partition,omitempty"`
}

// PartitionHealth reports the read models a cluster member holds and the
// adoptions that brought them here (see actors.Partition).
type PartitionHealth struct {
	// Graphs is how many graphs' read models the member holds now.
	Graphs int `json:"graphs"`
	// Adoptions counts graphs whose read model was loaded here (a graph
	// that moved here, or that a query asked for), FromSnapshot those that
	// started from a read-model snapshot rather than the graph's first
	// transaction, Failures those whose load failed.
	Adoptions    uint64 `json:"adoptions"`
	FromSnapshot uint64 `json:"adopted_from_snapshot"`
	Failures     uint64 `json:"adoption_failures"`
	// Waits counts adoptions that waited for a turn (at most
	// Partition.Adoptions run at once).
	Waits       uint64  `json:"adoption_waits"`
	LastAdoptMs float64 `json:"last_adoption_ms"`
	MaxAdoptMs  float64 `json:"max_adoption_ms"`
	// Dropped counts read models given up because another member owned
	// their graph for a while.
	Dropped uint64 `json:"dropped"`
	// Refolds counts adoptions during which more transactions came than
	// they could hold (Partition.HoldBytes): those were folded from the
	// event store when the load ended.
	Refolds uint64 `json:"adoption_refolds"`
	// Series is the manifest series this member's snapshot rounds write.
	Series string `json:"manifest_series,omitempty"`
}

// SnapshotHealth reports the snapshot rounds and the last restore.
type SnapshotHealth struct {
	// RestoredSeq is the stream position the last Start resumed from (the
	// manifest's Seq); 0 when it rebuilt from the stream start.
	RestoredSeq    uint64  `json:"restored_seq"`
	RestoredGraphs int     `json:"restored_graphs"`
	RestoreMs      float64 `json:"restore_ms"`
	// Fallbacks counts manifests (or manifest listings) that could not be
	// restored, each followed by a try of the next older one.
	Fallbacks uint64 `json:"fallbacks"`
	Rounds    uint64 `json:"rounds"`
	// Failures counts rounds that stored no manifest.
	Failures uint64 `json:"failures"`
	// LastSeq is the stream position of the last manifest written;
	// LastTime when it was written (zero before any).
	LastSeq  uint64    `json:"last_seq"`
	LastTime time.Time `json:"last_time,omitzero"`
	// LastBytes is the payload (uncompressed) of the snapshots the last
	// round wrote; LastRoundMs its duration.
	LastBytes   int64   `json:"last_bytes"`
	LastGraphs  int     `json:"last_graphs_written"`
	LastRoundMs float64 `json:"last_round_ms"`
	// LastBlockMs and MaxBlockMs: the longest time a shard spent capturing
	// its graphs for a round (it answers nothing meanwhile; the encoding
	// runs aside) in the last round and since the start.
	LastBlockMs float64 `json:"last_block_ms"`
	MaxBlockMs  float64 `json:"max_block_ms"`
}

// TimeTravelHealth counts as_of queries.
type TimeTravelHealth struct {
	Queries uint64 `json:"queries"`
	// ViewHits: answered on a cached view; Builds: views built.
	ViewHits uint64 `json:"view_hits"`
	Builds   uint64 `json:"builds"`
	// FromSnapshot: builds that started from a read-model snapshot;
	// FromView: from a cached view; the others replayed from the start.
	FromSnapshot uint64 `json:"from_snapshot"`
	FromView     uint64 `json:"from_view"`
	// BadSnapshots: read-model snapshots skipped because they did not load
	// or verify.
	BadSnapshots uint64  `json:"bad_snapshots"`
	Cached       int     `json:"cached_views"`
	LastBuildMs  float64 `json:"last_build_ms"`
	// Where the builds spent their time, in total: finding and loading
	// their base (listing, fetching, decoding and verifying a snapshot, or
	// cloning a view), and replaying the events after it.
	BaseMs   float64 `json:"base_ms"`
	ReplayMs float64 `json:"replay_ms"`
	// SnapshotHits: builds whose snapshot was already in the snapshot
	// cache (ProjectionConfig.ViewSnapshotBytes), which holds
	// CachedSnapshots of CachedSnapshotBytes bytes.
	SnapshotHits        uint64 `json:"snapshot_hits"`
	CachedSnapshots     int    `json:"cached_snapshots"`
	CachedSnapshotBytes int64  `json:"cached_snapshot_bytes"`
	// Refused: queries refused as RESOURCE_EXHAUSTED because no build
	// room (ProjectionConfig.ViewBuilds, ViewBuildBytes) freed up in time.
	// Building: builds in flight, estimated at BuildingBytes.
	Refused       uint64 `json:"refused"`
	Building      int    `json:"building"`
	BuildingBytes int64  `json:"building_bytes"`
	// Last is the last build's breakdown.
	Last TimeTravelBuild `json:"last"`
}

// TimeTravelBuild is where one view build spent its time.
type TimeTravelBuild struct {
	// From is the base: "snapshot", "cached-snapshot" (from the snapshot
	// cache), "view" (a cached view, cloned) or "empty"; BaseSeq its
	// stream position.
	From    string `json:"from"`
	BaseSeq uint64 `json:"base_seq"`
	// FetchMs: fetching and verifying the snapshot; LoadMs: decoding it
	// (or cloning the view); ReplayMs: folding the Replayed transactions
	// after it.
	FetchMs  float64 `json:"fetch_ms"`
	LoadMs   float64 `json:"load_ms"`
	ReplayMs float64 `json:"replay_ms"`
	Replayed int     `json:"replayed"`
}
