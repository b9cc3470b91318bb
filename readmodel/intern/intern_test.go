package intern

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestTableAgainstMap(t *testing.T) {
	tab := New()
	ref := map[string]uint32{}
	byIdx := map[uint32]string{}
	var free []uint32
	next := uint32(0)
	r := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 200000; step++ {
		s := "k" + strconv.Itoa(r.IntN(5000))
		if i, ok := ref[s]; ok {
			if r.IntN(2) == 0 {
				tab.Delete(i)
				delete(ref, s)
				delete(byIdx, i)
				free = append(free, i)
			}
		} else {
			i := next
			if len(free) > 0 {
				i, free = free[len(free)-1], free[:len(free)-1]
			} else {
				next++
			}
			tab.Set(i, s)
			ref[s], byIdx[i] = i, s
		}
		if step%997 == 0 {
			if tab.Len() != len(ref) {
				t.Fatalf("step %d: len %d, want %d", step, tab.Len(), len(ref))
			}
			for k := 0; k < 5000; k++ {
				s := "k" + strconv.Itoa(k)
				got, ok := tab.Lookup(s)
				want, wok := ref[s]
				if ok != wok || got != want {
					t.Fatalf("step %d: Lookup(%q) = %d,%v want %d,%v", step, s, got, ok, want, wok)
				}
			}
			for i, s := range byIdx {
				if tab.String(i) != s || !tab.Equal(i, s) {
					t.Fatalf("step %d: String(%d) = %q want %q", step, i, tab.String(i), s)
				}
			}
		}
	}
}
