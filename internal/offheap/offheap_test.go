package offheap

import "testing"

// TestPool lends mapped buffers, lends them again once given back, and
// keeps at most keep of them mapped while none is lent.
func TestPool(t *testing.T) {
	p := New(2)
	if b := p.Get(Min - 1); b != nil {
		t.Fatalf("Get below Min = %d bytes of room, want nil", cap(b))
	}
	a := p.Get(3 * Min)
	if len(a) != 0 || cap(a) < 3*Min {
		t.Fatalf("Get(3 MiB) = len %d cap %d", len(a), cap(a))
	}
	a = a[:cap(a)]
	for i := range a {
		if a[i] != 0 {
			t.Fatalf("fresh buffer byte %d = %d", i, a[i])
		}
		a[i] = byte(i)
	}
	b := p.Get(2 * Min)
	c := p.Get(5 * Min)
	if lent, held := p.Stats(); lent != held || lent != int64(cap(a)+cap(b)+cap(c)) {
		t.Fatalf("Stats = lent %d, held %d; want both %d", lent, held, cap(a)+cap(b)+cap(c))
	}
	p.Put(a[:10])
	if again := p.Get(3 * Min); cap(again) != cap(a) || &again[:1][0] != &a[0] || again[:2][1] != 1 {
		t.Fatal("Get after Put did not lend the buffer given back")
	} else {
		p.Put(again)
	}
	p.Put(b)
	p.Put(c) // three free: the smallest (b) is unmapped
	lent, held := p.Stats()
	if lent != 0 || held != int64(cap(a)+cap(c)) {
		t.Fatalf("after giving all back: lent %d, held %d; want 0, %d", lent, held, cap(a)+cap(c))
	}
	if got := p.Get(5 * Min); cap(got) != cap(c) {
		t.Fatalf("Get(5 MiB) = cap %d, want the kept %d", cap(got), cap(c))
	}
	var nilPool *Pool
	if nilPool.Get(10*Min) != nil {
		t.Fatal("a nil Pool lent a buffer")
	}
	nilPool.Put(a)
}
