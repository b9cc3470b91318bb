package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"

	"github.com/cairn-graph/cairn/internal/intern"
	"github.com/cairn-graph/cairn/internal/packed"
	"github.com/cairn-graph/cairn/internal/wire"
)

// SnapshotFormat is the version of the state encoding Marshal writes and
// Unmarshal reads. Format 1 was a cairn.v1.GraphSnapshot message of nodes
// and edges; format 2 is the state's own arrays and tables as they are;
// format 3 adds the intern tables' hash tags (a byte of each slot's hash,
// package intern). Unmarshal reads format 3 only: an older snapshot's tags
// could only be rebuilt by hashing every id, so it is passed over and the
// grain replays instead (docs/migrations.md).
const SnapshotFormat = 3

// ErrInvalidSnapshot: a state encoding does not hold together, is of
// another format, or fails its checksum.
var ErrInvalidSnapshot = errors.New("invalid aggregate snapshot")

// snapshotMagic starts every encoding, so that a stray object is refused
// at once.
const snapshotMagic = "CAGS"

// Frozen is a state as it was at Freeze: it shares the state's arrays and
// tables, whose pages the state copies before it next writes them, so that
// a Frozen can be encoded on another goroutine while the state moves on.
type Frozen struct {
	graph            string
	created, deleted bool
	typ              string
	metadata         map[string]string // replaced, never changed, by Apply
	nNodes, nEdges   int

	nodes, edges         *intern.Frozen
	freeNodes, freeEdges []uint32
	nodeSet, first       packed.PagesView
	edgeArrays           []packed.PagesView // in edgeArrays order
	refs                 [3]frozenRefs      // comps, nsets, esets
	ctype                packed.PagesView
	names                [3]*intern.Frozen // ctypes, cats, etypes
}

type frozenRefs struct {
	t    *intern.Frozen
	refs packed.PagesView
	free []uint32
}

// Freeze captures s in time proportional to its pages (about 30 µs at 1M
// nodes and 3M edges), not to its size: what a graph grain blocks for when
// it snapshots. It must not run while s records changes.
func (s *State) Freeze() (*Frozen, error) {
	if s.recording {
		return nil, fmt.Errorf("freeze state of %s: changes are being recorded", s.graph)
	}
	f := &Frozen{graph: s.graph, created: s.created, deleted: s.deleted, typ: s.typ, metadata: s.metadata,
		nNodes: s.nNodes, nEdges: s.nEdges,
		nodes: s.nodes.Freeze(), edges: s.edges.Freeze(),
		freeNodes: slices.Clone(s.freeNodes), freeEdges: slices.Clone(s.freeEdges),
		nodeSet: s.nodeSet.Freeze(), first: s.first.Freeze(), ctype: s.ctype.Freeze(),
		names: [3]*intern.Frozen{s.ctypes.t.Freeze(), s.cats.t.Freeze(), s.etypes.t.Freeze()}}
	for _, a := range s.edgeArrays() {
		f.edgeArrays = append(f.edgeArrays, a.Freeze())
	}
	for i, r := range []*refTable{&s.comps, &s.nsets, &s.esets} {
		f.refs[i] = frozenRefs{t: r.t.Freeze(), refs: r.refs.Freeze(), free: slices.Clone(r.free)}
	}
	return f, nil
}

// Graph returns the frozen state's graph id.
func (f *Frozen) Graph() string { return f.graph }

// Marshal encodes s with the idempotency window w (nil: none): the state's
// packed arrays and intern tables as they are, then a CRC-32C of all of it.
// It must not run while s records changes (Begin without Commit).
func Marshal(s *State, w *Window) ([]byte, error) {
	f, err := s.Freeze()
	if err != nil {
		return nil, err
	}
	var replies []*cairnv1.CommandReply
	if w != nil {
		replies = w.List()
	}
	return f.Marshal(replies)
}

// Marshal encodes the frozen state with the window's replies, oldest
// first (see the package's Marshal). It may run on any goroutine.
func (f *Frozen) Marshal(replies []*cairnv1.CommandReply) ([]byte, error) {
	return f.MarshalPaced(replies, nil)
}

// MarshalPaced is Marshal calling step (unless nil) between bounded pieces
// of the work, a MiB or one array, so that the encoding can be paced (see
// wire.Step). The bytes are Marshal's.
func (f *Frozen) MarshalPaced(replies []*cairnv1.CommandReply, step wire.Step) ([]byte, error) {
	return f.AppendMarshal(nil, replies, step)
}

