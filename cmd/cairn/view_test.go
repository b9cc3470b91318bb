//go:build viewer

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/persistence"
)

// needGL skips a view test that could not get GL outside CI; in CI
// (CI set) a missing GL, EGL or display fails it.
func needGL(t *testing.T, r result) {
	t.Helper()
	if r.err == nil {
		return
	}
	for _, missing := range []string{"no EGL", "no display", "OpenGL version too old"} {
		if strings.Contains(r.stderr, missing) && os.Getenv("CI") == "" {
			t.Skipf("no GL here (%s); CI fails instead", missing)
		}
	}
}

// runViewJSON runs cairn view with args and decodes its --json.
func runViewJSON(t *testing.T, args ...string) viewResult {
	t.Helper()
	r := runCLI(t, append(append([]string{"view"}, args...), "--json")...)
	needGL(t, r)
	if r.err != nil {
		t.Fatalf("cairn view %s: %v\nstderr: %s", strings.Join(args, " "), r.err, r.stderr)
	}
	var v viewResult
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("cairn view %s --json printed %q: %v", strings.Join(args, " "), r.stdout, err)
	}
	return v
}

// lastSeq returns the seq= of a write's output.
func lastSeq(t *testing.T, out string) uint64 {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if s, ok := strings.CutPrefix(f, "seq="); ok {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no seq= in %q", out)
	return 0
}

// writeViewGraph writes a small graph of 3 nodes and 2 edges in 6
// transactions and returns the seq of each write.
func writeViewGraph(t *testing.T, server, graph string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, args := range [][]string{
		{"graph", "create", graph},
		{"node", "add", graph, "a", "--category", "red", "--component", "name=Alpha"},
		{"node", "add", graph, "b", "--category", "blue"},
		{"node", "add", graph, "c"},
		{"edge", "add", graph, "ab", "a", "b"},
		{"edge", "add", graph, "bc", "b", "c"},
	} {
		seqs = append(seqs, lastSeq(t, mustRun(t, append(args, "--server", server)...)))
	}
	return seqs
}

// readPNG decodes a PNG file.
func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// drawn counts the pixels below the overlay (rows from 40 on) that are
// not the background colour of the top-right corner.
func drawn(img image.Image) int {
	b := img.Bounds()
	bg := img.At(b.Max.X-1, b.Max.Y-1)
	n := 0
	for y := b.Min.Y + 40; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.At(x, y) != bg {
				n++
			}
		}
	}
	return n
}

func TestViewPNG(t *testing.T) {
	eng := openEngine(t)
	server := eng.ClientURL()
	seqs := writeViewGraph(t, server, "g")
	dir := t.TempDir()

	whole := filepath.Join(dir, "whole.png")
	v := runViewJSON(t, "g", "--png", whole, "--width", "320", "--height", "240", "--server", server)
	if v.Nodes != 3 || v.Edges != 2 || v.Seq != seqs[len(seqs)-1] || !strings.HasPrefix(v.Head, "bafy") || v.Out != whole {
		t.Errorf("view g --png: %+v, want 3 nodes, 2 edges at seq %d", v, seqs[len(seqs)-1])
	}
	img := readPNG(t, whole)
	if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
		t.Errorf("picture is %v, want 320x240", b)
	}

	// As of the first node: one node, no edge, fewer pixels drawn.
	one := filepath.Join(dir, "one.png")
	v1 := runViewJSON(t, "g", "--png", one, "--as-of", strconv.FormatUint(seqs[1], 10), "--width", "320", "--height", "240", "--server", server)
	if v1.Nodes != 1 || v1.Edges != 0 || v1.Seq != seqs[1] {
		t.Errorf("view g --as-of %d: %+v, want 1 node at seq %d", seqs[1], v1, seqs[1])
	}
	// As of the graph's creation: nothing but the background.
	none := filepath.Join(dir, "none.png")
	v0 := runViewJSON(t, "g", "--png", none, "--as-of", strconv.FormatUint(seqs[0], 10), "--width", "320", "--height", "240", "--server", server)
	if v0.Nodes != 0 {
		t.Errorf("view g --as-of %d: %d nodes, want 0", seqs[0], v0.Nodes)
	}
	n0, n1, n3 := drawn(readPNG(t, none)), drawn(readPNG(t, one)), drawn(img)
	if n0 != 0 || n1 == 0 || n3 <= n1 {
		t.Errorf("pixels drawn: %d with no node, %d with one, %d with three; want 0 < one < three", n0, n1, n3)
	}

	// The same point by event CID and by time gives the same picture.
	byCID := filepath.Join(dir, "cid.png")
	vc := runViewJSON(t, "g", "--png", byCID, "--as-of", v1.Head, "--width", "320", "--height", "240", "--server", server)
	if vc.Seq != v1.Seq || vc.Nodes != 1 {
		t.Errorf("view --as-of %s (the CID of seq %d): %+v", v1.Head, v1.Seq, vc)
	}
	a, _ := os.ReadFile(one)
	b, _ := os.ReadFile(byCID)
	if !bytes.Equal(a, b) {
		t.Errorf("the picture as of seq %d and as of its CID differ", v1.Seq)
	}
}

