package adjacency

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestIndexAgainstLists(t *testing.T) {
	const nodes = 50
	x := New()
	type edge struct{ src, dst uint32 }
	live := map[uint32]edge{}
	var free []uint32
	next := uint32(0)
	r := rand.New(rand.NewPCG(3, 4))
	defer func() {
		if x.Epoch() < 20 {
			t.Errorf("only %d compactions", x.Epoch())
		}
	}()
	for step := 0; step < 20000; step++ {
		switch {
		case r.IntN(3) > 0 || len(live) == 0:
			e := next
			if len(free) > 0 {
				e, free = free[0], free[1:]
			} else {
				next++
			}
			ed := edge{uint32(r.IntN(nodes)), uint32(r.IntN(nodes))}
			live[e] = ed
			x.Add(e, ed.src, ed.dst)
		default:
			for e := range live {
				x.Remove(e)
				delete(live, e)
				break
			}
		}
		// Compactions: mostly in the background, finished a while later,
		// sometimes all at once; reads in between see every layer.
		switch {
		case x.Compacting() && r.IntN(40) == 0:
			free = append(free, x.Finish()...)
		case !x.Compacting() && x.Delta() > 200 && r.IntN(4) == 0:
			free = append(free, x.Compact(nodes)...)
		case !x.Compacting() && x.Delta() > 200:
			x.Begin(nodes)
		}
		if step%101 == 0 {
			for u := uint32(0); u < nodes; u++ {
				for d, end := range []func(edge) uint32{func(e edge) uint32 { return e.src }, func(e edge) uint32 { return e.dst }} {
					var want, got []uint32
					for e, ed := range live {
						if end(ed) == u {
							want = append(want, e)
						}
					}
					x.Scan(Dir(d), u, 0, func(_ int, e uint32) bool { got = append(got, e); return true })
					slices.Sort(want)
					slices.Sort(got)
					if !slices.Equal(got, want) {
						t.Fatalf("step %d node %d dir %d: got %v want %v", step, u, d, got, want)
					}
					// ScanFrom walks the same edges in index order from any
					// index, and stops when told.
					from := uint32(r.IntN(int(next) + 2))
					got = got[:0]
					x.ScanFrom(Dir(d), u, from, func(e uint32) bool { got = append(got, e); return true })
					i, _ := slices.BinarySearch(want, from)
					if !slices.Equal(got, want[i:]) {
						t.Fatalf("step %d node %d dir %d: ScanFrom(%d) = %v, want %v", step, u, d, from, got, want[i:])
					}
					if len(want[i:]) > 1 {
						n := 0
						x.ScanFrom(Dir(d), u, from, func(uint32) bool { n++; return n < 2 })
						if n != 2 {
							t.Fatalf("ScanFrom went on after false: %d calls", n)
						}
					}
				}
			}
		}
	}
}
