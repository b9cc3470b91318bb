package cairn_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TestRefusedLinkLeavesNoTrace: random bad cross-graph commands (missing
// source or target, an edge id either graph has, reference nodes used as
// ends, reserved categories, links not alone in their envelope, a client's
// source_graph, a link to its own graph) are refused and leave no trace in
// either graph: the same stats, the same last stream seq for both graphs;
// and a valid link afterwards is recorded in both.
func TestRefusedLinkLeavesNoTrace(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runRefusedLinks(t, seed) })
	}
}

func runRefusedLinks(t *testing.T, seed uint64) {
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	ctx := context.Background()
	eng := openEngineWith(t, t.TempDir(), func(*cairn.Config) {})
	twoGraphs(t, eng)
	mustExec(t, eng, env("a", "la", cmdConnect("la", "a1", "a2", "")))
	mustExec(t, eng, env("b", "lb", cmdConnect("lb", "b1", "b2", "")))
	mustExec(t, eng, env("a", "x0", cmdLink("x0", "a1", "b", "b1", "")))

	type state struct {
		lastA, lastB   uint64
		statsA, statsB *cairnv1.GraphStats
	}
	read := func() state {
		t.Helper()
		var s state
		s.lastA, _ = eng.Store().LastSeq(ctx, "a")
		s.lastB, _ = eng.Store().LastSeq(ctx, "b")
		for g, out := range map[string]**cairnv1.GraphStats{"a": &s.statsA, "b": &s.statsB} {
			rep, err := eng.Query(ctx, &cairnv1.QueryRequest{GraphId: g, MinSeq: max(s.lastA, s.lastB),
				Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
			if err != nil {
				t.Fatalf("stats of %s: %v", g, err)
			}
			*out = rep.GetStats()
		}
		return s
	}
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	bad := []func(i int) (string, *cairnv1.CommandEnvelope){
		func(i int) (string, *cairnv1.CommandEnvelope) {
			return "missing source", env("a", fmt.Sprint("c", i), cmdLink(fmt.Sprint("n", i), pick("zz", "a9", "b1"), "b", pick("b1", "b2"), ""))
		},
		func(i int) (string, *cairnv1.CommandEnvelope) {
			return "missing target", env("a", fmt.Sprint("c", i), cmdLink(fmt.Sprint("n", i), pick("a1", "a2"), "b", pick("zz", "a1", "b9"), ""))
		},
		func(i int) (string, *cairnv1.CommandEnvelope) {
			return "existing edge id", env(pick("a", "b"), fmt.Sprint("c", i), cmdLink(pick("x0", "lb"), pick("a1", "b1"), "", "", ""))
		},
		func(i int) (string, *cairnv1.CommandEnvelope) {
			if rng.IntN(2) == 0 {
				return "reference node as source", env("a", fmt.Sprint("c", i), cmdLink(fmt.Sprint("n", i), "b/b1", "b", "b2", ""))
			}
			return "reference node as target", env("a", fmt.Sprint("c", i), cmdLink(fmt.Sprint("n", i), "a2", "b", "a/a1", ""))
		},
		func(i int) (string, *cairnv1.CommandEnvelope) {
			return "reserved category", env(pick("a", "b"), fmt.Sprint("c", i), cmdAdd(fmt.Sprint("n", i), []string{pick("cairn.ref", "cairn.x")}))
		},
		func(i int) (string, *cairnv1.CommandEnvelope) {
			return "not alone", env("a", fmt.Sprint("c", i), cmdAdd(fmt.Sprint("m", i), nil), cmdLink(fmt.Sprint("n", i), "a1", "b", "b2", ""))
		},
		func(i int) (string, *cairnv1.CommandEnvelope) {
			c := cmdLink(fmt.Sprint("n", i), "a1", "", "b2", "")
			c.GetConnectNodes().SourceGraph = "b"
			return "client source_graph", env("a", fmt.Sprint("c", i), c)
		},
		func(i int) (string, *cairnv1.CommandEnvelope) {
			return "link to its own graph", env("a", fmt.Sprint("c", i), cmdLink(fmt.Sprint("n", i), "a1", "a", "a2", ""))
		},
	}
	before := read()
	for i := range 40 {
		name, e := bad[rng.IntN(len(bad))](i)
		if name == "existing edge id" {
			// A link whose edge id one of the graphs has already.
			c := e.GetCommands()[0].GetConnectNodes()
			c.Source, c.TargetGraph, c.Target = map[string]string{"a": "a2", "b": "b2"}[e.GetGraphId()], map[string]string{"a": "b", "b": "a"}[e.GetGraphId()], map[string]string{"a": "b2", "b": "a2"}[e.GetGraphId()]
		}
		if rep, err := eng.Execute(ctx, e); err == nil {
			t.Fatalf("step %d, %s: %v accepted: %v", i, name, e, rep)
		}
		after := read()
		if after.lastA != before.lastA || after.lastB != before.lastB {
			t.Fatalf("step %d, %s (%v): last seqs a=%d b=%d, were a=%d b=%d", i, name, e, after.lastA, after.lastB, before.lastA, before.lastB)
		}
		if !proto.Equal(after.statsA, before.statsA) || !proto.Equal(after.statsB, before.statsB) {
			t.Fatalf("step %d, %s (%v): stats changed:\na %v\n  was %v\nb %v\n  was %v", i, name, e, after.statsA, before.statsA, after.statsB, before.statsB)
		}
	}
	seq := mustExec(t, eng, env("a", "ok", cmdLink("x1", "a2", "b", "b2", "")))
	wantLinks(t, eng, "a", seq, "x0 a1->b/b1", "x1 a2->b/b2")
	last, _ := eng.Store().StreamLastSeq(ctx)
	wantLinks(t, eng, "b", last, "x0 b1<-a/a1", "x1 b2<-a/a2")
}
