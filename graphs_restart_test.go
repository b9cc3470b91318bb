package cairn_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func listAll(t *testing.T, eng *cairn.Engine, l *cairnv1.ListGraphs, minSeq uint64) []*cairnv1.GraphInfo {
	t.Helper()
	rep, err := eng.Graphs(context.Background(), &cairnv1.QueryRequest{MinSeq: minSeq, Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: l}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.GetGraphs().GetNextCursor() != "" {
		t.Fatalf("more than one page: %v", rep)
	}
	return rep.GetGraphs().GetGraphs()
}

// The catalogue survives a restart: the engine restores it from the
// read-model snapshots (not by folding the stream again), with the same
// counts, heads and created and changed times.
func TestGraphsCatalogueSurvivesRestart(t *testing.T) {
	srv := natstest.Start(t)
	open := func() *cairn.Engine {
		return openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) { cfg.NATSURL = srv.ClientURL() })
	}
	eng := open()
	ctx := context.Background()
	var last uint64
	for i := range 5 {
		g := fmt.Sprintf("r%d", i)
		create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "deps", Metadata: map[string]string{"i": fmt.Sprint(i)}}}}
		if _, err := eng.Execute(ctx, env(g, "create", create)); err != nil {
			t.Fatal(err)
		}
		for j := range i + 1 {
			rep, err := eng.Execute(ctx, env(g, fmt.Sprint("add", j), cmdAdd(fmt.Sprint("n", j), []string{"pkg"})))
			if err != nil {
				t.Fatal(err)
			}
			last = rep.GetSeq()
		}
	}
	if _, err := eng.Execute(ctx, env("r4", "delete", &cairnv1.Command{Kind: &cairnv1.Command_DeleteGraph{DeleteGraph: &cairnv1.DeleteGraph{}}})); err != nil {
		t.Fatal(err)
	}
	before := listAll(t, eng, &cairnv1.ListGraphs{IncludeDeleted: true}, last+1)
	if len(before) != 5 {
		t.Fatalf("%d graphs listed, want 5", len(before))
	}
	for _, info := range before {
		if info.GetCreatedUnixNano() == 0 || info.GetChangedUnixNano() <= info.GetCreatedUnixNano() {
			t.Fatalf("%s: created %d changed %d: want both, the change after the creation", info.GetGraphId(), info.GetCreatedUnixNano(), info.GetChangedUnixNano())
		}
	}
	closeEngine(t, eng) // its final round snapshots every graph

	eng = open()
	restartedFromSnapshots(t, eng, last+1)
	after := listAll(t, eng, &cairnv1.ListGraphs{IncludeDeleted: true}, 0)
	if len(after) != len(before) {
		t.Fatalf("after the restart %d graphs, want %d", len(after), len(before))
	}
	for i := range before {
		if !proto.Equal(before[i], after[i]) {
			t.Errorf("after the restart:\n got %v\nwant %v", after[i], before[i])
		}
	}
}

// The read models keep the seq of their graph's first transaction in their
// snapshots (format 4): after a restart from snapshots, a list as of seq N
// still skips a graph created after N without building its view (the
// time-travel counters count a query and a build for every graph it asks).
func TestGraphsAsOfSkipSurvivesRestart(t *testing.T) {
	srv := natstest.Start(t)
	open := func() *cairn.Engine {
		return openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) { cfg.NATSURL = srv.ClientURL() })
	}
	eng := open()
	ctx := context.Background()
	var at, last uint64
	for _, g := range []string{"a-early", "c-early", "b-late"} {
		if g == "b-late" {
			at = last
		}
		rep, err := eng.Execute(ctx, env(g, "create", cmdCreate(), cmdAdd("n", []string{"pkg"})))
		if err != nil {
			t.Fatal(err)
		}
		last = rep.GetSeq()
	}
	list := func(eng *cairn.Engine) (ids []string, queries, builds uint64) {
		t.Helper()
		before := eng.Projections().Health().TimeTravel
		rep, err := eng.Graphs(ctx, &cairnv1.QueryRequest{AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: at}},
			Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range rep.GetGraphs().GetGraphs() {
			ids = append(ids, info.GetGraphId())
		}
		after := eng.Projections().Health().TimeTravel
		return ids, after.Queries - before.Queries, after.Builds - before.Builds
	}
	// Before the restart the shard folded every graph from the stream.
	if _, err := eng.Query(ctx, statsQuery("c-early", last)); err != nil {
		t.Fatal(err)
	}
	if ids, q, b := list(eng); fmt.Sprint(ids) != "[a-early c-early]" || q != 2 || b != 2 {
		t.Fatalf("as of seq %d before the restart: %v, %d queries and %d builds; want a-early and c-early, 2 and 2", at, ids, q, b)
	}
	closeEngine(t, eng) // its final round snapshots every graph

	eng = open()
	restartedFromSnapshots(t, eng, last)
	if ids, q, b := list(eng); fmt.Sprint(ids) != "[a-early c-early]" || q != 2 || b != 2 {
		t.Errorf("as of seq %d after the restart: %v, %d queries and %d builds; want a-early and c-early, 2 and 2 (b-late skipped without a view)", at, ids, q, b)
	}
}

