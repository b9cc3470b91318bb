package actors_test

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

var manyGraphs = flag.Int("actors.many", 5000, "graphs TestManyGraphsColdAfterRestart activates and drains (500 with -short)")

// execAll sends envs[i] to its graph from 32 goroutines and returns the
// replies.
func (m *member) execAll(envs []*cairnv1.CommandEnvelope) []*cairnv1.CommandReply {
	replies := make([]*cairnv1.CommandReply, len(envs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(32, len(envs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(envs); i = int(next.Add(1) - 1) {
				replies[i] = m.exec(envs[i])
			}
		})
	}
	wg.Wait()
	return replies
}

// wantAccepted fails the test for every refused reply.
func wantAccepted(t *testing.T, what string, replies []*cairnv1.CommandReply) {
	t.Helper()
	bad := 0
	for _, r := range replies {
		if r.GetError() != nil || r.GetSeq() == 0 {
			if bad++; bad <= 5 {
				t.Errorf("%s: command %s: %v", what, r.GetCommandId(), aggregate.ErrorFromProto(r.GetError()))
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d commands refused", what, bad, len(replies))
	}
}

// Issue 12: many idle graphs, each with a snapshot, get one write each
// after a restart. Every write is accepted, every activation starts from
// the graph's snapshot found through the index (no listing of the bucket),
// and draining as many active grains stops them all with every
// acknowledged command stored once and each grain's last snapshot written.
// 5,000 graphs (issue 12's count, about 12 s on the 2-core machine; 500
// with -short, or -actors.many=N).
func TestManyGraphsColdAfterRestart(t *testing.T) {
	n := *manyGraphs
	if testing.Short() && n > 500 {
		n = 500
	}
	w := newSnapWorld(t)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("g%05d", i)
	}
	envs := func(id string, cmds ...*cairnv1.Command) []*cairnv1.CommandEnvelope {
		out := make([]*cairnv1.CommandEnvelope, n)
		for i, g := range ids {
			out[i] = cmdtest.Envelope(g, id, cmds...)
		}
		return out
	}

	m1 := startMember(t, w.store, snapGrains(w.snaps, 1000))
	wantAccepted(t, "create", m1.execAll(envs("create", cmdtest.CreateGraph(), cmdtest.AddNode("a"))))
	m1.stop()
	if a := m1.grains.Active(); a != 0 {
		t.Fatalf("%d grains still active after the first drain", a)
	}
	if st := m1.grains.Stats(); st.SnapshotsWritten != uint64(n) || st.SnapshotWriteErrors != 0 {
		t.Fatalf("first drain: %d snapshots written, %d failed; want %d", st.SnapshotsWritten, st.SnapshotWriteErrors, n)
	}

	// A restart: a new snapshot store and member over the same server.
	snaps, err := persistence.OpenSnapshots(context.Background(), w.srv.JetStream(), persistence.DefaultSnapshotConfig())
	if err != nil {
		t.Fatal(err)
	}
	before := snaps.Stats()
	m2 := startMember(t, w.store, snapGrains(snaps, 1000))
	acked := m2.execAll(envs("b", cmdtest.AddNode("b")))
	wantAccepted(t, "cold write", acked)
	st := m2.grains.Stats()
	if st.Activations != uint64(n) || st.SnapshotLoads != uint64(n) || st.SnapshotFallbacks != 0 || st.ReplayedTransactions != 0 {
		t.Errorf("cold activations: %+v; want %d from snapshots, nothing replayed", st, n)
	}
	if d := snaps.Stats().Since(before); d.Listings != 0 || d.IndexLookups != uint64(n) || d.IndexErrors != 0 || d.IndexStale != 0 {
		t.Errorf("cold activations found their snapshots with %+v; want %d index lookups, no listing", d, n)
	}

	// Drain n active grains, each with an event since its snapshot.
	if a := m2.grains.Active(); a != n {
		t.Fatalf("%d grains active, want %d", a, n)
	}
	m2.stop()
	if a := m2.grains.Active(); a != 0 {
		t.Fatalf("%d grains still active after the drain", a)
	}
	if st := m2.grains.Stats(); st.SnapshotsWritten != uint64(n) || st.SnapshotWriteErrors != 0 {
		t.Errorf("drain: %d snapshots written, %d failed; want %d", st.SnapshotsWritten, st.SnapshotWriteErrors, n)
	}
	if d := snaps.Stats().Since(before); d.Listings != 0 {
		t.Errorf("the drain's snapshot writes and prunes listed the bucket %d times", d.Listings)
	}
	// One read of the stream (a read per graph costs tens of ms each).
	stored := map[string]map[string][]uint64{}
	if _, err := w.store.ReadAll(context.Background(), 1, func(r persistence.Record) error {
		g := r.Tx.GetGraphId()
		if stored[g] == nil {
			stored[g] = map[string][]uint64{}
		}
		for id, seqs := range commandSeqs([]persistence.Record{r}) {
			stored[g][id] = append(stored[g][id], seqs...)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, g := range ids {
		if seqs := stored[g]["b"]; len(seqs) != 1 || seqs[0] != acked[i].GetSeq() {
			t.Fatalf("graph %s: acknowledged write stored at %v, want once at %d", g, seqs, acked[i].GetSeq())
		}
		if len(stored[g]) != 2 {
			t.Fatalf("graph %s holds commands %v", g, stored[g])
		}
	}
}

// A store written before the snapshot index (its index bucket deleted
// here) activates from its snapshots: a reader without the index lists the
// bucket, and a writer that opens it builds the index once, after which
// activations use it.
func TestActivationWithoutIndex(t *testing.T) {
	w := newSnapWorld(t)
	ctx := context.Background()
	m1 := startMember(t, w.store, snapGrains(w.snaps, 1000))
	var graphs []string
	for i := range 5 {
		g := fmt.Sprint("old", i)
		graphs = append(graphs, g)
		m1.mustExec(cmdtest.Envelope(g, "create", cmdtest.CreateGraph(), cmdtest.AddNode("a")))
	}
	m1.stop()
	js := w.srv.JetStream()
	if err := js.DeleteKeyValue(ctx, persistence.SnapshotIndexBucket(persistence.DefaultObjectBucket)); err != nil {
		t.Fatal(err)
	}

	for _, open := range []struct {
		name    string
		open    func(context.Context) (*persistence.Snapshots, error)
		indexed bool
	}{
		{"reader without index", func(ctx context.Context) (*persistence.Snapshots, error) {
			return persistence.LookupSnapshots(ctx, js, persistence.DefaultSnapshotConfig())
		}, false},
		{"writer builds the index", func(ctx context.Context) (*persistence.Snapshots, error) {
			return persistence.OpenSnapshots(ctx, js, persistence.DefaultSnapshotConfig())
		}, true},
	} {
		snaps, err := open.open(ctx)
		if err != nil {
			t.Fatalf("%s: %v", open.name, err)
		}
		if snaps.Indexed() != open.indexed {
			t.Fatalf("%s: indexed %v", open.name, snaps.Indexed())
		}
		before := snaps.Stats()
		m := startMember(t, w.store, snapGrains(snaps, 1000))
		for _, g := range graphs {
			probe(t, m, g)
		}
		st := m.grains.Stats()
		if st.SnapshotLoads != uint64(len(graphs)) || st.SnapshotFallbacks != 0 {
			t.Errorf("%s: %+v; want every activation from its snapshot", open.name, st)
		}
		d := snaps.Stats().Since(before)
		if open.indexed && (d.Listings != 0 || d.IndexLookups != uint64(len(graphs))) {
			t.Errorf("%s: activations counted %+v; want index lookups only", open.name, d)
		}
		if !open.indexed && d.Listings != uint64(len(graphs)) {
			t.Errorf("%s: activations counted %+v; want a listing each", open.name, d)
		}
		m.stop()
	}
}

// An index entry whose snapshot object was deleted behind the index's back
// falls back to the graph's next older snapshot: the grain activates from
// it, replays the tail and holds the state a full replay builds.
func TestActivationSkipsDeletedSnapshot(t *testing.T) {
	w := newSnapWorld(t)
	ctx := context.Background()
	m1 := startMember(t, w.store, snapGrains(w.snaps, 1))
	m1.mustExec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph(), cmdtest.AddNode("a")))
	m1.mustExec(cmdtest.Envelope("g", "b", cmdtest.AddNode("b")))
	m1.mustExec(cmdtest.Envelope("g", "c", cmdtest.AddNode("c")))
	m1.stop()
	list, err := w.snaps.List(ctx, persistence.KindAggregate, "g")
	if err != nil || len(list) < 2 {
		t.Fatalf("snapshots of g: %v, %v; want at least 2", list, err)
	}
	if err := w.snaps.Objects().Delete(ctx, list[0].Name); err != nil {
		t.Fatal(err)
	}

	snaps, err := persistence.OpenSnapshots(ctx, w.srv.JetStream(), persistence.DefaultSnapshotConfig())
	if err != nil {
		t.Fatal(err)
	}
	before := snaps.Stats()
	m2 := startMember(t, w.store, snapGrains(snaps, 1000))
	got, _, seq := probe(t, m2, "g")
	st := m2.grains.Stats()
	if st.SnapshotLoads != 1 || st.ReplayedTransactions == 0 {
		t.Errorf("activation: %+v; want it from the older snapshot plus a replayed tail", st)
	}
	if d := snaps.Stats().Since(before); d.IndexStale != 1 || d.Listings != 0 {
		t.Errorf("counted %+v; want the deleted snapshot's entry stale, no listing", d)
	}
	ref := startMember(t, w.store, refGrains())
	want, _, wantSeq := reference(t, ref, "g")
	if seq != wantSeq || string(marshalSnap(t, got)) != string(want) {
		t.Errorf("state after the fallback (seq %d) is not the full replay's (seq %d)", seq, wantSeq)
	}
}
