package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/testbin"
)

// The operations manual and what checks it.
const (
	opsManual = "docs/operations.md"
	// repoRoot is the repository's root from this package's directory.
	repoRoot = "../.."
)

// opsAlerts are the alerts of deploy/prometheus/cairn-rules.yml: the
// manual has a heading per alert, whose anchor the rule's runbook names.
var opsAlerts = []string{
	"CairnProjectionLag", "CairnCommandErrors", "CairnSnapshotFailures", "CairnChainCheckFailed",
	"CairnGraphStopped", "CairnStreamLost", "CairnDiskNearFull", "CairnMemoryNearLimit",
	"CairnActivationFailures", "CairnCommandLatencyAnomaly", "CairnNotReady", "CairnDown",
}

// docBlock is a fenced code block of a Markdown file.
type docBlock struct {
	line int    // of the opening fence, from 1
	tag  string // the fence's info string: sh, sh-norun, yaml, text…
	body string
	// runBy is the HTML comment just above the fence, "<!-- run by
	// TestX in FILE -->": the test and its file, else empty.
	runBy, runByFile string
}

var runByComment = regexp.MustCompile(`^<!--\s*run by (Test\w*) in (\S+)\s*-->$`)

// docBlocks returns the fenced code blocks of md, in order. A fence is a
// line starting with three backquotes at the start of the line; an
// unterminated block is an error.
func docBlocks(md string) ([]docBlock, error) {
	var blocks []docBlock
	var cur *docBlock
	var body strings.Builder
	prev := "" // the last non-blank line outside a block
	sc := bufio.NewScanner(strings.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &docBlock{line: n, tag: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			if m := runByComment.FindStringSubmatch(prev); m != nil {
				cur.runBy, cur.runByFile = m[1], m[2]
			}
			body.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.body = body.String()
			blocks = append(blocks, *cur)
			cur, prev = nil, ""
		case cur != nil:
			body.WriteString(line)
			body.WriteByte('\n')
		case strings.TrimSpace(line) != "":
			prev = strings.TrimSpace(line)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: the code block is not closed", cur.line)
	}
	return blocks, sc.Err()
}

func TestDocBlocks(t *testing.T) {
	md := "# T\n\n```sh\necho a\n```\n\n<!-- run by TestX in x_test.go -->\n\n```sh-norun\nb\n```\ntext\n```yaml\nc: 1\n```\n"
	got, err := docBlocks(md)
	if err != nil {
		t.Fatal(err)
	}
	want := []docBlock{
		{line: 3, tag: "sh", body: "echo a\n"},
		{line: 9, tag: "sh-norun", body: "b\n", runBy: "TestX", runByFile: "x_test.go"},
		{line: 13, tag: "yaml", body: "c: 1\n"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("docBlocks:\n got %+v\nwant %+v", got, want)
	}
	if _, err := docBlocks("```sh\necho\n"); err == nil {
		t.Error("an unclosed block: no error")
	}
}

// githubAnchor is the anchor GitHub gives a Markdown heading's text.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestOperationsManual is the docs check of docs/operations.md: every
// ```sh block runs, in order, as one bash script in a temporary directory
// with the built cairn first on PATH and $CAIRN_REPO the repository's
// root; every ```sh-norun block names, in
// the comment above it, a test of the repository that runs the same; every
// alert has its heading; every metric the engine exports is described.
func TestOperationsManual(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, opsManual))
	if err != nil {
		t.Fatal(err)
	}
	md := string(raw)
	blocks, err := docBlocks(md)
	if err != nil {
		t.Fatalf("%s: %v", opsManual, err)
	}

	t.Run("norun", func(t *testing.T) {
		for _, b := range blocks {
			if b.tag != "sh-norun" {
				continue
			}
			if b.runBy == "" {
				t.Errorf("%s:%d: a sh-norun block needs <!-- run by TestX in FILE --> just above it", opsManual, b.line)
				continue
			}
			src, err := os.ReadFile(filepath.Join(repoRoot, b.runByFile))
			if err != nil {
				t.Errorf("%s:%d: run by %s: %v", opsManual, b.line, b.runBy, err)
				continue
			}
			if !bytes.Contains(src, []byte("func "+b.runBy+"(")) {
				t.Errorf("%s:%d: %s has no func %s", opsManual, b.line, b.runByFile, b.runBy)
			}
		}
	})

	t.Run("anchors", func(t *testing.T) {
		anchors := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^#{1,6} (.+)$`).FindAllStringSubmatch(md, -1) {
			anchors[githubAnchor(strings.TrimSpace(m[1]))] = true
		}
		alerts := append([]string(nil), opsAlerts...)
		// The rules, once merged: every alert in them, and the anchor of
		// every runbook they name.
		if rules, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/cairn-rules.yml")); err == nil {
			for _, m := range regexp.MustCompile(`(?m)^\s*-?\s*alert:\s*(\S+)`).FindAllSubmatch(rules, -1) {
				alerts = append(alerts, string(m[1]))
			}
			for _, m := range regexp.MustCompile(`docs/operations\.md#([\w-]+)`).FindAllSubmatch(rules, -1) {
				if !anchors[string(m[1])] {
					t.Errorf("deploy/prometheus/cairn-rules.yml: runbook anchor #%s is no heading of %s", m[1], opsManual)
				}
			}
		}
		for _, m := range regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(md, -1) {
			if !anchors[m[1]] {
				t.Errorf("%s: the link to #%s names no heading", opsManual, m[1])
			}
		}
		for _, a := range alerts {
			if !anchors[strings.ToLower(a)] {
				t.Errorf("%s: no heading for the alert %s (anchor #%s)", opsManual, a, strings.ToLower(a))
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		name := regexp.MustCompile(`"(cairn_[a-z0-9_]+)"`)
		for _, f := range []string{"metrics/metrics.go", "engine_metrics.go"} {
			src, err := os.ReadFile(filepath.Join(repoRoot, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range name.FindAllSubmatch(src, -1) {
				if !strings.Contains(md, "`"+string(m[1])+"`") && !strings.Contains(md, "`"+string(m[1])+"{") {
					t.Errorf("%s: the metric %s (%s) is not described", opsManual, m[1], f)
				}
			}
		}
	})

	t.Run("run", func(t *testing.T) { runManual(t, blocks) })
}

// runManual runs the manual's sh blocks as one script and fails showing
// the block that failed and its output.
func runManual(t *testing.T, blocks []docBlock) {
	bin := testbin.Cairn(t)
	var script strings.Builder
	// The prologue: stop at the first failure, and on exit stop every
	// process the blocks left in the background (cairn serve).
	script.WriteString("set -euo pipefail\n" +
		"trap 'rc=$?; for p in $(jobs -p); do kill -TERM $p 2>/dev/null || true; done; wait || true; exit $rc' EXIT\n")
	var run []docBlock
	for _, b := range blocks {
		if b.tag != "sh" {
			continue
		}
		fmt.Fprintf(&script, "echo '=== block %d' >&2\n%s", len(run), b.body)
		run = append(run, b)
	}
	if len(run) == 0 {
		t.Fatalf("%s has no sh block", opsManual)
	}
	script.WriteString("echo '=== done' >&2\n")

	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	// The blocks find the repository's files (the Prometheus rules) under
	// $CAIRN_REPO.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "CAIRN_REPO="+root)
	// A group of its own: on a timeout the whole group goes, serve included.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything left behind
	output := out.String()
	if testing.Verbose() {
		t.Logf("the manual's script ran %d blocks in %s:\n%s", len(run), time.Since(start).Round(time.Millisecond), output)
	}
	if err == nil && strings.HasSuffix(output, "=== done\n") {
		return
	}
	// The last block that started is the one that failed.
	last, since := -1, 0
	for i := range run {
		if at := strings.LastIndex(output, fmt.Sprintf("=== block %d\n", i)); at >= 0 {
			last, since = i, at
		}
	}
	if last < 0 {
		t.Fatalf("the manual's script failed before its first block: %v\n%s", err, output)
	}
	b := run[last]
	t.Fatalf("%s:%d: this block failed (%v):\n%s\nits output:\n%s", opsManual, b.line, err, b.body, output[since:])
}
