package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/authz"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

const tupleUsage = `Usage:
  cairn tuple write <graph> <tuple>... [write flags]
  cairn tuple delete <graph> <tuple>... [write flags]

tuple writes or deletes relation tuples of an authorization graph (one
created with --type authorization --schema FILE), all in one envelope: one
transaction, all or nothing. A tuple is object#relation@subject, where the
object is namespace:id and the subject namespace:id or a userset
namespace:id#relation:

  cairn tuple write docs doc:readme#viewer@user:alice doc:readme#viewer@group:eng#member

Writing a tuple that exists is ALREADY_EXISTS, deleting a missing one
NOT_FOUND; a namespace or relation the schema lacks, or a relation whose
rewrite takes no tuples, is FAILED_PRECONDITION. The reply's seq=N is the
zookie: cairn query check --min-seq N sees the write.
`

// runTuple sends tuple writes or deletes as one envelope.
func runTuple(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand("tuple", args, "write", "delete")
	if err != nil {
		return err
	}
	fs := newFlagSet("tuple " + sub)
	w := newWriteFlags(fs, "tuple")
	names := []string{"graph", "tuple"}
	for range args { // more tuples may follow
		names = append(names, "[tuple]")
	}
	pos, err := parseArgs(fs, "tuple", args, names...)
	if err != nil {
		return err
	}
	if err := aggregate.ValidateGraphID("graph", pos[0]); err != nil {
		return err
	}
	cmds := make([]*cairnv1.Command, 0, len(pos)-1)
	for _, text := range pos[1:] {
		if text == "" { // an optional "[tuple]" not given
			continue
		}
		t, err := authz.ParseTuple(text)
		if err != nil {
			return &usageError{topic: "tuple", err: fmt.Errorf("tuple %s: %v", sub, err)}
		}
		if sub == "write" {
			cmds = append(cmds, &cairnv1.Command{Kind: &cairnv1.Command_WriteTuple{WriteTuple: &cairnv1.WriteTuple{Tuple: t.Proto()}}})
		} else {
			cmds = append(cmds, &cairnv1.Command{Kind: &cairnv1.Command_DeleteTuple{DeleteTuple: &cairnv1.DeleteTuple{Tuple: t.Proto()}}})
		}
	}
	return w.execute(ctx, stdout, stderr, pos[0], cmds...)
}

// readSchemaFlag reads an AuthorizationSchema file (protojson), checks it
// and returns its text for the CreateGraph metadata.
func readSchemaFlag(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--schema: %w", err)
	}
	if _, err := authz.ParseSchema(string(b)); err != nil {
		return "", fmt.Errorf("--schema %s: %w", path, err)
	}
	return string(b), nil
}

// runAuthzQuery runs "cairn query check" and "cairn query expand".
func runAuthzQuery(ctx context.Context, args []string, stdout io.Writer) error {
	sub, args := args[0], args[1:]
	fs := newFlagSet("query " + sub)
	var c clientFlags
	c.register(fs, "query", 10*time.Second)
	minSeq := fs.Uint64("min-seq", 0, "wait until the projection has applied this stream `seq`")
	asOf := fs.String("as-of", "", "answer as of this `point`: stream seq, RFC 3339 time or event CID")
	what := "object#relation@subject"
	if sub == "expand" {
		what = "object#relation"
	}
	pos, err := parseArgs(fs, "query", args, "graph", what)
	if err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		return &usageError{topic: "query", err: fmt.Errorf("query %s: "+format, append([]any{sub}, a...)...)}
	}
	if err := aggregate.ValidateGraphID("graph", pos[0]); err != nil {
		return err
	}
	at, err := queryAsOf(*asOf, *minSeq)
	if err != nil {
		return usage("%v", err)
	}
	req := &cairnv1.QueryRequest{GraphId: pos[0], MinSeq: *minSeq, AsOf: at, TimeoutMs: uint32(engineTimeout(c.timeout).Milliseconds())}
	if sub == "check" {
		t, err := authz.ParseTuple(pos[1])
		if err != nil {
			return usage("%v", err)
		}
		req.Query = &cairnv1.QueryRequest_Check{Check: &cairnv1.Check{Object: t.Object, Relation: t.Relation,
			Subject: authz.FormatSubject(t.Subject, t.SubjectRelation)}}
	} else {
		o, r, err := authz.ParseObjectRelation(pos[1])
		if err != nil {
			return usage("%v", err)
		}
		req.Query = &cairnv1.QueryRequest_Expand{Expand: &cairnv1.Expand{Object: o, Relation: r}}
	}
	return c.ask(ctx, stdout, req, printAuthzReply)
}

// printAuthzReply prints "allowed" or "denied" and the seq it holds at, or
// an expansion as an indented tree.
func printAuthzReply(w io.Writer, rep *cairnv1.QueryReply) {
	head := fmt.Sprintf("as_of_seq=%d", rep.GetAsOfSeq())
	if rep.GetCached() {
		head += " cached"
	}
	switch r := rep.GetResult().(type) {
	case *cairnv1.QueryReply_Check:
		verdict := "denied"
		if r.Check.GetAllowed() {
			verdict = "allowed"
		}
		fmt.Fprintf(w, "%s %s lookups=%d\n", verdict, head, r.Check.GetLookups())
	case *cairnv1.QueryReply_Expand:
		fmt.Fprintln(w, head)
		printTree(w, r.Expand.GetTree(), 1)
	}
}

func printTree(w io.Writer, t *cairnv1.UsersetTree, depth int) {
	ind := strings.Repeat("  ", depth)
	label := ""
	if t.GetObject() != "" {
		label = t.GetObject() + "#" + t.GetRelation() + " "
	}
	switch n := t.GetNode().(type) {
	case *cairnv1.UsersetTree_Leaf:
		fmt.Fprintf(w, "%s%s[%s]\n", ind, label, strings.Join(n.Leaf.GetSubjects(), " "))
	case *cairnv1.UsersetTree_Computed:
		fmt.Fprintf(w, "%s%scomputed\n", ind, label)
		printTree(w, n.Computed, depth+1)
	default:
		op, kids := "union", t.GetUnion().GetChildren()
		if x := t.GetIntersection(); x != nil {
			op, kids = "intersection", x.GetChildren()
		} else if x := t.GetExclusion(); x != nil {
			op, kids = "exclusion", x.GetChildren()
		}
		fmt.Fprintf(w, "%s%s%s\n", ind, label, op)
		for _, k := range kids {
			printTree(w, k, depth+1)
		}
	}
}
