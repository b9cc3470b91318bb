package viewer

import "math"

// Key is a keyboard key. Printable keys are their ASCII upper-case code
// ('A', '0', ' ', '-', '='); the others have the constants below. The
// values are GLFW's.
type Key int

// Keys other than printable ones.
const (
	KeySpace     Key = ' '
	KeyEscape    Key = 256
	KeyEnter     Key = 257
	KeyTab       Key = 258
	KeyBackspace Key = 259
	KeyRight     Key = 262
	KeyLeft      Key = 263
	KeyDown      Key = 264
	KeyUp        Key = 265
	KeyPageUp    Key = 266
	KeyPageDown  Key = 267
	KeyHome      Key = 268
	KeyEnd       Key = 269
)

// Mod is a set of modifier keys held with a key.
type Mod int

// Modifier bits (GLFW's values).
const (
	ModShift   Mod = 1
	ModControl Mod = 2
	ModAlt     Mod = 4
	ModSuper   Mod = 8
)

// Input holds the callbacks a Window calls from PollEvents, on the
// goroutine that calls PollEvents (never on the GL thread, so they may
// call the Window). Nil callbacks are left out. Dragging with the left
// button pans and the scroll wheel zooms by themselves.
type Input struct {
	// Key is called for a key press or auto-repeat.
	Key func(k Key, mods Mod)
	// Pick is called for a left click without a drag, with the slot of
	// the node under the cursor (ok false: none) and the cursor in pixels.
	Pick func(slot uint32, ok bool, x, y int)
	// Resize is called when the framebuffer changed size.
	Resize func(width, height int)
}

// clickSlop is how far (pixels) the cursor may move between press and
// release for a click rather than a drag.
const clickSlop = 3

// zoomStep is the zoom factor of one scroll step.
const zoomStep = 1.15

// pointer turns button and cursor events into pans and clicks.
type pointer struct {
	down         bool
	dragged      bool
	x0, y0, x, y float64
}

// move records the cursor at (x, y); when the button is down it returns
// the drag since the last move.
func (p *pointer) move(x, y float64) (dx, dy float64, pan bool) {
	dx, dy = x-p.x, y-p.y
	p.x, p.y = x, y
	if !p.down {
		return 0, 0, false
	}
	if math.Hypot(x-p.x0, y-p.y0) > clickSlop {
		p.dragged = true
	}
	return dx, dy, true
}

// press records the button going down at the current cursor.
func (p *pointer) press() { p.down, p.dragged, p.x0, p.y0 = true, false, p.x, p.y }

// release records the button going up; click is true when it did not drag.
func (p *pointer) release() (click bool) {
	click = p.down && !p.dragged
	p.down = false
	return click
}

// scrollZoom is the zoom factor of a scroll of dy steps.
func scrollZoom(dy float64) float64 { return math.Pow(zoomStep, dy) }
