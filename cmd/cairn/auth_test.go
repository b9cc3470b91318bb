package main

import (
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
	"golang.org/x/crypto/bcrypt"

	"github.com/cairn-graph/cairn/api"
	cairnauth "github.com/cairn-graph/cairn/auth"
	"github.com/cairn-graph/cairn/internal/tlstest"
)

// withStdin runs f with os.Stdin reading text.
func withStdin(t *testing.T, text string, f func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	old := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = old }()
	f()
}

// TestAuthCommands writes a users file with cairn auth and reads it back.
func TestAuthCommands(t *testing.T) {
	dir := t.TempDir()
	file, seed := filepath.Join(dir, "users.json"), filepath.Join(dir, "w.nk")
	withStdin(t, "admin-secret\n", func() {
		mustRun(t, "auth", "add-user", file, "ops", "--role", "admin", "--password-stdin")
	})
	out := mustRun(t, "auth", "add-user", file, "app", "--role", "writer", "--graph", "a", "--graph", "b", "--new-nkey", seed, "--json")
	var added authUserJSON
	if err := json.Unmarshal([]byte(out), &added); err != nil || added.Nkey == "" || added.SeedFile != seed {
		t.Fatalf("add-user --json: %s (%v)", out, err)
	}
	if st, err := os.Stat(seed); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v %v", st, err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v %v", st, err)
	}
	// A name already there needs --replace; an admin has every graph.
	withStdin(t, "other-secret\n", func() {
		if r := runCLI(t, "auth", "add-user", file, "ops", "--role", "reader", "--password-stdin"); r.code() != 1 || !strings.Contains(r.stderr, "--replace") {
			t.Errorf("add-user of an existing name: exit %d, %s", r.code(), r.stderr)
		}
	})
	if r := runCLI(t, "auth", "add-user", file, "x", "--role", "admin", "--graph", "a", "--new-nkey", filepath.Join(dir, "x.nk")); r.code() != 1 || !strings.Contains(r.stderr, "cannot be limited to graphs") {
		t.Errorf("admin with graphs: exit %d, %s", r.code(), r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.nk")); err == nil {
		t.Error("a refused add-user left a seed file")
	}
	withStdin(t, "short\n", func() {
		if r := runCLI(t, "auth", "add-user", file, "y", "--role", "reader", "--password-stdin"); r.code() != 1 || !strings.Contains(r.stderr, "at least 8") {
			t.Errorf("short password: exit %d, %s", r.code(), r.stderr)
		}
	})
	got := mustRun(t, "auth", "list", file)
	want := fmt.Sprintf("ops admin all graphs (password)\napp writer graphs a,b (nkey %s)\n", added.Nkey)
	if got != want {
		t.Errorf("auth list:\n%s\nwant:\n%s", got, want)
	}
	f, err := cairnauth.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(f.Users[0].Password), []byte("admin-secret")); err != nil {
		t.Errorf("stored hash does not match the password: %v", err)
	}

	withStdin(t, "another-secret\n", func() {
		h := strings.TrimSpace(mustRun(t, "auth", "hash-password"))
		if err := bcrypt.CompareHashAndPassword([]byte(h), []byte("another-secret")); err != nil {
			t.Errorf("hash-password %q: %v", h, err)
		}
	})
	out = mustRun(t, "auth", "nkey", "--out", filepath.Join(dir, "n.nk"), "--json")
	var nk struct{ Public, SeedFile string }
	if err := json.Unmarshal([]byte(out), &nk); err != nil || !strings.HasPrefix(nk.Public, "U") {
		t.Fatalf("auth nkey --json: %s (%v)", out, err)
	}
	if r := runCLI(t, "auth", "nkey", "--out", filepath.Join(dir, "n.nk")); r.code() != 1 {
		t.Errorf("auth nkey over an existing file: exit %d", r.code())
	}
}

