// Package viewer draws a graph's scene with OpenGL: headless through EGL
// (PNG, ffmpeg recordings, tests) or in a GLFW window. It is the only
// package that uses cgo and GL.
//
// Data enters as *scene.Frame values (see viewer/scene), handed over by the
// render actor; Renderer.Draw uploads only the frame's dirty ranges into
// per-slot GPU buffers (position, colour, size) and the edge index buffer
// (Frame.Ends), so moving a node writes 8 bytes and never re-uploads edges.
// Nodes are point sprites with an antialiased SDF disc (instanced quads when
// wider than a point sprite may be; single points below a pixel); edges are
// indexed GL_LINES over the same position buffer, culled by the LOD edge
// budget when a frame holds too many. Each frame draws into a framebuffer
// with a colour attachment and an integer id attachment (slot+1 per node
// fragment) that the first Pick after a Draw fills and reads. Labels (in
// each screen cell, the id of its node of highest degree, sized by the
// node's width within Config.LabelMinPx..LabelMaxPx) and the fixed-size
// overlay are drawn from a signed-distance-field atlas of Go Mono baked at
// start: antialiased at any size, white over a dark halo. Pictures leave
// through ReadImage, WritePNG and Recorder (raw RGBA frames piped to
// ffmpeg), or a Window's screen.
//
// GL calls run on one locked OS thread per Renderer, never in an actor;
// Renderer methods hand their work to it and wait, so they may be called
// from any goroutine. Everything that can be pure (Camera, LOD choices,
// PlaceLabels, pick decoding, CompareImages, the distance transform and
// the font atlas) is in cgo-free files tested with CGO_ENABLED=0 go test
// ./viewer/.
//
// Build with -tags viewer,egl (go-gl/gl then loads GL through
// eglGetProcAddress). Needs libegl-dev and Mesa; the window needs GLFW's X
// development packages, and DISPLAY (xvfb-run -a in tests); recording
// needs ffmpeg. Without the tags only the pure parts build.
//
// Headless, one picture:
//
//	r, err := viewer.NewHeadless(1280, 720)
//	if err != nil {
//		return err // wraps viewer.ErrNoEGL when there is no EGL or Mesa
//	}
//	defer r.Close()
//	if err := r.Draw(frame); err != nil {
//		return err
//	}
//	img, err := r.ReadImage(nil)
//	if err != nil {
//		return err
//	}
//	return viewer.WritePNG("out.png", img)
//
// In a window, bind keys and clicks through Input and loop:
//
//	w, err := viewer.OpenWindow("cairn", 1280, 720, viewer.Input{
//		Key:  func(k viewer.Key, _ viewer.Mod) { if k == viewer.KeySpace { paused = !paused } },
//		Pick: func(slot uint32, ok bool, x, y int) { /* show the node */ },
//	})
//	...
//	for !w.ShouldClose() {
//		if err := w.PollEvents(); err != nil { return err }
//		if err := w.Draw(exchange.Acquire()); err != nil { return err }
//	}
package viewer
