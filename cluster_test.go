package cairn_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Three engines joined in one cluster over one NATS (cairn serve
// --cluster): commands for 20 graphs sent to any of them succeed, the
// graphs' grains are spread over the members, and every member's
// projections answer queries about every graph.
func TestEngineClusterSpreadsGraphs(t *testing.T) {
	srv := natstest.Start(t)
	ctx := context.Background()
	var engs []*cairn.Engine
	for range 3 {
		cfg := cairn.DefaultConfig("")
		cfg.NATSURL = srv.ClientURL()
		cfg.Gateway = false
		cfg.Cluster.Name = "engines"
		cfg.Cluster.Membership = cairncluster.MembershipNATSKV
		eng, err := cairn.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := eng.Close(cctx); err != nil {
				t.Errorf("close engine: %v", err)
			}
		})
		// One member starts at a time: protoactor's remote sets grpc's
		// global logger when it starts, a data race with the grpc traffic
		// of members already running in this process.
		if eng.Member() == nil {
			t.Fatal("cluster member did not start")
		}
		engs = append(engs, eng)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, e := range engs {
		for len(e.Member().Lookup().Members()) != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("member %s sees %v", e.Member().ID(), e.Member().Lookup().Members())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "deps"}}}
	add := func(id string) *cairnv1.Command {
		return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id}}}
	}
	var last []uint64
	for i := range 20 {
		g := fmt.Sprintf("g%02d", i)
		if _, err := engs[i%3].Execute(ctx, env(g, g+"-create", create)); err != nil {
			t.Fatalf("create %s through member %d: %v", g, i%3, err)
		}
		rep, err := engs[(i+1)%3].Execute(ctx, env(g, g+"-add", add("n1"), add("n2")))
		if err != nil {
			t.Fatalf("add to %s through member %d: %v", g, (i+1)%3, err)
		}
		last = append(last, rep.GetSeq())
	}
	var active []int
	for _, e := range engs {
		active = append(active, e.Grains().Active())
	}
	if slices.Contains(active, 0) || active[0]+active[1]+active[2] != 20 {
		t.Fatalf("grains per member %v, want 20 spread over all 3", active)
	}
	t.Logf("graph grains per member: %v", active)
	// Every member's projections read the whole stream: a query at any
	// member answers for any graph once it has caught up.
	for i := range 20 {
		g := fmt.Sprintf("g%02d", i)
		for j, e := range engs {
			rep, err := e.Query(ctx, &cairnv1.QueryRequest{GraphId: g, MinSeq: last[i], Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
			if err != nil {
				t.Fatalf("stats of %s at member %d: %v", g, j, err)
			}
			if n := rep.GetStats().GetNodes(); n != 2 {
				t.Fatalf("%s at member %d has %d nodes, want 2", g, j, n)
			}
		}
	}
}
