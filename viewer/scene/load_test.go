package scene

import (
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

// TestLoadFromReadModel loads a scene from a read model at several points
// of a random history and checks that it holds what the scene folded from
// the start holds (the same nodes, colours, degrees and edges, in other
// slots), and that it folds the rest of the history on from there.
func TestLoadFromReadModel(t *testing.T) {
	h := newHistory(testseed.Seed(t, 0))
	folded := New("g", nil, WithColorComponent("colour"))
	g, err := readmodel.New("g", readmodel.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	created := &cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{GraphId: "g"}}}
	if err := g.ApplyTx(1, []*cairnv1.Event{created}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, folded, 1, created)
	var loaded *Scene
	for seq := uint64(2); seq <= 600; seq++ {
		tx := h.tx()
		if err := g.ApplyTx(seq, tx); err != nil {
			t.Fatal(err)
		}
		mustApply(t, folded, seq, tx...)
		if loaded != nil {
			mustApply(t, loaded, seq, tx...)
		}
		if seq%150 == 0 {
			loaded = New("g", nil, WithColorComponent("colour"))
			if err := loaded.Load(g, nil, "cid", time.Unix(1, 0)); err != nil {
				t.Fatal(err)
			}
			if loaded.Seq() != seq {
				t.Fatalf("loaded at seq %d, want %d", loaded.Seq(), seq)
			}
		}
		if loaded != nil {
			sameContent(t, folded, loaded)
		}
	}
}

// sameContent checks that b holds a's nodes and edges, by id.
func sameContent(t *testing.T, a, b *Scene) {
	t.Helper()
	if a.LiveNodes() != b.LiveNodes() || a.LiveEdges() != b.LiveEdges() {
		t.Fatalf("seq %d: %d nodes %d edges, want %d and %d", a.Seq(), b.LiveNodes(), b.LiveEdges(), a.LiveNodes(), a.LiveEdges())
	}
	for slot, id := range a.ids {
		if id == "" {
			continue
		}
		bs, ok := b.Slot(id)
		if !ok {
			t.Fatalf("seq %d: node %q missing", a.Seq(), id)
		}
		as := uint32(slot)
		if a.Color(as) != b.Color(bs) || a.Degree(as) != b.Degree(bs) || a.Size(as) != b.Size(bs) {
			t.Fatalf("seq %d: node %q colour %08x degree %d, want %08x %d", a.Seq(), id, b.Color(bs), b.Degree(bs), a.Color(as), a.Degree(as))
		}
		ax, ay := a.Position(as)
		bx, by := b.Position(bs)
		if ax != bx || ay != by {
			t.Fatalf("seq %d: node %q at another hashed position", a.Seq(), id)
		}
	}
	for e := range uint32(a.Edges()) {
		id := a.edgeIDs.String(e)
		if id == "" {
			continue
		}
		be, ok := b.EdgeSlot(id)
		if !ok {
			t.Fatalf("seq %d: edge %q missing", a.Seq(), id)
		}
		af, at := a.Ends(e)
		bf, bt := b.Ends(be)
		if a.NodeID(af) != b.NodeID(bf) || a.NodeID(at) != b.NodeID(bt) {
			t.Fatalf("seq %d: edge %q ends differ", a.Seq(), id)
		}
	}
}
