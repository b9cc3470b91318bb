package cairn_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// countAcross walks a list of every graph ("graphs") or a find of every
// pkg node across graphs ("findpkg") at eng, in pages of 3, after minSeq:
// the count, or the first error, or a duplicate, or "pending: ..." naming
// the graphs pages said they may miss (with the count of what they held).
func countAcross(ctx context.Context, eng *cairn.Engine, kind, minSeq string) (uint64, string) {
	seq, _ := strconv.ParseUint(minSeq, 10, 64)
	seen := map[string]bool{}
	req := &cairnv1.QueryRequest{MinSeq: seq}
	l := &cairnv1.ListGraphs{Limit: 3}
	f := &cairnv1.FindAcross{AllGraphs: true, By: &cairnv1.FindAcross_Category{Category: "pkg"}, Limit: 3}
	if kind == "graphs" {
		req.Query = &cairnv1.QueryRequest_ListGraphs{ListGraphs: l}
	} else {
		req.Query = &cairnv1.QueryRequest_FindAcross{FindAcross: f}
	}
	for {
		rep, err := eng.Graphs(ctx, req)
		if err != nil {
			return 0, err.Error()
		}
		var keys []string
		for _, g := range rep.GetGraphs().GetGraphs() {
			keys = append(keys, g.GetGraphId())
		}
		for _, g := range rep.GetGraphNodes().GetGraphs() {
			for _, n := range g.GetNodeIds() {
				keys = append(keys, g.GetGraphId()+"/"+n)
			}
		}
		for _, k := range keys {
			if seen[k] {
				return 0, "listed twice: " + k
			}
			seen[k] = true
		}
		next := rep.GetGraphs().GetNextCursor() + rep.GetGraphNodes().GetNextCursor()
		if next == "" {
			return uint64(len(seen)), ""
		}
		l.Cursor, f.Cursor = next, next
	}
}

// In a cluster of three engines each member's projections hold only its
// own graphs: a list or a find across graphs asked at any member gathers
// every member's share, with no graph twice. A member killed (no
// hand-over) makes the answer UNAVAILABLE naming it, never a silently
// partial page, until the survivors see it gone and adopt its graphs.
func TestEngineClusterGraphs(t *testing.T) {
	srv := natstest.Start(t)
	engs := []*engineProc{startEngineProc(t, srv.ClientURL()), startEngineProc(t, srv.ClientURL()), startEngineProc(t, srv.ClientURL())}
	deadline := time.Now().Add(15 * time.Second)
	for _, e := range engs {
		for e.call("members").N != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("member %s does not see the 3 members", e.id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	const graphs = 12
	var last uint64
	for i := range graphs {
		g := fmt.Sprintf("g%02d", i)
		if r := engs[i%3].call("create %s %s-create", g, g); r.Error != "" {
			t.Fatalf("create %s: %s", g, r.Error)
		}
		for j := range i%3 + 1 {
			r := engs[(i+1)%3].call("addpkg %s %s-n%d n%d", g, g, j, j)
			if r.Error != "" {
				t.Fatalf("add to %s: %s", g, r.Error)
			}
			last = max(last, r.N)
		}
	}
	const pkgs = 4*1 + 4*2 + 4*3
	held := uint64(0)
	for i, e := range engs {
		held += e.call("held").N
		if r := e.call("graphs %d", last); r.Error != "" || r.N != graphs {
			t.Fatalf("list at member %d: %+v, want %d graphs", i, r, graphs)
		}
		if r := e.call("findpkg %d", last); r.Error != "" || r.N != pkgs {
			t.Fatalf("find at member %d: %+v, want %d nodes", i, r, pkgs)
		}
	}
	if held != graphs {
		t.Fatalf("the members hold %d read models, want each of the %d graphs at one member", held, graphs)
	}

	// Member 2 dies without a word: until the others see it gone, the
	// answer names it as UNAVAILABLE.
	dead := engs[2]
	_ = dead.cmd.Process.Signal(syscall.SIGKILL)
	dead.closed = true
	r := engs[0].call("graphs %d", last)
	if !strings.Contains(r.Error, "UNAVAILABLE") || !strings.Contains(r.Error, dead.id) {
		t.Fatalf("list at member 0 with member %s killed: %+v, want UNAVAILABLE naming it", dead.id, r)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		r := engs[0].call("graphs %d", last)
		f := engs[1].call("findpkg %d", last)
		if r.Error == "" && r.N == graphs && f.Error == "" && f.N == pkgs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after member %s died: list %+v, find %+v, want %d graphs and %d nodes", dead.id, r, f, graphs, pkgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
