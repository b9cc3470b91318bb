package persistence_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// archiveEnv is an embedded server with the event store and the object
// store bucket.
type archiveEnv struct {
	js  jetstream.JetStream
	obj jetstream.ObjectStore
	st  *persistence.Store
}

// newArchiveEnv opens a store that archives segTx transactions per object.
func newArchiveEnv(t *testing.T, ctx context.Context, segTx int) *archiveEnv {
	t.Helper()
	srv := natstest.Start(t)
	js := srv.JetStream()
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: persistence.DefaultObjectBucket, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("object store: %v", err)
	}
	st, err := persistence.OpenStore(ctx, js, persistence.DefaultStoreConfig(), persistence.WithObjects(obj), persistence.WithArchiveSegments(segTx, 0))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return &archiveEnv{js: js, obj: obj, st: st}
}

// chainWriter appends a valid chain of one graph, transaction by transaction.
type chainWriter struct {
	graph string
	head  persistence.Head
	last  uint64
	n     int
	seqs  []uint64
	heads []persistence.Head
	txs   []*cairnv1.Transaction
}

func (w *chainWriter) append(t testing.TB, ctx context.Context, st *persistence.Store) error {
	id := fmt.Sprintf("%s-tx-%d", w.graph, w.n)
	evs := []*cairnv1.Event{nodeAdded(id + "-a")}
	split := []uint32{1}
	if w.n%2 == 1 {
		evs, split = append(evs, nodeAdded(id+"-b")), []uint32{1, 1}
	}
	tx, head, err := sealTx(w.graph, id, time.Now().UnixNano(), w.head, evs, split)
	if err != nil {
		return err
	}
	seq, err := st.Append(ctx, w.graph, w.last, tx)
	if err != nil {
		return fmt.Errorf("append %s tx %d: %w", w.graph, w.n, err)
	}
	w.head, w.last = head, seq
	w.n++
	w.seqs, w.heads, w.txs = append(w.seqs, seq), append(w.heads, head), append(w.txs, tx)
	return nil
}

func (w *chainWriter) mustAppend(t testing.TB, ctx context.Context, st *persistence.Store, n int) {
	t.Helper()
	for range n {
		if err := w.append(t, ctx, st); err != nil {
			t.Fatal(err)
		}
	}
}

type fullRecord struct {
	seq  uint64
	time time.Time
	tx   []byte
}

func readFull(t *testing.T, ctx context.Context, what string, read func(context.Context, string, uint64, func(persistence.Record) error) (uint64, error), graph string, from uint64) ([]fullRecord, uint64) {
	t.Helper()
	var out []fullRecord
	last, err := read(ctx, graph, from, func(r persistence.Record) error {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r.Tx)
		if err != nil {
			return err
		}
		out = append(out, fullRecord{r.Seq, r.Time, b})
		return nil
	})
	if err != nil {
		t.Fatalf("%s(%s, %d): %v", what, graph, from, err)
	}
	return out, last
}

func sameRecords(t *testing.T, what string, got, want []fullRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.seq != w.seq || !g.time.Equal(w.time) || string(g.tx) != string(w.tx) {
			t.Fatalf("%s: record %d = seq %d time %v (%d bytes), want seq %d time %v (%d bytes)", what, i, g.seq, g.time, len(g.tx), w.seq, w.time, len(w.tx))
		}
	}
}

// inStream reports whether the stream still holds seq.
func inStream(t *testing.T, ctx context.Context, st *persistence.Store, seq uint64) bool {
	t.Helper()
	_, err := st.Get(ctx, seq)
	switch {
	case err == nil:
		return true
	case errors.Is(err, persistence.ErrNotFound):
		return false
	}
	t.Fatalf("Get(%d): %v", seq, err)
	return false
}

func TestArchiveRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	env := newArchiveEnv(t, ctx, 3)
	st := env.st
	g, o := interleave(t, ctx, st, 12)
	before, last := readFull(t, ctx, "Read", st.Read, "g", 1)
	if last != g.last || len(before) != 12 {
		t.Fatalf("Read before: %d records, last %d; want 12, %d", len(before), last, g.last)
	}
	verBefore, err := st.Verify(ctx, "g")
	if err != nil {
		t.Fatalf("verify before: %v", err)
	}

	// Archive g's first 7 transactions: objects of 3, 3 and 1.
	bound := g.seqs[7]
	var progs []persistence.ArchiveProgress
	res, err := st.Archive(ctx, "g", bound, func(p persistence.ArchiveProgress) { progs = append(progs, p) })
	if err != nil {
		t.Fatalf("archive: %v", err)
	}
	if res.Before != bound || res.Transactions != 7 || res.Purged != 7 || len(res.Objects) != 3 {
		t.Fatalf("archive result %+v, want bound %d, 7 transactions in 3 objects, 7 purged", res, bound)
	}
	if len(progs) != 3 || progs[2].Transactions != 7 || progs[2].Objects != 3 || progs[2].Bytes <= 0 {
		t.Errorf("progress %+v, want 3 calls ending at 7 transactions, 3 objects", progs)
	}
	archives, err := st.Archives(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(archives, res.Objects, func(a, b persistence.ArchiveInfo) bool { return a == b }) {
		t.Errorf("Archives = %+v\nwant %+v", archives, res.Objects)
	}
	wantFrom := []int{0, 3, 6}
	wantTo := []int{2, 5, 6}
	for i, a := range archives {
		if a.Graph != "g" || a.FromSeq != g.seqs[wantFrom[i]] || a.ToSeq != g.seqs[wantTo[i]] ||
			a.FromN != g.heads[wantFrom[i]].N-uint64(len(g.txs[wantFrom[i]].Events))+1 || a.ToN != g.heads[wantTo[i]].N ||
			a.Transactions != wantTo[i]-wantFrom[i]+1 || a.Size <= 0 || a.Stored <= 0 ||
			a.Name != fmt.Sprintf("archive/g/%020d-%020d", a.FromSeq, a.ToSeq) {
			t.Errorf("archive %d = %+v", i, a)
		}
	}
	if a, err := st.Archives(ctx, "o"); err != nil || len(a) != 0 {
		t.Errorf("Archives(o) = %v, %v; want none", a, err)
	}

	// The stream no longer holds them; the other graph is untouched.
	for i, seq := range g.seqs {
		if got := inStream(t, ctx, st, seq); got != (i >= 7) {
			t.Errorf("g tx %d (seq %d) in stream: %v", i, seq, got)
		}
	}
	for _, seq := range o.seqs {
		if !inStream(t, ctx, st, seq) {
			t.Errorf("o's seq %d was purged", seq)
		}
	}
	if n := streamMsgs(t, ctx, env.js); n != 24-7 {
		t.Errorf("stream holds %d messages, want %d", n, 24-7)
	}

	// Nothing is lost: full reads, verify, partial reads.
	after, last := readFull(t, ctx, "Read", st.Read, "g", 1)
	if last != g.last {
		t.Errorf("Read after returned last %d, want %d", last, g.last)
	}
	sameRecords(t, "Read after archival", after, before)
	scan, _ := readFull(t, ctx, "ReadScan", st.ReadScan, "g", 0)
	sameRecords(t, "ReadScan after archival", scan, before)
	for _, from := range []uint64{g.seqs[2], g.seqs[3] - 1, g.seqs[6], g.seqs[7], g.seqs[11]} {
		got, _ := readFull(t, ctx, "Read", st.Read, "g", from)
		var want []fullRecord
		for _, r := range before {
			if r.seq >= from {
				want = append(want, r)
			}
		}
		sameRecords(t, fmt.Sprintf("Read from %d", from), got, want)
	}
	verAfter, err := st.Verify(ctx, "g")
	if err != nil || verAfter != verBefore {
		t.Errorf("verify after = %+v, %v; want %+v", verAfter, err, verBefore)
	}

	// Again with the same bound: nothing to do.
	res, err = st.Archive(ctx, "g", bound, nil)
	if err != nil || res.Transactions != 0 || res.Purged != 0 || len(res.Objects) != 0 {
		t.Errorf("archive again: %+v, %v; want nothing done", res, err)
	}
	// Everything: the last transaction stays.
	res, err = st.Archive(ctx, "g", 1<<62, nil)
	if err != nil || res.Before != g.last || res.Transactions != 4 || res.Purged != 4 || len(res.Objects) != 2 {
		t.Fatalf("archive everything: %+v, %v; want bound %d, 4 transactions in 2 objects", res, err, g.last)
	}
	if ls, err := st.LastSeq(ctx, "g"); err != nil || ls != g.last || !inStream(t, ctx, st, g.last) {
		t.Fatalf("after archiving everything LastSeq = %d, %v; want %d still in the stream", ls, err, g.last)
	}
	after, _ = readFull(t, ctx, "Read", st.Read, "g", 0)
	sameRecords(t, "Read after archiving all but the last", after, before)
	// Writing goes on: the last message keeps optimistic concurrency working.
	g.mustAppend(t, ctx, st, 2)
	if v, err := st.Verify(ctx, "g"); err != nil || v.Transactions != 14 || v.Head != g.head {
		t.Errorf("verify after more appends = %+v, %v", v, err)
	}
	if _, err := st.Archive(ctx, "nope", 10, nil); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("archive of a graph without transactions: %v, want ErrNotFound", err)
	}
}

