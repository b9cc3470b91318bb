package cmdtest

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Snapshot is everything observable about a State, in comparable form.
type Snapshot struct {
	Exists, Deleted bool
	Nodes           map[string]NodeSnap
	Edges           map[string]EdgeSnap
	Distinct        int
	Refs            map[string]int // "type=value" -> holders
	// Invalid is why the state's own bookkeeping does not hold together
	// (its encoding does not decode), "" when it does.
	Invalid string
}

type NodeSnap struct {
	Comps map[string]string // type -> value
	Cats  []string
}

type EdgeSnap struct {
	Source, Target, Type string
	Comps                map[string]string
}

func CompMap(cs []*cairnv1.Component) map[string]string {
	m := make(map[string]string, len(cs))
	for _, c := range cs {
		m[c.GetType()] = string(c.GetValue())
	}
	return m
}

// TakeSnapshot renders s through its public API. Refs counts the holders
// of each component as the nodes and edges report them; that the state's
// own reference counts agree (and that it keeps no component nobody holds)
// is checked by decoding its encoding, which verifies both: Invalid says
// why it would not decode.
func TakeSnapshot(s *aggregate.State) Snapshot {
	sn := Snapshot{Exists: s.Exists(), Deleted: s.Deleted(), Nodes: map[string]NodeSnap{}, Edges: map[string]EdgeSnap{},
		Distinct: s.DistinctComponents(), Refs: map[string]int{}}
	count := func(cs []*cairnv1.Component) {
		for _, c := range cs {
			sn.Refs[c.GetType()+"="+string(c.GetValue())]++
		}
	}
	for _, id := range s.NodeIDs() {
		cs, cats, _ := s.Node(id)
		var cl []string // nil when there are none, as in the reference model
		if len(cats) > 0 {
			cl = slices.Clone(cats)
		}
		sn.Nodes[id] = NodeSnap{Comps: CompMap(cs), Cats: cl}
		count(cs)
	}
	for _, id := range s.EdgeIDs() {
		src, dst, typ, cs, _ := s.Edge(id)
		sn.Edges[id] = EdgeSnap{Source: src, Target: dst, Type: typ, Comps: CompMap(cs)}
		count(cs)
	}
	if s.Recording() {
		return sn // a batch in the middle: the encoding waits for its commit
	}
	data, err := aggregate.Marshal(s, nil)
	if err == nil {
		_, _, err = aggregate.Unmarshal(data)
	}
	if err != nil {
		sn.Invalid = err.Error()
	}
	return sn
}

// DiffSnapshots names the first difference between two snapshots, "" when
// they are equal.
func DiffSnapshots(got, want Snapshot) string {
	switch {
	case got.Invalid != "":
		return "the state does not hold together: " + got.Invalid
	case want.Invalid != "":
		return "the reference state does not hold together: " + want.Invalid
	case got.Exists != want.Exists || got.Deleted != want.Deleted:
		return "exists/deleted differ"
	case !slices.Equal(slices.Sorted(maps.Keys(got.Nodes)), slices.Sorted(maps.Keys(want.Nodes))):
		return "node ids differ: got " + quoteKeys(got.Nodes) + ", want " + quoteKeys(want.Nodes)
	case !slices.Equal(slices.Sorted(maps.Keys(got.Edges)), slices.Sorted(maps.Keys(want.Edges))):
		return "edge ids differ: got " + quoteKeys(got.Edges) + ", want " + quoteKeys(want.Edges)
	}
	for id, n := range want.Nodes {
		g := got.Nodes[id]
		if !maps.Equal(g.Comps, n.Comps) || !slices.Equal(g.Cats, n.Cats) {
			return "node " + id + " differs"
		}
	}
	for id, e := range want.Edges {
		g := got.Edges[id]
		if g.Source != e.Source || g.Target != e.Target || g.Type != e.Type || !maps.Equal(g.Comps, e.Comps) {
			return "edge " + id + " differs"
		}
	}
	if got.Distinct != want.Distinct {
		return "distinct components differ"
	}
	if want.Refs != nil && !maps.Equal(got.Refs, want.Refs) {
		return "component reference counts differ"
	}
	return ""
}

func quoteKeys[V any](m map[string]V) string {
	s := "["
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			s += " "
		}
		s += k
	}
	return s + "]"
}

// MustDecide decides env on s and fails the test when it is refused.
func MustDecide(t testing.TB, s *aggregate.State, env *cairnv1.CommandEnvelope) []*cairnv1.Event {
	t.Helper()
	if err := aggregate.ValidateEnvelope(env); err != nil {
		t.Fatalf("validate %s: %v", env.GetCommandId(), err)
	}
	evs, err := aggregate.DecideEnvelope(s, env)
	if err != nil {
		t.Fatalf("decide %s: %v", env.GetCommandId(), err)
	}
	return evs
}

// WantCommandError checks that err is a *CommandError with code and field
// that matches sentinel with errors.Is (and no other sentinel).
func WantCommandError(t *testing.T, err error, code cairnv1.ErrorCode, field string, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v at %q", code, field)
	}
	var ce *aggregate.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %T %v, want *aggregate.CommandError", err, err)
	}
	if ce.Code != code || ce.Field != field {
		t.Fatalf("err = %v (code %v, field %q), want code %v, field %q", err, ce.Code, ce.Field, code, field)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("errors.Is(%v, %v) = false", err, sentinel)
	}
	for _, other := range AllSentinels {
		if other != sentinel && errors.Is(err, other) {
			t.Fatalf("errors.Is(%v, %v) = true; only %v should match", err, other, sentinel)
		}
	}
}

var AllSentinels = []error{
	aggregate.ErrInvalidArgument, aggregate.ErrNotFound, aggregate.ErrAlreadyExists, aggregate.ErrFailedPrecondition,
	aggregate.ErrConflict, aggregate.ErrUnavailable, aggregate.ErrInternal,
}

const (
	CodeInvalid      = cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT
	CodeNotFound     = cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND
	CodeExists       = cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS
	CodePrecondition = cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION
	CodeConflict     = cairnv1.ErrorCode_ERROR_CODE_CONFLICT
	CodeUnavailable  = cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE
	CodeInternal     = cairnv1.ErrorCode_ERROR_CODE_INTERNAL
)
