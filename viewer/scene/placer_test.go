package scene

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// logPlacer records the calls a Scene makes and, at EndTx, puts each node
// added in the transaction at (10·slot, −slot) and reports it moved.
type logPlacer struct {
	calls []string
	pos   []float32
	added []uint32
	moved []Range
}

func (p *logPlacer) AddNode(slot uint32) {
	p.calls = append(p.calls, fmt.Sprint("node+", slot))
	p.added = append(p.added, slot)
	for uint32(len(p.pos)/2) <= slot {
		p.pos = append(p.pos, 0, 0)
	}
}
func (p *logPlacer) RemoveNode(slot uint32) { p.calls = append(p.calls, fmt.Sprint("node-", slot)) }
func (p *logPlacer) AddEdge(slot, from, to uint32) {
	p.calls = append(p.calls, fmt.Sprintf("edge+%d:%d-%d", slot, from, to))
}
func (p *logPlacer) RemoveEdge(slot uint32) { p.calls = append(p.calls, fmt.Sprint("edge-", slot)) }
func (p *logPlacer) EndTx() {
	p.calls = append(p.calls, "end")
	for _, s := range p.added {
		p.pos[2*s], p.pos[2*s+1] = float32(10*s), -float32(s)
		p.moved = append(p.moved, Range{s, s + 1})
	}
	p.added = p.added[:0]
}
func (p *logPlacer) Positions() []float32 { return p.pos }
func (p *logPlacer) TakeMoved(dst []Range) []Range {
	dst = append(dst, p.moved...)
	p.moved = p.moved[:0]
	return dst
}

func TestScenePlacerCalls(t *testing.T) {
	p := &logPlacer{}
	s := New("g", p)
	x := NewExchange()
	mustApply(t, s, 1, nodeAdded("a"), nodeAdded("b"), edgeAdded("ab", "a", "b"))
	mustApply(t, s, 2, edgeRemoved("ab", "a", "b"), nodeRemoved("a"), nodeAdded("c"))
	if got, want := strings.Join(p.calls, " "), "node+0 node+1 edge+0:0-1 end edge-0 node-0 node+0 end"; got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
	s.Publish(x)
	f := x.Acquire()
	if !slices.Equal(f.Pos, []float32{0, 0, 10, -1}) || f.ID[0] != "c" {
		t.Fatalf("positions %v ids %v", f.Pos, f.ID)
	}
	// Moves reported by the Placer alone are dirty positions.
	p.pos[2], p.moved = 42, append(p.moved, Range{1, 2})
	mustApply(t, s, 3, componentSet("b", "t", "v"))
	s.Publish(x)
	f = x.Acquire()
	if f.Full || !slices.Equal(f.PosDirty, []Range{{1, 2}}) || f.Pos[2] != 42 {
		t.Fatalf("after a move: full %v pos ranges %v pos %v", f.Full, f.PosDirty, f.Pos)
	}
}

func TestSceneGraphDeleted(t *testing.T) {
	p := &logPlacer{}
	s := New("g", p)
	mustApply(t, s, 1, nodeAdded("a"), nodeAdded("b"), edgeAdded("ab", "a", "b"), edgeAdded("ba", "b", "a"))
	p.calls = nil
	deleted := &cairnv1.Event{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: &cairnv1.GraphDeleted{}}}
	mustApply(t, s, 2, deleted)
	if got, want := strings.Join(p.calls, " "), "edge-0 edge-1 node-0 node-1 end"; got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if s.LiveNodes() != 0 || s.LiveEdges() != 0 || s.Size(0) != 0 || s.Size(1) != 0 {
		t.Fatalf("after deletion: %d nodes %d edges", s.LiveNodes(), s.LiveEdges())
	}
}

// statePlacer is a logPlacer whose placements depend on how many
// transactions it has ended (its state beside the positions): a node
// added in its n-th transaction goes to (10·slot + n, −slot). Its state is
// n and the positions; skew makes RestoreState shift them.
type statePlacer struct {
	logPlacer
	txs  uint32
	skew float32
}

var _ StatefulPlacer = (*statePlacer)(nil)

func (p *statePlacer) EndTx() {
	p.txs++
	p.logPlacer.EndTx()
	for _, r := range p.moved {
		for s := r.Lo; s < r.Hi; s++ {
			p.pos[2*s] += float32(p.txs)
		}
	}
}

func (p *statePlacer) AppendState(dst []byte) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint32(dst, p.txs)
	for _, v := range p.pos {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst, nil
}

func (p *statePlacer) RestoreState(data []byte) error {
	if len(data) < 4 || len(data)%4 != 0 {
		return fmt.Errorf("state of %d bytes", len(data))
	}
	p.txs = binary.LittleEndian.Uint32(data)
	p.pos = p.pos[:0]
	for i := 4; i < len(data); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(data[i:]))
		if p.skew != 0 {
			v += p.skew
		}
		p.pos = append(p.pos, v)
	}
	p.calls = append(p.calls, "restore")
	p.moved = append(p.moved[:0], Range{0, uint32(len(p.pos) / 2)})
	return nil
}