// SizeHint returns about the size of the state's encoding without replies:
// a buffer of that size takes AppendMarshal's output without growing,
// unless the replies are many.
func (f *Frozen) SizeHint() int {
	size := f.nodes.Bytes() + f.edges.Bytes() + 1024
	for _, r := range f.refs {
		size += r.t.Bytes()
	}
	return size + 4*(f.nodeSet.Len()+f.first.Len()+len(f.edgeArrays)*f.edges.Cap())
}

// AppendMarshal is MarshalPaced writing into dst's spare room (dst is
// emptied first; it grows when too small), for a caller that lends the
// buffer (internal/offheap).
func (f *Frozen) AppendMarshal(dst []byte, replies []*cairnv1.CommandReply, step wire.Step) ([]byte, error) {
	if size := f.SizeHint(); cap(dst) < size {
		dst = make([]byte, 0, size)
	}
	dst = dst[:0]
	wire.PrefaultPaced(dst[:cap(dst)], step)
	dst = append(dst, snapshotMagic...)
	dst = wire.AppendUvarint(dst, SnapshotFormat)
	dst = wire.AppendString(dst, f.graph)
	dst = wire.AppendBool(dst, f.created)
	dst = wire.AppendBool(dst, f.deleted)
	dst = wire.AppendString(dst, f.typ)
	keys := make([]string, 0, len(f.metadata))
	for k := range f.metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = wire.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = wire.AppendString(wire.AppendString(dst, k), f.metadata[k])
	}
	dst = wire.AppendUvarint(dst, uint64(f.nNodes))
	dst = wire.AppendUvarint(dst, uint64(f.nEdges))
	dst = f.nodes.AppendSnapshotPaced(dst, step)
	dst = wire.AppendU32s(dst, f.freeNodes)
	step.Do()
	dst = wire.AppendPages(dst, &f.nodeSet)
	step.Do()
	dst = wire.AppendPages(dst, &f.first)
	step.Do()
	dst = f.edges.AppendSnapshotPaced(dst, step)
	dst = wire.AppendU32s(dst, f.freeEdges)
	step.Do()
	for i := range f.edgeArrays {
		dst = wire.AppendPages(dst, &f.edgeArrays[i])
		step.Do()
	}
	for i := range f.refs {
		r := &f.refs[i]
		dst = r.t.AppendSnapshotPaced(dst, step)
		dst = wire.AppendPages(dst, &r.refs)
		step.Do()
		dst = wire.AppendU32s(dst, r.free)
	}
	dst = wire.AppendPages(dst, &f.ctype)
	step.Do()
	for _, n := range f.names {
		dst = n.AppendSnapshotPaced(dst, step)
	}
	dst = wire.AppendUvarint(dst, uint64(len(replies)))
	mo := proto.MarshalOptions{Deterministic: true}
	for i, r := range replies {
		n := mo.Size(r)
		dst = binary.AppendUvarint(dst, uint64(n))
		var err error
		if dst, err = mo.MarshalAppend(dst, r); err != nil {
			return nil, fmt.Errorf("marshal state of %s: reply %q: %w", f.graph, r.GetCommandId(), err)
		}
		// The default window's 10,000 replies took about 15 ms in one
		// piece.
		if i%replyStride == replyStride-1 {
			step.Do()
		}
	}
	return binary.LittleEndian.AppendUint32(dst, wire.ChecksumPaced(dst, step)), nil
}

// replyStride is how many replies AppendMarshal encodes between two steps.
const replyStride = 256

// edgeArrays lists the per-edge packed arrays in encoding order.
func (s *State) edgeArrays() []*packed.Pages {
	return []*packed.Pages{&s.src, &s.dst, &s.edgeSet, &s.srcNext, &s.srcPrev, &s.dstNext, &s.dstPrev}
}