func TestViewReplayRecord(t *testing.T) {
	eng := openEngine(t)
	server := eng.ClientURL()
	seqs := writeViewGraph(t, server, "r")
	dir := t.TempDir()
	record := func(name string, extra ...string) (viewResult, []string) {
		out := filepath.Join(dir, name)
		args := append([]string{"r", "--replay", "--record", out, "--speed", "30", "--fps", "30",
			"--width", "160", "--height", "120", "--server", server}, extra...)
		v := runViewJSON(t, args...)
		files, err := filepath.Glob(filepath.Join(out, "frame-*.png"))
		if err != nil {
			t.Fatal(err)
		}
		return v, files
	}
	v1, f1 := record("one")
	v2, f2 := record("two")
	// One transaction a frame, then the fades (8 frames) end.
	if v1.Frames != len(f1) || len(f1) < len(seqs) || len(f1) > len(seqs)+9 || v1.Seq != seqs[len(seqs)-1] || v1.Nodes != 3 {
		t.Errorf("replay of %d transactions at 1 a frame: %+v, %d files", len(seqs), v1, len(f1))
	}
	same := v2
	same.Out = v1.Out
	if len(f1) != len(f2) || v1 != same {
		t.Fatalf("two recordings of one replay differ: %+v and %+v", v1, v2)
	}
	for i := range f1 {
		a, _ := os.ReadFile(f1[i])
		b, _ := os.ReadFile(f2[i])
		if !bytes.Equal(a, b) {
			t.Errorf("frame %d of two recordings of one replay differs", i)
		}
	}
	// Frames grow: the first shows nothing below the overlay, the last the
	// whole graph.
	if first, last := drawn(readPNG(t, f1[0])), drawn(readPNG(t, f1[len(f1)-1])); first != 0 || last == 0 {
		t.Errorf("pixels drawn in the first frame %d, in the last %d", first, last)
	}

	// --from starts with everything before it folded; --to stops early.
	v3, f3 := record("part", "--from", strconv.FormatUint(seqs[4], 10), "--to", strconv.FormatUint(seqs[4], 10))
	if v3.Seq != seqs[4] || v3.Nodes != 3 || v3.Edges != 1 || len(f3) >= len(f1) {
		t.Errorf("replay --from --to seq %d: %+v, %d frames (whole replay %d)", seqs[4], v3, len(f3), len(f1))
	}
	if drawn(readPNG(t, f3[0])) == 0 {
		t.Errorf("the first frame of a replay from seq %d shows nothing of the nodes before it", seqs[4])
	}

	// A replay that starts from a position keyframe (saved every
	// transaction by the recording before it) gives the very frames of one
	// that folds from the first transaction.
	record("keyframes", "--keyframe-every", "1")
	v5, f5 := record("from-keyframe", "--from", strconv.FormatUint(seqs[4], 10))
	v6, f6 := record("from-start", "--from", strconv.FormatUint(seqs[4], 10), "--keyframe-every", "0")
	if v5.Seq != v6.Seq || len(f5) != len(f6) || len(f5) == 0 {
		t.Fatalf("replay from seq %d with keyframes: %+v, %d frames; without: %+v, %d frames", seqs[4], v5, len(f5), v6, len(f6))
	}
	for i := range f5 {
		a, _ := os.ReadFile(f5[i])
		b, _ := os.ReadFile(f6[i])
		if !bytes.Equal(a, b) {
			t.Errorf("frame %d of a replay from a keyframe differs from the one folded from the start", i)
		}
	}
	infos, err := eng.Snapshots().List(context.Background(), persistence.KindLayout, "r")
	if err != nil || len(infos) == 0 {
		t.Errorf("position keyframes of r: %d (%v), want some", len(infos), err)
	}

	// An mp4 through ffmpeg holds the same number of frames.
	if _, err := exec.LookPath("ffprobe"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ffprobe (Debian's ffmpeg) is missing: %v", err)
		}
		t.Skip("no ffprobe here")
	}
	mp4 := filepath.Join(dir, "r.mp4")
	v4 := runViewJSON(t, "r", "--replay", "--record", mp4, "--speed", "30", "--fps", "30", "--width", "160", "--height", "120", "--server", server)
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0", mp4).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", mp4, err)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("160,120,%d", v4.Frames); got != want || v4.Frames != len(f1) {
		t.Errorf("ffprobe %s: %q, want %q (and %d frames as in the PNGs)", mp4, got, want, len(f1))
	}
}

