//go:build viewer

package viewer

import (
	"fmt"
	"image"

	"github.com/go-gl/gl/v4.5-core/gl"

	"github.com/cairn-graph/cairn/viewer/scene"
)

// draw renders f into the colour attachment: edges, point-sprite nodes,
// large nodes as quads, labels and the overlay. The id attachment is
// drawn only when Pick needs it (drawIDs): a frame that nobody picks in
// does not pay for it.
func (r *Renderer) draw(f *scene.Frame) {
	r.begin(float32(r.cfg.Background>>24) / 255)
	r.idNodes = f.Nodes

	// Edges.
	var all bool
	r.cull, all = r.cfg.LOD.CullEdges(f, r.cur, r.cull[:0])
	if all {
		gl.BindBuffer(gl.ELEMENT_ARRAY_BUFFER, r.edgeBuf)
		gl.DrawElements(gl.LINES, int32(2*f.Edges), gl.UNSIGNED_INT, nil)
		r.stats.Edges = f.Edges
	} else if len(r.cull) > 0 {
		gl.BindBuffer(gl.ELEMENT_ARRAY_BUFFER, r.cullBuf)
		gl.BufferData(gl.ELEMENT_ARRAY_BUFFER, 4*len(r.cull), gl.Ptr(r.cull), gl.STREAM_DRAW)
		gl.DrawElements(gl.LINES, int32(len(r.cull)), gl.UNSIGNED_INT, nil)
		r.stats.Edges, r.stats.Culled = len(r.cull)/2, true
	}

	// Nodes: point sprites, and those wider than a point sprite may be as
	// instanced quads.
	lod := r.cfg.LOD
	lod.MaxPointPx = r.maxPoint
	r.large = lod.LargeNodes(f, r.cur, r.large[:0])
	if len(r.large) > 0 {
		gl.BindBuffer(gl.ARRAY_BUFFER, r.largeBuf)
		gl.BufferData(gl.ARRAY_BUFFER, 4*len(r.large), gl.Ptr(r.large), gl.STREAM_DRAW)
	}
	r.drawNodes()
	r.stats.Large = len(r.large) / largeStride

	// Text: labels, then the overlay; colour only.
	r.text = r.text[:0]
	if r.cfg.Labels {
		r.labels = PlaceLabels(f, r.cur, r.cfg.LabelCell, r.labels[:0])
		for _, l := range r.labels {
			id := f.ID[l.Slot]
			if len(id) > r.cfg.LabelChars {
				id = id[:r.cfg.LabelChars]
			}
			diam := float64(f.Size[l.Slot]) * r.cur.Zoom
			px := float32(LabelPx(diam, r.cfg.LabelMinPx, r.cfg.LabelMaxPx))
			x := l.X + 0.5*diam + 3
			y := float32(l.Y) - r.font.lineHeight(px)/2
			r.text, _ = r.font.layoutText(r.text, id, float32(x), y, px)
		}
		r.stats.Labels = len(r.labels)
	}
	if r.cfg.Overlay {
		when := "-"
		if !f.Time.IsZero() {
			when = f.Time.UTC().Format("2006-01-02 15:04:05Z")
		}
		if r.cfg.FrameTime {
			when = fmt.Sprintf("%.1f ms", float64(r.frame.Microseconds())/1000)
		}
		line1 := fmt.Sprintf("%s  seq %d  %s  nodes %d  edges %d", f.Graph, f.Seq, when, f.LiveNodes, f.LiveEdges)
		r.text, _ = r.font.layoutText(r.text, line1, 8, 8, overlayPx)
		r.text, _ = r.font.layoutText(r.text, "head "+f.Head, 8, 8+r.font.lineHeight(overlayPx)+1, overlayPx)
	}
	if len(r.text) > 0 {
		r.drawText()
	}
	gl.BindVertexArray(0)
	gl.Disable(gl.BLEND)
}

