package readmodel

import "testing"

// TestDegreesSpill moves counts across the 2-byte limit both ways.
func TestDegreesSpill(t *testing.T) {
	var d degrees
	for range 3 {
		d.grow()
	}
	for _, v := range []uint32{0, 1, degreeSpill - 1, degreeSpill, degreeSpill + 1, 1 << 30, degreeSpill - 1, 7, degreeSpill, 0} {
		d.set(1, v)
		d.trim()
		if got := d.get(1); got != v {
			t.Fatalf("get after set(%d) = %d", v, got)
		}
		if d.get(0) != 0 || d.get(2) != 0 {
			t.Fatalf("neighbours changed after set(%d)", v)
		}
		if v < degreeSpill && len(d.high) != 0 {
			t.Fatalf("spill map keeps %d entries after set(%d)", len(d.high), v)
		}
	}
}
