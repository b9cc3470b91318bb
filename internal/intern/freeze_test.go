package intern

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/cairn-graph/cairn/internal/packed"
)

// deepCopy returns a table that shares no memory with t.
func deepCopy(t *Table) *Table {
	cp := func(a *packed.Pages) packed.Pages {
		v := a.Freeze()
		w := v.Width()
		c, ok := packed.PagesFromRaw(v.Len(), w, v.AppendBits(nil, w))
		if !ok {
			panic("PagesFromRaw refused AppendBits")
		}
		return c
	}
	u := *t
	u.arena = bytes.Clone(t.arena)
	u.offs, u.slots, u.old = cp(&t.offs), cp(&t.slots), cp(&t.old)
	u.prefixOf = append([]string(nil), t.prefixOf...)
	u.prefixes = map[string]uint8{}
	for k, v := range t.prefixes {
		u.prefixes[k] = v
	}
	return &u
}

// TestFreezeAgainstCopy runs seeded random Set, Delete and Trim across
// doublings, migrations and arena compactions, and freezes the table at
// random points, mid-migration and right after a compaction included. Each
// frozen view is written on another goroutine while the table goes on
// changing, and then once more at the end: both must equal the snapshot of
// a deep copy taken at the freeze. CAIRN_TEST_SEED picks another seed.
func TestFreezeAgainstCopy(t *testing.T) {
	seed := uint64(1)
	if s := os.Getenv("CAIRN_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CAIRN_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (CAIRN_TEST_SEED)", seed)
	r := rand.New(rand.NewPCG(seed, 11))
	tab := New()
	type frozen struct {
		f    *Frozen
		want *Table // a deep copy at the freeze
		got  []byte // written on another goroutine
		mid  bool
	}
	var views []*frozen
	var wg sync.WaitGroup
	byIdx := map[uint32]string{}
	ref := map[string]uint32{}
	var free []uint32
	next := uint32(0)
	mids, compactions := 0, 0
	freeze := func() {
		f := &frozen{f: tab.Freeze(), want: deepCopy(tab), mid: tab.old.Len() > 0}
		if f.mid {
			mids++
		}
		views = append(views, f)
		wg.Go(func() { f.got = f.f.AppendSnapshot(nil) })
	}
	for range 120000 {
		k := r.IntN(20000)
		s := growKey(k)
		if k%2 == 1 {
			s = "a-long-plain-key-" + strconv.Itoa(k) // arena bytes, for compactions
		}
		if i, ok := ref[s]; ok {
			if r.IntN(3) > 0 {
				arena := len(tab.arena)
				tab.Delete(i)
				delete(ref, s)
				delete(byIdx, i)
				free = append(free, i)
				if len(tab.arena) < arena {
					compactions++
					freeze()
				}
			}
		} else {
			i := next
			if len(free) > 0 && r.IntN(2) == 0 {
				i, free = free[len(free)-1], free[:len(free)-1]
			} else {
				next++
			}
			tab.Set(i, s)
			ref[s], byIdx[i] = i, s
		}
		switch {
		case r.IntN(40000) == 0:
			tab.Trim()
		case r.IntN(1500) == 0 || tab.old.Len() > 0 && r.IntN(8) == 0:
			freeze()
		}
	}
	wg.Wait()
	if mids == 0 || compactions == 0 || len(views) < 50 {
		t.Fatalf("seed %d: %d views, %d mid-migration, %d after a compaction: too few", seed, len(views), mids, compactions)
	}
	t.Logf("%d views, %d mid-migration, %d after a compaction", len(views), mids, compactions)
	for k, v := range views {
		want := v.want.AppendSnapshot(nil)
		if !bytes.Equal(v.got, want) {
			t.Fatalf("seed %d: view %d (mid-migration %t) wrote other bytes than a copy at its freeze", seed, k, v.mid)
		}
		if !bytes.Equal(v.f.AppendSnapshot(nil), want) {
			t.Fatalf("seed %d: view %d changed", seed, k)
		}
	}
	for i, s := range byIdx {
		if got, ok := tab.Lookup(s); !ok || got != i || tab.String(i) != s {
			t.Fatalf("seed %d: Lookup(%q) = %d,%v want %d", seed, s, got, ok, i)
		}
	}
}

// BenchmarkFreeze freezes a table of 3M entries, mid-migration, and sets
// one more entry, as a snapshot round and the next change do.
//
//	go test ./internal/intern -run '^$' -bench Freeze
func BenchmarkFreeze(b *testing.B) {
	tab := New()
	for i := range 3_000_000 {
		tab.Set(uint32(i), "e"+strconv.Itoa(i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f := tab.Freeze()
		k := 3_000_000 + i
		tab.Set(uint32(k), "n"+strconv.Itoa(k))
		_ = f
	}
}
