package actors_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/enginetest"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/viewer/scene"
)

// TestRenderInProcess shows a graph of an engine embedded in the same Go
// program: the render reads the engine's own store (whose trust checks
// every signature) on the engine's actor system, and stops at a sequence.
func TestRenderInProcess(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	ctx := context.Background()
	var seqs []uint64
	for i, env := range [][]string{{"a", "b"}, {"c"}, {"d", "e", "f"}} {
		var cmds = cmdtest.Envelope("g", fmt.Sprint("c", i))
		if i == 0 {
			cmds.Commands = append(cmds.Commands, cmdtest.CreateGraph())
		}
		for _, id := range env {
			cmds.Commands = append(cmds.Commands, cmdtest.AddNode(id))
		}
		rep, err := eng.Execute(ctx, cmds)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, rep.GetSeq())
	}
	x := scene.NewExchange()
	r, err := actors.StartRender(eng.Member().System().Root, x, actors.RenderConfig{Graph: "g", Source: eng.Store(),
		Snapshots: eng.Snapshots(), FromSnapshot: true, StopAt: seqs[1]})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-r.Reached():
	case <-r.Done():
		t.Fatalf("render stopped: %v", r.Err())
	case <-time.After(10 * time.Second):
		t.Fatalf("stop %d not reached: %+v", seqs[1], r.Stats())
	}
	f := x.Acquire()
	if f == nil || f.Seq != seqs[1] || f.LiveNodes != 3 || !f.Full {
		t.Fatalf("frame %+v, want seq %d with 3 nodes", f, seqs[1])
	}
}
