package packed

import (
	"math/rand/v2"
	"testing"
)

// TestUintsAgainstSlice appends and sets values of every width and compares
// with a plain slice.
func TestUintsAgainstSlice(t *testing.T) {
	var a Uints
	var ref []uint32
	r := rand.New(rand.NewPCG(5, 6))
	for step := range 20000 {
		v := uint32(r.Uint64() >> uint(63-min(31, step/500))) // widths grow over time, from 1 bit
		if len(ref) == 0 || r.IntN(3) > 0 {
			a.Append(v)
			ref = append(ref, v)
		} else {
			i := r.IntN(len(ref))
			a.Set(i, v)
			ref[i] = v
		}
		if step%1000 == 0 {
			a.Clip()
		}
		if step%101 == 0 {
			if a.Len() != len(ref) {
				t.Fatalf("step %d: len %d want %d", step, a.Len(), len(ref))
			}
			for i, want := range ref {
				if got := a.Get(i); got != want {
					t.Fatalf("step %d: Get(%d) = %d want %d", step, i, got, want)
				}
			}
		}
	}
	m := Make(10, 1<<20)
	m.Set(9, 1<<20)
	if m.Len() != 10 || m.Get(9) != 1<<20 || m.Get(0) != 0 || m.Bytes() != 30+pad {
		t.Fatalf("Make: len %d, last %d, bytes %d", m.Len(), m.Get(9), m.Bytes())
	}
}

// TestRawRoundTrip copies arrays of every width through Raw and FromRaw.
func TestRawRoundTrip(t *testing.T) {
	for _, top := range []uint32{0, 3, 15, 255, 65535, 1<<24 - 1, 1<<32 - 1} {
		var a Uints
		for i := range 37 {
			a.Append(top / uint32(i+1))
		}
		w, b := a.Raw()
		c, ok := FromRaw(a.Len(), w, b)
		if !ok {
			t.Fatalf("top %d: FromRaw refused its own Raw", top)
		}
		for i := range a.Len() {
			if a.Get(i) != c.Get(i) {
				t.Fatalf("top %d: value %d = %d, want %d", top, i, c.Get(i), a.Get(i))
			}
		}
		if c.Max() != top {
			t.Fatalf("Max = %d, want %d", c.Max(), top)
		}
		c.Append(1)
		if _, ok := FromRaw(a.Len()+8, w, b); ok {
			t.Fatal("FromRaw accepted a short buffer")
		}
	}
	if _, ok := FromRaw(1, 3, []byte{0}); ok {
		t.Fatal("FromRaw accepted width 3")
	}
}
