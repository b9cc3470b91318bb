package readmodel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/adjacency"
	"github.com/cairn-graph/cairn/internal/graphgen"
	"github.com/cairn-graph/cairn/internal/offheap"
	"github.com/cairn-graph/cairn/internal/pace"
	"github.com/cairn-graph/cairn/internal/wire"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/klauspost/compress/zstd"
)

// answers runs a fixed set of queries, drawn from seed, and returns their
// answers as text: two graphs that give the same list answer alike. Page
// walks record every page and its cursor, so the cursors must match too.
func answers(g *Graph, seed uint64) []string { return queries(g, seed, true) }

// queries runs answers' queries, those that walk paths only with paths.
func queries(g *Graph, seed uint64, paths bool) []string {
	r := rand.New(rand.NewPCG(seed, 7))
	var out []string
	add := func(q string, v any, err error) { out = append(out, fmt.Sprintf("%s = %+v, %v", q, v, err)) }
	limit := 1 + r.IntN(3)
	add("AsOf/Version", [2]uint64{g.AsOf(), g.Version()}, nil)
	s, err := g.Stats()
	add("Stats", s, err)
	for _, kind := range []DegreeKind{TotalDegree, OutDegree, InDegree} {
		k := 1 + r.IntN(8)
		top, err := g.TopDegree(k, kind)
		add(fmt.Sprintf("TopDegree(%d, %d)", k, kind), top, err)
	}
	for i := range 60 {
		id := "n" + strconv.Itoa(i)
		v, err := g.Node(id)
		add("Node("+id+")", v, err)
		if err != nil {
			continue
		}
		for _, dir := range []Direction{Out, In, Both} {
			typ := append([]string{""}, edgeTypes...)[r.IntN(len(edgeTypes)+1)]
			for cursor, n := "", 0; n < 50; n++ {
				p, err := g.Neighbors(id, dir, typ, cursor, limit)
				add(fmt.Sprintf("Neighbors(%s, %d, %q, %q)", id, dir, typ, cursor), p, err)
				if cursor = p.Next; err != nil || cursor == "" {
					break
				}
			}
		}
		if r.IntN(3) == 0 {
			dir, depth := Direction(r.IntN(3)), 1+r.IntN(MaxDepth)
			k, err := g.KHop(id, dir, "", depth, TraverseLimits{})
			add(fmt.Sprintf("KHop(%s, %d, %d)", id, dir, depth), k, err)
			to := "n" + strconv.Itoa(r.IntN(60))
			weight := []string{"", "a", "b"}[r.IntN(3)]
			if paths {
				p, err := g.ShortestPath(id, to, dir, "", weight, TraverseLimits{})
				add(fmt.Sprintf("ShortestPath(%s, %s, %d, %q)", id, to, dir, weight), p, err)
			}
			for cursor, n := "", 0; n < 50; n++ {
				c, err := g.Component(id, cursor, limit)
				add(fmt.Sprintf("Component(%s, %q)", id, cursor), c, err)
				if cursor = c.Next; err != nil || cursor == "" {
					break
				}
			}
		}
	}
	n, err := g.ComponentCount()
	add("ComponentCount", n, err)
	walk := func(q string, page func(cursor string) (Page, error)) {
		for cursor, n := "", 0; n < 100; n++ {
			p, err := page(cursor)
			add(fmt.Sprintf("%s(%q)", q, cursor), p, err)
			if cursor = p.Next; err != nil || cursor == "" {
				break
			}
		}
	}
	for _, typ := range compTypes {
		walk("FindByComponentType "+typ, func(c string) (Page, error) { return g.FindByComponentType(typ, c, limit) })
		v := strconv.Itoa(r.IntN(5))
		walk("FindByComponent "+typ+"="+v, func(c string) (Page, error) { return g.FindByComponent(typ, []byte(v), c, limit) })
	}
	for _, cat := range catPool {
		walk("FindByCategory "+cat, func(c string) (Page, error) { return g.FindByCategory(cat, c, limit) })
	}
	return out
}

