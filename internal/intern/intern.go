// Package intern maps strings to caller-chosen dense uint32 indices without a
// Go map or a string header per entry: the bytes live in one arena, and an
// open-addressing hash table (linear probing, backward-shift deletion) holds
// only indices. It costs about len(s)+1 bytes of arena, an offset cell and
// 1/load (1.3 to 2; about 1.4 after Trim) hash slots per string. Cells and
// slots are packed: a slot takes 3 bytes below 16M strings, a cell 3 bytes
// below 16 MB of arena and 4 once any entry is inline (below).
//
// Beside each slot a one-byte tag holds 8 bits of the hash of the entry in
// it (0 when the slot is empty), so that a probe reads the tags, one cache
// line for 64 slots, and compares the entry's bytes (an offset cell and the
// arena: two cache misses in a large table) only where the tag matches:
// once in 255 probes past a slot of another entry.
//
// Ids of the common form prefix+number ("e123456", "node-42") are stored as a
// small prefix number and the number as a uvarint: "e123456" takes 4 bytes of
// arena instead of 8. The encoding is canonical (a string has exactly one), so
// lookups compare and hash encoded bytes and never decode. When the prefix is
// one of the first 32 and the number below 2^26, the entry lives in its
// 4-byte offset cell itself and takes no arena at all. The arena holds at
// most 2 GiB.
//
// The hash table doubles when it is three quarters full, and grows
// incrementally: Set allocates the doubled slot array and then each Set
// moves the next migrateStep slots of the old one over, so that no Set
// rehashes more than migrateStep entries, however large the table.
//
// Freeze captures a table for a snapshot in time O(pages), so that its
// owner waits only for that and writes the snapshot on another goroutine:
// the arena is kept in append-only 64 KiB pages (a compaction builds new
// ones), and the cells and slots are packed.Pages, whose pages are copied
// before they are next written. The Frozen view writes exactly the
// snapshot the table would have written at the freeze.
//
// A Table is deterministic in its answers and not safe for concurrent use;
// a Frozen view is.
package intern

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/cairn-graph/cairn/internal/packed"
	"github.com/cairn-graph/cairn/internal/wire"
)

const (
	minSlots = 16

	// migrateStep is how many old hash slots each Set moves while the
	// table grows. The doubling of L slots starts with more than 3L/4
	// entries and the next one needs more than 3L/2, so at least 3L/4
	// Sets lie between them; the migration of the L old slots takes L/32
	// of them, a 24th of the way, which keeps the time that Lookup probes
	// two arrays short, and costs a Set at most 32 rehashes (a few µs).
	// Any step of 2 or more would finish in time.
	migrateStep = 32

	// maxPrefixes bounds the prefix table, so that a prefix number and its
	// flag fit the one-byte header; maxPrefixLen bounds each prefix.
	maxPrefixes  = 63
	maxPrefixLen = 16
	// maxDigits keeps the number within a uint64.
	maxDigits = 19
)

// Table maps strings to dense indices chosen by the caller.
type Table struct {
	seed    uint64       // of the hash; random per table, kept in snapshots
	arena   arena        // encoded entries (see encode), live or dead
	offs    packed.Pages // index -> arena offset+1, or an inline entry; 0 when free
	slots   packed.Pages // index+1, 0 when empty; any length, not only powers of two
	tags    packed.Pages // per slot: the entry's tag (see tagOf), 0 when empty
	n       int          // live entries
	garbage int          // dead arena bytes

	// While the table grows, old holds the hash slots from before it
	// doubled (empty otherwise), and Set moves them into slots in order,
	// migrateStep per Set. Slots below moved are moved and empty; the
	// rest form a hash table of their own over the circle [moved,
	// old.Len()), where a home below moved counts as moved (see oldHome).
	// Each live index is in exactly one of slots and old.
	old     packed.Pages
	oldTags packed.Pages // per old slot, as tags
	moved   int

	rehashed int // hash slots ever filled by insert, for tests

	// Prefixes of prefix+number strings, numbered in order of first use.
	// A prefix is added when first stored and never removed; once the
	// table is full, strings with a new prefix are stored plainly.
	prefixes map[string]uint8
	prefixOf []string
}