// drawNodes draws the nodes of the last frame from the uploaded buffers
// (point sprites and the large-node instances) into the draw buffers
// that are set.
func (r *Renderer) drawNodes() {
	mvp := r.cur.Matrix()
	gl.UseProgram(r.nodeProg)
	gl.UniformMatrix3fv(uniform(r.nodeProg, "uMVP"), 1, false, &mvp[0])
	gl.Uniform1f(uniform(r.nodeProg, "uZoom"), float32(r.cur.Zoom))
	gl.Uniform1f(uniform(r.nodeProg, "uPointPx"), float32(r.cfg.LOD.PointPx))
	gl.Uniform1f(uniform(r.nodeProg, "uMaxPointPx"), float32(r.maxPoint))
	gl.BindVertexArray(r.nodeVAO)
	gl.DrawArrays(gl.POINTS, 0, int32(r.idNodes))
	if n := len(r.large) / largeStride; n > 0 {
		gl.UseProgram(r.largeProg)
		gl.UniformMatrix3fv(uniform(r.largeProg, "uMVP"), 1, false, &mvp[0])
		gl.Uniform2f(uniform(r.largeProg, "uViewport"), float32(r.w), float32(r.h))
		gl.BindVertexArray(r.largeVAO)
		gl.DrawArraysInstanced(gl.TRIANGLE_STRIP, 0, 4, int32(n))
	}
	gl.BindVertexArray(0)
}

// drawIDs fills the id attachment for the last frame drawn: 0, then
// slot+1 wherever a node drew a fragment (the same shaders, so the same
// fragments, as the colour pass).
func (r *Renderer) drawIDs() {
	gl.BindFramebuffer(gl.FRAMEBUFFER, r.fbo)
	gl.Viewport(0, 0, int32(r.w), int32(r.h))
	ids := []uint32{gl.NONE, gl.COLOR_ATTACHMENT1}
	gl.DrawBuffers(2, &ids[0])
	var zero [4]uint32
	gl.ClearBufferuiv(gl.COLOR, 1, &zero[0])
	r.drawNodes()
	colour := uint32(gl.COLOR_ATTACHMENT0)
	gl.DrawBuffers(1, &colour)
	r.idStale = false
}

// drawText draws r.text, glyphs and their halos, from the distance-field
// atlas in one pass; colour only.
func (r *Renderer) drawText() {
	gl.UseProgram(r.textProg)
	gl.Uniform2f(uniform(r.textProg, "uViewport"), float32(r.w), float32(r.h))
	gl.Uniform2f(uniform(r.textProg, "uAtlas"), float32(r.font.w), float32(r.font.h))
	gl.Uniform1i(uniform(r.textProg, "uTex"), 0)
	gl.Uniform1f(uniform(r.textProg, "uHalo"), textHaloPx)
	gl.ActiveTexture(gl.TEXTURE0)
	gl.BindTexture(gl.TEXTURE_2D, r.atlasTex)
	gl.BindBuffer(gl.ARRAY_BUFFER, r.textBuf)
	gl.BufferData(gl.ARRAY_BUFFER, 4*len(r.text), gl.Ptr(r.text), gl.STREAM_DRAW)
	gl.BindVertexArray(r.textVAO)
	gl.DrawArrays(gl.TRIANGLES, 0, int32(len(r.text)/textVertexFloats))
}

// begin clears the colour attachment to the background (with alpha bgA),
// marks the ids stale, and sets the edge program up for the camera,
// whose matrix it returns: what a full and a bare frame share.
func (r *Renderer) begin(bgA float32) [9]float32 {
	gl.BindFramebuffer(gl.FRAMEBUFFER, r.fbo)
	gl.Viewport(0, 0, int32(r.w), int32(r.h))
	bg := r.cfg.Background
	c := [4]float32{float32(bg&0xff) / 255, float32(bg>>8&0xff) / 255, float32(bg>>16&0xff) / 255, bgA}
	gl.ClearBufferfv(gl.COLOR, 0, &c[0])
	r.idStale = true
	gl.Enable(gl.BLEND)
	mvp := r.cur.Matrix()
	gl.UseProgram(r.edgeProg)
	gl.UniformMatrix3fv(uniform(r.edgeProg, "uMVP"), 1, false, &mvp[0])
	gl.Uniform1f(uniform(r.edgeProg, "uAlpha"), r.cfg.EdgeAlpha)
	gl.BindVertexArray(r.edgeVAO)
	return mvp
}

