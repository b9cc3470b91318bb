package main

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
)

// TestTupleCheckEndToEnd runs the engine in-process on its embedded NATS:
// it creates an authorization graph from the example schema, writes
// tuples, checks with the write's seq as min_seq (the zookie), deletes,
// checks again, expands, and restarts the engine from its snapshots: the
// rebuilt index answers alike.
func TestTupleCheckEndToEnd(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--data", dir, "--nats-listen", "127.0.0.1:0", "--json", "--log-level", "warn",
		"--snapshot-every", "3", "--readmodel-snapshot-every", "3", "--snapshot-spacing", "0"}
	line, stop := serveInProcess(t, args...)
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	srv := ready.NATS
	mustRun(t, "graph", "create", "docs", "--type", "authorization", "--schema", "../../docs/examples/authorization-schema.json", "--server", srv)
	seqRE := regexp.MustCompile(`seq=(\d+)`)
	write := func(args ...string) string {
		t.Helper()
		out := mustRun(t, append(append([]string{"tuple"}, args...), "--server", srv)...)
		m := seqRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("tuple %v printed %q: no seq", args, out)
		}
		return m[1]
	}
	check := func(seq, tuple string) string {
		t.Helper()
		out := mustRun(t, "query", "check", "docs", tuple, "--min-seq", seq, "--server", srv)
		return strings.Fields(out)[0]
	}
	seq := write("write", "docs", "group:eng#member@user:alice", "folder:handbook#viewer@group:eng#member",
		"doc:readme#parent@folder:handbook", "doc:readme#owner@user:carol")
	for tuple, want := range map[string]string{
		"doc:readme#viewer@user:alice":       "allowed", // via the folder's viewers, a group
		"doc:readme#viewer@user:carol":       "allowed", // owner → editor → viewer
		"doc:readme#editor@user:alice":       "denied",
		"doc:readme#viewer@user:bob":         "denied",
		"doc:readme#viewer@group:eng#member": "allowed", // a userset subject
	} {
		if got := check(seq, tuple); got != want {
			t.Errorf("check %s at seq %s: %s, want %s", tuple, seq, got, want)
		}
	}
	seq = write("write", "docs", "doc:readme#banned@user:alice")
	if got := check(seq, "doc:readme#viewer@user:alice"); got != "denied" {
		t.Errorf("banned alice: %s, want denied", got)
	}
	seq = write("delete", "docs", "doc:readme#banned@user:alice")
	if got := check(seq, "doc:readme#viewer@user:alice"); got != "allowed" {
		t.Errorf("alice unbanned: %s, want allowed", got)
	}
	// Refusals are the engine's, with their codes.
	r := runCLI(t, "tuple", "write", "docs", "doc:readme#owner@user:carol", "--server", srv)
	if !errors.Is(r.err, aggregate.ErrAlreadyExists) {
		t.Errorf("writing an existing tuple: %v, want ALREADY_EXISTS", r.err)
	}
	r = runCLI(t, "tuple", "write", "docs", "doc:readme#nope@user:alice", "--server", srv)
	if !errors.Is(r.err, aggregate.ErrFailedPrecondition) || !strings.Contains(r.stderr, "namespace doc has no relation nope") {
		t.Errorf("unknown relation: %v %q", r.err, r.stderr)
	}
	r = runCLI(t, "node", "add", "docs", "x", "--server", srv)
	if !errors.Is(r.err, aggregate.ErrFailedPrecondition) || !strings.Contains(r.stderr, "authorization graphs change by write_tuple and delete_tuple") {
		t.Errorf("node add on an authorization graph: %v %q", r.err, r.stderr)
	}
	out := mustRun(t, "query", "expand", "docs", "doc:readme#viewer", "--min-seq", seq, "--server", srv)
	for _, want := range []string{"doc:readme#viewer exclusion", "[folder:handbook#viewer]", "doc:readme#owner [user:carol]", "doc:readme#banned []"} {
		if !strings.Contains(out, want) {
			t.Errorf("expand lacks %q:\n%s", want, out)
		}
	}
	var rep struct {
		AsOfSeq string `json:"as_of_seq"`
		Check   struct {
			Allowed bool `json:"allowed"`
		} `json:"check"`
	}
	js := mustRun(t, "query", "check", "docs", "doc:readme#viewer@user:carol", "--min-seq", seq, "--json", "--server", srv)
	if err := json.Unmarshal([]byte(js), &rep); err != nil || !rep.Check.Allowed || rep.AsOfSeq < seq {
		t.Errorf("check --json: %q (%v)", js, err)
	}
	waitSnapshots(t, srv, "docs")
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	line, stop = serveInProcess(t, args...)
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	srv = ready.NATS
	for tuple, want := range map[string]string{
		"doc:readme#viewer@user:alice": "allowed",
		"doc:readme#viewer@user:carol": "allowed",
		"doc:readme#viewer@user:bob":   "denied",
	} {
		if got := check(seq, tuple); got != want {
			t.Errorf("after restart: check %s: %s, want %s", tuple, got, want)
		}
	}
	seq = write("delete", "docs", "group:eng#member@user:alice")
	if got := check(seq, "doc:readme#viewer@user:alice"); got != "denied" {
		t.Errorf("after restart, alice left eng: %s, want denied", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}