func TestArchiveWithoutObjects(t *testing.T) {
	ctx := testCtx(t)
	st := natstest.Start(t).Store()
	g := &chainWriter{graph: "g"}
	g.mustAppend(t, ctx, st, 3)
	if _, err := st.Archive(ctx, "g", 3, nil); !errors.Is(err, persistence.ErrNoObjects) {
		t.Errorf("Archive: %v, want ErrNoObjects", err)
	}
	if _, err := st.Archives(ctx, "g"); !errors.Is(err, persistence.ErrNoObjects) {
		t.Errorf("Archives: %v, want ErrNoObjects", err)
	}
	if err := st.CheckHead(ctx, "g", g.seqs[1], g.heads[1]); err != nil {
		t.Errorf("CheckHead without objects: %v", err)
	}
}

// TestArchiveResume: an Archive that stops after writing objects and before
// purging (here: its ctx ends in the progress callback) is finished by the
// next one, without duplicate or overlapping objects.
func TestArchiveResume(t *testing.T) {
	ctx := testCtx(t)
	env := newArchiveEnv(t, ctx, 2)
	st := env.st
	g, _ := interleave(t, ctx, st, 10)
	before, _ := readFull(t, ctx, "Read", st.Read, "g", 1)

	crash := func(bound uint64, afterObjects int) {
		t.Helper()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := st.Archive(cctx, "g", bound, func(p persistence.ArchiveProgress) {
			if p.Objects == afterObjects {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("archive that crashes after %d objects: %v, want context.Canceled", afterObjects, err)
		}
	}
	// Crash after all three objects of g's first 6 transactions, before the
	// purge.
	crash(g.seqs[6], 3)
	if a, err := st.Archives(ctx, "g"); err != nil || len(a) != 3 {
		t.Fatalf("after the crash: %d archives, %v; want 3", len(a), err)
	}
	for _, seq := range g.seqs {
		if !inStream(t, ctx, st, seq) {
			t.Fatalf("seq %d purged by a crashed archive", seq)
		}
	}
	// Reads are right meanwhile: the archived records are not doubled.
	mid, _ := readFull(t, ctx, "Read", st.Read, "g", 1)
	sameRecords(t, "Read after the crash", mid, before)

	res, err := st.Archive(ctx, "g", g.seqs[6], nil)
	if err != nil || len(res.Objects) != 0 || res.Purged != 6 {
		t.Fatalf("resumed archive: %+v, %v; want no new object, 6 purged", res, err)
	}
	// Crash in the middle of the next run: one object of two written.
	crash(g.seqs[9], 1)
	res, err = st.Archive(ctx, "g", g.seqs[9], nil)
	if err != nil || len(res.Objects) != 1 || res.Transactions != 1 || res.Purged != 3 {
		t.Fatalf("resumed archive: %+v, %v; want 1 new object of 1 transaction, 3 purged", res, err)
	}
	archives, err := st.Archives(ctx, "g")
	if err != nil || len(archives) != 5 {
		t.Fatalf("Archives = %+v, %v; want 5", archives, err)
	}
	for i := 1; i < len(archives); i++ {
		if archives[i].FromSeq <= archives[i-1].ToSeq || archives[i].FromN != archives[i-1].ToN+1 {
			t.Errorf("archive %d %+v overlaps or leaves a gap after %+v", i, archives[i], archives[i-1])
		}
	}
	for i, seq := range g.seqs {
		if got := inStream(t, ctx, st, seq); got != (i >= 9) {
			t.Errorf("g tx %d (seq %d) in stream: %v", i, seq, got)
		}
	}
	after, _ := readFull(t, ctx, "Read", st.Read, "g", 1)
	sameRecords(t, "Read after resumed archives", after, before)
	if v, err := st.Verify(ctx, "g"); err != nil || v.Transactions != 10 || v.Head != g.head {
		t.Errorf("verify = %+v, %v", v, err)
	}
}

// TestArchiveWhileWriting: archiving a graph while a writer appends to it
// and a reader verifies it loses nothing and never fails the reader.
func TestArchiveWhileWriting(t *testing.T) {
	ctx := testCtx(t)
	env := newArchiveEnv(t, ctx, 1)
	st := env.st
	g := &chainWriter{graph: "g"}
	g.mustAppend(t, ctx, st, 20)
	bound := g.last + 1 // everything but the last: clamped

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var werr, rerr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 30 {
			if werr = g.append(t, ctx, st); werr != nil {
				return
			}
		}
	}()
	reads := 0
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, rerr = st.Verify(ctx, "g"); rerr != nil {
				return
			}
			reads++
		}
	}()
	res, err := st.Archive(ctx, "g", bound, nil)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("archive while writing: %v", err)
	}
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if rerr != nil {
		t.Fatalf("verify while archiving (after %d good ones): %v", reads, rerr)
	}
	t.Logf("archived %d transactions, %d purged, %d verifies meanwhile", res.Transactions, res.Purged, reads)
	// The bound is clamped to g's last transaction when Archive started:
	// everything before it, and nothing the writer added, is archived.
	if res.Before < 20 || res.Before > bound || res.Transactions != int(res.Before-1) || res.Purged != res.Before-1 {
		t.Errorf("archive result: bound %d, %d transactions, %d purged; want a bound in [20, %d] and everything below it archived and purged",
			res.Before, res.Transactions, res.Purged, bound)
	}
	all, last := readFull(t, ctx, "Read", st.Read, "g", 1)
	if len(all) != 50 || last != g.last {
		t.Fatalf("Read: %d records, last %d; want 50, %d", len(all), last, g.last)
	}
	for i, r := range all {
		if r.seq != g.seqs[i] {
			t.Fatalf("record %d at seq %d, want %d", i, r.seq, g.seqs[i])
		}
	}
	if v, err := st.Verify(ctx, "g"); err != nil || v.Transactions != 50 || v.Head != g.head {
		t.Errorf("verify = %+v, %v", v, err)
	}
}

