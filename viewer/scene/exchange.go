package scene

import (
	"sync"
	"sync/atomic"
)

// Exchange hands Frames from the producer (the render actor, through
// Scene.Publish) to the GL thread (Acquire), double-buffered: the GL thread
// owns the Frame it acquired last until its next Acquire, and the producer
// writes only the other buffer. Publish never waits for the GL thread and
// Acquire never waits for the producer; a producer that publishes again
// before the GL thread acquired overwrites the unacquired Frame, whose
// changes the next Frame still carries (coalescing).
//
// Each Frame's dirty ranges are relative to the Frame the GL thread
// acquired before it, whatever was published in between: uploading them
// brings the GPU's copy of that Frame to the new one. A buffer catches up
// on everything it missed while the GL thread held it before it is
// published again.
type Exchange struct {
	mu     sync.Mutex
	frames [2]Frame
	meta   [2]bufMeta
	gl     int // buffer the GL thread holds, -1 none
	ready  int // buffer published and not acquired yet, -1 none

	credits  chan struct{}
	wake     chan struct{}
	publish  atomic.Uint64
	acquired atomic.Uint64
}

// bufMeta is what the producer knows of a buffer.
type bufMeta struct {
	epoch   uint64 // the Scene's epoch it was written in (0: never)
	written bool
}

