package cairn_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// lifetime is when an item (a node, an edge, a component membership) came
// and went, by stream sequence.
type lifetime struct {
	added uint64 // 0: not yet known
	gone  uint64 // 0: still there; goneUnknown: its removal is in flight
}

const goneUnknown = math.MaxUint64

// churnLog records the lifetimes of the items a concurrent writer adds and
// removes.
type churnLog struct {
	mu    sync.Mutex
	items map[string]*lifetime // "node x", "edge e", "member x"
}

func (l *churnLog) add(seq uint64, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.items[k] = &lifetime{added: seq}
	}
}

// adding marks keys as coming, before the write (a query may see the
// write before Execute returns to the writer); add says when they came.
func (l *churnLog) adding(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.items[k] = &lifetime{}
	}
}

// removing marks keys as going, before the write; removed says when they
// went.
func (l *churnLog) removing(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if it := l.items[k]; it != nil && it.gone == 0 {
			it.gone = goneUnknown
		}
	}
}

func (l *churnLog) removed(seq uint64, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if it := l.items[k]; it != nil && it.gone == goneUnknown {
			it.gone = seq
		}
	}
}

// required returns the items of a kind that were there for the whole of a
// walk whose first page was as of first and last page as of last.
func (l *churnLog) required(kind string, first, last uint64) map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for k, it := range l.items {
		var id string
		if _, err := fmt.Sscanf(k, kind+" %s", &id); err != nil {
			continue
		}
		if it.added != 0 && it.added <= first && (it.gone == 0 || it.gone != goneUnknown && it.gone > last) {
			out[id] = true
		}
	}
	return out
}

func (l *churnLog) known(kind, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.items[kind+" "+id] != nil
}

// Pagination under concurrent writes: while a writer adds and removes nodes
// and edges at a hub (with adjacency compactions every few changes), pages
// of FindNodes, ListNeighbors and GetComponent, with a write between any two
// pages, return every item that was there for the whole walk exactly once,
// and no item twice.
func TestQueryPagingUnderWrites(t *testing.T) {
	forEachQuerySeed(t, runQueryPagingUnderWrites)
}

