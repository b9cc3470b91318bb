package readmodel

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func edgeRemoved(id string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{EdgeId: id}}}
}

// buildSpec builds a graph from a compact spec: "a b c" adds nodes,
// "a>b:t#e1" adds edge e1 of type t (type and id optional), "-e1" removes an
// edge, "-node:a" removes a node, "a=w:2.5" adds node a with component w=2.5.
// Each whitespace-separated item is one transaction.
func buildSpec(t *testing.T, spec string) *Graph {
	t.Helper()
	g := newGraph(t)
	seq := uint64(2)
	n := 0
	for _, item := range strings.Fields(spec) {
		var ev *cairnv1.Event
		switch {
		case strings.HasPrefix(item, "-node:"):
			ev = nodeRemoved(strings.TrimPrefix(item, "-node:"))
		case strings.HasPrefix(item, "-"):
			ev = edgeRemoved(item[1:])
		case strings.Contains(item, ">"):
			n++
			id := fmt.Sprint("e", n)
			if i := strings.Index(item, "#"); i >= 0 {
				item, id = item[:i], item[i+1:]
			}
			typ := "r"
			if i := strings.Index(item, ":"); i >= 0 {
				item, typ = item[:i], item[i+1:]
			}
			ends := strings.SplitN(item, ">", 2)
			ev = edgeAdded(id, ends[0], ends[1], typ)
		case strings.Contains(item, "="):
			id, c, _ := strings.Cut(item, "=")
			typ, val, _ := strings.Cut(c, ":")
			ev = nodeAdded(id, nil, comp(typ, val))
		default:
			ev = nodeAdded(item, nil)
		}
		if err := g.ApplyTx(seq, []*cairnv1.Event{ev}); err != nil {
			t.Fatalf("%s: %v", item, err)
		}
		seq++
	}
	return g
}

func fmtKHop(r KHopResult) string {
	var b strings.Builder
	for i, n := range r.Nodes {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", n.ID, n.Distance)
	}
	return b.String()
}

