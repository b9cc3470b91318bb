package viewer

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cairn-graph/cairn/viewer/scene"
)

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestCameraRoundTrip(t *testing.T) {
	c := Camera{X: 10, Y: -5, Scale: 2, Zoom: 1.5, Width: 640, Height: 480}
	sx, sy := c.ToScreen(10, -5)
	if sx != 320 || sy != 240 {
		t.Fatalf("centre maps to (%v,%v), want (320,240)", sx, sy)
	}
	// World y up, screen y down; 3 pixels per unit.
	if sx, sy := c.ToScreen(11, -4); !approx(sx, 323) || !approx(sy, 237) {
		t.Fatalf("(11,-4) maps to (%v,%v), want (323,237)", sx, sy)
	}
	for _, p := range [][2]float64{{0, 0}, {-100, 37.5}, {1e3, -1e3}} {
		x, y := c.ToWorld(c.ToScreen(p[0], p[1]))
		if !approx(x, p[0]) || !approx(y, p[1]) {
			t.Errorf("round trip %v → (%v,%v)", p, x, y)
		}
	}
}

func TestCameraMatrixAgreesWithToScreen(t *testing.T) {
	c := Camera{X: 3, Y: 4, Scale: 0.5, Zoom: 2.5, Width: 800, Height: 600}
	m := c.Matrix()
	for _, p := range [][2]float64{{3, 4}, {0, 0}, {-50, 80}} {
		cx := float64(m[0])*p[0] + float64(m[3])*p[1] + float64(m[6])
		cy := float64(m[1])*p[0] + float64(m[4])*p[1] + float64(m[7])
		sx, sy := c.ToScreen(p[0], p[1])
		wantX, wantY := sx/800*2-1, 1-sy/600*2
		if math.Abs(cx-wantX) > 1e-5 || math.Abs(cy-wantY) > 1e-5 {
			t.Errorf("%v: clip (%v,%v), want (%v,%v)", p, cx, cy, wantX, wantY)
		}
	}
}

func TestCameraPanAndZoomAt(t *testing.T) {
	c := Camera{Scale: 1, Zoom: 1, Width: 100, Height: 100}
	wx, wy := c.ToWorld(20, 30)
	p := c.Pan(5, -7)
	if sx, sy := p.ToScreen(wx, wy); !approx(sx, 25) || !approx(sy, 23) {
		t.Errorf("after a drag of (5,-7) the point under (20,30) is at (%v,%v), want (25,23)", sx, sy)
	}
	z := c.ZoomAt(4, 20, 30)
	if z.Zoom != 4 {
		t.Errorf("zoom %v, want 4", z.Zoom)
	}
	if sx, sy := z.ToScreen(wx, wy); !approx(sx, 20) || !approx(sy, 30) {
		t.Errorf("zoom moved the point under the cursor to (%v,%v)", sx, sy)
	}
	if z := c.ZoomAt(1e9, 0, 0); z.Zoom != 1e4 {
		t.Errorf("zoom not clamped: %v", z.Zoom)
	}
}

func TestFitCamera(t *testing.T) {
	c := FitCamera(Bounds{-10, 0, 30, 10}, 200, 100, 10)
	// 40×10 world into 180×80 pixels: 4.5 px/unit (width-bound).
	if c.X != 10 || c.Y != 5 || !approx(c.Scale, 4.5) || c.Zoom != 1 {
		t.Fatalf("fit = %+v", c)
	}
	for _, p := range [][2]float64{{-10, 0}, {30, 10}} {
		sx, sy := c.ToScreen(p[0], p[1])
		if sx < 10-1e-9 || sx > 190+1e-9 || sy < 10-1e-9 || sy > 90+1e-9 {
			t.Errorf("corner %v at (%v,%v), outside the margin", p, sx, sy)
		}
	}
	if c := FitCamera(Bounds{5, 5, 5, 5}, 100, 100, 10); c.Scale != 1 || c.X != 5 {
		t.Errorf("degenerate fit = %+v", c)
	}
}

func TestFrameBoundsSkipsHidden(t *testing.T) {
	f := buildFrame([]testNode{{-1, 2, red, 5, 0}, {100, 100, red, 0, 0}, {3, -4, 0x00ffffff, 5, 0}, {7, 1, red, 5, 0}}, nil)
	b, ok := FrameBounds(f)
	if !ok || b != (Bounds{-1, 1, 7, 2}) {
		t.Fatalf("bounds %+v %v", b, ok)
	}
	if _, ok := FrameBounds(buildFrame(nil, nil)); ok {
		t.Fatal("empty frame has bounds")
	}
}

