package readmodel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/bits-and-blooms/bloom/v3"
	"github.com/cairn-graph/cairn/internal/adjacency"
	"github.com/cairn-graph/cairn/internal/intern"
	"github.com/cairn-graph/cairn/internal/packed"
	"github.com/cairn-graph/cairn/internal/wire"
)

// SnapshotFormat is the version of the binary snapshot format that
// AppendSnapshot writes and LoadSnapshot reads. Version 2 added the
// intern tables' migration state (old hash slots and progress); version 3
// the catalogue section at the end (graph type, metadata, creation and
// change times); version 4 the stream sequence of the first transaction
// the read model folded (FirstSeq) at the end of that section; version 5
// the intern tables' hash tags (a byte of each slot's hash, package
// intern). LoadSnapshot reads version 5 only: the tags of an older
// snapshot could only be rebuilt by hashing every id, which a restart
// must not pay; such a snapshot is passed over and the graph folded from
// the stream once (docs/migrations.md).
const SnapshotFormat = 5

// minSnapshotFormat is the oldest format LoadSnapshot reads.
const minSnapshotFormat = 5

// ReadsFormat reports whether LoadSnapshot reads snapshots of format v.
func ReadsFormat(v uint32) bool { return v >= minSnapshotFormat && v <= SnapshotFormat }

// snapshotMagic opens every snapshot.
const snapshotMagic = "cairnrm\x00"

// headerLen is the fixed header: magic, format (uint32), CRC-32C of the
// body (uint32), body length (uint64), all little-endian.
const headerLen = len(snapshotMagic) + 4 + 4 + 8

// AppendSnapshot appends g's binary snapshot to dst: everything needed to
// rebuild g exactly (same answers, same future behaviour), AsOf and Version
// included. It is g.Freeze().AppendSnapshot(dst): it does not change what
// g holds.
func (g *Graph) AppendSnapshot(dst []byte) []byte { return g.Freeze().AppendSnapshot(dst) }

// Frozen is an immutable capture of a Graph, for writing its snapshot on
// another goroutine while the graph goes on changing: Freeze is the only
// part of a snapshot that its owner waits for. It is safe for concurrent
// use.
type Frozen struct {
	id               string
	created, deleted bool
	typ              string
	metadata         map[string]string
	createdAt        int64
	changeAt         int64
	firstSeq         uint64
	asOf, version    uint64
	nEdges           int

	nodes       *intern.Frozen
	freeNodes   []uint32
	listOff     packed.PagesView
	listN       packed.PagesView
	listData    pagedBytes
	listGarbage int
	outDeg      degrees
	inDeg       degrees

	edges     *intern.Frozen
	freeEdges []uint32
	src, dst  packed.PagesView
	etype     packed.PagesView
	types     []string
	adj       *adjacency.Frozen

	compTyp    []uint32
	compVal    []string
	compRefs   []uint32
	compFree   []uint32
	compLive   int
	compNodes  []*roaring.Bitmap
	compTypes  []string
	typeNodes  []*roaring.Bitmap
	bloomCap   uint
	bloomAdded uint

	categories []string
	catNodes   []*roaring.Bitmap
}