// A graph whose projection stopped (its history failed a check) is in the
// catalogue as stopped, with the DATA_LOSS and its reason; describing it
// says the same, and a find across graphs leaves it out.
func TestGraphsStoppedGraph(t *testing.T) {
	srv := natstest.Start(t)
	eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) { cfg.NATSURL = srv.ClientURL() })
	ctx := context.Background()
	for _, g := range []string{"good", "bad"} {
		if _, err := eng.Execute(ctx, env(g, "create", cmdCreate(), cmdAdd("x", []string{"pkg"}))); err != nil {
			t.Fatal(err)
		}
	}
	ack, err := srv.JetStream().Publish(ctx, "cairn.events.bad", []byte("junk!"))
	if err != nil {
		t.Fatal(err)
	}
	var bad *cairnv1.GraphInfo
	deadline := time.Now().Add(10 * time.Second)
	for {
		infos := listAll(t, eng, &cairnv1.ListGraphs{}, ack.Sequence)
		if len(infos) != 2 || infos[0].GetGraphId() != "bad" {
			t.Fatalf("list: %v", infos)
		}
		if bad = infos[0]; bad.GetStopped() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bad is not stopped: %v", bad)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if bad.GetStoppedCode() != cairnv1.ErrorCode_ERROR_CODE_DATA_LOSS || bad.GetStoppedSeq() != ack.Sequence || !strings.Contains(bad.GetStoppedReason(), "bad") {
		t.Errorf("stopped entry: %v, want DATA_LOSS at seq %d", bad, ack.Sequence)
	}
	rep, err := eng.Query(ctx, &cairnv1.QueryRequest{GraphId: "bad", Query: &cairnv1.QueryRequest_DescribeGraph{DescribeGraph: &cairnv1.DescribeGraph{}}})
	if err != nil || !proto.Equal(rep.GetGraph(), bad) {
		t.Errorf("describe bad: %v %v, want %v", rep.GetGraph(), err, bad)
	}
	frep, err := eng.Graphs(ctx, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{AllGraphs: true, By: &cairnv1.FindAcross_Category{Category: "pkg"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if gs := frep.GetGraphNodes().GetGraphs(); len(gs) != 1 || gs[0].GetGraphId() != "good" {
		t.Errorf("find across: %v, want good's node only", gs)
	}
	// The find names the graph it skipped, with the code and reason.
	sk := frep.GetGraphNodes().GetSkipped()
	if len(sk) != 1 || sk[0].GetGraphId() != "bad" || sk[0].GetCode() != cairnv1.ErrorCode_ERROR_CODE_DATA_LOSS ||
		sk[0].GetSeq() != ack.Sequence || sk[0].GetReason() != bad.GetStoppedReason() {
		t.Errorf("find across skipped %v, want bad with DATA_LOSS at seq %d: %s", sk, ack.Sequence, bad.GetStoppedReason())
	}
	// A page whose range does not reach it does not name it; the one that
	// does, does.
	for _, c := range []struct {
		graphs []string
		want   int
	}{{[]string{"good"}, 0}, {[]string{"bad"}, 1}, {[]string{"bad", "good"}, 1}} {
		frep, err := eng.Graphs(ctx, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{GraphIds: c.graphs, By: &cairnv1.FindAcross_Category{Category: "pkg"}}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(frep.GetGraphNodes().GetSkipped()); got != c.want {
			t.Errorf("find in %v: %d skipped, want %d", c.graphs, got, c.want)
		}
	}
}