func TestCheckHead(t *testing.T) {
	ctx := testCtx(t)
	env := newArchiveEnv(t, ctx, 2)
	st := env.st
	g, o := interleave(t, ctx, st, 6)
	if _, err := st.Archive(ctx, "g", g.seqs[3], nil); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2, 3, 5} { // archived and in the stream
		if err := st.CheckHead(ctx, "g", g.seqs[i], g.heads[i]); err != nil {
			t.Errorf("CheckHead(g tx %d at seq %d): %v", i, g.seqs[i], err)
		}
	}
	var ce *persistence.ChainError
	for _, tc := range []struct {
		name   string
		seq    uint64
		head   persistence.Head
		reason string
	}{
		{"wrong CID, archived", g.seqs[1], persistence.Head{N: g.heads[1].N, CID: g.heads[0].CID}, "head CID"},
		{"wrong CID, in stream", g.seqs[4], persistence.Head{N: g.heads[4].N, CID: g.heads[5].CID}, "head CID"},
		{"wrong position", g.seqs[4], persistence.Head{N: g.heads[4].N + 1, CID: g.heads[4].CID}, "head position"},
		{"wrong position, archived", g.seqs[0], persistence.Head{N: 7, CID: g.heads[0].CID}, "head position"},
		{"another graph's", o.seqs[2], o.heads[2], "transaction belongs to another graph"},
	} {
		err := st.CheckHead(ctx, "g", tc.seq, tc.head)
		if !errors.As(err, &ce) || !errors.Is(err, persistence.ErrChainBroken) || ce.Reason != tc.reason || ce.Seq != tc.seq {
			t.Errorf("CheckHead %s: %v, want a *ChainError %q at seq %d", tc.name, err, tc.reason, tc.seq)
		}
	}
	for _, seq := range []uint64{0, g.last + 100} {
		if err := st.CheckHead(ctx, "g", seq, g.head); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("CheckHead at seq %d: %v, want ErrNotFound", seq, err)
		}
	}
}