// An offset cell with the inline bit holds a prefix+number entry itself:
// the prefix number in the next inlinePrefixBits bits and the number in the
// low inlineNumBits.
const (
	inline           = 1 << 31
	inlinePrefixBits = 5
	inlineNumBits    = 26
)

// inlineCell returns the inline cell of encoded entry b, if it has one.
func inlineCell(b []byte) (uint32, bool) {
	h, k := binary.Uvarint(b)
	if h&1 == 0 || h>>1 >= 1<<inlinePrefixBits {
		return 0, false
	}
	n, _ := binary.Uvarint(b[k:])
	if n >= 1<<inlineNumBits {
		return 0, false
	}
	return inline | uint32(h>>1)<<inlineNumBits | uint32(n), true
}

// encode appends s's canonical encoding to dst: uvarint(len<<1) and the bytes,
// or, when s is a known prefix followed by a number without leading zeros,
// uvarint(prefix<<1|1) and uvarint(number). With add, a new prefix is taken
// into the table while it has room.
func (t *Table) encode(dst []byte, s string, add bool) []byte {
	k := len(s)
	for k > 0 && s[k-1] >= '0' && s[k-1] <= '9' {
		k--
	}
	if d := s[k:]; len(d) > 0 && len(d) <= maxDigits && (d[0] != '0' || len(d) == 1) && k <= maxPrefixLen {
		p, ok := t.prefixes[s[:k]]
		if !ok && add && len(t.prefixOf) < maxPrefixes {
			if t.prefixes == nil {
				t.prefixes = map[string]uint8{}
			}
			p, ok = uint8(len(t.prefixOf)), true
			prefix := strings.Clone(s[:k]) // not the caller's whole string
			t.prefixes[prefix] = p
			t.prefixOf = append(t.prefixOf, prefix)
		}
		if ok {
			var n uint64
			for i := k; i < len(s); i++ {
				n = n*10 + uint64(s[i]-'0')
			}
			dst = binary.AppendUvarint(dst, uint64(p)<<1|1)
			return binary.AppendUvarint(dst, n)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(s))<<1)
	return append(dst, s...)
}

// decode returns the string that the encoded entry b holds.
func (t *Table) decode(b []byte) string {
	h, k := binary.Uvarint(b)
	if h&1 == 0 {
		return string(b[k:])
	}
	n, _ := binary.Uvarint(b[k:])
	var buf [maxPrefixLen + maxDigits + 1]byte
	return string(strconv.AppendUint(append(buf[:0], t.prefixOf[h>>1]...), n, 10))
}

// entryLen returns the length of the encoded entry at the start of b.
func entryLen(b []byte) int {
	h, k := binary.Uvarint(b)
	if h&1 == 0 {
		return k + int(h>>1)
	}
	_, k2 := binary.Uvarint(b[k:])
	return k + k2
}

// New returns an empty table.
func New() *Table {
	return &Table{seed: rand.Uint64(), slots: packed.MakePages(minSlots, 0), tags: makeTags(minSlots)}
}

// Len returns the number of live strings.
func (t *Table) Len() int { return t.n }

// Cap returns one more than the highest index ever set.
func (t *Table) Cap() int { return t.offs.Len() }

// home returns the slot where the probe for an entry of hash h starts: the
// hash's low half scaled to the table by a multiply and shift, so that the
// table can have any size.
func (t *Table) home(h uint64) uint32 {
	return uint32(uint64(uint32(h)) * uint64(t.slots.Len()) >> 32)
}

// tagOf returns the tag of an entry of hash h: its top 8 bits, 1 to 255 (0
// marks an empty slot).
func tagOf(h uint64) uint32 { return max(uint32(h>>56), 1) }