// Freeze captures g for AppendSnapshot. It shares what only grows by
// appending or is copied on write (the intern tables, the edge ends and
// list offsets as paged arrays, the adjacency CSR arrays and delta lists,
// the index bitmaps in roaring's copy-on-write mode, the name lists) and
// copies the rest, which is small or cheap to copy: the list bytes, the
// one-byte degrees, the free lists, the component store's slices and the
// adjacency's dead bitset and delta maps. A compaction running in the
// background is captured as its input (the CSR arrays and the frozen
// delta), without waiting for it. The caches are not captured.
func (g *Graph) Freeze() *Frozen {
	c := g.store
	f := &Frozen{
		id: g.id, created: g.created, deleted: g.deleted, typ: g.typ, metadata: g.metadata, createdAt: g.createdAt, changeAt: g.changeAt, firstSeq: g.firstSeq, asOf: g.asOf, version: g.version, nEdges: g.nEdges,

		nodes:     g.nodes.Freeze(),
		freeNodes: slices.Clone(g.freeNodes),
		listOff:   g.attrs.off.Freeze(), listN: g.attrs.n.Freeze(),
		listData: g.attrs.data.freeze(), listGarbage: g.attrs.garbage,
		outDeg: g.outDeg.freeze(), inDeg: g.inDeg.freeze(),

		edges:     g.edges.Freeze(),
		freeEdges: slices.Clone(g.freeEdges),
		src:       g.src.Freeze(), dst: g.dst.Freeze(), etype: g.etype.Freeze(),
		types: g.types.frozen(),
		adj:   g.adj.Freeze(),

		compTyp: slices.Clone(c.typ), compVal: slices.Clone(c.val), compRefs: slices.Clone(c.refs), compFree: slices.Clone(c.free),
		compLive: c.live, compNodes: cloneBitmaps(c.nodes), compTypes: c.types.frozen(), typeNodes: cloneBitmaps(c.typeNodes),
		bloomCap: c.bloomCap, bloomAdded: c.bloomAdded,

		categories: g.categories.frozen(),
		catNodes:   cloneBitmaps(g.catNodes),
	}
	return f
}

// SizeHint returns a size of buffer that AppendSnapshot fills without
// growing it (about the snapshot's size, and a little more).
func (f *Frozen) SizeHint() int { return f.estimate() }

// estimate returns about the snapshot's size, to size the buffer once.
func (f *Frozen) estimate() int {
	n := headerLen + 64 + f.listData.len() + f.outDeg.low.len() + f.inDeg.low.len()
	for _, v := range []*packed.PagesView{&f.listOff, &f.listN, &f.src, &f.dst, &f.etype} {
		n += v.Len() * int(v.Width()) / 8
	}
	n += f.nodes.Bytes() + f.edges.Bytes() + f.adj.Bytes()
	for _, bms := range [][]*roaring.Bitmap{f.compNodes, f.typeNodes, f.catNodes} {
		for _, bm := range bms {
			if bm != nil {
				n += int(bm.GetSerializedSizeInBytes()) + 8
			}
		}
	}
	// The varints, names and component values it leaves out come to a
	// few KB in 10 MB: without room for them the last append would copy
	// the whole encoding into a buffer 1.25 times larger.
	return n + n/64 + 64<<10
}

// ID returns the graph id.
func (f *Frozen) ID() string { return f.id }

// AsOf returns the stream sequence of the last transaction captured.
func (f *Frozen) AsOf() uint64 { return f.asOf }

// AppendSnapshot appends the snapshot of the graph as it was when Freeze
// captured it: what the graph's AppendSnapshot would have appended then.
//
// The body is the graph's storage as it lies in memory (packed arrays,
// arenas, delta rows, free lists, roaring bitmaps in their portable
// format), so that LoadSnapshot copies rather than rebuilds.
func (f *Frozen) AppendSnapshot(dst []byte) []byte { return f.AppendSnapshotPaced(dst, nil) }

