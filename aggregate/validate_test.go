package aggregate_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func TestValidateGraphID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"g", true},
		{"deps-2024_Q1", true},
		{"0", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"a.b", false}, // a subject token separator
		{"a b", false},
		{"a*", false}, // subject wildcards
		{"a>", false},
		{"Zürich", false},
		{"a/b", false},
		{"a\x00", false},
	} {
		t.Run(fmt.Sprintf("%q", tc.id), func(t *testing.T) {
			err := aggregate.ValidateGraphID("graph_id", tc.id)
			if tc.ok {
				if err != nil {
					t.Fatalf("ValidateGraphID(%q) = %v, want nil", tc.id, err)
				}
				return
			}
			cmdtest.WantCommandError(t, err, cmdtest.CodeInvalid, "graph_id", aggregate.ErrInvalidArgument)
			// The envelope check uses the same rule.
			cmdtest.WantCommandError(t, aggregate.ValidateEnvelope(cmdtest.Envelope(tc.id, "c1", cmdtest.CreateGraph())), cmdtest.CodeInvalid, "graph_id", aggregate.ErrInvalidArgument)
		})
	}
}

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		ok   bool
	}{
		{"debian package", "libstdc++6", true},
		{"path", "user:42/alice", true},
		{"non-ASCII", "Zürich", true},
		{"dots", "python3.11", true},
		{"spaces", " a b ", true},
		{"CJK", "日本語", true},
		{"one byte", "x", true},
		{"256 bytes", strings.Repeat("a", 256), true},
		{"256 bytes of 2-byte runes", strings.Repeat("ü", 128), true},
		{"encoded U+FFFD", "a\uFFFDb", true},
		{"empty", "", false},
		{"257 bytes", strings.Repeat("a", 257), false},
		{"257 bytes ending mid-rune", strings.Repeat("a", 255) + "ü", false},
		{"invalid UTF-8", "a\xffb", false},
		{"truncated rune", "\xc3", false},
		{"NUL", "a\x00b", false},
		{"newline", "a\nb", false},
		{"tab", "\t", false},
		{"DEL", "a\x7f", false},
		{"C1 control", "a\u0085", false},
		{"zero-width space", "a\u200bb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := aggregate.ValidateID("f", "node id", tc.id)
			if tc.ok {
				if err != nil {
					t.Fatalf("ValidateID(%q) = %v, want nil", tc.id, err)
				}
			} else {
				cmdtest.WantCommandError(t, err, cmdtest.CodeInvalid, "f", aggregate.ErrInvalidArgument)
			}
			// Every id-like field of every command follows the same rule.
			for _, c := range []struct {
				field string
				cmd   *cairnv1.Command
			}{
				{"commands[0].add_node.node_id", cmdtest.AddNode(tc.id)},
				{"commands[0].set_node_components.node_id", cmdtest.SetComps(tc.id, cmdtest.Comp("t", "v"))},
				{"commands[0].remove_node_components.node_id", cmdtest.RemoveComps(tc.id, "t")},
				{"commands[0].remove_node.node_id", cmdtest.RemoveNode(tc.id)},
				{"commands[0].connect_nodes.edge_id", cmdtest.Connect(tc.id, "a", "b")},
				{"commands[0].connect_nodes.source", cmdtest.Connect("e", tc.id, "b")},
				{"commands[0].connect_nodes.target", cmdtest.Connect("e", "a", tc.id)},
				{"commands[0].disconnect_nodes.edge_id", cmdtest.Disconnect(tc.id)},
				{"commands[0].add_node.components[0].type", cmdtest.AddNode("n", cmdtest.Comp(tc.id, "v"))},
				{"commands[0].add_node.categories[0]", cmdtest.AddNodeCats("n", tc.id)},
				{"commands[0].remove_node_components.types[0]", cmdtest.RemoveComps("n", tc.id)},
			} {
				err := aggregate.ValidateEnvelope(cmdtest.Envelope("g", "c1", c.cmd))
				if tc.ok {
					if err != nil {
						t.Errorf("%s: %v", c.field, err)
					}
					continue
				}
				var ce *aggregate.CommandError
				if !errors.As(err, &ce) || ce.Field != c.field || !errors.Is(err, aggregate.ErrInvalidArgument) {
					t.Errorf("%s: err = %v, want INVALID_ARGUMENT at that field", c.field, err)
				}
			}
		})
	}
}

