package readmodel

import (
	"math/rand/v2"
	"strconv"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Neighbour pages neither skip nor repeat an edge that is there for the
// whole walk, while edges are added and removed between pages and the
// adjacency is compacted after every page.
func TestNeighborPagingUnderWrites(t *testing.T) {
	forEachSeed(t, func(t *testing.T, seed uint64) {
		r := rand.New(rand.NewPCG(seed, 3))
		cfg := DefaultConfig()
		cfg.CompactMin = 1
		g, err := New("g", cfg)
		if err != nil {
			t.Fatal(err)
		}
		seq := uint64(1)
		apply := func(evs ...*cairnv1.Event) {
			t.Helper()
			seq++
			if err := g.ApplyTx(seq, evs); err != nil {
				t.Fatal(err)
			}
		}
		apply(created(), nodeAdded("hub", nil), nodeAdded("other", nil))
		live := map[string]bool{} // edges at the hub now
		next := 0
		add := func() {
			id := "e" + strconv.Itoa(next)
			next++
			src, dst := "hub", "other"
			if r.IntN(3) == 0 {
				src, dst = dst, src
			}
			if r.IntN(10) == 0 {
				dst = "hub"
			}
			apply(edgeAdded(id, src, dst, "r"+strconv.Itoa(r.IntN(2))))
			live[id] = true
		}
		for range 150 {
			add()
		}
		for _, dir := range []Direction{Out, In, Both} {
			for _, typ := range []string{"", "r1"} {
				throughout := map[string]bool{}
				for id := range live {
					throughout[id] = true
				}
				seen := map[string]int{}
				cursor, pages := "", 0
				for {
					p, err := g.Neighbors("hub", dir, typ, cursor, 1+r.IntN(6))
					if err != nil {
						t.Fatalf("dir %d type %q page %d: %v", dir, typ, pages, err)
					}
					for _, n := range p.Entries {
						seen[n.EdgeID]++
					}
					if cursor, pages = p.Next, pages+1; cursor == "" {
						break
					}
					// Writes between pages: remove edges (often all of
					// those just returned and the next ones), add a few;
					// every write triggers a compaction (CompactMin 1).
					for range r.IntN(12) {
						for id := range live {
							apply(edgeRemoved(id))
							delete(live, id)
							delete(throughout, id)
							break
						}
					}
					for range r.IntN(3) {
						add()
					}
				}
				for id, n := range seen {
					if n > 1 {
						t.Errorf("dir %d type %q: edge %s returned %d times", dir, typ, id, n)
					}
				}
				for id := range throughout {
					e, _ := g.edges.Lookup(id)
					want := typ == "" || g.types.name(g.etype.Get(int(e))) == typ
					if src, dst := g.src.Get(int(e)), g.dst.Get(int(e)); dir == Out && g.nodes.String(src) != "hub" ||
						dir == In && g.nodes.String(dst) != "hub" {
						want = false
					}
					if want && seen[id] != 1 {
						t.Errorf("dir %d type %q: edge %s, there all along, returned %d times", dir, typ, id, seen[id])
					}
				}
				if g.adj.Epoch() == 0 {
					t.Fatal("no compaction happened")
				}
			}
		}
	})
}
