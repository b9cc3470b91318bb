package aggregate_test

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// baseState is graph "g" with nodes a, b, c (a carries color=red and size=1),
// edge ab from a to b and edge self from c to c.
func baseState(t *testing.T) *aggregate.State {
	t.Helper()
	s := aggregate.NewState("g")
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "setup", cmdtest.CreateGraph(),
		cmdtest.AddNode("a", cmdtest.Comp("color", "red"), cmdtest.Comp("size", "1")), cmdtest.AddNodeCats("b", "lib"), cmdtest.AddNode("c"),
		cmdtest.Connect("ab", "a", "b"), cmdtest.Connect("self", "c", "c")))
	return s
}

func TestDecideRefusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		state    func(t *testing.T) *aggregate.State
		cmds     []*cairnv1.Command
		code     cairnv1.ErrorCode
		field    string
		sentinel error
	}{
		{"graph not found", func(*testing.T) *aggregate.State { return aggregate.NewState("g") },
			[]*cairnv1.Command{cmdtest.AddNode("a")}, cmdtest.CodeNotFound, "graph_id", aggregate.ErrNotFound},
		{"delete a graph that does not exist", func(*testing.T) *aggregate.State { return aggregate.NewState("g") },
			[]*cairnv1.Command{cmdtest.DeleteGraph()}, cmdtest.CodeNotFound, "graph_id", aggregate.ErrNotFound},
		{"graph deleted", deletedState, []*cairnv1.Command{cmdtest.AddNode("x")}, cmdtest.CodePrecondition, "graph_id", aggregate.ErrFailedPrecondition},
		{"delete twice", deletedState, []*cairnv1.Command{cmdtest.DeleteGraph()}, cmdtest.CodePrecondition, "graph_id", aggregate.ErrFailedPrecondition},
		{"create twice", baseState, []*cairnv1.Command{cmdtest.CreateGraph()}, cmdtest.CodeExists, "commands[0].create_graph.graph_id", aggregate.ErrAlreadyExists},
		{"create after delete", deletedState, []*cairnv1.Command{cmdtest.CreateGraph()}, cmdtest.CodeExists, "commands[0].create_graph.graph_id", aggregate.ErrAlreadyExists},
		{"create twice in one envelope", func(*testing.T) *aggregate.State { return aggregate.NewState("g") },
			[]*cairnv1.Command{cmdtest.CreateGraph(), cmdtest.CreateGraph()}, cmdtest.CodeExists, "commands[1].create_graph.graph_id", aggregate.ErrAlreadyExists},
		{"duplicate node", baseState, []*cairnv1.Command{cmdtest.AddNode("a")}, cmdtest.CodeExists, "commands[0].add_node.node_id", aggregate.ErrAlreadyExists},
		{"duplicate node in one envelope", baseState, []*cairnv1.Command{cmdtest.AddNode("x"), cmdtest.AddNode("x")}, cmdtest.CodeExists, "commands[1].add_node.node_id", aggregate.ErrAlreadyExists},
		{"duplicate edge", baseState, []*cairnv1.Command{cmdtest.Connect("ab", "b", "c")}, cmdtest.CodeExists, "commands[0].connect_nodes.edge_id", aggregate.ErrAlreadyExists},
		{"missing source", baseState, []*cairnv1.Command{cmdtest.Connect("e", "zz", "b")}, cmdtest.CodeNotFound, "commands[0].connect_nodes.source", aggregate.ErrNotFound},
		{"missing target", baseState, []*cairnv1.Command{cmdtest.AddNode("x"), cmdtest.Connect("e", "x", "zz")}, cmdtest.CodeNotFound, "commands[1].connect_nodes.target", aggregate.ErrNotFound},
		{"endpoint removed earlier in the envelope", baseState, []*cairnv1.Command{cmdtest.RemoveNode("b"), cmdtest.Connect("e", "a", "b")},
			cmdtest.CodeNotFound, "commands[1].connect_nodes.target", aggregate.ErrNotFound},
		{"set components on a missing node", baseState, []*cairnv1.Command{cmdtest.SetComps("zz", cmdtest.Comp("t", "v"))},
			cmdtest.CodeNotFound, "commands[0].set_node_components.node_id", aggregate.ErrNotFound},
		{"remove components of a missing node", baseState, []*cairnv1.Command{cmdtest.RemoveComps("zz", "color")},
			cmdtest.CodeNotFound, "commands[0].remove_node_components.node_id", aggregate.ErrNotFound},
		{"remove an absent component type", baseState, []*cairnv1.Command{cmdtest.RemoveComps("a", "color", "weight")},
			cmdtest.CodeNotFound, "commands[0].remove_node_components.types[1]", aggregate.ErrNotFound},
		{"remove a component type removed earlier in the envelope", baseState,
			[]*cairnv1.Command{cmdtest.RemoveComps("a", "color"), cmdtest.RemoveComps("a", "size", "color")},
			cmdtest.CodeNotFound, "commands[1].remove_node_components.types[1]", aggregate.ErrNotFound},
		{"remove a missing node", baseState, []*cairnv1.Command{cmdtest.RemoveNode("zz")}, cmdtest.CodeNotFound, "commands[0].remove_node.node_id", aggregate.ErrNotFound},
		{"remove a node twice", baseState, []*cairnv1.Command{cmdtest.RemoveNode("a"), cmdtest.RemoveNode("a")}, cmdtest.CodeNotFound, "commands[1].remove_node.node_id", aggregate.ErrNotFound},
		{"create_missing does not take an edge id", baseState, []*cairnv1.Command{connectMissing("ab", "x", "y")},
			cmdtest.CodeExists, "commands[0].connect_nodes.edge_id", aggregate.ErrAlreadyExists},
		{"nodes made by create_missing go with a refused envelope", baseState,
			[]*cairnv1.Command{connectMissing("e1", "x", "y"), connectMissing("e2", "x", "y"), cmdtest.Connect("e1", "a", "b")},
			cmdtest.CodeExists, "commands[2].connect_nodes.edge_id", aggregate.ErrAlreadyExists},
		{"disconnect a missing edge", baseState, []*cairnv1.Command{cmdtest.Disconnect("zz")}, cmdtest.CodeNotFound, "commands[0].disconnect_nodes.edge_id", aggregate.ErrNotFound},
		{"disconnect an edge its node's removal took", baseState, []*cairnv1.Command{cmdtest.RemoveNode("a"), cmdtest.Disconnect("ab")},
			cmdtest.CodeNotFound, "commands[1].disconnect_nodes.edge_id", aggregate.ErrNotFound},
		{"command with no kind", baseState, []*cairnv1.Command{{}}, cmdtest.CodeInvalid, "commands[0]", aggregate.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.state(t)
			before := cmdtest.TakeSnapshot(s)
			evs, err := aggregate.DecideEnvelope(s, cmdtest.Envelope("g", "c", tc.cmds...))
			cmdtest.WantCommandError(t, err, tc.code, tc.field, tc.sentinel)
			if evs != nil {
				t.Errorf("refused envelope returned %d events", len(evs))
			}
			if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), before); d != "" {
				t.Errorf("refused envelope changed the state: %s", d)
			}
		})
	}
}

