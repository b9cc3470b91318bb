package cairn_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/persistence"
)

// History removed while the engine was down, beneath the read-model
// snapshots it restarts from: the restart never reads that stretch, so only
// the audit's count of each graph's transactions (held by the projection,
// restored from the manifest, against the stream's and the archives') can
// tell. The NATS server outlives the engine, as an external one does, so
// that the test can delete the message while no engine runs.

// openOn starts an audited engine with snapshots on, on srv.
func openOn(t *testing.T, srv *natstest.Server) *cairn.Engine {
	t.Helper()
	return openAudited(t, "", func(cfg *cairn.Config) {
		cfg.NATSURL = srv.ClientURL()
		cfg.Projections.SnapshotEvery, cfg.Grain.SnapshotEvery = 2, 2
		cfg.Projections.SnapshotSpacing, cfg.Grain.SnapshotSpacing = 0, 0
	})
}

// restartedFromSnapshots waits until eng has restored its projections
// from a manifest at or after seq (so that the restart did not read the
// stretch before it).
func restartedFromSnapshots(t *testing.T, eng *cairn.Engine, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := eng.Projections().Health().Snapshots.RestoredSeq
		if got >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("restored from seq %d, want a manifest at or after seq %d", got, seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMessageDeletedWhileDownBeneathSnapshotsIsQuarantined(t *testing.T) {
	srv := natstest.Start(t)
	eng := openOn(t, srv)
	rep := newGraph(t, eng, "holey", "a", "b", "c", "d")
	kept := newGraph(t, eng, "kept", "x")
	if _, err := eng.Query(context.Background(), statsQuery("kept", kept.GetSeq())); err != nil {
		t.Fatal(err)
	}
	closeEngine(t, eng) // its final round snapshots both graphs

	// nats stream rmm event-store <seq>: the transaction adding "b".
	st, err := srv.JetStream().Stream(context.Background(), persistence.DefaultStoreConfig().Stream)
	if err != nil {
		t.Fatal(err)
	}
	deleted := rep.GetSeq() - 2
	if err := st.DeleteMsg(context.Background(), deleted); err != nil {
		t.Fatal(err)
	}

	eng = openOn(t, srv)
	restartedFromSnapshots(t, eng, kept.GetSeq())
	err = waitDataLoss(t, eng, "holey")
	// Verify names the first transaction after the gap.
	if want := "chain broken at seq " + strconv.FormatUint(deleted+1, 10); !strings.Contains(err.Error(), want) {
		t.Errorf("DATA_LOSS does not say %q: %v", want, err)
	}
	h := eng.Projections().Health()
	if _, ok := h.Stopped["holey"]; !ok || h.DataLoss < 1 || h.ChainFailures < 1 {
		t.Errorf("health: stopped %v, data loss %d, chain failures %d; want holey stopped and counted", h.Stopped, h.DataLoss, h.ChainFailures)
	}
	if _, ok := h.Stopped["kept"]; ok {
		t.Errorf("kept is stopped: %s", h.Stopped["kept"])
	}
	wantHealthy(t, eng, "kept", "y")
}

// Transactions moved into archive objects before the snapshot count as
// held: no alarm after the restart. Nor for a manifest written before
// manifests held counts (see actors' TestAuditOldManifestWithoutCounts).
func TestArchivedBeforeSnapshotsNotQuarantinedAfterRestart(t *testing.T) {
	srv := natstest.Start(t)
	eng := openOn(t, srv)
	archivedGraph(t, eng)
	rep := addNodes(t, eng, "arch", "e")
	closeEngine(t, eng)

	eng = openOn(t, srv)
	restartedFromSnapshots(t, eng, rep.GetSeq())
	// Rounds after the first: each would have suspected, then quarantined.
	deadline := time.Now().Add(10 * time.Second)
	for eng.Projections().Health().Audits < 4 {
		if time.Now().After(deadline) {
			t.Fatal("no audit rounds")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h := eng.Projections().Health(); len(h.Stopped) > 0 {
		t.Fatalf("stopped after the restart: %v", h.Stopped)
	}
	wantHealthy(t, eng, "arch", "f")
}

// An archive object deleted while the engine was down (the running engine
// watches for deletions; see TestDeletedArchiveObjectIsDataLoss): the
// graph's count of transactions falls short of what it held.
func TestArchiveDeletedWhileDownIsQuarantined(t *testing.T) {
	srv := natstest.Start(t)
	eng := openOn(t, srv)
	ctx := context.Background()
	archivedGraph(t, eng)
	arcs, err := eng.Store().Archives(ctx, "arch")
	if err != nil || len(arcs) == 0 {
		t.Fatalf("archives: %v, %v", arcs, err)
	}
	addNodes(t, eng, "arch", "e")
	kept := newGraph(t, eng, "kept", "x")
	closeEngine(t, eng)

	obj, err := srv.JetStream().ObjectStore(ctx, persistence.DefaultObjectBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := obj.Delete(ctx, arcs[0].Name); err != nil {
		t.Fatal(err)
	}
	eng = openOn(t, srv)
	restartedFromSnapshots(t, eng, kept.GetSeq())
	if err := waitDataLoss(t, eng, "arch"); !strings.Contains(err.Error(), "truncated") {
		t.Errorf("DATA_LOSS does not say the history was truncated: %v", err)
	}
	wantHealthy(t, eng, "kept", "y")
}

// archivedGraph writes the graph "arch" (nodes a to d) and moves all but
// its last transaction into archive objects.
func archivedGraph(t *testing.T, eng *cairn.Engine) {
	t.Helper()
	ctx := context.Background()
	rep := newGraph(t, eng, "arch", "a", "b", "c", "d")
	if _, err := eng.Query(ctx, statsQuery("arch", rep.GetSeq())); err != nil {
		t.Fatal(err)
	}
	if res, err := eng.Store().Archive(ctx, "arch", rep.GetSeq()-1, nil); err != nil || res.Transactions == 0 {
		t.Fatalf("archive: %+v, %v", res, err)
	}
}
