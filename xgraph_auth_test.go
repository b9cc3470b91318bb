package cairn_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TestLinkPermissionsOverNATS: over the engine's NATS with users, a writer
// allowed only on graph a cannot link a to b (PERMISSION_DENIED naming b
// and the right, nothing written in either graph), a writer on every graph
// can, a reader cannot even send the command, and a reader of a alone
// cannot follow the link into b.
func TestLinkPermissionsOverNATS(t *testing.T) {
	a := openAuthEngine(t)
	mustExec(t, a.eng, env("a", "a-nodes", cmdAdd("a1", nil)))
	mustExec(t, a.eng, env("b", "b-nodes", cmdAdd("b1", nil)))
	ctx := context.Background()
	lastA, _ := a.eng.Store().LastSeq(ctx, "a")
	lastB, _ := a.eng.Store().LastSeq(ctx, "b")

	for _, name := range []string{"writer-a", "nkey-writer-a"} {
		c := a.connect(t, name)
		rep := c.command(t, api.CommandSubjectFor("a"), env("a", "link-"+name, cmdLink("x-"+name, "a1", "b", "b1", "")))
		err := aggregate.ErrorFromProto(rep.GetError())
		if !errors.Is(err, aggregate.ErrPermissionDenied) || rep.GetError().GetField() != "graph_id" ||
			!strings.Contains(err.Error(), "may not write graph b") || !strings.Contains(err.Error(), "graphs a") {
			t.Fatalf("%s links a to b: %v", name, rep)
		}
		if got := err.Error(); !strings.HasPrefix(got, "PERMISSION_DENIED: ") {
			t.Fatalf("%s: the error reads %q, want it led by PERMISSION_DENIED", name, got)
		}
	}
	// Nothing was written in either graph.
	for g, want := range map[string]uint64{"a": lastA, "b": lastB} {
		if got, _ := a.eng.Store().LastSeq(ctx, g); got != want {
			t.Fatalf("graph %s: last seq %d after refused links, want %d", g, got, want)
		}
	}

	// A reader may not send commands at all: NATS refuses the publish.
	a.connect(t, "reader").denied(t, api.CommandSubjectFor("a"), false)

	// A writer of every graph links, and the link is in both graphs.
	w := a.connect(t, "writer")
	rep := w.command(t, api.CommandSubjectFor("a"), env("a", "link-writer", cmdLink("x1", "a1", "b", "b1", "")))
	if rep.GetError() != nil {
		t.Fatalf("writer links a to b: %v", rep)
	}
	wantLinks(t, a.eng, "a", rep.GetSeq(), "x1 a1->b/b1")
	last, _ := a.eng.Store().StreamLastSeq(ctx)
	wantLinks(t, a.eng, "b", last, "x1 b1<-a/a1")

	// writer-a may not remove the link either (it would write b).
	wa := a.connect(t, "writer-a")
	rep = wa.command(t, api.CommandSubjectFor("a"), env("a", "unlink-writer-a", cmdDisconnect("x1")))
	if err := aggregate.ErrorFromProto(rep.GetError()); !errors.Is(err, aggregate.ErrPermissionDenied) || !strings.Contains(err.Error(), "graph b") {
		t.Fatalf("writer-a unlinks: %v", rep)
	}
	wantLinks(t, a.eng, "b", last, "x1 b1<-a/a1")

	// Following the link needs the right to read b.
	path := &cairnv1.QueryRequest{GraphId: "a", MinSeq: last, Query: &cairnv1.QueryRequest_ShortestPath{ShortestPath: &cairnv1.ShortestPath{
		FromNodeId: "a1", ToNodeId: "b1", ToGraphId: "b", FollowLinks: true}}}
	q := a.connect(t, "reader-a").query(t, api.QuerySubjectFor("a"), path)
	if err := aggregate.ErrorFromProto(q.GetError()); !errors.Is(err, aggregate.ErrPermissionDenied) || !strings.Contains(err.Error(), "may not read graph b") {
		t.Fatalf("reader-a follows a link into b: %v", q)
	}
	q = a.connect(t, "reader").query(t, api.QuerySubjectFor("a"), path)
	if q.GetError() != nil || len(q.GetPath().GetEdgeIds()) != 1 {
		t.Fatalf("reader follows the link: %v", q)
	}
}
