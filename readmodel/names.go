package readmodel

// names interns a small set of strings (component types, categories, edge
// types) as dense ids from 0. The zero value is empty and ready.
type names struct {
	ids  map[string]uint32
	list []string
}

func (n *names) lookup(s string) (uint32, bool) {
	id, ok := n.ids[s]
	return id, ok
}

// intern returns s's id, and whether s is new.
func (n *names) intern(s string) (uint32, bool) {
	if id, ok := n.ids[s]; ok {
		return id, false
	}
	if n.ids == nil {
		n.ids = map[string]uint32{}
	}
	id := uint32(len(n.list))
	n.ids[s] = id
	n.list = append(n.list, s)
	return id, true
}

func (n *names) name(id uint32) string { return n.list[id] }

func (n *names) len() int { return len(n.list) }
