package aggregate

import (
	"sync"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// GraphType is a stand-in for the types.proto GraphType message that the
// graph-types work declares: the registry keys types by Name. (The two
// branches merge by replacing it with *cairnv1.GraphType.)
type GraphType struct {
	Name        string
	Description string
}

// TypeRules are the rules of a registered graph type, which Decide
// enforces on graphs created with that type.
type TypeRules interface {
	// ValidateCreate checks a CreateGraph of the type (its metadata, for
	// example); field is the path of the create_graph command.
	ValidateCreate(field string, cg *cairnv1.CreateGraph) error
	// Decide decides cmd on a live graph of the type. base decides it as
	// an untyped graph would; rules may call it, refine its events, or
	// refuse the command.
	Decide(s *State, prefix string, cmd *cairnv1.Command, base func() ([]*cairnv1.Event, error)) ([]*cairnv1.Event, error)
}

type registered struct {
	t     *GraphType
	rules TypeRules
}

var (
	typesMu sync.RWMutex
	types   = map[string]registered{}
)

// RegisterType registers a graph type under t.Name, replacing any earlier
// registration of the name. Types register from init functions.
func RegisterType(t *GraphType, rules TypeRules) {
	typesMu.Lock()
	defer typesMu.Unlock()
	types[t.Name] = registered{t, rules}
}

// LookupType returns the registered type of a name.
func LookupType(name string) (*GraphType, TypeRules, bool) {
	if name == "" {
		return nil, nil, false
	}
	typesMu.RLock()
	defer typesMu.RUnlock()
	r, ok := types[name]
	return r.t, r.rules, ok
}
