package viewer

import (
	"math"
	"testing"
)

func TestBakeAtlas(t *testing.T) {
	a, err := bakeAtlas()
	if err != nil {
		t.Fatal(err)
	}
	rows := int(glyphCount+atlasCols-1) / atlasCols
	if a.w != atlasCols*a.cellW || a.h != rows*a.cellH || len(a.pix) != a.w*a.h {
		t.Fatalf("atlas %dx%d (cells %dx%d), %d bytes", a.w, a.h, a.cellW, a.cellH, len(a.pix))
	}
	if a.advance < 20 || a.advance > 40 || a.ascent <= 0 || a.descent <= 0 {
		t.Fatalf("metrics: advance %v ascent %v descent %v", a.advance, a.ascent, a.descent)
	}
	at := func(r rune, x, y int) byte {
		i := int(r - firstGlyph)
		return a.pix[((i/atlasCols)*a.cellH+y)*a.w+(i%atlasCols)*a.cellW+x]
	}
	// inside counts a glyph's pixels inside its outline.
	inside := func(r rune) int {
		n := 0
		for y := 0; y < a.cellH; y++ {
			for x := 0; x < a.cellW; x++ {
				if at(r, x, y) >= 128 {
					n++
				}
			}
		}
		return n
	}
	if inside(' ') != 0 || inside('A') == 0 || inside('~') == 0 {
		t.Fatalf("inside: space %d, A %d, ~ %d", inside(' '), inside('A'), inside('~'))
	}
	if inside('W') <= inside('.') || inside('M') <= inside('-') {
		t.Errorf("inside: W %d . %d M %d - %d", inside('W'), inside('.'), inside('M'), inside('-'))
	}
	// Every cell's border is 0: no field reaches a neighbour.
	for r := rune(firstGlyph); r <= lastGlyph; r++ {
		for x := 0; x < a.cellW; x++ {
			for _, y := range []int{0, a.cellH - 1} {
				if v := at(r, x, y); v != 0 {
					t.Fatalf("%q: border (%d,%d) = %d", r, x, y, v)
				}
			}
		}
		for y := 0; y < a.cellH; y++ {
			for _, x := range []int{0, a.cellW - 1} {
				if v := at(r, x, y); v != 0 {
					t.Fatalf("%q: border (%d,%d) = %d", r, x, y, v)
				}
			}
		}
	}
	// '|' is a vertical bar through the middle of the advance, crossing
	// the baseline: inside there, outside at the pen and the far edge.
	mid := int(a.originX + a.advance/2)
	base := int(a.originY)
	if at('|', mid, base) < 128 || at('|', int(a.originX), base) >= 128 || at('|', int(a.originX+a.advance), base) >= 128 {
		t.Errorf("'|' at the baseline: middle %d, pen %d, advance %d", at('|', mid, base), at('|', int(a.originX), base), at('|', int(a.originX+a.advance), base))
	}
	// '_' lies on or below the baseline, not above the x-height.
	if inside('_') == 0 || at('_', mid, base-int(a.ascent/2)) >= 128 {
		t.Errorf("'_': %d inside, %d half an ascent above the baseline", inside('_'), at('_', mid, base-int(a.ascent/2)))
	}
}