// Unmarshal decodes what Marshal wrote into a state and the window's
// replies, oldest first. It checks the checksum, every bound, every
// reference, the reference counts and every incidence list, so that a
// state it returns is one Apply could have built; otherwise it returns an
// error wrapping ErrInvalidSnapshot that says where and why. It never
// panics.
func Unmarshal(data []byte) (*State, []*cairnv1.CommandReply, error) {
	fail := func(format string, a ...any) (*State, []*cairnv1.CommandReply, error) {
		return nil, nil, fmt.Errorf("%w: %s", ErrInvalidSnapshot, fmt.Sprintf(format, a...))
	}
	if len(data) < len(snapshotMagic)+4 || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return fail("not an aggregate state encoding (format 2 or later): %d bytes without the %q header", len(data), snapshotMagic)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := wire.Checksum(body); got != sum {
		return fail("checksum %08x, the encoding says %08x", got, sum)
	}
	r := wire.NewReader(body[len(snapshotMagic):])
	r.Section("header")
	if v := r.Uvarint(); r.Err() == nil && v != SnapshotFormat {
		return fail("format %d; this engine reads format %d", v, SnapshotFormat)
	}
	s := &State{graph: r.String()}
	s.created, s.deleted = r.Bool(), r.Bool()
	s.typ = r.String()
	s.bindRules()
	if nm := r.Count(2, "metadata entry"); nm > 0 {
		s.metadata = make(map[string]string, nm)
		for range nm {
			k := r.String()
			s.metadata[k] = r.String()
		}
	}
	s.nNodes = r.Int(1<<31, "node count")
	s.nEdges = r.Int(1<<31, "edge count")
	r.Section("nodes")
	s.nodes = ids{Table: intern.ReadSnapshot(r)}
	s.freeNodes = r.U32s("free node")
	s.nodeSet = r.Pages("node sets")
	s.first = r.Pages("first edges")
	r.Section("edges")
	s.edges = ids{Table: intern.ReadSnapshot(r)}
	s.freeEdges = r.U32s("free edge")
	for _, a := range s.edgeArrays() {
		*a = r.Pages("edge array")
	}
	for _, t := range []struct {
		name string
		r    *refTable
	}{{"components", &s.comps}, {"node sets", &s.nsets}, {"edge sets", &s.esets}} {
		r.Section(t.name)
		t.r.t = intern.ReadSnapshot(r)
		t.r.refs = r.Pages("reference counts")
		t.r.free = r.U32s("free handle")
	}
	s.ctype = r.Pages("component types")
	r.Section("names")
	for _, n := range []*names{&s.ctypes, &s.cats, &s.etypes} {
		n.t = intern.ReadSnapshot(r)
	}
	r.Section("idempotency window")
	nr := r.Count(1, "reply")
	var replies []*cairnv1.CommandReply
	for range nr {
		b := r.Bytes()
		if r.Err() != nil {
			break
		}
		rep := &cairnv1.CommandReply{}
		if err := proto.Unmarshal(b, rep); err != nil {
			r.Failf("reply %d: %v", len(replies), err)
			break
		}
		replies = append(replies, rep)
	}
	if r.Err() == nil && r.Len() != 0 {
		r.Failf("%d bytes after the end", r.Len())
	}
	if err := r.Err(); err != nil {
		return fail("%v", err)
	}
	if msg := s.check(); msg != "" {
		return fail("graph %s: %s", s.graph, msg)
	}
	return s, replies, nil
}

