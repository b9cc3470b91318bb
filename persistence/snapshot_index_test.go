package persistence_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/persistence"
)

// One graph's snapshots are found, listed and pruned through the index,
// never by listing the bucket, whatever else the bucket holds; listing
// every graph still lists it.
func TestSnapshotIndexFindsOneGraph(t *testing.T) {
	ctx := testCtx(t)
	ss, _ := openSnapshots(t)
	if !ss.Indexed() {
		t.Fatal("a new bucket's index is not in use")
	}
	data := []byte("state")
	for i := range 50 {
		mustPut(t, ctx, ss, persistence.KindAggregate, fmt.Sprint("other", i), 7, data)
	}
	for _, name := range []string{"archive/g/00000000000000000001-00000000000000000002", "notes"} {
		if _, err := ss.Objects().PutBytes(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	for seq := uint64(1); seq <= 5; seq++ {
		mustPut(t, ctx, ss, persistence.KindAggregate, "g/x", seq*10, data)
	}
	mustPut(t, ctx, ss, persistence.KindReadModel, "g/x", 5, data)

	before := ss.Stats()
	list, err := ss.List(ctx, persistence.KindAggregate, "g/x")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(list), []string{"g/x@50", "g/x@40", "g/x@30", "g/x@20", "g/x@10"}; !slices.Equal(got, want) {
		t.Fatalf("list: %v, want %v", got, want)
	}
	for _, l := range list {
		if l.Position != l.Seq*10 || !l.Head.Equals(testHead(t, l.Seq*10)) || l.Format != 7 || l.Stored == 0 || l.Created.IsZero() {
			t.Errorf("listed %+v", l)
		}
	}
	if n, err := ss.Prune(ctx, persistence.KindAggregate, "g/x", 2); err != nil || n != 3 {
		t.Fatalf("prune to 2: %d, %v", n, err)
	}
	list, err = ss.List(ctx, persistence.KindAggregate, "g/x")
	if got, want := names(list), []string{"g/x@50", "g/x@40"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("after pruning: %v, %v, want %v", got, err, want)
	}
	if list, _ := ss.List(ctx, persistence.KindAggregate, "nothing"); len(list) != 0 {
		t.Errorf("a graph without snapshots lists %v", names(list))
	}
	d := ss.Stats().Since(before)
	if d.Listings != 0 || d.IndexLookups != 4 || d.IndexStale != 0 || d.IndexErrors != 0 {
		t.Errorf("one graph's list, prune, list and an empty graph's list counted %+v; want 4 index lookups and nothing else", d)
	}
	if all, err := ss.List(ctx, persistence.KindAggregate, ""); err != nil || len(all) != 52 {
		t.Fatalf("every graph: %d snapshots, %v; want 52", len(all), err)
	}
	if d := ss.Stats().Since(before); d.Listings != 1 {
		t.Errorf("listing every graph counted %d listings, want 1", d.Listings)
	}
}

// An index entry whose object was deleted behind the index's back is left
// out (the reader falls back to the next older snapshot) and counted;
// Delete of a missing object still drops its entry; Prune drops stale
// entries older than what it keeps.
func TestSnapshotIndexStaleEntry(t *testing.T) {
	ctx := testCtx(t)
	ss, _ := openSnapshots(t)
	data := []byte("state")
	for _, seq := range []uint64{10, 20, 30} {
		mustPut(t, ctx, ss, persistence.KindAggregate, "g", seq, data)
	}
	// Deleted behind the index's back: the newest and the oldest.
	for _, seq := range []uint64{30, 10} {
		if err := ss.Objects().Delete(ctx, persistence.SnapshotName(persistence.KindAggregate, "g", seq)); err != nil {
			t.Fatal(err)
		}
	}
	before := ss.Stats()
	list, err := ss.List(ctx, persistence.KindAggregate, "g")
	if got := names(list); err != nil || !slices.Equal(got, []string{"g@20"}) {
		t.Fatalf("list with stale entries: %v, %v; want g@20", got, err)
	}
	if got, err := ss.Get(ctx, list[0]); err != nil || string(got) != "state" {
		t.Fatalf("get the older snapshot: %q, %v", got, err)
	}
	if d := ss.Stats().Since(before); d.IndexStale != 2 || d.Listings != 0 {
		t.Errorf("counted %+v; want 2 stale entries, no listing", d)
	}
	// Delete of the missing newest drops its entry.
	if err := ss.Delete(ctx, persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: "g", Seq: 30}); err == nil {
		t.Error("delete of a missing snapshot worked")
	}
	// Two newer ones, keep 2: g@20 is pruned and the stale g@10 entry,
	// older than what is kept, dropped.
	mustPut(t, ctx, ss, persistence.KindAggregate, "g", 40, data)
	mustPut(t, ctx, ss, persistence.KindAggregate, "g", 50, data)
	if n, err := ss.Prune(ctx, persistence.KindAggregate, "g", 2); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want 1", n, err)
	}
	before = ss.Stats()
	list, err = ss.List(ctx, persistence.KindAggregate, "g")
	if got := names(list); err != nil || !slices.Equal(got, []string{"g@50", "g@40"}) {
		t.Fatalf("after pruning: %v, %v", got, err)
	}
	if d := ss.Stats().Since(before); d.IndexStale != 0 {
		t.Errorf("stale entries left in the index after Delete and Prune: %d", d.IndexStale)
	}
}

