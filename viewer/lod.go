package viewer

import (
	"math"

	"github.com/cairn-graph/cairn/viewer/scene"
)

// LOD holds the level-of-detail choices of a frame. They are pure
// functions of the frame and the camera, so the same scene and camera give
// the same picture.
type LOD struct {
	// EdgeBudget is how many edges a frame draws at most (0: no limit).
	// Under it every edge is drawn straight from the edge buffer; over it
	// CullEdges keeps the edges worth drawing. Default 250,000.
	EdgeBudget int
	// MinEdgePx: over budget, edges shorter than this on screen are left
	// out (they are inside their nodes). Default 1.
	MinEdgePx float64
	// MaxEdgeShare: over budget, edges longer than this share of the
	// viewport's diagonal are left out (long edges are fill-bound and
	// clutter). Default 0.25.
	MaxEdgeShare float64
	// PointPx is the node diameter in pixels at or below which a node is
	// one flat point, without the SDF edge. Default 1.5.
	PointPx float64
	// MaxPointPx is the largest point sprite drawn; wider nodes are drawn
	// as instanced quads. Default 64 (the renderer lowers it to the
	// driver's limit).
	MaxPointPx float64
}

// DefaultLOD returns the defaults documented on LOD.
func DefaultLOD() LOD {
	return LOD{EdgeBudget: 250_000, MinEdgePx: 1, MaxEdgeShare: 0.25, PointPx: 1.5, MaxPointPx: 64}
}

// CullEdges chooses the edges of f to draw under cam. When f has no more
// edges than the budget it returns all = true and dst unchanged: the
// renderer draws the edge buffer as it is. Otherwise it appends to dst the
// end slots (two per edge) of the edges to draw: edges with an end outside
// the visible nodes, and edges wholly off screen, are left out, so are
// edges shorter than MinEdgePx or longer than MaxEdgeShare of the
// diagonal; if more than the budget remain, every k-th is kept, in slot
// order.
func (l LOD) CullEdges(f *scene.Frame, cam Camera, dst []uint32) (idx []uint32, all bool) {
	if l.EdgeBudget == 0 || f.Edges <= l.EdgeBudget {
		return dst, true
	}
	start := len(dst)
	ppu := cam.PixelsPerUnit()
	w, h := float64(cam.Width), float64(cam.Height)
	minLen := l.MinEdgePx / ppu
	maxLen := l.MaxEdgeShare * math.Hypot(w, h) / ppu
	minSq, maxSq := minLen*minLen, maxLen*maxLen
	// The visible world rectangle.
	x0, y1 := cam.ToWorld(0, 0)
	x1, y0 := cam.ToWorld(w, h)
	for e := 0; e < f.Edges; e++ {
		a, b := f.Ends[2*e], f.Ends[2*e+1]
		if a == b || int(a) >= f.Nodes || int(b) >= f.Nodes || !visible(f, int(a)) || !visible(f, int(b)) {
			continue
		}
		ax, ay := float64(f.Pos[2*a]), float64(f.Pos[2*a+1])
		bx, by := float64(f.Pos[2*b]), float64(f.Pos[2*b+1])
		if (ax < x0 && bx < x0) || (ax > x1 && bx > x1) || (ay < y0 && by < y0) || (ay > y1 && by > y1) {
			continue
		}
		dx, dy := bx-ax, by-ay
		d := dx*dx + dy*dy
		if d < minSq || d > maxSq {
			continue
		}
		dst = append(dst, a, b)
	}
	kept := (len(dst) - start) / 2
	if kept <= l.EdgeBudget {
		return dst, false
	}
	// Thin evenly: keep edge i when it crosses a multiple of kept/budget.
	out := start
	for i := 0; i < kept; i++ {
		if i*l.EdgeBudget/kept != (i+1)*l.EdgeBudget/kept {
			dst[out], dst[out+1] = dst[start+2*i], dst[start+2*i+1]
			out += 2
		}
	}
	return dst[:out], false
}

// largeStride is the size in 32-bit words of one large-node instance:
// x, y (float32), diameter in pixels (float32), RGBA8, slot.
const largeStride = 5

// LargeNodes appends to dst one instance per visible node of f wider than
// MaxPointPx on screen: x, y and pixel diameter as float32 bits, the RGBA8
// colour and the slot. The renderer draws these as instanced quads and
// leaves them out of the point sprites.
func (l LOD) LargeNodes(f *scene.Frame, cam Camera, dst []uint32) []uint32 {
	for s := 0; s < f.Nodes; s++ {
		if !visible(f, s) {
			continue
		}
		px := float64(f.Size[s]) * cam.Zoom
		if px <= l.MaxPointPx {
			continue
		}
		dst = append(dst, math.Float32bits(f.Pos[2*s]), math.Float32bits(f.Pos[2*s+1]),
			math.Float32bits(float32(px)), f.Color[s], uint32(s))
	}
	return dst
}
