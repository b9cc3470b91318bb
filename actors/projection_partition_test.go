package actors_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// owners is a test's placement of graphs on members.
type owners struct {
	mu   sync.Mutex
	of   map[string]string // graph -> member
	live map[string]bool   // member -> live
}

func (o *owners) set(graph, member string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.of[graph] = member
}

func (o *owners) kill(member string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.live[member] = false
}

// partition returns member's partition under o.
func (o *owners) partition(member string) *actors.Partition {
	o.mu.Lock()
	o.live[member] = true
	o.mu.Unlock()
	return &actors.Partition{
		Owns: func(g string) bool {
			o.mu.Lock()
			defer o.mu.Unlock()
			return o.of[g] == member
		},
		Series: func() string { return actors.MemberSeries(member) },
		Live: func(series string) bool {
			id, ok := actors.SeriesMember(series)
			o.mu.Lock()
			defer o.mu.Unlock()
			return ok && o.live[id]
		},
		DropAfter: 100 * time.Millisecond,
		Adoptions: 2,
	}
}

// sameAnswersOf is sameAnswers on some graphs.
func sameAnswersOf(t *testing.T, graphs []string, got, want actors.Querier, what string) {
	t.Helper()
	ctx := context.Background()
	for _, g := range graphs {
		for _, req := range probes(g) {
			a, b := got.Query(ctx, req), want.Query(ctx, req)
			if ca, cb := canon(a), canon(b); ca != cb {
				t.Fatalf("%s: graph %s query %v:\ngot  %v\nwant %v", what, g, req.GetQuery(), a, b)
			}
		}
	}
}

