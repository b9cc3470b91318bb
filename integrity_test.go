package cairn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// The attacks of issue 12 on the stored history, each shown to fail safe:
// the graph is quarantined (DATA_LOSS in queries, commands and health),
// other graphs go on, nothing past the failure is folded.

// openAudited starts an engine in dir whose projections audit the stream
// every 50 ms, with tune's changes to the defaults, if any.
func openAudited(t *testing.T, dir string, tune ...func(*cairn.Config)) *cairn.Engine {
	t.Helper()
	return openEngineWith(t, dir, func(cfg *cairn.Config) {
		cfg.Projections.AuditEvery = 50 * time.Millisecond
		if testing.Verbose() {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		for _, f := range tune {
			f(cfg)
		}
	})
}

// newGraph creates graph and adds nodes ids to it, one command each, and
// returns the last reply.
func newGraph(t *testing.T, eng *cairn.Engine, graph string, ids ...string) *cairnv1.CommandReply {
	t.Helper()
	if _, err := eng.Execute(context.Background(), env(graph, "create", cmdCreate())); err != nil {
		t.Fatalf("create %s: %v", graph, err)
	}
	return addNodes(t, eng, graph, ids...)
}

func addNodes(t *testing.T, eng *cairn.Engine, graph string, ids ...string) *cairnv1.CommandReply {
	t.Helper()
	var last *cairnv1.CommandReply
	for _, id := range ids {
		rep, err := eng.Execute(context.Background(), env(graph, "add-"+id, &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id}}}))
		if err != nil {
			t.Fatalf("add %s to %s: %v", id, graph, err)
		}
		last = rep
	}
	return last
}

func statsQuery(graph string, minSeq uint64) *cairnv1.QueryRequest {
	return &cairnv1.QueryRequest{GraphId: graph, MinSeq: minSeq, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}}
}

// waitDataLoss waits until a query of graph answers DATA_LOSS, and returns
// that error.
func waitDataLoss(t *testing.T, eng *cairn.Engine, graph string) error {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := eng.Query(context.Background(), statsQuery(graph, 0))
		if errors.Is(err, aggregate.ErrDataLoss) {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("query of %s: err = %v, want DATA_LOSS", graph, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantCommandDataLoss sends a command to graph and wants DATA_LOSS.
func wantCommandDataLoss(t *testing.T, eng *cairn.Engine, graph, id string) {
	t.Helper()
	_, err := eng.Execute(context.Background(), env(graph, id, &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id}}}))
	if !errors.Is(err, aggregate.ErrDataLoss) {
		t.Fatalf("command %s on %s: err = %v, want DATA_LOSS", id, graph, err)
	}
}

// wantHealthy checks that another graph still takes commands and answers
// queries.
func wantHealthy(t *testing.T, eng *cairn.Engine, graph, id string) {
	t.Helper()
	rep := addNodes(t, eng, graph, id)
	if _, err := eng.Query(context.Background(), statsQuery(graph, rep.GetSeq())); err != nil {
		t.Fatalf("query of healthy graph %s: %v", graph, err)
	}
}

func jetStream(t *testing.T, eng *cairn.Engine) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	js, err := jetstream.New(eng.Conn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), persistence.DefaultStoreConfig().Stream)
	if err != nil {
		t.Fatal(err)
	}
	return js, st
}

func TestGarbageOnEventsSubjectQuarantinesOnlyItsGraph(t *testing.T) {
	eng := openAudited(t, t.TempDir())
	newGraph(t, eng, "victim", "a", "b")
	newGraph(t, eng, "bystander", "x")
	// What `nats req cairn.events.victim hello` did by accident.
	js, _ := jetStream(t, eng)
	ack, err := js.Publish(context.Background(), "cairn.events.victim", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	qerr := waitDataLoss(t, eng, "victim")
	if want := fmt.Sprintf("seq %d", ack.Sequence); !strings.Contains(qerr.Error(), want) {
		t.Errorf("DATA_LOSS does not name the seq of the garbage (%s): %v", want, qerr)
	}
	wantCommandDataLoss(t, eng, "victim", "c")
	wantHealthy(t, eng, "bystander", "y")
	h := eng.Projections().Health()
	if h.DataLoss != 1 || h.Stopped["victim"] == "" {
		t.Errorf("projection health: %+v", h)
	}
	if q := eng.Grains().Health().Quarantined; q["victim"] == "" {
		t.Errorf("grain health does not name the quarantined graph: %v", q)
	}
	// cairn repair: the garbage was never part of the chain.
	if _, err := eng.Repair(context.Background(), "victim", ack.Sequence+1); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("repair at the wrong seq: err = %v, want ErrNotFound", err)
	}
	res, err := eng.Repair(context.Background(), "victim", ack.Sequence)
	if err != nil || !res.Dropped || !res.Resumed {
		t.Fatalf("repair: %+v, %v", res, err)
	}
	rep := addNodes(t, eng, "victim", "c")
	st, err := eng.Query(context.Background(), statsQuery("victim", rep.GetSeq()))
	if err != nil || st.GetStats().GetNodes() != 3 {
		t.Fatalf("after repair: stats %v, err %v", st, err)
	}
	if v, err := eng.Store().Verify(context.Background(), "victim"); err != nil || v.Transactions != 4 {
		t.Fatalf("verify after repair: %+v, %v", v, err)
	}
}