func TestSeqAtTime(t *testing.T) {
	ctx := testCtx(t)
	env := newArchiveEnv(t, ctx, 2)
	st := env.st
	// g alone at seqs 1-5, then g and o interleaved.
	g, o := &chainWriter{graph: "g"}, &chainWriter{graph: "o"}
	g.mustAppend(t, ctx, st, 5)
	for range 3 {
		o.mustAppend(t, ctx, st, 1)
		g.mustAppend(t, ctx, st, 1)
	}
	last := g.last
	times := map[uint64]time.Time{}
	for seq := uint64(1); seq <= last; seq++ {
		r, err := st.Get(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		times[seq] = r.Time
	}
	check := func(when string) {
		t.Helper()
		at := func(what string, tt time.Time, want uint64) {
			t.Helper()
			got, err := st.SeqAtTime(ctx, "g", tt)
			if err != nil || got != want {
				t.Errorf("%s: SeqAtTime(%s) = %d, %v; want %d", when, what, got, err, want)
			}
		}
		at("before the first", times[1].Add(-time.Second), 0)
		at("just before the first", times[1].Add(-time.Nanosecond), 0)
		at("after the last", times[last].Add(time.Second), last)
		for seq := uint64(1); seq <= last; seq++ {
			at(fmt.Sprintf("at seq %d", seq), times[seq], seq)
			if seq < last && times[seq+1].Sub(times[seq]) > time.Nanosecond {
				at(fmt.Sprintf("between %d and %d", seq, seq+1), times[seq].Add(times[seq+1].Sub(times[seq])/2), seq)
			}
		}
	}
	check("stream only")
	if _, err := st.Archive(ctx, "g", g.seqs[6], nil); err != nil {
		t.Fatal(err)
	}
	if inStream(t, ctx, st, 1) || inStream(t, ctx, st, 4) {
		t.Fatal("archive left seqs 1-4 in the stream")
	}
	check("archived")
}

func TestFindEvent(t *testing.T) {
	ctx := testCtx(t)
	env := newArchiveEnv(t, ctx, 2)
	st := env.st
	g, o := interleave(t, ctx, st, 6)
	if _, err := st.Archive(ctx, "g", g.seqs[3], nil); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 3, 4, 5} { // archived and in the stream
		// The first event of transaction i.
		first := g.txs[i].Events[0]
		c := cidFromRec(t, first)
		seq, pos, err := st.FindEvent(ctx, "g", c)
		wantPos := g.heads[i].N - uint64(len(g.txs[i].Events)) + 1
		if err != nil || seq != g.seqs[i] || pos != wantPos {
			t.Errorf("FindEvent(g tx %d first event) = %d, %d, %v; want %d, %d", i, seq, pos, err, g.seqs[i], wantPos)
		}
		// And its last: the head.
		if seq, pos, err := st.FindEvent(ctx, "g", g.heads[i].CID); err != nil || seq != g.seqs[i] || pos != g.heads[i].N {
			t.Errorf("FindEvent(g head %d) = %d, %d, %v; want %d, %d", i, seq, pos, err, g.seqs[i], g.heads[i].N)
		}
	}
	// o's event is not g's.
	if _, _, err := st.FindEvent(ctx, "g", o.heads[1].CID); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("FindEvent(o's event in g): %v, want ErrNotFound", err)
	}
}