// check verifies what a decoded state's methods rely on, so that none can
// index out of range, and the reference counts, so that no later release
// frees what is still held: it returns what is wrong, or "". It reads the
// arrays in order (a state of 1M nodes and 3M edges takes well under a
// second); the incidence lists are walked only by Verify, and every walk
// of a list is bounded by the edge count, so a corrupt list cannot make a
// method loop.
func (s *State) check() string {
	if err := ValidateGraphID("graph_id", s.graph); err != nil {
		return err.Error()
	}
	nc, ec := s.nodes.Cap(), s.edges.Cap()
	if s.nNodes != s.nodes.Len() || s.nEdges != s.edges.Len() {
		return fmt.Sprintf("counts %d nodes, %d edges; the tables hold %d, %d", s.nNodes, s.nEdges, s.nodes.Len(), s.edges.Len())
	}
	if s.nodeSet.Len() < nc || s.first.Len() < nc || s.nodeSet.Len() != s.first.Len() {
		return fmt.Sprintf("node arrays of %d and %d for %d node slots", s.nodeSet.Len(), s.first.Len(), nc)
	}
	for _, a := range s.edgeArrays() {
		if a.Len() != s.src.Len() || a.Len() < ec {
			return fmt.Sprintf("edge arrays of %d for %d edge slots", a.Len(), ec)
		}
	}
	if s.ctype.Len() < s.comps.t.Cap() {
		return fmt.Sprintf("%d component types for %d component slots", s.ctype.Len(), s.comps.t.Cap())
	}
	for _, b := range []struct {
		name  string
		a     *packed.Pages
		limit int // values must be below it
	}{
		{"first edges", &s.first, s.src.Len() + 1}, {"node sets", &s.nodeSet, s.nsets.t.Cap() + 1},
		{"sources", &s.src, s.nodeSet.Len()}, {"targets", &s.dst, s.nodeSet.Len()}, {"edge sets", &s.edgeSet, s.esets.t.Cap() + 1},
		{"links", &s.srcNext, s.src.Len() + 1}, {"links", &s.srcPrev, s.src.Len() + 1},
		{"links", &s.dstNext, s.src.Len() + 1}, {"links", &s.dstPrev, s.src.Len() + 1},
		{"component types", &s.ctype, max(s.ctypes.t.Cap(), 1)},
	} {
		if m := b.a.Max(); b.a.Len() > 0 && int64(m) >= int64(b.limit) {
			return fmt.Sprintf("%s: value %d out of range (below %d)", b.name, m, b.limit)
		}
	}
	if msg := checkFree(s.freeNodes, s.nodes.Table, s.nodeSet.Len(), "node"); msg != "" {
		return msg
	}
	if msg := checkFree(s.freeEdges, s.edges.Table, s.src.Len(), "edge"); msg != "" {
		return msg
	}
	for _, r := range []*refTable{&s.comps, &s.nsets, &s.esets} {
		if r.refs.Len() < r.t.Cap() {
			return fmt.Sprintf("%d reference counts for %d handles", r.refs.Len(), r.t.Cap())
		}
		if msg := checkFree(r.free, r.t, r.refs.Len(), "handle"); msg != "" {
			return msg
		}
	}
	// Components: each key is its type's name, a NUL and the value.
	for h := range s.comps.t.Cap() {
		if !s.comps.t.Has(uint32(h)) {
			continue
		}
		t := s.ctype.Get(h)
		if !s.ctypes.t.Has(t) {
			return fmt.Sprintf("component %d: type id %d is not stored", h, t)
		}
		name, key := s.ctypes.name(t), s.comps.key(uint32(h))
		if len(key) <= len(name) || key[:len(name)] != name || key[len(name)] != 0 {
			return fmt.Sprintf("component %d: key does not start with its type %q", h, name)
		}
	}
	// References held by live nodes and edges to sets, by sets to
	// components: they must be the stored counts.
	nsetRefs := make([]uint32, s.nsets.t.Cap())
	esetRefs := make([]uint32, s.esets.t.Cap())
	for u := range nc {
		if set := s.nodeSet.Get(u); set != 0 {
			if !s.nodes.Has(uint32(u)) {
				return fmt.Sprintf("free node slot %d holds set %d", u, set-1)
			}
			nsetRefs[set-1]++
		}
	}
	for e := range ec {
		if set := s.edgeSet.Get(e); set != 0 {
			if !s.edges.Has(uint32(e)) {
				return fmt.Sprintf("free edge slot %d holds set %d", e, set-1)
			}
			esetRefs[set-1]++
		}
	}
	compRefs := make([]uint64, s.comps.t.Cap())
	var buf []uint32
	for h, n := range nsetRefs {
		if msg := checkRefs("node set", &s.nsets, h, uint64(n)); msg != "" {
			return msg
		}
		if n == 0 {
			continue
		}
		buf = uvarints(buf[:0], s.nsets.key(uint32(h)))
		if len(buf) == 0 || int(buf[0]) > len(buf)-1 {
			return fmt.Sprintf("node set %d is malformed", h)
		}
		for _, c := range buf[1 : 1+buf[0]] {
			if int(c) >= len(compRefs) || !s.comps.t.Has(c) {
				return fmt.Sprintf("node set %d: component %d is not stored", h, c)
			}
			compRefs[c] += uint64(n)
		}
		for _, c := range buf[1+buf[0]:] {
			if !s.cats.t.Has(c) {
				return fmt.Sprintf("node set %d: category id %d is not stored", h, c)
			}
		}
	}
	for h, n := range esetRefs {
		if msg := checkRefs("edge set", &s.esets, h, uint64(n)); msg != "" {
			return msg
		}
		if n == 0 {
			continue
		}
		buf = uvarints(buf[:0], s.esets.key(uint32(h)))
		if len(buf) == 0 || (buf[0] > 0 && !s.etypes.t.Has(buf[0]-1)) {
			return fmt.Sprintf("edge set %d is malformed", h)
		}
		for _, c := range buf[1:] {
			if int(c) >= len(compRefs) || !s.comps.t.Has(c) {
				return fmt.Sprintf("edge set %d: component %d is not stored", h, c)
			}
			compRefs[c] += uint64(n)
		}
	}
	for h, n := range compRefs {
		if msg := checkRefs("component", &s.comps, h, n); msg != "" {
			return msg
		}
	}
	return ""
}

