package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestImportCommand(t *testing.T) {
	eng := openEngine(t)
	server := eng.ClientURL()
	dir := t.TempDir()
	edges := filepath.Join(dir, "deps.txt")
	text := "# dependencies\npython3.11 libstdc++6\nlibstdc++6 libc6 depends\n\nbogus\npython3.11 a:b/c@d+e\n"
	if err := os.WriteFile(edges, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "import", "deps", edges, "--server", server)
	if r.code() != 1 || !strings.Contains(r.stderr, "graph deps does not exist: create it with 'cairn graph create deps', or import with --create") {
		t.Fatalf("import into a missing graph: exit %d, stderr %q", r.code(), r.stderr)
	}

	r = runCLI(t, "import", "deps", edges, "--server", server, "--create")
	if r.code() != 1 {
		t.Fatalf("import with a bad line: exit %d, want 1; stderr %q", r.code(), r.stderr)
	}
	if want := edges + ":5: one field \"bogus\"; want 'source target [type]'\n"; !strings.HasPrefix(r.stderr, want) {
		t.Errorf("stderr %q, want it to start with %q", r.stderr, want)
	}
	if !strings.Contains(r.stderr, "cairn: 1 bad lines skipped") {
		t.Errorf("stderr %q does not count the bad line", r.stderr)
	}
	if ok := regexp.MustCompile(`^ok edges=3 nodes=0 lines=6 bad=1 existing=0 duplicates=0 envelopes=1 elapsed=\S+ rate=\d+/s seq=\d+\n$`); !ok.MatchString(r.stdout) {
		t.Errorf("stdout %q", r.stdout)
	}
	if _, err := os.Stat(edges + ".cairn-import"); !os.IsNotExist(err) {
		t.Errorf("checkpoint left behind: %v", err)
	}
	// Read the import's writes: min-seq, the seq it printed.
	seq := regexp.MustCompile(`seq=(\d+)`).FindStringSubmatch(r.stdout)
	if seq == nil {
		t.Fatalf("stdout %q has no seq", r.stdout)
	}
	out := mustRun(t, "query", "neighbors", "deps", "python3.11", "--server", server, "--min-seq", seq[1])
	for _, want := range []string{"python3.11->libstdc++6", "python3.11->a:b/c@d+e"} {
		if !strings.Contains(out, want) {
			t.Errorf("query neighbors: %q lacks %q", out, want)
		}
	}

	// --json, --strict, CSV with a nodes file.
	nodes := filepath.Join(dir, "nodes.csv")
	csvEdges := filepath.Join(dir, "edges.csv")
	if err := os.WriteFile(nodes, []byte("id,category,version\nlibc6,lib,2.39\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(csvEdges, []byte("source,target,type\nlibc6,ld-linux,depends\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "import", "pkgs", csvEdges, "--nodes", nodes, "--server", server, "--create", "--json", "--strict")
	if r.err != nil {
		t.Fatalf("csv import: %v\nstderr %s", r.err, r.stderr)
	}
	var sum struct {
		Done  bool   `json:"done"`
		Nodes int64  `json:"nodes"`
		Edges int64  `json:"edges"`
		Lines int64  `json:"lines"`
		Seq   uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || !sum.Done || sum.Nodes != 1 || sum.Edges != 1 || sum.Lines != 4 || sum.Seq == 0 {
		t.Errorf("--json summary %q (%v)", r.stdout, err)
	}
	out = mustRun(t, "query", "node", "pkgs", "libc6", "--server", server, "--min-seq", strconv.FormatUint(sum.Seq, 10))
	if !strings.Contains(out, "version") || !strings.Contains(out, "2.39") || !strings.Contains(out, "lib") {
		t.Errorf("query node libc6: %q", out)
	}

	r = runCLI(t, "import", "deps", edges, "--server", server, "--strict", "--no-resume")
	if r.code() != 1 || !strings.Contains(r.stderr, edges+":5: one field") || !strings.Contains(r.stderr, "--strict") {
		t.Errorf("--strict: exit %d, stderr %q", r.code(), r.stderr)
	}

	// edge add --create-missing, the engine change import builds on.
	if r = runCLI(t, "edge", "add", "deps", "e9", "new1", "new2", "--server", server); r.code() != 1 {
		t.Errorf("edge add to missing nodes: exit %d, want 1", r.code())
	}
	added := regexp.MustCompile(`seq=(\d+)`).FindStringSubmatch(mustRun(t, "edge", "add", "deps", "e9", "new1", "new2", "--create-missing", "--server", server))
	if added == nil {
		t.Fatal("edge add printed no seq")
	}
	if out := mustRun(t, "query", "node", "deps", "new2", "--server", server, "--min-seq", added[1]); !strings.Contains(out, "new2") {
		t.Errorf("query node new2: %q", out)
	}

	r = runCLI(t, "import", "deps", edges, "--format", "xml", "--server", server)
	if r.code() != 2 {
		t.Errorf("--format xml: exit %d, want 2", r.code())
	}
}