// sameGraphs fails unless a and b answer alike and snapshot to the same bytes.
func sameGraphs(t *testing.T, a, b *Graph, seed uint64, where string) {
	t.Helper()
	sameAnswers(t, a, b, seed, true, where)
	if sa, sb := a.AppendSnapshot(nil), b.AppendSnapshot(nil); !bytes.Equal(sa, sb) {
		t.Fatalf("%s: snapshots differ (%d and %d bytes)", where, len(sa), len(sb))
	}
}

// sameAnswers fails unless a and b answer every query alike (shortest
// paths only with paths set).
func sameAnswers(t *testing.T, a, b *Graph, seed uint64, paths bool, where string) {
	t.Helper()
	x, y := queries(a, seed, paths), queries(b, seed, paths)
	for i := range min(len(x), len(y)) {
		if x[i] != y[i] {
			t.Fatalf("%s: answers differ:\n original %s\n restored %s", where, x[i], y[i])
		}
	}
	if len(x) != len(y) {
		t.Fatalf("%s: %d answers, restored %d", where, len(x), len(y))
	}
	if a.AsOf() != b.AsOf() || a.Version() != b.Version() {
		t.Fatalf("%s: as of %d version %d, other as of %d version %d", where, a.AsOf(), a.Version(), b.AsOf(), b.Version())
	}
}

func restore(t *testing.T, g *Graph) *Graph {
	t.Helper()
	data := g.AppendSnapshot([]byte("prefix"))
	if string(data[:6]) != "prefix" {
		t.Fatal("AppendSnapshot overwrote dst")
	}
	// The paced encoding is the same bytes, with steps between its pieces.
	steps := 0
	if paced := g.Freeze().AppendSnapshotPaced([]byte("prefix"), func() { steps++ }); !bytes.Equal(paced, data) {
		t.Fatalf("AppendSnapshotPaced wrote %d bytes that differ from AppendSnapshot's %d", len(paced), len(data))
	}
	if steps < 10 {
		t.Fatalf("AppendSnapshotPaced took %d steps, want one per array at least", steps)
	}
	r, err := LoadSnapshot(data[6:], g.cfg)
	if err != nil {
		t.Fatalf("LoadSnapshot: %v", err)
	}
	return r
}

// TestSnapshotDifferential snapshots a graph at random points of a random
// event stream (among them points where a background compaction runs),
// restores it, then applies the rest of the stream to the original and to
// every restored copy: they must answer alike throughout, and snapshot to
// the same bytes, so the copies' internal state is the original's.
func TestSnapshotDifferential(t *testing.T) {
	forEachSeed(t, func(t *testing.T, seed uint64) { runSnapshotDifferential(t, seed, 300) })
}