func TestViewErrors(t *testing.T) {
	eng := openEngine(t)
	server := eng.ClientURL()
	seqs := writeViewGraph(t, server, "e")
	png := filepath.Join(t.TempDir(), "x.png")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nope", "--png", png}, exitFailure, "the graph has no transactions"},
		{[]string{"e", "--png", png, "--as-of", "999999"}, exitFailure, "past the graph's last transaction"},
		{[]string{"e", "--png", png, "--as-of", "tomorrow"}, exitUsage, "want a stream sequence"},
		{[]string{"e", "--record", png}, exitUsage, "add --replay"},
		{[]string{"e", "--replay", "--from", strconv.FormatUint(seqs[3], 10), "--to", strconv.FormatUint(seqs[1], 10)}, exitUsage, "is after --to"},
		{[]string{"e", "--png", png, "--width", "5"}, exitUsage, "between 16 and 16384"},
		{[]string{"e", "--color-by", "size"}, exitUsage, "want category or component:TYPE"},
		{[]string{"e.x", "--png", png}, exitFailure, "only letters, digits"},
	} {
		r := runCLI(t, append(append([]string{"view"}, c.args...), "--server", server)...)
		if r.code() != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("cairn view %s: exit %d, stderr %q; want exit %d naming %q", strings.Join(c.args, " "), r.code(), r.stderr, c.code, c.want)
		}
	}
	// A window without a display says so, and how to do without one.
	t.Setenv("DISPLAY", "")
	r := runCLI(t, "view", "e", "--server", server)
	if r.code() != exitFailure || !strings.Contains(r.stderr, "DISPLAY is not set") || !strings.Contains(r.stderr, "--png") {
		t.Errorf("cairn view without a display: exit %d, stderr %q", r.code(), r.stderr)
	}
}

func TestViewWindow(t *testing.T) {
	if os.Getenv("DISPLAY") == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no DISPLAY: make viewer-test runs this test under xvfb-run")
		}
		t.Skip("no DISPLAY (run under xvfb-run -a)")
	}
	eng := openEngine(t)
	server := eng.ClientURL()
	seqs := writeViewGraph(t, server, "w")
	// Live: the window shows the graph, then a write made while it is open.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"view", "w", "--json", "--width", "320", "--height", "240", "--server", server}, &out, &errOut)
	}()
	time.Sleep(time.Second)
	last := lastSeq(t, mustRun(t, "node", "add", "w", "d", "--server", server))
	deadline := time.After(time.Minute)
	for {
		time.Sleep(3 * time.Second) // the window draws at 60 Hz: the write is on screen long before
		cancel()
		select {
		case err := <-done:
			if err != nil {
				needGL(t, result{stderr: errOut.String(), err: err})
				t.Fatalf("cairn view w: %v\nstderr: %s", err, errOut.String())
			}
		case <-deadline:
			t.Fatal("cairn view w did not end a minute after its context")
		}
		break
	}
	var v viewResult
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("cairn view w --json printed %q: %v", out.String(), err)
	}
	if v.Frames == 0 || v.Seq != last || v.Nodes != 4 {
		t.Errorf("live window: %+v; want frames drawn up to the write at seq %d made while it was open (4 nodes; graph written up to %d before)", v, last, seqs[len(seqs)-1])
	}
}
