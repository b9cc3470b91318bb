package cairn_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// TestWorkflowGraphThroughEngine creates a workflow through the real
// engine, moves a step through its states, has a cycle and a bad
// transition refused with FAILED_PRECONDITION naming the rule, and restarts
// from an aggregate snapshot with the rules intact.
func TestWorkflowGraphThroughEngine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *cairn.Engine {
		return openEngineWith(t, dir, func(cfg *cairn.Config) { cfg.Grain.SnapshotEvery, cfg.Grain.SnapshotSpacing = 2, 0 })
	}
	eng := open()
	n := 0
	exec := func(cmds ...*cairnv1.Command) (*cairnv1.CommandReply, error) {
		n++
		return eng.Execute(ctx, env("release", "c"+string(rune('a'+n)), cmds...))
	}
	must := func(what string, cmds ...*cairnv1.Command) *cairnv1.CommandReply {
		t.Helper()
		rep, err := exec(cmds...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return rep
	}
	refused := func(what, rule string, cmds ...*cairnv1.Command) {
		t.Helper()
		_, err := exec(cmds...)
		if !errors.Is(err, aggregate.ErrFailedPrecondition) || !strings.Contains(err.Error(), rule) {
			t.Fatalf("%s: err = %v; want FAILED_PRECONDITION naming %s", what, err, rule)
		}
	}
	next := func(id, from, to string) *cairnv1.Command {
		return &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{EdgeId: id, Source: from, Target: to, EdgeType: "next"}}}
	}
	state := func(id, st string) *cairnv1.Command {
		return &cairnv1.Command{Kind: &cairnv1.Command_SetNodeComponents{SetNodeComponents: &cairnv1.SetNodeComponents{
			NodeId: id, Components: []*cairnv1.Component{{Type: "state", Value: []byte(st)}}}}}
	}

	must("create", &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "workflow"}}})
	built := must("add nodes", cmdAdd("begin", []string{"start"}), cmdAdd("build", []string{"step"}), cmdAdd("test", []string{"step"}), cmdAdd("ship", []string{"end"}),
		next("e1", "begin", "build"), next("e2", "build", "test"), next("e3", "test", "ship"))
	for _, st := range []string{"ready", "running", "blocked", "running", "done"} {
		must("build → "+st, state("build", st))
	}
	refused("a cycle", `workflow rule "acyclic": edge e4 from test to build would close the cycle build → test → build`, next("e4", "test", "build"))
	refused("a bad transition", `workflow rule "transitions": node "test" cannot move from "pending" to "done"`, state("test", "done"))
	refused("a second start", `workflow rule "one start"`, cmdAdd("again", []string{"start"}))

	// Wait for a grain snapshot of the workflow (taken every 2 events, when
	// no write of one is in flight: the newest may be of a state before the
	// last moves, which the restart then replays on top of it).
	deadline := time.Now().Add(10 * time.Second)
	for {
		infos, err := eng.Snapshots().List(ctx, persistence.KindAggregate, "release")
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) > 0 && infos[0].Seq >= built.GetSeq() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no aggregate snapshot at or after seq %d: %v", built.GetSeq(), infos)
		}
		time.Sleep(20 * time.Millisecond)
	}
	closeEngine(t, eng)

	eng = open()
	refused("a cycle after the restart", `workflow rule "acyclic"`, next("e4", "test", "build"))
	refused("a final state left after the restart", `workflow rule "transitions": node "build" cannot move from "done" to "ready"; from "done" it moves to nowhere: it is final`, state("build", "ready"))
	must("test → ready after the restart", state("test", "ready"))
	if st := eng.Grains().Stats(); st.SnapshotLoads < 1 {
		t.Fatalf("the restarted grain did not start from a snapshot: %+v", st)
	}
}
