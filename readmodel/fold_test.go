package readmodel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TestCompactDoesNotChangeAnswers: Compact (which a shard calls when it
// catches up, a point that depends on timing) folds memory only. A graph
// compacted at random points, during background compactions too, answers
// every query exactly as one that never is, cursors and neighbour order
// included, now and after later writes reuse edge indices. (Which of two
// equal-cost shortest paths a traversal finds follows the arrays' layout,
// so paths are left out, as in the engine's compacting comparisons.)
func TestCompactDoesNotChangeAnswers(t *testing.T) {
	forEachSeed(t, func(t *testing.T, seed uint64) {
		folded, plain := newCompactingGraph(t), newCompactingGraph(t)
		gn := &gen{r: rand.New(rand.NewPCG(seed, 11)), ref: newRef()}
		apply := func(seq uint64, evs []*cairnv1.Event) {
			t.Helper()
			for _, g := range []*Graph{folded, plain} {
				if err := g.ApplyTx(seq, evs); err != nil {
					t.Fatalf("seq %d: %v", seq, err)
				}
			}
		}
		apply(1, []*cairnv1.Event{created()})
		duringJob := 0
		for b := range 300 {
			apply(uint64(b+2), gn.tx())
			if gn.r.IntN(8) == 0 {
				if folded.adj.Compacting() {
					duringJob++
				}
				folded.Compact()
			}
			if b%25 == 24 {
				sameAnswers(t, plain, folded, seed+uint64(b), false, fmt.Sprintf("batch %d", b))
			}
		}
		sameAnswers(t, plain, folded, seed, false, "end")
		if duringJob == 0 {
			t.Errorf("Compact never ran during a background compaction")
		}
	})
}
