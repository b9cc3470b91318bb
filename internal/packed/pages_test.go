package packed

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/cairn-graph/cairn/internal/testseed"
)

// frozen is a view and the values it must keep showing.
type frozen struct {
	v    PagesView
	want []uint32
	raw  []byte // Uints' Raw bytes at the freeze
	w    uint
}

// TestPagesAgainstUints runs seeded random Append, Set, Clip, Freeze and
// Thaw on a Pages, a Uints and a slice side by side, over several pages
// and every width: Get and Max agree, every view keeps the values and the
// Uints bytes of its moment however the array changes afterwards, and a
// thawed copy is independent of the array it came from.
func TestPagesAgainstUints(t *testing.T) {
	seed := testseed.Seed(t, 1)
	r := rand.New(rand.NewPCG(seed, 3))
	var a Pages
	var u Uints
	var ref []uint32
	var views []frozen
	check := func(step int) {
		t.Helper()
		if a.Len() != len(ref) {
			t.Fatalf("seed %d step %d: len %d want %d", seed, step, a.Len(), len(ref))
		}
		for i, want := range ref {
			if got := a.Get(i); got != want {
				t.Fatalf("seed %d step %d: Get(%d) = %d want %d", seed, step, i, got, want)
			}
		}
		for k, f := range views {
			if f.v.Len() != len(f.want) {
				t.Fatalf("seed %d step %d: view %d len %d want %d", seed, step, k, f.v.Len(), len(f.want))
			}
			for i, want := range f.want {
				if got := f.v.Get(i); got != want {
					t.Fatalf("seed %d step %d: view %d Get(%d) = %d want %d", seed, step, k, i, got, want)
				}
			}
			if f.v.Width() != f.w || !bytes.Equal(f.v.AppendBits(nil, f.w), f.raw) {
				t.Fatalf("seed %d step %d: view %d width %d want %d, or other bytes", seed, step, k, f.v.Width(), f.w)
			}
		}
	}
	for step := range 60000 {
		v := uint32(r.Uint64() >> uint(63-min(31, step/1500))) // widths grow over time
		if r.IntN(8) == 0 {
			v = uint32(r.IntN(4))
		}
		switch op := r.IntN(100); {
		case op < 60 || len(ref) == 0:
			a.Append(v)
			u.Append(v)
			ref = append(ref, v)
		case op < 97:
			i := r.IntN(len(ref))
			a.Set(i, v)
			u.Set(i, v)
			ref[i] = v
		case op < 98:
			a.Clip()
		default:
			w, raw := u.Raw()
			f := frozen{v: a.Freeze(), want: append([]uint32(nil), ref...), raw: append([]byte(nil), raw...), w: w}
			views = append(views, f)
			if len(views) > 6 {
				views = views[1:]
			}
			if r.IntN(4) == 0 {
				// Work on a thawed copy from now on; the old array
				// is written once more and must not show through.
				b := f.v.Thaw()
				a.Set(r.IntN(len(ref)), r.Uint32())
				a = b
			}
		}
		if step%2999 == 0 {
			check(step)
			if m := a.Max(); m != u.Max() {
				t.Fatalf("seed %d step %d: Max %d want %d", seed, step, m, u.Max())
			}
		}
	}
	check(-1)
}

// TestPagesRaw round-trips arrays of every width through AppendBits and
// PagesFromRaw, and Page and PagesFromPages, and checks MakePages.
func TestPagesRaw(t *testing.T) {
	for _, n := range []int{0, 1, 37, PageLen, PageLen + 1, 3*PageLen - 5} {
		for _, top := range []uint32{0, 3, 15, 255, 65535, 1<<24 - 1, 1<<32 - 1} {
			var a Pages
			var u Uints
			for i := range n {
				a.Append(top / uint32(i%40+1))
				u.Append(top / uint32(i%40+1))
			}
			v := a.Freeze()
			w, raw := u.Raw()
			if v.Width() != w || !bytes.Equal(v.AppendBits(nil, w), raw) {
				t.Fatalf("n %d top %d: width %d want %d, or other bytes", n, top, v.Width(), w)
			}
			b, ok := PagesFromRaw(n, w, raw)
			if !ok {
				t.Fatalf("n %d top %d: PagesFromRaw refused its own bytes", n, top)
			}
			ws, bs := make([]uint, v.PageCount()), make([][]byte, v.PageCount())
			for k := range ws {
				ws[k], bs[k] = v.Page(k)
			}
			c, ok := PagesFromPages(n, ws, bs)
			if !ok {
				t.Fatalf("n %d top %d: PagesFromPages refused its own pages", n, top)
			}
			for i := range n {
				if b.Get(i) != u.Get(i) || c.Get(i) != u.Get(i) {
					t.Fatalf("n %d top %d: value %d = %d, %d want %d", n, top, i, b.Get(i), c.Get(i), u.Get(i))
				}
			}
			if n > 0 {
				if _, ok := PagesFromRaw(n+8, w, raw); ok {
					t.Fatal("PagesFromRaw accepted a short buffer")
				}
				if _, ok := PagesFromPages(n+PageLen, ws, bs); ok {
					t.Fatal("PagesFromPages accepted too few pages")
				}
			}
		}
	}
	if _, ok := PagesFromRaw(1, 3, []byte{0}); ok {
		t.Fatal("PagesFromRaw accepted width 3")
	}
	if _, ok := PagesFromPages(1, []uint{5}, [][]byte{{0}}); ok {
		t.Fatal("PagesFromPages accepted width 5")
	}
	m := MakePages(PageLen+10, 1<<20)
	m.Set(PageLen+9, 1<<20)
	v := m.Freeze()
	if m.Len() != PageLen+10 || m.Get(PageLen+9) != 1<<20 || m.Get(0) != 0 || v.Width() != 24 {
		t.Fatalf("MakePages: len %d, last %d, width %d", m.Len(), m.Get(PageLen+9), v.Width())
	}
}