// makeTags returns the tags of n empty slots.
func makeTags(n int) packed.Pages { return packed.MakePages(n, 255) }

// Constants of wyhash, whose scheme hash follows.
const (
	hashP0 = 0xa0761d6478bd642f
	hashP1 = 0xe7037ed1a0b428db
)

// mix multiplies a and b into 128 bits and folds them.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash is a seeded 64-bit hash of b after wyhash: as fast as maphash on
// the short encoded entries, but with a seed that a snapshot can store, so
// that a restored table keeps its slots instead of rehashing every entry.
func hash(seed uint64, b []byte) uint64 {
	n := len(b)
	seed ^= hashP0
	var a, c uint64
	switch {
	case n > 16:
		p := b
		for len(p) > 16 {
			seed = mix(binary.LittleEndian.Uint64(p)^hashP1, binary.LittleEndian.Uint64(p[8:])^seed)
			p = p[16:]
		}
		a, c = binary.LittleEndian.Uint64(b[n-16:]), binary.LittleEndian.Uint64(b[n-8:])
	case n >= 8:
		a, c = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	case n >= 4:
		a, c = uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[n-4:]))
	case n > 0:
		a = uint64(b[0])<<16 | uint64(b[n>>1])<<8 | uint64(b[n-1])
	}
	return mix(hashP1^uint64(n), mix(a^hashP1, c^seed))
}

// next returns the slot after p, wrapping around.
func (t *Table) next(p uint32) uint32 {
	if p++; int(p) == t.slots.Len() {
		return 0
	}
	return p
}

// dist returns how many slots lie from a forward to b, wrapping around.
func (t *Table) dist(a, b uint32) uint32 {
	if b >= a {
		return b - a
	}
	return b + uint32(t.slots.Len()) - a
}

// oldHome returns the slot of old where the probe for an entry of hash h
// starts. Moving the slots below moved out of old took the start of every
// probe chain that crossed them; the rest of each chain still holds, so a
// probe that would start below moved starts at moved.
func (t *Table) oldHome(h uint64) uint32 {
	p := uint32(uint64(uint32(h)) * uint64(t.old.Len()) >> 32)
	return max(p, uint32(t.moved))
}

// oldNext returns the slot of old after p, wrapping around to moved.
func (t *Table) oldNext(p uint32) uint32 {
	if p++; int(p) == t.old.Len() {
		return uint32(t.moved)
	}
	return p
}

// oldDist returns how many slots of old lie from a forward to b, both at
// or past moved, wrapping around.
func (t *Table) oldDist(a, b uint32) uint32 {
	if b >= a {
		return b - a
	}
	return b + uint32(t.old.Len()-t.moved) - a
}

// Bytes returns the memory the table holds, in bytes.
func (t *Table) Bytes() int {
	return t.arena.bytes() + t.offs.Bytes() + t.slots.Bytes() + t.old.Bytes() + t.tags.Bytes() + t.oldTags.Bytes()
}

// entryBuf holds an inline entry re-encoded.
type entryBuf [2 * binary.MaxVarintLen32]byte

// bytesAt returns the encoded entry at index i: a slice of the arena, or an
// inline cell re-encoded into buf.
func (t *Table) bytesAt(i uint32, buf *entryBuf) []byte {
	c := t.offs.Get(int(i))
	if c&inline != 0 {
		b := binary.AppendUvarint(buf[:0], uint64(c>>inlineNumBits&(1<<inlinePrefixBits-1))<<1|1)
		return binary.AppendUvarint(b, uint64(c&(1<<inlineNumBits-1)))
	}
	return t.arena.entry(c - 1)
}

// Has reports whether index i holds a string.
func (t *Table) Has(i uint32) bool { return int(i) < t.offs.Len() && t.offs.Get(int(i)) != 0 }

