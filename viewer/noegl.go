//go:build viewer && !egl

package viewer

// The viewer loads GL functions through eglGetProcAddress, which go-gl/gl
// does only with its egl build tag: build with -tags viewer,egl.
var _ = viewer_must_be_built_with_tags_viewer_and_egl