// TestPagesFreezeCost checks that a write after a freeze copies only the
// page written, and a wider value widens only its page.
func TestPagesFreezeCost(t *testing.T) {
	a := MakePages(10*PageLen, 255)
	before := a.Bytes()
	v := a.Freeze()
	a.Set(3*PageLen+1, 7)
	if &a.pages[3].b[0] == &v.pages[3].b[0] || &a.pages[4].b[0] != &v.pages[4].b[0] {
		t.Fatal("Set after Freeze copied the wrong pages")
	}
	a.Set(5*PageLen, 1<<20)
	if a.pages[5].w != 24 || a.pages[6].w != 8 || a.Bytes() <= before {
		t.Fatalf("widening: page widths %d and %d", a.pages[5].w, a.pages[6].w)
	}
	if v.Get(3*PageLen+1) != 0 || v.Get(5*PageLen) != 0 {
		t.Fatal("the view changed")
	}
}

func benchValues(n int) []uint32 {
	r := rand.New(rand.NewPCG(1, 1))
	v := make([]uint32, n)
	for i := range v {
		v[i] = uint32(r.IntN(3_000_000))
	}
	return v
}

// BenchmarkGet, BenchmarkSet and BenchmarkAppend compare Pages with Uints
// on 3M values of 24 bits (an edge table's node indices), in random order.
func BenchmarkGet(b *testing.B) {
	vals := benchValues(3_000_000)
	idx := benchValues(1 << 16)
	b.Run("Uints", func(b *testing.B) {
		var a Uints
		for _, v := range vals {
			a.Append(v)
		}
		b.ReportAllocs()
		s := uint32(0)
		for i := 0; b.Loop(); i++ {
			s += a.Get(int(idx[i&(1<<16-1)]))
		}
		sink = s
	})
	b.Run("Pages", func(b *testing.B) {
		var a Pages
		for _, v := range vals {
			a.Append(v)
		}
		b.ReportAllocs()
		s := uint32(0)
		for i := 0; b.Loop(); i++ {
			s += a.Get(int(idx[i&(1<<16-1)]))
		}
		sink = s
	})
}

var sink uint32

func BenchmarkSet(b *testing.B) {
	vals := benchValues(3_000_000)
	idx := benchValues(1 << 16)
	b.Run("Uints", func(b *testing.B) {
		var a Uints
		for _, v := range vals {
			a.Append(v)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			a.Set(int(idx[i&(1<<16-1)]), uint32(i)&0xfffff)
		}
	})
	b.Run("Pages", func(b *testing.B) {
		var a Pages
		for _, v := range vals {
			a.Append(v)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			a.Set(int(idx[i&(1<<16-1)]), uint32(i)&0xfffff)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	vals := benchValues(1 << 20)
	b.Run("Uints", func(b *testing.B) {
		b.ReportAllocs()
		var a Uints
		for i := 0; b.Loop(); i++ {
			if i&(1<<20-1) == 0 {
				a = Uints{}
			}
			a.Append(vals[i&(1<<20-1)])
		}
	})
	b.Run("Pages", func(b *testing.B) {
		b.ReportAllocs()
		var a Pages
		for i := 0; b.Loop(); i++ {
			if i&(1<<20-1) == 0 {
				a = Pages{}
			}
			a.Append(vals[i&(1<<20-1)])
		}
	})
}

// BenchmarkFreeze freezes an array of 3M values and writes one value, as
// a snapshot round then the next change do.
func BenchmarkFreeze(b *testing.B) {
	a := MakePages(3_000_000, 1<<24-1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v := a.Freeze()
		a.Set(i%3_000_000, 1)
		_ = v
	}
}

// Scan and Max read what Get reads, at every width, across pages, with a
// partial last page, and on arrays grown by Append and made by MakePages.
func TestPagesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, top := range []uint32{1<<2 - 1, 1<<4 - 1, 1<<8 - 1, 1<<16 - 1, 1<<24 - 1, 1<<32 - 1} {
		for _, n := range []int{0, 1, 7, PageLen - 1, PageLen, 3*PageLen + 123} {
			var grown Pages
			made := MakePages(n, top)
			for i := range n {
				v := rng.Uint32() & top
				if i%5 == 0 {
					v = rng.Uint32N(4) // narrow values too: mixed widths per page
				}
				grown.Append(v)
				made.Set(i, v)
			}
			for _, a := range []*Pages{&grown, &made} {
				buf := make([]uint32, PageLen)
				next, m := 0, uint32(0)
				a.Scan(buf, func(start int, vals []uint32) bool {
					if start != next {
						t.Fatalf("top %d n %d: page at %d, want %d", top, n, start, next)
					}
					for j, v := range vals {
						if want := a.Get(start + j); v != want {
							t.Fatalf("top %d n %d: value %d is %d, Get says %d", top, n, start+j, v, want)
						}
						m = max(m, v)
					}
					next += len(vals)
					return true
				})
				if next != n {
					t.Fatalf("top %d n %d: scanned %d values", top, n, next)
				}
				if got := a.Max(); got != m {
					t.Fatalf("top %d n %d: Max %d, want %d", top, n, got, m)
				}
			}
		}
	}
}
