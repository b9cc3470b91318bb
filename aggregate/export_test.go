package aggregate

import "strings"

// Test hooks into the state's internals, compiled only into this package's
// tests.

// ComponentRefs returns, for each stored component, "type=value" and how
// many nodes and edges hold it.
func (s *State) ComponentRefs() map[string]int {
	out := map[string]int{}
	for h := range s.comps.t.Cap() {
		if !s.comps.t.Has(uint32(h)) || s.comps.refs.Get(h) == 0 { // freed, or held for a rollback
			continue
		}
		typ, value, _ := strings.Cut(s.comps.key(uint32(h)), "\x00")
		out[typ+"="+value] = int(s.comps.refs.Get(h))
	}
	return out
}

// ComponentHandle returns the handle component (typ, value) is stored
// under, false when no one holds it.
func (s *State) ComponentHandle(typ string, value []byte) (uint32, bool) {
	var buf [64]byte
	return s.comps.t.Lookup(string(componentKey(buf[:0], typ, value)))
}

// Check runs the checks Unmarshal and Verify run: "" when the state holds
// together.
func (s *State) Check() string {
	if msg := s.check(); msg != "" {
		return msg
	}
	return s.checkLists()
}

// CmdField is cmdField, the field path of an envelope's command i.
func CmdField(i int) string { return cmdField(i) }
