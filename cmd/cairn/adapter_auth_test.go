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
	"slices"
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
// user of role adapter: the engine creates its stream, events in, graph
// checked. The same user may not write another graph, read or purge the
// event stream, create any stream itself, have the engine create one
// capturing the engine's subjects, subjects outside its sources or under
// a name outside its streams, or consume another adapter's stream; a
// reader or writer may not ask the engine for a stream; and a plain
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
	mustRun(t, "auth", "add-user", file, "crm", "--role", "adapter", "--graph", "crm", "--source", "crm.people", "--source", "crm.orgs", "--stream", "CRM_PEOPLE", "--new-nkey", crmSeed)
	mustRun(t, "auth", "add-user", file, "app", "--role", "writer", "--graph", "org", "--new-nkey", appSeed)
	readerSeed := filepath.Join(dir, "reader.nk")
	mustRun(t, "auth", "add-user", file, "viewer", "--role", "reader", "--new-nkey", readerSeed)
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

	// The adapter, as hr: it creates graph org, and the engine
	// ADAPTER_PEOPLE.
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
	if got := aerr.String(); !strings.Contains(got, "stream ADAPTER_PEOPLE does not exist: asking the engine to create it capturing hr.people") ||
		!strings.Contains(got, "the engine created stream ADAPTER_PEOPLE capturing hr.people") {
		t.Errorf("adapter run did not say it asked the engine: %s", got)
	}
	if st, err := hrjs.Stream(ctx, "ADAPTER_PEOPLE"); err != nil || !strings.Contains(st.CachedInfo().Config.Description, "created by the engine") ||
		strings.Join(st.CachedInfo().Config.Subjects, ",") != "hr.people" {
		t.Errorf("ADAPTER_PEOPLE: %v", err)
	}

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
	// No stream of its own by itself either: its subjects are in the
	// request's body, which NATS permissions do not see.
	mustBeDenied(t, hrRefused, "$JS.API.STREAM.CREATE.ADAPTER_LOCATIONS", func(ctx context.Context) error {
		_, err := hrjs.CreateStream(ctx, jetstream.StreamConfig{Name: "ADAPTER_LOCATIONS", Subjects: []string{"cairn.command.*"}})
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
	// The engine creates what hr may have, and refuses the rest, saying
	// why.
	askStream := func(nc *nats.Conn, stream string, subjects ...string) api.AdapterStreamReply {
		t.Helper()
		data, _ := json.Marshal(api.AdapterStreamRequest{Stream: stream, Subjects: subjects})
		msg, err := nc.Request(api.AdapterStreamSubject, data, 10*time.Second)
		if err != nil {
			t.Fatalf("ask for stream %s: %v", stream, err)
		}
		var rep api.AdapterStreamReply
		if err := json.Unmarshal(msg.Data, &rep); err != nil {
			t.Fatalf("ask for stream %s: %s: %v", stream, msg.Data, err)
		}
		return rep
	}
	for _, c := range []struct {
		stream   string
		subjects []string
		code     string
		why      string
	}{
		{"ADAPTER_LOCATIONS", []string{"cairn.command.*"}, "INVALID_ARGUMENT", `"cairn.command.*" is under cairn., the engine's subjects`},
		{"ADAPTER_LOCATIONS", []string{"hr.people", "cairn.command.org"}, "INVALID_ARGUMENT", "the engine's subjects"},
		{"ADAPTER_LOCATIONS", []string{"$JS.API.>"}, "INVALID_ARGUMENT", "JetStream or system subject"},
		{"ADAPTER_LOCATIONS", []string{"crm.people"}, "PERMISSION_DENIED", `"crm.people" is not within adapter hr's sources (hr.people)`},
		{"ADAPTER_LOCATIONS", []string{"hr.>"}, "PERMISSION_DENIED", "not within adapter hr's sources"},
		{"CRM_PEOPLE", []string{"hr.people"}, "PERMISSION_DENIED", `stream "CRM_PEOPLE" is not one of adapter hr's streams`},
		{"event-store", []string{"hr.people"}, "PERMISSION_DENIED", "not one of adapter hr's streams"},
	} {
		rep := askStream(hrc, c.stream, c.subjects...)
		if rep.Code != c.code || !strings.Contains(rep.Error, c.why) || rep.Created || rep.Existing {
			t.Errorf("hr asks for %s capturing %v: %+v, want %s naming %q", c.stream, c.subjects, rep, c.code, c.why)
		}
	}
	if rep := askStream(hrc, "ADAPTER_PEOPLE", "hr.people"); !rep.Existing || rep.Code != "" || rep.Config.Name != "ADAPTER_PEOPLE" {
		t.Errorf("hr asks for its stream again: %+v", rep)
	}
	if names := streamNames(t, ctx, hrjs); names != "ADAPTER_PEOPLE,KV_event-store-linker,KV_object-store-index,OBJ_object-store,event-store" {
		t.Errorf("streams after the refusals: %s", names)
	}
	// A reader or a writer may not ask at all.
	for _, seed := range []string{readerSeed, appSeed} {
		nc, refused := nkeyConn(t, url, seed)
		mustBeDenied(t, refused, api.AdapterStreamSubject, func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, api.AdapterStreamSubject, []byte(`{"stream":"ADAPTER_LOCATIONS","subjects":["hr.people.x"]}`))
			return err
		})
	}

	// crm's stream, made by the engine at crm's request; hr may not read
	// it, under its own durable's name or crm's.
	crmc, _ := nkeyConn(t, url, crmSeed)
	crmjs, _ := jetstream.New(crmc)
	if rep := askStream(crmc, "CRM_PEOPLE", "crm.people"); !rep.Created || rep.Config.Storage != "file" {
		t.Fatalf("crm asks for its stream: %+v", rep)
	}
	// Its own name and sources, but the stream exists capturing
	// something else: the engine does not change it.
	if rep := askStream(crmc, "CRM_PEOPLE", "crm.orgs"); rep.Code != "FAILED_PRECONDITION" || !strings.Contains(rep.Error, "exists capturing [crm.people], not [crm.orgs]") {
		t.Errorf("crm asks for its stream with other subjects: %+v", rep)
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

// streamNames lists the streams, sorted, joined by commas.
func streamNames(t *testing.T, ctx context.Context, js jetstream.JetStream) string {
	t.Helper()
	var names []string
	l := js.StreamNames(ctx)
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("stream names: %v", err)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}