// A bucket written before there was an index (here: its index bucket
// deleted) is listed by a reader, and indexed once by the next writer,
// which then finds every snapshot through the index; a reader opened
// after that uses the index too.
func TestSnapshotIndexBuiltForOldBucket(t *testing.T) {
	ctx := testCtx(t)
	ss, srv := openSnapshots(t)
	data := []byte("state")
	for g := range 20 {
		for seq := uint64(1); seq <= 3; seq++ {
			mustPut(t, ctx, ss, persistence.KindAggregate, fmt.Sprint("g", g), seq, data)
		}
	}
	mustPut(t, ctx, ss, persistence.KindManifest, "projections", 9, data)
	js := srv.JetStream()
	if err := js.DeleteKeyValue(ctx, persistence.SnapshotIndexBucket(persistence.DefaultObjectBucket)); err != nil {
		t.Fatal(err)
	}

	old, err := persistence.LookupSnapshots(ctx, js, persistence.DefaultSnapshotConfig())
	if err != nil {
		t.Fatal(err)
	}
	if old.Indexed() {
		t.Fatal("a reader of a bucket without an index says it uses one")
	}
	if list, err := old.List(ctx, persistence.KindAggregate, "g7"); err != nil || len(list) != 3 {
		t.Fatalf("reader without an index: %v, %v", names(list), err)
	}
	if old.Stats().Listings != 1 {
		t.Errorf("reader without an index: %+v, want one listing", old.Stats())
	}

	// A writer opens it: one listing builds the index.
	w, err := persistence.OpenSnapshots(ctx, js, persistence.DefaultSnapshotConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !w.Indexed() || w.Stats().Listings != 1 {
		t.Fatalf("writer: indexed %v, %+v; want the index built with one listing", w.Indexed(), w.Stats())
	}
	for g := range 20 {
		list, err := w.List(ctx, persistence.KindAggregate, fmt.Sprint("g", g))
		if got, want := names(list), []string{fmt.Sprint("g", g, "@3"), fmt.Sprint("g", g, "@2"), fmt.Sprint("g", g, "@1")}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("g%d through the built index: %v, %v; want %v", g, got, err, want)
		}
	}
	if list, err := w.List(ctx, persistence.KindManifest, "projections"); err != nil || len(list) != 1 {
		t.Fatalf("manifests through the built index: %v, %v", names(list), err)
	}
	if w.Stats().Listings != 1 {
		t.Errorf("lists after the build listed the bucket: %+v", w.Stats())
	}
	// A second writer and a reader find it complete: no listing.
	for _, open := range []func(context.Context, jetstream.JetStream, persistence.SnapshotConfig) (*persistence.Snapshots, error){
		persistence.OpenSnapshots, persistence.LookupSnapshots,
	} {
		s, err := open(ctx, js, persistence.DefaultSnapshotConfig())
		if err != nil {
			t.Fatal(err)
		}
		if list, err := s.List(ctx, persistence.KindAggregate, "g3"); err != nil || len(list) != 3 || !s.Indexed() || s.Stats().Listings != 0 {
			t.Errorf("opened after the build: %v, %v, indexed %v, %+v", names(list), err, s.Indexed(), s.Stats())
		}
	}
}

// Concurrent Puts of one graph from two stores (two writers) all land in
// the index.
func TestSnapshotIndexConcurrentPuts(t *testing.T) {
	ctx := testCtx(t)
	ss, srv := openSnapshots(t)
	other, err := persistence.OpenSnapshots(ctx, srv.JetStream(), persistence.DefaultSnapshotConfig())
	if err != nil {
		t.Fatal(err)
	}
	before := ss.Stats()
	var wg sync.WaitGroup
	for i := range 40 {
		s := ss
		if i%2 == 1 {
			s = other
		}
		wg.Go(func() {
			if _, err := s.Put(ctx, persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: "g", Seq: uint64(i + 1)}, []byte("x")); err != nil {
				t.Errorf("put %d: %v", i+1, err)
			}
		})
	}
	wg.Wait()
	list, err := ss.List(ctx, persistence.KindAggregate, "g")
	if err != nil || len(list) != 40 || list[0].Seq != 40 || list[39].Seq != 1 {
		t.Fatalf("after 40 concurrent puts: %v, %v", names(list), err)
	}
	if d := ss.Stats().Since(before); d.Listings != 0 {
		t.Errorf("listed the bucket: %+v", d)
	}
}
