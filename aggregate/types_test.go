package aggregate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func createTyped(typ string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: typ}}}
}

func addCat(id, cat string, comps ...*cairnv1.Component) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id, Categories: []string{cat}, Components: comps}}}
}

func edge(id, src, dst, typ string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{EdgeId: id, Source: src, Target: dst, EdgeType: typ}}}
}

func setState(id, st string) *cairnv1.Command {
	return cmdtest.SetComps(id, cmdtest.Comp("state", st))
}

func TestRegistry(t *testing.T) {
	var names []string
	for _, gt := range aggregate.Types() {
		names = append(names, gt.GetName())
	}
	for _, want := range []string{"relationship", "workflow"} {
		if _, _, ok := aggregate.LookupType(want); !ok {
			t.Errorf("LookupType(%q): not registered (types: %v)", want, names)
		}
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("Types() not sorted by name: %v", names)
		}
	}
	if _, _, ok := aggregate.LookupType("service-map"); ok {
		t.Error("LookupType(service-map): a free label is registered")
	}
	defer func() {
		if recover() == nil {
			t.Error("RegisterType of a duplicate name did not panic")
		}
	}()
	aggregate.RegisterType(aggregate.Workflow(), aggregate.DeclaredRules(aggregate.Workflow()))
}

// typedCase is a setup envelope's commands, then one command decided on
// top: refused with the rule named in wantRule (FAILED_PRECONDITION), or
// accepted with wantEvents events.
type typedCase struct {
	name       string
	typ        string
	setup      []*cairnv1.Command
	cmd        *cairnv1.Command
	wantRule   string // a substring of the refusal: `workflow rule "acyclic": ...`
	wantField  string
	wantEvents int
}

func runTypedCases(t *testing.T, cases []typedCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := aggregate.NewState("g")
			cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "setup", append([]*cairnv1.Command{createTyped(tc.typ)}, tc.setup...)...))
			evs, err := aggregate.DecideEnvelope(s, cmdtest.Envelope("g", "cmd", tc.cmd))
			if tc.wantRule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(evs) != tc.wantEvents {
					t.Fatalf("%d events, want %d: %v", len(evs), tc.wantEvents, evs)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted (%v), want a refusal naming %s", evs, tc.wantRule)
			}
			cmdtest.WantCommandError(t, err, cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, tc.wantField, aggregate.ErrFailedPrecondition)
			if !strings.Contains(err.Error(), tc.wantRule) {
				t.Fatalf("error %q does not name %s", err, tc.wantRule)
			}
		})
	}
}

