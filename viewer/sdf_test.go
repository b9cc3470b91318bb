package viewer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bruteField is distanceField's reference: for each pixel, the distance to
// the nearest pixel of the other kind by a scan of all pixels.
func bruteField(cov []byte, w, h int, spread float64) []byte {
	out := make([]byte, w*h)
	for i := range out {
		x, y := i%w, i/w
		inside := cov[i] >= 128
		best := math.Inf(1)
		for j := range cov {
			if (cov[j] >= 128) != inside {
				dx, dy := float64(j%w-x), float64(j/w-y)
				best = min(best, math.Sqrt(dx*dx+dy*dy))
			}
		}
		d := 0.5 - best
		if inside {
			d = best - 0.5
		}
		out[i] = byte(min(max(math.Round(127.5+127.5*d/spread), 0), 255))
	}
	return out
}

func TestDistanceFieldMatchesBruteForce(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		w, h := 1+rng.IntN(24), 1+rng.IntN(24)
		cov := make([]byte, w*h)
		// Random blobs and a random share of lone pixels.
		for i := range cov {
			if rng.IntN(10) == 0 {
				cov[i] = byte(rng.IntN(256))
			}
		}
		for n := rng.IntN(3); n > 0; n-- {
			cx, cy, r := rng.IntN(w), rng.IntN(h), 1+rng.IntN(6)
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					if (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r {
						cov[y*w+x] = 255
					}
				}
			}
		}
		spread := 2 + float64(rng.IntN(8))
		got, want := distanceField(cov, w, h, spread), bruteField(cov, w, h, spread)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("seed %d (%dx%d, spread %v): pixel (%d,%d) = %d, brute force %d", seed, w, h, spread, i%w, i/w, got[i], want[i])
			}
		}
	}
}

func TestDistanceFieldHalfPlane(t *testing.T) {
	// Columns 0..19 inside, 20.. outside: the outline is at x = 19.5.
	const w, h, spread = 48, 5, 8.0
	cov := make([]byte, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < 20; x++ {
			cov[y*w+x] = 255
		}
	}
	f := distanceField(cov, w, h, spread)
	for y := 0; y < h; y++ {
		row := f[y*w : (y+1)*w]
		// Half a pixel either side of the outline: 0.5 ± 0.5/(2·spread).
		if mid := (float64(row[19]) + float64(row[20])) / 2; math.Abs(mid-127.5) > 0.5 {
			t.Errorf("row %d: field at the outline %v, want 127.5", y, mid)
		}
		for x := 1; x < w; x++ {
			if row[x] > row[x-1] {
				t.Fatalf("row %d: field rises outward at x=%d: %v", y, x, row)
			}
		}
		// Exact in the ramp: 127.5 per spread pixels.
		for x := 12; x < 28; x++ {
			d := 19.5 - float64(x)
			want := math.Round(min(max(127.5+127.5*d/spread, 0), 255))
			if float64(row[x]) != want {
				t.Errorf("row %d x %d: %d, want %v", y, x, row[x], want)
			}
		}
		if row[0] != 255 || row[w-1] != 0 {
			t.Errorf("row %d: far inside %d, far outside %d; want 255, 0", y, row[0], row[w-1])
		}
	}
}

func TestDistanceFieldEmptyAndFull(t *testing.T) {
	for _, c := range []byte{0, 255} {
		cov := []byte{c, c, c, c, c, c}
		for _, v := range distanceField(cov, 3, 2, 4) {
			if want := byte(0); c == 255 && v != 255 || c == 0 && v != want {
				t.Fatalf("uniform coverage %d: field %d", c, v)
			}
		}
	}
}