func TestValidateEnvelope(t *testing.T) {
	many := func(n int) []*cairnv1.Command {
		cmds := make([]*cairnv1.Command, n)
		for i := range cmds {
			cmds[i] = cmdtest.AddNode(fmt.Sprint("n", i))
		}
		return cmds
	}
	big := strings.Repeat("x", aggregate.MaxComponentValueLen)
	for _, tc := range []struct {
		name  string
		env   *cairnv1.CommandEnvelope
		field string // "-" when the envelope is valid
	}{
		{"minimal", cmdtest.Envelope("g", "c1", cmdtest.CreateGraph()), "-"},
		{"every kind", cmdtest.Envelope("g", "c1", cmdtest.CreateGraph(), cmdtest.AddNode("a", cmdtest.Comp("t", "v")), cmdtest.AddNodeCats("b", "x", "y"),
			cmdtest.SetComps("a", cmdtest.Comp("t", "w"), cmdtest.Comp("u", "")), cmdtest.RemoveComps("a", "t", "u"), cmdtest.Connect("e", "a", "b"),
			cmdtest.Disconnect("e"), cmdtest.RemoveNode("b"), cmdtest.DeleteGraph()), "-"},
		{"metadata", &cairnv1.CommandEnvelope{GraphId: "g", CommandId: "c1", CorrelationId: "corr", CausationId: "cause",
			Issuer: "alice@example.org", Commands: []*cairnv1.Command{cmdtest.CreateGraph()}}, "-"},
		{"1,000 commands", cmdtest.Envelope("g", "c1", many(1000)...), "-"},
		{"component value of 64 KiB", cmdtest.Envelope("g", "c1", cmdtest.AddNode("a", cmdtest.Comp("blob", big))), "-"},
		{"empty component value", cmdtest.Envelope("g", "c1", cmdtest.AddNode("a", cmdtest.Comp("flag", ""))), "-"},
		{"create_graph with the envelope's graph id", cmdtest.Envelope("g", "c1",
			&cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphId: "g"}}}), "-"},

		{"nil envelope", nil, ""},
		{"no command id", cmdtest.Envelope("g", "", cmdtest.CreateGraph()), "command_id"},
		{"command id of 129 bytes", cmdtest.Envelope("g", strings.Repeat("c", 129), cmdtest.CreateGraph()), "command_id"},
		{"command id with newline", cmdtest.Envelope("g", "c\n1", cmdtest.CreateGraph()), "command_id"},
		{"correlation id with NUL", &cairnv1.CommandEnvelope{GraphId: "g", CommandId: "c1", CorrelationId: "\x00",
			Commands: []*cairnv1.Command{cmdtest.CreateGraph()}}, "correlation_id"},
		{"causation id too long", &cairnv1.CommandEnvelope{GraphId: "g", CommandId: "c1", CausationId: strings.Repeat("c", 257),
			Commands: []*cairnv1.Command{cmdtest.CreateGraph()}}, "causation_id"},
		{"issuer not UTF-8", &cairnv1.CommandEnvelope{GraphId: "g", CommandId: "c1", Issuer: "\xff",
			Commands: []*cairnv1.Command{cmdtest.CreateGraph()}}, "issuer"},
		{"no commands", cmdtest.Envelope("g", "c1"), "commands"},
		{"1,001 commands", cmdtest.Envelope("g", "c1", many(1001)...), "commands"},
		{"command with no kind", cmdtest.Envelope("g", "c1", cmdtest.CreateGraph(), &cairnv1.Command{}), "commands[1]"},
		{"nil command", cmdtest.Envelope("g", "c1", cmdtest.AddNode("a"), cmdtest.AddNode("b"), nil), "commands[2]"},
		{"create_graph for another graph", cmdtest.Envelope("g", "c1",
			&cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphId: "h"}}}),
			"commands[0].create_graph.graph_id"},
		{"graph type too long", cmdtest.Envelope("g", "c1",
			&cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: strings.Repeat("t", 257)}}}),
			"commands[0].create_graph.graph_type"},
		{"metadata key empty", cmdtest.Envelope("g", "c1",
			&cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{Metadata: map[string]string{"": "v"}}}}),
			"commands[0].create_graph.metadata"},
		{"metadata value too big", cmdtest.Envelope("g", "c1",
			&cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{Metadata: map[string]string{"k": big + "x"}}}}),
			"commands[0].create_graph.metadata[k]"},
		{"component value over 64 KiB", cmdtest.Envelope("g", "c1", cmdtest.AddNode("a"), cmdtest.AddNode("b", cmdtest.Comp("ok", "v"), cmdtest.Comp("blob", big+"x"))),
			"commands[1].add_node.components[1].value"},
		{"edge component value over 64 KiB", cmdtest.Envelope("g", "c1", cmdtest.Connect("e", "a", "b", cmdtest.Comp("blob", big+"x"))),
			"commands[0].connect_nodes.components[0].value"},
		{"set component value over 64 KiB", cmdtest.Envelope("g", "c1", cmdtest.SetComps("a", cmdtest.Comp("blob", big+"x"))),
			"commands[0].set_node_components.components[0].value"},
		{"duplicate component types", cmdtest.Envelope("g", "c1", cmdtest.AddNode("a", cmdtest.Comp("color", "red"), cmdtest.Comp("size", "1"), cmdtest.Comp("color", "blue"))),
			"commands[0].add_node.components[2].type"},
		{"duplicate component types on set", cmdtest.Envelope("g", "c1", cmdtest.SetComps("a", cmdtest.Comp("color", "red"), cmdtest.Comp("color", "red"))),
			"commands[0].set_node_components.components[1].type"},
		{"duplicate component types on an edge", cmdtest.Envelope("g", "c1", cmdtest.Connect("e", "a", "b", cmdtest.Comp("w", "1"), cmdtest.Comp("w", "2"))),
			"commands[0].connect_nodes.components[1].type"},
		{"nil component", cmdtest.Envelope("g", "c1", cmdtest.AddNode("a", nil)), "commands[0].add_node.components[0]"},
		{"set with no components", cmdtest.Envelope("g", "c1", cmdtest.SetComps("a")), "commands[0].set_node_components.components"},
		{"remove no component types", cmdtest.Envelope("g", "c1", cmdtest.RemoveComps("a")), "commands[0].remove_node_components.types"},
		{"remove a component type twice", cmdtest.Envelope("g", "c1", cmdtest.RemoveComps("a", "t", "u", "t")), "commands[0].remove_node_components.types[2]"},
		{"duplicate categories", cmdtest.Envelope("g", "c1", cmdtest.AddNodeCats("a", "x", "x")), "commands[0].add_node.categories[1]"},
		{"edge type too long", cmdtest.Envelope("g", "c1", &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{
			EdgeId: "e", Source: "a", Target: "b", EdgeType: strings.Repeat("t", 257)}}}), "commands[0].connect_nodes.edge_type"},
		{"add_node without its message", cmdtest.Envelope("g", "c1", &cairnv1.Command{Kind: &cairnv1.Command_AddNode{}}), "commands[0].add_node.node_id"},
		{"first bad command wins", cmdtest.Envelope("g", "c1", cmdtest.AddNode("a"), cmdtest.Connect("e", "a", ""), cmdtest.AddNode("")), "commands[1].connect_nodes.target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := aggregate.ValidateEnvelope(tc.env)
			if tc.field == "-" {
				if err != nil {
					t.Fatalf("ValidateEnvelope = %v, want nil", err)
				}
				return
			}
			cmdtest.WantCommandError(t, err, cmdtest.CodeInvalid, tc.field, aggregate.ErrInvalidArgument)
		})
	}
}

