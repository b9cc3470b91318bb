package intern

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/cairn-graph/cairn/internal/packed"
	"github.com/cairn-graph/cairn/internal/testseed"
	"github.com/cairn-graph/cairn/internal/wire"
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
	u.arena = arenaOf(flat(&t.arena))
	u.offs, u.slots, u.old = cp(&t.offs), cp(&t.slots), cp(&t.old)
	u.tags, u.oldTags = cp(&t.tags), cp(&t.oldTags)
	u.prefixOf = append([]string(nil), t.prefixOf...)
	u.prefixes = map[string]uint8{}
	for k, v := range t.prefixes {
		u.prefixes[k] = v
	}
	return &u
}

// flat returns the arena's bytes in one slice.
func flat(a *arena) []byte {
	r := wire.NewReader(a.appendTo(nil, nil))
	return bytes.Clone(r.Bytes())
}

// TestFreezeAgainstCopy runs seeded random Set, Delete and Trim across
// doublings, migrations and arena compactions, and freezes the table at
// random points, mid-migration and right after a compaction included. Each
// frozen view is written on another goroutine while the table goes on
// changing, and then once more at the end: both must equal the snapshot of
// a deep copy taken at the freeze. CAIRN_TEST_SEED picks another seed.
func TestFreezeAgainstCopy(t *testing.T) {
	seed := testseed.Seed(t, 1)
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
				arena := tab.arena.len()
				tab.Delete(i)
				delete(ref, s)
				delete(byIdx, i)
				free = append(free, i)
				if tab.arena.len() < arena {
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
	if mids == 0 || compactions == 0 || len(views) < 50 || len(tab.arena.pages) < 3 {
		t.Fatalf("seed %d: %d views, %d mid-migration, %d after a compaction: too few", seed, len(views), mids, compactions)
	}
	t.Logf("%d views, %d mid-migration, %d after a compaction; arena of %d pages", len(views), mids, compactions, len(tab.arena.pages))
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

// TestArenaPages appends entries of every size, page-sized and longer ones
// among them, and checks each at its offset, the length, the flat bytes and
// that a frozen copy keeps its bytes while the arena grows.
func TestArenaPages(t *testing.T) {
	var a arena
	var ref []byte
	var offs []uint32
	var views []arena
	var flats [][]byte
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		n := 1 + r.IntN(40)
		switch r.IntN(50) {
		case 0:
			n = arenaPage - 1 + r.IntN(3)
		case 1:
			n = 2*arenaPage + r.IntN(arenaPage)
		}
		s := make([]byte, n)
		for j := range s {
			s[j] = byte(i + j)
		}
		e := binary.AppendUvarint(nil, uint64(n)<<1)
		e = append(e, s...)
		offs = append(offs, a.append(e))
		if int(offs[i]) != len(ref) {
			t.Fatalf("entry %d at %d, want %d", i, offs[i], len(ref))
		}
		ref = append(ref, e...)
		if r.IntN(250) == 0 {
			views = append(views, a.frozen())
			flats = append(flats, bytes.Clone(ref))
		}
	}
	if a.len() != len(ref) || !bytes.Equal(flat(&a), ref) {
		t.Fatalf("length %d want %d, or other bytes", a.len(), len(ref))
	}
	for i, o := range offs {
		end := len(ref)
		if i+1 < len(offs) {
			end = int(offs[i+1])
		}
		if !bytes.Equal(a.entry(o), ref[o:end]) {
			t.Fatalf("entry %d at %d differs", i, o)
		}
	}
	for k, v := range views {
		if !bytes.Equal(flat(&v), flats[k]) {
			t.Fatalf("view %d changed", k)
		}
	}
	b := arenaOf(ref)
	for _, o := range offs {
		if !bytes.Equal(b.entry(o), a.entry(o)) {
			t.Fatalf("restored arena: entry at %d differs", o)
		}
	}
	if used := a.bytes(); used > len(ref)+arenaPage+24*cap(a.pages) {
		t.Fatalf("arena of %d bytes holds %d", len(ref), used)
	}
}

// TestArenaSmall: an arena of a few short entries (the tables of a graph
// of a few nodes) holds about what they take, not a whole page, and its
// allocation grows by doubling as entries come.
func TestArenaSmall(t *testing.T) {
	var a arena
	for i := range 20 {
		e := binary.AppendUvarint(nil, uint64(10)<<1)
		e = append(e, fmt.Sprintf("entry-%04d", i)...)
		a.append(e)
		if used, limit := a.bytes()-24*cap(a.pages), max(minArenaAlloc, 2*a.len()); used > limit {
			t.Fatalf("after %d entries (%d bytes) the arena holds %d, more than %d", i+1, a.len(), used, limit)
		}
	}
}
