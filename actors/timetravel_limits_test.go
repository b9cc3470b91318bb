package actors_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/actors"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// heldStore is the real event store whose reads wait while held, so that a
// time-travel build can be kept in flight.
type heldStore struct {
	*persistence.Store
	mu   sync.Mutex
	gate chan struct{} // nil: reads pass
	in   chan struct{} // a read is waiting
}

func (s *heldStore) hold() {
	s.mu.Lock()
	s.gate, s.in = make(chan struct{}), make(chan struct{}, 64)
	s.mu.Unlock()
}

func (s *heldStore) release() {
	s.mu.Lock()
	close(s.gate)
	s.gate = nil
	s.mu.Unlock()
}

func (s *heldStore) Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error) {
	s.mu.Lock()
	gate, in := s.gate, s.in
	s.mu.Unlock()
	if gate != nil {
		in <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.Store.Read(ctx, graph, fromSeq, fn)
}

func statsAt(graph string, seq uint64) *cairnv1.QueryRequest {
	return &cairnv1.QueryRequest{GraphId: graph, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}},
		AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: seq}}}
}

// A point past the graph's head is the head: the first such query builds
// its view, every later one (at any point past the head, the head's own
// included) is answered from the cache, until a write moves the head.
func TestTimeTravelPastHeadIsCached(t *testing.T) {
	env := newSnapEnv(t)
	h := newHistory(t, 3, env.store, 2, 40)
	last := h.write(20, 20)
	p := env.openTuned(t, 1, 0, last, func(*actors.ProjectionConfig) {})
	graph := h.graphs[0].id
	head, _, err := env.store.LastHead(context.Background(), graph)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := p.Query(ctx, statsAt(graph, last+1000))
	if first.GetError() != nil || first.GetAsOfSeq() != head {
		t.Fatalf("past the head: %v, want the view at the head (seq %d)", first, head)
	}
	before := p.Health().TimeTravel
	for _, seq := range []uint64{last + 1, last + 1000, 1 << 60, head} {
		rep := p.Query(ctx, statsAt(graph, seq))
		if rep.GetError() != nil || rep.GetAsOfSeq() != head || rep.GetPosition() != first.GetPosition() {
			t.Fatalf("as of seq %d: %v, want the head's view", seq, rep)
		}
	}
	after := p.Health().TimeTravel
	if after.Builds != before.Builds || after.ViewHits != before.ViewHits+4 {
		t.Fatalf("4 queries past the head: %d builds, %d view hits; want 0 builds, 4 hits", after.Builds-before.Builds, after.ViewHits-before.ViewHits)
	}
	// A write moves the head: the next query past it sees the write.
	last = h.write(1, 5)
	waitApplied(t, p, last)
	newHead, _, err := env.store.LastHead(ctx, h.graphs[0].id)
	if err != nil {
		t.Fatal(err)
	}
	if rep := p.Query(ctx, statsAt(graph, 1<<60)); rep.GetError() != nil || rep.GetAsOfSeq() != newHead {
		t.Fatalf("after a write: %v, want the view at seq %d", rep, newHead)
	}
}

// Builds beyond ViewBuilds wait ViewBuildWait, then are refused as
// RESOURCE_EXHAUSTED naming the limit; a view larger than ViewBuildBytes is
// refused at once; room that frees up lets the next build in.
func TestTimeTravelBuildLimits(t *testing.T) {
	env := newSnapEnv(t)
	h := newHistory(t, 4, env.store, 1, 40)
	last := h.write(20, 20)
	graph := h.graphs[0].id
	held := &heldStore{Store: env.store}
	p := env.openTuned(t, 1, 0, last, func(c *actors.ProjectionConfig) {
		c.Store, c.ViewBuilds, c.ViewBuildWait = held, 1, 50*time.Millisecond
	})
	ctx := context.Background()
	held.hold()
	done := make(chan *cairnv1.QueryReply, 1)
	go func() { done <- p.Query(ctx, statsAt(graph, last-5)) }()
	<-held.in // the first build is in flight, holding the only slot
	rep := p.Query(ctx, statsAt(graph, last-10))
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED || !strings.Contains(rep.GetError().GetMessage(), "ViewBuilds") {
		t.Fatalf("a second build while the only slot is taken: %v, want RESOURCE_EXHAUSTED naming ViewBuilds", rep)
	}
	if tt := p.Health().TimeTravel; tt.Refused != 1 || tt.Building != 1 || tt.BuildingBytes <= 0 {
		t.Fatalf("health while one build runs: refused %d, building %d (%d bytes)", tt.Refused, tt.Building, tt.BuildingBytes)
	}
	held.release()
	if rep := <-done; rep.GetError() != nil {
		t.Fatalf("the first build: %v", rep)
	}
	if rep := p.Query(ctx, statsAt(graph, last-10)); rep.GetError() != nil {
		t.Fatalf("once the slot is free: %v", rep)
	}
	if tt := p.Health().TimeTravel; tt.Building != 0 || tt.BuildingBytes != 0 {
		t.Fatalf("builds left in flight: %d (%d bytes)", tt.Building, tt.BuildingBytes)
	}

	tiny := env.openTuned(t, 1, 0, last, func(c *actors.ProjectionConfig) { c.ViewBuildBytes = 1000 })
	rep = tiny.Query(ctx, statsAt(graph, last))
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED || !strings.Contains(rep.GetError().GetMessage(), "ViewBuildBytes") {
		t.Fatalf("a view over the whole budget: %v, want RESOURCE_EXHAUSTED naming ViewBuildBytes", rep)
	}
}
