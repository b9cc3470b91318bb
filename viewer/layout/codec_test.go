package layout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// smallState is a layout with pins, a removed node, a reused edge slot and
// an open transaction, in bytes.
func smallState(t testing.TB) []byte {
	t.Helper()
	l, err := New(DefaultParams(), SeedFor("codec"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint32(6) {
		l.AddNode(i)
	}
	l.AddEdge(0, 0, 1)
	l.AddEdge(1, 1, 2)
	l.AddEdge(2, 2, 2)
	l.AddEdge(3, 3, 4)
	l.EndTx()
	l.Pin(1)
	l.RemoveNode(5)
	l.RemoveEdge(0)
	l.AddEdge(0, 4, 0)
	l.AddNode(7) // open transaction: unplaced
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMarshalRoundTrip(t *testing.T) {
	b := smallState(t)
	l, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := l.MarshalBinary()
	if !bytes.Equal(b, again) {
		t.Fatalf("marshal ∘ unmarshal changes the bytes:\n%x\n%x", b, again)
	}
	if !l.Pinned(1) || l.isLive(5) || !l.isNew[7] || len(l.adj[0]) != 1 || len(l.adj[2]) != 2 {
		t.Fatalf("state lost: pinned 1 %v, live 5 %v, unplaced 7 %v, degrees %d %d", l.Pinned(1), l.isLive(5), l.isNew[7], len(l.adj[0]), len(l.adj[2]))
	}
	if got := l.TakeMoved(nil); len(got) == 0 {
		t.Fatal("after Unmarshal no slot counts as moved")
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good := smallState(t)
	nodesAt := len(magic) + 8 + 7*8 // magic, seed, float params
	p := DefaultParams()
	for _, v := range []int{p.Ticks, p.HotCap, p.MultilevelAbove, p.Coarsest, 0, 1} { // then 4 params, flags and txs
		nodesAt += len(binary.AppendUvarint(nil, uint64(v)))
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "magic"},
		{"magic", append([]byte("CLY\x03"), good[4:]...), "magic"},
		{"flags", func() []byte {
			b := append([]byte(nil), good[:nodesAt-2]...)
			return append(append(b, 2), good[nodesAt-1:]...)
		}(), "flags"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"trailing", append(append([]byte(nil), good...), 0), "after the state"},
		{"params", func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint64(b[len(magic)+8:], math.Float64bits(-1)) // Theta
			return b
		}(), "Theta"},
		{"nan", func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint64(b[len(magic)+8+8:], math.Float64bits(math.NaN())) // Repulsion
			return b
		}(), "finite"},
		{"huge node count", func() []byte {
			b := append([]byte(nil), good[:nodesAt]...)
			b = binary.AppendUvarint(b, 1<<40)
			return b
		}(), "node slots"},
	} {
		_, err := Unmarshal(tc.data)
		var de *DecodeError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &de) {
			t.Fatalf("%s: err %v, want a *DecodeError wrapping ErrCorrupt", tc.name, err)
		}
		if !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Fatalf("%s: err %q does not say %q", tc.name, err, tc.want)
		}
	}
	if good[nodesAt] != 8 {
		t.Fatalf("test layout out of date: node slots byte at %d is %d, want 8", nodesAt, good[nodesAt])
	}
	l, _ := New(DefaultParams(), 1)
	before := l.Hash()
	if err := l.UnmarshalBinary(good[:10]); err == nil || l.Hash() != before {
		t.Fatalf("a failed UnmarshalBinary (err %v) changed the layout", err)
	}
}

// TestUnmarshalVersion1 decodes a version 1 state (no flags: written when
// gravity was always the plain kind) with WeakGravity set, and resumes it.
func TestUnmarshalVersion1(t *testing.T) {
	v1 := version1(t)
	l, err := Unmarshal(v1)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Params().WeakGravity {
		t.Fatal("a version 1 state decoded without WeakGravity")
	}
	weak := DefaultParams()
	weak.WeakGravity = true
	want := run(t, weak, 3, script(5, 40, 6))
	if l.Hash() != want.Hash() {
		t.Fatalf("version 1 state: hash %x, want %x", l.Hash(), want.Hash())
	}
	l.AddNode(100)
	l.AddEdge(100, 100, 0)
	l.EndTx()
	want.AddNode(100)
	want.AddEdge(100, 100, 0)
	want.EndTx()
	if l.Hash() != want.Hash() {
		t.Fatalf("version 1 state resumed: hash %x, want %x", l.Hash(), want.Hash())
	}
}

// version1 returns a version 1 state: a version 2 one with WeakGravity, its
// magic changed and its flags dropped.
func version1(t testing.TB) []byte {
	t.Helper()
	weak := DefaultParams()
	weak.WeakGravity = true
	b, _ := run(t, weak, 3, script(5, 40, 6)).MarshalBinary()
	at := len(magic) + 8 + 7*8
	for _, v := range []int{weak.Ticks, weak.HotCap, weak.MultilevelAbove, weak.Coarsest} {
		at += len(binary.AppendUvarint(nil, uint64(v)))
	}
	if b[at] != flagWeakGravity {
		t.Fatalf("flags byte at %d is %d, want %d", at, b[at], flagWeakGravity)
	}
	v1 := append([]byte(magicV1), b[len(magic):at]...)
	return append(v1, b[at+1:]...)
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(smallState(f))
	f.Add(version1(f))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Unmarshal(data, WithWorkers(1))
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrCorrupt) || de.Offset < 0 || de.Offset > len(data) {
				t.Fatalf("error %v is not a *DecodeError inside the data", err)
			}
			return
		}
		b, _ := l.MarshalBinary()
		m, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("re-marshalled state does not decode: %v", err)
		}
		if c, _ := m.MarshalBinary(); !bytes.Equal(b, c) || m.Hash() != l.Hash() {
			t.Fatal("marshalling a decoded state is not stable")
		}
		if l.Len() < 1<<12 {
			l.EndTx() // decoded state is usable
		}
	})
}

// TestRestoreState: RestoreState resumes a state like UnmarshalBinary but
// refuses one of other Params or another seed, leaving the layout as it
// was.
func TestRestoreState(t *testing.T) {
	ops := script(9, 60, 10)
	whole := run(t, DefaultParams(), 4, ops)
	st, err := run(t, DefaultParams(), 4, ops[:len(ops)/2]).AppendState(nil)
	if err != nil {
		t.Fatal(err)
	}
	l := newLayout(t, 4)
	if err := l.RestoreState(st); err != nil {
		t.Fatal(err)
	}
	for _, o := range ops[len(ops)/2:] {
		o.apply(l)
	}
	if l.Hash() != whole.Hash() {
		t.Fatalf("restored and resumed: hash %x, want %x", l.Hash(), whole.Hash())
	}
	weak := DefaultParams()
	weak.WeakGravity = true
	for name, l := range map[string]*Layout{"params": run(t, weak, 4, nil), "seed": newLayout(t, 5)} {
		before := l.Hash()
		if err := l.RestoreState(st); !errors.Is(err, ErrMismatch) || l.Hash() != before {
			t.Fatalf("other %s: %v, want ErrMismatch and the layout unchanged", name, err)
		}
	}
	if err := newLayout(t, 4).RestoreState(st[:len(st)-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: %v, want ErrCorrupt", err)
	}
}
