package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/natstest"
)

// startProcs starts a NATS server and n members in processes of their
// own, and waits until they see each other.
func startProcs(t *testing.T, n int) (url string, ps []*proc) {
	t.Helper()
	srv := natstest.Start(t)
	url = srv.ClientURL()
	for range n {
		ps = append(ps, startProc(t, url))
	}
	waitMembers(t, ps...)
	return url, ps
}

// waitMembers waits until every member in ps sees exactly the members of
// ps.
func waitMembers(t *testing.T, ps ...*proc) {
	t.Helper()
	want := make([]string, len(ps))
	for i, p := range ps {
		want[i] = p.ID
	}
	slices.Sort(want)
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range ps {
		for {
			got := p.call("members").Members
			slices.Sort(got)
			if slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %s sees %v, want %v", p.ID, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// askUntil asks identity through p until it answers or deadline passes,
// and returns the address that answered.
func askUntil(t *testing.T, p *proc, identity string, deadline time.Time) string {
	t.Helper()
	for {
		r := p.call("ask %s %d", identity, 1000)
		if r.Err == "" {
			return r.Address
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s through member %s: %s", identity, p.ID, r.Err)
		}
	}
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
// any member reaches the owner. A member that leaves gracefully is dropped
// and its identities move to the others.
func TestKVMembershipConverges(t *testing.T) {
	url, ps := startProcs(t, 3)
	// What a client outside the cluster reads of it: the members in the
	// bucket and the placement they compute.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := cluster.Members(context.Background(), js, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(ps) {
		t.Fatalf("the bucket holds %d members, want %d: %+v", len(infos), len(ps), infos)
	}
	owners := map[string]int{}
	for _, id := range ids(60) {
		var addr string
		for i, p := range ps {
			a := p.call("owner %s", id).Address
			if a == "" {
				t.Fatalf("member %d knows no owner of %s", i, id)
			}
			if i > 0 && a != addr {
				t.Fatalf("%s: member 0 says %s owns it, member %d says %s", id, addr, i, a)
			}
			addr = a
		}
		if o, ok := cluster.OwnerOf("where", id, infos); !ok || o.Address() != addr {
			t.Fatalf("%s: OwnerOf over the bucket's members says %+v (%v), the members say %s", id, o, ok, addr)
		}
		owners[addr]++
		for i, p := range ps {
			r := p.call("ask %s 5000", id)
			if r.Err != "" {
				t.Fatalf("%s through member %d: %s", id, i, r.Err)
			}
			if r.Address != addr {
				t.Fatalf("%s through member %d answered at %s, owner is %s", id, i, r.Address, addr)
			}
		}
	}
	if len(owners) != 3 {
		t.Fatalf("identities spread over %d members, want 3: %v", len(owners), owners)
	}
	t.Logf("60 identities by owner: %v", owners)

	left := ps[2]
	left.close()
	waitMembers(t, ps[0], ps[1])
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids(60) {
		if a := askUntil(t, ps[0], id, deadline); a == left.Address {
			t.Fatalf("%s answered at the member that left", id)
		}
	}
}

// A member killed (SIGKILL) disappears from the others' topology once its
// key expires; its identities are served by the survivors; a look-up of
// one of them against the dead owner honours a short deadline; and PIDs
// cached for it are dropped.
func TestKVMemberLossFailover(t *testing.T) {
	_, ps := startProcs(t, 3)
	dead := ps[2]
	var theirs []string
	for _, id := range ids(60) {
		r := ps[0].call("ask %s 5000", id)
		if r.Err != "" {
			t.Fatal(r.Err)
		}
		if r.Address == dead.Address {
			theirs = append(theirs, id)
		}
	}
	if len(theirs) == 0 {
		t.Fatal("the member to kill owns no identity")
	}
	if a := ps[0].call("cached %s", theirs[0]).Address; a != dead.Address {
		t.Fatalf("member 0 caches %s at %q, want the member to kill", theirs[0], a)
	}

	killed := time.Now()
	dead.kill()

	// Before the topology changes, a look-up against the dead owner
	// returns by the caller's deadline.
	r := ps[1].call("get %s 300", theirs[0])
	switch {
	case r.Err == "" && r.Address == dead.Address:
		t.Fatal("look-up after the kill returned a PID at the dead member")
	case r.Err != "" && !r.Deadline:
		t.Fatalf("look-up against a dead owner: %s, want the deadline's error", r.Err)
	}
	if r.Took > 2 {
		t.Fatalf("look-up with a 300 ms deadline took %.3f s", r.Took)
	}

	waitMembers(t, ps[0], ps[1])
	topology := time.Since(killed)
	if a := ps[0].call("cached %s", theirs[0]).Address; a == dead.Address {
		t.Fatalf("member 0 still caches a PID at the dead member for %s", theirs[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	var back time.Duration
	for _, id := range theirs {
		for _, p := range ps[:2] {
			if a := askUntil(t, p, id, deadline); a == dead.Address {
				t.Fatalf("%s answered at the dead member", id)
			}
			if back == 0 {
				back = time.Since(killed)
			}
		}
	}
	t.Logf("member killed: topology changed after %.2f s, its first identity answered again after %.2f s, all %d after %.2f s",
		topology.Seconds(), back.Seconds(), len(theirs), time.Since(killed).Seconds())
}

// A member paused (SIGSTOP) for longer than the TTL fences itself when it
// resumes: its grains stop, it refuses look-ups, says why, never joins
// again, and the others serve its identities.
func TestKVPausedMemberFences(t *testing.T) {
	_, ps := startProcs(t, 3)
	paused := ps[1]
	var theirs []string
	for _, id := range ids(30) {
		r := paused.call("get %s 5000", id)
		if r.Err != "" {
			t.Fatal(r.Err)
		}
		if r.Address == paused.Address {
			theirs = append(theirs, id)
		}
	}
	if len(theirs) == 0 {
		t.Fatal("the member to pause owns no identity")
	}
	if n := paused.call("active").Count; n != len(theirs) {
		t.Fatalf("%d grains active on the member to pause, want %d", n, len(theirs))
	}
	stopped := time.Now()
	paused.signal(syscall.SIGSTOP)
	waitMembers(t, ps[0], ps[2])
	// The fault under test: a pause of twice the TTL in all.
	time.Sleep(time.Until(stopped.Add(4 * time.Second)))
	paused.signal(syscall.SIGCONT)

	deadline := time.Now().Add(10 * time.Second)
	for {
		r := paused.call("fenced")
		if r.Fenced {
			if !strings.Contains(r.Err, "no heartbeat was acknowledged") && !strings.Contains(r.Err, "member key") {
				t.Errorf("fenced for an unexpected reason: %s", r.Err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the resumed member did not fence itself")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := paused.call("get %s 1000", theirs[0]); !r.Fenced {
		t.Fatalf("look-up at a fenced member: %+v, want ErrFenced", r)
	}
	for paused.call("active").Count != 0 {
		if time.Now().After(deadline) {
			t.Fatal("grains still run on the fenced member")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range theirs {
		if a := askUntil(t, ps[0], id, deadline); a == paused.Address {
			t.Fatalf("%s answered at the fenced member", id)
		}
	}
	// It stays out: it writes no heartbeat after resuming.
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		for _, p := range []*proc{ps[0], ps[2]} {
			if slices.Contains(p.call("members").Members, paused.ID) {
				t.Fatalf("the fenced member is back in member %s's topology", p.ID)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A member whose heartbeats stop for longer than the TTL while the
// process runs fences itself too (its lease ends, or its key is gone).
func TestKVMissedHeartbeatsFence(t *testing.T) {
	_, ps := startProcs(t, 2)
	ps[1].call("pause _ 4000")
	deadline := time.Now().Add(10 * time.Second)
	for !ps[1].call("fenced").Fenced {
		if time.Now().After(deadline) {
			t.Fatal("a member that missed its heartbeats did not fence itself")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitMembers(t, ps[0])
}

// A member restarted after a crash has a fresh id, rejoins and takes its
// share of the identities.
func TestKVRestartedMemberRejoins(t *testing.T) {
	url, ps := startProcs(t, 3)
	old := ps[2].ID
	ps[2].kill()
	waitMembers(t, ps[0], ps[1])
	ps[2] = startProc(t, url)
	if ps[2].ID == old {
		t.Fatal("restarted member has its old id")
	}
	waitMembers(t, ps...)
	got := 0
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids(60) {
		if askUntil(t, ps[0], id, deadline) == ps[2].Address {
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

// A member that joins takes the identities it now owns from their
// previous owners, which stop their activations first: afterwards each
// identity is active on exactly one member, its owner.
func TestKVJoinHandsOver(t *testing.T) {
	url, ps := startProcs(t, 2)
	for _, id := range ids(60) {
		if r := ps[0].call("ask %s 5000", id); r.Err != "" {
			t.Fatal(r.Err)
		}
	}
	ps = append(ps, startProc(t, url))
	waitMembers(t, ps...)
	deadline := time.Now().Add(10 * time.Second)
	took := 0
	for _, id := range ids(60) {
		owner := ps[2].call("owner %s", id).Address
		if a := askUntil(t, ps[2], id, deadline); a != owner {
			t.Fatalf("%s answered at %s, its owner is %s", id, a, owner)
		}
		if owner == ps[2].Address {
			took++
		}
	}
	if took == 0 {
		t.Fatal("the member that joined took no identity")
	}
	total := 0
	for _, p := range ps {
		total += p.call("active").Count
	}
	if total != 60 {
		t.Fatalf("%d activations of 60 identities after the hand-over", total)
	}
}
