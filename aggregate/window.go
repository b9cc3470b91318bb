package aggregate

import cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"

// Window remembers the replies to the most recent command ids, oldest
// forgotten first, so that a retried command gets its first answer again.
type Window struct {
	max   int
	m     map[string]*cairnv1.CommandReply
	order []string // ring of ids
	next  int
}

// NewWindow returns a window of max ids.
func NewWindow(max int) *Window {
	return &Window{max: max, m: make(map[string]*cairnv1.CommandReply)}
}

// Get returns the reply remembered for command id.
func (w *Window) Get(id string) (*cairnv1.CommandReply, bool) {
	r, ok := w.m[id]
	return r, ok
}

// Put remembers r under its command id.
func (w *Window) Put(r *cairnv1.CommandReply) {
	id := r.GetCommandId()
	if _, ok := w.m[id]; ok {
		w.m[id] = r
		return
	}
	if len(w.order) < w.max {
		w.order = append(w.order, id)
	} else {
		delete(w.m, w.order[w.next])
		w.order[w.next] = id
		w.next = (w.next + 1) % w.max
	}
	w.m[id] = r
}

// Len counts the replies remembered.
func (w *Window) Len() int { return len(w.order) }

// List returns the replies, oldest first.
func (w *Window) List() []*cairnv1.CommandReply {
	out := make([]*cairnv1.CommandReply, 0, len(w.order))
	for i := range w.order {
		out = append(out, w.m[w.order[(w.next+i)%len(w.order)]])
	}
	return out
}

// Load puts replies, oldest first, into the window; with more than it
// holds, the oldest are forgotten.
func (w *Window) Load(replies []*cairnv1.CommandReply) {
	for _, r := range replies {
		w.Put(r)
	}
}