func runQueryPagingUnderWrites(t *testing.T, seed uint64) {
	ctx := context.Background()
	eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) {
		cfg.Projections.Shards = 2
		cfg.Projections.ReadModel.CompactMin = 8
	})
	const graph, stable = "pg", 30
	comp := &cairnv1.Component{Type: "t", Value: []byte("v")}
	log := &churnLog{items: map[string]*lifetime{}}

	// The stable part: a hub with a self-loop and an edge each way to each
	// stable node; none of it is ever removed.
	cmds := []*cairnv1.Command{cmdCreate(), cmdAdd("hub", []string{"c"}, comp), cmdConnect("loop", "hub", "hub", "k")}
	var keys []string
	for i := range stable {
		s := fmt.Sprintf("s%d", i)
		cmds = append(cmds, cmdAdd(s, []string{"c"}, comp), cmdConnect("o"+s, "hub", s, "k"), cmdConnect("i"+s, s, "hub", "k"))
		keys = append(keys, "node "+s, "member "+s, "edge o"+s, "edge i"+s)
	}
	rep, err := eng.Execute(ctx, env(graph, "setup", cmds...))
	if err != nil {
		t.Fatal(err)
	}
	log.add(rep.GetSeq(), append(keys, "node hub", "member hub", "edge loop")...)
	var lastSeq atomic.Uint64
	lastSeq.Store(rep.GetSeq())

	// The writer: churn nodes x<i> joined to the hub both ways, removed
	// again, their edges cut, and noise edges between stable nodes.
	wctx, stop := context.WithCancel(ctx)
	tick := make(chan struct{}, 1)
	var writeErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, 3))
		var live []int
		cut := map[string]bool{}
		next, noise := 0, 0
		for n := 0; wctx.Err() == nil; n++ {
			var c []*cairnv1.Command
			var added, gone []string
			switch k := rng.IntN(100); {
			case k < 40 && len(live) < 40 || len(live) < 5:
				x := fmt.Sprintf("x%d", next)
				live = append(live, next)
				next++
				c = []*cairnv1.Command{cmdAdd(x, []string{"c"}, comp), cmdConnect("a"+x, "hub", x, "k"), cmdConnect("b"+x, x, "hub", "k")}
				added = []string{"node " + x, "member " + x, "edge a" + x, "edge b" + x}
			case k < 65:
				i := rng.IntN(len(live))
				x := fmt.Sprintf("x%d", live[i])
				live = append(live[:i], live[i+1:]...)
				c = []*cairnv1.Command{{Kind: &cairnv1.Command_RemoveNode{RemoveNode: &cairnv1.RemoveNode{NodeId: x}}}}
				gone = []string{"node " + x, "member " + x, "edge a" + x, "edge b" + x}
			case k < 80:
				x := fmt.Sprintf("x%d", live[rng.IntN(len(live))])
				e := []string{"a", "b"}[rng.IntN(2)] + x
				if cut[e] {
					continue
				}
				cut[e] = true
				c = []*cairnv1.Command{{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: e}}}}
				// x stays in the hub's component while its other edge is there.
				gone = []string{"edge " + e, "member " + x}
			default:
				noise++
				c = []*cairnv1.Command{cmdConnect(fmt.Sprintf("z%d", noise), fmt.Sprintf("s%d", rng.IntN(stable)), fmt.Sprintf("s%d", rng.IntN(stable)), "k")}
				if noise > 4 {
					c = append(c, &cairnv1.Command{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: fmt.Sprintf("z%d", noise-4)}}})
				}
			}
			log.adding(added...)
			log.removing(gone...)
			rep, err := eng.Execute(wctx, env(graph, fmt.Sprintf("w%d", n), c...))
			if err != nil {
				if wctx.Err() == nil {
					writeErr = fmt.Errorf("write %d %v: %w", n, c, err)
				}
				return
			}
			log.add(rep.GetSeq(), added...)
			log.removed(rep.GetSeq(), gone...)
			lastSeq.Store(rep.GetSeq())
			select {
			case tick <- struct{}{}:
			default:
			}
		}
	}()
	defer func() {
		stop()
		wg.Wait()
		if writeErr != nil {
			t.Errorf("writer: %v", writeErr)
		}
	}()

	// afterWrite waits until a write has completed since it was last called.
	afterWrite := func() {
		t.Helper()
		select {
		case <-tick:
		default:
		}
		select {
		case <-tick:
		case <-time.After(10 * time.Second):
			t.Fatal("no write in 10s: the writer stopped")
		}
	}

	// walk pages through a query with a write before every page and checks
	// the items against the churn log.
	walk := func(name, kind string, keep func(string) bool, req *cairnv1.QueryRequest, set func(string), items func(*cairnv1.QueryReply) ([]string, string)) {
		t.Helper()
		seen := map[string]int{}
		var first, last uint64
		pages := 0
		for {
			afterWrite()
			req.MinSeq = lastSeq.Load()
			rep, err := eng.Query(ctx, req)
			if err != nil {
				t.Fatalf("%s: page %d at seq %d: %v", name, pages+1, req.MinSeq, err)
			}
			if pages == 0 {
				first = rep.GetAsOfSeq()
			}
			last = rep.GetAsOfSeq()
			pages++
			page, next := items(rep)
			for _, id := range page {
				if seen[id]++; seen[id] == 2 {
					t.Errorf("%s: %s %s comes twice (page %d, as of seq %d)", name, kind, id, pages, last)
				}
				if !log.known(kind, id) {
					t.Errorf("%s: %s %s was never written", name, kind, id)
				}
			}
			if next == "" {
				break
			}
			set(next)
		}
		for id := range log.required(kind, first, last) {
			if seen[id] == 0 && keep(id) {
				t.Errorf("%s: %s %s, there from seq %d to %d, is missing", name, kind, id, first, last)
			}
		}
		if pages < 5 {
			t.Fatalf("%s: only %d pages: too few to test paging under writes", name, pages)
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	for round := range 2 {
		fn := &cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "c"}, Limit: 3}
		if round == 1 {
			fn.By = &cairnv1.FindNodes_Component{Component: comp}
		}
		all := func(string) bool { return true }
		walk(fmt.Sprintf("find round %d", round), "node", all, queryOf(graph, 0, fn),
			func(c string) { fn.Cursor = c }, func(r *cairnv1.QueryReply) ([]string, string) {
				return r.GetNodes().GetNodeIds(), r.GetNodes().GetNextCursor()
			})
		for _, dir := range []cairnv1.Direction{cairnv1.Direction_DIRECTION_OUT, cairnv1.Direction_DIRECTION_IN, cairnv1.Direction_DIRECTION_BOTH} {
			ln := &cairnv1.ListNeighbors{NodeId: "hub", Direction: dir, Limit: 3}
			if round == 1 {
				ln.EdgeType = "k"
			}
			at := func(e string) bool { d := neighborDir(e); return d == dir || d == cairnv1.Direction_DIRECTION_BOTH }
			if dir == cairnv1.Direction_DIRECTION_BOTH {
				at = all
			}
			walk(fmt.Sprintf("neighbours %v round %d", dir, round), "edge", at, queryOf(graph, 0, ln),
				func(c string) { ln.Cursor = c }, func(r *cairnv1.QueryReply) ([]string, string) {
					var ids []string
					for _, n := range r.GetNeighbors().GetNeighbors() {
						if !at(n.GetEdgeId()) {
							t.Errorf("neighbours %v: edge %s is %v", dir, n.GetEdgeId(), neighborDir(n.GetEdgeId()))
						}
						ids = append(ids, n.GetEdgeId())
					}
					return ids, r.GetNeighbors().GetNextCursor()
				})
		}
		gc := &cairnv1.GetComponent{NodeId: "hub", Limit: 3}
		walk(fmt.Sprintf("component round %d", round), "member", all, queryOf(graph, 0, gc),
			func(c string) { gc.Cursor = c }, func(r *cairnv1.QueryReply) ([]string, string) {
				return r.GetComponent().GetNodeIds(), r.GetComponent().GetNextCursor()
			})
	}
}

