package actors_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TestQueryNowWhileApplying: point queries answered on the caller's
// goroutine (QueryNow, and Query when no wait is needed) while the shard
// applies transactions read consistent state (run with -race: the shard
// actor and the readers share the read model under the shard's lock), and
// once the shard is idle they answer what the mailbox path answers. A
// query that needs a wait, time travel or a traversal is left to Query.
func TestQueryNowWhileApplying(t *testing.T) {
	seed := testseed.Seed(t, 0)
	env := newSnapEnv(t)
	h := newHistory(t, seed, env.store, 2, 200)
	last := h.write(10, 40)
	p := env.open(t, 1, 0, last)

	var point []*cairnv1.QueryRequest
	for _, req := range probes("g0") {
		switch req.GetQuery().(type) {
		case *cairnv1.QueryRequest_GetNode, *cairnv1.QueryRequest_ListNeighbors, *cairnv1.QueryRequest_FindNodes:
			point = append(point, req)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var now, internal atomic.Int64
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, req := range point {
					rep, ok := p.QueryNow(req)
					if !ok {
						rep = p.Query(context.Background(), req)
					} else {
						now.Add(1)
					}
					if rep.GetError().GetCode() == cairnv1.ErrorCode_ERROR_CODE_INTERNAL {
						internal.Add(1)
					}
				}
			}
		}()
	}
	for range 20 {
		last = h.write(2, 40)
	}
	close(stop)
	wg.Wait()
	if internal.Load() != 0 {
		t.Fatalf("%d answers were INTERNAL", internal.Load())
	}
	if now.Load() == 0 {
		t.Fatal("QueryNow answered nothing while the shard applied")
	}
	waitApplied(t, p, last)

	for _, req := range point {
		rep, ok := p.QueryNow(req)
		if !ok {
			t.Fatalf("%v: QueryNow did not answer on an idle shard", req)
		}
		if got, want := canon(rep), canon(p.Query(context.Background(), req)); got != want {
			t.Fatalf("%v: QueryNow answered %q, Query %q", req, got, want)
		}
		if rep.GetError() == nil && (rep.GetAsOfSeq() < last || rep.GetHeadCid() == "") {
			t.Fatalf("%v: answered as of seq %d head %q, want seq >= %d and a head", req, rep.GetAsOfSeq(), rep.GetHeadCid(), last)
		}
	}
	node := func(req *cairnv1.QueryRequest) *cairnv1.QueryRequest {
		req.GraphId = "g0"
		if req.Query == nil {
			req.Query = &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "n1"}}
		}
		return req
	}
	for name, req := range map[string]*cairnv1.QueryRequest{
		"min_seq ahead": node(&cairnv1.QueryRequest{MinSeq: last + 1000}),
		"as_of":         node(&cairnv1.QueryRequest{AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: last}}}),
		"k_hop":         node(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_KHop{KHop: &cairnv1.KHop{NodeId: "n1", Depth: 2}}}),
		"stats":         node(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}}),
	} {
		if _, ok := p.QueryNow(req); ok {
			t.Errorf("%s: QueryNow answered, want it left to Query", name)
		}
	}
	rep, ok := p.QueryNow(node(&cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{}}}))
	if !ok || rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("empty node id: ok %v, %v; want INVALID_ARGUMENT at once", ok, rep.GetError())
	}
}
