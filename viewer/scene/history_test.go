package scene

import (
	"fmt"
	"math/rand/v2"
	"slices"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func nodeAdded(id string, cats ...string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id, Categories: cats}}}
}

func nodeAddedWith(id, typ, value string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id,
		Components: []*cairnv1.Component{{Type: typ, Value: []byte(value)}}}}}
}

func componentSet(id, typ, value string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{
		NodeId: id, Set: []*cairnv1.Component{{Type: typ, Value: []byte(value)}}}}}
}

func componentRemoved(id, typ string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{
		NodeId: id, RemovedTypes: []string{typ}}}}
}

func nodeRemoved(id string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: id}}}
}

func edgeAdded(id, from, to string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: id, Source: from, Target: to}}}
}

func edgeRemoved(id, from, to string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{EdgeId: id, Source: from, Target: to}}}
}

// history makes seeded random transactions that a graph could hold, and
// keeps a naive reference of the slots a scene must give: the lowest free
// slot, found by a linear scan.
type history struct {
	r        *rand.Rand
	next     int
	nodes    []string            // node slot -> id ("" free)
	edges    [][3]string         // edge slot -> id, from, to (id "" free)
	incident map[string][]string // node id -> edge ids
}

func newHistory(seed uint64) *history {
	return &history{r: rand.New(rand.NewPCG(seed, 7)), incident: map[string][]string{}}
}

func lowest[T any](slots []T, free func(T) bool) int {
	for i, v := range slots {
		if free(v) {
			return i
		}
	}
	return len(slots)
}

func (h *history) addNode(id string) {
	i := lowest(h.nodes, func(s string) bool { return s == "" })
	if i == len(h.nodes) {
		h.nodes = append(h.nodes, "")
	}
	h.nodes[i] = id
}

func (h *history) liveNodes() []string {
	var out []string
	for _, n := range h.nodes {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

func (h *history) liveEdges() []int {
	var out []int
	for i, e := range h.edges {
		if e[0] != "" {
			out = append(out, i)
		}
	}
	return out
}

func (h *history) removeEdge(i int) *cairnv1.Event {
	e := h.edges[i]
	h.edges[i] = [3]string{}
	for _, n := range []string{e[1], e[2]} {
		h.incident[n] = slices.DeleteFunc(h.incident[n], func(x string) bool { return x == e[0] })
	}
	return edgeRemoved(e[0], e[1], e[2])
}

// tx returns the next transaction.
func (h *history) tx() []*cairnv1.Event {
	var evs []*cairnv1.Event
	for range 1 + h.r.IntN(6) {
		live := h.liveNodes()
		switch k := h.r.IntN(10); {
		case k < 4 || len(live) < 2:
			h.next++
			id := fmt.Sprintf("n%d", h.next)
			h.addNode(id)
			cats := []string{"person", "place", "thing", "idea"}[:h.r.IntN(4)]
			ev := nodeAdded(id, cats...)
			if h.r.IntN(2) == 0 {
				ev.GetNodeAdded().Components = []*cairnv1.Component{{Type: "colour", Value: []byte{byte(h.r.IntN(5))}}}
			}
			evs = append(evs, ev)
		case k < 7:
			h.next++
			id := fmt.Sprintf("e%d", h.next)
			a, b := live[h.r.IntN(len(live))], live[h.r.IntN(len(live))]
			i := lowest(h.edges, func(e [3]string) bool { return e[0] == "" })
			if i == len(h.edges) {
				h.edges = append(h.edges, [3]string{})
			}
			h.edges[i] = [3]string{id, a, b}
			h.incident[a] = append(h.incident[a], id)
			if a != b {
				h.incident[b] = append(h.incident[b], id)
			}
			evs = append(evs, edgeAdded(id, a, b))
		case k < 8:
			if le := h.liveEdges(); len(le) > 0 {
				evs = append(evs, h.removeEdge(le[h.r.IntN(len(le))]))
			}
		case k < 9:
			n := live[h.r.IntN(len(live))]
			for len(h.incident[n]) > 0 {
				id := h.incident[n][0]
				i := slices.IndexFunc(h.edges, func(e [3]string) bool { return e[0] == id })
				evs = append(evs, h.removeEdge(i))
			}
			h.nodes[slices.Index(h.nodes, n)] = ""
			evs = append(evs, nodeRemoved(n))
		default:
			n := live[h.r.IntN(len(live))]
			if h.r.IntN(3) == 0 {
				evs = append(evs, componentRemoved(n, "colour"))
			} else {
				evs = append(evs, componentSet(n, "colour", string([]byte{byte(h.r.IntN(5))})))
			}
		}
	}
	return evs
}
