package viewer

import (
	"math"

	"github.com/cairn-graph/cairn/viewer/scene"
)

// Camera maps world coordinates to the viewport. A world point (X, Y) sits
// at the viewport's centre; Scale is pixels per world unit at zoom 1 (set
// by fitting) and Zoom the user's zoom on top of it, so a world distance d
// spans d*Scale*Zoom pixels and a node of Size s spans s*Zoom pixels.
// World y points up, screen y down; screen coordinates are pixels from the
// top-left corner. The zero Camera is not usable: start from FitCamera.
type Camera struct {
	X, Y          float64
	Scale, Zoom   float64
	Width, Height int
}

// Bounds is an axis-aligned world rectangle.
type Bounds struct{ MinX, MinY, MaxX, MaxY float64 }

// PixelsPerUnit is how many pixels one world unit spans.
func (c Camera) PixelsPerUnit() float64 { return c.Scale * c.Zoom }

// Matrix is the world → clip transform as a column-major 3×3 matrix (a GLSL
// mat3): clip = M · (x, y, 1).
func (c Camera) Matrix() [9]float32 {
	sx := 2 * c.PixelsPerUnit() / float64(c.Width)
	sy := 2 * c.PixelsPerUnit() / float64(c.Height)
	return [9]float32{
		float32(sx), 0, 0,
		0, float32(sy), 0,
		float32(-c.X * sx), float32(-c.Y * sy), 1,
	}
}

// ToScreen maps a world point to screen pixels.
func (c Camera) ToScreen(x, y float64) (sx, sy float64) {
	p := c.PixelsPerUnit()
	return float64(c.Width)/2 + (x-c.X)*p, float64(c.Height)/2 - (y-c.Y)*p
}

// ToWorld maps screen pixels to a world point.
func (c Camera) ToWorld(sx, sy float64) (x, y float64) {
	p := c.PixelsPerUnit()
	return c.X + (sx-float64(c.Width)/2)/p, c.Y - (sy-float64(c.Height)/2)/p
}

// Pan moves the view by a drag of (dx, dy) screen pixels: the world moves
// with the cursor.
func (c Camera) Pan(dx, dy float64) Camera {
	p := c.PixelsPerUnit()
	c.X -= dx / p
	c.Y += dy / p
	return c
}

// ZoomAt multiplies the zoom by factor, keeping the world point under the
// screen pixel (sx, sy) where it is. The zoom stays within [1e-4, 1e4].
func (c Camera) ZoomAt(factor, sx, sy float64) Camera {
	wx, wy := c.ToWorld(sx, sy)
	c.Zoom = math.Min(math.Max(c.Zoom*factor, 1e-4), 1e4)
	nx, ny := c.ToWorld(sx, sy)
	c.X += wx - nx
	c.Y += wy - ny
	return c
}

// FitCamera returns the camera at zoom 1 that shows b in a width×height
// viewport with margin pixels free on every side. An empty or degenerate b
// is shown at one pixel per unit around its centre.
func FitCamera(b Bounds, width, height int, margin float64) Camera {
	c := Camera{X: (b.MinX + b.MaxX) / 2, Y: (b.MinY + b.MaxY) / 2, Scale: 1, Zoom: 1, Width: width, Height: height}
	w, h := b.MaxX-b.MinX, b.MaxY-b.MinY
	aw, ah := float64(width)-2*margin, float64(height)-2*margin
	if aw < 1 {
		aw = 1
	}
	if ah < 1 {
		ah = 1
	}
	switch {
	case w > 0 && h > 0:
		c.Scale = math.Min(aw/w, ah/h)
	case w > 0:
		c.Scale = aw / w
	case h > 0:
		c.Scale = ah / h
	}
	return c
}

// FrameBounds is the bounding box of f's visible nodes (Size > 0 and
// alpha > 0); ok is false when none is visible.
func FrameBounds(f *scene.Frame) (b Bounds, ok bool) {
	b = Bounds{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for s := 0; s < f.Nodes; s++ {
		if !visible(f, s) {
			continue
		}
		x, y := float64(f.Pos[2*s]), float64(f.Pos[2*s+1])
		b.MinX, b.MaxX = math.Min(b.MinX, x), math.Max(b.MaxX, x)
		b.MinY, b.MaxY = math.Min(b.MinY, y), math.Max(b.MaxY, y)
		ok = true
	}
	if !ok {
		return Bounds{}, false
	}
	return b, true
}

// visible reports whether slot s of f draws at all.
func visible(f *scene.Frame, s int) bool {
	return f.Size[s] > 0 && f.Color[s]>>24 != 0
}
