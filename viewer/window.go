//go:build viewer

package viewer

import (
	"errors"
	"fmt"
	"os"

	"github.com/go-gl/gl/v4.5-core/gl"
	"github.com/go-gl/glfw/v3.3/glfw"
)

// Window shows frames in a GLFW window. It embeds its Renderer: Draw draws
// into the offscreen framebuffer (ids included, so Pick works) and shows
// the result. GLFW keeps process-wide state: open one Window at a time.
type Window struct {
	*Renderer
	win    *glfw.Window
	in     Input
	ptr    pointer
	events []windowEvent
}

// windowEvent is one GLFW callback, queued on the GL thread and handled by
// PollEvents on its caller's goroutine.
type windowEvent struct {
	kind int // evKey, evButton, evCursor, evScroll, evResize
	key  Key
	mods Mod
	down bool
	x, y float64
	w, h int
}

const (
	evKey = iota
	evButton
	evCursor
	evScroll
	evResize
)

// OpenWindow opens a width×height window titled title, with an OpenGL 4.5
// (or 3.3) core context created through EGL, and a Renderer drawing into
// it. The window is X11 (under Wayland, through XWayland). Errors wrap
// ErrNoDisplay (DISPLAY unset or refusing connections, or GLFW could not
// initialise or open the window), ErrGLVersion or ErrGL.
func OpenWindow(title string, width, height int, in Input, opts ...Option) (*Window, error) {
	display := os.Getenv("DISPLAY")
	if display == "" {
		return nil, fmt.Errorf("open window: %w: DISPLAY is not set (run under X, or xvfb-run -a; use headless rendering otherwise)", ErrNoDisplay)
	}
	hold := x11Hold(display)
	if hold == nil {
		return nil, fmt.Errorf("open window: %w: cannot connect to X display %q (is the X server or Xvfb running?)", ErrNoDisplay, display)
	}
	defer x11Release(hold)
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	th := newGLThread()
	w := &Window{in: in}
	err = th.do(func() (err error) {
		// The binding panics on errors it takes for programming errors
		// (a failed init surfaces as "not initialized" in the next call):
		// turn that into an error here, at the boundary.
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: GLFW on DISPLAY=%q: %v", ErrNoDisplay, display, p)
			}
		}()
		if err := glfw.Init(); err != nil {
			return fmt.Errorf("%w: GLFW init (DISPLAY=%q): %v", ErrNoDisplay, os.Getenv("DISPLAY"), err)
		}
		var werr error
		for _, v := range [][2]int{{4, 5}, {3, 3}} {
			glfw.DefaultWindowHints()
			glfw.WindowHint(glfw.ClientAPI, glfw.OpenGLAPI)
			glfw.WindowHint(glfw.ContextCreationAPI, glfw.EGLContextAPI)
			glfw.WindowHint(glfw.ContextVersionMajor, v[0])
			glfw.WindowHint(glfw.ContextVersionMinor, v[1])
			glfw.WindowHint(glfw.OpenGLProfile, glfw.OpenGLCoreProfile)
			glfw.WindowHint(glfw.OpenGLForwardCompatible, glfw.True)
			w.win, werr = glfw.CreateWindow(width, height, title, nil, nil)
			if w.win != nil {
				break
			}
			if werr == nil { // the binding logs platform errors and returns none
				werr = errors.New("GLFW platform error (see the log)")
			}
		}
		if werr != nil {
			glfw.Terminate()
			return fmt.Errorf("%w: GLFW could not create a window with an OpenGL 3.3+ core context over EGL: %v", ErrNoDisplay, werr)
		}
		w.win.MakeContextCurrent()
		glfw.SwapInterval(1)
		fw, fh := w.win.GetFramebufferSize()
		r, err := newRenderer(th, fw, fh, o)
		if err != nil {
			w.win.Destroy()
			glfw.Terminate()
			return err
		}
		w.Renderer = r
		r.present = w.present
		r.release = func() {
			w.win.Destroy()
			glfw.Terminate()
		}
		w.setCallbacks()
		o.log.Info("window", "gl_version", r.version, "width", fw, "height", fh)
		return nil
	})
	if err != nil {
		th.stop()
		return nil, fmt.Errorf("open window: %w", err)
	}
	return w, nil
}

