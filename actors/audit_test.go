package actors_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/persistence"
)

// The manifests count each graph's transactions (what the audit checks the
// store against after a restart), and a manifest written before they did
// restores without an alarm: the counts are then not known, not zero.
func TestAuditOldManifestWithoutCounts(t *testing.T) {
	env := newSnapEnv(t)
	ctx := context.Background()
	h := newHistory(t, 7, env.store, 3, 300)
	last := h.write(60, 8)
	audited := func(cfg *actors.ProjectionConfig) { cfg.AuditEvery = 20 * time.Millisecond }
	p := env.openTuned(t, 2, 25, last, audited)
	closeProjections(t, p) // its final round is at last

	census, err := env.store.Census(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := env.snaps.List(ctx, persistence.KindManifest, actors.ManifestSeries)
	if err != nil || len(ms) == 0 {
		t.Fatalf("manifests: %v, %v", ms, err)
	}
	counted := false
	for _, info := range ms {
		m := env.manifest(t, info)
		counted = counted || m.Seq == last
		for i, mg := range m.Graphs {
			if m.Seq == last && mg.Transactions != census.Graphs[mg.Graph] {
				t.Errorf("manifest at seq %d: graph %s holds %d transactions, the stream %d", m.Seq, mg.Graph, mg.Transactions, census.Graphs[mg.Graph])
			}
			m.Graphs[i].Transactions = 0 // as written before counts were kept
		}
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.snaps.Delete(ctx, info); err != nil {
			t.Fatal(err)
		}
		if _, err := env.snaps.Put(ctx, persistence.SnapshotInfo{Kind: info.Kind, Graph: info.Graph, Seq: info.Seq, Format: info.Format}, data); err != nil {
			t.Fatal(err)
		}
	}
	if !counted {
		t.Fatalf("no manifest at seq %d among %d", last, len(ms))
	}

	p = env.openTuned(t, 2, 25, last, audited)
	eventually(t, "restored from the last manifest, and audited", 10*time.Second, func() bool {
		hl := p.Health()
		return hl.Snapshots.RestoredSeq == last && hl.Audits >= 4
	})
	if st := p.Stopped(); len(st) > 0 {
		t.Fatalf("stopped after restoring a manifest without counts: %v", st)
	}
}
