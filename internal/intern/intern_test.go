package intern

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// key returns the k-th test key: inline, in the arena as prefix+number, or plain.
func key(k int) string {
	switch k % 3 {
	case 0:
		return "k" + strconv.Itoa(k)
	case 1:
		return "k" + strconv.Itoa(k*100000) // above 2^26 from k = 672 on
	}
	return "x-" + strconv.Itoa(k) + "-y"
}

func TestTableAgainstMap(t *testing.T) {
	tab := New()
	ref := map[string]uint32{}
	byIdx := map[uint32]string{}
	var free []uint32
	next := uint32(0)
	r := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 200000; step++ {
		s := key(r.IntN(5000))
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
		if step%5003 == 0 {
			tab.Trim() // a table of any size, not only a power of two
		}
		if step%997 == 0 {
			if tab.Len() != len(ref) {
				t.Fatalf("step %d: len %d, want %d", step, tab.Len(), len(ref))
			}
			for k := 0; k < 5000; k++ {
				s := key(k)
				got, ok := tab.Lookup(s)
				want, wok := ref[s]
				if ok != wok || got != want {
					t.Fatalf("step %d: Lookup(%q) = %d,%v want %d,%v", step, s, got, ok, want, wok)
				}
			}
			for i, s := range byIdx {
				if tab.String(i) != s || !tab.Equal(i, s) || string(tab.AppendString([]byte("x"), i)) != "x"+s {
					t.Fatalf("step %d: String(%d) = %q, AppendString %q, want %q", step, i, tab.String(i), tab.AppendString(nil, i), s)
				}
			}
		}
	}
}

// TestTableEncodings mixes strings that take the prefix+number form with ones
// that must stay plain (leading zeros, too many digits, long or too many
// prefixes) and checks that each is found, and only as itself.
func TestTableEncodings(t *testing.T) {
	tab := New()
	var keys []string
	for i := range 100 { // more prefixes than the table takes
		keys = append(keys, "p"+strconv.Itoa(i)+"x7", "p"+strconv.Itoa(i)+"x70")
	}
	keys = append(keys, "", "0", "00", "007", "7", "e0", "e00", "e01", "e1",
		"18446744073709551615", "9999999999999999999", "99999999999999999999",
		"a-very-long-prefix-indeed-42", "x", "x9", "é12", "n-5", "n5")
	for i, s := range keys {
		if _, ok := tab.Lookup(s); ok {
			t.Fatalf("Lookup(%q) found before Set", s)
		}
		tab.Set(uint32(i), s)
	}
	for i, s := range keys {
		if got, ok := tab.Lookup(s); !ok || got != uint32(i) {
			t.Fatalf("Lookup(%q) = %d,%v want %d", s, got, ok, i)
		}
		if tab.String(uint32(i)) != s || !tab.Equal(uint32(i), s) || string(tab.AppendString(nil, uint32(i))) != s {
			t.Fatalf("String(%d) = %q, AppendString %q, want %q", i, tab.String(uint32(i)), tab.AppendString(nil, uint32(i)), s)
		}
	}
	for _, s := range []string{"p100x7", "e001", "e2", "000", "n05", "p0x07"} {
		if _, ok := tab.Lookup(s); ok {
			t.Fatalf("Lookup(%q) found", s)
		}
	}
	for i := range keys {
		if i%2 == 0 {
			tab.Delete(uint32(i))
		}
	}
	tab.Trim()
	for i, s := range keys {
		got, ok := tab.Lookup(s)
		if ok != (i%2 == 1) || (ok && got != uint32(i)) {
			t.Fatalf("after delete: Lookup(%q) = %d,%v", s, got, ok)
		}
	}
}