func runSnapshotDifferential(t *testing.T, seed uint64, batches int) {
	g := newCompactingGraph(t)
	gn := &gen{r: rand.New(rand.NewPCG(seed, 9)), ref: newRef()}
	empty := restore(t, g) // before GraphCreated
	copies := []*Graph{empty}
	apply := func(seq uint64, evs []*cairnv1.Event) {
		t.Helper()
		for i, x := range append([]*Graph{g}, copies...) {
			if err := x.ApplyTx(seq, evs); err != nil {
				t.Fatalf("seq %d, graph %d: %v", seq, i, err)
			}
		}
	}
	apply(1, []*cairnv1.Event{created()})
	midCompaction := 0
	for b := range batches {
		seq := uint64(b + 2)
		evs := gn.tx()
		apply(seq, evs)
		if gn.r.IntN(10) == 0 {
			apply(seq, evs) // redelivery
		}
		if gn.r.IntN(25) == 0 {
			for _, x := range append([]*Graph{g}, copies...) {
				x.Compact()
			}
		}
		if gn.r.IntN(40) == 0 || (g.adj.Compacting() && midCompaction < 2 && gn.r.IntN(3) == 0) {
			if g.adj.Compacting() {
				midCompaction++
			}
			if gn.r.IntN(2) == 0 {
				answers(g, seed) // warm the caches first
			}
			c := restore(t, g)
			sameGraphs(t, g, c, seed+uint64(b), fmt.Sprintf("batch %d, just restored", b))
			copies = append(copies, c)
		}
		if b%30 == 29 {
			for i, c := range copies {
				sameGraphs(t, g, c, seed+uint64(b), fmt.Sprintf("batch %d, copy %d", b, i))
			}
		}
	}
	for i, c := range copies {
		sameGraphs(t, g, c, seed, fmt.Sprintf("end, copy %d", i))
	}
	// Delete the graph: a snapshot of a deleted graph restores as deleted.
	apply(uint64(batches+2), []*cairnv1.Event{{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: &cairnv1.GraphDeleted{}}}})
	sameGraphs(t, g, restore(t, g), seed, "deleted")
	if midCompaction == 0 {
		t.Errorf("no snapshot was taken during a compaction")
	}
	t.Logf("%d copies, %d taken during a compaction", len(copies), midCompaction)
}

// smallSnapshot returns the snapshot of a small random graph.
func smallSnapshot(t testing.TB, seed uint64, batches int) []byte {
	cfg := DefaultConfig()
	cfg.CompactMin, cfg.CompactDivisor = 8, 4
	g, err := New("small", cfg)
	if err != nil {
		t.Fatal(err)
	}
	gn := &gen{r: rand.New(rand.NewPCG(seed, 3)), ref: newRef()}
	if err := g.ApplyTx(1, []*cairnv1.Event{created()}); err != nil {
		t.Fatal(err)
	}
	for b := range batches {
		if err := g.ApplyTx(uint64(b+2), gn.tx()); err != nil {
			t.Fatal(err)
		}
	}
	return g.AppendSnapshot(nil)
}

// fixChecksum rewrites the header's length and checksum to fit the body, so
// that corruption reaches the body's decoder.
func fixChecksum(data []byte) []byte {
	if len(data) < headerLen {
		return data
	}
	data = bytes.Clone(data)
	body := data[headerLen:]
	binary.LittleEndian.PutUint32(data[12:], wire.Checksum(body))
	binary.LittleEndian.PutUint64(data[16:], uint64(len(body)))
	return data
}

// checkLoad loads data and fails unless it is refused with
// ErrInvalidSnapshot or, with lenient, loads into a graph that answers
// without panicking.
func checkLoad(t *testing.T, data []byte, lenient bool, what string) {
	t.Helper()
	g, err := LoadSnapshot(data, DefaultConfig())
	switch {
	case err == nil && !lenient:
		t.Fatalf("%s: loaded", what)
	case err == nil:
		queries(g, 1, endsMatch(g))
		g.Compact()
	case !errors.Is(err, ErrInvalidSnapshot):
		t.Fatalf("%s: %v does not wrap ErrInvalidSnapshot", what, err)
	}
}

