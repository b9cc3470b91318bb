//go:build viewer

package viewer

import (
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/go-gl/gl/v4.5-core/gl"

	"github.com/cairn-graph/cairn/viewer/scene"
)

// Renderer draws scene Frames with OpenGL into an offscreen framebuffer: a
// colour attachment (RGBA8) and an id attachment (R32UI, slot+1 per node
// fragment, 0 elsewhere) for picking, filled on the first Pick after a
// Draw. A headless Renderer comes from
// NewHeadless; a Window has one that also shows each frame.
//
// Every method runs its GL calls on the Renderer's own locked OS thread
// and waits for them, so a Renderer may be used from any goroutine (one
// call at a time is served; concurrent calls queue).
type Renderer struct {
	th      *glThread
	cfg     Config
	release func() // on the GL thread: destroys the context
	present func() error
	version string

	w, h   int
	mu     sync.Mutex // guards cam and camSet, which SetCamera writes off the GL thread
	cam    Camera
	camSet bool
	cur    Camera // the camera of the frame being drawn; GL thread only

	fbo, colorRB, idRB                                uint32
	nodeProg, largeProg, edgeProg, textProg, bareProg uint32
	nodeVAO, bareVAO, edgeVAO, largeVAO, textVAO      uint32
	posBuf, colBuf, sizeBuf, edgeBuf, cullBuf         uint32
	largeBuf, quadBuf, textBuf, atlasTex              uint32
	nodeCap, edgeCap                                  int
	primed                                            bool
	idStale                                           bool // the id attachment does not hold the last frame yet
	idNodes                                           int  // node slots of the last frame drawn
	maxPoint                                          float64

	font   atlas // the text atlas's metrics (its field is in atlasTex)
	ranges []scene.Range
	cull   []uint32
	large  []uint32
	labels []Label
	text   []float32
	pix    []byte
	last   time.Time
	frame  time.Duration
	stats  Stats
}

// Stats describes the last frame drawn.
type Stats struct {
	UploadBytes int  // bytes sent to GL buffers
	Edges       int  // edges drawn (all edge slots, hidden ones included, when not culled)
	Culled      bool // the edge budget was exceeded and CullEdges chose the edges
	Large       int  // nodes drawn as instanced quads
	Labels      int  // node labels drawn
}

