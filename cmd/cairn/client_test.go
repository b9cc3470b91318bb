package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/internal/natstest"
)

// TestClientScript runs testdata/client.txt against an in-process engine and
// compares the transcript with testdata/client.golden. The engine takes no
// snapshots, so that what verify lists does not depend on timing; the
// snapshot commands are tested in history_test.go.
func TestClientScript(t *testing.T) {
	eng := openEngineNoSnapshots(t)
	runScript(t, "client", eng.ClientURL())
}

// runScript runs testdata/NAME.txt against the engine at server and
// compares the transcript with testdata/NAME.golden.
func runScript(t *testing.T, name, server string) {
	t.Helper()
	bare := natstest.Start(t).ClientURL()
	script, err := os.ReadFile(filepath.Join("testdata", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, line := range strings.Split(string(script), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			b.WriteString(line + "\n")
			continue
		}
		args, err := splitWords(line)
		if err != nil {
			t.Fatalf("%s.txt:%d: %v", name, i+1, err)
		}
		for k, a := range args {
			args[k] = strings.NewReplacer("$SERVER", server, "$BARE", bare).Replace(a)
		}
		args = withServer(args, server)
		r := runCLI(t, args...)
		fmt.Fprintf(&b, "$ cairn %s\n", line)
		b.WriteString(r.stdout)
		for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
			if l != "" {
				b.WriteString("stderr| " + l + "\n")
			}
		}
		if c := r.code(); c != 0 {
			fmt.Fprintf(&b, "[exit %d]\n", c)
		}
	}
	got := strings.NewReplacer(server, "$SERVER", bare, "$BARE").Replace(mask(b.String()))
	golden(t, name+".golden", got)
}

// withServer adds "--server url" to a client command line that names no
// server, after the command's words.
func withServer(args []string, url string) []string {
	if slices.Contains(args, "--server") || len(args) == 0 {
		return args
	}
	at := 0
	switch args[0] {
	case "log", "verify", "health", "history", "diff", "archive":
		at = 1
	case "graph", "node", "edge", "query":
		at = 2
	}
	if at == 0 || len(args) < at {
		return args
	}
	return slices.Concat(args[:at], []string{"--server", url}, args[at:])
}

// splitWords splits a script line into words; single or double quotes group
// words with spaces.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// TestBrokenChain stores a transaction that breaks the chain: log and verify
// must report the break and exit with status 1.
func TestBrokenChain(t *testing.T) {
	eng := openEngineNoSnapshots(t) // verify prints nothing but the break
	server := eng.ClientURL()
	mustRun(t, "graph", "create", "tamper", "--server", server)
	mustRun(t, "node", "add", "tamper", "n1", "--server", server)
	ctx := context.Background()
	rec, err := eng.Store().Get(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(eng.Conn())
	if err != nil {
		t.Fatal(err)
	}
	// The same transaction once more: its event claims position 2 again.
	raw, err := js.Stream(ctx, "event-store")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := raw.GetMsg(ctx, rec.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, msg.Subject, msg.Data); err != nil {
		t.Fatal(err)
	}

	const want = "graph tamper: chain broken at seq 3 (event 3): chain position: want 3, got 2"
	r := runCLI(t, "verify", "tamper", "--server", server)
	if r.code() != exitFailure || r.stdout != "" || r.stderr != "cairn: "+want+"\n" {
		t.Errorf("verify: exit %d, stdout %q, stderr %q", r.code(), r.stdout, r.stderr)
	}
	r = runCLI(t, "verify", "tamper", "--server", server, "--json")
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("verify --json: %v: %q", err, r.stdout)
	}
	if r.code() != exitFailure || v.OK || v.Error != want || v.Transactions != 2 || v.Events != 2 || v.LastSeq != 3 {
		t.Errorf("verify --json: exit %d, %+v", r.code(), v)
	}
	r = runCLI(t, "log", "tamper", "--server", server)
	if r.code() != exitFailure || strings.Count(r.stdout, "\nseq ") != 1 || !strings.HasSuffix(r.stderr, want+"\n") {
		t.Errorf("log: exit %d, stdout %q, stderr %q", r.code(), r.stdout, r.stderr)
	}
}
