package viewer

import "errors"

// Sentinel errors of the viewer. Functions wrap them with what they were
// doing; find them with errors.Is.
var (
	// ErrNoEGL means no EGL display or OpenGL context could be made
	// headless (libEGL missing, no Mesa driver, eglInitialize refused).
	ErrNoEGL = errors.New("viewer: no EGL")
	// ErrGLVersion means the context is older than OpenGL 3.3 core.
	ErrGLVersion = errors.New("viewer: OpenGL version too old (3.3 core or newer needed)")
	// ErrNoDisplay means a window cannot open: DISPLAY and WAYLAND_DISPLAY
	// are unset, or GLFW could not initialise or create the window.
	ErrNoDisplay = errors.New("viewer: no display")
	// ErrClosed means the renderer or window was used after Close.
	ErrClosed = errors.New("viewer: closed")
	// ErrGL means OpenGL reported a failure (a shader that does not
	// compile, an incomplete framebuffer, glGetError).
	ErrGL = errors.New("viewer: OpenGL error")
	// ErrBadFrame means a Frame's slices are shorter than its counts say,
	// or an edge names a node slot at or past Nodes; nothing of it is drawn.
	ErrBadFrame = errors.New("viewer: bad frame")
	// ErrRecorder means the ffmpeg child of a Recorder failed or is missing.
	ErrRecorder = errors.New("viewer: recorder")
)
