package wire

import (
	"errors"
	"testing"

	"github.com/cairn-graph/cairn/internal/packed"
)

// pagesCases are arrays of several lengths and widths, the narrow pages
// mixed with wide ones.
func pagesCases() []packed.PagesView {
	var out []packed.PagesView
	for _, n := range []int{0, 1, 5, packed.PageLen, packed.PageLen + 3, 2*packed.PageLen + 100} {
		var a packed.Pages
		for i := range n {
			v := uint32(i % 7)
			if i/packed.PageLen == 1 {
				v = uint32(i) * 40503
			}
			a.Append(v)
		}
		out = append(out, a.Freeze())
	}
	return out
}

func sameValues(t *testing.T, v *packed.PagesView, a *packed.Pages) {
	t.Helper()
	if a.Len() != v.Len() {
		t.Fatalf("len %d, want %d", a.Len(), v.Len())
	}
	for i := range v.Len() {
		if a.Get(i) != v.Get(i) {
			t.Fatalf("value %d = %d, want %d", i, a.Get(i), v.Get(i))
		}
	}
}

// TestPagesRoundTrip writes views in both formats and reads them back,
// and checks that every truncation fails with ErrCorrupt.
func TestPagesRoundTrip(t *testing.T) {
	for _, v := range pagesCases() {
		for _, format := range []struct {
			name  string
			write func([]byte, *packed.PagesView) []byte
			read  func(*Reader) packed.Pages
		}{
			{"pages", AppendPages, func(r *Reader) packed.Pages { return r.Pages("test") }},
			{"packed", AppendPackedView, func(r *Reader) packed.Pages { return r.PackedPages("test") }},
		} {
			data := format.write(nil, &v)
			r := NewReader(data)
			a := format.read(r)
			if r.Err() != nil || r.Len() != 0 {
				t.Fatalf("%s, %d values: %v, %d bytes left", format.name, v.Len(), r.Err(), r.Len())
			}
			sameValues(t, &v, &a)
			for k := range len(data) {
				r := NewReader(data[:k])
				format.read(r)
				if !errors.Is(r.Err(), ErrCorrupt) {
					t.Fatalf("%s, %d values, cut at %d: error %v", format.name, v.Len(), k, r.Err())
				}
			}
		}
	}
	// The packed format of a view is AppendPacked's of a Uints.
	var u packed.Uints
	var a packed.Pages
	for i := range 3 * packed.PageLen {
		u.Append(uint32(i * i))
		a.Append(uint32(i * i))
	}
	v := a.Freeze()
	if string(AppendPacked(nil, &u)) != string(AppendPackedView(nil, &v)) {
		t.Fatal("AppendPackedView differs from AppendPacked")
	}
}

// FuzzPages feeds Reader.Pages and Reader.PackedPages arbitrary input: they
// may fail, with ErrCorrupt, but never panic, and what they accept writes
// back the same.
func FuzzPages(f *testing.F) {
	for _, v := range pagesCases() {
		f.Add(AppendPages(nil, &v))
		f.Add(AppendPackedView(nil, &v))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(data)
		a := r.Pages("fuzz")
		if err := r.Err(); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
		} else {
			// What it accepts writes back to bytes that read back the
			// same (not always the same bytes: a uvarint may come
			// overlong).
			v := a.Freeze()
			r := NewReader(AppendPages(nil, &v))
			b := r.Pages("again")
			if r.Err() != nil || r.Len() != 0 {
				t.Fatalf("accepted pages write back unreadably: %v", r.Err())
			}
			sameValues(t, &v, &b)
		}
		r = NewReader(data)
		b := r.PackedPages("fuzz")
		if err := r.Err(); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		v := b.Freeze()
		_ = v.Max()
		r = NewReader(AppendPackedView(nil, &v))
		c := r.PackedPages("again")
		if r.Err() != nil || r.Len() != 0 {
			t.Fatalf("accepted packed array writes back unreadably: %v", r.Err())
		}
		sameValues(t, &v, &c)
	})
}
