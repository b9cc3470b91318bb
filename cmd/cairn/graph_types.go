package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// runGraphTypes prints the graph types this binary's registry holds (no
// server is asked: the engine enforces the registry it was built with).
func runGraphTypes(args []string, stdout io.Writer) error {
	fs := newFlagSet("graph types")
	asJSON := fs.Bool("json", false, "print the declarations as JSON")
	if _, err := parseArgs(fs, "graph", args); err != nil {
		return err
	}
	types := aggregate.Types()
	if *asJSON {
		out := struct {
			Types []json.RawMessage `json:"types"`
		}{Types: []json.RawMessage{}}
		for _, t := range types {
			b, err := (protojson.MarshalOptions{UseProtoNames: true}).Marshal(t)
			if err != nil {
				return fmt.Errorf("encode graph type %s: %w", t.GetName(), err)
			}
			out.Types = append(out.Types, b)
		}
		return writeJSON(stdout, out)
	}
	var b strings.Builder
	for i, t := range types {
		if i > 0 {
			b.WriteByte('\n')
		}
		writeGraphType(&b, t)
	}
	_, err := io.WriteString(stdout, b.String())
	return err
}

func writeGraphType(b *strings.Builder, t *cairnv1.GraphType) {
	fmt.Fprintf(b, "%s: %s\n", t.GetName(), t.GetDescription())
	if cs := t.GetCategories(); len(cs) > 0 {
		parts := make([]string, len(cs))
		for i, c := range cs {
			parts[i] = c.GetName()
			if r := c.GetRequiredComponents(); len(r) > 0 {
				parts[i] += " (requires " + strings.Join(r, ", ") + ")"
			}
		}
		fmt.Fprintf(b, "  categories: %s\n", strings.Join(parts, "; "))
	}
	if es := t.GetEdgeTypes(); len(es) > 0 {
		fmt.Fprintf(b, "  edge types:\n")
		for _, e := range es {
			joins := make([]string, len(e.GetJoins()))
			for i, j := range e.GetJoins() {
				joins[i] = orAny(j.GetFrom()) + " → " + orAny(j.GetTo())
			}
			line := "    " + e.GetName() + " (" + strings.Join(joins, ", ") + ")"
			switch {
			case e.GetSymmetric():
				line += ", symmetric"
			case e.GetInverse() != "":
				line += ", inverse " + e.GetInverse()
			}
			fmt.Fprintln(b, line)
		}
	}
	if w := t.GetWorkflow(); w != nil {
		states := make([]string, len(w.GetStates()))
		for i, s := range w.GetStates() {
			states[i] = s.GetName()
			if s.GetFinal() {
				states[i] += " (final)"
			}
		}
		fmt.Fprintf(b, "  states of %s in component %q: %s; initial %s\n", strings.Join(w.GetStateCategories(), ", "), w.GetStateComponent(), strings.Join(states, ", "), w.GetInitialState())
		var moves []string
		seen := map[string]int{}
		for _, tr := range w.GetTransitions() {
			if i, ok := seen[tr.GetFrom()]; ok {
				moves[i] += ", " + tr.GetTo()
				continue
			}
			seen[tr.GetFrom()] = len(moves)
			moves = append(moves, tr.GetFrom()+" → "+tr.GetTo())
		}
		fmt.Fprintf(b, "  transitions: %s\n", strings.Join(moves, "; "))
	}
	for _, r := range t.GetRules() {
		fmt.Fprintf(b, "  rule %s\n", r)
	}
}

func orAny(c string) string {
	if c == "" {
		return "any"
	}
	return c
}

// noteUntyped tells on stderr that --type named no registered type: the
// graph is created untyped, with typ as its label.
func noteUntyped(stderr io.Writer, graph, typ string) {
	if typ == "" {
		return
	}
	if _, _, ok := aggregate.LookupType(typ); ok {
		return
	}
	fmt.Fprintf(stderr, "note: %q is not a registered graph type (cairn graph types lists them): %s is an untyped graph labelled %q\n", typ, graph, typ)
}
