package readmodel

import (
	"slices"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// dedupe keeps the last component of each type in order of first
// appearance, and hands back its input when no type repeats.
func TestDedupe(t *testing.T) {
	c := func(typ, val string) *cairnv1.Component { return &cairnv1.Component{Type: typ, Value: []byte(val)} }
	a1, b1, a2, c1, b2 := c("a", "1"), c("b", "1"), c("a", "2"), c("c", "1"), c("b", "2")
	for _, tc := range []struct {
		name string
		in   []*cairnv1.Component
		want []*cairnv1.Component
		same bool // the input itself comes back
	}{
		{"none", nil, nil, true},
		{"one", []*cairnv1.Component{a1}, []*cairnv1.Component{a1}, true},
		{"distinct", []*cairnv1.Component{a1, b1, c1}, []*cairnv1.Component{a1, b1, c1}, true},
		{"repeated first", []*cairnv1.Component{a1, b1, a2}, []*cairnv1.Component{a2, b1}, false},
		{"repeated last", []*cairnv1.Component{a1, b1, c1, b2}, []*cairnv1.Component{a1, b2, c1}, false},
	} {
		got := dedupe(tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: dedupe = %v, want %v", tc.name, got, tc.want)
		}
		if same := len(tc.in) > 0 && &got[0] == &tc.in[0]; len(tc.in) > 0 && same != tc.same {
			t.Errorf("%s: returned its input: %v, want %v", tc.name, same, tc.same)
		}
	}
}
