package readmodel

import (
	"slices"
	"strings"
	"testing"
)

func TestMeet(t *testing.T) {
	g := buildSpec(t, "a b c d e x a>b b>c c>d d>e")
	walk := func(dir Direction, seeds string, dists []int, maxDist int) LocalSearch {
		return LocalSearch{Seeds: strings.Fields(seeds), Dists: dists, Dir: dir, MaxDist: maxDist}
	}
	for _, c := range []struct {
		name      string
		fwd, back LocalSearch
		met       bool
		node      string
		dist      int
		missing   []int
	}{
		{"balls touch", walk(Out, "a", []int{0}, 2), walk(In, "e", []int{0}, 2), true, "c", 4, nil},
		{"balls apart", walk(Out, "a", []int{0}, 1), walk(In, "e", []int{0}, 2), false, "", 0, nil},
		{"bound 0 is a bound", walk(Out, "a", []int{0}, 0), walk(In, "b", []int{0}, 0), false, "", 0, nil},
		{"same node at 0", walk(Out, "a", []int{0}, 0), walk(In, "a", []int{0}, 0), true, "a", 0, nil},
		{"seeds at their distances, least index among equals", walk(Out, "b", []int{3}, 4), walk(In, "d", []int{1}, 3), true, "b", 6, nil},
		{"missing seed", walk(Out, "zz a", []int{0, 0}, 4), walk(In, "x", []int{0}, 4), false, "", 0, []int{0}},
		{"both ways", walk(Both, "e", []int{0}, 2), walk(Both, "a", []int{0}, 2), true, "c", 4, nil},
	} {
		m, err := g.Meet(c.fwd, c.back)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if m.Met != c.met || m.Node != c.node || m.Dist != c.dist || !slices.Equal(m.Fwd.MissingSeeds, c.missing) {
			t.Errorf("%s: met %v node %q dist %d missing %v, want %v %q %d %v", c.name, m.Met, m.Node, m.Dist, m.Fwd.MissingSeeds, c.met, c.node, c.dist, c.missing)
		}
	}
}
