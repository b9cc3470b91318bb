package memtrim

import (
	"runtime"
	"testing"
	"time"
)

// sink keeps a big allocation live until the test drops it.
var sink [][]byte

// dropBig allocates about 256 MiB, keeps it through a collection, then
// drops it and collects again: the runtime then holds it, free.
func dropBig() {
	for range 64 {
		b := make([]byte, 4<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1 // touch every page: resident
		}
		sink = append(sink, b)
	}
	runtime.GC()
	sink = nil
	runtime.GC()
}

// After a drop, a Trimmer hands the free heap back once no collection ran
// for Quiet, and not before; a collection in between restarts the quiet
// time; after a trim the heap it holds is small again, and the next Step
// does nothing.
func TestTrimAfterQuietDrop(t *testing.T) {
	dropBig()
	t0 := time.Now()
	tr := New(Config{Quiet: 10 * time.Second}, t0)
	if r := tr.Step(t0.Add(9 * time.Second)); r.Trimmed {
		t.Fatalf("trimmed before the quiet time: %+v", r)
	}
	runtime.GC() // a collection: quiet from the next look on
	if r := tr.Step(t0.Add(11 * time.Second)); r.Trimmed {
		t.Fatalf("trimmed right after a collection: %+v", r)
	}
	dropBig() // the runtime may have handed some back meanwhile
	if r := tr.Step(t0.Add(11500 * time.Millisecond)); r.Trimmed {
		t.Fatalf("trimmed right after a collection: %+v", r)
	}
	r := tr.Step(t0.Add(22 * time.Second))
	if !r.Trimmed {
		t.Fatalf("not trimmed after 11 quiet seconds with %d MiB held over %d MiB live", r.Held>>20, r.Live>>20)
	}
	if r.Held-r.HeldAfter < 128<<20 {
		t.Fatalf("handed back %d MiB (held %d MiB, then %d MiB), want at least 128", (r.Held-r.HeldAfter)>>20, r.Held>>20, r.HeldAfter>>20)
	}
	if r := tr.Step(t0.Add(40 * time.Second)); r.Trimmed {
		t.Fatalf("trimmed again with nothing left over: %+v", r)
	}
}

// A heap held within Excess of the live heap is left alone however quiet.
func TestNoTrimWithoutExcess(t *testing.T) {
	runtime.GC()
	t0 := time.Now()
	tr := New(Config{Excess: 1 << 40}, t0)
	if r := tr.Step(t0.Add(time.Hour)); r.Trimmed {
		t.Fatalf("trimmed without a terabyte over the live heap: %+v", r)
	}
}

// A process that allocates fast enough to fill the heap it holds beyond
// the live heap within Horizon keeps it, however quiet the collector; a
// slower one is trimmed; and a trim is not followed by another within
// Gap.
func TestTrimHorizon(t *testing.T) {
	dropBig()
	t0 := time.Now()
	busy := New(Config{Quiet: time.Second, Horizon: 1000 * time.Hour}, t0)
	sink = append(sink, make([]byte, 64<<10)) // some allocation since the last collection
	r := busy.Step(t0.Add(2 * time.Second))
	if r.Trimmed {
		t.Fatalf("trimmed while allocating %.0f bytes/s, with a horizon of 1000 h: %+v", r.Rate, r)
	}
	if r.Rate <= 0 {
		t.Skipf("a collection ran in between (rate %v): nothing to check", r.Rate)
	}

	slow := New(Config{Quiet: time.Second, Horizon: time.Minute, Gap: time.Minute}, t0)
	if r := slow.Step(t0.Add(2 * time.Minute)); !r.Trimmed {
		t.Fatalf("not trimmed with %d MiB held over %d MiB live, allocating %.0f bytes/s: %+v", (r.Held-r.Live)>>20, r.Live>>20, r.Rate, r)
	}
	dropBig()
	slow.Step(t0.Add(2*time.Minute + 10*time.Second)) // sees dropBig's collections
	if r := slow.Step(t0.Add(2*time.Minute + 50*time.Second)); r.Trimmed {
		t.Fatalf("trimmed again 50 s after a trim, with a gap of a minute: %+v", r)
	}
	if r := slow.Step(t0.Add(3*time.Minute + 30*time.Second)); !r.Trimmed {
		t.Fatalf("not trimmed a minute and a half after the last trim, with %d MiB held over %d MiB live: %+v", (r.Held-r.Live)>>20, r.Live>>20, r)
	}
}

// worth's arithmetic: the excess must be at least Excess and a quarter of
// the live heap, and outlast Horizon at the rate, scaled for a live heap
// above HeapRef.
func TestWorth(t *testing.T) {
	const mib = 1 << 20
	c := Config{}.defaulted() // Excess 64 MiB, Horizon 10 s, HeapRef 256 MiB
	for _, tc := range []struct {
		name       string
		live, held uint64
		rate       float64 // MiB/s
		want       bool
	}{
		{"idle after a burst", 200 * mib, 400 * mib, 0, true},
		{"held below live", 200 * mib, 100 * mib, 0, false},
		{"excess under 64 MiB", 100 * mib, 160 * mib, 0, false},
		{"excess under a quarter of live", 1000 * mib, 1200 * mib, 0, false},
		{"slow: fills in 12.5 s", 200 * mib, 350 * mib, 12, true},
		{"fast: fills in 7.5 s", 200 * mib, 350 * mib, 20, false},
		// A 1M-node engine under a mixed load, about as measured: a
		// 540 MiB excess at 50 MiB/s fills in 10.8 s, under the 21 s
		// its 547 MiB live heap needs.
		{"big heap, fills in 10.8 s", 547 * mib, 1087 * mib, 50, false},
		{"big heap, idle", 547 * mib, 1087 * mib, 0.1, true},
	} {
		if got := c.worth(tc.live, tc.held, tc.rate*mib); got != tc.want {
			t.Errorf("%s: worth(live %d MiB, held %d MiB, %.1f MiB/s) = %v, want %v", tc.name, tc.live/mib, tc.held/mib, tc.rate, got, tc.want)
		}
	}
}

// What a trim cannot hand back (the runtime's own memory beyond the live
// heap) does not count toward the next: an idle process is trimmed once,
// however small Excess is.
func TestNoTrimOfTheFloor(t *testing.T) {
	dropBig()
	t0 := time.Now()
	tr := New(Config{Quiet: time.Second, Excess: 1}, t0)
	if r := tr.Step(t0.Add(time.Minute)); !r.Trimmed {
		t.Fatalf("not trimmed after a drop: %+v", r)
	}
	for i := range 3 {
		if r := tr.Step(t0.Add(time.Duration(2+i) * time.Minute)); r.Trimmed {
			t.Fatalf("trimmed again, %d min after the trim, with nothing new held (%d KiB held over %d KiB live): %+v",
				1+i, (r.Held-r.Live)>>10, r.Live>>10, r)
		}
	}
}
