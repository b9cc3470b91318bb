package main

import (
	"context"
	"errors"
	"io"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

const nodeUsage = `Usage:
  cairn node add <graph> <node> [--component type=value]... [--category c]... [write flags]
  cairn node set <graph> <node> [--component type=value]... [--unset type]... [write flags]
  cairn node remove <graph> <node> [write flags]

add adds a node with a new id. set adds or replaces components by type and
removes the --unset types, in one transaction. remove removes the node and,
in the same transaction, every edge that touches it. Node ids are 1-256
bytes of printable UTF-8 ("libstdc++6", "user:42/alice" and "Zürich" are
fine). A component value is the text after the first '=' of type=value.
`

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand("node", args, "add", "set", "remove")
	if err != nil {
		return err
	}
	fs := newFlagSet("node " + sub)
	w := newWriteFlags(fs, "node")
	var comps componentsFlag
	var cats, unset stringsFlag
	switch sub {
	case "add":
		fs.Var(&comps, "component", "component `type=value` (repeatable)")
		fs.Var(&cats, "category", "`category` (repeatable)")
	case "set":
		fs.Var(&comps, "component", "component `type=value` to add or replace (repeatable)")
		fs.Var(&unset, "unset", "component `type` to remove (repeatable)")
	}
	pos, err := parseArgs(fs, "node", args, "graph", "node")
	if err != nil {
		return err
	}
	graph, node := pos[0], pos[1]
	switch sub {
	case "add":
		return w.execute(ctx, stdout, stderr, graph, &cairnv1.Command{Kind: &cairnv1.Command_AddNode{
			AddNode: &cairnv1.AddNode{NodeId: node, Components: comps, Categories: cats}}})
	case "set":
		var cmds []*cairnv1.Command
		if len(comps) > 0 {
			cmds = append(cmds, &cairnv1.Command{Kind: &cairnv1.Command_SetNodeComponents{
				SetNodeComponents: &cairnv1.SetNodeComponents{NodeId: node, Components: comps}}})
		}
		if len(unset) > 0 {
			cmds = append(cmds, &cairnv1.Command{Kind: &cairnv1.Command_RemoveNodeComponents{
				RemoveNodeComponents: &cairnv1.RemoveNodeComponents{NodeId: node, Types: unset}}})
		}
		if len(cmds) == 0 {
			return &usageError{topic: "node", err: errors.New("node set: nothing to change: give --component type=value or --unset type")}
		}
		return w.execute(ctx, stdout, stderr, graph, cmds...)
	default: // remove
		return w.execute(ctx, stdout, stderr, graph, &cairnv1.Command{Kind: &cairnv1.Command_RemoveNode{
			RemoveNode: &cairnv1.RemoveNode{NodeId: node}}})
	}
}