func deletedState(t *testing.T) *aggregate.State {
	s := baseState(t)
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "del", cmdtest.DeleteGraph()))
	return s
}

func TestDecideDoesNotChangeState(t *testing.T) {
	s := baseState(t)
	before := cmdtest.TakeSnapshot(s)
	for i, cmd := range []*cairnv1.Command{cmdtest.AddNode("x"), cmdtest.SetComps("a", cmdtest.Comp("color", "blue")), cmdtest.RemoveComps("a", "color"),
		cmdtest.RemoveNode("a"), cmdtest.RemoveNode("c"), cmdtest.Connect("e", "a", "c"), cmdtest.Disconnect("ab"), cmdtest.DeleteGraph()} {
		evs, err := aggregate.Decide(s, fmt.Sprintf("commands[%d]", i), cmd)
		if err != nil || len(evs) == 0 {
			t.Fatalf("Decide %v = %d events, %v", cmd, len(evs), err)
		}
		if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), before); d != "" {
			t.Fatalf("Decide %v changed the state: %s", cmd, d)
		}
	}
}

func TestDecideEvents(t *testing.T) {
	s := baseState(t)
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "free", cmdtest.AddNode("b-free")))
	for _, tc := range []struct {
		name string
		cmd  *cairnv1.Command
		want []*cairnv1.Event
	}{
		{"add node", cmdtest.AddNode("x", cmdtest.Comp("k", "v")), []*cairnv1.Event{{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{
			NodeId: "x", Components: []*cairnv1.Component{cmdtest.Comp("k", "v")}}}}}},
		{"set components", cmdtest.SetComps("a", cmdtest.Comp("color", "blue")), []*cairnv1.Event{{Kind: &cairnv1.Event_NodeComponentsChanged{
			NodeComponentsChanged: &cairnv1.NodeComponentsChanged{NodeId: "a", Set: []*cairnv1.Component{cmdtest.Comp("color", "blue")}}}}}},
		{"remove components", cmdtest.RemoveComps("a", "size"), []*cairnv1.Event{{Kind: &cairnv1.Event_NodeComponentsChanged{
			NodeComponentsChanged: &cairnv1.NodeComponentsChanged{NodeId: "a", RemovedTypes: []string{"size"}}}}}},
		{"connect", cmdtest.Connect("e", "a", "c", cmdtest.Comp("w", "2")), []*cairnv1.Event{{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{
			EdgeId: "e", Source: "a", Target: "c", EdgeType: "dep", Components: []*cairnv1.Component{cmdtest.Comp("w", "2")}}}}}},
		{"connect with create_missing and both nodes there", connectMissing("e", "a", "c"), []*cairnv1.Event{edgeAddedPlain("e", "a", "c")}},
		{"create_missing makes the source", connectMissing("e", "x", "c"), []*cairnv1.Event{nodeAddedPlain("x"), edgeAddedPlain("e", "x", "c")}},
		{"create_missing makes the target", connectMissing("e", "a", "libstdc++6"),
			[]*cairnv1.Event{nodeAddedPlain("libstdc++6"), edgeAddedPlain("e", "a", "libstdc++6")}},
		{"create_missing makes both, source first", connectMissing("e", "python3.11", "a:b/c@d+e"),
			[]*cairnv1.Event{nodeAddedPlain("python3.11"), nodeAddedPlain("a:b/c@d+e"), edgeAddedPlain("e", "python3.11", "a:b/c@d+e")}},
		{"create_missing makes a self-loop's node once", connectMissing("e", "x", "x"), []*cairnv1.Event{nodeAddedPlain("x"), edgeAddedPlain("e", "x", "x")}},
		{"disconnect names the endpoints", cmdtest.Disconnect("ab"), []*cairnv1.Event{edgeRemoved("ab", "a", "b")}},
		{"remove a node without edges", cmdtest.RemoveNode("b-free"), []*cairnv1.Event{{Kind: &cairnv1.Event_NodeRemoved{
			NodeRemoved: &cairnv1.NodeRemoved{NodeId: "b-free"}}}}},
		{"delete", cmdtest.DeleteGraph(), []*cairnv1.Event{{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: &cairnv1.GraphDeleted{}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := aggregate.Decide(s, "commands[0]", tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if !eventsEqual(got, tc.want) {
				t.Fatalf("events = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRemoveNodeCascades(t *testing.T) {
	s := aggregate.NewState("g")
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "setup", cmdtest.CreateGraph(), cmdtest.AddNode("a", cmdtest.Comp("color", "red")), cmdtest.AddNode("b"), cmdtest.AddNode("c"),
		cmdtest.Connect("z-out", "a", "b", cmdtest.Comp("w", "1")), cmdtest.Connect("m-in", "c", "a"), cmdtest.Connect("a-self", "a", "a"),
		cmdtest.Connect("k-other", "b", "c"), cmdtest.Connect("b-out", "a", "b")))
	want := []*cairnv1.Event{
		edgeRemoved("a-self", "a", "a"), // a self-loop is removed once
		edgeRemoved("b-out", "a", "b"),
		edgeRemoved("m-in", "c", "a"),
		edgeRemoved("z-out", "a", "b"),
		{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: "a"}}},
	}
	got, err := aggregate.Decide(s, "commands[0]", cmdtest.RemoveNode("a"))
	if err != nil {
		t.Fatal(err)
	}
	if !eventsEqual(got, want) {
		t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
	// The same through an envelope, whose events Apply folds.
	evs := cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "rm", cmdtest.RemoveNode("a")))
	if !eventsEqual(evs, want) {
		t.Fatalf("envelope events:\n got %v\nwant %v", evs, want)
	}
	if ids := fmt.Sprint(s.NodeIDs(), s.EdgeIDs()); ids != "[b c] [k-other]" {
		t.Fatalf("after removal: nodes and edges %s, want [b c] [k-other]", ids)
	}
	if s.DistinctComponents() != 0 {
		t.Fatalf("DistinctComponents = %d after removing every holder, want 0", s.DistinctComponents())
	}
	// Removing the other end later cascades only what is left.
	evs = cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "rm2", cmdtest.RemoveNode("c")))
	if !eventsEqual(evs, []*cairnv1.Event{edgeRemoved("k-other", "b", "c"),
		{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: "c"}}}}) {
		t.Fatalf("second removal events: %v", evs)
	}
}

