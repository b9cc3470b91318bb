package viewer

import "github.com/cairn-graph/cairn/viewer/scene"

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
	for s := 0; s < f.Nodes; s++ {
		if !visible(f, s) || f.ID[s] == "" {
			continue
		}
		x, y := cam.ToScreen(float64(f.Pos[2*s]), float64(f.Pos[2*s+1]))
		if x < 0 || y < 0 || x >= float64(cam.Width) || y >= float64(cam.Height) {
			continue
		}
		c := int(y)/cell*cols + int(x)/cell
		if b := best[c]; b < 0 || f.Deg[s] > f.Deg[b] {
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
