package viewer

import (
	"image"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The text atlas: printable ASCII from basicfont's 7×13 bitmap face, baked
// at start into one row of cells one pixel wider and taller than a glyph,
// so that each cell holds its glyph's shadow too. Other runes show as '?'.
const (
	glyphW, glyphH = 7, 13
	cellW, cellH   = glyphW + 1, glyphH + 1
	firstGlyph     = ' '
	lastGlyph      = '~'
	glyphCount     = lastGlyph - firstGlyph + 1
)

// atlas is the baked text atlas: two bytes a pixel, the glyph's coverage
// (R) and its shadow, the glyph moved one pixel right and down (G).
type atlas struct {
	w, h int
	pix  []byte // RG, rows top to bottom
}

// bakeAtlas draws the printable ASCII glyphs, glyph i (rune firstGlyph+i)
// in the cell at x = i*cellW, and their shadows.
func bakeAtlas() atlas {
	glyphs := image.NewAlpha(image.Rect(0, 0, glyphCount*cellW, cellH))
	d := font.Drawer{Dst: glyphs, Src: image.Opaque, Face: basicfont.Face7x13}
	for i := 0; i < glyphCount; i++ {
		d.Dot = fixed.P(i*cellW, basicfont.Face7x13.Ascent)
		d.DrawString(string(rune(firstGlyph + i)))
	}
	a := atlas{w: glyphCount * cellW, h: cellH}
	a.pix = make([]byte, 2*a.w*a.h)
	for y := 0; y < a.h; y++ {
		for x := 0; x < a.w; x++ {
			a.pix[2*(y*a.w+x)] = glyphs.AlphaAt(x, y).A
			if x%cellW > 0 && y > 0 {
				a.pix[2*(y*a.w+x)+1] = glyphs.AlphaAt(x-1, y-1).A
			}
		}
	}
	return a
}

// textVertexFloats is the size of one text vertex: x, y in pixels (top-left
// origin) and u, v in atlas pixels.
const textVertexFloats = 4

// layoutText appends two triangles (six vertices of x, y, u, v) per
// character of s, drawn from (x, y), the top-left corner of the first
// glyph, at scale pixels per atlas pixel; each quad covers a whole cell
// (glyph and shadow) while the pen advances by the glyph's width. It
// returns dst and the pixel width of the text.
func layoutText(dst []float32, s string, x, y, scale float32) ([]float32, float32) {
	x0 := x
	w, h := cellW*scale, cellH*scale
	for _, r := range s {
		if r < firstGlyph || r > lastGlyph {
			r = '?'
		}
		if r != ' ' {
			u := float32((r - firstGlyph) * cellW)
			dst = append(dst,
				x, y, u, 0,
				x+w, y, u+cellW, 0,
				x, y+h, u, cellH,
				x+w, y, u+cellW, 0,
				x+w, y+h, u+cellW, cellH,
				x, y+h, u, cellH,
			)
		}
		x += glyphW * scale
	}
	return dst, x - x0
}
