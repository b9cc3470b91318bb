package actors

import (
	"math"
	"runtime/metrics"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/memlimit"
)

// Shares of the engine's memory limit that SizeCaches gives each cache.
const (
	// QueryCacheShare of the limit bounds the query caches of all shards
	// together, at CacheMaxReplyBytes per entry.
	QueryCacheShare = 1.0 / 32
	// ViewSnapshotShare of the limit bounds the read-model snapshots time
	// travel keeps (ViewSnapshotBytes).
	ViewSnapshotShare = 1.0 / 32
	// ViewBytesAssumed is what SizeCaches counts per cached time-travel
	// view (a whole point-in-time read model; a 1M-node, 3M-edge one holds
	// about 120 MB): the view cache gets limit / 8 / ViewBytesAssumed
	// entries.
	ViewBytesAssumed = 32 << 20
	// ViewBuildShare of the limit bounds the time-travel views being built
	// (ViewBuildBytes).
	ViewBuildShare = 1.0 / 4
	// ViewBytesPerEvent is what a view is estimated to take per event up
	// to its point, before it is built: a read model takes about 30 bytes
	// per node and edge (1M nodes and 3M edges: 120 MB), and each node or
	// edge is at least one event; the rest is headroom for components.
	ViewBytesPerEvent = 64
)

// SizeCaches sizes the projections' caches from the engine process's
// memory limit (in bytes; math.MaxInt64 or 0 for none, which leaves c as
// it is), with CacheMaxReplyBytes and Shards as set:
//
//   - CacheEntries: QueryCacheShare of the limit over all shards, at
//     CacheMaxReplyBytes an answer, 64 to 1<<20 entries per shard (with a
//     2 GiB limit, 2 shards and 8 KiB answers: 4,096 each, the default);
//   - ViewSnapshotBytes: ViewSnapshotShare of the limit (2 GiB: 64 MiB, the
//     default);
//   - ViewCacheEntries: an eighth of the limit in views of
//     ViewBytesAssumed, 1 to 64 (2 GiB: 8, the default; 512 MiB: 2);
//   - ViewBuildBytes: ViewBuildShare of the limit (2 GiB: 512 MiB, the
//     default).
//
// A cache that is off (0) stays off. Call it before setting any of these
// fields explicitly: it overwrites them.
func (c *ProjectionConfig) SizeCaches(limit int64) {
	if limit <= 0 || limit == math.MaxInt64 {
		return
	}
	lim := float64(limit)
	if c.CacheEntries > 0 && c.CacheMaxReplyBytes > 0 {
		perShard := lim * QueryCacheShare / float64(max(c.Shards, 1)) / float64(c.CacheMaxReplyBytes)
		c.CacheEntries = int(min(max(perShard, 64), 1<<20))
	}
	if c.ViewSnapshotBytes > 0 {
		c.ViewSnapshotBytes = int64(lim * ViewSnapshotShare)
	}
	if c.ViewCacheEntries > 0 {
		c.ViewCacheEntries = int(min(max(lim/8/ViewBytesAssumed, 1), 64))
	}
	c.ViewBuildBytes = int64(lim * ViewBuildShare)
}

// runtime/metrics names ReadMemory reads.
var memoryMetrics = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/cycles/total:gc-cycles",
	"/gc/gomemlimit:bytes",
	"/gc/gogc:percent",
}

// ReadMemory returns this process's memory now. It reads runtime/metrics,
// which does not stop the world, and /proc/self/statm: cheap enough for
// every stats request.
func ReadMemory() api.MemoryHealth {
	s := make([]metrics.Sample, len(memoryMetrics))
	for i, n := range memoryMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	u := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	m := api.MemoryHealth{
		HeapAllocBytes: u(0),
		HeapInUseBytes: u(0) + u(1),
		GoBytes:        u(2) - min(u(3), u(2)),
		GCCycles:       u(4),
		GOGC:           int64(int32(u(6))), // the runtime's int32, -1 for off
	}
	if lim := u(5); lim < math.MaxInt64 {
		m.LimitBytes = int64(lim)
	}
	m.RSSBytes, _ = memlimit.RSS(0) // 0 where /proc is missing
	return m
}
