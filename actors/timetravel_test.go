package actors_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TestTimeTravelMatchesReference: views at random sequences, times and
// event CIDs answer as a reference read model fed the graph's history up to
// that point, with the head it reflects; a repeated query is cached.
func TestTimeTravelMatchesReference(t *testing.T) {
	seed := testseed.Seed(t, 0)
	r := rand.New(rand.NewPCG(seed, 2))
	env := newSnapEnv(t)
	h := newHistory(t, seed, env.store, 2, 60)
	every := 30 + r.IntN(200)
	t.Logf("snapshot every %d events", every)
	last := h.write(40, 30)
	p := env.open(t, 2, every, last)
	for range 3 {
		last = h.write(10+r.IntN(20), 30)
		waitApplied(t, p, last)
	}
	eventually(t, "a snapshot round", 10*time.Second, func() bool { return p.Health().Snapshots.Rounds > 0 })
	h.fillTimes()
	ctx := context.Background()

	check := func(what, graph string, asOf *cairnv1.AsOf, seq, position uint64) {
		t.Helper()
		ref, refSeq, refPos, refHead := h.reference(graph, seq, position)
		for _, req := range probes(graph) {
			req.AsOf = asOf
			got := p.Query(ctx, req)
			if refSeq == 0 {
				if got.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
					t.Fatalf("%s: graph %s had no transaction then, got %v", what, graph, got)
				}
				continue
			}
			want := actors.RunQuery(ref, req)
			if canon(got) != canon(&cairnv1.QueryReply{Error: want.GetError(), Result: want.GetResult(), HeadCid: got.GetHeadCid(), Position: got.GetPosition()}) {
				t.Fatalf("%s: graph %s query %v:\ngot  %v\nwant %v", what, graph, req.GetQuery(), got, want)
			}
			if got.GetAsOfSeq() != refSeq {
				t.Fatalf("%s: as_of_seq %d, want %d", what, got.GetAsOfSeq(), refSeq)
			}
			if got.GetError() == nil && (got.GetHeadCid() != refHead || got.GetPosition() != refPos) {
				t.Fatalf("%s: head %s at %d, want %s at %d", what, got.GetHeadCid(), got.GetPosition(), refHead, refPos)
			}
		}
	}
	for i := range 12 {
		graph := h.graphs[r.IntN(len(h.graphs))].id
		seq := 1 + r.Uint64N(last+3)
		check(fmt.Sprintf("point %d: seq %d", i, seq), graph, &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: seq}}, seq, 0)
	}
	for i := range 6 {
		tx := h.txs[r.IntN(len(h.txs))]
		ts := tx.time
		// Every transaction stored at or before ts.
		var seq uint64
		for _, o := range h.txs {
			if !o.time.After(ts) {
				seq = max(seq, o.seq)
			}
		}
		check(fmt.Sprintf("time %d: %s (seq %d)", i, ts.Format(time.RFC3339Nano), seq), tx.graph,
			&cairnv1.AsOf{Point: &cairnv1.AsOf_TimeUnixNano{TimeUnixNano: ts.UnixNano()}}, seq, 0)
	}
	for i := range 8 {
		tx := h.txs[r.IntN(len(h.txs))]
		k := r.IntN(len(tx.cids))
		check(fmt.Sprintf("cid %d: seq %d event %d of %d (position %d)", i, tx.seq, k, len(tx.cids), tx.ns[k]), tx.graph,
			&cairnv1.AsOf{Point: &cairnv1.AsOf_Cid{Cid: tx.cids[k]}}, tx.seq, tx.ns[k])
	}

	// The same point again: the view is cached and so is the answer.
	graph := h.graphs[0].id
	req := &cairnv1.QueryRequest{GraphId: graph, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}},
		AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: last / 2}}}
	first := p.Query(ctx, req)
	before := p.Health().TimeTravel
	again := p.Query(ctx, req)
	after := p.Health().TimeTravel
	if first.GetError() == nil && !again.GetCached() {
		t.Fatalf("repeated time-travel query not cached: %v", again)
	}
	if after.ViewHits != before.ViewHits+1 || after.Builds != before.Builds {
		t.Fatalf("repeated query: health %+v -> %+v, want one view hit and no build", before, after)
	}
	if canon(first) != canon(again) || first.GetAsOfSeq() != again.GetAsOfSeq() {
		t.Fatalf("cached answer differs:\n%v\n%v", first, again)
	}
	if after.FromSnapshot == 0 {
		t.Logf("no view started from a snapshot: %+v", after)
	}
	t.Logf("time travel: %+v", after)

	// Live queries name the head.
	for _, hg := range h.graphs {
		rep := p.Query(ctx, &cairnv1.QueryRequest{GraphId: hg.id, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
		_, _, pos, head := h.reference(hg.id, last, 0)
		if rep.GetHeadCid() != head || rep.GetPosition() != pos {
			t.Fatalf("graph %s: live head %s at %d, want %s at %d", hg.id, rep.GetHeadCid(), rep.GetPosition(), head, pos)
		}
	}
}

// TestTimeTravelSnapshotCache: the snapshot cache stays within its byte
// bound, drops the least recently used first and never keeps a snapshot
// larger than the bound.
func TestTimeTravelSnapshotCache(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int64
		sizes []int
		touch int
		want  []bool
		sum   int64
	}{
		{"fits", 100, []int{30, 30, 30}, -1, []bool{true, true, true}, 90},
		{"oldest out", 100, []int{40, 40, 40}, -1, []bool{false, true, true}, 80},
		{"used stays", 100, []int{40, 40, 40}, 0, []bool{true, false, true}, 80},
		{"too big", 100, []int{30, 101, 30}, -1, []bool{true, false, true}, 60},
		{"off", 0, []int{1, 2}, -1, []bool{false, false}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, sum := actors.SnapCacheKeeps(tc.limit, tc.sizes, tc.touch)
			if !slices.Equal(kept, tc.want) || sum != tc.sum {
				t.Fatalf("kept %v (%d bytes), want %v (%d bytes)", kept, sum, tc.want, tc.sum)
			}
		})
	}
}

