package main

import (
	"context"
	"fmt"
	"io"

	"github.com/cairn-graph/cairn/internal/authz"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

const graphUsage = `Usage:
  cairn graph create <graph> [--type T] [--meta key=value]... [--schema FILE] [write flags]
  cairn graph delete <graph> [write flags]
  cairn graph types [--json]

create starts a graph; --type and --meta are recorded in its first event.
--schema FILE (with --type authorization) reads an AuthorizationSchema in
protojson (docs/authorization.md) into the metadata key authorization.schema.
delete ends it: its history stays and its id is never used again. Graph ids
are 1-64 letters, digits, '-' and '_'.

types lists the graph types this binary knows (workflow, relationship, ...)
with their categories, edge types and rules. A graph created with --type of
a listed type is decided under its rules: a command that breaks one is
refused with FAILED_PRECONDITION naming the rule. Any other --type is a
free label of an untyped graph (create says so in a note).
`

func runGraph(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand("graph", args, "create", "delete", "types", "list", "show")
	if err != nil {
		return err
	}
	switch sub {
	case "types":
		return runGraphTypes(args, stdout)
	case "list": // the catalogue: catalogue.go
		return runGraphList(ctx, args, stdout, stderr)
	case "show":
		return runGraphShow(ctx, args, stdout)
	}
	fs := newFlagSet("graph " + sub)
	w := newWriteFlags(fs, "graph")
	switch sub {
	case "create":
		typ := fs.String("type", "", "graph `type`")
		meta := metaFlag{}
		fs.Var(meta, "meta", "metadata `key=value` (repeatable)")
		schema := fs.String("schema", "", "authorization schema `FILE` (protojson)")
		pos, err := parseArgs(fs, "graph", args, "graph")
		if err != nil {
			return err
		}
		noteUntyped(stderr, pos[0], *typ)
		if *schema != "" {
			if meta[authz.SchemaKey], err = readSchemaFlag(*schema); err != nil {
				return err
			}
		}
		return w.execute(ctx, stdout, stderr, pos[0], &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{
			CreateGraph: &cairnv1.CreateGraph{GraphId: pos[0], GraphType: *typ, Metadata: meta}}})
	default: // delete
		pos, err := parseArgs(fs, "graph", args, "graph")
		if err != nil {
			return err
		}
		return w.execute(ctx, stdout, stderr, pos[0], &cairnv1.Command{Kind: &cairnv1.Command_DeleteGraph{
			DeleteGraph: &cairnv1.DeleteGraph{}}})
	}
}

// subcommand splits "<sub> args..." off args for the command group topic,
// allowing only the given subcommands.
func subcommand(topic string, args []string, subs ...string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, &usageError{topic: topic, err: fmt.Errorf("%s: want a subcommand: %s", topic, orList(subs))}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return "", nil, &helpRequest{topic: topic}
	}
	for _, s := range subs {
		if args[0] == s {
			return s, args[1:], nil
		}
	}
	return "", nil, &usageError{topic: topic, err: fmt.Errorf("%s: unknown subcommand %q; want %s", topic, args[0], orList(subs))}
}

func orList(ss []string) string {
	switch len(ss) {
	case 0:
		return ""
	case 1:
		return ss[0]
	}
	out := ss[0]
	for _, s := range ss[1 : len(ss)-1] {
		out += ", " + s
	}
	return out + " or " + ss[len(ss)-1]
}