// TestServeAuth runs serve with --auth on a non-loopback address and
// the client commands with each login: a reader cannot write, a writer
// limited to graph a cannot reach b, only an admin reads the stream
// (verify, log), nobody archives, and a writer's rogue responder on the
// command subjects is refused, so every node add is the engine's.
func TestServeAuth(t *testing.T) {
	dir := t.TempDir()
	file, seed := filepath.Join(dir, "users.json"), filepath.Join(dir, "app.nk")
	withStdin(t, "admin-secret\n", func() {
		mustRun(t, "auth", "add-user", file, "ops", "--role", "admin", "--password-stdin")
	})
	withStdin(t, "board-secret\n", func() {
		mustRun(t, "auth", "add-user", file, "board", "--role", "reader", "--graph", "a", "--password-stdin")
	})
	mustRun(t, "auth", "add-user", file, "app", "--role", "writer", "--graph", "a", "--new-nkey", seed)

	// Beyond loopback: refused without --auth, served with it.
	if r := runCLI(t, "serve", "--data", t.TempDir(), "--nats-listen", "0.0.0.0:0"); r.code() != exitUsage || !strings.Contains(r.stderr, "--insecure") {
		t.Fatalf("serve beyond loopback without --auth: exit %d, %s", r.code(), r.stderr)
	}
	line, stop := serveInProcess(t, "--data", filepath.Join(dir, "data"), "--nats-listen", "0.0.0.0:0", "--auth", file, "--json", "--log-level", "error",
		"--snapshot-every", "1", "--snapshot-spacing", "0") // snapshots, so that archive gets as far as writing
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ready.NATS, "nats://"))
	url := "nats://127.0.0.1:" + port
	app := []string{"--server", url, "--nkey", seed}
	board := []string{"--server", url, "--user", "board", "--password", "board-secret"}
	ops := []string{"--server", url, "--user", "ops", "--password", "admin-secret"}
	cli := func(login []string, args ...string) result { return runCLI(t, append(args, login...)...) }
	must := func(login []string, args ...string) string { return mustRun(t, append(args, login...)...) }

	if r := runCLI(t, "graph", "create", "a", "--server", url); r.code() != 1 || !strings.Contains(strings.ToLower(r.stderr), "authorization") {
		t.Errorf("no login: exit %d, %s", r.code(), r.stderr)
	}
	must(app, "graph", "create", "a")
	must(ops, "graph", "create", "b")
	for _, c := range []struct {
		login []string
		args  []string
	}{
		{board, []string{"node", "add", "a", "x"}},
		{app, []string{"node", "add", "b", "x"}},
		{app, []string{"query", "stats", "b"}},
		{board, []string{"query", "stats", "b"}},
		{app, []string{"verify", "a"}},
		{board, []string{"log", "a"}},
	} {
		r := cli(c.login, append(c.args, "--timeout", "5s")...)
		if r.code() != 1 || !strings.Contains(r.stderr, "ermission") {
			t.Errorf("%s as %s: exit %d, %s", strings.Join(c.args, " "), c.login[3], r.code(), r.stderr)
		}
	}

	// A writer's rogue responder is refused, so each ack is the engine's.
	refusals := make(chan error, 4)
	rogue, err := nats.Connect(url, nats.UserInfo("ops", "admin-secret"), nats.CustomInboxPrefix(api.InboxPrefix("ops")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { refusals <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	for _, subj := range []string{api.CommandSubjects, api.CommandSubject} {
		if _, err := rogue.QueueSubscribe(subj, "q", func(m *nats.Msg) { _ = m.Respond([]byte("fake ack")) }); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-refusals:
			if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"`+subj+`"`) {
				t.Fatalf("subscribing to %s: %v", subj, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("subscribing to %s: no refusal", subj)
		}
	}
	var seq string
	for i := range 10 {
		out := must(app, "node", "add", "a", fmt.Sprintf("n%d", i), "--json")
		var rep replyJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Seq == 0 || rep.Error != nil {
			t.Fatalf("node add %d: %s (%v)", i, out, err)
		}
		seq = fmt.Sprint(rep.Seq)
	}
	out := must(board, "query", "stats", "a", "--min-seq", seq, "--json")
	if !strings.Contains(out, `"nodes":"10"`) {
		t.Errorf("stats after 10 adds: %s", out)
	}
	if out := must(ops, "verify", "a"); !strings.Contains(out, "chain whole") {
		t.Errorf("verify as admin: %s", out)
	}
	must(ops, "log", "a")
	must(board, "health")
	// Not even an admin may write the object store or purge the stream.
	r := cli(ops, "archive", "a", "--before", "3", "--timeout", "90s", "--signing-key", filepath.Join(dir, "data", "signing.nk"))
	if r.code() != 1 || !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, "ermissions") {
		t.Errorf("archive as admin: exit %d, %s", r.code(), r.stderr)
	}
	if out := must(ops, "verify", "a"); !strings.Contains(out, "chain whole: 11 transactions") {
		t.Errorf("verify after the refused archive: %s", out)
	}
	// Without --signing-key the engine archives, with its own rights and
	// key: an admin may ask it, a writer may not.
	if r := cli(app, "archive", "a", "--before", "3", "--timeout", "90s"); r.code() != 1 || !strings.Contains(r.stderr, "ermission") {
		t.Errorf("archive as writer: exit %d, %s", r.code(), r.stderr)
	}
	if out := must(ops, "archive", "a", "--before", "3", "--timeout", "90s"); !strings.Contains(out, "graph a: archived ") || !strings.Contains(out, "chain whole: 11 transactions") {
		t.Errorf("archive as admin, by the engine: %s", out)
	}
	// An admin may back the streams up; a writer may not.
	if r := cli(app, "backup", "--out", filepath.Join(dir, "backup-app"), "--timeout", "90s"); r.code() != 1 || !strings.Contains(r.stderr, "ermission") {
		t.Errorf("backup as writer: exit %d, %s", r.code(), r.stderr)
	}
	if out := must(ops, "backup", "--out", filepath.Join(dir, "backup"), "--timeout", "90s"); !strings.Contains(out, "ok backup=") || !strings.Contains(out, " streams=3 ") {
		t.Errorf("backup as admin: %s", out)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestServeTLS: with --tls-cert a client that does not trust the CA is
// refused and one that does is served; with --tls-verify a client
// without a certificate is refused too.
func TestServeTLS(t *testing.T) {
	p := tlstest.New(t)
	for _, verify := range []bool{false, true} {
		args := []string{"--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--sample", "--json", "--log-level", "error",
			"--tls-cert", p.ServerCert, "--tls-key", p.ServerKey}
		if verify {
			args = append(args, "--tls-ca", p.CA, "--tls-verify")
		}
		line, stop := serveInProcess(t, args...)
		var ready readyLine
		if err := json.Unmarshal([]byte(line), &ready); err != nil || !strings.HasPrefix(ready.NATS, "tls://127.0.0.1:") {
			t.Fatalf("ready line %q (%v), want tls://127.0.0.1:PORT", line, err)
		}
		stats := []string{"query", "stats", "sample", "--min-seq", "4", "--server", ready.NATS, "--timeout", "5s"}
		if r := runCLI(t, stats...); r.code() != 1 || !strings.Contains(r.stderr, "certificate") {
			t.Errorf("verify=%v, no CA: exit %d, %s", verify, r.code(), r.stderr)
		}
		withCA := append(stats[:len(stats):len(stats)], "--tls-ca", p.CA)
		withCert := append(withCA[:len(withCA):len(withCA)], "--tls-cert", p.ClientCert, "--tls-key", p.ClientKey)
		if verify {
			if r := runCLI(t, withCA...); r.code() != 1 {
				t.Errorf("verify=%v, no client certificate: exit %d, %s", verify, r.code(), r.stderr)
			}
			mustRun(t, withCert...)
		} else {
			mustRun(t, withCA...)
		}
		if err := stop(); err != nil {
			t.Fatalf("serve: %v", err)
		}
	}
}

// TestServeInsecure: --insecure lets serve listen beyond loopback without
// users.
func TestServeInsecure(t *testing.T) {
	line, stop := serveInProcess(t, "--data", t.TempDir(), "--nats-listen", "0.0.0.0:0", "--insecure", "--json", "--log-level", "error")
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil || !strings.HasPrefix(ready.NATS, "nats://0.0.0.0:") {
		t.Fatalf("ready line %q (%v)", line, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}
