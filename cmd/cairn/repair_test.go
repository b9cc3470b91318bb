package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/api"
)

// The accident of issue 12 (`nats req cairn.events.g hello` stored five
// bytes on a graph's subject) through the CLI: health names the quarantined
// graph, commands and queries answer DATA_LOSS, repair at another seq is
// refused, repair at the named seq mends it.
func TestRepairGarbageMessage(t *testing.T) {
	eng := openEngine(t)
	srv := eng.ClientURL()
	mustRun(t, "graph", "create", "g", "--server", srv)
	mustRun(t, "node", "add", "g", "a", "--server", srv)
	js, err := jetstream.New(eng.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(context.Background(), "cairn.events.g", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := runCLI(t, "query", "stats", "g", "--server", srv)
		if r.err != nil && strings.Contains(r.err.Error(), "DATA_LOSS") {
			if want := fmt.Sprintf("seq %d", ack.Sequence); !strings.Contains(r.err.Error(), want) {
				t.Errorf("query error does not name %s: %v", want, r.err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query stats g: %v, want DATA_LOSS", r.err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := runCLI(t, "node", "add", "g", "b", "--server", srv); r.err == nil || !strings.Contains(r.err.Error(), "DATA_LOSS") {
		t.Errorf("node add on a quarantined graph: %v, want DATA_LOSS", r.err)
	}
	r := runCLI(t, "health", "--server", srv)
	if r.code() != exitFailure || !strings.Contains(r.stdout, "1 graphs quarantined for data loss") {
		t.Errorf("health: exit %d, err %v, stdout:\n%s", r.code(), r.err, r.stdout)
	}
	if r := runCLI(t, "repair", "g", "--seq", fmt.Sprint(ack.Sequence+1), "--server", srv); r.err == nil || !strings.Contains(r.err.Error(), "NOT_FOUND") {
		t.Errorf("repair at the wrong seq: %v, want NOT_FOUND", r.err)
	}
	if r := runCLI(t, "repair", "g", "--server", srv); r.code() != exitUsage {
		t.Errorf("repair without --seq: exit %d, want usage", r.code())
	}
	out := mustRun(t, "repair", "g", "--seq", fmt.Sprint(ack.Sequence), "--json", "--server", srv)
	var res api.RepairResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Dropped || !res.Resumed || res.Reason == "" {
		t.Fatalf("repair --json: %s (%v)", out, err)
	}
	mustRun(t, "node", "add", "g", "b", "--server", srv)
	mustRun(t, "verify", "g", "--server", srv)
	mustRun(t, "health", "--server", srv)
}
