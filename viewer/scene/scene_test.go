package scene

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func mustApply(t *testing.T, s *Scene, seq uint64, evs ...*cairnv1.Event) {
	t.Helper()
	if err := s.ApplyTx(seq, fmt.Sprintf("cid%d", seq), time.Unix(int64(seq), 0), evs); err != nil {
		t.Fatalf("seq %d: %v", seq, err)
	}
}

func TestSceneSlotsReuseLowestAndHide(t *testing.T) {
	s := New("g", nil)
	mustApply(t, s, 1, nodeAdded("a", "person"), nodeAdded("b", "place"), nodeAdded("c"), edgeAdded("ab", "a", "b"), edgeAdded("bc", "b", "c"))
	if s.Nodes() != 3 || s.LiveNodes() != 3 || s.Edges() != 2 || s.LiveEdges() != 2 {
		t.Fatalf("counts %d/%d nodes %d/%d edges", s.LiveNodes(), s.Nodes(), s.LiveEdges(), s.Edges())
	}
	if d := s.Degree(1); d != 2 {
		t.Fatalf("degree of b %d, want 2", d)
	}
	if got, want := s.Size(1), sizeFor(2, DefaultMaxSize); got != want || got <= s.Size(0) {
		t.Fatalf("size of b %v, want %v (more than a's %v)", got, want, s.Size(0))
	}
	if s.Color(0) != Color(Hue([]byte("person"))) || s.Color(2) != grey {
		t.Fatalf("colours %08x %08x", s.Color(0), s.Color(2))
	}
	mustApply(t, s, 2, edgeRemoved("ab", "a", "b"), nodeRemoved("a"))
	if s.Size(0) != 0 || s.Color(0)>>24 != 0 || s.NodeID(0) != "" {
		t.Fatalf("removed node a not hidden: size %v colour %08x id %q", s.Size(0), s.Color(0), s.NodeID(0))
	}
	if f, to := s.Ends(0); f != to {
		t.Fatalf("removed edge ab not degenerate: %d -> %d", f, to)
	}
	if s.Degree(1) != 1 {
		t.Fatalf("degree of b %d after removal, want 1", s.Degree(1))
	}
	// The lowest free slots are reused: node slot 0 before a new one,
	// edge slot 0 likewise.
	mustApply(t, s, 3, nodeAdded("d"), nodeAdded("e"), edgeAdded("de", "d", "e"))
	if slot, _ := s.Slot("d"); slot != 0 {
		t.Fatalf("d in slot %d, want the freed 0", slot)
	}
	if slot, _ := s.Slot("e"); slot != 3 {
		t.Fatalf("e in slot %d, want 3", slot)
	}
	if slot, _ := s.EdgeSlot("de"); slot != 0 {
		t.Fatalf("de in edge slot %d, want the freed 0", slot)
	}
	if s.Nodes() != 4 || s.LiveNodes() != 4 || s.Seq() != 3 || s.Head() != "cid3" {
		t.Fatalf("after reuse: %d/%d nodes, seq %d head %q", s.LiveNodes(), s.Nodes(), s.Seq(), s.Head())
	}
}