// String returns the string at index i ("" when i is free).
func (t *Table) String(i uint32) string {
	if !t.Has(i) {
		return ""
	}
	if c := t.offs.Get(int(i)); c&inline != 0 {
		var buf [maxPrefixLen + maxDigits + 1]byte
		b := append(buf[:0], t.prefixOf[c>>inlineNumBits&(1<<inlinePrefixBits-1)]...)
		return string(strconv.AppendUint(b, uint64(c&(1<<inlineNumBits-1)), 10))
	}
	var e entryBuf
	return t.decode(t.bytesAt(i, &e))
}

// AppendString appends the string at index i to dst (nothing when i is
// free), without allocating when dst has room.
func (t *Table) AppendString(dst []byte, i uint32) []byte {
	if !t.Has(i) {
		return dst
	}
	if c := t.offs.Get(int(i)); c&inline != 0 {
		dst = append(dst, t.prefixOf[c>>inlineNumBits&(1<<inlinePrefixBits-1)]...)
		return strconv.AppendUint(dst, uint64(c&(1<<inlineNumBits-1)), 10)
	}
	var e entryBuf
	b := t.bytesAt(i, &e)
	h, k := binary.Uvarint(b)
	if h&1 == 0 {
		return append(dst, b[k:k+int(h>>1)]...)
	}
	n, _ := binary.Uvarint(b[k:])
	return strconv.AppendUint(append(dst, t.prefixOf[h>>1]...), n, 10)
}

// encodeBuf is the stack buffer an entry is encoded into: keys up to about
// this long (ids, component keys of short values) encode without an
// allocation.
const encodeBuf = 128

// Equal reports whether index i holds s, without allocating for short s.
func (t *Table) Equal(i uint32, s string) bool {
	var buf [encodeBuf]byte
	var e entryBuf
	return t.Has(i) && bytes.Equal(t.bytesAt(i, &e), t.encode(buf[:0], s, false))
}

// Lookup returns the index that holds s.
func (t *Table) Lookup(s string) (uint32, bool) {
	var buf [encodeBuf]byte
	var e entryBuf
	b := t.encode(buf[:0], s, false)
	h := hash(t.seed, b)
	tag := tagOf(h)
	for p := t.home(h); ; p = t.next(p) {
		g := t.tags.Get(int(p))
		if g == 0 {
			break
		}
		if g != tag {
			continue
		}
		if v := t.slots.Get(int(p)); bytes.Equal(t.bytesAt(v-1, &e), b) {
			return v - 1, true
		}
	}
	if t.old.Len() == 0 {
		return 0, false
	}
	p := t.oldHome(h)
	for range t.old.Len() - t.moved {
		g := t.oldTags.Get(int(p))
		if g == 0 {
			break
		}
		if g == tag {
			if v := t.old.Get(int(p)); bytes.Equal(t.bytesAt(v-1, &e), b) {
				return v - 1, true
			}
		}
		p = t.oldNext(p)
	}
	return 0, false
}

// Set stores s at index i, which must be free, and s must not be present.
func (t *Table) Set(i uint32, s string) {
	for int(i) >= t.offs.Len() {
		t.offs.Append(0)
	}
	var buf [encodeBuf]byte
	b := t.encode(buf[:0], s, true)
	if c, ok := inlineCell(b); ok {
		t.offs.Set(int(i), c)
	} else {
		t.offs.Set(int(i), t.arena.append(b)+1)
	}
	t.n++
	if t.n*4 > t.slots.Len()*3 {
		// A table that grows finishes migrating before it is this full
		// (see migrateStep); only a restored table of another shape can
		// get here mid-migration.
		t.migrate(t.old.Len())
		t.old, t.oldTags, t.moved = t.slots, t.tags, 0
		t.slots = packed.MakePages(t.old.Len()*2, uint32(t.offs.Len()))
		t.tags = makeTags(t.slots.Len())
	}
	t.insert(i)
	t.migrate(migrateStep)
}