// present copies the framebuffer's colour to the window and swaps; on the
// GL thread.
func (w *Window) present() error {
	w.blit()
	w.win.SwapBuffers()
	return glError("present")
}

// blit copies the colour attachment to the window's back buffer.
func (w *Window) blit() {
	gl.BindFramebuffer(gl.READ_FRAMEBUFFER, w.fbo)
	gl.ReadBuffer(gl.COLOR_ATTACHMENT0)
	gl.BindFramebuffer(gl.DRAW_FRAMEBUFFER, 0)
	gl.BlitFramebuffer(0, 0, int32(w.w), int32(w.h), 0, 0, int32(w.w), int32(w.h), gl.COLOR_BUFFER_BIT, gl.NEAREST)
	gl.BindFramebuffer(gl.FRAMEBUFFER, 0)
}

// setCallbacks queues GLFW's callbacks as events; on the GL thread.
func (w *Window) setCallbacks() {
	w.win.SetKeyCallback(func(_ *glfw.Window, k glfw.Key, _ int, a glfw.Action, m glfw.ModifierKey) {
		if a != glfw.Release {
			w.events = append(w.events, windowEvent{kind: evKey, key: Key(k), mods: Mod(m)})
		}
	})
	w.win.SetMouseButtonCallback(func(_ *glfw.Window, b glfw.MouseButton, a glfw.Action, _ glfw.ModifierKey) {
		if b == glfw.MouseButtonLeft {
			w.events = append(w.events, windowEvent{kind: evButton, down: a == glfw.Press})
		}
	})
	w.win.SetCursorPosCallback(func(_ *glfw.Window, x, y float64) {
		w.events = append(w.events, windowEvent{kind: evCursor, x: x, y: y})
	})
	w.win.SetScrollCallback(func(_ *glfw.Window, _, dy float64) {
		w.events = append(w.events, windowEvent{kind: evScroll, y: dy})
	})
	w.win.SetFramebufferSizeCallback(func(_ *glfw.Window, fw, fh int) {
		w.events = append(w.events, windowEvent{kind: evResize, w: fw, h: fh})
	})
}

// PollEvents processes pending window events: it pans on a left-button
// drag, zooms on scroll, picks on a click, resizes the framebuffer, and
// calls the Input callbacks on the calling goroutine.
func (w *Window) PollEvents() error {
	var evs []windowEvent
	if err := w.th.do(func() error {
		glfw.PollEvents()
		evs, w.events = w.events, nil
		return nil
	}); err != nil {
		return err
	}
	for _, e := range evs {
		if err := w.handle(e); err != nil {
			return err
		}
	}
	return nil
}

// handle acts on one event; off the GL thread.
func (w *Window) handle(e windowEvent) error {
	switch e.kind {
	case evKey:
		if w.in.Key != nil {
			w.in.Key(e.key, e.mods)
		}
	case evCursor:
		if dx, dy, pan := w.ptr.move(e.x, e.y); pan {
			w.SetCamera(w.Camera().Pan(dx, dy))
		}
	case evButton:
		if e.down {
			w.ptr.press()
			return nil
		}
		if w.ptr.release() && w.in.Pick != nil {
			x, y := int(w.ptr.x), int(w.ptr.y)
			slot, ok, err := w.Pick(x, y)
			if err != nil {
				return err
			}
			w.in.Pick(slot, ok, x, y)
		}
	case evScroll:
		w.SetCamera(w.Camera().ZoomAt(scrollZoom(e.y), w.ptr.x, w.ptr.y))
	case evResize:
		if e.w == 0 || e.h == 0 { // minimised
			return nil
		}
		if err := w.Resize(e.w, e.h); err != nil {
			return err
		}
		if w.in.Resize != nil {
			w.in.Resize(e.w, e.h)
		}
	}
	return nil
}

// ShouldClose reports whether the user asked to close the window.
func (w *Window) ShouldClose() bool {
	var c bool
	_ = w.th.do(func() error { c = w.win.ShouldClose(); return nil })
	return c
}

// Close closes the window, its context and its GL thread.
func (w *Window) Close() error { return w.Renderer.Close() }