func TestCommandErrorWireForm(t *testing.T) {
	for code, sentinel := range map[cairnv1.ErrorCode]error{
		cmdtest.CodeInvalid: aggregate.ErrInvalidArgument, cmdtest.CodeNotFound: aggregate.ErrNotFound, cmdtest.CodeExists: aggregate.ErrAlreadyExists,
		cmdtest.CodePrecondition: aggregate.ErrFailedPrecondition, cmdtest.CodeConflict: aggregate.ErrConflict,
		cmdtest.CodeUnavailable: aggregate.ErrUnavailable, cmdtest.CodeInternal: aggregate.ErrInternal,
	} {
		ce := &aggregate.CommandError{Code: code, Field: "commands[0].add_node.node_id", Message: "m"}
		back := aggregate.ErrorFromProto(ce.Proto())
		cmdtest.WantCommandError(t, back, code, ce.Field, sentinel)
		if back.Error() != ce.Error() || !strings.Contains(ce.Error(), ce.Field) {
			t.Errorf("%v: round trip changed the message: %q -> %q", code, ce.Error(), back.Error())
		}
	}
	if aggregate.ErrorFromProto(nil) != nil {
		t.Error("ErrorFromProto(nil) != nil")
	}
	plain := errors.New("disk on fire")
	if ce := aggregate.AsCommandError(fmt.Errorf("wrapped: %w", plain)); ce.Code != cmdtest.CodeInternal || !errors.Is(ce, aggregate.ErrInternal) {
		t.Errorf("AsCommandError(plain) = %v, want INTERNAL", ce)
	}
	inner := &aggregate.CommandError{Code: cmdtest.CodeNotFound, Field: "f", Message: "m"}
	if ce := aggregate.AsCommandError(fmt.Errorf("ctx: %w", inner)); ce != inner {
		t.Errorf("AsCommandError did not unwrap to the *CommandError")
	}
}

// TestCmdField: command paths, from the table of the first ones and past
// it, are what the error paths spell.
func TestCmdField(t *testing.T) {
	for i := range 20 {
		if got, want := aggregate.CmdField(i), fmt.Sprintf("commands[%d]", i); got != want {
			t.Errorf("cmdField(%d) = %q, want %q", i, got, want)
		}
	}
}