// insert puts index i into slots.
func (t *Table) insert(i uint32) {
	var e entryBuf
	h := hash(t.seed, t.bytesAt(i, &e))
	p := t.home(h)
	for t.tags.Get(int(p)) != 0 {
		p = t.next(p)
	}
	t.slots.Set(int(p), i+1)
	t.tags.Set(int(p), tagOf(h))
	t.rehashed++
}

// migrate moves up to k of the old hash slots into slots, and drops old
// once all are moved.
func (t *Table) migrate(k int) {
	for ; k > 0 && t.old.Len() > 0; k-- {
		if v := t.old.Get(t.moved); v != 0 {
			t.old.Set(t.moved, 0)
			t.oldTags.Set(t.moved, 0)
			t.insert(v - 1)
		}
		if t.moved++; t.moved == t.old.Len() {
			t.old, t.oldTags, t.moved = packed.Pages{}, packed.Pages{}, 0
		}
	}
}

func (t *Table) resize(n int) {
	t.slots = packed.MakePages(n, uint32(t.offs.Len()))
	t.tags = makeTags(n)
	for i := range t.offs.Len() {
		if t.offs.Get(i) != 0 {
			t.insert(uint32(i))
		}
	}
}

// Delete frees index i.
func (t *Table) Delete(i uint32) {
	if !t.Has(i) {
		return
	}
	var e entryBuf
	b := t.bytesAt(i, &e)
	h := hash(t.seed, b)
	if !t.deleteNew(i, h, true) && !t.deleteOld(i, h) {
		// Only in a restored table whose slots lie off their probe
		// chains: ReadSnapshot checked that i is in one of them.
		t.deleteNew(i, h, false)
	}
	if t.offs.Get(int(i))&inline == 0 {
		t.garbage += len(b)
	}
	t.offs.Set(int(i), 0)
	t.n--
	if t.garbage > 1<<16 && t.garbage*2 > t.arena.len() {
		t.compact()
	}
}

// deleteNew removes index i, whose encoded entry has hash h, from slots,
// and reports whether it was there; with chain, it looks only along h's
// probe chain.
func (t *Table) deleteNew(i uint32, h uint64, chain bool) bool {
	p := t.home(h)
	for k := 0; t.slots.Get(int(p)) != i+1; k++ {
		if k == t.slots.Len() || chain && t.slots.Get(int(p)) == 0 {
			return false
		}
		p = t.next(p)
	}
	// Backward-shift deletion keeps probe chains unbroken without tombstones.
	var f entryBuf
	for q := t.next(p); t.slots.Get(int(q)) != 0; q = t.next(q) {
		v := t.slots.Get(int(q))
		home := t.home(hash(t.seed, t.bytesAt(v-1, &f)))
		// Move q's entry to p when its home is not within (p, q].
		if t.dist(home, q) >= t.dist(p, q) {
			t.slots.Set(int(p), v)
			t.tags.Set(int(p), t.tags.Get(int(q)))
			p = q
		}
	}
	t.slots.Set(int(p), 0)
	t.tags.Set(int(p), 0)
	return true
}

// deleteOld removes index i, whose encoded entry has hash h, from the part
// of old not yet moved, and reports whether it was there. The part may
// have no empty slot, so every loop stops after one round.
func (t *Table) deleteOld(i uint32, h uint64) bool {
	size := t.old.Len() - t.moved
	if size <= 0 {
		return false
	}
	p := t.oldHome(h)
	for k := 0; t.old.Get(int(p)) != i+1; k++ {
		if k == size {
			return false
		}
		p = t.oldNext(p)
	}
	var f entryBuf
	q := p
	for range size - 1 {
		if q = t.oldNext(q); t.old.Get(int(q)) == 0 {
			break
		}
		v := t.old.Get(int(q))
		home := t.oldHome(hash(t.seed, t.bytesAt(v-1, &f)))
		if t.oldDist(home, q) >= t.oldDist(p, q) {
			t.old.Set(int(p), v)
			t.oldTags.Set(int(p), t.oldTags.Get(int(q)))
			p = q
		}
	}
	t.old.Set(int(p), 0)
	t.oldTags.Set(int(p), 0)
	return true
}