// TestTimeTravelValidation: malformed as_of points are INVALID_ARGUMENT at
// their field; an unknown CID is NOT_FOUND; without an event store time
// travel is FAILED_PRECONDITION.
func TestTimeTravelValidation(t *testing.T) {
	env := newSnapEnv(t)
	h := newHistory(t, 1, env.store, 1, 20)
	last := h.write(5, 10)
	p := env.open(t, 1, 0, last)
	graph := h.graphs[0].id
	stats := func(a *cairnv1.AsOf) *cairnv1.QueryRequest {
		return &cairnv1.QueryRequest{GraphId: graph, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}, AsOf: a}
	}
	mh, err := multihash.Sum([]byte("nothing"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	unknown := cid.NewCidV1(cid.DagCBOR, mh).String()
	for _, tc := range []struct {
		name  string
		asOf  *cairnv1.AsOf
		code  cairnv1.ErrorCode
		field string
	}{
		{"no point", &cairnv1.AsOf{}, cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "as_of"},
		{"seq 0", &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{}}, cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "as_of.seq"},
		{"negative time", &cairnv1.AsOf{Point: &cairnv1.AsOf_TimeUnixNano{TimeUnixNano: -1}}, cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "as_of.time_unix_nano"},
		{"bad cid", &cairnv1.AsOf{Point: &cairnv1.AsOf_Cid{Cid: "not-a-cid"}}, cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "as_of.cid"},
		{"unknown cid", &cairnv1.AsOf{Point: &cairnv1.AsOf_Cid{Cid: unknown}}, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, "as_of.cid"},
		{"before the graph", &cairnv1.AsOf{Point: &cairnv1.AsOf_TimeUnixNano{TimeUnixNano: 1}}, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, "graph_id"},
	} {
		rep := p.Query(context.Background(), stats(tc.asOf))
		if rep.GetError().GetCode() != tc.code || rep.GetError().GetField() != tc.field {
			t.Errorf("%s: got %v, want %v at %q", tc.name, rep.GetError(), tc.code, tc.field)
		}
	}

	// Without an event store.
	system := quietSystem()
	t.Cleanup(system.Shutdown)
	cfg := actors.DefaultProjectionConfig()
	cfg.Store, cfg.Snapshots = nil, nil
	noStore, err := actors.NewProjections(system, env.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	noStore.Start()
	t.Cleanup(func() { _ = noStore.Close(context.Background()) })
	rep := noStore.Query(context.Background(), stats(&cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: 1}}))
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION {
		t.Fatalf("time travel without a store: %v", rep)
	}
}
