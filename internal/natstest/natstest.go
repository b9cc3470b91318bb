// Package natstest starts embedded nats-servers with JetStream for tests:
// a random port on 127.0.0.1, files in t.TempDir(), shut down in
// t.Cleanup.
//
// Start and StartConfig start one server. StartCluster starts an n-node
// NATS cluster routed over 127.0.0.1 and returns once it can place a
// stream with n replicas; its nodes can be stopped gracefully (Stop),
// restarted on their ports and files (Restart), and, when started
// AsProcesses (each node a child process of the test binary; the
// package's TestMain calls RunNodeIfChild), killed with SIGKILL (Kill).
// Leader finds the node that leads a stream. Give an engine the cluster
// as an external NATS (cairn.Config.NATSURL = c.URLs()), so that it
// survives the loss of any one node:
//
//	c := natstest.StartCluster(t, 3, persistence.ServerConfig{SyncAlways: true}, natstest.AsProcesses())
//	cfg := cairn.DefaultConfig("")
//	cfg.NATSURL = c.URLs()
//	cfg.Store.Replicas, cfg.Snapshots.Replicas = 3, 3
//	...
//	c.Kill(c.Leader(cfg.Store.Stream))
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/persistence"
)

// Server is a running test server.
type Server struct {
	*persistence.Server
	t testing.TB
}

// Start starts a server for t.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartConfig(t, persistence.ServerConfig{})
}

// StartConfig starts a server for t with cfg; an empty DataDir is a
// directory of t's, an empty Listen a random port on 127.0.0.1.
func StartConfig(t testing.TB, cfg persistence.ServerConfig) *Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	srv, err := persistence.StartServer(cfg)
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shut down embedded nats: %v", err)
		}
	})
	return &Server{Server: srv, t: t}
}

// Conn opens an in-process connection closed in t.Cleanup.
func (s *Server) Conn() *nats.Conn {
	s.t.Helper()
	nc, err := s.Connect()
	if err != nil {
		s.t.Fatalf("connect: %v", err)
	}
	s.t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context over a new in-process connection.
func (s *Server) JetStream() jetstream.JetStream {
	s.t.Helper()
	js, err := jetstream.New(s.Conn())
	if err != nil {
		s.t.Fatalf("jetstream: %v", err)
	}
	return js
}

// Store opens the event store with default settings.
func (s *Server) Store() *persistence.Store {
	s.t.Helper()
	st, err := persistence.OpenStore(context.Background(), s.JetStream(), persistence.DefaultStoreConfig())
	if err != nil {
		s.t.Fatalf("open store: %v", err)
	}
	return st
}
