package persistence_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cairn-graph/cairn/persistence"
)

// TestServerEngineIdentity: a server with users takes none but them and
// the engine's own identity, which works in-process only: even its key
// gets no TCP connection. (Code in the engine's process is trusted: it
// could read the key.)
func TestServerEngineIdentity(t *testing.T) {
	srv, err := persistence.StartServer(persistence.ServerConfig{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		Users: []*server.User{{Username: "u", Password: "p", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{"nothing"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("the engine's in-process connection: %v", err)
	}
	defer nc.Close()
	// The engine has every right: it publishes where users may not.
	if _, err := nc.Request("$JS.API.INFO", nil, nats.DefaultTimeout); err != nil {
		t.Fatalf("the engine's JetStream request: %v", err)
	}
	kp := persistence.EngineKey(srv)
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if tcp, err := nats.Connect(srv.ClientURL(), nats.Nkey(pub, kp.Sign), nats.NoReconnect()); err == nil {
		tcp.Close()
		t.Fatal("the engine's key connected over TCP")
	}
	if tcp, err := nats.Connect(srv.ClientURL(), nats.NoReconnect()); err == nil {
		tcp.Close()
		t.Fatal("a connection without credentials was taken")
	}
}