// newRenderer makes the GL objects; call it on th with a context current.
func newRenderer(th *glThread, w, h int, o options) (*Renderer, error) {
	r := &Renderer{th: th, cfg: o.cfg}
	font, err := bakeAtlas()
	if err != nil {
		return nil, err
	}
	v, err := initGL()
	r.version = v
	if err != nil {
		return nil, err
	}
	type prog struct {
		p      *uint32
		name   string
		vs, fs string
	}
	for _, p := range []prog{{&r.nodeProg, "node", nodeVS, nodeFS}, {&r.largeProg, "large node", largeVS, largeFS},
		{&r.edgeProg, "edge", edgeVS, edgeFS}, {&r.textProg, "text", textVS, textFS}, {&r.bareProg, "bare node", bareNodeVS, bareNodeFS}} {
		if *p.p, err = compileProgram(p.name, p.vs, p.fs); err != nil {
			return nil, err
		}
	}
	var rng [2]float32
	gl.GetFloatv(gl.POINT_SIZE_RANGE, &rng[0])
	r.maxPoint = min(r.cfg.LOD.MaxPointPx, float64(rng[1])-1)

	bufs := []*uint32{&r.posBuf, &r.colBuf, &r.sizeBuf, &r.edgeBuf, &r.cullBuf, &r.largeBuf, &r.quadBuf, &r.textBuf}
	for _, b := range bufs {
		gl.GenBuffers(1, b)
	}
	r.nodeCap = growCap(0, 0)
	r.edgeCap = growCap(0, 0)
	r.allocNodes()
	r.allocEdges()
	quad := []float32{-1, -1, 1, -1, -1, 1, 1, 1}
	gl.BindBuffer(gl.ARRAY_BUFFER, r.quadBuf)
	gl.BufferData(gl.ARRAY_BUFFER, 4*len(quad), gl.Ptr(quad), gl.STATIC_DRAW)

	// Nodes: position, colour, size per slot; the colour as one integer.
	gl.GenVertexArrays(1, &r.nodeVAO)
	gl.BindVertexArray(r.nodeVAO)
	r.bindNodeAttribs()
	gl.BindBuffer(gl.ARRAY_BUFFER, r.colBuf)
	gl.VertexAttribIPointerWithOffset(1, 1, gl.UNSIGNED_INT, 4, 0)
	// The bare draw reads the colour normalised, as edges do.
	gl.GenVertexArrays(1, &r.bareVAO)
	gl.BindVertexArray(r.bareVAO)
	r.bindNodeAttribs()
	// Edges: the same position and colour buffers, indexed by the ends.
	gl.GenVertexArrays(1, &r.edgeVAO)
	gl.BindVertexArray(r.edgeVAO)
	r.bindNodeAttribs()
	// Large nodes: a quad per instance.
	gl.GenVertexArrays(1, &r.largeVAO)
	gl.BindVertexArray(r.largeVAO)
	gl.BindBuffer(gl.ARRAY_BUFFER, r.quadBuf)
	gl.EnableVertexAttribArray(0)
	gl.VertexAttribPointerWithOffset(0, 2, gl.FLOAT, false, 8, 0)
	gl.BindBuffer(gl.ARRAY_BUFFER, r.largeBuf)
	const stride = 4 * largeStride
	for i, a := range []struct {
		n   int32
		typ uint32
		off uintptr
	}{{2, gl.FLOAT, 0}, {1, gl.FLOAT, 8}, {4, gl.UNSIGNED_BYTE, 12}} {
		loc := uint32(i + 1)
		gl.EnableVertexAttribArray(loc)
		gl.VertexAttribPointerWithOffset(loc, a.n, a.typ, a.typ == gl.UNSIGNED_BYTE, stride, a.off)
		gl.VertexAttribDivisor(loc, 1)
	}
	gl.EnableVertexAttribArray(4)
	gl.VertexAttribIPointerWithOffset(4, 1, gl.UNSIGNED_INT, stride, 16)
	gl.VertexAttribDivisor(4, 1)
	// Text.
	gl.GenVertexArrays(1, &r.textVAO)
	gl.BindVertexArray(r.textVAO)
	gl.BindBuffer(gl.ARRAY_BUFFER, r.textBuf)
	gl.EnableVertexAttribArray(0)
	gl.VertexAttribPointerWithOffset(0, 4, gl.FLOAT, false, 16, 0)
	gl.BindVertexArray(0)

	r.font = font
	gl.GenTextures(1, &r.atlasTex)
	gl.BindTexture(gl.TEXTURE_2D, r.atlasTex)
	gl.PixelStorei(gl.UNPACK_ALIGNMENT, 1)
	gl.TexImage2D(gl.TEXTURE_2D, 0, gl.R8, int32(font.w), int32(font.h), 0, gl.RED, gl.UNSIGNED_BYTE, gl.Ptr(font.pix))
	r.font.pix = nil // on the GPU now
	gl.TexParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR)
	gl.TexParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR)
	gl.TexParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE)
	gl.TexParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE)

	gl.Enable(gl.PROGRAM_POINT_SIZE)
	gl.Disable(gl.DEPTH_TEST)
	gl.BlendFuncSeparate(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA, gl.ONE, gl.ONE_MINUS_SRC_ALPHA)
	if err := r.resize(w, h); err != nil {
		return nil, err
	}
	if err := glError("set up"); err != nil {
		return nil, err
	}
	return r, nil
}

// bindNodeAttribs points attributes 0..2 of the bound VAO at the per-slot
// buffers.
func (r *Renderer) bindNodeAttribs() {
	gl.BindBuffer(gl.ARRAY_BUFFER, r.posBuf)
	gl.EnableVertexAttribArray(0)
	gl.VertexAttribPointerWithOffset(0, 2, gl.FLOAT, false, 8, 0)
	gl.BindBuffer(gl.ARRAY_BUFFER, r.colBuf)
	gl.EnableVertexAttribArray(1)
	gl.VertexAttribPointerWithOffset(1, 4, gl.UNSIGNED_BYTE, true, 4, 0)
	gl.BindBuffer(gl.ARRAY_BUFFER, r.sizeBuf)
	gl.EnableVertexAttribArray(2)
	gl.VertexAttribPointerWithOffset(2, 1, gl.FLOAT, false, 4, 0)
}