// checkRefs compares a stored reference count with the references held.
func checkRefs(what string, r *refTable, h int, held uint64) string {
	stored := r.t.Has(uint32(h))
	switch {
	case stored && uint64(r.refs.Get(h)) != held:
		return fmt.Sprintf("%s %d: %d references stored, %d held", what, h, r.refs.Get(h), held)
	case stored && held == 0:
		return fmt.Sprintf("%s %d is stored but unreferenced", what, h)
	case !stored && held != 0:
		return fmt.Sprintf("%s %d is referenced %d times but not stored", what, h, held)
	}
	return ""
}

// Verify walks every incidence list, after the checks Unmarshal makes: each
// live node's list holds only edges at it, linked both ways, the lists
// hold every live edge once per endpoint, and every live edge joins live
// nodes. It returns an error wrapping ErrInvalidSnapshot naming the first
// problem. It costs a random access per edge end; cairn verify runs it, an
// activation does not.
func (s *State) Verify() error {
	if msg := s.check(); msg != "" {
		return fmt.Errorf("%w: graph %s: %s", ErrInvalidSnapshot, s.graph, msg)
	}
	if msg := s.checkLists(); msg != "" {
		return fmt.Errorf("%w: graph %s: %s", ErrInvalidSnapshot, s.graph, msg)
	}
	return nil
}

func (s *State) checkLists() string {
	nc, ec := s.nodes.Cap(), s.edges.Cap()
	selfLoops := 0
	for e := range ec {
		if !s.edges.Has(uint32(e)) {
			continue
		}
		su, du := s.src.Get(e), s.dst.Get(e)
		if !s.nodes.Has(su) || !s.nodes.Has(du) {
			return fmt.Sprintf("edge %d: endpoints %d, %d are not live nodes", e, su, du)
		}
		if su == du {
			selfLoops++
		}
	}
	seen := 0
	for u := range nc {
		if !s.nodes.Has(uint32(u)) {
			continue
		}
		prev := uint32(0)
		for e, steps := s.first.Get(u), 0; e != 0; e = s.nextOf(e-1, uint32(u)) {
			if !s.edges.Has(e - 1) {
				return fmt.Sprintf("node %d: list links to edge slot %d, not a live edge", u, e-1)
			}
			if s.src.Get(int(e-1)) != uint32(u) && s.dst.Get(int(e-1)) != uint32(u) {
				return fmt.Sprintf("node %d: list holds edge %d, which is not at it", u, e-1)
			}
			if p, _ := s.links(e-1, uint32(u)); p != prev {
				return fmt.Sprintf("node %d: edge %d links back to %d, not %d", u, e-1, p, prev)
			}
			prev = e
			if steps++; steps > s.nEdges {
				return fmt.Sprintf("node %d: list longer than the %d edges", u, s.nEdges)
			}
			seen++
		}
	}
	if seen != 2*s.nEdges-selfLoops {
		return fmt.Sprintf("incidence lists hold %d entries; %d edges (%d self-loops) need %d", seen, s.nEdges, selfLoops, 2*s.nEdges-selfLoops)
	}
	return ""
}

// checkFree checks a free list: slots in range, free, each once.
func checkFree(free []uint32, t *intern.Table, slots int, what string) string {
	seen := make([]uint64, (slots+63)/64)
	for _, i := range free {
		if int(i) >= slots || t.Has(i) {
			return fmt.Sprintf("free %s %d is out of range or in use", what, i)
		}
		if seen[i/64]&(1<<(i%64)) != 0 {
			return fmt.Sprintf("free %s %d listed twice", what, i)
		}
		seen[i/64] |= 1 << (i % 64)
	}
	return ""
}
