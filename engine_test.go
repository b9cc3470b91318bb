package cairn_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/enginetest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

func openEngine(t *testing.T) *cairn.Engine {
	return enginetest.Open(t, persistence.ListenNone)
}

func env(graph, id string, cmds ...*cairnv1.Command) *cairnv1.CommandEnvelope {
	return &cairnv1.CommandEnvelope{GraphId: graph, CommandId: id, Commands: cmds}
}

func TestEngineWriteReadVerify(t *testing.T) {
	eng := openEngine(t)
	ctx := context.Background()
	create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "deps"}}}
	rep, err := eng.Execute(ctx, env("g1", "c1", create))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if rep.GetSeq() == 0 || rep.GetPosition() != 1 || rep.GetHeadCid() == "" {
		t.Fatalf("create reply: %v", rep)
	}
	add := func(id string) *cairnv1.Command {
		return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id}}}
	}
	connect := &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{EdgeId: "e1", Source: "libstdc++6", Target: "Zürich"}}}
	rep, err = eng.Execute(ctx, env("g1", "c2", add("libstdc++6"), add("Zürich"), connect))
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if rep.GetPosition() != 4 {
		t.Fatalf("position = %d, want 4", rep.GetPosition())
	}
	again, err := eng.Execute(ctx, env("g1", "c2", add("libstdc++6"), add("Zürich"), connect))
	if err != nil || !again.GetDuplicate() || again.GetSeq() != rep.GetSeq() {
		t.Fatalf("retry: %v %v", again, err)
	}
	_, err = eng.Execute(ctx, env("g1", "c3", add("Zürich")))
	if !errors.Is(err, aggregate.ErrAlreadyExists) {
		t.Fatalf("duplicate node: err = %v", err)
	}
	res, err := eng.Store().Verify(ctx, "g1")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if res.Transactions != 2 || res.Events != 4 || res.Head.CID.String() != rep.GetHeadCid() {
		t.Fatalf("verify result: %+v, reply %v", res, rep)
	}
}
