package main

import (
	"encoding/json"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Event builders for diffStates' table.
func evCreate() *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{GraphId: "g"}}}
}

func evDelete() *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: &cairnv1.GraphDeleted{}}}
}

func evNode(id string, cats []string, kv ...string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id, Components: comps(kv...), Categories: cats}}}
}

func evSet(id string, unset []string, kv ...string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{NodeId: id, Set: comps(kv...), RemovedTypes: unset}}}
}

func evRemoveNode(id string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: id}}}
}

func evEdge(id, src, dst, typ string, kv ...string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: id, Source: src, Target: dst, EdgeType: typ, Components: comps(kv...)}}}
}

func evRemoveEdge(id, src, dst string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{EdgeId: id, Source: src, Target: dst}}}
}

func comps(kv ...string) []*cairnv1.Component {
	var out []*cairnv1.Component
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &cairnv1.Component{Type: kv[i], Value: []byte(kv[i+1])})
	}
	return out
}

func stateOf(t *testing.T, evs ...*cairnv1.Event) *aggregate.State {
	t.Helper()
	s := aggregate.NewState("g")
	for i, ev := range evs {
		if err := aggregate.Apply(s, ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	return s
}

func TestDiffStates(t *testing.T) {
	base := []*cairnv1.Event{
		evCreate(),
		evNode("a", []string{"pkg"}, "v", "1", "name", "A"),
		evNode("b", nil),
		evNode("c", []string{"x", "y"}),
		evEdge("e1", "a", "b", "dep", "w", "3"),
		evEdge("e2", "b", "c", ""),
	}
	tests := []struct {
		name  string
		a, b  []*cairnv1.Event // b's events follow a's
		nilA  bool
		want  string // the diff as JSON
		sum   string
		empty bool
	}{
		{
			name: "nothing changed", a: base, empty: true,
			want: `{"graph_change":"","nodes":{"added":[],"removed":[],"changed":[]},"edges":{"added":[],"removed":[],"changed":[]}}`,
			sum:  "nodes +0 -0 ~0, edges +0 -0 ~0",
		},
		{
			name: "from the empty graph", nilA: true, b: base,
			want: `{"graph_change":"created","nodes":{"added":[` +
				`{"id":"a","components":[{"type":"name","value":"A"},{"type":"v","value":"1"}],"categories":["pkg"]},` +
				`{"id":"b"},{"id":"c","categories":["x","y"]}],"removed":[],"changed":[]},` +
				`"edges":{"added":[{"id":"e1","source":"a","target":"b","type":"dep","components":[{"type":"w","value":"3"}]},` +
				`{"id":"e2","source":"b","target":"c"}],"removed":[],"changed":[]}}`,
			sum: "graph created, nodes +3 -0 ~0, edges +2 -0 ~0",
		},
		{
			name: "components set, replaced and removed",
			a:    base, b: []*cairnv1.Event{evSet("a", []string{"name"}, "v", "2", "new", "n"), evSet("b", nil, "bin", "\xff\x00")},
			want: `{"graph_change":"","nodes":{"added":[],"removed":[],"changed":[` +
				`{"id":"a","components":[{"type":"name","from":"A"},{"type":"new","to":"n"},{"type":"v","from":"1","to":"2"}]},` +
				`{"id":"b","components":[{"type":"bin","to_base64":"/wA="}]}]},` +
				`"edges":{"added":[],"removed":[],"changed":[]}}`,
			sum: "nodes +0 -0 ~2, edges +0 -0 ~0",
		},
		{
			name: "node removed with its edges, node added",
			a:    base, b: []*cairnv1.Event{evRemoveEdge("e1", "a", "b"), evRemoveEdge("e2", "b", "c"), evRemoveNode("b"), evNode("d", []string{"z"})},
			want: `{"graph_change":"","nodes":{"added":[{"id":"d","categories":["z"]}],"removed":[{"id":"b"}],"changed":[]},` +
				`"edges":{"added":[],"removed":[{"id":"e1","source":"a","target":"b","type":"dep","components":[{"type":"w","value":"3"}]},` +
				`{"id":"e2","source":"b","target":"c"}],"changed":[]}}`,
			sum: "nodes +1 -1 ~0, edges +0 -2 ~0",
		},
		{
			name: "edge re-added with other endpoints, type and components; categories",
			a:    base, b: []*cairnv1.Event{evRemoveEdge("e1", "a", "b"), evRemoveEdge("e2", "b", "c"),
				evRemoveNode("c"), evNode("c", []string{"y", "q"}), evEdge("e1", "c", "a", "uses", "w", "4")},
			want: `{"graph_change":"","nodes":{"added":[],"removed":[],"changed":[{"id":"c","categories_added":["q"],"categories_removed":["x"]}]},` +
				`"edges":{"added":[],"removed":[{"id":"e2","source":"b","target":"c"}],"changed":[` +
				`{"id":"e1","source":{"from":"a","to":"c"},"target":{"from":"b","to":"a"},"type":{"from":"dep","to":"uses"},"components":[{"type":"w","from":"3","to":"4"}]}]}}`,
			sum: "nodes +0 -0 ~1, edges +0 -1 ~1",
		},
		{
			name: "graph deleted",
			a:    base, b: []*cairnv1.Event{evDelete()},
			want: `{"graph_change":"deleted","nodes":{"added":[],"removed":[],"changed":[]},"edges":{"added":[],"removed":[],"changed":[]}}`,
			sum:  "graph deleted, nodes +0 -0 ~0, edges +0 -0 ~0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a *aggregate.State
			if !tt.nilA {
				a = stateOf(t, tt.a...)
			}
			b := stateOf(t, append(append([]*cairnv1.Event{}, tt.a...), tt.b...)...)
			d := diffStates(a, b)
			got, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("diff:\n got  %s\n want %s", got, tt.want)
			}
			if s := d.summary(); s != tt.sum {
				t.Errorf("summary %q, want %q", s, tt.sum)
			}
			if d.empty() != tt.empty {
				t.Errorf("empty %v, want %v", d.empty(), tt.empty)
			}
			// The reverse diff swaps added and removed.
			if a != nil {
				r := diffStates(b, a)
				if len(r.Nodes.Added) != len(d.Nodes.Removed) || len(r.Nodes.Removed) != len(d.Nodes.Added) ||
					len(r.Edges.Added) != len(d.Edges.Removed) || len(r.Edges.Removed) != len(d.Edges.Added) ||
					len(r.Nodes.Changed) != len(d.Nodes.Changed) || len(r.Edges.Changed) != len(d.Edges.Changed) {
					t.Errorf("reverse diff does not mirror: %s", r.summary())
				}
			}
		})
	}
}

func TestParsePoint(t *testing.T) {
	tests := []struct {
		in               string
		seq, isTime, bad bool
		wantSeq          uint64
	}{
		{in: "0", seq: true},
		{in: "12", seq: true, wantSeq: 12},
		{in: "2026-11-27T20:43:12Z", isTime: true},
		{in: "2026-11-27T20:43:12.123456789+01:00", isTime: true},
		{in: someCID(t)},
		{in: "", bad: true},
		{in: "-3", bad: true},
		{in: "yesterday", bad: true},
		{in: "99999999999999999999999", bad: true},
		{in: "2026-11-27", bad: true},
	}
	for _, tt := range tests {
		p, err := parsePoint("--x", tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("%q: no error", tt.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if p.isSeq != tt.seq || p.isTime != tt.isTime || p.isCID != (!tt.seq && !tt.isTime) || p.seq != tt.wantSeq {
			t.Errorf("%q: %+v", tt.in, p)
		}
		if p.asOf() == nil || p.asOf().GetPoint() == nil {
			t.Errorf("%q: no as_of", tt.in)
		}
	}
}

// someCID is a valid event CID.
func someCID(t *testing.T) string {
	t.Helper()
	c, err := cid.Cast(persistence.EventCID([]byte{0xa0}))
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}
