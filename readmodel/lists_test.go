package readmodel

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestListsAgainstSlices replaces lists of handles of every varint width,
// growing and shrinking, and compares them with plain slices.
func TestListsAgainstSlices(t *testing.T) {
	var l lists
	ref := make([][]uint32, 500)
	r := rand.New(rand.NewPCG(3, 4))
	for step := range 50000 {
		i := uint32(r.IntN(len(ref)))
		h := make([]uint32, r.IntN(6))
		for j := range h {
			h[j] = uint32(r.Uint64() >> uint(32+r.IntN(32))) // 0 .. 2^32-1, small ones likelier
		}
		l.set(i, h)
		ref[i] = h
		if step%1000 == 0 {
			l.trim()
		}
		if step%97 == 0 {
			for k, want := range ref {
				if got := l.get(uint32(k), nil); !slices.Equal(got, want) && len(got)+len(want) > 0 {
					t.Fatalf("step %d: list %d = %v, want %v", step, k, got, want)
				}
			}
		}
	}
}
