package cairn_test

import (
	"context"
	"github.com/cairn-graph/cairn"
	"testing"
)

// With the cache off, nothing is cached or counted.
func TestQueryCacheOff(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	eng := openEngineWith(t, dir, func(c *cairn.Config) { c.Projections.CacheEntries = 0 })
	rep, err := eng.Execute(ctx, env("g", "c1", cmdCreate(), cmdAdd("a", nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		q, err := eng.Query(ctx, getNode("g", "a", rep.GetSeq()))
		if err != nil || q.GetCached() {
			t.Fatalf("reply %v, %v: want an uncached answer", q, err)
		}
	}
	if hits, misses := eng.Projections().CacheStats(); hits+misses != 0 {
		t.Fatalf("cache off counted %d hits and %d misses", hits, misses)
	}
}
