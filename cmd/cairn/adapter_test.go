package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/adapter"
)

// TestAdapterRun runs "cairn adapter run people" against an engine, feeds
// it JSON events, stops it as SIGINT would and reads its summary and the
// graph it wrote.
func TestAdapterRun(t *testing.T) {
	eng := openEngine(t)
	url := eng.ClientURL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	stream, err := adapter.EnsureStream(ctx, js, adapter.DefaultConfig("people", "hr.people", "team"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{
		`{"id":"hr-1","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"alice","name":"Alice","email":"alice@example.com"}}`,
		`{"id":"hr-2","occurredAt":"2025-03-01T09:01:00Z","personUpserted":{"personId":"bob","name":"Bob"}}`,
		`{"id":"hr-3","occurredAt":"2025-03-01T09:02:00Z","personManages":{"managerId":"alice","reportId":"bob"}}`,
		`{"id":"hr-4","occurredAt":"2025-03-01T09:03:00Z","personManages":{"managerId":"alice","reportId":"bob"}}`,
		`not an event`,
	} {
		if _, err := js.Publish(ctx, "hr.people", []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	dead, _ := nc.SubscribeSync("hr.people.dead")

	runCtx, stop := context.WithCancel(ctx)
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"adapter", "run", "people", "--from", "hr.people", "--graph", "team", "--create-graph",
			"--server", url, "--json", "--progress", "50ms"}, &out, &errOut)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := js.Consumer(ctx, stream, "adapter_people_team")
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream == 5 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the adapter did not drain; stderr %s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop() // as SIGINT does
	if err := <-done; err != nil {
		t.Fatalf("adapter run: %v; stderr %s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var raw map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &raw); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if raw["kind"] != "summary" || raw["adapter"] != "people" || raw["written"] != 3.0 || raw["duplicates"] != 1.0 || raw["dead_lettered"] != 1.0 || raw["read"] != 5.0 {
		t.Errorf("summary %s", lines[len(lines)-1])
	}
	if !strings.Contains(errOut.String(), `"kind":"progress"`) {
		t.Errorf("no progress line on stderr: %q", errOut.String())
	}
	if m, err := dead.NextMsg(5 * time.Second); err != nil || string(m.Data) != "not an event" || m.Header.Get(adapter.HeaderReason) != adapter.ReasonUndecodable {
		t.Errorf("dead letter: %v %v", m, err)
	}
	seq := fmt.Sprint(raw["seq"])
	r := runCLI(t, "query", "neighbors", "team", "person:alice", "--server", url, "--min-seq", seq)
	if r.err != nil || !strings.Contains(r.stdout, "manages:person:alice:person:bob") {
		t.Errorf("query neighbors: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	t.Logf("summary: %s\nneighbors:\n%s", lines[len(lines)-1], r.stdout)
}

func TestAdapterList(t *testing.T) {
	r := runCLI(t, "adapter", "list")
	if r.err != nil || !strings.Contains(r.stdout, "people") || !strings.Contains(r.stdout, "location_part_of") {
		t.Fatalf("adapter list: %v %q", r.err, r.stdout)
	}
	r = runCLI(t, "adapter", "run", "pets", "--from", "x", "--graph", "g")
	if r.code() != exitUsage || !strings.Contains(r.stderr, `adapter "pets"`) {
		t.Errorf("adapter run pets: exit %d, stderr %q", r.code(), r.stderr)
	}
}