func TestSceneRefusesWhatDoesNotFit(t *testing.T) {
	for _, tc := range []struct {
		name string
		evs  []*cairnv1.Event
	}{
		{"node twice", []*cairnv1.Event{nodeAdded("a"), nodeAdded("a")}},
		{"edge to nowhere", []*cairnv1.Event{nodeAdded("a"), edgeAdded("e", "a", "zz")}},
		{"edge twice", []*cairnv1.Event{nodeAdded("a"), edgeAdded("e", "a", "a"), edgeAdded("e", "a", "a")}},
		{"remove unknown node", []*cairnv1.Event{nodeRemoved("a")}},
		{"remove node with edges", []*cairnv1.Event{nodeAdded("a"), edgeAdded("e", "a", "a"), nodeRemoved("a")}},
		{"remove unknown edge", []*cairnv1.Event{edgeRemoved("e", "a", "b")}},
		{"change unknown node", []*cairnv1.Event{componentSet("a", "t", "v")}},
		{"no kind", []*cairnv1.Event{{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := New("g", nil).ApplyTx(4, "h", time.Time{}, tc.evs)
			var ae *ApplyError
			if !errors.Is(err, ErrInvalidEvent) || !errors.As(err, &ae) || ae.Seq != 4 || ae.Index != len(tc.evs)-1 {
				t.Fatalf("got %v, want an ApplyError at seq 4 event %d", err, len(tc.evs)-1)
			}
		})
	}
}

func TestSceneColorByComponent(t *testing.T) {
	s := New("g", nil, WithColorComponent("kind"))
	mustApply(t, s, 1, nodeAddedWith("a", "kind", "server"), nodeAdded("b", "person"))
	if s.Color(0) != Color(Hue([]byte("server"))) || s.Color(1) != Color(Hue([]byte("person"))) {
		t.Fatalf("colours %08x %08x", s.Color(0), s.Color(1))
	}
	mustApply(t, s, 2, componentSet("b", "kind", "laptop"), componentRemoved("a", "kind"))
	if s.Color(1) != Color(Hue([]byte("laptop"))) || s.Color(0) != grey {
		t.Fatalf("after change: colours %08x %08x", s.Color(0), s.Color(1))
	}
}

func TestSceneFades(t *testing.T) {
	s := New("g", nil, WithFade(4))
	mustApply(t, s, 1, nodeAdded("a"))
	var alphas []uint32
	for s.Advance() {
		alphas = append(alphas, s.Color(0)>>24)
	}
	alphas = append(alphas, s.Color(0)>>24)
	if want := []uint32{63, 127, 191, 255}; !slices.Equal(alphas, want) {
		t.Fatalf("fade in alphas %v, want %v", alphas, want)
	}
	mustApply(t, s, 2, nodeRemoved("a"))
	if s.Size(0) == 0 || s.Color(0)>>24 != 255 {
		t.Fatalf("fading-out node hidden at once")
	}
	for s.Advance() {
	}
	if s.Size(0) != 0 || s.Color(0)>>24 != 0 {
		t.Fatalf("faded-out node visible: size %v colour %08x", s.Size(0), s.Color(0))
	}
	// A fade never holds a slot: a node added at once takes it.
	mustApply(t, s, 3, nodeAdded("b"), nodeRemoved("b"), nodeAdded("c"))
	if slot, _ := s.Slot("c"); slot != 0 {
		t.Fatalf("c in slot %d, want 0", slot)
	}
}

// TestSceneSlotsMatchReference folds seeded random histories and checks
// every slot against a naive model after each transaction, and that the
// same history twice gives the same scene.
func TestSceneSlotsMatchReference(t *testing.T) {
	seed := testseed.Seed(t, 0)
	h := newHistory(seed)
	s := New("g", nil, WithColorComponent("colour"))
	var txs [][]*cairnv1.Event
	for seq := uint64(1); seq <= 400; seq++ {
		tx := h.tx()
		txs = append(txs, tx)
		mustApply(t, s, seq, tx...)
		checkAgainst(t, s, h)
	}
	again := New("g", nil, WithColorComponent("colour"))
	for i, tx := range txs {
		mustApply(t, again, uint64(i+1), tx...)
	}
	if !slices.Equal(s.ids, again.ids) || !slices.Equal(s.ends, again.ends) || !slices.Equal(s.color, again.color) ||
		!slices.Equal(s.pos, again.pos) || !slices.Equal(s.size, again.size) {
		t.Fatalf("the same history gave another scene")
	}
}

func checkAgainst(t *testing.T, s *Scene, h *history) {
	t.Helper()
	if s.Nodes() != len(h.nodes) || s.Edges() != len(h.edges) {
		t.Fatalf("seq %d: %d node and %d edge slots, want %d and %d", s.Seq(), s.Nodes(), s.Edges(), len(h.nodes), len(h.edges))
	}
	deg := map[string]uint32{}
	for i, e := range h.edges {
		from, to := s.Ends(uint32(i))
		if e[0] == "" {
			if from != to {
				t.Fatalf("seq %d: free edge slot %d is %d -> %d", s.Seq(), i, from, to)
			}
			continue
		}
		if s.NodeID(from) != e[1] || s.NodeID(to) != e[2] {
			t.Fatalf("seq %d: edge slot %d is %q -> %q, want %q -> %q", s.Seq(), i, s.NodeID(from), s.NodeID(to), e[1], e[2])
		}
		deg[e[1]]++
		deg[e[2]]++
	}
	live := 0
	for i, id := range h.nodes {
		slot := uint32(i)
		if s.NodeID(slot) != id {
			t.Fatalf("seq %d: slot %d holds %q, want %q", s.Seq(), i, s.NodeID(slot), id)
		}
		if id == "" {
			if s.Size(slot) != 0 || s.Color(slot)>>24 != 0 {
				t.Fatalf("seq %d: free slot %d visible", s.Seq(), i)
			}
			continue
		}
		live++
		if s.Degree(slot) != deg[id] || s.Size(slot) != sizeFor(deg[id], DefaultMaxSize) {
			t.Fatalf("seq %d: slot %d degree %d size %v, want %d", s.Seq(), i, s.Degree(slot), s.Size(slot), deg[id])
		}
		if x, y := s.Position(slot); [2]float32{x, y} != func() [2]float32 { a, b := hashedPos("g", id); return [2]float32{a, b} }() {
			t.Fatalf("seq %d: slot %d at %v,%v, not its hashed position", s.Seq(), i, x, y)
		}
	}
	if s.LiveNodes() != live {
		t.Fatalf("seq %d: %d live nodes, want %d", s.Seq(), s.LiveNodes(), live)
	}
}

func TestDirtyRanges(t *testing.T) {
	var d dirtySet
	for _, i := range []uint32{3, 4, 5, 63, 64, 65, 200, 210, 1000} {
		d.set(i)
	}
	d.set(4) // a second write to one slot marks it once
	if got, want := d.ranges(nil, 2000, 0, 100), []Range{{3, 6}, {63, 66}, {200, 201}, {210, 211}, {1000, 1001}}; !slices.Equal(got, want) {
		t.Fatalf("gap 0: %v, want %v", got, want)
	}
	if got, want := d.ranges(nil, 2000, 16, 100), []Range{{3, 6}, {63, 66}, {200, 211}, {1000, 1001}}; !slices.Equal(got, want) {
		t.Fatalf("gap 16: %v, want %v", got, want)
	}
	// Capped: the gap widens until at most 2 ranges are left.
	if got := d.ranges(nil, 2000, 1, 2); len(got) > 2 || got[0].Lo != 3 || got[len(got)-1].Hi != 1001 {
		t.Fatalf("capped at 2: %v", got)
	}
	if got, want := d.ranges(nil, 65, 0, 100), []Range{{3, 6}, {63, 65}}; !slices.Equal(got, want) {
		t.Fatalf("limit 65: %v, want %v", got, want)
	}
	d.clear()
	d.setRange(60, 200)
	if got, want := d.ranges(nil, 1000, 0, 10), []Range{{60, 200}}; !slices.Equal(got, want) {
		t.Fatalf("setRange: %v, want %v", got, want)
	}
}
