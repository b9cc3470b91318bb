package cluster_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/tlstest"
)

func TestConfigValidate(t *testing.T) {
	if err := cluster.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := cluster.Config{Port: 70000}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"cluster name is empty", "port 70000", "request timeout", "logger is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// echo answers every string with itself.
type echo struct{}

func (echo) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(string); ok {
		ctx.Respond("echo " + s)
	}
}

// A single member places grains of its kinds on itself, answers requests
// and closes.
func TestMemberHostsKinds(t *testing.T) {
	kind := protocluster.NewKind("echo", actor.PropsFromProducer(func() actor.Actor { return echo{} }))
	m, err := cluster.Start(cluster.DefaultConfig(), kind)
	if err != nil {
		t.Fatal(err)
	}
	pid := m.Cluster().Get("a", "echo")
	if pid == nil {
		t.Fatal("no activation for identity a")
	}
	res, err := m.System().Root.RequestFuture(pid, "hi", 5*time.Second).Result()
	if err != nil || res != "echo hi" {
		t.Fatalf("request: %v, %v", res, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// A member whose remote endpoint cannot listen is an error from Start, not
// a panic (protoactor's StartMember panics).
func TestStartPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := cluster.DefaultConfig()
	cfg.Port = l.Addr().(*net.TCPAddr).Port
	kind := protocluster.NewKind("echo", actor.PropsFromProducer(func() actor.Actor { return echo{} }))
	m, err := cluster.Start(cfg, kind)
	if err == nil {
		_ = m.Close(context.Background())
		t.Fatal("Start on a port in use succeeded")
	}
	if !strings.Contains(err.Error(), "listen") {
		t.Errorf("error %q does not say it could not listen", err)
	}
}

// The remote endpoint listens on loopback by default, refuses a host
// beyond it without TLS, and with TLS takes only peers whose certificate
// the CA signed.
func TestMemberMutualTLS(t *testing.T) {
	kind := protocluster.NewKind("echo", actor.PropsFromProducer(func() actor.Actor { return echo{} }))
	cfg := cluster.DefaultConfig()
	cfg.Host = "0.0.0.0"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "mutual TLS") {
		t.Fatalf("host 0.0.0.0 without TLS: %v", err)
	}

	p := tlstest.New(t)
	cfg = cluster.DefaultConfig()
	cfg.TLS = p.Mutual(t, p.ServerCert, p.ServerKey)
	cfg.TLS.ClientAuth = tls.NoClientCert // the member requires peers' certificates anyway
	m, err := cluster.Start(cfg, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Close(ctx)
	}()
	addr := m.System().Address()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("remote address %s, want loopback", addr)
	}
	// A peer reads the server's first HTTP/2 frame; one the server does
	// not take reads an error.
	read := func(c *tls.Config) error {
		c.NextProtos, c.ServerName = []string{"h2"}, "localhost"
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 64))
		return err
	}
	if err := read(p.Mutual(t, p.ClientCert, p.ClientKey)); err != nil {
		t.Fatalf("peer with a certificate of the CA: %v", err)
	}
	noCert := p.Mutual(t, p.ClientCert, p.ClientKey)
	noCert.Certificates = nil
	if err := read(noCert); err == nil {
		t.Error("a peer without a certificate was served")
	}
	if err := read(p.Mutual(t, p.Other, p.OtherKey)); err == nil {
		t.Error("a peer with a certificate of another CA was served")
	}
	// The member still hosts its kinds over TLS.
	pid := m.Cluster().Get("a", "echo")
	if res, err := m.System().Root.RequestFuture(pid, "hi", 5*time.Second).Result(); err != nil || res != "echo hi" {
		t.Fatalf("request: %v, %v", res, err)
	}
}
