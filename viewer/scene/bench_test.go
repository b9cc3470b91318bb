package scene

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// jitter is a Placer that moves every node it was told about in the
// transaction (AddNode, or an endpoint of AddEdge) by a hashed step: a
// stand-in for viewer/layout with the same calls and the same copying.
type jitter struct {
	pos   []float32
	moved dirtySet
	n     uint32
}

func (j *jitter) AddNode(slot uint32) {
	for uint32(len(j.pos)/2) <= slot {
		j.pos = append(j.pos, 0, 0)
	}
	j.touch(slot)
}
func (j *jitter) RemoveNode(slot uint32)        { j.touch(slot) }
func (j *jitter) AddEdge(_ uint32, a, b uint32) { j.touch(a); j.touch(b) }
func (j *jitter) RemoveEdge(uint32)             {}
func (j *jitter) EndTx()                        {}
func (j *jitter) Positions() []float32          { return j.pos }
func (j *jitter) touch(slot uint32) {
	j.n++
	j.pos[2*slot] += float32(j.n%7) - 3
	j.pos[2*slot+1] += float32(j.n%5) - 2
	j.moved.set(slot)
}
func (j *jitter) TakeMoved(dst []Range) []Range {
	dst = j.moved.ranges(dst, uint32(len(j.pos)/2), 0, 1<<30)
	j.moved.clear()
	return dst
}

// bigScene folds n nodes and then edges random edges, in transactions of
// 1,000 events.
func bigScene(b *testing.B, n, edges int, placer Placer, opts ...Option) (*Scene, []string) {
	r := rand.New(rand.NewPCG(1, 2))
	s := New("bench", placer, opts...)
	ids := make([]string, n)
	var tx []*cairnv1.Event
	seq := uint64(0)
	flush := func() {
		seq++
		if err := s.ApplyTx(seq, "cid", time.Time{}, tx); err != nil {
			b.Fatal(err)
		}
		tx = tx[:0]
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("n%d", i)
		tx = append(tx, nodeAdded(ids[i], []string{"a", "b", "c", "d", "e"}[i%5]))
		if len(tx) == 1000 {
			flush()
		}
	}
	for i := range edges {
		tx = append(tx, edgeAdded(fmt.Sprintf("e%d", i), ids[r.IntN(n)], ids[r.IntN(n)]))
		if len(tx) == 1000 {
			flush()
		}
	}
	if len(tx) > 0 {
		flush()
	}
	return s, ids
}

// BenchmarkFramePrep measures the CPU side of one frame with 1 % of 100K
// nodes changing (goal: at most 1 ms): a transaction that sets the colour
// component of 1,000 random nodes, each moved by the Placer, folded,
// published to the Exchange (catch-up copy and dirty ranges) and acquired.
func BenchmarkFramePrep(b *testing.B) {
	for _, n := range []int{100_000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			j := &jitter{}
			s, ids := bigScene(b, n, 2*n, j, WithColorComponent("colour"))
			x := NewExchange()
			s.Publish(x)
			x.Acquire()
			r := rand.New(rand.NewPCG(3, 4))
			const txs = 64
			frames := make([][]*cairnv1.Event, txs)
			slots := make([][]uint32, txs) // what the layout moves
			for i := range frames {
				for range n / 100 {
					id := ids[r.IntN(n)]
					frames[i] = append(frames[i], componentSet(id, "colour", fmt.Sprint(r.IntN(20))))
					slot, _ := s.Slot(id)
					slots[i] = append(slots[i], slot)
				}
			}
			seq := s.Seq()
			ranges := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				tx := frames[i%txs]
				for _, slot := range slots[i%txs] {
					j.touch(slot) // the layout moves it
				}
				seq++
				if err := s.ApplyTx(seq, "cid", time.Time{}, tx); err != nil {
					b.Fatal(err)
				}
				s.Publish(x)
				f := x.Acquire()
				ranges += len(f.PosDirty) + len(f.NodeDirty)
			}
			b.ReportMetric(float64(ranges)/float64(b.N), "ranges/frame")
		})
	}
}

// BenchmarkSceneMemory reports the scene's heap per node (100K nodes, ids
// "n123", no edges) and per edge (200K more edges, ids "e123"), and the
// two Frames of an Exchange per node of the graph with its edges.
func BenchmarkSceneMemory(b *testing.B) {
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for b.Loop() {
		const n = 100_000
		h0 := heap()
		nodes, _ := bigScene(b, n, 0, nil)
		h1 := heap()
		s, _ := bigScene(b, n, 2*n, nil)
		h2 := heap()
		x := NewExchange()
		s.Publish(x)
		x.Acquire()
		s.Publish(x)
		h3 := heap()
		// The id strings the test made (16-byte headers in its own slice,
		// the bytes shared with the scene) are the test's, not the scene's.
		ids := float64(16 * n)
		b.ReportMetric((float64(h1-h0)-ids)/n, "bytes/node")
		b.ReportMetric((float64(h2-h1)-ids-float64(h1-h0))/(2*n), "bytes/edge")
		b.ReportMetric(float64(h3-h2)/n, "frames-bytes/node")
		runtime.KeepAlive(nodes)
		runtime.KeepAlive(s)
		runtime.KeepAlive(x)
	}
}

// BenchmarkKeyframe encodes and loads the keyframe of 100K nodes and 200K
// edges (before zstd, which the object store adds).
func BenchmarkKeyframe(b *testing.B) {
	s, _ := bigScene(b, 100_000, 200_000, nil)
	data := keyframe(b, s)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, len(data))
		for b.Loop() {
			buf, _ = s.AppendKeyframe(buf[:0])
		}
		b.ReportMetric(float64(len(data))/100_000, "bytes/node")
	})
	b.Run("load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := New("bench", nil).LoadKeyframe(data, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
