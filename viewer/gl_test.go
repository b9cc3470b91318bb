//go:build viewer

package viewer

import (
	"errors"
	"flag"
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-graph/cairn/viewer/scene"
)

var update = flag.Bool("update", false, "rewrite the golden images in testdata/ (bless them on llvmpipe)")

// testConfig is DefaultConfig without the overlay (its frame time varies)
// and labels, with picking at the exact pixel.
func testConfig() Config {
	c := DefaultConfig()
	c.Overlay = false
	c.Labels = false
	c.PickRadius = 0
	return c
}

func newHeadlessT(t testing.TB, w, h int, c Config) *Renderer {
	t.Helper()
	r, err := NewHeadless(w, h, WithConfig(c))
	if err != nil {
		if errors.Is(err, ErrNoEGL) || errors.Is(err, ErrGLVersion) {
			missing(t, "no headless OpenGL 3.3+ through EGL", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// fixedCamera shows the square [-100, 100]² in a w×h viewport at zoom 1.
func fixedCamera(w, h int) Camera {
	return FitCamera(Bounds{-100, -100, 100, 100}, w, h, 0)
}

func draw(t testing.TB, r *Renderer, f *scene.Frame) *image.RGBA {
	t.Helper()
	if err := r.Draw(f); err != nil {
		t.Fatal(err)
	}
	img, err := r.ReadImage(nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkGolden compares img with testdata/name.png, or rewrites it under
// -update.
func checkGolden(t *testing.T, name string, img *image.RGBA) {
	t.Helper()
	path := filepath.Join("testdata", name+".png")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WritePNG(path, img); err != nil {
			t.Fatal(err)
		}
		t.Logf("blessed %s", path)
		return
	}
	want, err := readPNG(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run go test -tags viewer,egl ./viewer/ -run %s -update on llvmpipe)", path, err, t.Name())
	}
	d, err := CompareImages(img, want, DefaultTolerance)
	if err != nil {
		t.Fatal(err)
	}
	if !d.OK {
		got := filepath.Join(t.TempDir(), name+".got.png")
		_ = WritePNG(got, img)
		t.Errorf("%s differs from its golden: %v; got written to %s", name, d, got)
	}
}

// centre is the pixel at the centre of slot s of f under cam.
func centre(cam Camera, f *scene.Frame, s int) (int, int) {
	x, y := cam.ToScreen(float64(f.Pos[2*s]), float64(f.Pos[2*s+1]))
	return int(x), int(y)
}

func rgbaAt(img *image.RGBA, x, y int) uint32 {
	p := img.Pix[y*img.Stride+4*x:]
	return uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
}

func TestHeadlessContext(t *testing.T) {
	r := newHeadlessT(t, 64, 32, testConfig())
	if w, h := r.Size(); w != 64 || h != 32 {
		t.Fatalf("size %dx%d", w, h)
	}
	t.Logf("GL_VERSION %s", r.Version())
	img := draw(t, r, buildFrame(nil, nil))
	bg := testConfig().Background
	for y := 0; y < 32; y++ {
		for x := 0; x < 64; x++ {
			if got := rgbaAt(img, x, y); got != bg {
				t.Fatalf("empty frame: pixel (%d,%d) = %08x, want background %08x", x, y, got, bg)
			}
		}
	}
}

func TestGoldenTriangle(t *testing.T) {
	r := newHeadlessT(t, 160, 120, testConfig())
	r.SetCamera(fixedCamera(160, 120))
	checkGolden(t, "triangle", draw(t, r, triangleScene()))
}

func TestGoldenSizes(t *testing.T) {
	// A sub-pixel node (one flat point), small and middle SDF discs, a node
	// wider than a point sprite (an instanced quad), a half-transparent one.
	f := buildFrame([]testNode{
		{-80, 60, white, 0.5, 0},
		{-50, 60, red, 4, 0},
		{-10, 60, green, 12, 0},
		{40, 50, blue, 40, 0},
		{0, -30, 0xff40a0ff, 120, 0},
		{60, -60, 0x80ffffff, 30, 0},
	}, [][2]uint32{{0, 4}, {3, 5}})
	c := testConfig()
	c.PickRadius = 1 // the one-pixel point's centre falls on a pixel corner
	r := newHeadlessT(t, 200, 160, c)
	r.SetCamera(fixedCamera(200, 160))
	img := draw(t, r, f)
	if s := r.Stats(); s.Large != 1 {
		t.Errorf("large nodes drawn as quads = %d, want 1 (the 120-pixel one)", s.Large)
	}
	// The id buffer holds the quad's slot and the sub-pixel point's.
	cam := r.Camera()
	for _, s := range []int{0, 1, 4} {
		x, y := centre(cam, f, s)
		if got, ok, err := r.Pick(x, y); err != nil || !ok || got != uint32(s) {
			t.Errorf("id at slot %d's centre = %d, %v, %v", s, got, ok, err)
		}
	}
	checkGolden(t, "sizes", img)
}

func TestGoldenLabels(t *testing.T) {
	c := testConfig()
	c.Labels = true
	c.LabelCell = 64
	r := newHeadlessT(t, 200, 160, c)
	r.SetCamera(fixedCamera(200, 160))
	img := draw(t, r, triangleScene())
	if s := r.Stats(); s.Labels != 3 {
		t.Errorf("labels drawn = %d, want 3", s.Labels)
	}
	checkGolden(t, "labels", img)
}

// labelSizesScene has a small node and a large one, whose labels are
// set at the smallest and the largest label size.
func labelSizesScene() *scene.Frame {
	return buildFrame([]testNode{
		{-90, 20, red, 8, 1},
		{-60, -40, blue, 60, 1},
	}, nil)
}

func TestGoldenLabelSizes(t *testing.T) {
	c := testConfig()
	c.Labels = true
	c.Overlay = true
	c.FrameTime = false // the golden must not depend on the clock
	r := newHeadlessT(t, 320, 160, c)
	r.SetCamera(fixedCamera(320, 160))
	f := labelSizesScene()
	img := draw(t, r, f)
	if s := r.Stats(); s.Labels != 2 {
		t.Errorf("labels drawn = %d, want 2", s.Labels)
	}
	cam := r.Camera()
	small := LabelPx(float64(f.Size[0])*cam.Zoom, c.LabelMinPx, c.LabelMaxPx)
	large := LabelPx(float64(f.Size[1])*cam.Zoom, c.LabelMinPx, c.LabelMaxPx)
	if small != c.LabelMinPx || large != c.LabelMaxPx {
		t.Errorf("label sizes %v and %v, want %v and %v", small, large, c.LabelMinPx, c.LabelMaxPx)
	}
	checkGolden(t, "labelsizes", img)
}

// TestLabelDrawnWherePlaced draws one labelled node and finds the label's
// white text inside the box where it was placed (right of the node,
// centred on its row) and none outside it.
func TestLabelDrawnWherePlaced(t *testing.T) {
	for _, size := range []float32{8, 60} {
		c := testConfig()
		c.Labels = true
		r := newHeadlessT(t, 200, 160, c)
		r.SetCamera(fixedCamera(200, 160))
		f := buildFrame([]testNode{{-60, 10, red, size, 1}}, nil)
		img := draw(t, r, f)
		cam := r.Camera()
		x, y := cam.ToScreen(-60, 10)
		diam := float64(size) * cam.Zoom
		px := LabelPx(diam, c.LabelMinPx, c.LabelMaxPx)
		k := px / bakePx
		// The label "n0": two advances from the pen, a line box high,
		// and a pixel either way for the antialiasing.
		x0 := x + diam/2 + 3 - 1
		x1 := x0 + 2*float64(r.font.advance)*k + 2
		y0 := y - float64(r.font.lineHeight(float32(px)))/2 - 1
		y1 := y0 + float64(r.font.lineHeight(float32(px))) + 2
		in, out := 0, 0
		for py := 0; py < 160; py++ {
			for px := 0; px < 200; px++ {
				p := img.Pix[py*img.Stride+4*px:]
				if p[0] < 200 || p[1] < 200 || p[2] < 200 {
					continue
				}
				if fx, fy := float64(px)+0.5, float64(py)+0.5; fx >= x0 && fx <= x1 && fy >= y0 && fy <= y1 {
					in++
				} else {
					out++
					if out == 1 {
						t.Errorf("size %v: white pixel at (%d,%d), outside the label's box [%.0f,%.0f]×[%.0f,%.0f]", size, px, py, x0, x1, y0, y1)
					}
				}
			}
		}
		// The glyphs cover a good share of their box at any size.
		if want := int(0.08 * (x1 - x0) * (y1 - y0)); in < want {
			t.Errorf("size %v (%v px): %d white pixels in the label's box, want at least %d", size, px, in, want)
		}
		if out > 0 {
			t.Errorf("size %v: %d white pixels outside the label's box", size, out)
		}
	}
}

func TestIDBufferAndBackground(t *testing.T) {
	r := newHeadlessT(t, 160, 120, testConfig())
	cam := fixedCamera(160, 120)
	r.SetCamera(cam)
	f := triangleScene()
	img := draw(t, r, f)
	for s := 0; s < 3; s++ {
		x, y := centre(cam, f, s)
		got, ok, err := r.Pick(x, y)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || got != uint32(s) {
			t.Errorf("id buffer at slot %d's centre (%d,%d) = %d, %v; want %d", s, x, y, got, ok, s)
		}
		if c := rgbaAt(img, x, y); c != f.Color[s] {
			t.Errorf("colour at slot %d's centre = %08x, want %08x", s, c, f.Color[s])
		}
	}
	// A corner, and the hidden slot 3 at the origin: background, no id.
	x3, y3 := centre(cam, f, 3)
	for _, p := range [][2]int{{0, 0}, {159, 119}, {x3, y3}} {
		if _, ok, err := r.Pick(p[0], p[1]); err != nil || ok {
			t.Errorf("id buffer at %v holds a node (err %v); want none", p, err)
		}
		if c := rgbaAt(img, p[0], p[1]); c != testConfig().Background {
			t.Errorf("pixel %v = %08x, want background %08x", p, c, testConfig().Background)
		}
	}
}

func TestHiddenSlotDoesNotDraw(t *testing.T) {
	cfg := testConfig()
	f := triangleScene()
	r := newHeadlessT(t, 160, 120, cfg)
	cam := fixedCamera(160, 120)
	r.SetCamera(cam)
	before := draw(t, r, f)
	// Hide slot 2 by alpha only (size stays): it and its edges vanish.
	f.Color[2] &^= 0xff000000
	f.Full = false
	f.NodeDirty = []scene.Range{{Lo: 2, Hi: 3}}
	after := draw(t, r, f)
	x, y := centre(cam, f, 2)
	if rgbaAt(before, x, y) == cfg.Background {
		t.Fatalf("slot 2 did not draw before it was hidden")
	}
	if c := rgbaAt(after, x, y); c != cfg.Background {
		t.Errorf("hidden slot 2 drew %08x at its centre, want background", c)
	}
	if _, ok, _ := r.Pick(x, y); ok {
		t.Errorf("hidden slot 2 wrote the id buffer")
	}
}

func TestPickRadius(t *testing.T) {
	c := testConfig()
	c.PickRadius = 3
	r := newHeadlessT(t, 160, 120, c)
	cam := fixedCamera(160, 120)
	r.SetCamera(cam)
	f := triangleScene()
	draw(t, r, f)
	x, y := centre(cam, f, 1)
	rad := int(f.Size[1]/2 + 0.5)
	// Two pixels right of the rim: found within 3.
	if got, ok, err := r.Pick(x+rad+2, y); err != nil || !ok || got != 1 {
		t.Errorf("pick 2 px off slot 1's rim = %d, %v, %v; want slot 1", got, ok, err)
	}
	// Six pixels off: nothing.
	if got, ok, err := r.Pick(x+rad+6, y); err != nil || ok {
		t.Errorf("pick 6 px off slot 1's rim = %d, %v, %v; want none", got, ok, err)
	}
	// Outside the framebuffer: nothing, no error.
	if _, ok, err := r.Pick(-10, -10); err != nil || ok {
		t.Errorf("pick outside = %v, %v", ok, err)
	}
}

func TestDirtyUploadMatchesFull(t *testing.T) {
	const w, h = 200, 160
	f := randomScene(400, 800, true, 3)
	cam := FitCamera(Bounds{-500, -500, 500, 500}, w, h, 4)
	inc := newHeadlessT(t, w, h, testConfig())
	inc.SetCamera(cam)
	draw(t, inc, f)

	// Move one node, recolour a range, rewire one edge: dirty ranges only.
	f.Full = false
	f.Pos[2*17], f.Pos[2*17+1] = 0, 0
	f.PosDirty = []scene.Range{{Lo: 17, Hi: 18}}
	if err := inc.Draw(f); err != nil {
		t.Fatal(err)
	}
	if s := inc.Stats(); s.UploadBytes != 8 {
		t.Errorf("moving one node uploaded %d bytes, want 8", s.UploadBytes)
	}
	for s := 100; s < 120; s++ {
		f.Color[s] = white
	}
	f.Ends[2*5], f.Ends[2*5+1] = 17, 300
	f.PosDirty = nil
	f.NodeDirty = []scene.Range{{Lo: 100, Hi: 120}}
	f.EdgeDirty = []scene.Range{{Lo: 5, Hi: 6}}
	got := draw(t, inc, f)
	if s := inc.Stats(); s.UploadBytes != 20*8+8 {
		t.Errorf("dirty upload sent %d bytes, want %d", s.UploadBytes, 20*8+8)
	}

	full := newHeadlessT(t, w, h, testConfig())
	full.SetCamera(cam)
	f.Full = true
	want := draw(t, full, f)
	if d, _ := CompareImages(got, want, Tolerance{}); d.Out != 0 {
		t.Errorf("dirty-range uploads differ from a full upload: %v", d)
	}
}

func TestBuffersGrow(t *testing.T) {
	r := newHeadlessT(t, 120, 90, testConfig())
	small := randomScene(10, 10, true, 1)
	cam := FitCamera(Bounds{-500, -500, 500, 500}, 120, 90, 4)
	r.SetCamera(cam)
	draw(t, r, small)
	// Past the first capacity (1024 slots): the buffers grow and take
	// everything even though the frame only marks a range dirty.
	big := randomScene(5000, 9000, true, 2)
	big.Full = false
	big.PosDirty = []scene.Range{{Lo: 4999, Hi: 5000}}
	got := draw(t, r, big)
	ref := newHeadlessT(t, 120, 90, testConfig())
	ref.SetCamera(cam)
	big.Full = true
	want := draw(t, ref, big)
	if d, _ := CompareImages(got, want, Tolerance{}); d.Out != 0 {
		t.Errorf("after growing: %v", d)
	}
}

func TestDrawRejectsBadFrame(t *testing.T) {
	r := newHeadlessT(t, 64, 64, testConfig())
	f := triangleScene()
	f.Ends[1] = 99
	if err := r.Draw(f); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("Draw of an edge to slot 99 of 4: %v, want ErrBadFrame", err)
	}
	f.Ends[1] = 1
	if err := r.Draw(f); err != nil {
		t.Fatalf("the repaired frame: %v", err)
	}
}

func TestOverlayDrawsTextWithoutIDs(t *testing.T) {
	c := testConfig()
	c.Overlay = true
	r := newHeadlessT(t, 320, 60, c)
	f := triangleScene()
	r.SetCamera(Camera{X: 1e6, Scale: 1, Zoom: 1}) // the nodes far off screen
	img := draw(t, r, f)
	white := 0
	for y := 0; y < 40; y++ {
		for x := 0; x < 320; x++ {
			if rgbaAt(img, x, y) == 0xffffffff {
				white++
			}
			if _, ok, _ := r.Pick(x, y); ok && x%16 == 0 {
				t.Fatalf("overlay wrote the id buffer at (%d,%d)", x, y)
			}
		}
	}
	if white < 100 {
		t.Errorf("overlay drew %d white pixels, want text", white)
	}
}

func TestEdgeBudgetCulls(t *testing.T) {
	c := testConfig()
	c.LOD.EdgeBudget = 2
	r := newHeadlessT(t, 160, 120, c)
	cam := fixedCamera(160, 120)
	r.SetCamera(cam)
	// Four edges over a budget of 2: the long diagonal (past a quarter of
	// the diagonal) is left out, the two short ones stay.
	f := buildFrame([]testNode{{-90, -90, red, 6, 0}, {90, 90, red, 6, 0}, {-10, 0, green, 6, 0}, {10, 0, green, 6, 0}, {10, 20, blue, 6, 0}},
		[][2]uint32{{0, 1}, {2, 3}, {3, 4}, {4, 4}})
	img := draw(t, r, f)
	if s := r.Stats(); !s.Culled || s.Edges != 2 {
		t.Fatalf("stats %+v, want 2 edges drawn after culling", s)
	}
	// A point on the long diagonal, away from the others: background.
	x, y := cam.ToScreen(-50, -50)
	if got := rgbaAt(img, int(x), int(y)); got != c.Background {
		t.Errorf("culled long edge drew %08x at (%v,%v)", got, x, y)
	}
	// A point on the short edge 2–3: not background.
	x, y = cam.ToScreen(0, 0)
	if got := rgbaAt(img, int(x), int(y)); got == c.Background {
		t.Errorf("short edge 2–3 not drawn at (%v,%v)", x, y)
	}
}

func TestPickFollowsTheLastFrame(t *testing.T) {
	r := newHeadlessT(t, 160, 120, testConfig())
	cam := fixedCamera(160, 120)
	r.SetCamera(cam)
	f := triangleScene()
	draw(t, r, f)
	x0, y0 := centre(cam, f, 1)
	if s, ok, err := r.Pick(x0, y0); err != nil || !ok || s != 1 {
		t.Fatalf("pick slot 1 = %d, %v, %v", s, ok, err)
	}
	// Move slot 1 to the origin; the ids must follow the new frame.
	f.Full = false
	f.Pos[2], f.Pos[3] = 0, 0
	f.PosDirty = []scene.Range{{Lo: 1, Hi: 2}}
	draw(t, r, f)
	if s, ok, err := r.Pick(x0, y0); err != nil || ok {
		t.Errorf("old place of slot 1 still picks %d, %v, %v", s, ok, err)
	}
	x1, y1 := centre(cam, f, 1)
	if s, ok, err := r.Pick(x1, y1); err != nil || !ok || s != 1 {
		t.Errorf("new place of slot 1 picks %d, %v, %v", s, ok, err)
	}
}
