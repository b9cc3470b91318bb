package adjacency

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/pace"
)

// TestBeginPacedWaitsForTheGate: a paced compaction runs only while it
// holds a slot of its gate, and builds the same arrays as an unpaced one.
// Its rows are many times buildStride, so it steps (and, at duty 0.5,
// sleeps) on its way.
func TestBeginPacedWaitsForTheGate(t *testing.T) {
	const nodes = 3*buildStride + 17
	gate, err := pace.New(pace.Config{Slots: 1, Duty: 0.5, Slice: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	paced, plain := New(), New()
	r := rand.New(rand.NewPCG(11, 12))
	for e := range uint32(4 * nodes) {
		src, dst := uint32(r.IntN(nodes)), uint32(r.IntN(nodes))
		paced.Add(e, src, dst)
		plain.Add(e, src, dst)
	}
	for e := uint32(0); e < 4*nodes; e += 7 {
		paced.Remove(e)
		plain.Remove(e)
	}
	ctx := context.Background()
	held, err := gate.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	paced.BeginPaced(nodes, gate)
	plain.Begin(nodes)
	// The same work, started later and unpaced, is done; the paced one
	// cannot have run, the gate's only slot being held here.
	<-plain.job.done
	select {
	case <-paced.job.done:
		t.Fatal("a paced compaction finished while its gate's only slot was held")
	default:
	}
	held.End()
	if got, want := paced.Finish(), plain.Finish(); !slices.Equal(got, want) {
		t.Fatalf("paced compaction freed %d edges, unpaced %d", len(got), len(want))
	}
	for d := range paced.dir {
		for u := range uint32(nodes) {
			var got, want []uint32
			paced.Scan(Dir(d), u, 0, func(_ int, e uint32) bool { got = append(got, e); return true })
			plain.Scan(Dir(d), u, 0, func(_ int, e uint32) bool { want = append(want, e); return true })
			if !slices.Equal(got, want) {
				t.Fatalf("dir %d node %d: paced %v, unpaced %v", d, u, got, want)
			}
		}
	}
}

// TestFinishHurriesAPacedCompaction: Finish does not wait for the gate. A
// compaction whose gate's only slot is held elsewhere runs unpaced once
// Finish waits for it.
func TestFinishHurriesAPacedCompaction(t *testing.T) {
	const nodes = 2*buildStride + 5
	gate, err := pace.New(pace.Config{Slots: 1, Duty: 0.01, Slice: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	held, err := gate.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer held.End()
	x := New()
	for e := range uint32(2 * nodes) {
		x.Add(e, e%nodes, (7*e)%nodes)
	}
	x.BeginPaced(nodes, gate)
	x.Finish() // with the slot held here: returns only if hurried
	n := 0
	x.Scan(Out, 3, 0, func(int, uint32) bool { n++; return true })
	if n != 2 {
		t.Fatalf("node 3 has %d out-edges after the compaction, want 2", n)
	}
}

// TestAppendSnapshotPacedStepsPerDeltaPage: the paced encoding of an index
// whose deltas span many pages writes the same bytes as the unpaced one and
// steps after each page of each delta, not once per delta.
func TestAppendSnapshotPacedStepsPerDeltaPage(t *testing.T) {
	const pages = 40
	x := New()
	r := rand.New(rand.NewPCG(13, 14))
	for e := range uint32(8 * pages) {
		// Sources and targets spread over every page.
		x.Add(e, uint32(r.IntN(pages<<deltaPageBits)), uint32(r.IntN(pages<<deltaPageBits)))
	}
	f := x.Freeze()
	steps := 0
	paced := f.AppendSnapshotPaced(nil, func() { steps++ })
	if plain := f.AppendSnapshot(nil); !slices.Equal(paced, plain) {
		t.Fatalf("paced encoding of %d bytes differs from the unpaced one of %d", len(paced), len(plain))
	}
	used := 0
	for d := range x.dir {
		for _, p := range x.dir[d].added.pages {
			if p != nil {
				used++
			}
		}
	}
	if used < pages || steps < used {
		t.Fatalf("%d steps for %d delta pages in use, want one per page at least", steps, used)
	}
}
