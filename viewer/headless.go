//go:build viewer

package viewer

import "fmt"

// NewHeadless makes a Renderer that draws width×height frames without a
// window, through EGL (Mesa's surfaceless platform, or the default display
// with a pbuffer) and an OpenGL 4.5, 4.3 or 3.3 core context. Errors wrap
// ErrNoEGL (no EGL or no context), ErrGLVersion or ErrGL.
func NewHeadless(width, height int, opts ...Option) (*Renderer, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	th := newGLThread()
	var r *Renderer
	err = th.do(func() error {
		egl, err := openEGL()
		if err != nil {
			return err
		}
		r, err = newRenderer(th, width, height, o)
		if err != nil {
			egl.close()
			return err
		}
		r.release = egl.close
		o.log.Info("headless context", "gl_version", r.version, "surfaceless", egl.surfaceless, "width", width, "height", height)
		return nil
	})
	if err != nil {
		th.stop()
		return nil, fmt.Errorf("headless renderer: %w", err)
	}
	return r, nil
}