func TestLayoutText(t *testing.T) {
	a, err := bakeAtlas()
	if err != nil {
		t.Fatal(err)
	}
	const px = 24 // half the bake size
	k := float32(px) / bakePx
	v, w := a.layoutText(nil, "a b\u00e9", 10.4, 20, px)
	// Four characters (é → '?'), the space has no quad.
	if w != 4*a.advance*k || len(v) != 3*6*textVertexFloats {
		t.Fatalf("width %v, %d floats", w, len(v))
	}
	// The pen starts at x = 10 (rounded), the baseline on a whole pixel;
	// the quad covers 'a''s ink box and the halo's reach.
	base := float32(math.Round(float64(20 + a.ascent*k)))
	ia := int('a' - firstGlyph)
	m := min(float32(padPx), (textHaloPx+0.5)/k+1)
	b := a.ink[ia]
	if b[0] <= 0 || b[2] <= b[0] || b[3] <= b[1] {
		t.Fatalf("ink box of 'a' %v", b)
	}
	if v[0] != 10+(b[0]-m-a.originX)*k || v[1] != base+(b[1]-m-a.originY)*k ||
		v[2] != float32((ia%atlasCols)*a.cellW)+b[0]-m || v[3] != float32((ia/atlasCols)*a.cellH)+b[1]-m ||
		v[4] != v[0]+(b[2]-b[0]+2*m)*k {
		t.Errorf("first quad %v", v[:8])
	}
	iq := int('?' - firstGlyph)
	if u := v[2*6*textVertexFloats+2]; u != float32((iq%atlasCols)*a.cellW)+a.ink[iq][0]-m {
		t.Errorf("é drawn as u=%v, want '?'", u)
	}
	// The third quad ('?') starts three advances after the first, less
	// the difference of their ink boxes.
	want := 3*a.advance*k + (a.ink[iq][0]-b[0])*k
	if got := v[2*6*textVertexFloats] - v[0]; math.Abs(float64(got-want)) > 1e-4 {
		t.Errorf("third quad %v right of the first, want %v", got, want)
	}
	if h := a.lineHeight(px); h != (a.ascent+a.descent)*k {
		t.Errorf("line height %v", h)
	}
}

// TestGlyphQuadsCoverTheHalo checks, at several text sizes, that every
// atlas pixel that a glyph's quad leaves out is far enough from the
// outline for the halo (textHaloPx and its one-pixel ramp) to be 0 there.
func TestGlyphQuadsCoverTheHalo(t *testing.T) {
	a, err := bakeAtlas()
	if err != nil {
		t.Fatal(err)
	}
	for _, px := range []float32{11, 13, 20, 48} {
		k := px / bakePx
		// The halo is 0 beyond textHaloPx+0.5 screen pixels, that many
		// atlas pixels over k.
		reach := float64(textHaloPx+0.5) / float64(k)
		limit := 127.5 - 127.5*reach/spreadPx
		for i := 1; i < glyphCount; i++ {
			v, _ := a.layoutText(nil, string(rune(firstGlyph+i)), 0, 0, px)
			cu, cv := float32((i%atlasCols)*a.cellW), float32((i/atlasCols)*a.cellH)
			u0, v0, u1, v1 := v[2]-cu, v[3]-cv, v[18]-cu, v[19]-cv
			for y := 0; y < a.cellH; y++ {
				for x := 0; x < a.cellW; x++ {
					// A texel outside the quad by more than the bilinear
					// footprint (one texel).
					fx, fy := float32(x)+0.5, float32(y)+0.5
					if fx > u0-1 && fx < u1+1 && fy > v0-1 && fy < v1+1 {
						continue
					}
					val := a.pix[(int(cv)+y)*a.w+int(cu)+x]
					if float64(val) > max(limit, 0)+0.5 {
						t.Fatalf("%q at %v px: texel (%d,%d) outside the quad [%v,%v]×[%v,%v] holds %d, above the halo's limit %.1f", rune(firstGlyph+i), px, x, y, u0, u1, v0, v1, val, limit)
					}
				}
			}
		}
	}
}

// BenchmarkBakeAtlas measures the text atlas's bake at start and reports
// its size.
func BenchmarkBakeAtlas(b *testing.B) {
	b.ReportAllocs()
	var a atlas
	for b.Loop() {
		var err error
		if a, err = bakeAtlas(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(a.pix)), "atlas-bytes")
	b.ReportMetric(float64(a.w), "atlas-w")
	b.ReportMetric(float64(a.h), "atlas-h")
}

func TestLabelPx(t *testing.T) {
	for _, c := range []struct{ diam, want float64 }{
		{0, 11}, {8, 11}, {24, 12}, {29, 15}, {40, 20}, {400, 20},
	} {
		if got := LabelPx(c.diam, 11, 20); got != c.want {
			t.Errorf("LabelPx(%v, 11, 20) = %v, want %v", c.diam, got, c.want)
		}
	}
}