func TestKHop(t *testing.T) {
	chain := "a b c d e f g h a>b b>c c>d d>e e>f f>g g>h"
	tests := []struct {
		name, spec, from string
		dir              Direction
		typ              string
		depth            int
		want             string
	}{
		{"chain out 1", chain, "a", Out, "", 1, "b:1"},
		{"chain out 3", chain, "a", Out, "", 3, "b:1 c:2 d:3"},
		{"chain out 6 stops", chain, "a", Out, "", 6, "b:1 c:2 d:3 e:4 f:5 g:6"},
		{"chain in", chain, "d", In, "", 6, "c:1 b:2 a:3"},
		{"chain both", chain, "d", Both, "", 2, "c:1 e:1 b:2 f:2"},
		{"chain end", chain, "h", Out, "", 3, ""},
		{"cycle", "a b c a>b b>c c>a", "a", Out, "", 6, "b:1 c:2"},
		{"self-loop", "a b a>a a>b", "a", Out, "", 2, "b:1"},
		{"parallel edges", "a b c a>b a>b b>c", "a", Out, "", 2, "b:1 c:2"},
		{"ties by id", "a z y x a>z a>y a>x", "a", Out, "", 1, "x:1 y:1 z:1"},
		{"edge type", "a b c a>b:s b>c:r a>c:r", "a", Out, "s", 3, "b:1"},
		{"unknown edge type", "a b a>b", "a", Out, "nope", 3, ""},
		{"disconnected", "a b c d a>b c>d", "a", Both, "", 6, "b:1"},
		{"removed edge", "a b c a>b#x b>c -x", "a", Out, "", 3, ""},
		{"removed node", "a b c a>b#x b>c -x -node:a", "b", Both, "", 3, "c:1"},
		{"shortest distance wins", "a b c d a>b b>c c>d a>d", "a", Out, "", 3, "b:1 d:1 c:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := buildSpec(t, tt.spec)
			r, err := g.KHop(tt.from, tt.dir, tt.typ, tt.depth, TraverseLimits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := fmtKHop(r); got != tt.want {
				t.Errorf("KHop = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTraverseBadInput(t *testing.T) {
	g := buildSpec(t, "a b c d a>b a>c a>d b>c")
	tests := []struct {
		name string
		err  error
		run  func() error
	}{
		{"depth 0", ErrInvalidArgument, func() error { _, err := g.KHop("a", Out, "", 0, TraverseLimits{}); return err }},
		{"depth 7", ErrInvalidArgument, func() error { _, err := g.KHop("a", Out, "", 7, TraverseLimits{}); return err }},
		{"direction", ErrInvalidArgument, func() error { _, err := g.KHop("a", Direction(9), "", 1, TraverseLimits{}); return err }},
		{"negative limit", ErrInvalidArgument, func() error { _, err := g.KHop("a", Out, "", 1, TraverseLimits{MaxFrontier: -1}); return err }},
		{"unknown node", ErrNotFound, func() error { _, err := g.KHop("zz", Out, "", 1, TraverseLimits{}); return err }},
		{"frontier cap", ErrLimitExceeded, func() error { _, err := g.KHop("a", Out, "", 1, TraverseLimits{MaxFrontier: 2}); return err }},
		{"result cap", ErrLimitExceeded, func() error { _, err := g.KHop("a", Out, "", 2, TraverseLimits{MaxResults: 2}); return err }},
		{"path unknown node", ErrNotFound, func() error { _, err := g.ShortestPath("a", "zz", Out, "", "", TraverseLimits{}); return err }},
		{"path direction", ErrInvalidArgument, func() error { _, err := g.ShortestPath("a", "b", Direction(3), "", "", TraverseLimits{}); return err }},
		{"path frontier cap", ErrLimitExceeded, func() error {
			// a's level of two nodes must be built before the sides meet.
			g := buildSpec(t, "a b c d e a>b a>c b>d c>d d>e")
			_, err := g.ShortestPath("a", "e", Out, "", "", TraverseLimits{MaxFrontier: 1})
			return err
		}},
		{"dijkstra visit cap", ErrLimitExceeded, func() error {
			_, err := g.ShortestPath("d", "c", Both, "", "w", TraverseLimits{MaxResults: 1})
			return err
		}},
		{"dijkstra frontier cap", ErrLimitExceeded, func() error {
			// a's row settles b and c before the sides meet; their two
			// rows cannot both be queued.
			g := buildSpec(t, "a b c d e a>b a>c b>d c>d d>e")
			_, err := g.ShortestPath("a", "e", Out, "", "w", TraverseLimits{MaxFrontier: 1})
			return err
		}},
		{"component limit", ErrInvalidArgument, func() error { _, err := g.Component("a", "", 0); return err }},
		{"component cursor", ErrBadCursor, func() error { _, err := g.Component("a", "xyz", 1); return err }},
		{"component unknown", ErrNotFound, func() error { _, err := g.Component("zz", "", 1); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
		})
	}
	_, err := g.KHop("a", Out, "", 7, TraverseLimits{})
	if !strings.Contains(err.Error(), "1..6") {
		t.Errorf("depth error %q does not name the cap", err)
	}
}

func TestShortestPath(t *testing.T) {
	tests := []struct {
		name, spec, from, to string
		dir                  Direction
		typ, weight          string
		want                 string // nodes|edges|cost, or the error
	}{
		{"same node", "a", "a", "a", Out, "", "", "a||0"},
		{"chain", "a b c d a>b b>c c>d", "a", "d", Out, "", "", "a b c d|e1 e2 e3|3"},
		{"chain backwards out", "a b c d a>b b>c c>d", "d", "a", Out, "", "", "not found"},
		{"chain backwards in", "a b c d a>b b>c c>d", "d", "a", In, "", "", "d c b a|e3 e2 e1|3"},
		{"chain backwards both", "a b c d a>b b>c c>d", "d", "a", Both, "", "", "d c b a|e3 e2 e1|3"},
		{"shortcut", "a b c d a>b b>c c>d a>d", "a", "d", Out, "", "", "a d|e4|1"},
		{"cycle", "a b c a>b b>c c>a", "c", "b", Out, "", "", "c a b|e3 e1|2"},
		{"self-loop", "a b a>a a>b", "a", "b", Out, "", "", "a b|e2|1"},
		{"edge type", "a b c a>b:s b>c:r a>c:r", "a", "c", Out, "s", "", "not found"},
		{"unknown type", "a b a>b", "a", "b", Out, "x", "", "not found"},
		{"disconnected", "a b c d a>b c>d", "a", "d", Both, "", "", "not found"},
		{"removed edge", "a b a>b#x -x", "a", "b", Out, "", "", "not found"},
		{"weighted detour", "a b=w:1 c=w:1 d=w:1 e=w:10 a>b b>c c>d a>e e>d", "a", "d", Out, "", "w", "a b c d|e1 e2 e3|3"},
		{"weighted direct", "a b=w:5 c=w:5 d=w:1 e=w:0.5 a>b b>c c>d a>e e>d", "a", "d", Out, "", "w", "a e d|e4 e5|1.5"},
		{"weight missing is 1", "a b c a>b b>c", "a", "c", Out, "", "w", "a b c|e1 e2|2"},
		{"weight bad is 1", "a b=w:x c=w:-3 a>b b>c", "a", "c", Out, "", "w", "a b c|e1 e2|2"},
		{"weighted no path", "a b=w:1 b>a", "a", "b", Out, "", "w", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := buildSpec(t, tt.spec)
			p, err := g.ShortestPath(tt.from, tt.to, tt.dir, tt.typ, tt.weight, TraverseLimits{})
			got := fmt.Sprintf("%s|%s|%g", strings.Join(p.Nodes, " "), strings.Join(p.Edges, " "), p.Cost)
			if errors.Is(err, ErrNotFound) {
				got = "not found"
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ShortestPath = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestComponents(t *testing.T) {
	g := buildSpec(t, "a b c d e f a>b c>b d>d e>f#x")
	count := func(want int) {
		t.Helper()
		n, err := g.ComponentCount()
		if err != nil || n != want {
			t.Errorf("ComponentCount = %d, %v, want %d", n, err, want)
		}
	}
	count(3) // {a b c} {d} {e f}
	c, err := g.Component("c", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 3 || strings.Join(c.IDs, " ") != "a b" || c.Next == "" {
		t.Errorf("Component(c) first page = %+v", c)
	}
	c2, err := g.Component("c", c.Next, 2)
	if err != nil || strings.Join(c2.IDs, " ") != "c" || c2.Next != "" {
		t.Errorf("Component(c) second page = %+v, %v", c2, err)
	}
	if _, err := g.Component("a", c.Next, 2); !errors.Is(err, ErrBadCursor) {
		t.Errorf("cursor of another node: %v", err)
	}
	if err := g.ApplyTx(100, []*cairnv1.Event{edgeRemoved("x")}); err != nil {
		t.Fatal(err)
	}
	count(4) // the cache follows the version
	if c2, err := g.Component("c", c.Next, 2); err != nil || strings.Join(c2.IDs, " ") != "c" || c2.Next != "" {
		t.Errorf("Component(c) second page after a write = %+v, %v", c2, err)
	}
	if err := g.ApplyTx(101, []*cairnv1.Event{nodeRemoved("f")}); err != nil {
		t.Fatal(err)
	}
	count(3)
	if c, err := g.Component("d", "", 10); err != nil || c.Size != 1 || c.IDs[0] != "d" {
		t.Errorf("Component(d) = %+v, %v", c, err)
	}
	if err := g.ApplyTx(102, []*cairnv1.Event{{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: &cairnv1.GraphDeleted{}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ComponentCount(); !errors.Is(err, ErrNotFound) {
		t.Errorf("ComponentCount after delete: %v", err)
	}
}

// TestComponentCursorAcrossWrites pages through a component while nodes join
// and leave it: the members of the whole walk come exactly once.
func TestComponentCursorAcrossWrites(t *testing.T) {
	// Dense indices a0 b1 c2 d3 e4.
	g := buildSpec(t, "a b c d e a>b#ab b>c c>d d>e#de")
	seq := uint64(100)
	write := func(evs ...*cairnv1.Event) {
		t.Helper()
		if err := g.ApplyTx(seq, evs); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	page := func(cursor, want string, wantSize int) string {
		t.Helper()
		c, err := g.Component("c", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(c.IDs, " "); got != want || c.Size != wantSize {
			t.Errorf("Component(c, %q) = %q size %d, want %q size %d", cursor, got, c.Size, want, wantSize)
		}
		return c.Next
	}
	next := page("", "a b", 5)
	// x (index 5) joins, e leaves.
	write(nodeAdded("x", nil), edgeAdded("xc", "x", "c", "r"), edgeRemoved("de"))
	next = page(next, "c d", 5)
	// a leaves and its index goes to y, which joins behind the cursor.
	write(edgeRemoved("ab"), nodeRemoved("a"), nodeAdded("y", nil), edgeAdded("yc", "y", "c", "r"))
	if next = page(next, "x", 5); next != "" {
		t.Errorf("last page has cursor %q", next)
	}

	// A cursor belongs to its start node and must decode.
	first, err := g.Component("c", "", 1)
	if err != nil || first.Next == "" {
		t.Fatalf("Component(c) = %+v, %v", first, err)
	}
	for name, cursor := range map[string]string{
		"another node":  first.Next,
		"bad base64":    "!!",
		"find cursor":   encodeCursor(kindFind, 1, 1),
		"old format":    encodeCursor(kindComponent, 2, 7, 1),
		"truncated":     encodeCursor(kindComponent, 2),
		"index too big": encodeCursor(kindComponent, 2, 1<<32),
	} {
		start := "c"
		if name == "another node" {
			start = "b"
		}
		if _, err := g.Component(start, cursor, 2); !errors.Is(err, ErrBadCursor) {
			t.Errorf("%s: err = %v, want ErrBadCursor", name, err)
		}
	}
	// A cursor past every member gives an empty last page.
	if c, err := g.Component("c", encodeCursor(kindComponent, 2, 1000), 2); err != nil || len(c.IDs) != 0 || c.Next != "" || c.Size != 5 {
		t.Errorf("cursor past the end: %+v, %v", c, err)
	}
}

func TestSortedByID(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	alphabet := []string{"", "\x00", "a", "b", "n", "1", "9", "\xff"}
	var buf []keyed
	for _, n := range []int{0, 1, 2, 63, 64, 65, 1000, 5000} {
		for _, shape := range []string{"numbered", "long prefix", "random"} {
			ids := make([]string, n)
			for i := range ids {
				switch shape {
				case "numbered":
					ids[i] = "n" + strconv.Itoa(r.IntN(1_000_000))
				case "long prefix":
					ids[i] = "user-0000" + strconv.Itoa(r.IntN(100))
				default:
					var b strings.Builder
					for range r.IntN(12) {
						b.WriteString(alphabet[r.IntN(len(alphabet))])
					}
					ids[i] = b.String()
				}
			}
			buf = sortedByID(ids, buf)
			got := make([]string, n)
			for i, k := range buf[:n] {
				got[i] = ids[k.i]
			}
			want := slices.Sorted(slices.Values(ids))
			if !slices.Equal(got, want) {
				t.Errorf("%d %s ids: sortedByID out of order", n, shape)
			}
		}
	}
}
