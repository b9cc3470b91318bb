// Package readmodel holds the compact per-graph read models that projection
// shards build from the event stream, and the queries on them.
//
// # What exists
//
// A Graph folds the events of one graph (messages/cairn/v1 Event) into compact
// storage. It is deterministic, does no I/O and is not safe for concurrent
// use: a projection shard actor owns it and serialises writes and queries.
//
//	g, err := readmodel.New("g1", readmodel.DefaultConfig())
//	err = g.ApplyTx(seq, tx.Events) // all or nothing; seq <= g.AsOf() is ignored
//	v, err := g.Node("alice")       // components, categories, degrees
//	p, err := g.FindByComponent("color", []byte("red"), "", 100)
//	p, err = g.FindByComponent("color", []byte("red"), p.Next, 100)
//	n, err := g.Neighbors("alice", readmodel.Both, "knows", "", 100)
//	s, err := g.Stats()
//	r, err := g.KHop("alice", readmodel.Out, "", 2, readmodel.TraverseLimits{})
//	path, err := g.ShortestPath("alice", "bob", readmodel.Both, "", "", readmodel.TraverseLimits{})
//	c, err := g.Component("alice", "", 100) // size and a page of members
//	n, err := g.ComponentCount()
//	g.Compact() // after catching up: fold the delta, drop spare capacity
//	for n := range g.LiveNodes() { ... } // every node, then every edge,
//	for e := range g.LiveEdges() { ... } // in dense-index order (a viewer's start)
//
// Data enters only through Apply (one event) and ApplyTx (one transaction,
// validated as a whole against the graph before any event is applied, so a
// failed transaction returns an *ApplyError naming the event and changes
// nothing). It leaves through the query methods, which return the
// sentinels of errors.go (ErrNotFound, ErrInvalidArgument, ErrBadCursor,
// ErrLimitExceeded), and through the iterators LiveNodes and LiveEdges
// (every live node and edge in deterministic dense-index order).
//
// Storage, per graph. Integer arrays are packed (internal/packed) in the
// fewest bits (2, 4, 8, 16, 24 or 32) that hold their largest value, so a
// graph below 16M nodes and edges pays 3 bytes per index:
//   - nodes: dense uint32 indices, external ids interned in an intern.Table
//     (one byte arena plus an open-addressing table of indices: no Go map and
//     no string header per entry; an id of the form prefix+number, such as
//     "n123456", is kept in its 4-byte cell without arena); freed indices are
//     reused via a free list; out- and in-degree take a byte each, with a
//     small map for the nodes above 254 (degrees.go);
//   - edges: dense uint32 indices with ids in a second intern.Table, source
//     and target indices and the interned edge type in packed arrays: about
//     8 bytes of id ("e123456") plus 6.25 bytes per edge;
//   - adjacency (package adjacency): out- and in-CSR of edge indices (3 bytes
//     per edge and direction, 3 per node and direction) plus a delta of
//     per-node append lists and a dead-edge bitset, compacted once it
//     exceeds max(Config.CompactMin, edges/Config.CompactDivisor);
//   - components: a flyweight store, each distinct (type, value) stored once
//     with a reference count and freed with the last reference; a node holds
//     its component handles and category ids as one list of uvarints in a
//     shared byte array (lists.go);
//   - indices: roaring bitmaps of node indices by component type, by
//     (type, value) and by category; a bloom filter in front of the
//     (type, value) lookup, rebuilt when keys added since its last build
//     exceed its sizing or dead keys outnumber live ones at a compaction;
//   - metrics kept incrementally: node and edge counts, total-degree
//     histogram, nodes per component type. TopDegree (degree centrality:
//     the k nodes of highest total, out- or in-degree) finds the smallest
//     qualifying degree from the histogram (or a count of the 1-byte
//     degrees), then collects the nodes at or above it in one pass; the
//     answer is cached until a degree changes.
//
// Pages are in dense-index order (find, component) or edge-index order
// (neighbours: the adjacency keeps each row sorted by edge index), up to
// MaxLimit entries, with an opaque cursor, and survive writes: a page walk
// neither skips nor repeats an entry that is there for the whole walk,
// since a live node or edge keeps its index. A find cursor holds the next
// dense index; a neighbour cursor the phase (out, in) and the next edge
// index; a component cursor the start node and the next dense index. Each
// is bound to the query that made it (find cursors to the kind of find and
// its arguments, neighbour cursors to the node, direction and edge type):
// given to another, it is refused with ErrBadCursor (INVALID_ARGUMENT on
// the wire), never answered with an empty page.
//
// Traversals (traverse.go) work on dense indices with epoch-stamped visit
// arrays and frontier slices kept in the Graph and reused, so a query costs
// nothing per node it does not touch (and no map per visited node); the
// scratch grows to 16 bytes per node index once a traversal has run, 32
// after a weighted shortest path, and Compact gives it back:
//   - KHop: level-synchronous BFS to depth 1..MaxDepth (6), answers ordered
//     by distance then id (each level radix-sorted on the ids' first 8
//     bytes); TraverseLimits (defaults 100,000 each) cap a level and the
//     nodes reached with ErrLimitExceeded;
//   - ShortestPath: bidirectional BFS expanding whole levels of the side
//     whose frontier has fewer edges, high-degree nodes last. With a weight
//     it is a bidirectional Dijkstra that queues a settled node's row (a
//     4-ary heap of (cost, node, row position), rows walked 32 edges at a
//     time), grows the side with less work, queues no row that cannot beat
//     the best path found, and stops when the two queue tops together reach
//     it. Edges carry no components in the read model, so the weight is the
//     named numeric component of the node an edge enters (strconv.ParseFloat
//     of its value; missing, negative or not a number counts 1), and a
//     path's cost is the sum over its nodes after the first. Among equal
//     paths the answer is deterministic for a given event history, not
//     canonical. MaxResults caps visited (BFS) or settled (Dijkstra) nodes,
//     MaxFrontier each side's frontier (BFS) or queued rows (Dijkstra);
//   - Component and ComponentCount: weakly connected components (both
//     directions, any edge type) by union-find over the live edges, with
//     the members grouped by a counting sort, rebuilt on the first call
//     after a write (O(nodes + edges), 8 bytes per node kept) and cached by
//     graph version. Component pages members in dense-index order; its
//     cursor holds the start node's and the next dense index, so it
//     survives writes: a member throughout a page walk is listed once.
//
// # Snapshots
//
// g.AppendSnapshot(buf) appends a binary snapshot of g (format
// SnapshotFormat) and LoadSnapshot(data, cfg) rebuilds an identical Graph:
// same answers, cursors included, and the same future behaviour (edge
// indices reused in the same order, compactions at the same points), given
// the same Config. The format is g's storage as it lies in memory, so that a
// load is mostly copying: a 24-byte header (magic "cairnrm\x00", format
// uint32, CRC-32C of the body uint32, body length uint64, little-endian),
// then the body: graph id, flags, AsOf, Version; each id table (intern) as
// its hash seed, arena, packed offset cells and packed hash slots, and
// while the hash table grows, its old slots and how many are moved, then
// the slots' one-byte hash tags (since format 5; the seeded hash is
// stored, so nothing is rehashed); free lists; the node
// lists' packed offsets and bytes; degrees; edge ends and types as packed
// arrays; the adjacency's CSR arrays, delta rows and dead bitset, and when a
// compaction was running, its frozen rows, which LoadSnapshot compacts
// again in the background so that it is taken in at the same point; the
// component store with its roaring bitmaps in their portable format;
// categories; the catalogue section (type, metadata, creation and change
// times, and since format 4 FirstSeq). Integers are uvarints, runs of integers fixed-width. The
// component key map, name maps, degree histogram and bloom filter (at its
// old size) are rebuilt; the caches start empty. LoadSnapshot checks the
// header, then every length against the bytes left and every index,
// offset and handle against what it points into, and refuses what does not
// fit with ErrInvalidSnapshot naming the part; it never panics. Consistency
// between parts beyond that (that an edge sits in its ends' rows, say) is
// trusted to the checksum. Compression is the caller's (package
// persistence): packed arrays leave zstd little to gain.
//
// A snapshot need not stop the graph's owner while it is encoded:
// f := g.Freeze() captures g in O(pages) (about 0.25 ms at 1,000,000 nodes
// and 3,000,000 edges; BenchmarkSnapshot/Freeze) and f.AppendSnapshot(buf),
// which may run on another goroutine while g goes on changing, writes
// exactly what g.AppendSnapshot would have written at the freeze.
// f.AppendSnapshotPaced(buf, step) writes the same bytes and calls step
// after each array or MiB (a few milliseconds at most), where a caller that
// runs it as background work may sleep; f.SizeHint() sizes a buffer it
// fills without growing. The
// large arrays are shared copy-on-write (packed.Pages, the intern tables'
// paged arenas, the adjacency's CSR arrays and paged delta, the bitmaps in
// roaring's copy-on-write mode); the node lists' bytes, the one-byte
// degrees, the free lists and the component store's slices are copied.
//
// # Not here
//
// Edge components (and so edge weights: Dijkstra weighs the node an edge
// enters); point-in-time views (package actors builds them from snapshots
// and the stream);
// canonical (least by id) shortest paths. The projection shards, min_seq
// waiting and the query cache are in package actors. BenchmarkBigGraph
// (run it with -readmodel.big) measures 1,000,000 nodes and 3,000,000 edges
// at about 98 MB of heap (goal: 100 MB), of which ids take 32 MB and
// adjacency 24 MB.
package readmodel