func TestWorkflowRules(t *testing.T) {
	chain := []*cairnv1.Command{ // s → a → b, e
		addCat("s", "start"), addCat("a", "step"), addCat("b", "step"), addCat("e", "end"),
		edge("e1", "s", "a", "next"), edge("e2", "a", "b", "next"),
	}
	running := append(append([]*cairnv1.Command{}, chain...), setState("a", "ready"), setState("a", "running"))
	runTypedCases(t, []typedCase{
		{name: "start first", typ: "workflow", cmd: addCat("s", "start"), wantEvents: 1},
		{name: "step before start", typ: "workflow", cmd: addCat("a", "step"),
			wantRule: `workflow rule "one start": the first node of a workflow is its start node; node "a" is a step`, wantField: "commands[0].add_node.categories[0]"},
		{name: "second start", typ: "workflow", setup: chain, cmd: addCat("s2", "start"),
			wantRule: `workflow rule "one start": node "s2" would be a second start node`, wantField: "commands[0].add_node.categories[0]"},
		{name: "no category", typ: "workflow", setup: chain, cmd: cmdtest.AddNode("x"),
			wantRule: `workflow rule "one category"`, wantField: "commands[0].add_node.categories"},
		{name: "undeclared category", typ: "workflow", setup: chain, cmd: addCat("x", "task"),
			wantRule: `workflow rule "declared categories": node "x" has category "task"`, wantField: "commands[0].add_node.categories[0]"},
		{name: "step gets pending", typ: "workflow", setup: chain, cmd: addCat("c", "step"), wantEvents: 1},
		{name: "step starts elsewhere", typ: "workflow", setup: chain, cmd: addCat("c", "step", cmdtest.Comp("state", "done")),
			wantRule: `workflow rule "initial state"`, wantField: "commands[0].add_node.components[0]"},
		{name: "cycle", typ: "workflow", setup: chain, cmd: edge("e3", "b", "a", "next"),
			wantRule: `workflow rule "acyclic": edge e3 from b to a would close the cycle a → b → a`, wantField: "commands[0].connect_nodes.target"},
		{name: "self loop", typ: "workflow", setup: chain, cmd: edge("e3", "b", "b", "next"),
			wantRule: `workflow rule "acyclic": edge e3 from b to b would close the cycle b → b`, wantField: "commands[0].connect_nodes.target"},
		{name: "diamond is no cycle", typ: "workflow", setup: chain, cmd: edge("e3", "s", "b", "next"), wantEvents: 1},
		{name: "into start", typ: "workflow", setup: chain, cmd: edge("e3", "a", "s", "next"),
			wantRule: `workflow rule "edge joins": a next edge joins any → step or any → end; edge "e3" would join step → start`, wantField: "commands[0].connect_nodes.edge_type"},
		{name: "untyped edge", typ: "workflow", setup: chain, cmd: edge("e3", "b", "e", ""),
			wantRule: `workflow rule "declared edge types": edge "e3" has no type`, wantField: "commands[0].connect_nodes.edge_type"},
		{name: "create missing", typ: "workflow", setup: chain, cmd: &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{
			EdgeId: "e3", Source: "b", Target: "new", EdgeType: "next", CreateMissing: true}}},
			wantRule: `workflow rule "declared categories": create_missing cannot create node "new"`, wantField: "commands[0].connect_nodes.create_missing"},
		{name: "create missing of existing nodes", typ: "workflow", setup: chain, cmd: &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{
			EdgeId: "e3", Source: "b", Target: "e", EdgeType: "next", CreateMissing: true}}}, wantEvents: 1},
		{name: "pending to ready", typ: "workflow", setup: chain, cmd: setState("a", "ready"), wantEvents: 1},
		{name: "pending to done", typ: "workflow", setup: chain, cmd: setState("a", "done"),
			wantRule: `workflow rule "transitions": node "a" cannot move from "pending" to "done"; from "pending" it moves to ready, cancelled`, wantField: "commands[0].set_node_components.components[0]"},
		{name: "undeclared state", typ: "workflow", setup: chain, cmd: setState("a", "paused"),
			wantRule: `workflow rule "declared states": state "paused"`, wantField: "commands[0].set_node_components.components[0]"},
		{name: "running to blocked", typ: "workflow", setup: running, cmd: setState("a", "blocked"), wantEvents: 1},
		{name: "done is final", typ: "workflow", setup: append(append([]*cairnv1.Command{}, running...), setState("a", "done")), cmd: setState("a", "cancelled"),
			wantRule: `from "done" it moves to nowhere: it is final`, wantField: "commands[0].set_node_components.components[0]"},
		{name: "retry", typ: "workflow", setup: append(append([]*cairnv1.Command{}, running...), setState("a", "failed")), cmd: setState("a", "ready"), wantEvents: 1},
		{name: "same state", typ: "workflow", setup: chain, cmd: setState("a", "pending"), wantEvents: 1},
		{name: "state of an end is free", typ: "workflow", setup: chain, cmd: setState("e", "whatever"), wantEvents: 1},
		{name: "state cannot go", typ: "workflow", setup: chain, cmd: cmdtest.RemoveComps("a", "state"),
			wantRule: `workflow rule "required components": a step node carries a "state" component; it cannot be removed from node "a"`, wantField: "commands[0].remove_node_components.types[0]"},
		{name: "start stays", typ: "workflow", setup: chain, cmd: cmdtest.RemoveNode("s"),
			wantRule: `workflow rule "one start": the start node "s" cannot be removed while 3 other nodes exist`, wantField: "commands[0].remove_node.node_id"},
		{name: "start goes last", typ: "workflow", setup: []*cairnv1.Command{addCat("s", "start")}, cmd: cmdtest.RemoveNode("s"), wantEvents: 1},
		{name: "step goes with its edges", typ: "workflow", setup: chain, cmd: cmdtest.RemoveNode("a"), wantEvents: 3},
	})
}

