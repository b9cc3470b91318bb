package actors

import (
	"fmt"
	"hash/maphash"
	"slices"
	"sync/atomic"

	"github.com/elastic/go-freelru"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// queryCache is a shard's query cache: an LRU of answers keyed by graph,
// version and query (cacheKey), that drops a graph's answers of an older
// version as soon as one of a newer version is put. A write raises the
// version, so those answers could never be found again; left in the LRU
// until it is full or their TTL ends, they are live heap the garbage
// collector marks on every cycle. Under 10,000 events/s and 1,000 queries/s
// on a 1M-node graph they were most of the engine's heap objects (a
// reply's protobuf messages, all pointers) and a large part of each
// cycle's mark work. Only the shard actor uses it: not safe for concurrent
// use.
type queryCache struct {
	lru *freelru.LRU[cacheKey, *cairnv1.QueryReply]
	// current holds, per graph, the version of its newest answers put and
	// their keys (some may since have left the LRU).
	current map[string]*cachedVersion
	// listed counts the keys in current, and capacity is the LRU's: once
	// listed passes twice capacity, the keys the LRU let go of are
	// forgotten (compact), so what current holds is bounded by the cache's
	// size, not by the number of graphs read.
	listed, capacity int
	// dropping is set while stale answers are removed, so that they do not
	// count as evictions.
	dropping bool
}

type cachedVersion struct {
	version uint64
	keys    []cacheKey
}

func newQueryCache(cfg ProjectionConfig, evictions *atomic.Uint64) (*queryCache, error) {
	lru, err := freelru.New[cacheKey, *cairnv1.QueryReply](uint32(cfg.CacheEntries),
		func(k cacheKey) uint32 { return uint32(maphash.Comparable(cacheSeed, k)) })
	if err != nil {
		return nil, fmt.Errorf("query cache: %w", err)
	}
	c := &queryCache{lru: lru, current: map[string]*cachedVersion{}, capacity: cfg.CacheEntries}
	lru.SetLifetime(cfg.CacheTTL)
	lru.SetOnEvict(func(cacheKey, *cairnv1.QueryReply) {
		if !c.dropping {
			evictions.Add(1)
		}
	})
	return c, nil
}

// Get returns the answer cached under k.
func (c *queryCache) Get(k cacheKey) (*cairnv1.QueryReply, bool) { return c.lru.Get(k) }

// Add caches r under k. An answer of a newer version than the graph's
// cached ones first removes those; one of an older version (a time-travel
// view's, or a race that cannot happen inside the shard actor) is not kept.
func (c *queryCache) Add(k cacheKey, r *cairnv1.QueryReply) {
	cv := c.current[k.graph]
	switch {
	case cv == nil:
		cv = &cachedVersion{version: k.version}
		c.current[k.graph] = cv
	case k.version < cv.version:
		return
	case k.version > cv.version:
		c.drop(cv)
		cv.version = k.version
	}
	c.lru.Add(k, r)
	cv.keys = append(cv.keys, k)
	c.listed++
	// Keys the LRU let go of (full, or past their TTL) stay listed until
	// the version moves on: forget them once the lists outgrow the LRU.
	if c.listed > 2*c.capacity+64 {
		c.compact()
	}
}

// compact forgets the listed keys the LRU no longer holds, and the graphs
// left with none. It costs a look-up per listed key, once per capacity
// answers put at most.
func (c *queryCache) compact() {
	c.listed = 0
	for graph, cv := range c.current {
		n := c.kept(cv.keys)
		switch {
		case n == 0:
			delete(c.current, graph)
		case cap(cv.keys) > 4*n+16:
			cv.keys = slices.Clone(cv.keys[:n])
		default:
			cv.keys = cv.keys[:n]
		}
		c.listed += n
	}
}

// drop removes cv's answers from the LRU and forgets their keys.
func (c *queryCache) drop(cv *cachedVersion) {
	c.dropping = true
	for _, k := range cv.keys {
		c.lru.Remove(k)
	}
	c.dropping = false
	c.listed -= len(cv.keys)
	clear(cv.keys)
	cv.keys = cv.keys[:0]
}

// kept moves the keys the LRU still holds to the front of keys and returns
// how many there are.
func (c *queryCache) kept(keys []cacheKey) int {
	n := 0
	for _, k := range keys {
		if c.lru.Contains(k) {
			keys[n] = k
			n++
		}
	}
	clear(keys[n:])
	return n
}

// Forget drops graph's answers (the graph left the shard).
func (c *queryCache) Forget(graph string) {
	if cv := c.current[graph]; cv != nil {
		c.drop(cv)
		delete(c.current, graph)
	}
}