// TestSnapshotCorrupt feeds LoadSnapshot every prefix and every single bit
// flip of a small snapshot, a wrong magic and an unknown version: each is
// refused with ErrInvalidSnapshot. With the checksum fixed up, truncated and
// flipped bodies reach the decoder, which refuses them or yields a graph
// that answers queries without panicking.
func TestSnapshotCorrupt(t *testing.T) {
	data := smallSnapshot(t, 1, 40)
	if _, err := LoadSnapshot(data, DefaultConfig()); err != nil {
		t.Fatalf("valid snapshot: %v", err)
	}
	t.Logf("%d bytes", len(data))
	for n := range len(data) {
		checkLoad(t, data[:n], false, fmt.Sprintf("prefix %d", n))
		if n > headerLen {
			checkLoad(t, fixChecksum(data[:n]), false, fmt.Sprintf("prefix %d with checksum", n))
		}
	}
	for bit := range 8 * len(data) {
		c := bytes.Clone(data)
		c[bit/8] ^= 1 << (bit % 8)
		checkLoad(t, c, false, fmt.Sprintf("bit %d flipped", bit))
		if bit/8 >= headerLen {
			checkLoad(t, fixChecksum(c), true, fmt.Sprintf("bit %d flipped with checksum", bit))
		}
	}
	c := bytes.Clone(data)
	copy(c, "cairnXX\x00")
	if _, err := LoadSnapshot(c, DefaultConfig()); !errors.Is(err, ErrInvalidSnapshot) || !strings.Contains(err.Error(), "magic") {
		t.Errorf("wrong magic: %v", err)
	}
	c = bytes.Clone(data)
	binary.LittleEndian.PutUint32(c[8:], SnapshotFormat+1)
	if _, err := LoadSnapshot(c, DefaultConfig()); !errors.Is(err, ErrInvalidSnapshot) ||
		!strings.Contains(err.Error(), fmt.Sprintf("version %d", SnapshotFormat+1)) {
		t.Errorf("unknown version: %v", err)
	}
	if _, err := LoadSnapshot(append(bytes.Clone(data), 0), DefaultConfig()); !errors.Is(err, ErrInvalidSnapshot) {
		t.Errorf("trailing byte: %v", err)
	}
	if _, err := LoadSnapshot(fixChecksum(append(bytes.Clone(data), 0)), DefaultConfig()); !errors.Is(err, ErrInvalidSnapshot) ||
		!strings.Contains(err.Error(), "left over") {
		t.Errorf("trailing body byte: %v", err)
	}
	if _, err := LoadSnapshot(data, Config{}); err == nil || errors.Is(err, ErrInvalidSnapshot) {
		t.Errorf("invalid config: %v", err)
	}
}

// FuzzLoadSnapshot loads arbitrary bytes, as they are and with the checksum
// fixed up: LoadSnapshot refuses them with ErrInvalidSnapshot or returns a
// graph that answers queries; it never panics.
func FuzzLoadSnapshot(f *testing.F) {
	f.Add(smallSnapshot(f, 1, 0))
	f.Add(smallSnapshot(f, 2, 10))
	f.Add(smallSnapshot(f, 3, 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, fixChecksum(data)} {
			g, err := LoadSnapshot(d, DefaultConfig())
			if err != nil {
				if !errors.Is(err, ErrInvalidSnapshot) {
					t.Fatalf("%v does not wrap ErrInvalidSnapshot", err)
				}
				continue
			}
			queries(g, 1, endsMatch(g))
			g.Compact()
		}
	})
}

// endsMatch reports whether every edge in a node's adjacency row has that
// node for its end. LoadSnapshot does not check it (the checksum guards the
// whole); a path search over rows that break it may not end.
func endsMatch(g *Graph) bool {
	ok := true
	for u := range g.nodes.Cap() {
		g.adj.ScanFrom(adjacency.Out, uint32(u), 0, func(e uint32) bool { ok = ok && g.src.Get(int(e)) == uint32(u); return ok })
		g.adj.ScanFrom(adjacency.In, uint32(u), 0, func(e uint32) bool { ok = ok && g.dst.Get(int(e)) == uint32(u); return ok })
	}
	return ok
}