// TestArchiveCorrupt: an archive object that does not decode fails reads
// with ErrMalformed instead of skipping history.
func TestArchiveCorrupt(t *testing.T) {
	ctx := testCtx(t)
	env := newArchiveEnv(t, ctx, 10)
	st := env.st
	g := &chainWriter{graph: "g"}
	g.mustAppend(t, ctx, st, 4)
	res, err := st.Archive(ctx, "g", g.seqs[3], nil)
	if err != nil || len(res.Objects) != 1 {
		t.Fatalf("archive: %+v, %v", res, err)
	}
	name := res.Objects[0].Name
	info, err := env.obj.GetInfo(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.obj.Put(ctx, info.ObjectMeta, bytes.NewReader([]byte("not zstd at all"))); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Read(ctx, "g", 1, func(persistence.Record) error { return nil }); !errors.Is(err, persistence.ErrMalformed) {
		t.Errorf("Read over a corrupt archive: %v, want ErrMalformed", err)
	}
	if _, err := st.Verify(ctx, "g"); !errors.Is(err, persistence.ErrMalformed) {
		t.Errorf("Verify over a corrupt archive: %v, want ErrMalformed", err)
	}
	// Reads that start after the archive do not need it.
	if _, err := st.Read(ctx, "g", g.seqs[3], func(persistence.Record) error { return nil }); err != nil {
		t.Errorf("Read of the stream part: %v", err)
	}
}

// TestReadDuringArchive: an Archive that runs while a Read is between the
// archive part and the stream part purges what the Read was about to take
// from the stream; the Read takes it from the new archive instead.
func TestReadDuringArchive(t *testing.T) {
	ctx := testCtx(t)
	env := newArchiveEnv(t, ctx, 2)
	st := env.st
	g, _ := interleave(t, ctx, st, 8)
	want, _ := readFull(t, ctx, "Read", st.Read, "g", 1)
	if _, err := st.Archive(ctx, "g", g.seqs[2], nil); err != nil {
		t.Fatal(err)
	}
	var got []fullRecord
	archived := false
	_, err := st.Read(ctx, "g", 1, func(r persistence.Record) error {
		if !archived {
			archived = true
			if _, err := st.Archive(ctx, "g", g.seqs[6], nil); err != nil {
				return fmt.Errorf("archive during the read: %w", err)
			}
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r.Tx)
		got = append(got, fullRecord{r.Seq, r.Time, b})
		return err
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if inStream(t, ctx, st, g.seqs[5]) {
		t.Fatal("the archive during the read did not purge")
	}
	sameRecords(t, "Read with an Archive in the middle", got, want)
}

// BenchmarkArchive archives a graph of 5,000 transactions (1-2 events each)
// in objects of 1,000 and reads it back across archive and stream.
func BenchmarkArchive(b *testing.B) {
	const n = 5000
	ctx := b.Context()
	b.ReportAllocs()
	var archiveTime, readTime time.Duration
	var size, stored int64
	for b.Loop() {
		b.StopTimer()
		srv := natstest.Start(b)
		js := srv.JetStream()
		obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: persistence.DefaultObjectBucket, Storage: jetstream.FileStorage})
		if err != nil {
			b.Fatal(err)
		}
		st, err := persistence.OpenStore(ctx, js, persistence.DefaultStoreConfig(), persistence.WithObjects(obj), persistence.WithArchiveSegments(1000, 0))
		if err != nil {
			b.Fatal(err)
		}
		g := &chainWriter{graph: "g"}
		g.mustAppend(b, ctx, st, n)
		b.StartTimer()
		t0 := time.Now()
		res, err := st.Archive(ctx, "g", g.last, nil)
		if err != nil || res.Transactions != n-1 {
			b.Fatalf("archive: %+v, %v", res.Transactions, err)
		}
		t1 := time.Now()
		if v, err := st.Verify(ctx, "g"); err != nil || v.Transactions != n {
			b.Fatalf("verify: %+v, %v", v, err)
		}
		archiveTime += t1.Sub(t0)
		readTime += time.Since(t1)
		size, stored = 0, 0
		for _, o := range res.Objects {
			size, stored = size+o.Size, stored+o.Stored
		}
	}
	b.ReportMetric(float64(n-1)*float64(b.N)/archiveTime.Seconds(), "archived-tx/s")
	b.ReportMetric(float64(n)*float64(b.N)/readTime.Seconds(), "verified-tx/s")
	b.ReportMetric(float64(size)/float64(stored), "compression-ratio")
}

// interleave appends n one-event transactions to graph "g" and as many to
// graph "o", alternating.
func interleave(t *testing.T, ctx context.Context, st *persistence.Store, n int) (g, o *chainWriter) {
	t.Helper()
	g, o = &chainWriter{graph: "g"}, &chainWriter{graph: "o"}
	for range n {
		g.mustAppend(t, ctx, st, 1)
		o.mustAppend(t, ctx, st, 1)
	}
	return g, o
}

func TestParseArchiveName(t *testing.T) {
	for _, c := range []struct {
		name     string
		graph    string
		from, to uint64
		ok       bool
	}{
		{"archive/g-1/00000000000000000003-00000000000000000017", "g-1", 3, 17, true},
		{"archive/g/00000000000000000003-0000000000000000001", "", 0, 0, false},
		{"archive//00000000000000000003-00000000000000000017", "", 0, 0, false},
		{"aggregate/g/00000000000000000003", "", 0, 0, false},
		{"archive/a.b/00000000000000000003-00000000000000000017", "", 0, 0, false},
	} {
		g, from, to, ok := persistence.ParseArchiveName(c.name)
		if g != c.graph || from != c.from || to != c.to || ok != c.ok {
			t.Errorf("ParseArchiveName(%q) = %q %d %d %v, want %q %d %d %v", c.name, g, from, to, ok, c.graph, c.from, c.to, c.ok)
		}
	}
}