func edgeRemoved(id, src, dst string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{EdgeId: id, Source: src, Target: dst}}}
}

func eventsEqual(a, b []*cairnv1.Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// An envelope whose third command fails leaves the state exactly as it was,
// whatever the first two changed.
func TestDecideEnvelopeAllOrNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cmds  []*cairnv1.Command
		field string
	}{
		{"adds then a missing target", []*cairnv1.Command{cmdtest.AddNode("x", cmdtest.Comp("color", "red")), cmdtest.Connect("ax", "a", "x"), cmdtest.Connect("e", "x", "nope")},
			"commands[2].connect_nodes.target"},
		{"component changes then a duplicate", []*cairnv1.Command{cmdtest.SetComps("a", cmdtest.Comp("color", "green"), cmdtest.Comp("new", "1")),
			cmdtest.RemoveComps("a", "size"), cmdtest.AddNode("b")}, "commands[2].add_node.node_id"},
		{"cascading removal then a missing node", []*cairnv1.Command{cmdtest.RemoveNode("a"), cmdtest.RemoveNode("c"), cmdtest.SetComps("a", cmdtest.Comp("k", "v"))},
			"commands[2].set_node_components.node_id"},
		{"disconnect, reconnect, then a duplicate edge", []*cairnv1.Command{cmdtest.Disconnect("ab"), cmdtest.Connect("ab", "b", "a"), cmdtest.Connect("ab", "a", "b")},
			"commands[2].connect_nodes.edge_id"},
		{"delete then add", []*cairnv1.Command{cmdtest.AddNode("y", cmdtest.Comp("color", "red")), cmdtest.DeleteGraph(), cmdtest.AddNode("z")}, "graph_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := baseState(t)
			before := cmdtest.TakeSnapshot(s)
			if _, err := aggregate.DecideEnvelope(s, cmdtest.Envelope("g", "c", tc.cmds...)); err == nil {
				t.Fatal("envelope was accepted")
			} else if ce := aggregate.AsCommandError(err); ce.Field != tc.field {
				t.Fatalf("err = %v, want field %q", err, tc.field)
			}
			if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), before); d != "" {
				t.Fatalf("state changed: %s", d)
			}
			// The rolled-back state still works: the first two commands alone
			// are accepted and give the same events as on a fresh copy.
			want, err := aggregate.DecideEnvelope(baseState(t), cmdtest.Envelope("g", "c", tc.cmds[:2]...))
			if err != nil {
				t.Fatal(err)
			}
			got := cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "c", tc.cmds[:2]...))
			if !eventsEqual(got, want) {
				t.Fatalf("after rollback the envelope decides differently:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// Events that a decided envelope returns fold onto a fresh state to the same
// state, and seal into a chain that checks.
func TestDecidedEventsReplay(t *testing.T) {
	s := aggregate.NewState("g")
	var all []*cairnv1.Event
	for i, cmds := range [][]*cairnv1.Command{
		{cmdtest.CreateGraph(), cmdtest.AddNode("a", cmdtest.Comp("color", "red")), cmdtest.AddNode("b", cmdtest.Comp("color", "red")), cmdtest.Connect("ab", "a", "b")},
		{cmdtest.SetComps("a", cmdtest.Comp("color", "blue"), cmdtest.Comp("size", "3")), cmdtest.Connect("aa", "a", "a"), cmdtest.AddNodeCats("c", "x", "y")},
		{cmdtest.RemoveComps("a", "size"), cmdtest.Connect("cb", "c", "b", cmdtest.Comp("w", "1"))},
		{cmdtest.RemoveNode("b"), cmdtest.Disconnect("aa")},
	} {
		all = append(all, cmdtest.MustDecide(t, s, cmdtest.Envelope("g", fmt.Sprint("c", i), cmds...))...)
	}
	recs, head, err := persistence.Seal("g", "tx1", 1, persistence.Head{}, all)
	if err != nil {
		t.Fatal(err)
	}
	tx := &cairnv1.Transaction{GraphId: "g", TxId: "tx1", TimestampUnixNano: 1, Events: recs,
		Commands: []*cairnv1.CommandRecord{{CommandId: "all", EventCount: uint32(len(all))}}}
	decoded, err := persistence.NewChain("g").Check(1, tx)
	if err != nil {
		t.Fatal(err)
	}
	replayed := aggregate.NewState("g")
	for i, d := range decoded {
		if !proto.Equal(d.Event, all[i]) {
			t.Fatalf("event %d changed in the chain", i)
		}
		if err := aggregate.Apply(replayed, d.Event); err != nil {
			t.Fatalf("apply event %d: %v", i, err)
		}
	}
	if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(replayed), cmdtest.TakeSnapshot(s)); d != "" {
		t.Fatalf("replayed state differs: %s", d)
	}
	if head.N != uint64(len(all)) {
		t.Fatalf("head position %d, want %d", head.N, len(all))
	}
}

func TestApplyRefusesEventsThatDoNotFit(t *testing.T) {
	ev := func(e any) *cairnv1.Event {
		switch k := e.(type) {
		case *cairnv1.GraphCreated:
			return &cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: k}}
		case *cairnv1.GraphDeleted:
			return &cairnv1.Event{Kind: &cairnv1.Event_GraphDeleted{GraphDeleted: k}}
		case *cairnv1.NodeAdded:
			return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: k}}
		case *cairnv1.NodeRemoved:
			return &cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: k}}
		case *cairnv1.NodeComponentsChanged:
			return &cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: k}}
		case *cairnv1.EdgeAdded:
			return &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: k}}
		case *cairnv1.EdgeRemoved:
			return &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: k}}
		}
		return &cairnv1.Event{}
	}
	for _, tc := range []struct {
		name string
		ev   *cairnv1.Event
	}{
		{"created twice", ev(&cairnv1.GraphCreated{GraphId: "g"})},
		{"node exists", ev(&cairnv1.NodeAdded{NodeId: "a"})},
		{"change a missing node", ev(&cairnv1.NodeComponentsChanged{NodeId: "zz", Set: []*cairnv1.Component{cmdtest.Comp("k", "v")}})},
		{"remove a missing node", ev(&cairnv1.NodeRemoved{NodeId: "zz"})},
		{"remove a node with edges", ev(&cairnv1.NodeRemoved{NodeId: "a"})},
		{"edge exists", ev(&cairnv1.EdgeAdded{EdgeId: "ab", Source: "a", Target: "b"})},
		{"edge with a missing endpoint", ev(&cairnv1.EdgeAdded{EdgeId: "e", Source: "a", Target: "zz"})},
		{"remove a missing edge", ev(&cairnv1.EdgeRemoved{EdgeId: "zz"})},
		{"no kind", ev(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := baseState(t)
			before := cmdtest.TakeSnapshot(s)
			if err := aggregate.Apply(s, tc.ev); err == nil {
				t.Fatal("Apply accepted the event")
			}
			if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), before); d != "" {
				t.Fatalf("refused event changed the state: %s", d)
			}
		})
	}
	if err := aggregate.Apply(aggregate.NewState("g"), ev(&cairnv1.GraphDeleted{})); err == nil {
		t.Fatal("Apply deleted a graph that does not exist")
	}
}