// Trim drops dead arena bytes and unused capacity, for a table that is about
// to stay unchanged for a while: it also shrinks the hash table to a load of
// about 0.73, which doubling alone leaves anywhere between 0.375 and 0.75.
func (t *Table) Trim() {
	t.migrate(t.old.Len())
	t.compact()
	t.offs.Clip()
	if n := t.n*4/3 + t.n/32 + minSlots; n < t.slots.Len() {
		t.resize(n)
	}
}

// compact copies the live strings into a fresh arena.
func (t *Table) compact() {
	var arena arena
	for i := range t.offs.Len() {
		if c := t.offs.Get(i); c == 0 || c&inline != 0 {
			continue
		}
		var e entryBuf
		t.offs.Set(i, arena.append(t.bytesAt(uint32(i), &e))+1)
	}
	t.arena, t.garbage = arena, 0
}

// AppendSnapshot appends the table's contents to dst: its counters, the
// prefixes, and the arena, offset cells, hash seed, hash slots and their
// tags as they are, so that ReadSnapshot copies them rather than rehashing. A table that
// is growing is written mid-migration, old slots and progress too, and
// the restored one goes on from there. It is Freeze().AppendSnapshot: the
// table's contents do not change, but the pages it has now are copied
// before they are next written.
func (t *Table) AppendSnapshot(dst []byte) []byte {
	return t.Freeze().AppendSnapshot(dst)
}

// Frozen is an immutable view of a Table as it was when Freeze returned
// it; the table may go on changing meanwhile. It is safe for concurrent
// use.
type Frozen struct {
	seed       uint64
	n, garbage int
	prefixOf   []string
	arena      arena
	offs       packed.PagesView
	slots      packed.PagesView
	old        packed.PagesView
	tags       packed.PagesView
	oldTags    packed.PagesView
	moved      int
}

// Freeze returns an immutable view of the table, in time O(pages): the
// arena only grows by appending until a compaction replaces it, the
// prefix list too, and the offset cells and hash slots are paged arrays
// whose pages are copied before they are next written.
func (t *Table) Freeze() *Frozen {
	return &Frozen{
		seed: t.seed, n: t.n, garbage: t.garbage,
		prefixOf: t.prefixOf[:len(t.prefixOf):len(t.prefixOf)],
		arena:    t.arena.frozen(),
		offs:     t.offs.Freeze(), slots: t.slots.Freeze(), old: t.old.Freeze(),
		tags: t.tags.Freeze(), oldTags: t.oldTags.Freeze(),
		moved: t.moved,
	}
}

// Len returns the number of live strings.
func (f *Frozen) Len() int { return f.n }

// Cap returns one more than the highest index ever set.
func (f *Frozen) Cap() int { return f.offs.Len() }

// Bytes returns about the size of the snapshot the view writes.
func (f *Frozen) Bytes() int {
	n := f.arena.len() + 64
	for _, v := range []*packed.PagesView{&f.offs, &f.slots, &f.old, &f.tags, &f.oldTags} {
		n += v.Len() * int(v.Width()) / 8
	}
	return n
}

// AppendSnapshot appends what the table's AppendSnapshot would have
// appended when Freeze was called.
func (f *Frozen) AppendSnapshot(dst []byte) []byte { return f.AppendSnapshotPaced(dst, nil) }

// AppendSnapshotPaced is AppendSnapshot calling step (unless nil) after
// each MiB of the arena and after each packed array.
func (f *Frozen) AppendSnapshotPaced(dst []byte, step wire.Step) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, f.seed)
	dst = wire.AppendUvarint(dst, uint64(f.n))
	dst = wire.AppendUvarint(dst, uint64(f.garbage))
	dst = wire.AppendUvarint(dst, uint64(len(f.prefixOf)))
	for _, p := range f.prefixOf {
		dst = wire.AppendString(dst, p)
	}
	dst = f.arena.appendTo(dst, step)
	for _, v := range []*packed.PagesView{&f.offs, &f.slots, &f.old, &f.tags, &f.oldTags} {
		dst = wire.AppendPackedView(dst, v)
		step.Do()
	}
	return wire.AppendUvarint(dst, uint64(f.moved))
}