func TestForgedChainedTransactionQuarantines(t *testing.T) {
	eng := openAudited(t, t.TempDir())
	rep := newGraph(t, eng, "g", "a")
	newGraph(t, eng, "other", "x")
	// A correctly chained transaction built with persistence.Seal and
	// published straight to JetStream, adding node "a" a second time.
	ctx := context.Background()
	res, err := eng.Store().Verify(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	ev := &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: "a"}}}
	now := time.Now().UnixNano()
	recs, _, err := persistence.Seal("g", "forged", now, res.Head, []*cairnv1.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	tx := &cairnv1.Transaction{GraphId: "g", TxId: "forged", TimestampUnixNano: now,
		Commands: []*cairnv1.CommandRecord{{CommandId: "forged", EventCount: 1, Issuer: "attacker"}}, Events: recs}
	data, err := proto.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetStream(t, eng)
	if _, err := js.Publish(ctx, "cairn.events.g", data, jetstream.WithExpectLastSequencePerSubject(rep.GetSeq())); err != nil {
		t.Fatal(err)
	}
	if err := waitDataLoss(t, eng, "g"); !strings.Contains(err.Error(), "do not apply") {
		t.Errorf("DATA_LOSS does not say the events do not apply: %v", err)
	}
	wantCommandDataLoss(t, eng, "g", "b")
	wantHealthy(t, eng, "other", "y")
}

func TestPurgedGraphIsQuarantined(t *testing.T) {
	eng := openAudited(t, t.TempDir())
	rep := newGraph(t, eng, "wiped", "a", "b", "c")
	newGraph(t, eng, "kept", "x")
	// The projection has the graph (see TestPurgeBeforeProjectionSawIt
	// for one it never saw).
	if _, err := eng.Query(context.Background(), statsQuery("wiped", rep.GetSeq())); err != nil {
		t.Fatal(err)
	}
	_, st := jetStream(t, eng)
	// nats stream purge event-store --subject cairn.events.wiped
	if err := st.Purge(context.Background(), jetstream.WithPurgeSubject("cairn.events.wiped")); err != nil {
		t.Fatal(err)
	}
	if err := waitDataLoss(t, eng, "wiped"); !errors.Is(err, aggregate.ErrDataLoss) {
		t.Fatal(err)
	}
	wantCommandDataLoss(t, eng, "wiped", "d")
	wantHealthy(t, eng, "kept", "y")
}

func TestDeletedMessageIsQuarantined(t *testing.T) {
	eng := openAudited(t, t.TempDir())
	rep := newGraph(t, eng, "holey", "a", "b", "c")
	newGraph(t, eng, "kept", "x")
	_, st := jetStream(t, eng)
	// The transaction adding "b": two before the last of the graph.
	if err := st.DeleteMsg(context.Background(), rep.GetSeq()-1); err != nil {
		t.Fatal(err)
	}
	if err := waitDataLoss(t, eng, "holey"); !strings.Contains(err.Error(), "chain") {
		t.Errorf("DATA_LOSS does not say the chain is broken: %v", err)
	}
	wantHealthy(t, eng, "kept", "y")
	// Lost history cannot be repaired by dropping more.
	stopped := eng.Projections().Stopped()["holey"]
	if stopped == nil {
		t.Fatal("holey is not stopped")
	}
	if _, err := eng.Repair(context.Background(), "holey", stopped.Seq); !errors.Is(err, actors.ErrNotRepairable) {
		t.Fatalf("repair of a graph with lost history: err = %v, want ErrNotRepairable", err)
	}
}

func TestDeletedStreamQuarantinesEveryGraph(t *testing.T) {
	eng := openAudited(t, t.TempDir())
	newGraph(t, eng, "g1", "a")
	newGraph(t, eng, "g2", "b")
	js, _ := jetStream(t, eng)
	if err := js.DeleteStream(context.Background(), persistence.DefaultStoreConfig().Stream); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"g1", "g2"} {
		if err := waitDataLoss(t, eng, g); !strings.Contains(err.Error(), "gone") {
			t.Errorf("%s: DATA_LOSS does not say the stream is gone: %v", g, err)
		}
		wantCommandDataLoss(t, eng, g, "later")
	}
}

