package cairn_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/enginetest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// A member that fences itself (here: its membership key deleted under it,
// as an expiry during a pause or a bucket leader's election does) stops its
// grains, then the engine joins the cluster again under a fresh member id
// and takes commands again, without a restart and without losing or
// repeating a write.
func TestFencedMemberRejoins(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := cairn.DefaultConfig(t.TempDir())
	cfg.NATSListen = persistence.ListenNone
	cfg.Cluster.Name, cfg.Cluster.Membership = "rejoin", cairncluster.MembershipNATSKV
	eng := enginetest.OpenConfig(t, cfg)
	add := func(id, node string) (*cairnv1.CommandReply, error) {
		return eng.Execute(ctx, env("g", id, &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: node}}}))
	}
	if _, err := eng.Execute(ctx, env("g", "create", &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}})); err != nil {
		t.Fatal(err)
	}
	if _, err := add("c1", "a"); err != nil {
		t.Fatal(err)
	}
	old := eng.Member()
	js, err := jetstream.New(eng.Conn())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "cairn-members-rejoin")
	if err != nil {
		t.Fatalf("membership bucket: %v", err)
	}
	if err := kv.Delete(ctx, old.ID()); err != nil {
		t.Fatalf("delete the member's key: %v", err)
	}
	select {
	case <-old.Fenced():
	case <-ctx.Done():
		t.Fatal("the member did not fence itself when its key was deleted")
	}
	deadline := time.Now().Add(30 * time.Second)
	for eng.Rejoins() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the engine did not join the cluster again")
		}
		time.Sleep(10 * time.Millisecond) // polling the engine's counter
	}
	m := eng.Member()
	if m.ID() == old.ID() || m.Err() != nil || eng.Fenced() != nil {
		t.Fatalf("after the rejoin: member %s (was %s), err %v", m.ID(), old.ID(), m.Err())
	}
	// Commands again: a retry of the earlier one is a duplicate, a new one
	// is applied once.
	var rep *cairnv1.CommandReply
	for {
		rep, err = add("c1", "a")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the fresh member's lookup settles
	}
	if err != nil || !rep.GetDuplicate() {
		t.Fatalf("retry of an earlier command after the rejoin: %v, %v (want the duplicate answer)", rep, err)
	}
	if _, err := add("c2", "b"); err != nil {
		t.Fatalf("a new command after the rejoin: %v", err)
	}
	res, err := eng.Store().Verify(ctx, "g")
	if err != nil || res.Events != 3 {
		t.Fatalf("verify: %+v, %v (want 3 events)", res, err)
	}
}