// ReadSnapshot reads a table that AppendSnapshot wrote, checking every
// offset cell against the arena and the prefixes, and that the hash slots
// hold each live index once and leave one free; nil when r fails (r.Err
// says why).
func ReadSnapshot(r *wire.Reader) *Table {
	t := &Table{}
	if b := r.Next(8); b != nil {
		t.seed = binary.LittleEndian.Uint64(b)
	}
	n := r.Int(1<<31, "live count")
	t.garbage = r.Int(1<<31, "garbage")
	np := r.Int(maxPrefixes, "prefix count")
	for range np {
		p := r.String()
		if len(p) > maxPrefixLen {
			r.Failf("prefix %q longer than %d", p, maxPrefixLen)
		}
		if _, dup := t.prefixes[p]; dup {
			r.Failf("prefix %q twice", p)
		}
		if r.Err() != nil {
			return nil
		}
		if t.prefixes == nil {
			t.prefixes = map[string]uint8{}
		}
		t.prefixes[p] = uint8(len(t.prefixOf))
		t.prefixOf = append(t.prefixOf, p)
	}
	arena := r.Bytes()
	if len(arena) >= 1<<31 {
		r.Failf("arena of %d bytes", len(arena))
	}
	t.arena = arenaOf(arena)
	t.offs = r.PackedPages("offset cells")
	t.slots = r.PackedPages("hash slots")
	t.old = r.PackedPages("old hash slots")
	t.tags = r.PackedPages("hash tags")
	t.oldTags = r.PackedPages("old hash tags")
	t.moved = r.Int(1<<32, "old hash slots moved")
	if r.Err() != nil {
		return nil
	}
	live, used := 0, 0
	for i := range t.offs.Len() {
		c := t.offs.Get(i)
		switch {
		case c == 0:
			continue
		case c&inline != 0:
			if int(c>>inlineNumBits&(1<<inlinePrefixBits-1)) >= len(t.prefixOf) {
				r.Failf("index %d: inline prefix %d of %d", i, c>>inlineNumBits&(1<<inlinePrefixBits-1), len(t.prefixOf))
				return nil
			}
		default:
			k, err := t.checkEntry(int(c - 1))
			if err != "" {
				r.Failf("index %d: offset %d: %s", i, c-1, err)
				return nil
			}
			used += k
		}
		live++
	}
	if live != n {
		r.Failf("%d live entries, header says %d", live, n)
	}
	if used+t.garbage != t.arena.len() {
		r.Failf("%d bytes of live entries and %d of garbage in an arena of %d", used, t.garbage, t.arena.len())
	}
	if r.Err() != nil {
		return nil
	}
	t.n = n
	if msg := t.checkSlots(); msg != "" {
		r.Failf("%s", msg)
		return nil
	}
	return t
}

