package cluster_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/cairn-graph/cairn/cluster"
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
