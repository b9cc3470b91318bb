package persistence_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/persistence"
)

// startServer starts a server for t and shuts it down in t.Cleanup.
func startServer(t *testing.T, cfg persistence.ServerConfig) *persistence.Server {
	t.Helper()
	srv, err := persistence.StartServer(cfg)
	if err != nil {
		t.Fatalf("StartServer(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

func TestServerListenNone(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, persistence.ServerConfig{DataDir: dir, Listen: persistence.ListenNone})
	if u := srv.ClientURL(); u != "" {
		t.Errorf("ClientURL() = %q, want empty", u)
	}
	if srv.DataDir() != dir {
		t.Errorf("DataDir() = %q, want %q", srv.DataDir(), dir)
	}
	// In-process connections still reach it, JetStream included.
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	st, err := persistence.OpenStore(ctx, js, persistence.DefaultStoreConfig())
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	txs, _ := mustBuildChain(t, "g")
	mustAppend(t, ctx, st, "g", 0, txs[0])
}

func TestServerListenTCP(t *testing.T) {
	srv := startServer(t, persistence.ServerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatalf("ClientURL() = %q: %v", srv.ClientURL(), err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if u.Scheme != "nats" || err != nil || host != "127.0.0.1" || port == "0" || port == "" {
		t.Fatalf("ClientURL() = %q, want nats://127.0.0.1:<a real port>", srv.ClientURL())
	}

	// A TCP client and an in-process one see each other's messages.
	tcp, err := nats.Connect(srv.ClientURL(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect over TCP to %s: %v", srv.ClientURL(), err)
	}
	defer tcp.Close()
	local, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	sub, err := local.SubscribeSync("hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := local.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := tcp.Publish("hello", []byte("over tcp")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "over tcp" {
		t.Fatalf("in-process subscriber got %v, %v; want \"over tcp\"", m, err)
	}
}

func TestServerListenErrors(t *testing.T) {
	cases := []struct {
		name   string
		cfg    persistence.ServerConfig
		expect []string // substrings of the error
	}{
		{"no data dir", persistence.ServerConfig{Listen: persistence.ListenNone}, []string{"data dir is empty"}},
		{"no port", persistence.ServerConfig{Listen: "localhost"}, []string{`listen address "localhost"`}},
		{"unbalanced bracket", persistence.ServerConfig{Listen: "[::1:4222"}, []string{`listen address "[::1:4222"`}},
		{"port out of range", persistence.ServerConfig{Listen: "127.0.0.1:70000"}, []string{`"70000" is not a port number`}},
		{"negative port", persistence.ServerConfig{Listen: "127.0.0.1:-1"}, []string{`"-1" is not a port number`}},
		{"named port", persistence.ServerConfig{Listen: "127.0.0.1:nats"}, []string{`"nats" is not a port number`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "no data dir" {
				tc.cfg.DataDir = t.TempDir()
			}
			srv, err := persistence.StartServer(tc.cfg)
			if err == nil {
				_ = srv.Shutdown(context.Background())
				t.Fatalf("StartServer(%+v) started", tc.cfg)
			}
			for _, s := range tc.expect {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestServerPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	srv, err := persistence.StartServer(persistence.ServerConfig{DataDir: t.TempDir(), Listen: addr, ReadyTimeout: time.Second})
	if err == nil {
		_ = srv.Shutdown(context.Background())
		t.Fatalf("StartServer on %s, which is in use, started", addr)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address %s", err, addr)
	}
}