// BenchmarkSnapshot snapshots the 1M-node, 3M-edge graph of BenchmarkBigGraph
// and loads it back, and for information compresses it with zstd as
// persistence does (default level and fastest). Besides wall time it
// reports the process's CPU time (all threads), steadier on a busy machine.
// Run it with
//
//	go test ./readmodel -run '^$' -bench Snapshot -benchtime 3x -readmodel.big
func BenchmarkSnapshot(b *testing.B) {
	if !*bigBench {
		b.Skip("pass -readmodel.big to run")
	}
	cfg := graphgen.Big()
	g, _ := buildBig(b, cfg)
	var data []byte
	// Freeze is what a shard blocks for; Encode what then runs aside.
	b.Run("Freeze", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			g.Freeze()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms")
	})
	// FreezeParts times each part of Freeze, to show which matter.
	b.Run("FreezeParts", func(b *testing.B) {
		parts := map[string]time.Duration{}
		timed := func(name string, f func()) {
			t := time.Now()
			f()
			parts[name] += time.Since(t)
		}
		for range b.N {
			timed("intern-tables", func() { g.nodes.Freeze(); g.edges.Freeze() })
			timed("edge-ends", func() { g.src.Freeze(); g.dst.Freeze(); g.etype.Freeze() })
			timed("list-offsets", func() { g.attrs.off.Freeze(); g.attrs.n.Freeze() })
			timed("list-bytes", func() { g.attrs.data.freeze() })
			timed("degrees", func() { g.outDeg.freeze(); g.inDeg.freeze() })
			timed("adjacency", func() { g.adj.Freeze() })
			timed("components", func() {
				c := g.store
				_, _, _, _ = slices.Clone(c.typ), slices.Clone(c.val), slices.Clone(c.refs), slices.Clone(c.free)
				cloneBitmaps(c.nodes)
				cloneBitmaps(c.typeNodes)
			})
			timed("categories", func() { cloneBitmaps(g.catNodes) })
		}
		for name, d := range parts {
			b.ReportMetric(float64(d.Microseconds())/1e3/float64(b.N), name+"-ms")
		}
	})
	b.Run("Encode", func(b *testing.B) {
		f := g.Freeze()
		b.ResetTimer()
		cpu := cpuTime()
		for range b.N {
			data = f.AppendSnapshot(data[:0])
		}
		reportTimes(b, cpu)
	})
	// EncodePaced reports the longest stretch of the encoding between two
	// steps (where a paced snapshot may sleep, see wire.Step), into the
	// same buffer each time as a snapshot round does (a lent one).
	b.Run("EncodePaced", func(b *testing.B) {
		f := g.Freeze()
		b.ResetTimer()
		cpu := cpuTime()
		var longest time.Duration
		steps := 0
		for range b.N {
			last := time.Now()
			data = f.AppendSnapshotPaced(data[:0], func() {
				now := time.Now()
				longest = max(longest, now.Sub(last))
				last, steps = now, steps+1
			})
			longest = max(longest, time.Since(last))
		}
		reportTimes(b, cpu)
		b.ReportMetric(float64(longest.Microseconds())/1e3, "longest-step-ms")
		b.ReportMetric(float64(steps)/float64(b.N), "steps/op")
	})
	// Beside encodes the graph's snapshot (b.N times) while an open loop
	// of Node queries runs beside it, one every 500 µs, and reports the
	// queries' p99 and worst latency from their scheduled start: "none"
	// sleeps 50 ms instead (the floor), "fresh"
	// encodes into a fresh heap buffer in one piece (before pacing),
	// "paced" through a pace.Gate that steps between pieces, and "lent"
	// paced into a buffer an offheap.Pool lends, as snapshot rounds do.
	// -readmodel.beside N alternates the three N times.
	for rep := range *besideRounds {
		for _, mode := range []string{"none", "fresh", "paced", "lent"} {
			besideRun(b, g, cfg, mode, rep)
		}
	}
	b.Run("Append", func(b *testing.B) {
		cpu := cpuTime()
		for range b.N {
			data = g.AppendSnapshot(data[:0])
		}
		reportTimes(b, cpu)
		b.ReportMetric(float64(len(data))/1e6, "MB")
		b.ReportMetric(float64(len(data))/float64(cfg.Nodes), "bytes/node")
	})
	b.Run("Load", func(b *testing.B) {
		var r *Graph
		base := heapInUse()
		b.ResetTimer()
		cpu := cpuTime()
		for range b.N {
			r = nil
			var err error
			if r, err = LoadSnapshot(data, g.cfg); err != nil {
				b.Fatal(err)
			}
		}
		reportTimes(b, cpu)
		b.StopTimer()
		b.ReportMetric(float64(heapInUse()-base)/1e6, "heap-MB")
		start := time.Now()
		if _, err := r.Node(graphgen.NodeID(12345)); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Neighbors(graphgen.NodeID(1), Both, "", "", 100); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds()), "first-queries-µs")
		if !bytes.Equal(r.AppendSnapshot(nil), data) {
			b.Fatal("the restored graph snapshots differently")
		}
	})
	// FreezeDelta freezes the graph after 200,000 more events (about
	// 120,000 new edges): its adjacency delta is then near the size that
	// starts a compaction, the most a shard's graph holds.
	churned := false
	b.Run("FreezeDelta", func(b *testing.B) {
		if !churned { // once, though this runs for every -count and b.N
			churned = true
			ch := cfg.Churn(7)
			seq := g.AsOf()
			for range 200 {
				seq++
				if err := g.ApplyTx(seq, ch.Next(1000)); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ResetTimer()
		b.ReportAllocs()
		for range b.N {
			g.Freeze()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms")
		b.ReportMetric(float64(g.adj.Delta()), "delta")
	})
	for _, level := range []zstd.EncoderLevel{zstd.SpeedDefault, zstd.SpeedFastest} {
		b.Run("Zstd"+level.String(), func(b *testing.B) {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level))
			if err != nil {
				b.Fatal(err)
			}
			dec, err := zstd.NewReader(nil)
			if err != nil {
				b.Fatal(err)
			}
			defer dec.Close()
			var comp, plain []byte
			var tc, td time.Duration
			for range b.N {
				start := time.Now()
				comp = enc.EncodeAll(data, comp[:0])
				tc += time.Since(start)
				start = time.Now()
				if plain, err = dec.DecodeAll(comp, plain[:0]); err != nil {
					b.Fatal(err)
				}
				td += time.Since(start)
			}
			b.ReportMetric(float64(len(comp))/1e6, "zstd-MB")
			b.ReportMetric(float64(len(data))/float64(len(comp)), "ratio")
			b.ReportMetric(float64(tc.Milliseconds())/float64(b.N), "compress-ms")
			b.ReportMetric(float64(td.Milliseconds())/float64(b.N), "decompress-ms")
		})
	}
}

