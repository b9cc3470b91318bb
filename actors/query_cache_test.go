package actors

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// A newer version's answer removes the graph's older answers from the LRU
// at once (they could never be found again), without counting them as
// evictions; other graphs' answers stay; an older version's answer is not
// kept; Forget drops a graph's answers.
func TestQueryCacheDropsStaleVersions(t *testing.T) {
	var evictions atomic.Uint64
	c, err := newQueryCache(ProjectionConfig{CacheEntries: 64, CacheTTL: time.Minute}, &evictions)
	if err != nil {
		t.Fatal(err)
	}
	key := func(graph string, version uint64, q int) cacheKey {
		return cacheKey{graph: graph, version: version, kind: 1, query: fmt.Sprint(q)}
	}
	rep := &cairnv1.QueryReply{}
	for q := range 10 {
		c.Add(key("a", 1, q), rep)
		c.Add(key("b", 1, q), rep)
	}
	if n := c.lru.Len(); n != 20 {
		t.Fatalf("%d answers cached, want 20", n)
	}
	c.Add(key("a", 2, 0), rep)
	if n := c.lru.Len(); n != 11 {
		t.Fatalf("after a's version 2: %d answers cached, want 11 (b's 10 and a's newest)", n)
	}
	if _, ok := c.Get(key("a", 1, 1)); ok {
		t.Fatal("a's version-1 answer still cached")
	}
	if _, ok := c.Get(key("b", 1, 1)); !ok {
		t.Fatal("b's answer dropped by a's write")
	}
	if _, ok := c.Get(key("a", 2, 0)); !ok {
		t.Fatal("a's version-2 answer not cached")
	}
	c.Add(key("a", 1, 5), rep)
	if _, ok := c.Get(key("a", 1, 5)); ok {
		t.Fatal("an answer older than the graph's cached ones was kept")
	}
	if n := evictions.Load(); n != 0 {
		t.Fatalf("%d evictions counted for stale answers, want 0", n)
	}
	c.Forget("b")
	if n := c.lru.Len(); n != 1 {
		t.Fatalf("after Forget(b): %d answers cached, want 1", n)
	}
	c.Add(key("b", 0, 0), rep) // a graph adopted again starts over
	if _, ok := c.Get(key("b", 0, 0)); !ok {
		t.Fatal("b's answer not cached after Forget")
	}

	// A full LRU evicts (and counts it), and the keys listed for one
	// version stay bounded however many answers pass through.
	for q := range 1000 {
		c.Add(key("a", 2, q), rep)
	}
	if evictions.Load() == 0 {
		t.Fatal("no evictions counted from a full cache")
	}
	if n, lim := len(c.current["a"].keys), 2*64+64; n > lim {
		t.Fatalf("%d keys listed for a's version, want at most %d", n, lim)
	}

	// Read without writes, many graphs: what is listed stays bounded by
	// the cache's size, and graphs whose answers all left are forgotten.
	for g := range 1000 {
		for q := range 3 {
			c.Add(key(fmt.Sprint("r", g), 1, q), rep)
		}
	}
	listed := 0
	for _, cv := range c.current {
		listed += len(cv.keys)
	}
	if listed != c.listed {
		t.Fatalf("%d keys listed, counted %d", listed, c.listed)
	}
	if lim := 2*64 + 64; listed > lim {
		t.Fatalf("%d keys listed over %d graphs, want at most %d", listed, len(c.current), lim)
	}
	if n := len(c.current); n > 64+64 {
		t.Fatalf("%d graphs listed for a cache of 64 answers", n)
	}
}
