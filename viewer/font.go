package viewer

import (
	"fmt"
	"image"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// The text atlas: printable ASCII from Go Mono, rasterised at bakePx
// pixels to the em and turned into a signed distance field (one byte a
// pixel, 0.5 on the outline), glyph i (rune firstGlyph+i) in the cell at
// column i%atlasCols, row i/atlasCols. The field reaches spreadPx atlas
// pixels either side of the outline, and each cell has padPx (a pixel
// more) around its glyph's ink, so that a cell's border is 0: a quad's
// edge draws nothing and sampling a cell never reads its neighbour. Text
// of any size is drawn from it; other runes show as '?'.
const (
	bakePx     = 48
	spreadPx   = 8
	padPx      = spreadPx + 1
	atlasCols  = 16
	firstGlyph = ' '
	lastGlyph  = '~'
	glyphCount = lastGlyph - firstGlyph + 1
)

// atlas is the baked text atlas and the metrics that layoutText needs,
// all in atlas pixels.
type atlas struct {
	w, h         int
	pix          []byte // distance field, rows top to bottom
	cellW, cellH int
	// originX, originY is the pen position (the baseline's left end) in
	// every cell, from the cell's top-left corner.
	originX, originY float32
	advance          float32 // the pen's advance (Go Mono is monospaced)
	ascent, descent  float32 // the font's, for line boxes
	// ink is each glyph's ink box in its cell (x0, y0, x1, y1, whole
	// pixels): a glyph's quad covers it and its halo's reach, not the
	// whole cell, which saves fragments.
	ink [glyphCount][4]float32
}

// bakeAtlas rasterises Go Mono's printable ASCII at bakePx and computes
// each glyph's distance field.
func bakeAtlas() (atlas, error) {
	f, err := opentype.Parse(gomono.TTF)
	if err != nil {
		return atlas{}, fmt.Errorf("text atlas: %w", err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: bakePx, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return atlas{}, fmt.Errorf("text atlas: %w", err)
	}
	defer face.Close()
	// The ink of all glyphs, relative to the pen, bounds the cell.
	var ink fixed.Rectangle26_6
	var inks [glyphCount]fixed.Rectangle26_6
	adv, _ := face.GlyphAdvance('M')
	for r := rune(firstGlyph); r <= lastGlyph; r++ {
		if b, _, ok := face.GlyphBounds(r); ok {
			ink = ink.Union(b)
			inks[r-firstGlyph] = b
		}
	}
	m := face.Metrics()
	a := atlas{
		advance: fix(adv),
		ascent:  fix(m.Ascent),
		descent: fix(m.Descent),
	}
	x0, y0 := ink.Min.X.Floor(), ink.Min.Y.Floor()
	a.cellW = ink.Max.X.Ceil() - x0 + 2*padPx
	a.cellH = ink.Max.Y.Ceil() - y0 + 2*padPx
	a.originX, a.originY = float32(padPx-x0), float32(padPx-y0)
	for i, b := range inks {
		a.ink[i] = [4]float32{
			float32(padPx - x0 + b.Min.X.Floor()), float32(padPx - y0 + b.Min.Y.Floor()),
			float32(padPx - x0 + b.Max.X.Ceil()), float32(padPx - y0 + b.Max.Y.Ceil()),
		}
	}
	rows := int(glyphCount+atlasCols-1) / atlasCols
	a.w, a.h = atlasCols*a.cellW, rows*a.cellH
	a.pix = make([]byte, a.w*a.h)

	cell := image.NewAlpha(image.Rect(0, 0, a.cellW, a.cellH))
	d := font.Drawer{Dst: cell, Src: image.Opaque, Face: face}
	for i := 0; i < glyphCount; i++ {
		clear(cell.Pix)
		d.Dot = fixed.Point26_6{X: fixed.I(padPx - x0), Y: fixed.I(padPx - y0)}
		d.DrawString(string(rune(firstGlyph + i)))
		field := distanceField(cell.Pix, a.cellW, a.cellH, spreadPx)
		cx, cy := (i%atlasCols)*a.cellW, (i/atlasCols)*a.cellH
		for y := 0; y < a.cellH; y++ {
			copy(a.pix[(cy+y)*a.w+cx:], field[y*a.cellW:(y+1)*a.cellW])
		}
	}
	return a, nil
}

func fix(v fixed.Int26_6) float32 { return float32(v) / 64 }

// textVertexFloats is the size of one text vertex: x, y in pixels (top-left
// origin) and u, v in atlas pixels.
const textVertexFloats = 4

// layoutText appends two triangles (six vertices of x, y, u, v) per
// character of s, set at px pixels to the em from (x, y), the top-left
// corner of the line box (the font's ascent above the baseline, its
// descent below). The pen starts at x rounded and the baseline falls on a
// whole pixel row, so that text sits on the pixel grid at any size. Each
// quad covers its glyph's ink and as far around it as the antialiasing
// and the halo reach (within the cell). It returns dst and the advance
// width of the text in pixels.
func (a *atlas) layoutText(dst []float32, s string, x, y, px float32) ([]float32, float32) {
	k := px / bakePx
	// The halo and its ramp reach textHaloPx+0.5 screen pixels past the
	// outline, which lies inside the ink box; an atlas pixel more for
	// the bilinear footprint.
	m := min(float32(padPx), (textHaloPx+0.5)/k+1)
	x = float32(math.Round(float64(x)))
	base := float32(math.Round(float64(y + a.ascent*k)))
	x0 := x
	for _, r := range s {
		if r < firstGlyph || r > lastGlyph {
			r = '?'
		}
		if r != ' ' {
			i := int(r - firstGlyph)
			cu, cv := float32((i%atlasCols)*a.cellW), float32((i/atlasCols)*a.cellH)
			b := a.ink[i]
			bx0, by0 := max(b[0]-m, 0), max(b[1]-m, 0)
			bx1, by1 := min(b[2]+m, float32(a.cellW)), min(b[3]+m, float32(a.cellH))
			qx0, qy0 := x+(bx0-a.originX)*k, base+(by0-a.originY)*k
			qx1, qy1 := x+(bx1-a.originX)*k, base+(by1-a.originY)*k
			u0, v0, u1, v1 := cu+bx0, cv+by0, cu+bx1, cv+by1
			dst = append(dst,
				qx0, qy0, u0, v0,
				qx1, qy0, u1, v0,
				qx0, qy1, u0, v1,
				qx1, qy0, u1, v0,
				qx1, qy1, u1, v1,
				qx0, qy1, u0, v1,
			)
		}
		x += a.advance * k
	}
	return dst, x - x0
}

// lineHeight is the height of a line box of text at px pixels to the em.
func (a *atlas) lineHeight(px float32) float32 { return (a.ascent + a.descent) * px / bakePx }