// AppendSnapshotPaced is AppendSnapshot calling step (unless nil) between
// bounded pieces of the work, a MiB or one array (the largest, the 1M-node
// graph's arrays, take a few milliseconds each), so that the encoding can
// be paced (see wire.Step): a snapshot is background work.
func (f *Frozen) AppendSnapshotPaced(dst []byte, step wire.Step) []byte {
	dst = slices.Grow(dst, f.estimate())
	wire.PrefaultPaced(dst[len(dst):cap(dst)], step)
	start := len(dst)
	dst = append(dst, make([]byte, headerLen)...)

	dst = wire.AppendString(dst, f.id)
	dst = wire.AppendBool(dst, f.created)
	dst = wire.AppendBool(dst, f.deleted)
	dst = wire.AppendUvarint(dst, f.asOf)
	dst = wire.AppendUvarint(dst, f.version)
	dst = wire.AppendUvarint(dst, uint64(f.nEdges))

	dst = f.nodes.AppendSnapshotPaced(dst, step)
	dst = wire.AppendU32s(dst, f.freeNodes)
	step.Do()
	dst = wire.AppendPackedView(dst, &f.listOff)
	step.Do()
	dst = wire.AppendPackedView(dst, &f.listN)
	step.Do()
	dst = wire.AppendUvarint(dst, uint64(f.listData.len()))
	dst = f.listData.appendTo(dst, step)
	dst = wire.AppendUvarint(dst, uint64(f.listGarbage))
	dst = f.outDeg.appendSnapshot(dst, step)
	dst = f.inDeg.appendSnapshot(dst, step)

	dst = f.edges.AppendSnapshotPaced(dst, step)
	dst = wire.AppendU32s(dst, f.freeEdges)
	step.Do()
	dst = wire.AppendPackedView(dst, &f.src)
	step.Do()
	dst = wire.AppendPackedView(dst, &f.dst)
	step.Do()
	dst = wire.AppendPackedView(dst, &f.etype)
	step.Do()
	dst = appendNames(dst, f.types)
	dst = f.adj.AppendSnapshotPaced(dst, step)

	dst = wire.AppendU32s(dst, f.compTyp)
	step.Do()
	for _, v := range f.compVal {
		dst = wire.AppendString(dst, v)
	}
	step.Do()
	dst = wire.AppendU32s(dst, f.compRefs)
	dst = wire.AppendU32s(dst, f.compFree)
	step.Do()
	dst = wire.AppendUvarint(dst, uint64(f.compLive))
	dst = appendBitmaps(dst, f.compNodes, step)
	dst = appendNames(dst, f.compTypes)
	dst = appendBitmaps(dst, f.typeNodes, step)
	dst = wire.AppendUvarint(dst, uint64(f.bloomCap))
	dst = wire.AppendUvarint(dst, uint64(f.bloomAdded))

	dst = appendNames(dst, f.categories)
	dst = appendBitmaps(dst, f.catNodes, step)

	dst = wire.AppendString(dst, f.typ)
	keys := slices.Sorted(maps.Keys(f.metadata))
	dst = wire.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = wire.AppendString(dst, k)
		dst = wire.AppendString(dst, f.metadata[k])
	}
	dst = wire.AppendUvarint(dst, uint64(f.createdAt))
	dst = wire.AppendUvarint(dst, uint64(f.changeAt))
	dst = wire.AppendUvarint(dst, f.firstSeq)

	h := dst[start : start+headerLen]
	body := dst[start+headerLen:]
	copy(h, snapshotMagic)
	binary.LittleEndian.PutUint32(h[8:], SnapshotFormat)
	binary.LittleEndian.PutUint32(h[12:], wire.ChecksumPaced(body, step))
	binary.LittleEndian.PutUint64(h[16:], uint64(len(body)))
	return dst
}

// LoadSnapshot rebuilds a Graph from AppendSnapshot's output. Corrupt or
// truncated input, or an unknown format version, returns an error wrapping
// ErrInvalidSnapshot; it never panics.
//
// The header's checksum catches corruption before anything is decoded;
// the body is then checked as it is copied in: every length against the
// bytes left, every index, offset and handle against what it points into.
// The maps (component keys, names) and the degree histogram are rebuilt, the
// bloom filter too (at its old size, so it is rebuilt again at the same
// points), and a compaction that ran when the snapshot was taken starts
// again. data is not retained. The restored graph behaves as the original
// exactly when cfg is the original's Config.
func LoadSnapshot(data []byte, cfg Config) (*Graph, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("readmodel config: %w", err)
	}
	body, err := checkHeader(data)
	if err != nil {
		return nil, err
	}
	g, err := decodeBody(body, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSnapshot, err)
	}
	return g, nil
}