// connectMissing is connect with create_missing set and no edge type.
func connectMissing(edge, source, target string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{
		EdgeId: edge, Source: source, Target: target, CreateMissing: true}}}
}

func nodeAddedPlain(id string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id}}}
}

func edgeAddedPlain(edge, source, target string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: edge, Source: source, Target: target}}}
}

// TestConnectCreateMissingEnvelope: within one envelope a node made by
// create_missing exists for the commands after it, and the state after the
// envelope holds the nodes and the edges.
func TestConnectCreateMissingEnvelope(t *testing.T) {
	s := baseState(t)
	evs := cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "imp", connectMissing("e1", "x", "y"), connectMissing("e2", "y", "x"),
		connectMissing("e3", "y", "a"), cmdtest.Connect("e4", "x", "y")))
	want := []*cairnv1.Event{nodeAddedPlain("x"), nodeAddedPlain("y"), edgeAddedPlain("e1", "x", "y"),
		edgeAddedPlain("e2", "y", "x"), edgeAddedPlain("e3", "y", "a"),
		{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: "e4", Source: "x", Target: "y", EdgeType: "dep"}}}}
	if !eventsEqual(evs, want) {
		t.Fatalf("events = %v, want %v", evs, want)
	}
	for _, id := range []string{"x", "y"} {
		if !s.HasNode(id) {
			t.Errorf("node %q missing after the envelope", id)
		}
	}
}