// drawBare draws the uploaded buffers with the least work: every edge
// slot as a flat line, every node as a flat disc, into the colour
// attachment; no LOD, labels, overlay or ids. It is the benchmarks'
// baseline.
func (r *Renderer) drawBare(f *scene.Frame) {
	mvp := r.begin(1)
	gl.BindBuffer(gl.ELEMENT_ARRAY_BUFFER, r.edgeBuf)
	gl.DrawElements(gl.LINES, int32(2*f.Edges), gl.UNSIGNED_INT, nil)
	gl.UseProgram(r.bareProg)
	gl.UniformMatrix3fv(uniform(r.bareProg, "uMVP"), 1, false, &mvp[0])
	gl.Uniform1f(uniform(r.bareProg, "uZoom"), float32(r.cur.Zoom))
	gl.BindVertexArray(r.bareVAO)
	gl.DrawArrays(gl.POINTS, 0, int32(f.Nodes))
	gl.BindVertexArray(0)
	gl.Disable(gl.BLEND)
}

// Finish waits until GL has finished every command issued (llvmpipe and
// GPUs work asynchronously: time a frame up to Finish or a readback).
func (r *Renderer) Finish() error {
	return r.th.do(func() error { gl.Finish(); return glError("finish") })
}

// ReadImage reads the colour attachment back into dst (allocated when nil
// or of the wrong size), rows top to bottom, and returns it.
func (r *Renderer) ReadImage(dst *image.RGBA) (*image.RGBA, error) {
	err := r.th.do(func() error {
		if dst == nil || dst.Rect.Dx() != r.w || dst.Rect.Dy() != r.h {
			dst = image.NewRGBA(image.Rect(0, 0, r.w, r.h))
		}
		n := 4 * r.w * r.h
		if cap(r.pix) < n {
			r.pix = make([]byte, n)
		}
		r.pix = r.pix[:n]
		gl.BindFramebuffer(gl.READ_FRAMEBUFFER, r.fbo)
		gl.ReadBuffer(gl.COLOR_ATTACHMENT0)
		gl.PixelStorei(gl.PACK_ALIGNMENT, 1)
		gl.ReadPixels(0, 0, int32(r.w), int32(r.h), gl.RGBA, gl.UNSIGNED_BYTE, gl.Ptr(r.pix))
		for y := 0; y < r.h; y++ { // GL's rows run bottom to top
			copy(dst.Pix[y*dst.Stride:y*dst.Stride+4*r.w], r.pix[(r.h-1-y)*4*r.w:])
		}
		return glError("read image")
	})
	if err != nil {
		return nil, err
	}
	return dst, nil
}

// Pick returns the slot of the node drawn nearest the pixel (x, y) (top-left
// origin, as from ReadImage or a mouse), within Config.PickRadius pixels,
// in the last frame drawn; ok is false when none is. The first Pick after
// a Draw fills the id attachment (the node pass again, into it alone).
func (r *Renderer) Pick(x, y int) (slot uint32, ok bool, err error) {
	rad := r.cfg.PickRadius
	n := 2*rad + 1
	ids := make([]uint32, n*n)
	err = r.th.do(func() error {
		gy := r.h - 1 - y // GL row of y
		x0, y0 := max(x-rad, 0), max(gy-rad, 0)
		x1, y1 := min(x+rad+1, r.w), min(gy+rad+1, r.h)
		if x0 >= x1 || y0 >= y1 {
			return nil
		}
		if r.idStale {
			r.drawIDs()
		}
		buf := make([]uint32, (x1-x0)*(y1-y0))
		gl.BindFramebuffer(gl.READ_FRAMEBUFFER, r.fbo)
		gl.ReadBuffer(gl.COLOR_ATTACHMENT1)
		gl.PixelStorei(gl.PACK_ALIGNMENT, 4)
		gl.ReadPixels(int32(x0), int32(y0), int32(x1-x0), int32(y1-y0), gl.RED_INTEGER, gl.UNSIGNED_INT, gl.Ptr(buf))
		for yy := y0; yy < y1; yy++ {
			for xx := x0; xx < x1; xx++ {
				ids[(yy-(gy-rad))*n+xx-(x-rad)] = buf[(yy-y0)*(x1-x0)+xx-x0]
			}
		}
		return glError("pick")
	})
	if err != nil {
		return 0, false, err
	}
	slot, ok = decodePick(ids, rad)
	return slot, ok, nil
}

// Close releases the GL objects and the context and stops the GL thread.
// Later calls return ErrClosed.
func (r *Renderer) Close() error {
	err := r.th.do(func() error {
		if r.release != nil {
			r.release()
		}
		return nil
	})
	r.th.stop()
	return err
}