func checkHeader(data []byte) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: header: "+format, append([]any{ErrInvalidSnapshot}, args...)...)
	}
	if len(data) < headerLen {
		return nil, bad("%d bytes, want at least %d", len(data), headerLen)
	}
	if string(data[:8]) != snapshotMagic {
		return nil, bad("bad magic %q", data[:8])
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v < minSnapshotFormat || v > SnapshotFormat {
		return nil, bad("unknown format version %d (this build reads %d to %d)", v, minSnapshotFormat, SnapshotFormat)
	}
	body := data[headerLen:]
	if n := binary.LittleEndian.Uint64(data[16:]); n != uint64(len(body)) {
		return nil, bad("body length %d, %d bytes follow", n, len(body))
	}
	if want, got := binary.LittleEndian.Uint32(data[12:]), wire.Checksum(body); want != got {
		return nil, bad("checksum %08x, body has %08x", want, got)
	}
	return body, nil
}

// decodeBody reads the body that AppendSnapshot wrote after the header.
func decodeBody(body []byte, cfg Config) (*Graph, error) {
	r := wire.NewReader(body)
	g := &Graph{cfg: cfg}
	r.Section("graph")
	g.id = r.String()
	g.created, g.deleted = r.Bool(), r.Bool()
	g.asOf, g.version = r.Uvarint(), r.Uvarint()
	nEdges := r.Uvarint()

	r.Section("node table")
	if g.nodes = intern.ReadSnapshot(r); g.nodes == nil {
		return nil, r.Err()
	}
	nodes := g.nodes.Cap()
	r.Section("free nodes")
	g.freeNodes = r.U32s("free nodes")
	for _, u := range g.freeNodes {
		if int(u) >= nodes || g.nodes.Has(u) {
			r.Failf("free node %d is live or past %d indices", u, nodes)
			break
		}
	}
	if r.Err() == nil && g.nodes.Len()+len(g.freeNodes) != nodes {
		r.Failf("%d live and %d free nodes, %d indices", g.nodes.Len(), len(g.freeNodes), nodes)
	}
	r.Section("node lists")
	g.attrs.off = r.PackedPages("list offsets")
	g.attrs.n = r.PackedPages("list lengths")
	g.attrs.data = pagedOf(r.Bytes())
	g.attrs.garbage = r.Int(g.attrs.data.len(), "garbage")
	if r.Err() == nil && (g.attrs.off.Len() != g.attrs.n.Len() || g.attrs.off.Len() > nodes) {
		r.Failf("%d offsets and %d lengths for %d nodes", g.attrs.off.Len(), g.attrs.n.Len(), nodes)
	}
	r.Section("out-degrees")
	g.outDeg = readDegrees(r, nodes)
	r.Section("in-degrees")
	g.inDeg = readDegrees(r, nodes)
	if err := r.Err(); err != nil {
		return nil, err
	}

	r.Section("edge table")
	if g.edges = intern.ReadSnapshot(r); g.edges == nil {
		return nil, r.Err()
	}
	edges := g.edges.Cap()
	if nEdges != uint64(g.edges.Len()) {
		r.Failf("%d edges, edge table holds %d", nEdges, g.edges.Len())
	}
	g.nEdges = int(nEdges)
	r.Section("free edges")
	g.freeEdges = r.U32s("free edges")
	for _, e := range g.freeEdges {
		if int(e) >= edges || g.edges.Has(e) {
			r.Failf("free edge %d is live or past %d indices", e, edges)
			break
		}
	}
	r.Section("edge ends")
	g.src, g.dst, g.etype = r.PackedPages("sources"), r.PackedPages("targets"), r.PackedPages("types")
	r.Section("edge types")
	g.types = readNames(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	r.Section("edge ends")
	if g.src.Len() != edges || g.dst.Len() != edges || g.etype.Len() != edges {
		r.Failf("%d, %d and %d ends and types for %d edges", g.src.Len(), g.dst.Len(), g.etype.Len(), edges)
	} else if edges > 0 && (int(g.src.Max()) >= nodes || int(g.dst.Max()) >= nodes || int(g.etype.Max()) >= g.types.len()) {
		r.Failf("an end past %d nodes or a type past %d types", nodes, g.types.len())
	}
	r.Section("adjacency")
	if g.adj = adjacency.ReadSnapshot(r, nodes, edges); g.adj == nil {
		return nil, r.Err()
	}
	// From here on a failure must wait for the compaction that
	// ReadSnapshot may have started.
	g.store = readComponents(r, cfg.BloomFalsePositive, nodes)
	r.Section("categories")
	g.categories = readNames(r)
	g.catNodes = readBitmaps(r, nodes, false)
	if r.Err() == nil && len(g.catNodes) != g.categories.len() {
		r.Failf("%d bitmaps for %d categories", len(g.catNodes), g.categories.len())
	}
	r.Section("catalogue")
	g.typ = r.String()
	n := r.Int(r.Len(), "metadata entries")
	if n > 0 {
		g.metadata = make(map[string]string, n)
	}
	for range n {
		if r.Err() != nil {
			break
		}
		k := r.String()
		g.metadata[k] = r.String()
	}
	g.createdAt, g.changeAt = int64(r.Uvarint()), int64(r.Uvarint())
	// 0 (unknown) when the model was itself restored from a format-3
	// snapshot; never past the last transaction folded.
	g.firstSeq = r.Uvarint()
	if r.Err() == nil && g.firstSeq > g.asOf {
		r.Failf("first seq %d after as-of %d", g.firstSeq, g.asOf)
	}
	if r.Err() == nil && r.Len() != 0 {
		r.Section("end")
		r.Failf("%d bytes left over", r.Len())
	}
	if r.Err() == nil {
		r.Section("node lists")
		g.checkLists(r)
	}
	if err := r.Err(); err != nil {
		g.adj.Finish()
		return nil, err
	}
	g.degHist = map[uint32]int{}
	for u := range nodes {
		if g.nodes.Has(uint32(u)) {
			g.degHist[g.outDeg.get(uint32(u))+g.inDeg.get(uint32(u))]++
		}
	}
	return g, nil
}

// checkLists checks every node's list: a component count within it, live
// component handles and known category ids, and none on a free node.
func (g *Graph) checkLists(r *wire.Reader) {
	l := &g.attrs
	c := g.store
	used := make([]uint64, (l.data.len()+63)/64) // bytes some list holds
	total := 0
	for i := range l.off.Len() {
		p, n := int(l.off.Get(i)), int(l.n.Get(i))
		if p > l.data.len() {
			r.Failf("node %d: list at %d past the data's end %d", i, p, l.data.len())
			return
		}
		if n > 0 && !g.nodes.Has(uint32(i)) {
			r.Failf("free node %d has a list", i)
			return
		}
		nComps := -1
		for j := range n {
			v, k := l.data.uvarint(p)
			if k <= 0 {
				r.Failf("node %d: bad handle at %d", i, p)
				return
			}
			for q := p; q < p+k; q++ {
				if used[q/64]&(1<<(q%64)) != 0 {
					r.Failf("node %d: list overlaps another at %d", i, q)
					return
				}
				used[q/64] |= 1 << (q % 64)
			}
			p += k
			total += k
			switch {
			case j == 0:
				if int(v) >= n {
					r.Failf("node %d: %d components in a list of %d", i, v, n)
					return
				}
				nComps = int(v)
			case j <= nComps:
				if v >= uint64(len(c.refs)) || c.refs[v] == 0 {
					r.Failf("node %d: component handle %d is free or unknown", i, v)
					return
				}
			default:
				if v >= uint64(len(g.catNodes)) {
					r.Failf("node %d: category %d of %d", i, v, len(g.catNodes))
					return
				}
			}
		}
	}
	if total+l.garbage != l.data.len() {
		r.Failf("%d bytes of lists and %d of garbage in %d", total, l.garbage, l.data.len())
	}
}

// readComponents reads the component store that AppendSnapshot wrote, and
// rebuilds its key map and bloom filter.
func readComponents(r *wire.Reader, fp float64, nodes int) *components {
	c := &components{fp: fp}
	r.Section("components")
	c.typ = r.U32s("component types")
	c.val = make([]string, len(c.typ))
	for h := range c.val {
		c.val[h] = r.String()
	}
	c.refs = r.U32s("reference counts")
	c.free = r.U32s("free handles")
	c.live = r.Int(len(c.typ), "live components")
	c.nodes = readBitmaps(r, nodes, true)
	c.types = readNames(r)
	c.typeNodes = readBitmaps(r, nodes, false)
	c.bloomCap = uint(r.Int(max(1024, 2*len(c.typ)), "bloom size"))
	c.bloomAdded = uint(r.Int(1<<40, "bloom keys"))
	if r.Err() != nil {
		return nil
	}
	n := len(c.typ)
	if len(c.refs) != n || len(c.nodes) != n || len(c.typeNodes) != c.types.len() {
		r.Failf("%d types, %d counts, %d bitmaps for %d handles; %d bitmaps for %d types",
			n, len(c.refs), len(c.nodes), n, len(c.typeNodes), c.types.len())
		return nil
	}
	c.byKey = make(map[string]uint32, c.live)
	for h := range n {
		live := c.refs[h] > 0
		if live != (c.nodes[h] != nil) || !live && c.val[h] != "" {
			r.Failf("handle %d: %d references but bitmap %t, value %q", h, c.refs[h], c.nodes[h] != nil, c.val[h])
			return nil
		}
		if !live {
			continue
		}
		if int(c.typ[h]) >= c.types.len() {
			r.Failf("handle %d: type %d of %d", h, c.typ[h], c.types.len())
			return nil
		}
		key := compKey(c.types.name(c.typ[h]), []byte(c.val[h]))
		if _, dup := c.byKey[key]; dup {
			r.Failf("handle %d: component %q twice", h, key)
			return nil
		}
		c.byKey[key] = uint32(h)
	}
	if len(c.byKey) != c.live || len(c.free)+c.live != n {
		r.Failf("%d live and %d free handles of %d, header says %d live", len(c.byKey), len(c.free), n, c.live)
		return nil
	}
	for _, h := range c.free {
		if int(h) >= n || c.refs[h] != 0 {
			r.Failf("free handle %d is live or unknown", h)
			return nil
		}
	}
	if c.bloomCap < 1024 {
		r.Failf("bloom size %d below 1024", c.bloomCap)
		return nil
	}
	c.bloom = bloom.NewWithEstimates(c.bloomCap, fp)
	for k := range c.byKey {
		c.bloom.AddString(k)
	}
	return c
}

// appendSnapshot appends the counts of one byte each and the spilled ones
// as sorted (node, count) pairs.
func (d *degrees) appendSnapshot(dst []byte, step wire.Step) []byte {
	dst = wire.AppendUvarint(dst, uint64(d.low.len()))
	dst = d.low.appendTo(dst, step)
	dst = wire.AppendUvarint(dst, uint64(len(d.high)))
	for _, u := range slices.Sorted(maps.Keys(d.high)) {
		dst = wire.AppendUvarint(dst, uint64(u))
		dst = wire.AppendUvarint(dst, uint64(d.high[u]))
	}
	return dst
}

func readDegrees(r *wire.Reader, nodes int) degrees {
	d := degrees{low: pagedOf(r.Bytes())}
	if r.Err() == nil && d.low.len() != nodes {
		r.Failf("%d counts for %d nodes", d.low.len(), nodes)
	}
	n := r.Count(2, "spilled counts")
	if n > 0 {
		d.high = make(map[uint32]uint32, n)
	}
	for range n {
		u, v := r.Int(nodes-1, "node"), r.Uvarint()
		if r.Err() != nil {
			break
		}
		if _, dup := d.high[uint32(u)]; dup || v < degreeSpill || v > 1<<32-1 || d.low.at(u) != degreeSpill {
			r.Failf("node %d: spilled count %d repeated, too small or not marked", u, v)
			break
		}
		d.high[uint32(u)] = uint32(v)
	}
	if r.Err() == nil {
		for u := range d.low.len() {
			if _, ok := d.high[uint32(u)]; d.low.at(u) == degreeSpill && !ok {
				r.Failf("node %d: spilled count missing", u)
				break
			}
		}
	}
	return d
}

// frozen returns the list of names as it is now; interning appends past
// its length and never writes within it.
func (n *names) frozen() []string { return n.list[:len(n.list):len(n.list)] }

func appendNames(dst []byte, list []string) []byte {
	dst = wire.AppendUvarint(dst, uint64(len(list)))
	for _, s := range list {
		dst = wire.AppendString(dst, s)
	}
	return dst
}

func readNames(r *wire.Reader) names {
	var n names
	for range r.Count(1, "names") {
		s := r.String()
		if r.Err() != nil {
			break
		}
		if _, added := n.intern(s); !added {
			r.Failf("name %q twice", s)
		}
	}
	return n
}

// appendBitmaps appends a count, then per bitmap a presence byte and its
// portable serialization.
func appendBitmaps(dst []byte, bms []*roaring.Bitmap, step wire.Step) []byte {
	dst = wire.AppendUvarint(dst, uint64(len(bms)))
	done := 0
	for _, bm := range bms {
		dst = wire.AppendBool(dst, bm != nil)
		if bm == nil {
			continue
		}
		n := bm.GetSerializedSizeInBytes()
		dst = wire.AppendUvarint(dst, n)
		w := appender{dst}
		_, _ = bm.WriteTo(&w) // fails only when the writer does, and it cannot
		dst = w.b
		if done += int(n); done >= 1<<20 {
			step.Do()
			done = 0
		}
	}
	return dst
}

type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) { a.b = append(a.b, p...); return len(p), nil }