func (r *Renderer) allocNodes() {
	for _, b := range []struct {
		id uint32
		sz int
	}{{r.posBuf, 8}, {r.colBuf, 4}, {r.sizeBuf, 4}} {
		gl.BindBuffer(gl.ARRAY_BUFFER, b.id)
		gl.BufferData(gl.ARRAY_BUFFER, b.sz*r.nodeCap, nil, gl.DYNAMIC_DRAW)
	}
}

func (r *Renderer) allocEdges() {
	gl.BindBuffer(gl.ELEMENT_ARRAY_BUFFER, r.edgeBuf)
	gl.BufferData(gl.ELEMENT_ARRAY_BUFFER, 8*r.edgeCap, nil, gl.DYNAMIC_DRAW)
}

// resize (re)makes the framebuffer at w×h.
func (r *Renderer) resize(w, h int) error {
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return fmt.Errorf("viewer: size %dx%d outside 1..16384", w, h)
	}
	if r.fbo != 0 {
		gl.DeleteFramebuffers(1, &r.fbo)
		gl.DeleteRenderbuffers(1, &r.colorRB)
		gl.DeleteRenderbuffers(1, &r.idRB)
	}
	r.w, r.h = w, h
	r.mu.Lock()
	r.cam.Width, r.cam.Height = w, h
	r.mu.Unlock()
	gl.GenFramebuffers(1, &r.fbo)
	gl.BindFramebuffer(gl.FRAMEBUFFER, r.fbo)
	gl.GenRenderbuffers(1, &r.colorRB)
	gl.BindRenderbuffer(gl.RENDERBUFFER, r.colorRB)
	gl.RenderbufferStorage(gl.RENDERBUFFER, gl.RGBA8, int32(w), int32(h))
	gl.FramebufferRenderbuffer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.RENDERBUFFER, r.colorRB)
	gl.GenRenderbuffers(1, &r.idRB)
	gl.BindRenderbuffer(gl.RENDERBUFFER, r.idRB)
	gl.RenderbufferStorage(gl.RENDERBUFFER, gl.R32UI, int32(w), int32(h))
	gl.FramebufferRenderbuffer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT1, gl.RENDERBUFFER, r.idRB)
	colour := uint32(gl.COLOR_ATTACHMENT0) // drawIDs sets the id attachment when needed
	gl.DrawBuffers(1, &colour)
	r.idStale = true
	if s := gl.CheckFramebufferStatus(gl.FRAMEBUFFER); s != gl.FRAMEBUFFER_COMPLETE {
		return fmt.Errorf("%w: framebuffer %dx%d incomplete: 0x%04x", ErrGL, w, h, s)
	}
	return glError("framebuffer")
}

// Version is the GL_VERSION string of the context.
func (r *Renderer) Version() string { return r.version }

// Size is the framebuffer's width and height in pixels.
func (r *Renderer) Size() (w, h int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cam.Width, r.cam.Height
}

// Camera returns the camera; before the first Draw or SetCamera its
// Scale and Zoom are 0.
func (r *Renderer) Camera() Camera {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cam
}

// SetCamera replaces the camera (its Width and Height stay the
// framebuffer's). Until it is called, the first Draw fits the camera to
// the frame's nodes.
func (r *Renderer) SetCamera(c Camera) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.Width, c.Height = r.cam.Width, r.cam.Height
	r.cam, r.camSet = c, true
}

// Fit points the camera at f's visible nodes, with margin pixels free on
// every side, at zoom 1.
func (r *Renderer) Fit(f *scene.Frame, margin float64) {
	b, _ := FrameBounds(f)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cam, r.camSet = FitCamera(b, r.cam.Width, r.cam.Height, margin), true
}

