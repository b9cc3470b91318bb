package aggregate_test

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// snapshot is everything observable about a State, in comparable form.
type snapshot struct {
	Exists, Deleted bool
	Nodes           map[string]nodeSnap
	Edges           map[string]edgeSnap
	Distinct        int
	Refs            map[string]int // "type=value" -> holders
}

type nodeSnap struct {
	Comps map[string]string // type -> value
	Cats  []string
}

type edgeSnap struct {
	Source, Target, Type string
	Comps                map[string]string
}

func compMap(cs []*cairnv1.Component) map[string]string {
	m := make(map[string]string, len(cs))
	for _, c := range cs {
		m[c.GetType()] = string(c.GetValue())
	}
	return m
}

func takeSnapshot(s *aggregate.State) snapshot {
	sn := snapshot{Exists: s.Exists(), Deleted: s.Deleted(), Nodes: map[string]nodeSnap{}, Edges: map[string]edgeSnap{},
		Distinct: s.DistinctComponents(), Refs: s.ComponentRefs()}
	for _, id := range s.NodeIDs() {
		cs, cats, _ := s.Node(id)
		var cl []string // nil when there are none, as in the reference model
		if len(cats) > 0 {
			cl = slices.Clone(cats)
		}
		sn.Nodes[id] = nodeSnap{Comps: compMap(cs), Cats: cl}
	}
	for _, id := range s.EdgeIDs() {
		src, dst, typ, cs, _ := s.Edge(id)
		sn.Edges[id] = edgeSnap{Source: src, Target: dst, Type: typ, Comps: compMap(cs)}
	}
	return sn
}

// diffSnapshots names the first difference between two snapshots, "" when
// they are equal.
func diffSnapshots(got, want snapshot) string {
	switch {
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

// mustDecide decides env on s and fails the test when it is refused.
func mustDecide(t testing.TB, s *aggregate.State, env *cairnv1.CommandEnvelope) []*cairnv1.Event {
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

// wantCommandError checks that err is a *CommandError with code and field
// that matches sentinel with errors.Is (and no other sentinel).
func wantCommandError(t *testing.T, err error, code cairnv1.ErrorCode, field string, sentinel error) {
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
	for _, other := range allSentinels {
		if other != sentinel && errors.Is(err, other) {
			t.Fatalf("errors.Is(%v, %v) = true; only %v should match", err, other, sentinel)
		}
	}
}

var allSentinels = []error{
	aggregate.ErrInvalidArgument, aggregate.ErrNotFound, aggregate.ErrAlreadyExists, aggregate.ErrFailedPrecondition,
	aggregate.ErrConflict, aggregate.ErrUnavailable, aggregate.ErrInternal,
}

const (
	codeInvalid      = cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT
	codeNotFound     = cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND
	codeExists       = cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS
	codePrecondition = cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION
	codeConflict     = cairnv1.ErrorCode_ERROR_CODE_CONFLICT
	codeUnavailable  = cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE
	codeInternal     = cairnv1.ErrorCode_ERROR_CODE_INTERNAL
)
