package readmodel

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func created() *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{GraphId: "g"}}}
}

func nodeAdded(id string, cats []string, comps ...*cairnv1.Component) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id, Components: comps, Categories: cats}}}
}

func nodeRemoved(id string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: id}}}
}

func edgeAdded(id, src, dst, typ string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: id, Source: src, Target: dst, EdgeType: typ}}}
}

func comp(typ, val string) *cairnv1.Component {
	return &cairnv1.Component{Type: typ, Value: []byte(val)}
}

func newGraph(t testing.TB) *Graph {
	t.Helper()
	g, err := New("g", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.ApplyTx(1, []*cairnv1.Event{created()}); err != nil {
		t.Fatal(err)
	}
	return g
}

// snapshot renders every answer the graph gives about nodes n0..n9.
func snapshot(t *testing.T, g *Graph) string {
	t.Helper()
	s, _ := g.Stats()
	out := fmt.Sprint(s.Nodes, s.Edges, s.DistinctComponents, s.Degrees, s.Top, s.ComponentTypes)
	for i := range 10 {
		id := "n" + strconv.Itoa(i)
		v, err := g.Node(id)
		p, _ := g.Neighbors(id, Both, "", "", MaxLimit)
		out += fmt.Sprint(v, err, p)
	}
	return out
}

func TestFlyweight(t *testing.T) {
	g := newGraph(t)
	const n = 10000
	for i := range n {
		if err := g.Apply(uint64(i+2), nodeAdded("n"+strconv.Itoa(i), nil, comp("color", "red"))); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.store.live; got != 1 {
		t.Fatalf("%d nodes with one component store %d values, want 1", n, got)
	}
	if h, _ := g.store.lookup("color", []byte("red")); g.store.refs[h] != n {
		t.Fatalf("refs = %d, want %d", g.store.refs[h], n)
	}
	for i := range n {
		if err := g.Apply(uint64(n+i+2), nodeRemoved("n"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := g.Stats()
	if s.DistinctComponents != 0 || len(g.store.byKey) != 0 || s.Nodes != 0 || len(s.ComponentTypes) != 0 {
		t.Fatalf("after removing every node: %+v, %d keys", s, len(g.store.byKey))
	}
}

func TestRedeliveryAndFailedTransaction(t *testing.T) {
	g := newGraph(t)
	tx := []*cairnv1.Event{
		nodeAdded("n0", []string{"x"}, comp("a", "1")),
		nodeAdded("n1", nil, comp("a", "1"), comp("b", "2")),
		edgeAdded("e0", "n0", "n1", "r"),
		edgeAdded("e1", "n1", "n1", "s"),
	}
	if err := g.ApplyTx(2, tx); err != nil {
		t.Fatal(err)
	}
	before, asOf, version := snapshot(t, g), g.AsOf(), g.Version()
	if err := g.ApplyTx(2, tx); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if err := g.ApplyTx(1, tx); err != nil {
		t.Fatalf("older redelivery: %v", err)
	}
	if after := snapshot(t, g); after != before || g.AsOf() != asOf || g.Version() != version {
		t.Fatalf("redelivery changed the graph:\n%s\n%s", before, after)
	}

	bad := [][]*cairnv1.Event{
		{nodeAdded("n2", nil, comp("c", "3")), edgeAdded("e2", "n2", "nope", "r")},
		{nodeAdded("n2", nil), nodeAdded("n2", nil)},
		{edgeAdded("e2", "n0", "n1", "r"), nodeRemoved("n0")},
		{nodeRemoved("n1")},
		{edgeAdded("e0", "n0", "n0", "r")},
		{nodeAdded("n3", nil), {}},
		{created()},
	}
	for i, tx := range bad {
		err := g.ApplyTx(3, tx)
		var ae *ApplyError
		if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidEvent) || ae.Seq != 3 || ae.Index != len(tx)-1 {
			t.Errorf("bad tx %d: err = %v, want an *ApplyError naming event %d", i, err, len(tx)-1)
		}
		if after := snapshot(t, g); after != before || g.AsOf() != asOf || g.Version() != version {
			t.Fatalf("bad tx %d changed the graph:\n%s\n%s", i, before, after)
		}
	}
	if err := g.Apply(1, nodeAdded("n5", nil)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Apply below AsOf: %v, want ErrInvalidArgument", err)
	}
}

func TestPaginationWalksEveryResultOnce(t *testing.T) {
	g := newGraph(t)
	var tx []*cairnv1.Event
	const n = 2500
	for i := range n {
		tx = append(tx, nodeAdded("n"+strconv.Itoa(i), []string{"x"}, comp("a", "1")))
	}
	tx = append(tx, nodeAdded("hub", nil))
	for i := range n {
		tx = append(tx, edgeAdded("e"+strconv.Itoa(i), "hub", "n"+strconv.Itoa(i), "r"))
		tx = append(tx, edgeAdded("f"+strconv.Itoa(i), "n"+strconv.Itoa(i), "hub", "s"))
	}
	if err := g.ApplyTx(2, tx); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 7, 100, MaxLimit} {
		for name, page := range map[string]func(string) (Page, error){
			"type":      func(c string) (Page, error) { return g.FindByComponentType("a", c, limit) },
			"component": func(c string) (Page, error) { return g.FindByComponent("a", []byte("1"), c, limit) },
			"category":  func(c string) (Page, error) { return g.FindByCategory("x", c, limit) },
		} {
			if got := walkFind(t, page); len(got) != n {
				t.Errorf("%s limit %d: %d ids, want %d", name, limit, len(got), n)
			}
		}
		if got := walkNeighbors(t, g, "hub", Both, "", limit); len(got) != 2*n {
			t.Errorf("neighbors limit %d: %d, want %d", limit, len(got), 2*n)
		}
		if got := walkNeighbors(t, g, "hub", Both, "s", limit); len(got) != n {
			t.Errorf("neighbors of type s, limit %d: %d, want %d", limit, len(got), n)
		}
	}
}

func TestBadQueryInput(t *testing.T) {
	g := newGraph(t)
	if err := g.ApplyTx(2, []*cairnv1.Event{nodeAdded("n0", []string{"x"}, comp("a", "1")), nodeAdded("n1", nil), edgeAdded("e0", "n0", "n1", "r"), edgeAdded("e1", "n1", "n0", "r")}); err != nil {
		t.Fatal(err)
	}
	q, err := g.Neighbors("n0", Both, "", "", 1)
	if err != nil || q.Next == "" {
		t.Fatalf("Neighbors: %+v, %v; want a next cursor", q, err)
	}
	findCursor := encodeCursor(kindFind, 1, g.Version(), queryKey("component", "a", "1"))
	if err := g.ApplyTx(3, []*cairnv1.Event{nodeAdded("n2", []string{"x"}, comp("a", "1")), nodeAdded("n3", []string{"x"}, comp("a", "1"))}); err != nil {
		t.Fatal(err)
	}
	// Real find cursors of each kind, each refused by every other kind of
	// find, by the same kind with other arguments and by neighbours.
	finds := map[string]func(cursor string) (Page, error){
		"type a":        func(c string) (Page, error) { return g.FindByComponentType("a", c, 1) },
		"type b":        func(c string) (Page, error) { return g.FindByComponentType("b", c, 1) },
		"component a=1": func(c string) (Page, error) { return g.FindByComponent("a", []byte("1"), c, 1) },
		"component a=2": func(c string) (Page, error) { return g.FindByComponent("a", []byte("2"), c, 1) },
		"category x":    func(c string) (Page, error) { return g.FindByCategory("x", c, 1) },
		"category y":    func(c string) (Page, error) { return g.FindByCategory("y", c, 1) },
	}
	for made, find := range finds {
		p, err := find("")
		if err != nil {
			t.Fatal(err)
		}
		if p.Next == "" {
			continue // nothing matches: no cursor
		}
		if _, err := find(p.Next); err != nil {
			t.Errorf("%s: its own cursor refused: %v", made, err)
		}
		for used, other := range finds {
			if used == made {
				continue
			}
			if _, err := other(p.Next); !errors.Is(err, ErrBadCursor) {
				t.Errorf("cursor of find %s given to find %s: err = %v, want ErrBadCursor", made, used, err)
			}
		}
		if _, err := g.Neighbors("n0", Both, "", p.Next, 1); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor of find %s given to neighbors: err = %v, want ErrBadCursor", made, err)
		}
	}
	tests := []struct {
		name string
		err  error
		call func() error
	}{
		{"unknown node", ErrNotFound, func() error { _, err := g.Node("zz"); return err }},
		{"neighbors of unknown node", ErrNotFound, func() error { _, err := g.Neighbors("zz", Out, "", "", 10); return err }},
		{"zero limit", ErrInvalidArgument, func() error { _, err := g.FindByCategory("x", "", 0); return err }},
		{"negative limit", ErrInvalidArgument, func() error { _, err := g.FindByComponentType("a", "", -1); return err }},
		{"limit too big", ErrInvalidArgument, func() error { _, err := g.Neighbors("n0", Out, "", "", MaxLimit+1); return err }},
		{"bad direction", ErrInvalidArgument, func() error { _, err := g.Neighbors("n0", Both+1, "", "", 10); return err }},
		{"cursor not base64", ErrBadCursor, func() error { _, err := g.FindByCategory("x", "!!!", 10); return err }},
		{"empty decoded cursor", ErrBadCursor, func() error { _, err := g.FindByCategory("x", "AA", 10); return err }},
		{"truncated cursor", ErrBadCursor, func() error { _, err := g.FindByComponent("a", []byte("1"), findCursor[:2], 10); return err }},
		{"cursor from the future", ErrBadCursor, func() error {
			_, err := g.FindByCategory("x", encodeCursor(kindFind, 1, g.Version()+1, queryKey("category", "x")), 10)
			return err
		}},
		{"neighbor cursor to find", ErrBadCursor, func() error { _, err := g.FindByCategory("x", q.Next, 10); return err }},
		{"cursor of another node", ErrBadCursor, func() error { _, err := g.Neighbors("n1", Both, "", q.Next, 10); return err }},
		{"cursor of another direction", ErrBadCursor, func() error { _, err := g.Neighbors("n0", Out, "", q.Next, 10); return err }},
		{"cursor of another edge type", ErrBadCursor, func() error { _, err := g.Neighbors("n0", Both, "r", q.Next, 10); return err }},
		{"find cursor without its query key (an older release's)", ErrBadCursor, func() error {
			_, err := g.FindByCategory("x", encodeCursor(kindFind, 1, g.Version()), 10)
			return err
		}},
		{"find cursor to neighbors", ErrBadCursor, func() error { _, err := g.Neighbors("n0", Both, "", findCursor, 10); return err }},
		{"neighbor cursor of a phase the direction lacks", ErrBadCursor, func() error {
			_, err := g.Neighbors("n0", Out, "", encodeCursor(kindNeighbor, 0, uint64(Out), 1, 0, queryKey("")), 10)
			return err
		}},
		{"neighbor cursor beyond 32 bits", ErrBadCursor, func() error {
			_, err := g.Neighbors("n0", Out, "", encodeCursor(kindNeighbor, 0, uint64(Out), 0, 1<<32, queryKey("")), 10)
			return err
		}},
		{"neighbor cursor with a value too many", ErrBadCursor, func() error {
			_, err := g.Neighbors("n0", Out, "", encodeCursor(kindNeighbor, 0, uint64(Out), 0, 0, queryKey(""), 1), 10)
			return err
		}},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, tt.err) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
	if err := g.ApplyTx(4, []*cairnv1.Event{{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: &cairnv1.GraphDeleted{}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Node("n0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Node after GraphDeleted: %v, want ErrNotFound", err)
	}
	if _, err := g.Stats(); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stats after GraphDeleted: %v, want ErrNotFound", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{TopK: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("zero config validates")
	}
	if _, err := New("g", bad); err == nil {
		t.Fatal("New accepted a bad config")
	}
}