// A gap made while the engine was down is found after the restart, and
// nothing past it is folded: the graph does not come back with part of
// its nodes. (Without snapshots, so that the restart reads the gap: for a
// gap beneath the snapshots an engine restarts from, see
// TestMessageDeletedWhileDownBeneathSnapshotsIsQuarantined.)
func TestGapMadeWhileDownIsQuarantinedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	noSnapshots := func(cfg *cairn.Config) { cfg.DisableSnapshots = true }
	eng := openAudited(t, dir, noSnapshots)
	rep := newGraph(t, eng, "g", "a", "b", "c")
	newGraph(t, eng, "other", "x")
	_, st := jetStream(t, eng)
	if err := st.DeleteMsg(context.Background(), rep.GetSeq()-1); err != nil {
		t.Fatal(err)
	}
	closeEngine(t, eng)
	eng = openAudited(t, dir, noSnapshots)
	if err := waitDataLoss(t, eng, "g"); !strings.Contains(err.Error(), "prev link") {
		t.Errorf("DATA_LOSS does not say the chain is broken: %v", err)
	}
	wantCommandDataLoss(t, eng, "g", "d")
	wantHealthy(t, eng, "other", "y")
}

// An archive object deleted behind the engine's back: the history it held
// is gone from both archive and stream. The running engine quarantines the
// graph at once, and a reader of that stretch (time travel, verify)
// refuses it as data loss, never answers from a part of the graph.
func TestDeletedArchiveObjectIsDataLoss(t *testing.T) {
	eng := openAudited(t, t.TempDir())
	ctx := context.Background()
	newGraph(t, eng, "arch", "a", "b", "c", "d")
	rep := addNodes(t, eng, "arch", "e")
	// The projection has applied every write before they are archived:
	// one that lagged (under the suite's load) met the archived prefix
	// purged, read it from the archive just deleted, and stopped with a
	// broken chain that does not name the archive.
	if _, err := eng.Query(ctx, statsQuery("arch", rep.GetSeq())); err != nil {
		t.Fatal(err)
	}
	res, err := eng.Store().Archive(ctx, "arch", rep.GetSeq()-1, nil)
	if err != nil || res.Transactions == 0 {
		t.Fatalf("archive: %+v, %v", res, err)
	}
	arcs, err := eng.Store().Archives(ctx, "arch")
	if err != nil || len(arcs) == 0 {
		t.Fatalf("archives: %v, %v", arcs, err)
	}
	if err := eng.Snapshots().Objects().Delete(ctx, arcs[0].Name); err != nil {
		t.Fatal(err)
	}
	// The engine never deletes an archive: the live graph is quarantined.
	if err := waitDataLoss(t, eng, "arch"); !strings.Contains(err.Error(), arcs[0].Name) {
		t.Errorf("DATA_LOSS does not name the deleted archive %s: %v", arcs[0].Name, err)
	}
	wantCommandDataLoss(t, eng, "arch", "f")
	if _, err := eng.Store().Verify(ctx, "arch"); err == nil {
		t.Error("verify passed a history whose archive is gone")
	}
	for _, seq := range []uint64{arcs[0].ToSeq, arcs[0].ToSeq + 1} { // inside the deleted archive, and after it
		_, err = eng.Query(ctx, &cairnv1.QueryRequest{GraphId: "arch", AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: seq}},
			Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
		if !errors.Is(err, aggregate.ErrDataLoss) {
			t.Fatalf("time travel to seq %d, into the deleted archive: err = %v, want DATA_LOSS", seq, err)
		}
	}
}

// A graph purged right after its writes, perhaps before the projection
// read them: the grain, which wrote them, finds its history gone on the
// next command and quarantines the graph in the projections too (or the
// audit does, when the projection had it), so queries answer DATA_LOSS,
// not NOT_FOUND.
func TestPurgeBeforeProjectionSawIt(t *testing.T) {
	eng := openAudited(t, t.TempDir())
	newGraph(t, eng, "wiped", "a")
	_, st := jetStream(t, eng)
	if err := st.Purge(context.Background(), jetstream.WithPurgeSubject("cairn.events.wiped")); err != nil {
		t.Fatal(err)
	}
	wantCommandDataLoss(t, eng, "wiped", "b")
	if err := waitDataLoss(t, eng, "wiped"); !strings.Contains(err.Error(), "truncated") {
		t.Errorf("DATA_LOSS does not say the history was truncated: %v", err)
	}
}
