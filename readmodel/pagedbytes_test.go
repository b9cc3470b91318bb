package readmodel

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestPagedBytesAgainstSlice appends, writes and sets bytes across page
// ends beside a plain slice, decodes uvarints that cross them, and checks
// that frozen copies keep their bytes.
func TestPagedBytesAgainstSlice(t *testing.T) {
	var a pagedBytes
	var ref []byte
	type frozen struct {
		f    pagedBytes
		want []byte
	}
	var views []frozen
	r := rand.New(rand.NewPCG(8, 9))
	for step := range 20000 {
		switch op := r.IntN(10); {
		case op < 5 || len(ref) < 20:
			b := binary.AppendUvarint(nil, r.Uint64()>>r.IntN(64))
			if r.IntN(100) == 0 {
				b = append(b, make([]byte, bytePage+r.IntN(bytePage))...)
			}
			a.append(b...)
			ref = append(ref, b...)
		case op < 8:
			i := r.IntN(len(ref) - 12)
			b := binary.AppendUvarint(nil, r.Uint64()>>r.IntN(64))
			a.write(i, b)
			copy(ref[i:], b)
		case op < 9:
			i := r.IntN(len(ref))
			a.set(i, byte(step))
			ref[i] = byte(step)
		default:
			if r.IntN(100) == 0 {
				views = append(views, frozen{a.freeze(), bytes.Clone(ref)})
			}
			if r.IntN(50) == 0 {
				a.clip()
			}
		}
		if step%997 == 0 {
			if a.len() != len(ref) || !bytes.Equal(a.appendTo(nil, nil), ref) {
				t.Fatalf("step %d: length %d want %d, or other bytes", step, a.len(), len(ref))
			}
			for range 200 {
				i := r.IntN(len(ref))
				v, k := a.uvarint(i)
				wv, wk := binary.Uvarint(ref[i:])
				if v != wv || k != wk {
					t.Fatalf("step %d: uvarint at %d = %d,%d want %d,%d", step, i, v, k, wv, wk)
				}
				j := min(len(ref), i+r.IntN(3*bytePage))
				if !bytes.Equal(a.slice(i, j, nil), ref[i:j]) {
					t.Fatalf("step %d: slice %d:%d differs", step, i, j)
				}
			}
		}
	}
	for k, v := range views {
		if !bytes.Equal(v.f.appendTo(nil, nil), v.want) {
			t.Fatalf("view %d changed", k)
		}
	}
	if b := pagedOf(ref); !bytes.Equal(b.appendTo(nil, nil), ref) {
		t.Fatal("pagedOf differs")
	}
	if _, k := a.uvarint(a.len()); k != 0 {
		t.Fatal("uvarint past the end")
	}
}
