package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestCatalogueScript runs testdata/catalogue.txt against an in-process
// engine: cairn graph list and show, and cairn query find across graphs.
func TestCatalogueScript(t *testing.T) {
	eng := openEngineNoSnapshots(t)
	runScript(t, "catalogue", eng.ClientURL())
}

// A find across graphs that skips a graph whose projection stopped says so:
// a note on stderr with the code and reason, and "skipped" in --json.
func TestFindAcrossNamesSkipped(t *testing.T) {
	eng := openEngineNoSnapshots(t)
	url := eng.ClientURL()
	for _, g := range []string{"good", "bad"} {
		mustRun(t, "graph", "create", g, "--server", url)
		mustRun(t, "node", "add", g, "x", "--category", "pkg", "--server", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), "cairn.events.bad", []byte("junk!")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := runCLI(t, "query", "find", "--all-graphs", "--category", "pkg", "--server", url)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if strings.Contains(r.stderr, "graph bad not searched") {
			if !strings.Contains(r.stderr, "ERROR_CODE_DATA_LOSS") || r.stdout != "as_of_seq="+strings.TrimPrefix(strings.Split(r.stdout, "\n")[0], "as_of_seq=")+"\ngood  x\n" {
				t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bad never named as skipped: stdout %q stderr %q", r.stdout, r.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	js2 := mustRun(t, "query", "find", "--all-graphs", "--category", "pkg", "--json", "--server", url)
	if !strings.Contains(js2, `"skipped":[{"graph_id":"bad","code":"ERROR_CODE_DATA_LOSS"`) {
		t.Fatalf("--json: %s", js2)
	}
}