// NewExchange returns an Exchange with no Frame yet.
func NewExchange() *Exchange {
	return &Exchange{gl: -1, ready: -1, credits: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
}

// Acquire returns the newest published Frame, or nil when none was
// published since the last Acquire. The Frame returned is the GL thread's
// until its next Acquire; the previous one goes back to the producer. It
// never blocks.
func (x *Exchange) Acquire() *Frame {
	x.mu.Lock()
	if x.ready < 0 {
		x.mu.Unlock()
		return nil
	}
	x.gl, x.ready = x.ready, -1
	f := &x.frames[x.gl]
	x.mu.Unlock()
	x.acquired.Add(1)
	select {
	case x.credits <- struct{}{}:
	default:
	}
	return f
}

// Credits receives a value after an Acquire took a Frame: the producer may
// publish the next one. A producer that publishes only on a credit keeps
// at most one Frame waiting and merges the deltas in between into it.
func (x *Exchange) Credits() <-chan struct{} { return x.credits }

// Published receives a value after a Publish: a GL loop that waits for
// something new may wait on it, then Acquire.
func (x *Exchange) Published() <-chan struct{} { return x.wake }

// Stats returns how many Frames were published and how many acquired.
func (x *Exchange) Stats() (published, acquired uint64) {
	return x.publish.Load(), x.acquired.Load()
}

// Publish writes the scene's current state into the Exchange's free buffer
// and makes it the newest Frame: it copies what that buffer missed (the
// slots changed since it was last written, merged into ranges) and sets
// the dirty ranges relative to the Frame the GL thread holds. It takes
// O(changed slots + slots/64) time, not O(slots). One Exchange serves one
// Scene. It returns the Frame's sequence.
func (s *Scene) Publish(x *Exchange) uint64 {
	x.mu.Lock()
	b := 0
	if x.gl == 0 {
		b = 1
	}
	x.ready = -1 // taken back if it was waiting: rewritten below
	gl := x.gl
	x.mu.Unlock()

	f, m := &x.frames[b], &x.meta[b]
	nodes, edges := len(s.ids), len(s.ends)/2
	whole := !m.written || m.epoch != s.epoch
	if cap(f.ID) < nodes || cap(f.Ends) < 2*edges {
		whole = true
	}
	if whole {
		s.fill(f, nodes, edges)
	} else {
		s.catchUp(f, &s.missing[b], nodes, edges)
	}
	s.missing[b].pos.clear()
	s.missing[b].node.clear()
	s.missing[b].edge.clear()
	m.epoch, m.written = s.epoch, true

	f.Graph, f.Seq, f.Head, f.Time, f.LayoutSeq = s.graph, s.seq, s.head, s.at, s.seq
	f.Nodes, f.Edges = nodes, edges
	f.Pos, f.Color, f.Size, f.ID, f.Deg = f.Pos[:2*nodes], f.Color[:nodes], f.Size[:nodes], f.ID[:nodes], f.Deg[:nodes]
	f.Ends = f.Ends[:2*edges]
	f.LiveNodes, f.LiveEdges = s.liveNodes, s.liveEdges
	f.PosDirty, f.NodeDirty, f.EdgeDirty = f.PosDirty[:0], f.NodeDirty[:0], f.EdgeDirty[:0]
	// Relative to the Frame the GL thread holds: what changed since that
	// buffer was written is exactly what its GPU copy lacks. A GL buffer
	// of another epoch or capacity (or none) needs everything.
	f.Full = gl < 0 || x.meta[gl].epoch != s.epoch || cap(x.frames[gl].ID) != cap(f.ID) || cap(x.frames[gl].Ends) != cap(f.Ends)
	if !f.Full {
		g := &s.missing[gl]
		f.PosDirty = g.pos.ranges(f.PosDirty, uint32(nodes), s.opt.rangeGap, s.opt.maxRanges)
		f.NodeDirty = g.node.ranges(f.NodeDirty, uint32(nodes), s.opt.rangeGap, s.opt.maxRanges)
		f.EdgeDirty = g.edge.ranges(f.EdgeDirty, uint32(edges), s.opt.rangeGap, s.opt.maxRanges)
	}

	x.mu.Lock()
	x.ready = b
	x.mu.Unlock()
	n := x.publish.Add(1)
	select {
	case x.wake <- struct{}{}:
	default:
	}
	return n
}

// fill rewrites f whole from the scene, with room to grow.
func (s *Scene) fill(f *Frame, nodes, edges int) {
	nc := max(cap(f.ID), 64)
	for nc < nodes {
		nc *= 2
	}
	ec := max(cap(f.Ends)/2, 64)
	for ec < edges {
		ec *= 2
	}
	if cap(f.ID) != nc {
		f.Pos, f.Color, f.Size, f.ID, f.Deg = make([]float32, 2*nc), make([]uint32, nc), make([]float32, nc), make([]string, nc), make([]uint32, nc)
	}
	if cap(f.Ends) != 2*ec {
		f.Ends = make([]uint32, 2*ec)
	}
	f.Pos, f.Color, f.Size, f.ID, f.Deg = f.Pos[:2*nodes], f.Color[:nodes], f.Size[:nodes], f.ID[:nodes], f.Deg[:nodes]
	copy(f.Pos, s.pos)
	copy(f.Color, s.color)
	copy(f.Size, s.size)
	copy(f.ID, s.ids)
	copy(f.Deg, s.deg)
	f.Ends = f.Ends[:2*edges]
	copy(f.Ends, s.ends)
}

// catchUp copies into f the slots in miss.
func (s *Scene) catchUp(f *Frame, miss *changes, nodes, edges int) {
	f.Pos, f.Color, f.Size, f.ID, f.Deg = f.Pos[:2*nodes], f.Color[:nodes], f.Size[:nodes], f.ID[:nodes], f.Deg[:nodes]
	f.Ends = f.Ends[:2*edges]
	// Runs of dirty slots as they are: unlike a GL upload, a copy costs
	// nothing per call, so nothing is merged.
	miss.pos.runs(uint32(nodes), func(lo, hi uint32) {
		copy(f.Pos[2*lo:2*hi], s.pos[2*lo:2*hi])
	})
	miss.node.runs(uint32(nodes), func(lo, hi uint32) {
		copy(f.Color[lo:hi], s.color[lo:hi])
		copy(f.Size[lo:hi], s.size[lo:hi])
		copy(f.ID[lo:hi], s.ids[lo:hi])
		copy(f.Deg[lo:hi], s.deg[lo:hi])
	})
	miss.edge.runs(uint32(edges), func(lo, hi uint32) {
		copy(f.Ends[2*lo:2*hi], s.ends[2*lo:2*hi])
	})
}
