package cairn_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/persistence"
)

// warmOf returns eng's warm-start counters once every decode has ended.
func warmOf(t *testing.T, eng *cairn.Engine) api.WarmHealth {
	t.Helper()
	h := eng.Grains().Health().Warm
	if h == nil {
		t.Fatal("no warm start reported: the engine kept no local snapshot copies")
	}
	return *h
}

// A restart decodes the local copies of its snapshots while NATS recovers,
// and its projections and grains take them: the read model and the
// aggregate state are not fetched again, and the answers are the same. A
// copy that is not of the newest snapshot (written while copies were off)
// or that is damaged is passed over: the snapshot is fetched from the
// Object Store, and nothing acknowledged is missing.
func TestRestartTakesLocalSnapshotCopies(t *testing.T) {
	dir := t.TempDir()
	open := func(local bool) *cairn.Engine {
		return openEngineWith(t, dir, func(cfg *cairn.Config) { cfg.NoLocalSnapshots = !local })
	}
	ctx := context.Background()
	eng := open(true)
	last := newGraph(t, eng, "warm", "a", "b", "c")
	closeEngine(t, eng) // final snapshots: the aggregate state and the read model
	copies, err := persistence.OpenLocalSnapshots(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(copies.Scan()); n != 2 {
		t.Fatalf("%d local copies after a clean stop, want 2 (aggregate, read model)", n)
	}

	// Restart: both copies are taken.
	eng = open(true)
	restartedFromSnapshots(t, eng, last.GetSeq())
	rep, err := eng.Query(ctx, statsQuery("warm", last.GetSeq()))
	if err != nil || rep.GetStats().GetNodes() != 3 {
		t.Fatalf("after the restart: %v, %v", rep, err)
	}
	last = addNodes(t, eng, "warm", "d")
	<-eng.Warm().Done()
	if w := warmOf(t, eng); w.Decoded != 2 || w.Hits != 2 || w.Misses != 0 || w.Failed != 0 {
		t.Fatalf("warm start %+v, want 2 copies decoded and taken", w)
	}
	if g := eng.Grains().Health(); g.SnapshotLoads != 1 || g.SnapshotFallbacks != 0 {
		t.Fatalf("grains %+v: want one activation from the snapshot", g)
	}
	closeEngine(t, eng)

	// Copies off for a run: the copies on disk fall behind the snapshots.
	eng = open(false)
	last = addNodes(t, eng, "warm", "e")
	closeEngine(t, eng)
	eng = open(true)
	restartedFromSnapshots(t, eng, last.GetSeq())
	last = addNodes(t, eng, "warm", "f")
	rep, err = eng.Query(ctx, statsQuery("warm", last.GetSeq()))
	if err != nil || rep.GetStats().GetNodes() != 6 {
		t.Fatalf("after a restart with stale copies: %v, %v", rep, err)
	}
	if w := warmOf(t, eng); w.Hits != 0 || w.Misses != 2 {
		t.Fatalf("warm start %+v, want both stale copies passed over", w)
	}
	closeEngine(t, eng)

	// A damaged copy: the aggregate's last byte flipped.
	var agg persistence.LocalCopy
	for _, c := range copies.Scan() {
		if c.Info.Kind == persistence.KindAggregate {
			agg = c
		}
	}
	b, err := os.ReadFile(agg.Path)
	if err != nil {
		t.Fatal(err)
	}
	b[agg.Offset+agg.Length-1] ^= 0x40
	if err := os.WriteFile(agg.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	eng = open(true)
	last = addNodes(t, eng, "warm", "g")
	rep, err = eng.Query(ctx, statsQuery("warm", last.GetSeq()))
	if err != nil || rep.GetStats().GetNodes() != 7 {
		t.Fatalf("after a restart with a damaged copy: %v, %v", rep, err)
	}
	if w := warmOf(t, eng); w.Failed != 1 || w.Hits != 1 {
		t.Fatalf("warm start %+v, want the damaged aggregate copy failed and the read model taken", w)
	}
	if g := eng.Grains().Health(); g.SnapshotLoads != 1 || g.SnapshotFallbacks != 0 {
		t.Fatalf("grains %+v: want the activation from the stored snapshot", g)
	}
}
