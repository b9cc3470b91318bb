package adjacency

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
)

// TestFreezeAgainstSnapshot adds and removes edges among nodes spread over
// several delta pages, with background compactions, folds and freezes at
// random points; each frozen view is written on another goroutine while the
// index goes on changing, and again at the end: both must equal the
// snapshot the index wrote at the freeze. CAIRN_TEST_SEED picks another seed.
func TestFreezeAgainstSnapshot(t *testing.T) {
	seed := uint64(1)
	if s := os.Getenv("CAIRN_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CAIRN_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (CAIRN_TEST_SEED)", seed)
	const nodes = 3 << deltaPageBits
	r := rand.New(rand.NewPCG(seed, 5))
	x := New()
	type view struct {
		f         *Frozen
		want, got []byte
		compact   bool
	}
	var views []*view
	var wg sync.WaitGroup
	var live []uint32
	var free []uint32
	next := uint32(0)
	compacting := 0
	for range 30000 {
		switch p := r.IntN(1000); {
		case p < 700 || len(live) == 0:
			e := next
			if len(free) > 0 {
				e, free = free[len(free)-1], free[:len(free)-1]
			} else {
				next++
			}
			src := uint32(r.IntN(nodes))
			if r.IntN(2) == 0 {
				src = uint32(r.IntN(8)) // hubs, rows of many edges
			}
			x.Add(e, src, uint32(r.IntN(nodes)))
			live = append(live, e)
		case p < 990:
			k := r.IntN(len(live))
			x.Remove(live[k])
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
		case p < 994:
			if x.Compacting() {
				free = append(free, x.Finish()...)
			} else {
				x.Begin(nodes)
			}
		case p < 995:
			x.Fold(nodes)
		default:
			v := &view{f: x.Freeze(), want: x.AppendSnapshot(nil), compact: x.Compacting()}
			if v.compact {
				compacting++
			}
			views = append(views, v)
			wg.Go(func() { v.got = v.f.AppendSnapshot(nil) })
		}
	}
	wg.Wait()
	x.Finish()
	if len(views) < 50 || compacting == 0 {
		t.Fatalf("seed %d: %d views, %d during a compaction", seed, len(views), compacting)
	}
	for k, v := range views {
		if !bytes.Equal(v.got, v.want) || !bytes.Equal(v.f.AppendSnapshot(nil), v.want) {
			t.Fatalf("seed %d: view %d (compacting %t) wrote other bytes than the index at its freeze", seed, k, v.compact)
		}
	}
}