// cpuTime returns the CPU time the process has used, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportTimes reports wall and CPU milliseconds per operation.
func reportTimes(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms")
}

// TestSnapshotCatalogue: a snapshot keeps the graph's type, metadata and
// times (format 3) and the seq of its first transaction (format 4); formats
// 2 to 4, whose intern tables have no hash tags (format 5), are refused.
func TestSnapshotCatalogue(t *testing.T) {
	g, err := New("cat", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	created := &cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{
		GraphId: "cat", GraphType: "workflow", Metadata: map[string]string{"owner": "ops", "b": ""}}}}
	if err := g.ApplyTx(7, []*cairnv1.Event{created}); err != nil {
		t.Fatal(err)
	}
	g.NoteTime(100)
	if err := g.ApplyTx(9, []*cairnv1.Event{{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: "a"}}}}); err != nil {
		t.Fatal(err)
	}
	g.NoteTime(200)
	snap := g.AppendSnapshot(nil)
	r, err := LoadSnapshot(snap, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c, ch := r.Times()
	if r.Type() != "workflow" || r.Metadata()["owner"] != "ops" || len(r.Metadata()) != 2 || c != 100 || ch != 200 || !r.Created() || r.Deleted() {
		t.Errorf("restored: type %q metadata %v times %d %d created %v deleted %v", r.Type(), r.Metadata(), c, ch, r.Created(), r.Deleted())
	}
	if r.FirstSeq() != 7 {
		t.Errorf("restored: first seq %d, want 7", r.FirstSeq())
	}
	// A snapshot of the restored model keeps it too.
	if r2, err := LoadSnapshot(r.AppendSnapshot(nil), DefaultConfig()); err != nil || r2.FirstSeq() != 7 {
		t.Errorf("restored twice: first seq %d (%v), want 7", r2.FirstSeq(), err)
	}

	// A first seq past the as-of is refused.
	first := wire.AppendUvarint(nil, 7)
	if !bytes.HasSuffix(snap, first) {
		t.Fatal("the snapshot does not end with the first seq")
	}
	v3 := len(snap) - len(first)
	bad := append(slices.Clone(snap[:v3]), wire.AppendUvarint(nil, 10)...)
	if _, err := LoadSnapshot(relabel(bad, SnapshotFormat), DefaultConfig()); !errors.Is(err, ErrInvalidSnapshot) || !strings.Contains(err.Error(), "first seq 10 after as-of 9") {
		t.Errorf("first seq past the as-of: %v", err)
	}

	// Formats 2 to 4 and 6 are refused by their header: the engine passes
	// such a snapshot over and folds the graph from the stream.
	for _, v := range []uint32{2, 3, 4, SnapshotFormat + 1} {
		if _, err := LoadSnapshot(relabel(snap, v), DefaultConfig()); !errors.Is(err, ErrInvalidSnapshot) || !strings.Contains(err.Error(), fmt.Sprintf("unknown format version %d", v)) {
			t.Errorf("format %d: %v", v, err)
		}
	}
	for v := range uint32(7) {
		if want := v == SnapshotFormat; ReadsFormat(v) != want {
			t.Errorf("ReadsFormat(%d) = %v, want %v", v, !want, want)
		}
	}
}

