package actors

import cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"

// resultWindow remembers the results of the most recent command ids, oldest
// forgotten first.
type resultWindow struct {
	max   int
	m     map[string]*cairnv1.CommandReply
	order []string // ring of ids
	next  int
}

func newResultWindow(max int) *resultWindow {
	return &resultWindow{max: max, m: make(map[string]*cairnv1.CommandReply)}
}

func (w *resultWindow) get(id string) (*cairnv1.CommandReply, bool) {
	r, ok := w.m[id]
	return r, ok
}

func (w *resultWindow) put(r *cairnv1.CommandReply) {
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