func TestCullEdgesUnderBudgetDrawsAll(t *testing.T) {
	f := randomScene(100, 300, true, 1)
	l := DefaultLOD()
	l.EdgeBudget = 300
	idx, all := l.CullEdges(f, FitCamera(Bounds{-500, -500, 500, 500}, 100, 100, 0), nil)
	if !all || len(idx) != 0 {
		t.Fatalf("under budget: all=%v, %d indexes", all, len(idx))
	}
}

func TestCullEdgesOverBudget(t *testing.T) {
	// 0–1 short (2 px), 0–2 sub-pixel, 0–3 long (past a quarter of the
	// diagonal), 0–4 hidden end, 5–6 off screen, 7–7 degenerate, 1–5 fine.
	f := buildFrame([]testNode{
		{0, 0, red, 4, 0}, {2, 0, red, 4, 0}, {0.5, 0, red, 4, 0}, {90, 0, red, 4, 0},
		{10, 10, red, 0, 0}, {500, 500, red, 4, 0}, {520, 500, red, 4, 0}, {5, 5, red, 4, 0},
	}, [][2]uint32{{0, 1}, {0, 2}, {0, 3}, {0, 4}, {5, 6}, {7, 7}, {1, 7}})
	cam := Camera{Scale: 1, Zoom: 1, Width: 100, Height: 100} // diagonal 141 px; 35 px max
	l := LOD{EdgeBudget: 1, MinEdgePx: 1, MaxEdgeShare: 0.25}
	idx, all := l.CullEdges(f, cam, nil)
	if all {
		t.Fatal("over budget drew all")
	}
	// Two edges survive (0–1 and 1–7); the budget of 1 keeps one.
	if len(idx) != 2 {
		t.Fatalf("kept %v, want one edge", idx)
	}
	l.EdgeBudget = 6
	idx, _ = l.CullEdges(f, cam, nil)
	if want := []uint32{0, 1, 1, 7}; !slices.Equal(idx, want) {
		t.Fatalf("kept %v, want %v", idx, want)
	}
}

func TestCullEdgesThinsEvenlyToBudget(t *testing.T) {
	f := randomScene(2000, 10000, true, 4)
	cam := FitCamera(Bounds{-500, -500, 500, 500}, 400, 400, 0)
	l := DefaultLOD()
	l.EdgeBudget = 1000
	idx, all := l.CullEdges(f, cam, []uint32{42, 42})
	if all || idx[0] != 42 || idx[1] != 42 {
		t.Fatalf("dst prefix lost or all=%v", all)
	}
	if n := (len(idx) - 2) / 2; n != 1000 {
		t.Fatalf("kept %d edges, want the budget 1000", n)
	}
	again, _ := l.CullEdges(f, cam, []uint32{42, 42})
	if !slices.Equal(idx, again) {
		t.Fatal("CullEdges is not deterministic")
	}
}