// relabel returns a copy of snapshot bytes b (header included) with a
// header for format v that fits its body.
func relabel(b []byte, v uint32) []byte {
	b = slices.Clone(b)
	body := b[headerLen:]
	binary.LittleEndian.PutUint32(b[8:], v)
	binary.LittleEndian.PutUint32(b[12:], wire.Checksum(body))
	binary.LittleEndian.PutUint64(b[16:], uint64(len(body)))
	return b
}

var besideRounds = flag.Int("readmodel.beside", 1, "how many times BenchmarkSnapshot/Beside alternates its three encodings")

// besideRun is one BenchmarkSnapshot/Beside run (see there).
func besideRun(b *testing.B, g *Graph, cfg graphgen.Config, mode string, rep int) {
	b.Run(fmt.Sprintf("Beside/%s/%d", mode, rep), func(b *testing.B) {
		f := g.Freeze()
		size := 0
		gate, err := pace.New(pace.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		pool := offheap.New(1)
		defer func() { _, held := pool.Stats(); b.ReportMetric(float64(held)/1e6, "lent-MB") }()
		ctx := context.Background()
		var lat []time.Duration
		done := make(chan struct{})
		queried := make(chan struct{})
		go func() {
			defer close(queried)
			const every = 500 * time.Microsecond
			next := time.Now()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				next = next.Add(every)
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				if _, err := g.Node(graphgen.NodeID(i * 7919 % cfg.Nodes)); err != nil {
					panic(err)
				}
				lat = append(lat, time.Since(next))
			}
		}()
		b.ResetTimer()
		for range b.N {
			switch mode {
			case "none":
				time.Sleep(50 * time.Millisecond)
			case "fresh":
				size = len(f.AppendSnapshot(nil))
			default:
				w, _ := gate.Begin(ctx)
				var buf []byte
				if mode == "lent" {
					buf = pool.Get(f.SizeHint())
				}
				size = len(f.AppendSnapshotPaced(buf, func() { _ = w.Step(ctx) }))
				w.End()
				pool.Put(buf)
			}
		}
		b.StopTimer()
		close(done)
		<-queried
		b.ReportMetric(float64(size)/1e6, "MB")
		slices.Sort(lat)
		if len(lat) > 0 {
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "query-p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1e3, "query-max-ms")
		}
	})
}
