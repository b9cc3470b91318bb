//go:build viewer

package viewer

/*
#cgo pkg-config: x11
#include <stdlib.h>
#include <X11/Xlib.h>
*/
import "C"

import "unsafe"

// x11Hold connects to the X display name (e.g. ":0"); it returns nil when
// the display refuses. GLFW's Go binding only logs that failure, so
// OpenWindow asks first, and keeps this connection until GLFW has its own:
// Xvfb resets itself when its last client leaves, and a connection made
// during the reset fails.
func x11Hold(name string) *C.Display {
	c := C.CString(name)
	defer C.free(unsafe.Pointer(c))
	return C.XOpenDisplay(c)
}

// x11Release closes a connection from x11Hold.
func x11Release(d *C.Display) { C.XCloseDisplay(d) }
