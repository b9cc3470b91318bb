package viewer

import "math"

// distanceField turns a coverage bitmap (w×h bytes, rows top to bottom;
// a pixel is inside when its coverage is at least 128) into a signed
// distance field of the same size: 128 (0.5) on the outline, rising
// inside and falling outside by 127.5 per spread pixels, clamped to
// [0, 255]. Distances are exact Euclidean distances between pixel centres
// (Felzenszwalb and Huttenlocher's two-pass transform), less half a pixel,
// so that the outline falls between an inside and an outside pixel.
func distanceField(cov []byte, w, h int, spread float64) []byte {
	out := make([]byte, w*h)
	if w <= 0 || h <= 0 {
		return out
	}
	in := make([]float64, w*h) // squared distance to the nearest inside pixel
	ex := make([]float64, w*h) // squared distance to the nearest outside pixel
	for i, c := range cov[:w*h] {
		if c >= 128 {
			ex[i] = math.Inf(1)
		} else {
			in[i] = math.Inf(1)
		}
	}
	t := newEDT(max(w, h))
	t.transform(in, w, h)
	t.transform(ex, w, h)
	for i := range out {
		var d float64 // signed: positive inside
		if cov[i] >= 128 {
			d = math.Sqrt(ex[i]) - 0.5
		} else {
			d = 0.5 - math.Sqrt(in[i])
		}
		v := 127.5 + 127.5*d/spread
		out[i] = byte(min(max(math.Round(v), 0), 255))
	}
	return out
}

// edt holds the scratch space of the one-dimensional squared distance
// transform, sized for the longest row or column.
type edt struct {
	f, d []float64
	v    []int
	z    []float64
}

func newEDT(n int) *edt {
	return &edt{f: make([]float64, n), d: make([]float64, n), v: make([]int, n), z: make([]float64, n+1)}
}

// transform replaces g (w×h; 0 at feature pixels, +Inf elsewhere) by each
// pixel's squared Euclidean distance to the nearest feature pixel (+Inf
// when there is none): columns first, then rows.
func (t *edt) transform(g []float64, w, h int) {
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			t.f[y] = g[y*w+x]
		}
		t.line(h)
		for y := 0; y < h; y++ {
			g[y*w+x] = t.d[y]
		}
	}
	for y := 0; y < h; y++ {
		copy(t.f[:w], g[y*w:(y+1)*w])
		t.line(w)
		copy(g[y*w:(y+1)*w], t.d[:w])
	}
}

// line computes d[q] = min over p of (q-p)² + f[p] for q < n: the lower
// envelope of parabolas rooted at the finite f[p].
func (t *edt) line(n int) {
	f, d, v, z := t.f, t.d, t.v, t.z
	k := -1
	for q := 0; q < n; q++ {
		if math.IsInf(f[q], 1) {
			continue
		}
		fq := f[q] + float64(q*q)
		var s float64
		for k >= 0 {
			p := v[k]
			s = (fq - (f[p] + float64(p*p))) / float64(2*(q-p))
			if s > z[k] {
				break
			}
			k--
		}
		k++
		v[k] = q
		if k == 0 {
			z[k] = math.Inf(-1)
		} else {
			z[k] = s
		}
		z[k+1] = math.Inf(1)
	}
	if k < 0 {
		for q := 0; q < n; q++ {
			d[q] = math.Inf(1)
		}
		return
	}
	j := 0
	for q := 0; q < n; q++ {
		for z[j+1] < float64(q) {
			j++
		}
		p := v[j]
		d[q] = float64((q-p)*(q-p)) + f[p]
	}
}
