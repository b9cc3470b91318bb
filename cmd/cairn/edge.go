package main

import (
	"context"
	"io"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

const edgeUsage = `Usage:
  cairn edge add <graph> <edge> <source> <target> [--type T] [--component type=value]... [--create-missing]
                 [--target-graph G] [write flags]
  cairn edge remove <graph> <edge> [write flags]

add adds a directed edge with a new id from source to target; both nodes
must exist, unless --create-missing: then a missing one is created, with no
components or categories, in the same transaction. remove removes an edge.

--target-graph G makes a cross-graph link: target is a node of graph G
(docs/cross-graph.md); the engine records the edge in both graphs. remove
of a link's edge, on either graph, removes both halves.
`

func runEdge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand("edge", args, "add", "remove")
	if err != nil {
		return err
	}
	fs := newFlagSet("edge " + sub)
	w := newWriteFlags(fs, "edge")
	if sub == "remove" {
		pos, err := parseArgs(fs, "edge", args, "graph", "edge")
		if err != nil {
			return err
		}
		return w.execute(ctx, stdout, stderr, pos[0], &cairnv1.Command{Kind: &cairnv1.Command_DisconnectNodes{
			DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: pos[1]}}})
	}
	typ := fs.String("type", "", "edge `type`")
	var comps componentsFlag
	fs.Var(&comps, "component", "component `type=value` (repeatable)")
	createMissing := fs.Bool("create-missing", false, "create a source or target node that does not exist")
	targetGraph := fs.String("target-graph", "", "target is a node of `graph` G: a cross-graph link")
	pos, err := parseArgs(fs, "edge", args, "graph", "edge", "source", "target")
	if err != nil {
		return err
	}
	return w.execute(ctx, stdout, stderr, pos[0], &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{
		ConnectNodes: &cairnv1.ConnectNodes{EdgeId: pos[1], Source: pos[2], Target: pos[3], EdgeType: *typ, Components: comps, CreateMissing: *createMissing,
			TargetGraph: *targetGraph}}})
}
