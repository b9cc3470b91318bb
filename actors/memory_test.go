package actors_test

import (
	"math"
	"testing"

	"github.com/cairn-graph/cairn/actors"
)

// The projections' caches are sized from the memory limit: a 2 GiB limit
// on 2 shards gives the defaults, budgets scale with the limit within
// their bounds, and no limit or a cache that is off changes nothing.
func TestSizeCaches(t *testing.T) {
	def := actors.DefaultProjectionConfig()
	def.Shards = 2
	for _, tc := range []struct {
		name          string
		limit         int64
		shards        int
		off           bool
		entries, view int
		snapBytes     int64
	}{
		{name: "2GiB, 2 shards: the defaults", limit: 2 << 30, shards: 2, entries: 4096, view: 8, snapBytes: 64 << 20},
		{name: "2GiB, 8 shards", limit: 2 << 30, shards: 8, entries: 1024, view: 8, snapBytes: 64 << 20},
		{name: "512MiB", limit: 512 << 20, shards: 2, entries: 1024, view: 2, snapBytes: 16 << 20},
		{name: "64MiB: the floors", limit: 64 << 20, shards: 64, entries: 64, view: 1, snapBytes: 2 << 20},
		{name: "64GiB", limit: 64 << 30, shards: 2, entries: 131072, view: 64, snapBytes: 2 << 30},
		{name: "1PiB: the caps", limit: 1 << 50, shards: 1, entries: 1 << 20, view: 64, snapBytes: 1 << 45},
		{name: "no limit", limit: math.MaxInt64, shards: 2, entries: 4096, view: 8, snapBytes: 64 << 20},
		{name: "zero", limit: 0, shards: 2, entries: 4096, view: 8, snapBytes: 64 << 20},
		{name: "caches off stay off", limit: 16 << 30, shards: 2, off: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := def
			c.Shards = tc.shards
			if tc.off {
				c.CacheEntries, c.ViewCacheEntries, c.ViewSnapshotBytes = 0, 0, 0
			}
			c.SizeCaches(tc.limit)
			if c.CacheEntries != tc.entries || c.ViewCacheEntries != tc.view || c.ViewSnapshotBytes != tc.snapBytes {
				t.Errorf("query cache %d entries, view cache %d, view snapshots %d bytes; want %d, %d, %d",
					c.CacheEntries, c.ViewCacheEntries, c.ViewSnapshotBytes, tc.entries, tc.view, tc.snapBytes)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("sized config: %v", err)
			}
			if tc.limit > 0 && tc.limit < math.MaxInt64 && !tc.off {
				// The query caches' worst case stays within their share.
				if worst := int64(c.CacheEntries) * int64(c.CacheMaxReplyBytes) * int64(c.Shards); worst > max(tc.limit/32, 64*8<<10*int64(c.Shards)) {
					t.Errorf("query caches may hold %d bytes, more than a 32nd of %d", worst, tc.limit)
				}
			}
		})
	}
}
