package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/cairn-graph/cairn/api"
)

// nkeyConn connects to url with the nkey seed in seedFile, its replies
// under its own inbox; every permission violation the server reports goes
// to the returned channel.
func nkeyConn(t *testing.T, url, seedFile string) (*nats.Conn, chan error) {
	t.Helper()
	seed, err := os.ReadFile(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	refusals := make(chan error, 16)
	nc, err := nats.Connect(url, opt, nats.CustomInboxPrefix(api.InboxPrefix(pub)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				refusals <- err
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, refusals
}

// mustBeDenied runs op and wants the server to refuse it a publish to
// subject (op then stops: its context ends).
func mustBeDenied(t *testing.T, refusals chan error, subject string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op(ctx) }()
	select {
	case err := <-refusals:
		cancel()
		<-done
		if !strings.Contains(err.Error(), `"`+subject+`"`) {
			t.Errorf("refused %v, want a refusal of %s", err, subject)
		}
	case err := <-done:
		t.Errorf("%s: not refused (%v)", subject, err)
	}
}

// TestAdapterSecured runs the people adapter on an engine with users, as a
// user of role adapter: events in, graph checked. The same user may not
// write another graph, read or purge the event stream, create a stream
// outside its allowance or consume another adapter's stream, and a plain
// writer cannot run an adapter: it is stopped at once, told the right it
// lacks and the role that has it.
func TestAdapterSecured(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.json")
	hrSeed, crmSeed, appSeed := filepath.Join(dir, "hr.nk"), filepath.Join(dir, "crm.nk"), filepath.Join(dir, "app.nk")
	withStdin(t, "admin-secret\n", func() {
		mustRun(t, "auth", "add-user", file, "ops", "--role", "admin", "--password-stdin")
	})
	out := mustRun(t, "auth", "add-user", file, "hr", "--role", "adapter", "--graph", "org", "--source", "hr.people", "--new-nkey", hrSeed, "--json")
	var hrUser authUserJSON
	if err := json.Unmarshal([]byte(out), &hrUser); err != nil || hrUser.Role != "adapter" ||
		strings.Join(hrUser.DeadLetters, ",") != "hr.people.dead" || len(hrUser.Streams) != 3 {
		t.Fatalf("add-user adapter: %s (%v)", out, err)
	}
	mustRun(t, "auth", "add-user", file, "crm", "--role", "adapter", "--graph", "crm", "--source", "crm.people", "--stream", "CRM_PEOPLE", "--new-nkey", crmSeed)
	mustRun(t, "auth", "add-user", file, "app", "--role", "writer", "--graph", "org", "--new-nkey", appSeed)
	if r := runCLI(t, "auth", "add-user", file, "x", "--role", "adapter", "--graph", "org", "--new-nkey", filepath.Join(dir, "x.nk")); r.code() != 1 || !strings.Contains(r.stderr, "names no sources") {
		t.Errorf("adapter without sources: exit %d, %s", r.code(), r.stderr)
	}
	if got := mustRun(t, "auth", "list", file); !strings.Contains(got, "hr adapter graphs org sources hr.people streams ADAPTER_PEOPLE,ADAPTER_ORGANISATIONS,ADAPTER_LOCATIONS dead-letters hr.people.dead (nkey ") {
		t.Errorf("auth list:\n%s", got)
	}

	line, stop := serveInProcess(t, "--data", filepath.Join(dir, "data"), "--nats-listen", "127.0.0.1:0", "--auth", file, "--json", "--log-level", "error")
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ready.NATS, "nats://"))
	url := "nats://127.0.0.1:" + port
	ops := []string{"--server", url, "--user", "ops", "--password", "admin-secret"}
	hr := []string{"--server", url, "--nkey", hrSeed}
	mustRun(t, append([]string{"graph", "create", "other"}, ops...)...)

	// The adapter, as hr: it creates graph org and ADAPTER_PEOPLE.
	ctx := context.Background()
	runCtx, stopAdapter := context.WithCancel(ctx)
	defer stopAdapter()
	var aout, aerr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, append([]string{"adapter", "run", "people", "--from", "hr.people", "--graph", "org", "--create-graph",
			"--json", "--progress", "50ms", "--retry-delay", "20ms"}, hr...), &aout, &aerr)
	}()
	hrc, hrRefused := nkeyConn(t, url, hrSeed)
	hrjs, _ := jetstream.New(hrc)
	waitConsumer := func(cond func(*jetstream.ConsumerInfo) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if c, err := hrjs.Consumer(ctx, "ADAPTER_PEOPLE", "adapter_people_org"); err == nil {
				if info, err := c.Info(ctx); err == nil && cond(info) {
					return
				}
			}
			select {
			case err := <-done:
				t.Fatalf("adapter run stopped: %v\nstderr %s", err, aerr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("the adapter did not get there; stderr %s", aerr.String())
			}
		}
	}
	waitConsumer(func(*jetstream.ConsumerInfo) bool { return true })

	// The source publishes with the adapter's login (it may publish to
	// its sources).
	events := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(events, []byte(strings.Join([]string{
		`{"id":"hr-1","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"alice","name":"Alice"}}`,
		`{"id":"hr-2","occurredAt":"2025-03-01T09:01:00Z","personUpserted":{"personId":"bob","name":"Bob"}}`,
		`{"id":"hr-3","occurredAt":"2025-03-01T09:02:00Z","personManages":{"managerId":"alice","reportId":"bob"}}`,
		`not an event`,
	}, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, append([]string{"adapter", "publish", "--to", "hr.people", events}, hr...)...); got != "published 4\n" {
		t.Fatalf("adapter publish: %q", got)
	}
	waitConsumer(func(info *jetstream.ConsumerInfo) bool {
		return info.Delivered.Stream == 4 && info.NumPending == 0 && info.NumAckPending == 0
	})
	stopAdapter()
	if err := <-done; err != nil {
		t.Fatalf("adapter run: %v; stderr %s", err, aerr.String())
	}
	lines := strings.Split(strings.TrimSpace(aout.String()), "\n")
	var sum map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("summary %q: %v", aout.String(), err)
	}
	if sum["written"] != 3.0 || sum["dead_lettered"] != 1.0 || sum["read"] != 4.0 {
		t.Errorf("summary %s", lines[len(lines)-1])
	}
	if r := runCLI(t, append([]string{"query", "neighbors", "org", "person:alice", "--min-seq", fmt.Sprint(sum["seq"])}, hr...)...); r.err != nil ||
		!strings.Contains(r.stdout, "manages:person:alice:person:bob") {
		t.Errorf("query neighbors as hr: %v\n%s%s", r.err, r.stdout, r.stderr)
	}

	// What hr may not do.
	if r := runCLI(t, append([]string{"node", "add", "other", "x", "--timeout", "5s"}, hr...)...); r.code() != 1 || !strings.Contains(r.stderr, "ermission") {
		t.Errorf("node add other as hr: exit %d, %s", r.code(), r.stderr)
	}
	mustBeDenied(t, hrRefused, "$JS.API.STREAM.INFO.event-store", func(ctx context.Context) error {
		_, err := hrjs.Stream(ctx, "event-store")
		return err
	})
	mustBeDenied(t, hrRefused, "$JS.API.CONSUMER.CREATE.event-store.peek.cairn.events.org", func(ctx context.Context) error {
		_, err := hrjs.CreateOrUpdateConsumer(ctx, "event-store", jetstream.ConsumerConfig{Durable: "peek", FilterSubject: "cairn.events.org"})
		return err
	})
	mustBeDenied(t, hrRefused, "$JS.API.STREAM.PURGE.event-store", func(ctx context.Context) error {
		_, err := hrc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE.event-store", nil)
		return err
	})
	mustBeDenied(t, hrRefused, "$JS.API.STREAM.CREATE.ROGUE", func(ctx context.Context) error {
		_, err := hrjs.CreateStream(ctx, jetstream.StreamConfig{Name: "ROGUE", Subjects: []string{"rogue.x"}})
		return err
	})
	mustBeDenied(t, hrRefused, "$JS.API.STREAM.CREATE.event-store", func(ctx context.Context) error {
		_, err := hrjs.CreateStream(ctx, jetstream.StreamConfig{Name: "event-store", Subjects: []string{"hr.people.x"}})
		return err
	})
	// crm's stream, made by crm; hr may not read it, under its own
	// durable's name or crm's.
	crmc, _ := nkeyConn(t, url, crmSeed)
	crmjs, _ := jetstream.New(crmc)
	if _, err := crmjs.CreateStream(ctx, jetstream.StreamConfig{Name: "CRM_PEOPLE", Subjects: []string{"crm.people"}}); err != nil {
		t.Fatalf("crm creates its stream: %v", err)
	}
	if _, err := crmjs.CreateOrUpdateConsumer(ctx, "CRM_PEOPLE", jetstream.ConsumerConfig{Durable: "adapter_people_crm", FilterSubject: "crm.people", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatalf("crm creates its consumer: %v", err)
	}
	mustBeDenied(t, hrRefused, "$JS.API.CONSUMER.CREATE.CRM_PEOPLE.adapter_people_org.crm.people", func(ctx context.Context) error {
		_, err := hrjs.CreateOrUpdateConsumer(ctx, "CRM_PEOPLE", jetstream.ConsumerConfig{Durable: "adapter_people_org", FilterSubject: "crm.people"})
		return err
	})
	mustBeDenied(t, hrRefused, "$JS.API.CONSUMER.MSG.NEXT.CRM_PEOPLE.adapter_people_crm", func(ctx context.Context) error {
		_, err := hrc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.CRM_PEOPLE.adapter_people_crm", []byte(`{"batch":1}`))
		return err
	})
	// The event stream is whole.
	if out := mustRun(t, append([]string{"verify", "org"}, ops...)...); !strings.Contains(out, "chain whole") {
		t.Errorf("verify org: %s", out)
	}

	// A plain writer of org cannot run the adapter: stopped at once,
	// told what it lacks.
	r := runCLI(t, "adapter", "run", "people", "--from", "hr.people", "--graph", "org", "--server", url, "--nkey", appSeed)
	if r.code() != 1 || !strings.Contains(r.stderr, "Permissions Violation") || !strings.Contains(r.stderr, "role adapter") ||
		!strings.Contains(r.stderr, "--role adapter --graph org --source hr.people") {
		t.Errorf("adapter run as a writer: exit %d, %s", r.code(), r.stderr)
	}
	t.Logf("adapter run as a writer: %s", r.stderr)
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}
