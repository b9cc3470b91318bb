package aggregate

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TypeRules is a registered graph type's behaviour in Decide.
type TypeRules interface {
	// ValidateCreate checks a CreateGraph of the type (graph_type, metadata) before the graph exists; field is the command's field path.
	ValidateCreate(field string, cg *cairnv1.CreateGraph) error
	// Decide decides cmd on s, a live graph of the type. base runs the untyped decision for cmd (what Decide does today); the rules call it and check or extend its events, or refuse without calling it. The returned events are applied in order by DecideEnvelope; Decide must not change s.
	Decide(s *State, prefix string, cmd *cairnv1.Command, base func() ([]*cairnv1.Event, error)) ([]*cairnv1.Event, error)
}

// registeredType is one entry of the registry.
type registeredType struct {
	t     *cairnv1.GraphType
	rules TypeRules
}

// registry holds the graph types, by name. Types register from init
// functions (workflow.go, relationship.go, authz.go) and are only read
// afterwards; the lock keeps a late RegisterType (a test's) safe.
var registry = struct {
	sync.RWMutex
	m map[string]registeredType
}{m: map[string]registeredType{}}

// RegisterType adds a type; it panics on a duplicate name.
func RegisterType(t *cairnv1.GraphType, rules TypeRules) {
	if t.GetName() == "" || rules == nil {
		panic("aggregate.RegisterType: a type needs a name and rules")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, ok := registry.m[t.GetName()]; ok {
		panic(fmt.Sprintf("aggregate.RegisterType: graph type %q is already registered", t.GetName()))
	}
	registry.m[t.GetName()] = registeredType{t: proto.Clone(t).(*cairnv1.GraphType), rules: rules}
}

// Types returns the registered types sorted by name; LookupType one by name.
// The messages are copies: changing them changes no rule.
func Types() []*cairnv1.GraphType {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]*cairnv1.GraphType, 0, len(registry.m))
	for _, r := range registry.m {
		out = append(out, proto.Clone(r.t).(*cairnv1.GraphType))
	}
	slices.SortFunc(out, func(a, b *cairnv1.GraphType) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// LookupType returns the registered type named name and its rules.
func LookupType(name string) (*cairnv1.GraphType, TypeRules, bool) {
	r, ok := lookupRules(name)
	if !ok {
		return nil, nil, false
	}
	return proto.Clone(r.t).(*cairnv1.GraphType), r.rules, true
}

func lookupRules(name string) (registeredType, bool) {
	if name == "" {
		return registeredType{}, false
	}
	registry.RLock()
	defer registry.RUnlock()
	r, ok := registry.m[name]
	return r, ok
}

// Rules returns the rules s is decided under: those of its registered
// type, or nil for an untyped graph.
func (s *State) Rules() TypeRules { return s.rules }

// bindRules looks up the rules of s's type, when the graph exists; Apply
// of GraphCreated and Unmarshal call it.
func (s *State) bindRules() {
	s.rules = nil
	if r, ok := lookupRules(s.typ); ok {
		s.rules = r.rules
	}
}

// decideTyped routes cmd through the rules of s's type; Decide calls it
// for a live typed graph, for every command but CreateGraph.
func decideTyped(s *State, prefix string, cmd *cairnv1.Command) ([]*cairnv1.Event, error) {
	return s.rules.Decide(s, prefix, cmd, func() ([]*cairnv1.Event, error) { return decideBase(s, prefix, cmd) })
}

// validateCreate runs the ValidateCreate of cg's type, when it is
// registered.
func validateCreate(field string, cg *cairnv1.CreateGraph) error {
	if r, ok := lookupRules(cg.GetGraphType()); ok {
		return r.rules.ValidateCreate(field, cg)
	}
	return nil
}
