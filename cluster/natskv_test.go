package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/natstest"
)

// where answers every string (a protobuf StringValue: it crosses the
// wire) with the address of the member it runs on.
type where struct{}

func (where) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(*wrapperspb.StringValue); ok {
		ctx.Respond(wrapperspb.String(ctx.Self().Address + " " + s.GetValue()))
	}
}

// kvMember is a member on a NATS connection of its own.
type kvMember struct {
	*cluster.Member
	nc     *nats.Conn
	killed bool
}

// kvCluster is members of one cluster over one embedded NATS server.
type kvCluster struct {
	t   *testing.T
	srv *natstest.Server
}

func newKVCluster(t *testing.T) *kvCluster {
	return &kvCluster{t: t, srv: natstest.Start(t)}
}

// kvConfig is a member's config in tests: a TTL of 2 s, heartbeats every
// 500 ms.
func (c *kvCluster) kvConfig(nc *nats.Conn) cluster.Config {
	c.t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := cluster.DefaultConfig()
	cfg.Name = "test"
	cfg.Membership = cluster.MembershipNATSKV
	cfg.KV.JetStream = js
	cfg.KV.TTL = 2 * time.Second
	cfg.KV.Heartbeat = 500 * time.Millisecond
	cfg.KV.LeaseMargin = 300 * time.Millisecond
	cfg.HandoverMargin = time.Second
	if os.Getenv("CLUSTER_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

func (c *kvCluster) start() *kvMember {
	c.t.Helper()
	nc, err := c.srv.Connect()
	if err != nil {
		c.t.Fatal(err)
	}
	kind := protocluster.NewKind("where", actor.PropsFromProducer(func() actor.Actor { return where{} }))
	m, err := cluster.Start(c.kvConfig(nc), kind)
	if err != nil {
		nc.Close()
		c.t.Fatal(err)
	}
	km := &kvMember{Member: m, nc: nc}
	c.t.Cleanup(func() {
		if !km.killed {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := m.Close(ctx); err != nil {
				c.t.Errorf("close member: %v", err)
			}
		}
		nc.Close()
	})
	return km
}

// kill stops m abruptly: no key deleted, its NATS connection closed.
func (m *kvMember) kill() {
	m.killed = true
	m.nc.Close()
	m.Kill()
}

// waitMembers waits until every member in ms sees exactly the members of
// ms.
func waitMembers(t *testing.T, ms ...*kvMember) {
	t.Helper()
	want := make([]string, len(ms))
	for i, m := range ms {
		want[i] = m.ID()
	}
	slices.Sort(want)
	deadline := time.Now().Add(15 * time.Second)
	for _, m := range ms {
		for {
			got := m.Lookup().Members()
			slices.Sort(got)
			if slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %s sees %v, want %v", m.ID(), got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// ask sends msg to identity through m and returns the address that
// answered.
func ask(t *testing.T, m *kvMember, identity string, timeout time.Duration) (string, error) {
	t.Helper()
	res, err := m.Cluster().Request(identity, "where", wrapperspb.String("hi"), protocluster.WithTimeout(timeout))
	if err != nil {
		return "", err
	}
	sv, _ := res.(*wrapperspb.StringValue)
	s := sv.GetValue()
	addr, rest, ok := strings.Cut(s, " ")
	if !ok || rest != "hi" {
		return "", fmt.Errorf("unexpected answer %q", s)
	}
	return addr, nil
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("id-%03d", i)
	}
	return out
}

// Three members join over one NATS KV bucket, agree on who owns each
// identity, spread the identities over themselves, and a request through
// any member reaches the owner.
func TestKVMembershipConverges(t *testing.T) {
	c := newKVCluster(t)
	ms := []*kvMember{c.start(), c.start(), c.start()}
	waitMembers(t, ms...)
	owners := map[string]int{}
	for _, id := range ids(60) {
		var addr string
		for i, m := range ms {
			_, a, ok := m.Lookup().Owner(id, "where")
			if !ok {
				t.Fatalf("member %d knows no owner of %s", i, id)
			}
			if i > 0 && a != addr {
				t.Fatalf("%s: member 0 says %s owns it, member %d says %s", id, addr, i, a)
			}
			addr = a
		}
		owners[addr]++
		for i, m := range ms {
			got, err := ask(t, m, id, 5*time.Second)
			if err != nil {
				t.Fatalf("%s through member %d: %v", id, i, err)
			}
			if got != addr {
				t.Fatalf("%s through member %d answered at %s, owner is %s", id, i, got, addr)
			}
		}
	}
	if len(owners) != 3 {
		t.Fatalf("identities spread over %d members, want 3: %v", len(owners), owners)
	}
	t.Logf("60 identities per member: %v", owners)

	// A member that leaves gracefully is dropped, its identities move.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	left := ms[2]
	if err := left.Close(ctx); err != nil {
		t.Fatal(err)
	}
	left.killed = true // closed already
	waitMembers(t, ms[0], ms[1])
	for _, id := range ids(60) {
		got, err := ask(t, ms[0], id, 5*time.Second)
		if err != nil {
			t.Fatalf("%s after a member left: %v", id, err)
		}
		if got == left.System().Address() {
			t.Fatalf("%s answered at the member that left", id)
		}
	}
}

// A member killed without leaving disappears from the others' topology
// once its key expires; its identities are served by the survivors; a
// look-up of one of them against the dead owner honours a short deadline;
// and PIDs cached for it are dropped.
func TestKVMemberLossFailover(t *testing.T) {
	c := newKVCluster(t)
	ms := []*kvMember{c.start(), c.start(), c.start()}
	waitMembers(t, ms...)
	dead := ms[2]
	deadAddr := dead.System().Address()
	var theirs []string
	for _, id := range ids(60) {
		addr, err := ask(t, ms[0], id, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if addr == deadAddr {
			theirs = append(theirs, id)
		}
	}
	if len(theirs) == 0 {
		t.Fatal("the member to kill owns no identity")
	}
	if pid, _ := ms[0].Cluster().PidCache.Get(theirs[0], "where"); pid == nil || pid.Address != deadAddr {
		t.Fatalf("member 0 has no PID of %s cached at the member to kill: %v", theirs[0], pid)
	}

	killed := time.Now()
	dead.kill()

	// Before the topology changes, a look-up against the dead owner
	// returns by the caller's deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	start := time.Now()
	pid, err := ms[1].Lookup().GetContext(ctx, theirs[0], "where")
	cancel()
	took := time.Since(start)
	if err == nil {
		// Only possible once the survivors dropped the dead member.
		if pid.Address == deadAddr {
			t.Fatalf("look-up after the kill returned a PID at the dead member")
		}
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("look-up against a dead owner: %v, want the deadline's error", err)
	}
	if took > 2*time.Second {
		t.Fatalf("look-up with a 300 ms deadline took %v", took)
	}

	waitMembers(t, ms[0], ms[1])
	topology := time.Since(killed)
	if pid, _ := ms[0].Cluster().PidCache.Get(theirs[0], "where"); pid != nil && pid.Address == deadAddr {
		t.Fatalf("member 0 still caches a PID at the dead member for %s", theirs[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range theirs {
		for i, m := range ms[:2] {
			for {
				addr, err := ask(t, m, id, time.Second)
				if err == nil {
					if addr == deadAddr {
						t.Fatalf("%s answered at the dead member", id)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s through survivor %d: %v", id, i, err)
				}
			}
		}
	}
	t.Logf("member killed: topology changed after %v, its %d identities answered again after %v", topology, len(theirs), time.Since(killed))
}

// A member whose heartbeats stop for longer than the TTL (a paused
// process) fences itself: its grains stop, it refuses look-ups, says why,
// and the others serve its identities.
func TestKVPausedMemberFences(t *testing.T) {
	c := newKVCluster(t)
	ms := []*kvMember{c.start(), c.start(), c.start()}
	waitMembers(t, ms...)
	paused := ms[1]
	addr := paused.System().Address()
	var pids []*actor.PID
	var theirs []string
	for _, id := range ids(30) {
		pid, err := paused.Lookup().GetContext(context.Background(), id, "where")
		if err != nil {
			t.Fatal(err)
		}
		if pid.Address == addr {
			pids = append(pids, pid)
			theirs = append(theirs, id)
		}
	}
	if len(pids) == 0 {
		t.Fatal("the member to pause owns no identity")
	}
	pause := 4 * time.Second
	resumes := time.Now().Add(pause)
	paused.PauseHeartbeat(pause)
	select {
	case <-paused.Fenced():
	case <-time.After(15 * time.Second):
		t.Fatal("the paused member did not fence itself")
	}
	if err := paused.Err(); !errors.Is(err, cluster.ErrFenced) {
		t.Fatalf("Err() = %v, want ErrFenced", err)
	}
	if _, err := paused.Lookup().GetContext(context.Background(), theirs[0], "where"); !errors.Is(err, cluster.ErrFenced) {
		t.Fatalf("look-up at a fenced member: %v, want ErrFenced", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for {
			if _, alive := paused.System().ProcessRegistry.Get(pid); !alive {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("grain %s still runs on the fenced member", pid.Id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitMembers(t, ms[0], ms[2])
	for _, id := range theirs {
		got, err := ask(t, ms[0], id, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got == addr {
			t.Fatalf("%s answered at the fenced member", id)
		}
	}
	// After its pause the fenced member stays out: it writes no
	// heartbeat, so the others never see it again.
	for time.Now().Before(resumes.Add(time.Second)) {
		for _, m := range []*kvMember{ms[0], ms[2]} {
			if slices.Contains(m.Lookup().Members(), paused.ID()) {
				t.Fatalf("the fenced member is back in member %s's topology", m.ID())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A member restarted (closed, then started again) has a fresh id, rejoins
// and takes its share of the identities.
func TestKVRestartedMemberRejoins(t *testing.T) {
	c := newKVCluster(t)
	ms := []*kvMember{c.start(), c.start(), c.start()}
	waitMembers(t, ms...)
	old := ms[2].ID()
	ms[2].kill()
	waitMembers(t, ms[0], ms[1])
	ms[2] = c.start()
	if ms[2].ID() == old {
		t.Fatal("restarted member has its old id")
	}
	waitMembers(t, ms...)
	addr := ms[2].System().Address()
	var got int
	for _, id := range ids(60) {
		a, err := ask(t, ms[0], id, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if a == addr {
			got++
		}
	}
	if got == 0 {
		t.Fatal("the restarted member serves no identity")
	}
}

func TestKVConfigValidate(t *testing.T) {
	cfg := cluster.DefaultConfig()
	cfg.Membership = cluster.MembershipNATSKV
	cfg.Name = "bad name"
	cfg.KV.TTL = 1500 * time.Millisecond
	cfg.KV.Heartbeat = time.Second
	cfg.KV.Replicas = 0
	err := cfg.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"cluster name \"bad name\"", "whole seconds", "heartbeat", "replicas 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	cfg = cluster.DefaultConfig()
	cfg.Membership = cluster.MembershipNATSKV
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default NATS KV config: %v", err)
	}
	if _, err := cluster.Start(cfg); err == nil || !strings.Contains(err.Error(), "JetStream") {
		t.Fatalf("Start without a JetStream context: %v", err)
	}
}
