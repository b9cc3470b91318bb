//go:build viewer

package viewer

import (
	"context"
	"flag"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/viewer/scene"
)

var (
	benchRounds = flag.Int("rounds", 9, "interleaved rounds of the frame benchmarks")
	benchFrames = flag.Int("frames", 3, "frames of each kind per round")
)

// cpuNow is the process's user+system CPU time (llvmpipe's threads
// included).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// quantile of sorted xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// benchFrame times the full viewer frame (Draw with LOD, labels, overlay
// and the id attachment, then glFinish) against the bare draw of the same
// buffers (flat discs and lines, one attachment, then glFinish), in
// interleaved rounds (ABBA) in one process at 1280×720. It reports the
// median and p90 of the frame times and of the process CPU time per frame,
// and the ratios full/bare.
func benchFrame(b *testing.B, f *scene.Frame) {
	r := newHeadlessT(b, 1280, 720, DefaultConfig())
	r.Fit(f, 16)
	if err := r.Draw(f); err != nil { // uploads everything once
		b.Fatal(err)
	}
	f.Full = false
	full := func() error {
		if err := r.Draw(f); err != nil {
			return err
		}
		return r.Finish()
	}
	bare := func() error {
		return r.th.do(func() error { r.drawBare(f); return nil })
	}
	bareFinish := func() error {
		if err := bare(); err != nil {
			return err
		}
		return r.Finish()
	}
	// Warm both paths.
	for _, fn := range []func() error{full, bareFinish} {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	var fullMs, bareMs, fullCPU, bareCPU []float64
	run := func(fn func() error, wall, cpu *[]float64) {
		for i := 0; i < *benchFrames; i++ {
			c0, t0 := cpuNow(), time.Now()
			if err := fn(); err != nil {
				b.Fatal(err)
			}
			*wall = append(*wall, float64(time.Since(t0).Microseconds())/1000)
			*cpu = append(*cpu, float64((cpuNow()-c0).Microseconds())/1000)
		}
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for round := 0; round < *benchRounds; round++ {
			if round%2 == 0 {
				run(bareFinish, &bareMs, &bareCPU)
				run(full, &fullMs, &fullCPU)
			} else {
				run(full, &fullMs, &fullCPU)
				run(bareFinish, &bareMs, &bareCPU)
			}
		}
	}
	b.StopTimer()
	s := r.Stats()
	b.ReportMetric(quantile(fullMs, 0.5), "full-ms")
	b.ReportMetric(quantile(fullMs, 0.9), "full-p90-ms")
	b.ReportMetric(quantile(bareMs, 0.5), "bare-ms")
	b.ReportMetric(quantile(bareMs, 0.9), "bare-p90-ms")
	b.ReportMetric(quantile(fullMs, 0.5)/quantile(bareMs, 0.5), "ratio")
	b.ReportMetric(quantile(fullMs, 0.9)/quantile(bareMs, 0.9), "ratio-p90")
	b.ReportMetric(quantile(fullCPU, 0.5), "full-cpu-ms")
	b.ReportMetric(quantile(bareCPU, 0.5), "bare-cpu-ms")
	b.ReportMetric(float64(s.Edges), "edges-drawn")
	b.ReportMetric(float64(s.Labels), "labels")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkFrame10KNodes20KEdges(b *testing.B) {
	benchFrame(b, randomScene(10_000, 20_000, true, 1))
}

func BenchmarkFrame100KNodes(b *testing.B) {
	benchFrame(b, randomScene(100_000, 0, true, 1))
}

func BenchmarkFrame100KNodes200KShortEdges(b *testing.B) {
	benchFrame(b, randomScene(100_000, 200_000, true, 1))
}

// BenchmarkExport100K200K renders 100K nodes and 200K short edges at
// 1280×720 with 1 % of the nodes moving each frame (a dirty-range upload),
// reads each frame back and pipes it to ffmpeg (libx264) as an offline
// recording does; it reports frames per second.
func BenchmarkExport100K200K(b *testing.B) {
	const frames = 24
	f := randomScene(100_000, 200_000, true, 1)
	r := newHeadlessT(b, 1280, 720, DefaultConfig())
	r.Fit(f, 16)
	rec, err := NewRecorder(context.Background(), filepath.Join(b.TempDir(), "export.mp4"), 1280, 720, 24)
	if err != nil {
		missing(b, "no ffmpeg for the export benchmark", err)
	}
	img, err := r.ReadImage(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := time.Now()
	c0 := cpuNow()
	total := 0
	for n := 0; n < b.N; n++ {
		for i := 0; i < frames; i++ {
			lo := (i * 1000) % (f.Nodes - 1000)
			for s := lo; s < lo+1000; s++ {
				f.Pos[2*s] += 0.5
			}
			f.PosDirty = append(f.PosDirty[:0], scene.Range{Lo: uint32(lo), Hi: uint32(lo + 1000)})
			if err := r.Draw(f); err != nil {
				b.Fatal(err)
			}
			f.Full = false
			if img, err = r.ReadImage(img); err != nil {
				b.Fatal(err)
			}
			if err := rec.WriteFrame(img); err != nil {
				b.Fatal(err)
			}
			total++
		}
	}
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
	el := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(total)/el.Seconds(), "frames/s")
	b.ReportMetric(float64((cpuNow()-c0).Microseconds())/1000/float64(total), "cpu-ms/frame")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPick100K measures a click: the first Pick after a Draw of 100K
// nodes, which fills the id attachment and reads a few pixels back.
func BenchmarkPick100K(b *testing.B) {
	f := randomScene(100_000, 200_000, true, 1)
	r := newHeadlessT(b, 1280, 720, DefaultConfig())
	r.Fit(f, 16)
	if err := r.Draw(f); err != nil {
		b.Fatal(err)
	}
	if err := r.Finish(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		_ = r.th.do(func() error { r.idStale = true; return nil })
		if _, _, err := r.Pick(640, 360); err != nil {
			b.Fatal(err)
		}
	}
}
