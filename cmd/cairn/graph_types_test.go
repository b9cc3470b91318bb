package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestGraphTypesListing(t *testing.T) {
	golden(t, "graph_types.golden", mustRun(t, "graph", "types"))
	var out struct {
		Types []struct {
			Name      string `json:"name"`
			EdgeTypes []struct {
				Name    string `json:"name"`
				Inverse string `json:"inverse"`
			} `json:"edge_types"`
			Workflow *struct {
				InitialState string `json:"initial_state"`
			} `json:"workflow"`
		} `json:"types"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "graph", "types", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	byName := map[string]int{}
	for i, gt := range out.Types {
		byName[gt.Name] = i
	}
	wf, ok1 := byName["workflow"]
	rel, ok2 := byName["relationship"]
	if !ok1 || !ok2 || out.Types[wf].Workflow == nil || out.Types[wf].Workflow.InitialState != "pending" ||
		len(out.Types[rel].EdgeTypes) == 0 || out.Types[rel].EdgeTypes[1].Inverse != "employs" {
		t.Fatalf("graph types --json: %+v", out)
	}
}

// TestGraphCreateTyped drives a workflow through the CLI against a real
// engine: created with --type workflow, its rules refuse a cycle and a bad
// transition; an unregistered --type is a label, with a note.
func TestGraphCreateTyped(t *testing.T) {
	server := openEngineNoSnapshots(t).ClientURL()
	cli := func(args ...string) result { return runCLI(t, append(args, "--server", server)...) }
	ok := func(args ...string) {
		t.Helper()
		if r := cli(args...); r.err != nil {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
		}
	}
	refused := func(rule string, args ...string) {
		t.Helper()
		r := cli(args...)
		if r.code() != exitFailure || !strings.Contains(r.err.Error(), "FAILED_PRECONDITION") || !strings.Contains(r.err.Error(), rule) {
			t.Fatalf("cairn %s: exit %d, err %v; want FAILED_PRECONDITION naming %s", strings.Join(args, " "), r.code(), r.err, rule)
		}
	}
	r := cli("graph", "create", "wf", "--type", "workflow")
	if r.err != nil || r.stderr != "" {
		t.Fatalf("graph create --type workflow: err %v, stderr %q", r.err, r.stderr)
	}
	ok("node", "add", "wf", "begin", "--category", "start")
	ok("node", "add", "wf", "build", "--category", "step")
	ok("node", "add", "wf", "test", "--category", "step")
	ok("edge", "add", "wf", "e1", "begin", "build", "--type", "next")
	ok("edge", "add", "wf", "e2", "build", "test", "--type", "next")
	ok("node", "set", "wf", "build", "--component", "state=ready")
	refused(`workflow rule "acyclic"`, "edge", "add", "wf", "e3", "test", "build", "--type", "next")
	refused(`workflow rule "transitions"`, "node", "set", "wf", "test", "--component", "state=done")

	r = cli("graph", "create", "deps", "--type", "deps")
	if r.err != nil || r.stderr != `note: "deps" is not a registered graph type (cairn graph types lists them): deps is an untyped graph labelled "deps"`+"\n" {
		t.Fatalf("graph create --type deps: err %v, stderr %q", r.err, r.stderr)
	}
	ok("node", "add", "deps", "a")
	ok("edge", "add", "deps", "loop", "a", "a")
}
