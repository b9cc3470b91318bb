package viewer

import (
	"image"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The text atlas: printable ASCII from basicfont's 7×13 bitmap face, baked
// at start into one row of glyph cells. Other runes show as '?'.
const (
	glyphW, glyphH = 7, 13
	firstGlyph     = ' '
	lastGlyph      = '~'
	glyphCount     = lastGlyph - firstGlyph + 1
)

// bakeAtlas draws the printable ASCII glyphs into an alpha image, glyph i
// (rune firstGlyph+i) at x = i*glyphW.
func bakeAtlas() *image.Alpha {
	img := image.NewAlpha(image.Rect(0, 0, glyphCount*glyphW, glyphH))
	d := font.Drawer{Dst: img, Src: image.Opaque, Face: basicfont.Face7x13}
	for i := 0; i < glyphCount; i++ {
		d.Dot = fixed.P(i*glyphW, basicfont.Face7x13.Ascent)
		d.DrawString(string(rune(firstGlyph + i)))
	}
	return img
}

// textVertexFloats is the size of one text vertex: x, y in pixels (top-left
// origin) and u, v in atlas pixels.
const textVertexFloats = 4

// layoutText appends two triangles (six vertices of x, y, u, v) per
// character of s, drawn from (x, y), the top-left corner of the first
// glyph, at scale pixels per atlas pixel. It returns dst and the pixel
// width of the text.
func layoutText(dst []float32, s string, x, y, scale float32) ([]float32, float32) {
	x0 := x
	w, h := glyphW*scale, glyphH*scale
	for _, r := range s {
		if r < firstGlyph || r > lastGlyph {
			r = '?'
		}
		if r != ' ' {
			u := float32((r - firstGlyph) * glyphW)
			dst = append(dst,
				x, y, u, 0,
				x+w, y, u+glyphW, 0,
				x, y+h, u, glyphH,
				x+w, y, u+glyphW, 0,
				x+w, y+h, u+glyphW, glyphH,
				x, y+h, u, glyphH,
			)
		}
		x += w
	}
	return dst, x - x0
}
