package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// serve --cluster NAME joins the cluster NAME: its member's key is in the
// bucket cairn-members-NAME while it runs and gone after a drain.
func TestServeCluster(t *testing.T) {
	err := run(context.Background(), []string{"serve", "--cluster", "bad name", "--data", t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--cluster") {
		t.Fatalf("serve --cluster 'bad name': %v", err)
	}

	line, stop := serveInProcess(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--cluster", "c1", "--json", "--log-level", "warn")
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	nc, err := nats.Connect(ready.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var kv jetstream.KeyValue
	var keys []string
	for {
		// The member joins in the background after the ready line.
		if kv == nil {
			kv, _ = js.KeyValue(ctx, "cairn-members-c1")
		}
		if kv != nil {
			keys, _ = kv.Keys(ctx)
			if len(keys) == 1 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the member's key is not in cairn-members-c1: %v", keys)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Drain with a graceful leave: the key is deleted before the
	// embedded server stops, so read the bucket through a watcher that
	// sees the deletion.
	w, err := kv.Watch(ctx, keys[0], jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	// No w.Stop: it would ask the stopped server to delete the
	// watcher's consumer; closing the connection ends it.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.Updates():
		if e == nil || e.Operation() != jetstream.KeyValueDelete {
			t.Fatalf("after the drain the member's key saw %v, want a delete", e)
		}
	case <-ctx.Done():
		t.Fatal("the member's key was not deleted when serve drained")
	}
}
