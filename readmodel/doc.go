// Package readmodel holds the compact per-graph read models that projection
// shards build from the event stream, and the point-lookup queries on them.
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
//	g.Compact() // after catching up: fold the delta, drop spare capacity
//
// Data enters only through Apply (one event) and ApplyTx (one transaction,
// validated as a whole against the graph before any event is applied, so a
// failed transaction returns an *ApplyError naming the event and changes
// nothing). It leaves only through the query methods, which return the
// sentinels of errors.go (ErrNotFound, ErrInvalidArgument, ErrBadCursor).
//
// Storage, per graph:
//   - nodes: dense uint32 indices, external ids interned in an intern.Table
//     (one byte arena plus an open-addressing table of indices: no Go map and
//     no string header per entry); freed indices are reused via a free list;
//   - edges: dense uint32 indices with ids in a second intern.Table, source
//     and target indices in two []uint32 and the edge type interned as a
//     uint16: about 19 bytes of id (8-byte ids) plus 10 bytes per edge;
//   - adjacency (package adjacency): out- and in-CSR of edge indices (4 bytes
//     per edge and direction, 4 per node and direction) plus a delta of
//     per-node append lists and a dead-edge bitset, compacted once it
//     exceeds max(Config.CompactMin, edges/Config.CompactDivisor);
//   - components: a flyweight store, each distinct (type, value) stored once
//     with a reference count and freed with the last reference; a node holds
//     a short list of uint32 handles in one shared array (lists.go);
//   - indices: roaring bitmaps of node indices by component type, by
//     (type, value) and by category; a bloom filter in front of the
//     (type, value) lookup, rebuilt when keys added since its last build
//     exceed its sizing or dead keys outnumber live ones at a compaction;
//   - metrics kept incrementally: node and edge counts, total-degree
//     histogram, nodes per component type; top-k degree nodes computed from
//     the histogram and one pass over the degree arrays, cached until a
//     degree changes.
//
// Pages are in dense-index order (find) or adjacency order (neighbours), up
// to MaxLimit entries, with an opaque cursor. A find cursor holds the next
// dense index and stays valid across writes. A neighbour cursor holds a
// position in the node's row, valid until the next adjacency compaction,
// after which it gets ErrBadCursor.
//
// # Still to come (issue "Read model")
//
// Projection shard actors feeding Graph from JetStream; edge components;
// k-hop traversal, shortest path, connected components, degree centrality
// beyond top-k; as_of_seq / min_seq waiting; the query cache; the API and
// CLI; point-in-time views and snapshots; neighbour cursors that survive
// compaction; and a smaller memory footprint. BenchmarkBigGraph (run it with
// -readmodel.big) measures 1,000,000 nodes and 3,000,000 edges at about
// 186 MB of heap, against a goal of 100 MB: ids take 75 MB of it.
package readmodel
