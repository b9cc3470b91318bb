package aggregate

import "github.com/cairn-graph/cairn/internal/intern"

// names interns a set of strings that only grows (component types,
// categories, edge types) as dense ids from 0, in an intern table: no Go
// object per name.
type names struct{ t *intern.Table }

func newNames() names { return names{t: intern.New()} }

func (n names) lookup(s string) (uint32, bool) { return n.t.Lookup(s) }

// intern returns s's id, storing s if new.
func (n names) intern(s string) uint32 {
	if id, ok := n.t.Lookup(s); ok {
		return id
	}
	id := uint32(n.t.Cap())
	n.t.Set(id, s)
	return id
}

func (n names) name(id uint32) string { return n.t.String(id) }

func (n names) len() int { return n.t.Len() }

func (n names) bytes() int { return n.t.Bytes() }
