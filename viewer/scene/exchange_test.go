package scene

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// gpu is what a GL thread that uploads only the dirty ranges holds.
type gpu struct {
	pos, size []float32
	color     []uint32
	deg       []uint32
	id        []string
	ends      []uint32
	fulls     int
}

func grow[T any](s []T, n int) []T {
	if len(s) < n {
		s = append(s, make([]T, n-len(s))...)
	}
	return s[:n]
}

// upload applies f as a renderer would: everything when Full, else only
// the dirty ranges.
func (g *gpu) upload(t *testing.T, f *Frame) {
	t.Helper()
	g.pos, g.size, g.color, g.deg, g.id = grow(g.pos, 2*f.Nodes), grow(g.size, f.Nodes), grow(g.color, f.Nodes), grow(g.deg, f.Nodes), grow(g.id, f.Nodes)
	g.ends = grow(g.ends, 2*f.Edges)
	if f.Full {
		g.fulls++
		copy(g.pos, f.Pos)
		copy(g.size, f.Size)
		copy(g.color, f.Color)
		copy(g.deg, f.Deg)
		copy(g.id, f.ID)
		copy(g.ends, f.Ends)
		return
	}
	check := func(rs []Range, n int) {
		for i, r := range rs {
			if r.Lo >= r.Hi || int(r.Hi) > n || i > 0 && rs[i-1].Hi >= r.Lo {
				t.Fatalf("seq %d: bad ranges %v (limit %d)", f.Seq, rs, n)
			}
		}
	}
	check(f.PosDirty, f.Nodes)
	check(f.NodeDirty, f.Nodes)
	check(f.EdgeDirty, f.Edges)
	for _, r := range f.PosDirty {
		copy(g.pos[2*r.Lo:2*r.Hi], f.Pos[2*r.Lo:2*r.Hi])
	}
	for _, r := range f.NodeDirty {
		copy(g.size[r.Lo:r.Hi], f.Size[r.Lo:r.Hi])
		copy(g.color[r.Lo:r.Hi], f.Color[r.Lo:r.Hi])
		copy(g.deg[r.Lo:r.Hi], f.Deg[r.Lo:r.Hi])
		copy(g.id[r.Lo:r.Hi], f.ID[r.Lo:r.Hi])
	}
	for _, r := range f.EdgeDirty {
		copy(g.ends[2*r.Lo:2*r.Hi], f.Ends[2*r.Lo:2*r.Hi])
	}
}

// state is a copy of a scene's arrays at a publish.
type state struct {
	seq       uint64
	pos, size []float32
	color     []uint32
	deg       []uint32
	id        []string
	ends      []uint32
}

func snapshot(s *Scene) state {
	return state{s.seq, slices.Clone(s.pos), slices.Clone(s.size), slices.Clone(s.color), slices.Clone(s.deg), slices.Clone(s.ids), slices.Clone(s.ends)}
}

func (st state) equal(pos, size []float32, color, deg []uint32, id []string, ends []uint32) bool {
	return slices.Equal(st.pos, pos) && slices.Equal(st.size, size) && slices.Equal(st.color, color) &&
		slices.Equal(st.deg, deg) && slices.Equal(st.id, id) && slices.Equal(st.ends, ends)
}

// TestExchangeUploadsCatchUp folds a random history with random publishes,
// acquires and resets in between, and checks that a GL side that uploads
// only the dirty ranges always holds exactly the state of the Frame it
// acquired, and that each Frame is the scene as it was published.
func TestExchangeUploadsCatchUp(t *testing.T) {
	seed := testseed.Seed(t, 0)
	r := rand.New(rand.NewPCG(seed, 3))
	h := newHistory(seed)
	s := New("g", nil, WithColorComponent("colour"), WithFade(3), WithRanges(2, 4))
	x := NewExchange()
	var g gpu
	published := map[uint64]state{}
	var last uint64
	acquired := 0
	var txs [][]*cairnv1.Event
	for seq := uint64(1); seq <= 1500; seq++ {
		tx := h.tx()
		txs = append(txs, tx)
		mustApply(t, s, seq, tx...)
		if r.IntN(3) == 0 {
			s.Advance()
		}
		if seq == 700 {
			// A resynchronisation: the same history folded into a
			// fresh start; the next Frame must be Full.
			s.Reset(nil)
			for i, tx := range txs {
				mustApply(t, s, uint64(i+1), tx...)
			}
			fulls := g.fulls
			defer func() {
				if g.fulls == fulls {
					t.Errorf("no Full frame after Reset")
				}
			}()
		}
		if r.IntN(2) == 0 {
			published[s.seq] = snapshot(s)
			s.Publish(x)
		}
		if r.IntN(3) == 0 {
			f := x.Acquire()
			if f == nil {
				continue
			}
			acquired++
			want, ok := published[f.Seq]
			if !ok || f.Seq < last {
				t.Fatalf("acquired seq %d (last %d), not a published one", f.Seq, last)
			}
			last = f.Seq
			if !want.equal(f.Pos, f.Size, f.Color, f.Deg, f.ID, f.Ends) {
				t.Fatalf("frame at seq %d is not the scene as published", f.Seq)
			}
			g.upload(t, f)
			if !want.equal(g.pos, g.size, g.color, g.deg, g.id, g.ends) {
				t.Fatalf("after uploading the dirty ranges of seq %d the GL side differs from the frame", f.Seq)
			}
			if x.Acquire() != nil {
				t.Fatalf("a second Acquire without a Publish returned a frame")
			}
		}
	}
	if acquired < 100 || g.fulls < 2 {
		t.Fatalf("only %d frames acquired, %d full", acquired, g.fulls)
	}
}

// TestExchangeConcurrent publishes from one goroutine while another
// acquires (run with -race): the GL side's uploads always reproduce the
// frame it holds.
func TestExchangeConcurrent(t *testing.T) {
	h := newHistory(testseed.Seed(t, 0))
	s := New("g", nil)
	x := NewExchange()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var frames int
	go func() {
		defer wg.Done()
		var g gpu
		for {
			select {
			case <-done:
				return
			case <-x.Published():
			}
			f := x.Acquire()
			if f == nil {
				continue
			}
			frames++
			g.upload(t, f)
			if !slices.Equal(g.pos, f.Pos) || !slices.Equal(g.color, f.Color) || !slices.Equal(g.ends, f.Ends) || !slices.Equal(g.id, f.ID) {
				t.Errorf("seq %d: uploads do not reproduce the frame", f.Seq)
				return
			}
		}
	}()
	for seq := uint64(1); seq <= 3000; seq++ {
		mustApply(t, s, seq, h.tx()...)
		s.Publish(x)
	}
	close(done)
	wg.Wait()
	pub, acq := x.Stats()
	if pub != 3000 || acq == 0 || int(acq) != frames {
		t.Fatalf("published %d, acquired %d (GL counted %d)", pub, acq, frames)
	}
}
