// Package scene is the viewer's model of one graph: nodes and edges in dense
// GPU slots, folded from the graph's transactions, coalesced per frame and
// handed to the GL thread. It is pure Go (no cgo).
package scene

import "time"

// Range is a half-open range of slots, [Lo, Hi).
type Range struct{ Lo, Hi uint32 }

// Frame is one picture's worth of scene, handed from the scene (written by
// the render actor) to the GL thread. The GL thread owns a Frame between
// Exchange.Acquire and the next Acquire; nothing writes it meanwhile.
//
// Every per-node slice is indexed by slot and holds Nodes entries; the
// per-edge slice holds 2*Edges entries. Slots are dense GPU buffer indexes:
// a freed slot is reused by a later add and is hidden (Size 0, alpha 0)
// meanwhile, never compacted away, so a change to one node touches only its
// slot in every buffer.
type Frame struct {
	Graph string
	Seq   uint64    // stream sequence of the last transaction folded in (0: none)
	Head  string    // CID of the last event folded in ("" when Seq is 0)
	Time  time.Time // that transaction's time
	// LayoutSeq is the stream sequence up to which positions are laid out
	// (at most Seq): nodes added after it sit where they were placed.
	LayoutSeq uint64

	Nodes int       // node slots in use (the high-water mark)
	Pos   []float32 // x, y per slot, in world units
	Color []uint32  // RGBA8 per slot, R in the low byte; alpha 0 hides
	Size  []float32 // diameter in pixels at zoom 1; 0 hides
	ID    []string  // node id per slot; "" for a free slot
	Deg   []uint32  // degree (in + out) per slot

	Edges int      // edge slots in use (the high-water mark)
	Ends  []uint32 // from slot, to slot per edge slot; a free edge slot holds the same slot twice (a degenerate line)

	// What changed since the last Frame the GL thread acquired: the GL
	// thread uploads only these ranges. Full means upload everything (the
	// first frame, a resynchronisation from a keyframe, a grown buffer).
	Full      bool
	PosDirty  []Range
	NodeDirty []Range // Color, Size, ID, Deg
	EdgeDirty []Range

	LiveNodes, LiveEdges int // nodes and edges present (not hidden) at Seq
}

// Placer lays the scene's nodes out; viewer/layout implements it. The scene
// calls it from one goroutine, in history order, so that positions are a
// pure function of the history folded so far (the Placer may use worker
// goroutines inside a call, but its results must not depend on their
// number or timing).
type Placer interface {
	AddNode(slot uint32) // placed at its placed neighbours' barycentre plus a hashed offset, once its edges are known (at EndTx)
	RemoveNode(slot uint32)
	AddEdge(slot, from, to uint32)
	RemoveEdge(slot uint32)
	// EndTx ends one transaction: it places the transaction's new nodes
	// and runs a fixed number of ticks on them and their 1–2-hop
	// neighbourhood.
	EndTx()
	// Positions is x, y per slot, valid until the next call of any method.
	Positions() []float32
	// TakeMoved appends to dst the slot ranges whose position changed
	// since the last TakeMoved, and forgets them.
	TakeMoved(dst []Range) []Range
}