// readBitmaps reads what appendBitmaps wrote; every value must be below
// limit, and only with sparse may a bitmap be missing.
func readBitmaps(r *wire.Reader, limit int, sparse bool) []*roaring.Bitmap {
	n := r.Count(1, "bitmaps")
	if r.Err() != nil {
		return nil
	}
	bms := make([]*roaring.Bitmap, n)
	for i := range bms {
		if !r.Bool() {
			if !sparse {
				r.Failf("bitmap %d missing", i)
				return nil
			}
			continue
		}
		b := r.Bytes()
		if r.Err() != nil {
			return nil
		}
		bm, err := decodeBitmap(b)
		if err == nil && !bm.IsEmpty() && int64(bm.Maximum()) >= int64(limit) {
			err = fmt.Errorf("value %d past %d", bm.Maximum(), limit)
		}
		if err != nil {
			r.Failf("bitmap %d: %v", i, err)
			return nil
		}
		bms[i] = bm
	}
	return bms
}

// decodeBitmap decodes and validates one bitmap; a panic of the roaring
// decoder on malformed input becomes an error.
func decodeBitmap(b []byte) (bm *roaring.Bitmap, err error) {
	defer func() {
		if p := recover(); p != nil {
			bm, err = nil, fmt.Errorf("roaring decoder: %v", p)
		}
	}()
	bm = newBitmap()
	n, err := bm.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if n != int64(len(b)) {
		return nil, fmt.Errorf("%d of %d bytes read", n, len(b))
	}
	if err := bm.Validate(); err != nil {
		return nil, err
	}
	bm.SetCopyOnWrite(true)
	return bm, nil
}
