package actors

import cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"

// Test hooks into the aggregate's internals, compiled only into this
// package's tests.

// ComponentRefs returns, for each interned component, "type=value" and how
// many nodes and edges hold it.
func (s *State) ComponentRefs() map[string]int {
	out := make(map[string]int, len(s.comps.m))
	for k, e := range s.comps.m {
		out[k.typ+"="+k.value] = e.refs
	}
	return out
}

// Interned returns the shared copy of component (typ, value), nil when no
// one holds it.
func (s *State) Interned(typ string, value []byte) *cairnv1.Component {
	if e, ok := s.comps.m[componentKey{typ, string(value)}]; ok {
		return e.c
	}
	return nil
}

// Begin, Mark, Rollback and Commit drive the speculative batch the way a
// graph grain does during group commit.
func (s *State) Begin()         { s.begin() }
func (s *State) Mark() int      { return s.mark() }
func (s *State) Rollback(m int) { s.rollback(m) }
func (s *State) Commit()        { s.commit() }
