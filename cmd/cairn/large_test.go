package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRemoveHubThenDeleteGraph: removing a node with 100,000 edges is one
// transaction of about 21 MB, far past the old 8 MiB max_payload (about 210
// bytes an event), written, folded by the projection, paged by history and
// checked by verify; deleting the graph then is one GraphDeleted event that
// the projection, time travel and verify take in their stride.
func TestRemoveHubThenDeleteGraph(t *testing.T) {
	const hubEdges, others = 100_000, 5_000
	eng := openEngine(t)
	server := eng.ClientURL()
	var b strings.Builder
	for i := range hubEdges {
		fmt.Fprintf(&b, "hub n%d\n", i)
	}
	for i := range others {
		fmt.Fprintf(&b, "n%d n%d\n", i, i+1)
	}
	path := filepath.Join(t.TempDir(), "hub.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustRun(t, "import", "g", path, "--create", "--no-progress", "--server", server)
	t.Logf("import of %d edges: %s", hubEdges+others, time.Since(start))

	start = time.Now()
	out := mustRun(t, "node", "remove", "g", "hub", "--timeout", "1m", "--server", server)
	t.Logf("node remove hub (%d edges): %s: %s", hubEdges, time.Since(start), strings.TrimSpace(out))
	seq := seqOf(t, out)
	start = time.Now()
	stats := mustRun(t, "query", "stats", "g", "--min-seq", seq, "--timeout", "1m", "--server", server)
	t.Logf("stats after it (projection applied): %s", time.Since(start))
	// n0 ... n(hubEdges-1) stay, and the others' edges among them.
	if !strings.Contains(stats, fmt.Sprintf(" nodes=%d edges=%d ", hubEdges, others)) {
		t.Errorf("stats after removing the hub:\n%s", stats)
	}
	hist := mustRun(t, "history", "g", "--from-seq", seq, "--server", server)
	if !strings.Contains(hist, strconv.Itoa(hubEdges+1)) {
		t.Errorf("history of the removal does not count its %d events:\n%s", hubEdges+1, hist)
	}

	start = time.Now()
	out = mustRun(t, "graph", "delete", "g", "--server", server)
	t.Logf("graph delete: %s", time.Since(start))
	del := seqOf(t, out)
	start = time.Now()
	r := runCLI(t, "query", "stats", "g", "--min-seq", del, "--server", server)
	t.Logf("stats after the delete: %s", time.Since(start))
	if r.err == nil || !strings.Contains(r.stderr, "deleted") {
		t.Errorf("stats of a deleted graph: err %v, stderr %q", r.err, r.stderr)
	}
	start = time.Now()
	asOf := mustRun(t, "query", "stats", "g", "--as-of", seq, "--timeout", "1m", "--server", server)
	t.Logf("stats as of before the delete (time travel): %s", time.Since(start))
	if asOf != stats {
		t.Errorf("time travel to seq %s:\n%s\nwant\n%s", seq, asOf, stats)
	}
	start = time.Now()
	// verify reads the 21 MB transaction back through a consumer, which
	// the embedded server serves slowly (most of its time copying message
	// blocks): 12-16 s alone, over a minute beside the rest of the suite.
	mustRun(t, "verify", "g", "--timeout", "4m", "--server", server)
	t.Logf("verify: %s", time.Since(start))
}

var seqRE = regexp.MustCompile(`\bseq=(\d+)`)

func seqOf(t *testing.T, out string) string {
	t.Helper()
	m := seqRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no seq= in %q", out)
	}
	return m[1]
}