// checkSlots checks that the hash slots, with the old ones not yet moved
// while the table grows, hold each live index once between them, that
// slots leave one empty, so that every probe ends, that old is half as
// long as slots with the moved part empty, and that each slot has a tag
// (1 to 255) exactly when it is filled; "" when they do. It does not hash
// the entries to check their tags (a restart would pay for that): a wrong
// tag, like a slot off its probe chain, only hides its entry from Lookup,
// and the snapshots that carry tables have checksums.
func (t *Table) checkSlots() string {
	if t.slots.Len() <= t.n || t.slots.Len() < minSlots {
		return fmt.Sprintf("%d hash slots for %d entries", t.slots.Len(), t.n)
	}
	if t.tags.Len() != t.slots.Len() || t.oldTags.Len() != t.old.Len() {
		return fmt.Sprintf("%d and %d hash tags for %d and %d hash slots", t.tags.Len(), t.oldTags.Len(), t.slots.Len(), t.old.Len())
	}
	if msg := checkTags(&t.slots, &t.tags); msg != "" {
		return msg
	}
	if msg := checkTags(&t.old, &t.oldTags); msg != "" {
		return "old " + msg
	}
	switch {
	case t.old.Len() == 0 && t.moved != 0:
		return fmt.Sprintf("%d old hash slots moved of none", t.moved)
	case t.old.Len() != 0 && (t.old.Len()*2 != t.slots.Len() || t.moved >= t.old.Len()):
		return fmt.Sprintf("%d old hash slots, %d moved, for %d hash slots", t.old.Len(), t.moved, t.slots.Len())
	}
	seen := make([]uint64, (t.offs.Len()+63)/64)
	filled := 0
	var msg string
	// Page by page (packed.Pages.Scan): a few times faster than Get per
	// slot, and a restart checks every slot of every table it loads.
	buf := make([]uint32, packed.PageLen)
	for _, a := range []*packed.Pages{&t.slots, &t.old} {
		a.Scan(buf, func(start int, vals []uint32) bool {
			for j, v := range vals {
				if v == 0 {
					continue
				}
				p := start + j
				if a == &t.old && p < t.moved {
					msg = fmt.Sprintf("old hash slot %d below %d moved holds index %d", p, t.moved, v-1)
					return false
				}
				i := v - 1
				if int(i) >= t.offs.Len() || seen[i/64]&(1<<(i%64)) != 0 {
					msg = fmt.Sprintf("hash slot %d: index %d past %d or twice", p, i, t.offs.Len())
					return false
				}
				seen[i/64] |= 1 << (i % 64)
				filled++
			}
			return true
		})
		if msg != "" {
			return msg
		}
	}
	if filled != t.n {
		return fmt.Sprintf("%d hash slots filled for %d entries", filled, t.n)
	}
	// n distinct indices, each live: the slots hold exactly the live ones.
	t.offs.Scan(buf, func(start int, vals []uint32) bool {
		for j, o := range vals {
			if i := start + j; o != 0 && seen[i/64]&(1<<(i%64)) == 0 {
				msg = fmt.Sprintf("index %d has no hash slot", i)
				return false
			}
		}
		return true
	})
	return msg
}

// checkTags checks that tags, as long as slots, holds a tag of 1 to 255
// exactly where slots holds an index; "" when it does.
func checkTags(slots, tags *packed.Pages) string {
	var msg string
	sb, tb := make([]uint32, packed.PageLen), make([]uint32, packed.PageLen)
	// Page by page, both arrays in step (their pages have the same length).
	for k := 0; k<<packed.PageBits < slots.Len() && msg == ""; k++ {
		start := k << packed.PageBits
		sv, tv := slots.UnpackPage(k, sb), tags.UnpackPage(k, tb)
		for j, v := range sv {
			if g := tv[j]; g > 255 || (g == 0) != (v == 0) {
				msg = fmt.Sprintf("hash slot %d holds %d with tag %d", start+j, v, g)
				break
			}
		}
	}
	return msg
}

// checkEntry checks the encoded entry at arena offset o and returns its
// length, or what is wrong with it.
func (t *Table) checkEntry(o int) (int, string) {
	if o >= t.arena.len() {
		return 0, "past arena end"
	}
	b := t.arena.at(uint32(o))
	h, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, "bad header"
	}
	if h&1 == 0 {
		if h>>1 > uint64(len(b)-k) {
			return 0, "string past arena end"
		}
		return k + int(h>>1), ""
	}
	if h>>1 >= uint64(len(t.prefixOf)) {
		return 0, fmt.Sprintf("prefix %d of %d", h>>1, len(t.prefixOf))
	}
	_, k2 := binary.Uvarint(b[k:])
	if k2 <= 0 {
		return 0, "bad number"
	}
	return k + k2, ""
}
