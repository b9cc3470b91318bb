package readmodel

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TestFreezeDifferential freezes a graph at random points of a random event
// stream (during background compactions too) and writes each capture on
// another goroutine while the stream, compactions and queries go on: every
// capture must write the bytes that AppendSnapshot wrote at its freeze,
// then and again at the end, and load back.
func TestFreezeDifferential(t *testing.T) {
	forEachSeed(t, func(t *testing.T, seed uint64) { runFreezeDifferential(t, seed, 400) })
}

func runFreezeDifferential(t *testing.T, seed uint64, batches int) {
	g := newCompactingGraph(t)
	gn := &gen{r: rand.New(rand.NewPCG(seed, 13)), ref: newRef()}
	type capture struct {
		batch     int
		f         *Frozen
		want, got []byte
	}
	var caps []*capture
	var wg sync.WaitGroup
	freeze := func(b int) {
		f := g.Freeze()
		c := &capture{batch: b, f: f, want: g.AppendSnapshot(nil)}
		caps = append(caps, c)
		wg.Go(func() { c.got = f.AppendSnapshot(nil) })
	}
	if err := g.ApplyTx(1, []*cairnv1.Event{created()}); err != nil {
		t.Fatal(err)
	}
	freeze(0)
	midCompaction := 0
	for b := range batches {
		if err := g.ApplyTx(uint64(b+2), gn.tx()); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		if gn.r.IntN(30) == 0 {
			g.Compact()
		}
		if gn.r.IntN(10) == 0 {
			answers(g, seed+uint64(b))
		}
		if gn.r.IntN(8) == 0 {
			if g.adj.Compacting() {
				midCompaction++
			}
			freeze(b)
		}
	}
	wg.Wait()
	for _, c := range caps {
		if !bytes.Equal(c.got, c.want) {
			t.Fatalf("seed %d: the capture of batch %d wrote other bytes than AppendSnapshot then (%d and %d)", seed, c.batch, len(c.got), len(c.want))
		}
		if !bytes.Equal(c.f.AppendSnapshot(nil), c.want) {
			t.Fatalf("seed %d: the capture of batch %d changed", seed, c.batch)
		}
		if _, err := LoadSnapshot(c.got, g.cfg); err != nil {
			t.Fatalf("seed %d: the capture of batch %d does not load: %v", seed, c.batch, err)
		}
	}
	if midCompaction == 0 {
		t.Errorf("seed %d: no capture during a compaction", seed)
	}
	t.Logf("%d captures, %d during a compaction", len(caps), midCompaction)
}
