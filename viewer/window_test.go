//go:build viewer

package viewer

import (
	"errors"
	"os"
	"testing"

	"github.com/go-gl/gl/v4.5-core/gl"
	"github.com/go-gl/glfw/v3.3/glfw"
)

func TestOpenWindowWithoutDisplay(t *testing.T) {
	t.Setenv("DISPLAY", "")
	w, err := OpenWindow("cairn", 64, 64, Input{})
	if err == nil {
		w.Close()
		t.Fatal("opened a window without a display")
	}
	if !errors.Is(err, ErrNoDisplay) {
		t.Fatalf("error %v, want ErrNoDisplay", err)
	}
	t.Log(err)
}

func TestOpenWindowBadDisplay(t *testing.T) {
	t.Setenv("DISPLAY", ":4093")
	w, err := OpenWindow("cairn", 64, 64, Input{})
	if err == nil {
		w.Close()
		t.Fatal("opened a window on a display that does not exist")
	}
	if !errors.Is(err, ErrNoDisplay) {
		t.Fatalf("error %v, want ErrNoDisplay", err)
	}
	t.Log(err)
}

func TestKeysAreGLFWs(t *testing.T) {
	for _, c := range []struct {
		ours Key
		glfw glfw.Key
	}{{KeySpace, glfw.KeySpace}, {KeyEscape, glfw.KeyEscape}, {KeyEnter, glfw.KeyEnter}, {KeyTab, glfw.KeyTab},
		{KeyBackspace, glfw.KeyBackspace}, {KeyRight, glfw.KeyRight}, {KeyLeft, glfw.KeyLeft}, {KeyDown, glfw.KeyDown},
		{KeyUp, glfw.KeyUp}, {KeyPageUp, glfw.KeyPageUp}, {KeyPageDown, glfw.KeyPageDown}, {KeyHome, glfw.KeyHome},
		{KeyEnd, glfw.KeyEnd}, {'A', glfw.KeyA}, {'0', glfw.Key0}, {'=', glfw.KeyEqual}, {'-', glfw.KeyMinus}} {
		if int(c.ours) != int(c.glfw) {
			t.Errorf("key %d, GLFW's %d", c.ours, c.glfw)
		}
	}
	for _, c := range [][2]int{{int(ModShift), int(glfw.ModShift)}, {int(ModControl), int(glfw.ModControl)},
		{int(ModAlt), int(glfw.ModAlt)}, {int(ModSuper), int(glfw.ModSuper)}} {
		if c[0] != c[1] {
			t.Errorf("mod %d, GLFW's %d", c[0], c[1])
		}
	}
}

// TestWindow opens a window (under Xvfb in CI: xvfb-run -a go test ...),
// draws the triangle scene and reads the window's pixels back.
func TestWindow(t *testing.T) {
	if os.Getenv("DISPLAY") == "" {
		missing(t, "no X display for the window test (run under xvfb-run -a)", ErrNoDisplay)
	}
	const W, H = 160, 120
	w, err := OpenWindow("cairn test", W, H, Input{}, WithConfig(testConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	}()
	t.Logf("GL_VERSION %s", w.Version())
	if fw, fh := w.Size(); fw != W || fh != H {
		t.Fatalf("framebuffer %dx%d, want %dx%d", fw, fh, W, H)
	}
	cam := fixedCamera(W, H)
	w.SetCamera(cam)
	f := triangleScene()
	if err := w.Draw(f); err != nil {
		t.Fatal(err)
	}
	if err := w.PollEvents(); err != nil {
		t.Fatal(err)
	}
	if w.ShouldClose() {
		t.Fatal("window wants to close at once")
	}
	// Read what the window shows: blit again and read its back buffer.
	px := func(x, y int) uint32 {
		var c uint32
		if err := w.th.do(func() error {
			w.blit()
			gl.BindFramebuffer(gl.READ_FRAMEBUFFER, 0)
			gl.ReadBuffer(gl.BACK)
			gl.ReadPixels(int32(x), int32(H-1-y), 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, gl.Ptr(&c))
			return glError("read window")
		}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for s := 0; s < 3; s++ {
		x, y := centre(cam, f, s)
		if got := px(x, y); got != f.Color[s] {
			t.Errorf("window pixel at slot %d's centre = %08x, want %08x", s, got, f.Color[s])
		}
		if slot, ok, err := w.Pick(x, y); err != nil || !ok || slot != uint32(s) {
			t.Errorf("pick in the window at slot %d = %d, %v, %v", s, slot, ok, err)
		}
	}
	if got := px(2, 2); got != testConfig().Background {
		t.Errorf("window corner = %08x, want background", got)
	}
}
