//go:build viewer

package viewer

/*
#cgo pkg-config: egl
#include <string.h>
#include <EGL/egl.h>
#include <EGL/eglext.h>

#ifndef EGL_PLATFORM_SURFACELESS_MESA
#define EGL_PLATFORM_SURFACELESS_MESA 0x31DD
#endif

// cairn_egl_open makes a headless OpenGL core context current on the
// calling thread: the Mesa surfaceless platform when the client offers it,
// else the default display with a 1x1 pbuffer. It returns 0 on success or
// the step that failed (1 display, 2 initialize, 3 bind API, 4 config,
// 5 context, 6 surface, 7 make current); *err holds eglGetError().
static int cairn_egl_open(EGLDisplay *dpy, EGLContext *ctx, EGLSurface *surf, int *major, int *minor, int *surfaceless, EGLint *err) {
	*dpy = EGL_NO_DISPLAY; *ctx = EGL_NO_CONTEXT; *surf = EGL_NO_SURFACE; *surfaceless = 0;
	const char *cx = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
	if (cx && strstr(cx, "EGL_MESA_platform_surfaceless")) {
		PFNEGLGETPLATFORMDISPLAYEXTPROC get = (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
		if (get) { *dpy = get(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL); *surfaceless = *dpy != EGL_NO_DISPLAY; }
	}
	if (*dpy == EGL_NO_DISPLAY) *dpy = eglGetDisplay(EGL_DEFAULT_DISPLAY);
	if (*dpy == EGL_NO_DISPLAY) { *err = eglGetError(); return 1; }
	EGLint vmaj, vmin;
	if (!eglInitialize(*dpy, &vmaj, &vmin)) { *err = eglGetError(); return 2; }
	if (!eglBindAPI(EGL_OPENGL_API)) { *err = eglGetError(); return 3; }
	EGLint cfgAttr[] = {EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT,
		EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_NONE};
	EGLConfig cfg; EGLint n = 0;
	if (!eglChooseConfig(*dpy, cfgAttr, &cfg, 1, &n) || n < 1) { *err = eglGetError(); return 4; }
	static const int versions[][2] = {{4, 5}, {4, 3}, {3, 3}};
	for (int i = 0; i < 3 && *ctx == EGL_NO_CONTEXT; i++) {
		EGLint ctxAttr[] = {EGL_CONTEXT_MAJOR_VERSION, versions[i][0], EGL_CONTEXT_MINOR_VERSION, versions[i][1],
			EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT, EGL_NONE};
		*ctx = eglCreateContext(*dpy, cfg, EGL_NO_CONTEXT, ctxAttr);
		*major = versions[i][0]; *minor = versions[i][1];
	}
	if (*ctx == EGL_NO_CONTEXT) { *err = eglGetError(); return 5; }
	const char *dx = eglQueryString(*dpy, EGL_EXTENSIONS);
	if (!(dx && strstr(dx, "EGL_KHR_surfaceless_context"))) {
		EGLint pb[] = {EGL_WIDTH, 1, EGL_HEIGHT, 1, EGL_NONE};
		*surf = eglCreatePbufferSurface(*dpy, cfg, pb);
		if (*surf == EGL_NO_SURFACE) { *err = eglGetError(); return 6; }
	}
	if (!eglMakeCurrent(*dpy, *surf, *surf, *ctx)) { *err = eglGetError(); return 7; }
	return 0;
}

static void cairn_egl_close(EGLDisplay dpy, EGLContext ctx, EGLSurface surf) {
	if (dpy == EGL_NO_DISPLAY) return;
	eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
	if (surf != EGL_NO_SURFACE) eglDestroySurface(dpy, surf);
	if (ctx != EGL_NO_CONTEXT) eglDestroyContext(dpy, ctx);
	// No eglTerminate: the display is shared by every renderer of the
	// process, and terminating it would pull it from under the others.
}
*/
import "C"

import "fmt"

// eglContext is a headless OpenGL context, current on the GL thread that
// made it.
type eglContext struct {
	dpy  C.EGLDisplay
	ctx  C.EGLContext
	surf C.EGLSurface
	// Surfaceless is true on Mesa's surfaceless platform, false on the
	// default display with a pbuffer.
	surfaceless bool
}

var eglSteps = [...]string{1: "getting an EGL display", 2: "eglInitialize", 3: "eglBindAPI(EGL_OPENGL_API)",
	4: "eglChooseConfig (OpenGL, pbuffer)", 5: "creating an OpenGL 4.5, 4.3 or 3.3 core context",
	6: "eglCreatePbufferSurface", 7: "eglMakeCurrent"}

// openEGL makes a context current on the calling (locked) thread. Its
// errors wrap ErrNoEGL and name the step and EGL's error code.
func openEGL() (*eglContext, error) {
	var e eglContext
	var major, minor, surfaceless C.int
	var code C.EGLint
	if step := C.cairn_egl_open(&e.dpy, &e.ctx, &e.surf, &major, &minor, &surfaceless, &code); step != 0 {
		C.cairn_egl_close(e.dpy, e.ctx, e.surf)
		return nil, fmt.Errorf("%w: %s failed (EGL error 0x%04x); is libEGL with a Mesa driver installed (apt-get install libegl1 libegl-mesa0)?", ErrNoEGL, eglSteps[step], int(code))
	}
	e.surfaceless = surfaceless != 0
	return &e, nil
}

// close releases the context; call it on the thread that opened it.
func (e *eglContext) close() { C.cairn_egl_close(e.dpy, e.ctx, e.surf) }