func TestLargeNodes(t *testing.T) {
	f := buildFrame([]testNode{{1, 2, red, 10, 0}, {3, 4, green, 50, 0}, {5, 6, blue, 0, 0}, {7, 8, blue, 40, 0}}, nil)
	l := LOD{MaxPointPx: 64}
	got := l.LargeNodes(f, Camera{Zoom: 2, Scale: 1}, nil)
	// Slots 1 (100 px) and 3 (80 px); slot 2 is hidden.
	want := []uint32{math.Float32bits(3), math.Float32bits(4), math.Float32bits(100), green, 1,
		math.Float32bits(7), math.Float32bits(8), math.Float32bits(80), blue, 3}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestPlaceLabelsTopDegreePerCell(t *testing.T) {
	cam := Camera{Scale: 1, Zoom: 1, Width: 200, Height: 100} // cells of 100: 2×1
	f := buildFrame([]testNode{
		{-60, 0, red, 4, 3}, {-40, 10, red, 4, 9}, {-20, 0, red, 4, 9}, // left cell: slot 1 (9, lower slot than 2)
		{40, 0, red, 4, 1}, {60, 0, red, 0, 50}, // right: slot 3 (slot 4 hidden)
		{500, 0, red, 4, 99}, // off screen
	}, nil)
	got := PlaceLabels(f, cam, 100, nil)
	if len(got) != 2 || got[0].Slot != 1 || got[1].Slot != 3 {
		t.Fatalf("labels %+v, want slots 1 and 3", got)
	}
	if got[0].X != 60 || got[0].Y != 40 {
		t.Errorf("label position (%v,%v), want (60,40)", got[0].X, got[0].Y)
	}
	if l := PlaceLabels(f, cam, 0, nil); len(l) != 0 {
		t.Errorf("cell 0 placed %d", len(l))
	}
}

func TestDecodePick(t *testing.T) {
	ids := []uint32{
		5, 0, 0,
		0, 0, 9,
		0, 0, 0,
	}
	if s, ok := decodePick(ids, 1); !ok || s != 8 {
		t.Errorf("got %d %v, want slot 8 (nearest)", s, ok)
	}
	ids[4] = 1
	if s, ok := decodePick(ids, 1); !ok || s != 0 {
		t.Errorf("got %d %v, want slot 0 (centre)", s, ok)
	}
	if _, ok := decodePick(make([]uint32, 9), 1); ok {
		t.Error("all zero picked a node")
	}
}

func TestCompareImages(t *testing.T) {
	a := image.NewRGBA(image.Rect(0, 0, 20, 10))
	for i := range a.Pix {
		a.Pix[i] = 100
	}
	b := image.NewRGBA(a.Rect)
	copy(b.Pix, a.Pix)
	tol := Tolerance{MaxDelta: 8, Radius: 1, MaxShare: 0.01}
	if d, err := CompareImages(a, b, tol); err != nil || !d.OK || d.Out != 0 {
		t.Fatalf("equal images: %v %v", d, err)
	}
	// Within the per-channel delta.
	b.SetRGBA(3, 3, color.RGBA{106, 95, 100, 100})
	if d, _ := CompareImages(a, b, tol); d.Out != 0 {
		t.Errorf("small delta counted: %v", d)
	}
	// A feature shifted by one pixel matches within the radius.
	a.SetRGBA(10, 5, color.RGBA{255, 0, 0, 255})
	b.SetRGBA(11, 5, color.RGBA{255, 0, 0, 255})
	if d, _ := CompareImages(a, b, tol); d.Out != 0 {
		t.Errorf("1-pixel shift counted: %v", d)
	}
	// Shifted by two: out, and more than 1 % of 200 pixels fails.
	b.SetRGBA(11, 5, color.RGBA{100, 100, 100, 100})
	b.SetRGBA(12, 5, color.RGBA{255, 0, 0, 255})
	for x := 0; x < 3; x++ {
		a.SetRGBA(x, 0, color.RGBA{0, 0, 0, 255})
	}
	d, _ := CompareImages(a, b, tol)
	if d.OK || d.Out != 4 || d.First != image.Pt(0, 0) {
		t.Errorf("diff %+v, want 4 out, failing, first at (0,0)", d)
	}
	if _, err := CompareImages(a, image.NewRGBA(image.Rect(0, 0, 5, 5)), tol); err == nil {
		t.Error("sizes differ, no error")
	}
}

func TestClampRangesAndGrowCap(t *testing.T) {
	got := clampRanges(nil, []scene.Range{{Lo: 0, Hi: 4}, {Lo: 2, Hi: 6}, {Lo: 6, Hi: 8}, {Lo: 10, Hi: 10}, {Lo: 12, Hi: 30}, {Lo: 40, Hi: 50}}, 20)
	want := []scene.Range{{Lo: 0, Hi: 8}, {Lo: 12, Hi: 20}}
	if !slices.Equal(got, want) {
		t.Errorf("clampRanges = %v, want %v", got, want)
	}
	for _, c := range []struct{ cur, need, want int }{{0, 0, 1024}, {0, 1025, 2048}, {1024, 1024, 1024}, {4096, 5000, 8192}} {
		if g := growCap(c.cur, c.need); g != c.want {
			t.Errorf("growCap(%d, %d) = %d, want %d", c.cur, c.need, g, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.EdgeAlpha = 2
	c.LabelCell = 1
	c.PickRadius = -1
	c.LabelMinPx, c.LabelMaxPx = 20, 12
	err := c.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, w := range []string{"EdgeAlpha", "LabelCell", "PickRadius", "LabelMinPx"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
}

func TestGLThreadRunsOnOneOSThread(t *testing.T) {
	th := newGLThread()
	var tids []int
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = th.do(func() error {
				runtime.Gosched()
				mu.Lock()
				tids = append(tids, syscall.Gettid())
				mu.Unlock()
				return nil
			})
		}()
	}
	wg.Wait()
	for _, id := range tids {
		if id != tids[0] {
			t.Fatalf("GL thread ran on threads %v", tids)
		}
	}
	want := errors.New("x")
	if err := th.do(func() error { return want }); err != want {
		t.Fatalf("do returned %v", err)
	}
	th.stop()
	th.stop()
	if err := th.do(func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("do after stop = %v, want ErrClosed", err)
	}
}

func TestRecorder(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		missing(t, "ffmpeg not on PATH", err)
	}
	path := filepath.Join(t.TempDir(), "out.mp4")
	r, err := NewRecorder(context.Background(), path, 64, 48, 10)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := 0; i < 5; i++ {
		for p := range img.Pix {
			img.Pix[p] = uint8(i * 40)
		}
		if err := r.WriteFrame(img); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.WriteFrame(image.NewRGBA(image.Rect(0, 0, 8, 8))); !errors.Is(err, ErrRecorder) {
		t.Errorf("wrong size frame: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r.Frames() != 5 {
		t.Errorf("frames %d", r.Frames())
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 {
		t.Fatalf("no mp4: %v", err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	if got := string(out); got != "64,48,5\n" {
		t.Errorf("ffprobe says %q, want 64,48,5", got)
	}
	if _, err := NewRecorder(context.Background(), path, 63, 48, 10); !errors.Is(err, ErrRecorder) {
		t.Errorf("odd width accepted: %v", err)
	}

	// A recording aborted halfway leaves nothing: not at its path, not
	// beside it. One in progress is not at its path yet.
	dir := t.TempDir()
	half := filepath.Join(dir, "half.mp4")
	r, err = NewRecorder(context.Background(), half, 64, 48, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFrame(img); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Errorf("a recording in progress is at its path already: %v", err)
	}
	r.Abort()
	if err := r.Close(); err != nil {
		t.Errorf("Close after Abort: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("an aborted recording left %d files, the first %s", len(left), left[0].Name())
	}
}

func TestWritePNG(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.SetRGBA(1, 1, color.RGBA{1, 2, 3, 255})
	path := filepath.Join(t.TempDir(), "a.png")
	if err := WritePNG(path, img); err != nil {
		t.Fatal(err)
	}
	got, err := readPNG(path)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := CompareImages(got, img, Tolerance{}); d.Out != 0 {
		t.Errorf("png round trip: %v", d)
	}
	if err := WritePNG(filepath.Join(t.TempDir(), "no", "dir.png"), img); err == nil {
		t.Error("no error for a missing directory")
	}
}

func TestPointerDragAndClick(t *testing.T) {
	var p pointer
	if _, _, pan := p.move(10, 10); pan {
		t.Fatal("moving with the button up pans")
	}
	p.press()
	dx, dy, pan := p.move(12, 11)
	if !pan || dx != 2 || dy != 1 {
		t.Fatalf("drag (%v,%v,%v)", dx, dy, pan)
	}
	if !p.release() {
		t.Fatal("a 2-pixel wobble is not a click")
	}
	p.press()
	p.move(20, 11)
	p.move(12, 11) // back where it started: still a drag
	if p.release() {
		t.Fatal("a drag counted as a click")
	}
	if p.release() {
		t.Fatal("a release without a press is a click")
	}
	if z := scrollZoom(2); !approx(z, zoomStep*zoomStep) {
		t.Fatalf("scroll zoom %v", z)
	}
}

func BenchmarkPlaceLabels100K(b *testing.B) {
	f := randomScene(100_000, 0, true, 1)
	cam := FitCamera(Bounds{-500, -500, 500, 500}, 1280, 720, 16)
	var dst []Label
	b.ReportAllocs()
	for b.Loop() {
		dst = PlaceLabels(f, cam, 96, dst[:0])
	}
}

func BenchmarkCullEdges100K200K(b *testing.B) {
	f := randomScene(100_000, 200_000, false, 1)
	cam := FitCamera(Bounds{-500, -500, 500, 500}, 1280, 720, 16)
	l := DefaultLOD()
	l.EdgeBudget = 100_000
	var dst []uint32
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = l.CullEdges(f, cam, dst[:0])
	}
}

func TestCheckFrame(t *testing.T) {
	if err := checkFrame(triangleScene(), nil, true); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		mut   func(f *scene.Frame)
		edges []scene.Range
		want  string
	}{
		"short Pos":         {func(f *scene.Frame) { f.Pos = f.Pos[:5] }, nil, "Pos holds 5"},
		"short Color":       {func(f *scene.Frame) { f.Color = f.Color[:1] }, nil, "Color"},
		"short Ends":        {func(f *scene.Frame) { f.Edges = 9 }, nil, "Ends holds 8"},
		"end past":          {func(f *scene.Frame) { f.Ends[3] = 4 }, nil, "edge slot 1 joins slots 1 and 4"},
		"end past in range": {func(f *scene.Frame) { f.Ends[3] = 4 }, []scene.Range{{Lo: 1, Hi: 2}}, "edge slot 1"},
		"negative":          {func(f *scene.Frame) { f.Nodes = -1 }, nil, "Nodes -1"},
	} {
		f := triangleScene()
		c.mut(f)
		err := checkFrame(f, c.edges, c.edges == nil)
		if !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrBadFrame naming %q", name, err, c.want)
		}
	}
	// An edge past Nodes outside the checked ranges is not looked at.
	f := triangleScene()
	f.Ends[3] = 4
	if err := checkFrame(f, []scene.Range{{Lo: 0, Hi: 1}}, false); err != nil {
		t.Errorf("unchecked range: %v", err)
	}
}