// neighborDir is the direction in which an edge of the paging test is at
// the hub, by its name.
func neighborDir(edge string) cairnv1.Direction {
	switch edge[0] {
	case 'o', 'a':
		return cairnv1.Direction_DIRECTION_OUT
	case 'i', 'b':
		return cairnv1.Direction_DIRECTION_IN
	}
	return cairnv1.Direction_DIRECTION_BOTH // the self-loop, either way
}

// A neighbour page walk goes on, neither skipping nor repeating an edge that
// is there throughout, when every edge around its cursor is removed and the
// adjacency compacted between two pages.
func TestQueryNeighborCursorAfterCompaction(t *testing.T) {
	ctx := context.Background()
	eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) {
		cfg.Projections.Shards = 1
		cfg.Projections.ReadModel.CompactMin = 8
	})
	cmds := []*cairnv1.Command{cmdCreate(), cmdAdd("hub", nil)}
	for i := range 20 {
		cmds = append(cmds, cmdAdd(fmt.Sprintf("t%d", i), nil), cmdConnect(fmt.Sprintf("h%d", i), "hub", fmt.Sprintf("t%d", i), ""))
	}
	rep, err := eng.Execute(ctx, env("nc", "setup", cmds...))
	if err != nil {
		t.Fatal(err)
	}
	list := func(cursor string, limit uint32, minSeq uint64) *cairnv1.NeighborPage {
		t.Helper()
		r, err := eng.Query(ctx, &cairnv1.QueryRequest{GraphId: "nc", MinSeq: minSeq, Query: &cairnv1.QueryRequest_ListNeighbors{
			ListNeighbors: &cairnv1.ListNeighbors{NodeId: "hub", Cursor: cursor, Limit: limit}}})
		if err != nil {
			t.Fatalf("neighbours after cursor %q at seq %d: %v", cursor, minSeq, err)
		}
		return r.GetNeighbors()
	}
	var order []string // the read model's order
	for _, n := range list("", 1000, rep.GetSeq()).GetNeighbors() {
		order = append(order, n.GetEdgeId())
	}
	first := list("", 3, rep.GetSeq())
	// Remove the page's edges and the next five, add two: a compaction.
	var change []*cairnv1.Command
	for _, e := range order[:8] {
		change = append(change, &cairnv1.Command{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: e}}})
	}
	change = append(change, cmdConnect("n0", "hub", "t0", ""), cmdConnect("n1", "hub", "t1", ""))
	rep, err = eng.Execute(ctx, env("nc", "change", change...))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, n := range first.GetNeighbors() {
		seen[n.GetEdgeId()]++
	}
	for cursor := first.GetNextCursor(); cursor != ""; {
		page := list(cursor, 3, rep.GetSeq())
		for _, n := range page.GetNeighbors() {
			seen[n.GetEdgeId()]++
		}
		cursor = page.GetNextCursor()
	}
	for _, e := range order {
		if seen[e] > 1 {
			t.Errorf("edge %s listed %d times", e, seen[e])
		}
	}
	for _, e := range order[8:] {
		if seen[e] != 1 {
			t.Errorf("edge %s, there throughout, listed %d times", e, seen[e])
		}
	}
}