// Resize changes the framebuffer's size, keeping the camera's centre and
// zoom.
func (r *Renderer) Resize(w, h int) error {
	return r.th.do(func() error { return r.resize(w, h) })
}

// Stats describes the last frame drawn.
func (r *Renderer) Stats() Stats {
	var s Stats
	_ = r.th.do(func() error { s = r.stats; return nil })
	return s
}

// Draw uploads what changed in f and draws it. f must stay unchanged until
// Draw returns. The first call uploads everything; later calls upload
// only f's dirty ranges unless f.Full is set or a buffer had to grow.
// Errors wrap ErrBadFrame (nothing is drawn), ErrGL or ErrClosed.
func (r *Renderer) Draw(f *scene.Frame) error {
	return r.th.do(func() error {
		now := time.Now()
		if !r.last.IsZero() {
			r.frame = now.Sub(r.last) // shown by the overlay
		}
		r.last = now
		all := f.Full || !r.primed || f.Edges > r.edgeCap // every edge is uploaded
		if err := checkFrame(f, f.EdgeDirty, all); err != nil {
			return err
		}
		r.stats = Stats{}
		r.upload(f)
		r.mu.Lock()
		if !r.camSet {
			b, _ := FrameBounds(f)
			r.cam, r.camSet = FitCamera(b, r.w, r.h, 24), true
		}
		r.cur = r.cam
		r.mu.Unlock()
		r.draw(f)
		if err := glError("draw"); err != nil {
			return err
		}
		if r.present != nil {
			return r.present()
		}
		return nil
	})
}

// upload sends f's changes to the GL buffers.
func (r *Renderer) upload(f *scene.Frame) {
	fullNodes, fullEdges := f.Full || !r.primed, f.Full || !r.primed
	if f.Nodes > r.nodeCap {
		r.nodeCap = growCap(r.nodeCap, f.Nodes)
		r.allocNodes()
		fullNodes = true
	}
	if f.Edges > r.edgeCap {
		r.edgeCap = growCap(r.edgeCap, f.Edges)
		r.allocEdges()
		fullEdges = true
	}
	r.primed = true
	all := []scene.Range{{Lo: 0, Hi: uint32(f.Nodes)}}
	pos, node := f.PosDirty, f.NodeDirty
	if fullNodes {
		pos, node = all, all
	}
	r.ranges = clampRanges(r.ranges[:0], pos, f.Nodes)
	gl.BindBuffer(gl.ARRAY_BUFFER, r.posBuf)
	for _, g := range r.ranges {
		r.sub(gl.ARRAY_BUFFER, 8*int(g.Lo), 8*int(g.Hi-g.Lo), gl.Ptr(f.Pos[2*g.Lo:]))
	}
	r.ranges = clampRanges(r.ranges[:0], node, f.Nodes)
	for _, g := range r.ranges {
		gl.BindBuffer(gl.ARRAY_BUFFER, r.colBuf)
		r.sub(gl.ARRAY_BUFFER, 4*int(g.Lo), 4*int(g.Hi-g.Lo), gl.Ptr(f.Color[g.Lo:]))
		gl.BindBuffer(gl.ARRAY_BUFFER, r.sizeBuf)
		r.sub(gl.ARRAY_BUFFER, 4*int(g.Lo), 4*int(g.Hi-g.Lo), gl.Ptr(f.Size[g.Lo:]))
	}
	edges := f.EdgeDirty
	if fullEdges {
		edges = []scene.Range{{Lo: 0, Hi: uint32(f.Edges)}}
	}
	r.ranges = clampRanges(r.ranges[:0], edges, f.Edges)
	gl.BindBuffer(gl.ELEMENT_ARRAY_BUFFER, r.edgeBuf)
	for _, g := range r.ranges {
		r.sub(gl.ELEMENT_ARRAY_BUFFER, 8*int(g.Lo), 8*int(g.Hi-g.Lo), gl.Ptr(f.Ends[2*g.Lo:]))
	}
}

// sub uploads n bytes at off of the bound target buffer.
func (r *Renderer) sub(target uint32, off, n int, p unsafe.Pointer) {
	gl.BufferSubData(target, off, n, p)
	r.stats.UploadBytes += n
}
