// Package intern maps strings to caller-chosen dense uint32 indices without a
// Go map or a string header per entry: the bytes live in one arena, and an
// open-addressing hash table (linear probing, backward-shift deletion) holds
// only indices. It costs about len(s)+1 bytes of arena, 4 bytes of offset and
// 4/load (5.3 to 8) bytes of hash slot per string.
//
// A Table is deterministic in its answers and not safe for concurrent use.
package intern

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
)

const (
	none     = ^uint32(0)
	minSlots = 16
)

// Table maps strings to dense indices chosen by the caller.
type Table struct {
	seed    maphash.Seed
	arena   []byte   // uvarint(len) followed by the bytes, per live or dead entry
	offs    []uint32 // index -> arena offset, none when free
	slots   []uint32 // index+1, 0 when empty
	n       int      // live entries
	garbage int      // dead arena bytes
}

// New returns an empty table.
func New() *Table {
	return &Table{seed: maphash.MakeSeed(), slots: make([]uint32, minSlots)}
}

// Len returns the number of live strings.
func (t *Table) Len() int { return t.n }

// Cap returns one more than the highest index ever set.
func (t *Table) Cap() int { return len(t.offs) }

// Bytes returns the memory the table holds, in bytes.
func (t *Table) Bytes() int { return cap(t.arena) + 4*cap(t.offs) + 4*cap(t.slots) }

func (t *Table) bytesAt(i uint32) []byte {
	o := t.offs[i]
	l, k := binary.Uvarint(t.arena[o:])
	start := int(o) + k
	return t.arena[start : start+int(l)]
}

// Has reports whether index i holds a string.
func (t *Table) Has(i uint32) bool { return int(i) < len(t.offs) && t.offs[i] != none }

// String returns the string at index i ("" when i is free).
func (t *Table) String(i uint32) string {
	if !t.Has(i) {
		return ""
	}
	return string(t.bytesAt(i))
}

// Equal reports whether index i holds s, without allocating.
func (t *Table) Equal(i uint32, s string) bool {
	return t.Has(i) && string(t.bytesAt(i)) == s
}

// Lookup returns the index that holds s.
func (t *Table) Lookup(s string) (uint32, bool) {
	mask := uint32(len(t.slots) - 1)
	for p := uint32(maphash.String(t.seed, s)) & mask; ; p = (p + 1) & mask {
		v := t.slots[p]
		if v == 0 {
			return 0, false
		}
		if string(t.bytesAt(v-1)) == s {
			return v - 1, true
		}
	}
}

// Set stores s at index i, which must be free, and s must not be present.
func (t *Table) Set(i uint32, s string) {
	for int(i) >= len(t.offs) {
		t.offs = append(t.offs, none)
	}
	t.offs[i] = uint32(len(t.arena))
	t.arena = binary.AppendUvarint(t.arena, uint64(len(s)))
	t.arena = append(t.arena, s...)
	t.n++
	if t.n*4 > len(t.slots)*3 {
		t.resize(len(t.slots) * 2)
	} else {
		t.insert(i)
	}
}

func (t *Table) insert(i uint32) {
	mask := uint32(len(t.slots) - 1)
	p := uint32(maphash.Bytes(t.seed, t.bytesAt(i))) & mask
	for t.slots[p] != 0 {
		p = (p + 1) & mask
	}
	t.slots[p] = i + 1
}

func (t *Table) resize(n int) {
	t.slots = make([]uint32, n)
	for i, o := range t.offs {
		if o != none {
			t.insert(uint32(i))
		}
	}
}

// Delete frees index i.
func (t *Table) Delete(i uint32) {
	if !t.Has(i) {
		return
	}
	b := t.bytesAt(i)
	mask := uint32(len(t.slots) - 1)
	p := uint32(maphash.Bytes(t.seed, b)) & mask
	for t.slots[p] != i+1 {
		p = (p + 1) & mask
	}
	// Backward-shift deletion keeps probe chains unbroken without tombstones.
	for q := (p + 1) & mask; t.slots[q] != 0; q = (q + 1) & mask {
		home := uint32(maphash.Bytes(t.seed, t.bytesAt(t.slots[q]-1))) & mask
		// Move q's entry to p when its home is not within (p, q].
		if (q-home)&mask >= (q-p)&mask {
			t.slots[p] = t.slots[q]
			p = q
		}
	}
	t.slots[p] = 0
	t.garbage += len(b) + len(binary.AppendUvarint(nil, uint64(len(b))))
	t.offs[i] = none
	t.n--
	if t.garbage > 1<<16 && t.garbage*2 > len(t.arena) {
		t.compact()
	}
}

// Trim drops dead arena bytes and unused capacity, for a table that is about
// to stay unchanged for a while.
func (t *Table) Trim() {
	t.compact()
	t.offs = slices.Clone(t.offs)
}

// compact copies the live strings into a fresh arena.
func (t *Table) compact() {
	arena := make([]byte, 0, len(t.arena)-t.garbage)
	for i, o := range t.offs {
		if o == none {
			continue
		}
		b := t.bytesAt(uint32(i))
		t.offs[i] = uint32(len(arena))
		arena = binary.AppendUvarint(arena, uint64(len(b)))
		arena = append(arena, b...)
	}
	t.arena, t.garbage = arena, 0
}
