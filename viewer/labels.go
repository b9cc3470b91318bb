package viewer

import (
	"math"

	"github.com/cairn-graph/cairn/viewer/scene"
)

// Label is a node chosen for a label and where its centre falls on screen.
type Label struct {
	Slot uint32
	X, Y float64 // screen pixels, top-left origin
}

// PlaceLabels chooses at most one node per cell×cell pixel cell of the
// viewport: the visible, named node of highest degree whose centre falls
// in it (ties: the lower slot). It appends them to dst in cell order (rows
// from the top, then columns).
func PlaceLabels(f *scene.Frame, cam Camera, cell int, dst []Label) []Label {
	if cell <= 0 || cam.Width <= 0 || cam.Height <= 0 {
		return dst
	}
	cols, rows := (cam.Width+cell-1)/cell, (cam.Height+cell-1)/cell
	best := make([]int32, cols*rows)
	for i := range best {
		best[i] = -1
	}
	// ToScreen, inlined: this loop runs over every node each frame.
	p := cam.PixelsPerUnit()
	ox, oy := float64(cam.Width)/2-cam.X*p, float64(cam.Height)/2+cam.Y*p
	w, h := float64(cam.Width), float64(cam.Height)
	inv := 1 / float64(cell)
	pos, size, color, deg := f.Pos[:2*f.Nodes], f.Size[:f.Nodes], f.Color[:f.Nodes], f.Deg[:f.Nodes]
	for s := range size {
		if size[s] <= 0 || color[s]>>24 == 0 {
			continue
		}
		x, y := ox+float64(pos[2*s])*p, oy-float64(pos[2*s+1])*p
		if !(x >= 0 && y >= 0 && x < w && y < h) {
			continue
		}
		c := int(y*inv)*cols + int(x*inv)
		if b := best[c]; (b < 0 || deg[s] > deg[b]) && f.ID[s] != "" {
			best[c] = int32(s)
		}
	}
	for _, s := range best {
		if s < 0 {
			continue
		}
		x, y := cam.ToScreen(float64(f.Pos[2*s]), float64(f.Pos[2*s+1]))
		dst = append(dst, Label{Slot: uint32(s), X: x, Y: y})
	}
	return dst
}

// Text sizes, in pixels to the em: the overlay's, fixed, and the width of
// the dark halo around all text.
const (
	overlayPx  = 13
	textHaloPx = 1.25
)

// LabelPx is the text size, in pixels to the em, of the label of a node
// diam pixels wide on screen: half its width, within [lo, hi], rounded to
// a whole pixel so that a label's size changes in steps as one zooms.
func LabelPx(diam, lo, hi float64) float64 {
	return math.Round(min(max(diam/2, lo), hi))
}