// TestPartitionedProjections: two members' partitioned projections each
// hold the read models of the graphs they own and answer as projections
// holding every graph do; when a member goes, the other adopts its graphs
// from the snapshots the first wrote (not from the graph's first
// transaction) and answers for them, with min_seq; a graph that moves away
// is dropped after DropAfter, and a query for a graph a member does not
// hold adopts it there. Each member writes its own manifest series, and
// the series of a member gone is deleted.
func TestPartitionedProjections(t *testing.T) {
	seed := testseed.Seed(t, 0)
	r := rand.New(rand.NewPCG(seed, 2))
	env := newSnapEnv(t)
	h := newHistory(t, seed, env.store, 6, 60+r.IntN(60))
	last := h.write(40+r.IntN(40), 40)
	o := &owners{of: map[string]string{}, live: map[string]bool{}}
	var mine = map[string][]string{}
	for i, hg := range h.graphs {
		m := []string{"a", "b"}[i%2]
		o.set(hg.id, m)
		mine[m] = append(mine[m], hg.id)
	}
	open := func(member string) *actors.Projections {
		return env.openTuned(t, 2, 50, last, func(c *actors.ProjectionConfig) { c.Partition = o.partition(member) })
	}
	a, b := open("a"), open("b")
	ref := env.open(t, 2, 0, last) // every graph, no snapshots
	ctx := context.Background()
	for _, p := range []*actors.Projections{a, b} {
		if err := p.Rebalance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	holds := func(p *actors.Projections, n int) func() bool {
		return func() bool {
			ph := p.Health().Partition
			return ph != nil && ph.Graphs == n && ph.Adoptions >= uint64(n)
		}
	}
	eventually(t, "a holds its 3 graphs", 30*time.Second, holds(a, 3))
	eventually(t, "b holds its 3 graphs", 30*time.Second, holds(b, 3))
	sameAnswersOf(t, mine["a"], a, ref, "a after rebalance")
	sameAnswersOf(t, mine["b"], b, ref, "b after rebalance")

	// Writes reach the owners; rounds write each member's own series.
	for range 3 {
		last = h.write(30+r.IntN(30), 40)
		for _, p := range []*actors.Projections{a, b, ref} {
			waitApplied(t, p, last)
		}
	}
	sameAnswersOf(t, mine["a"], a, ref, "a after writes")
	sameAnswersOf(t, mine["b"], b, ref, "b after writes")
	if got := a.Health().Partition.Graphs; got != 3 {
		t.Fatalf("a holds %d graphs after writes to all 6, want its 3", got)
	}
	closeProjections(t, a) // its last round
	for _, m := range []string{"a", "b"} {
		eventually(t, "a manifest of "+m, 30*time.Second, func() bool {
			ms, err := env.snaps.List(ctx, persistence.KindManifest, actors.MemberSeries(m))
			return err == nil && len(ms) > 0
		})
	}
	if ms, _ := env.snaps.List(ctx, persistence.KindManifest, actors.ManifestSeries); len(ms) != 0 {
		t.Fatalf("%d manifests in the single engine's series, want none", len(ms))
	}

	// a is gone: b takes its graphs, from a's snapshots.
	o.kill("a")
	for _, g := range mine["a"] {
		o.set(g, "b")
	}
	if err := b.Rebalance(ctx); err != nil {
		t.Fatal(err)
	}
	// Written while b adopts: what comes during an adoption follows it.
	last = h.write(20+r.IntN(20), 40)
	eventually(t, "b holds all 6 graphs", 30*time.Second, holds(b, 6))
	if ph := b.Health().Partition; ph.FromSnapshot < 3 {
		t.Fatalf("b adopted %d graphs from snapshots, want at least a's 3: %+v", ph.FromSnapshot, ph)
	}
	last = h.write(20+r.IntN(20), 40)
	for _, g := range mine["a"] {
		rep := b.Query(ctx, &cairnv1.QueryRequest{GraphId: g, MinSeq: last, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
		if rep.GetError() != nil || rep.GetAsOfSeq() < last {
			t.Fatalf("min_seq %d on %s at b: %v", last, g, rep)
		}
	}
	waitApplied(t, ref, last)
	sameAnswersOf(t, append(mine["a"], mine["b"]...), b, ref, "b after taking a's graphs")

	// b's next round deletes the series of a, which is gone.
	last = h.write(60, 40)
	eventually(t, "a's manifests deleted", 30*time.Second, func() bool {
		ms, err := env.snaps.List(ctx, persistence.KindManifest, actors.MemberSeries("a"))
		return err == nil && len(ms) == 0
	})

	// A third member c takes one graph: b drops it after DropAfter, and
	// a query at c adopts it there (as a query routed here before c's
	// first rebalance would).
	moved := mine["b"][0]
	// Quarantined at b (as a grain there would): the quarantine is b's
	// and goes with the read model; c checks the history itself.
	b.Quarantine(moved, 1, fmt.Errorf("%w: a test says so", persistence.ErrTruncated))
	eventually(t, moved+" quarantined at b", 30*time.Second, func() bool { return b.Quarantined(moved) != nil })
	o.set(moved, "c")
	c := open("c")
	eventually(t, "b drops "+moved, 30*time.Second, func() bool { return b.Health().Partition.Dropped >= 1 && b.Health().Partition.Graphs == 5 })
	if err := b.Quarantined(moved); err != nil {
		t.Fatalf("b still refuses %s after dropping it: %v", moved, err)
	}
	waitApplied(t, c, last)
	waitApplied(t, ref, last)
	sameAnswersOf(t, []string{moved}, c, ref, "c after a query adopted "+moved)

	// A query for a graph nobody has answers NOT_FOUND and leaves nothing.
	rep := c.Query(ctx, &cairnv1.QueryRequest{GraphId: "nosuch", Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
		t.Fatalf("query of a graph nobody wrote: %v, want NOT_FOUND", rep)
	}
	if n := c.Health().Partition.Graphs; n != 1 {
		t.Fatalf("c holds %d graphs, want 1 (%s)", n, moved)
	}
	// Asked again, it answers from what the first found: no new adoption.
	adoptions := c.Health().Partition.Adoptions
	rep = c.Query(ctx, &cairnv1.QueryRequest{GraphId: "nosuch", Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND || c.Health().Partition.Adoptions != adoptions {
		t.Fatalf("second query of a graph nobody wrote: %v, %d adoptions (were %d)", rep, c.Health().Partition.Adoptions, adoptions)
	}
	t.Log(fmt.Sprintf("b: %+v", *b.Health().Partition))
}

// TestPartitionSkippedGraphsAdoptedLater: a member's reader leaves the
// transactions of graphs it neither owns nor holds undecoded (FollowRaw);
// a graph it skipped and owns later, or is asked about, is adopted with
// every transaction: those written while another member owned it, those
// written during its adoption and after. Ownership moves back and forth
// while the stream is written, so that transactions reach the shard just
// as their graph becomes owned, held, dropped or adopted; a transaction
// lost there would break the graph's chain (quarantine) or its answers.
func TestPartitionSkippedGraphsAdoptedLater(t *testing.T) {
	seed := testseed.Seed(t, 0)
	r := rand.New(rand.NewPCG(seed, 3))
	env := newSnapEnv(t)
	h := newHistory(t, seed, env.store, 4, 40+r.IntN(40))
	last := h.write(20+r.IntN(20), 30)
	o := &owners{of: map[string]string{}, live: map[string]bool{"b": true}}
	var ids []string
	for _, hg := range h.graphs {
		o.set(hg.id, "b")
		ids = append(ids, hg.id)
	}
	a := env.openTuned(t, 2, 40, last, func(c *actors.ProjectionConfig) { c.Partition = o.partition("a") })
	ref := env.open(t, 2, 0, last)
	ctx := context.Background()

	// Written while b owns everything: a holds nothing.
	last = h.write(30+r.IntN(30), 30)
	waitApplied(t, a, last)
	if n := a.Health().Partition.Graphs; n != 0 {
		t.Fatalf("a holds %d graphs while it owns none, want 0", n)
	}

	// Ownership of g0 and g1 flips while the stream is written; a is
	// rebalanced, or asked about one of them (which adopts it whoever
	// owns it) without waiting for the answer, at random moments, so that
	// transactions come while a graph is being adopted.
	var asked sync.WaitGroup
	for range 16 {
		switch r.IntN(3) {
		case 0:
			if err := a.Rebalance(ctx); err != nil {
				t.Fatal(err)
			}
		case 1:
			g := ids[r.IntN(2)]
			asked.Go(func() {
				a.Query(ctx, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
			})
		}
		for _, g := range ids[:2] {
			o.set(g, []string{"a", "b"}[r.IntN(2)])
		}
		last = h.write(5+r.IntN(10), 30)
		if r.IntN(2) == 0 {
			// Not a wait for something: a pause of random length, so
			// that a's sweep drops, some of the time, what it no longer owns.
			time.Sleep(time.Duration(r.IntN(150)) * time.Millisecond)
		}
	}
	asked.Wait()

	// a owns g0..g2 now (g2 skipped all along): a rebalance adopts them,
	// with the transactions written during the adoption.
	for _, g := range ids[:3] {
		o.set(g, "a")
	}
	if err := a.Rebalance(ctx); err != nil {
		t.Fatal(err)
	}
	last = h.write(20+r.IntN(20), 30)
	eventually(t, "a holds g0..g2", 30*time.Second, func() bool { return a.Health().Partition.Graphs == 3 })
	last = h.write(10+r.IntN(10), 30)
	waitApplied(t, a, last)
	waitApplied(t, ref, last)
	if s := a.Stopped(); len(s) != 0 {
		t.Fatalf("graphs stopped at a: %v", s)
	}
	for _, g := range ids[:3] {
		rep := a.Query(ctx, &cairnv1.QueryRequest{GraphId: g, MinSeq: last, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
		if rep.GetError() != nil || rep.GetAsOfSeq() < last {
			t.Fatalf("min_seq %d on %s at a: %v", last, g, rep)
		}
	}
	sameAnswersOf(t, ids[:3], a, ref, "a after adopting graphs it skipped")
}

// TestAdoptionHoldBytes: the transactions that reach a graph while it is
// being adopted are held up to Partition.HoldBytes; past that they are let
// go and folded from the event store once the load ends. The adoption is
// held back (SetAdoptGate) while the graph is written, so that its
// transactions come during it: with a 1 KiB bound the adoption refolds,
// with the default bound it holds them all and refolds nothing, and either
// way the graph then answers as a projection holding every graph does.
func TestAdoptionHoldBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hold   int
		refold bool
	}{{"default", 0, false}, {"1KiB", 1 << 10, true}} {
		t.Run(tc.name, func(t *testing.T) {
			seed := testseed.Seed(t, 0)
			r := rand.New(rand.NewPCG(seed, 4))
			env := newSnapEnv(t)
			h := newHistory(t, seed, env.store, 2, 40+r.IntN(40))
			last := h.write(10+r.IntN(10), 30)
			o := &owners{of: map[string]string{}, live: map[string]bool{"b": true}}
			for _, hg := range h.graphs {
				o.set(hg.id, "b")
			}
			g := h.graphs[0].id
			started, release := make(chan struct{}, 1), make(chan struct{})
			a := env.openTuned(t, 2, 40, last, func(c *actors.ProjectionConfig) {
				c.Partition = o.partition("a")
				c.Partition.HoldBytes = tc.hold
				actors.SetAdoptGate(c.Partition, func(string) {
					select {
					case started <- struct{}{}:
					default:
					}
					<-release
				})
			})
			ref := env.open(t, 2, 0, last)
			ctx := context.Background()
			o.set(g, "a")
			if err := a.Rebalance(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatal("no adoption of " + g + " started")
			}
			// Written while the adoption waits (about half of it to g).
			last = h.write(60, 30)
			waitApplied(t, a, last)
			close(release)
			rep := a.Query(ctx, &cairnv1.QueryRequest{GraphId: g, MinSeq: last, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
			if rep.GetError() != nil || rep.GetAsOfSeq() < last {
				t.Fatalf("min_seq %d on %s at a: %v", last, g, rep)
			}
			if ph := a.Health().Partition; (ph.Refolds > 0) != tc.refold || ph.Failures != 0 {
				t.Fatalf("partition health %+v: want a refold %v, no failure", *ph, tc.refold)
			}
			if s := a.Stopped(); len(s) != 0 {
				t.Fatalf("graphs stopped at a: %v", s)
			}
			waitApplied(t, ref, last)
			sameAnswersOf(t, []string{g}, a, ref, "a after adopting "+g)
		})
	}
}