func TestRelationshipRules(t *testing.T) {
	people := []*cairnv1.Command{addCat("ann", "person"), addCat("bob", "person"), addCat("acme", "organisation"), addCat("oslo", "location"), addCat("norway", "location")}
	runTypedCases(t, []typedCase{
		{name: "knows adds its partner", typ: "relationship", setup: people, cmd: edge("k", "ann", "bob", "knows"), wantEvents: 2},
		{name: "works_for adds employs", typ: "relationship", setup: people, cmd: edge("w", "ann", "acme", "works_for"), wantEvents: 2},
		{name: "employs adds works_for", typ: "relationship", setup: people, cmd: edge("w", "acme", "ann", "employs"), wantEvents: 2},
		{name: "part_of location", typ: "relationship", setup: people, cmd: edge("p", "oslo", "norway", "part_of"), wantEvents: 2},
		{name: "wrong direction", typ: "relationship", setup: people, cmd: edge("w", "acme", "ann", "works_for"),
			wantRule: `relationship rule "edge joins": a works_for edge joins person → organisation; edge "w" would join organisation → person`, wantField: "commands[0].connect_nodes.edge_type"},
		{name: "part_of across kinds", typ: "relationship", setup: people, cmd: edge("p", "acme", "oslo", "part_of"),
			wantRule: `relationship rule "edge joins": a part_of edge joins organisation → organisation or location → location`, wantField: "commands[0].connect_nodes.edge_type"},
		{name: "undeclared type", typ: "relationship", setup: people, cmd: edge("l", "ann", "bob", "likes"),
			wantRule: `relationship rule "declared edge types": edge "l" has type "likes"`, wantField: "commands[0].connect_nodes.edge_type"},
		{name: "reserved suffix", typ: "relationship", setup: people, cmd: edge("k/inverse", "ann", "bob", "knows"),
			wantRule: `relationship rule "partner edges"`, wantField: "commands[0].connect_nodes.edge_id"},
		{name: "long id", typ: "relationship", setup: people, cmd: edge(strings.Repeat("k", aggregate.MaxIDLen-2), "ann", "bob", "knows"),
			wantRule: `relationship rule "partner edges"`, wantField: "commands[0].connect_nodes.edge_id"},
		{name: "disconnect removes both", typ: "relationship", setup: append(append([]*cairnv1.Command{}, people...), edge("k", "ann", "bob", "knows")),
			cmd: cmdtest.Disconnect("k"), wantEvents: 2},
		{name: "disconnect the partner removes both", typ: "relationship", setup: append(append([]*cairnv1.Command{}, people...), edge("w", "ann", "acme", "works_for")),
			cmd: cmdtest.Disconnect("w/inverse"), wantEvents: 2},
		{name: "remove node removes both", typ: "relationship", setup: append(append([]*cairnv1.Command{}, people...), edge("w", "ann", "acme", "works_for")),
			cmd: cmdtest.RemoveNode("ann"), wantEvents: 3},
		{name: "components free", typ: "relationship", setup: people, cmd: addCat("cy", "person", cmdtest.Comp("name", "Cy")), wantEvents: 1},
		{name: "two categories", typ: "relationship", setup: people, cmd: &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: "x", Categories: []string{"person", "location"}}}},
			wantRule: `relationship rule "one category": node "x" carries 2 categories`, wantField: "commands[0].add_node.categories"},
	})
}

func TestPartnerEdges(t *testing.T) {
	s := aggregate.NewState("g")
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "c1", createTyped("relationship"), addCat("ann", "person"), addCat("acme", "organisation"),
		&cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{EdgeId: "w", Source: "acme", Target: "ann", EdgeType: "employs",
			Components: []*cairnv1.Component{cmdtest.Comp("since", "2020")}}}}))
	src, dst, typ, comps, ok := s.Edge("w/inverse")
	if !ok || src != "ann" || dst != "acme" || typ != "works_for" || len(comps) != 1 || string(comps[0].GetValue()) != "2020" {
		t.Fatalf("partner of employs acme→ann: %v %s→%s %s %v; want works_for ann→acme since=2020", ok, src, dst, typ, comps)
	}
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "c2", cmdtest.Disconnect("w/inverse")))
	if s.EdgeCount() != 0 {
		t.Fatalf("after disconnecting the partner: %v", s.EdgeIDs())
	}
}

func TestUntypedLabelUnchanged(t *testing.T) {
	s := aggregate.NewState("g")
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "c1", createTyped("service-map"), cmdtest.AddNode("a"), cmdtest.Connect("e", "a", "a")))
	if s.Rules() != nil || s.Type() != "service-map" || s.EdgeCount() != 1 {
		t.Fatalf("untyped graph with a free label: rules %v type %q edges %d", s.Rules(), s.Type(), s.EdgeCount())
	}
	w := aggregate.NewState("w")
	cmdtest.MustDecide(t, w, cmdtest.Envelope("w", "c1", createTyped("workflow")))
	if w.Rules() == nil {
		t.Fatal("a workflow graph has no rules")
	}
	_, err := aggregate.DecideEnvelope(w, cmdtest.Envelope("w", "c2", cmdtest.AddNode("a")))
	if !errors.Is(err, aggregate.ErrFailedPrecondition) {
		t.Fatalf("untyped node in a workflow: %v", err)
	}
}
