// Package layout places a graph's nodes for the viewer: a Barnes–Hut
// ForceAtlas2 layout that implements scene.Placer. It is pure Go (no cgo)
// and never runs on the GL thread.
//
// # Data in and out
//
// The scene calls it from one goroutine, in history order: AddNode,
// AddEdge, RemoveEdge and RemoveNode per event, with dense slot numbers
// (a freed slot is reused by a later add), then EndTx at the end of each
// transaction. EndTx places the transaction's new nodes at their placed
// neighbours' barycentre plus a hashed offset and runs a fixed number of
// ticks on them and their 1–2-hop neighbourhood (the hot set, capped at
// Params.HotCap nodes) while every other node stays put. Positions then
// holds x, y per slot and TakeMoved the slot ranges moved since its last
// call.
//
// Relax runs global iterations; FirstLayout lays a whole graph out from
// scratch, coarsening it first (multilevel) above Params.MultilevelAbove
// nodes. Pin and Unpin keep a node where it is.
//
// The forces are ForceAtlas2's with masses degree + 1: repulsion
// kr·m₁·m₂/d, attraction along each edge linear in its length, and strong
// gravity kg·m·d (Params.WeakGravity for the plain kg·m), so that
// isolated nodes and small components settle beside the main one instead
// of on a far ring. On the Debian package graph (68K nodes, 275K edges,
// 4K isolated) FirstLayout(30) shows its clusters spread over a disc in
// about 2 s.
//
// # Determinism
//
// Positions are a pure function of the calls made, the Params and the seed
// (SeedFor of the graph id): the same history gives bit-identical positions
// (Hash) whatever the worker count or GOMAXPROCS. Nodes are visited in slot
// order and adjacency in edge slot order; workers compute each node's force
// on its own, summed in a fixed order (Barnes–Hut tree in a fixed traversal,
// then attraction, then gravity), and global sums run in slot order on one
// goroutine. Every product that feeds a sum is rounded explicitly (Go may
// otherwise fuse it into a multiply-add on some machines), offsets are
// hashed without trigonometry, and no map is iterated.
//
// # Cost
//
// Measured on the 2-core reference machine, 100K nodes / 200K edges: one
// Relax iteration 45–90 ms (75–90 ms of CPU), FirstLayout(20) about 2.3 s,
// a one-node EndTx about 0.6 ms, an EndTx whose hot set reaches HotCap
// (2,048) about 30 ms. EndTx's work follows the transaction, not the graph:
// see EndTx.
//
// # Keyframes
//
// MarshalBinary writes the state (positions, pins, structure, the open
// transaction, the cold tree's changed nodes, Params and seed) in a compact
// byte form (28 bytes a node for 100K nodes / 200K edges: 16 for the
// position, the rest mostly edges); Unmarshal of it resumes with the same
// positions afterwards as an uninterrupted run. As a scene.StatefulPlacer
// (AppendState, RestoreState) a Layout puts the same bytes in the scene's
// keyframes, and refuses a state of other Params or another seed.
//
// # Example
//
//	l, err := layout.New(layout.DefaultParams(), layout.SeedFor(graphID))
//	if err != nil { ... }
//	l.AddNode(0)
//	l.AddNode(1)
//	l.AddEdge(0, 0, 1)
//	l.EndTx()
//	pos := l.Positions()           // x0, y0, x1, y1
//	moved := l.TakeMoved(nil)      // [{0 2}]
//	key, _ := l.MarshalBinary()    // a keyframe
//	again, err := layout.Unmarshal(key)
package layout
