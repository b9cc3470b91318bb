package viewer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// WritePNG writes img to path as a PNG (fast compression).
func WritePNG(path string, img image.Image) error {
	// A temporary file beside it, renamed over path once whole: path
	// never holds half a picture, whatever interrupts the write.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return fmt.Errorf("write png %s: %w", path, err)
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(f, img); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write png %s: %w", path, err)
	}
	return nil
}

// Recorder pipes raw RGBA frames to an ffmpeg child that encodes them
// (H.264 in an MP4 by default). Frames must all be Width×Height.
type Recorder struct {
	Width, Height int
	path, tmp     string // the video, and where ffmpeg writes it until Close
	cmd           *exec.Cmd
	in            io.WriteCloser
	buf           *bufio.Writer
	stderr        bytes.Buffer
	frames        int
	err           error
	closed        bool // Close or Abort ran
}

// NewRecorder starts `ffmpeg` writing path from width×height frames at fps
// frames a second. The container follows path's extension; the codec is
// libx264 (yuv420p, preset veryfast) unless args replaces the output
// options. It returns an error wrapping ErrRecorder when ffmpeg is not on
// PATH or cannot start. Cancelling ctx kills the child.
func NewRecorder(ctx context.Context, path string, width, height, fps int, args ...string) (*Recorder, error) {
	if width <= 0 || height <= 0 || width%2 != 0 || height%2 != 0 {
		return nil, fmt.Errorf("%w: frame size %dx%d: both must be even and positive", ErrRecorder, width, height)
	}
	if fps <= 0 {
		return nil, fmt.Errorf("%w: fps %d not positive", ErrRecorder, fps)
	}
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, fmt.Errorf("%w: ffmpeg not found on PATH (apt-get install ffmpeg): %v", ErrRecorder, err)
	}
	if len(args) == 0 {
		args = []string{"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"}
	}
	full := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "rawvideo", "-pix_fmt", "rgba", "-s", strconv.Itoa(width) + "x" + strconv.Itoa(height),
		"-r", strconv.Itoa(fps), "-i", "-"}
	full = append(full, args...)
	// ffmpeg writes beside path, under a name with the same extension
	// (its container), renamed over path by Close: path is never half a
	// video.
	tmp := filepath.Join(filepath.Dir(path), ".partial-"+strconv.Itoa(os.Getpid())+"-"+filepath.Base(path))
	full = append(full, tmp)
	r := &Recorder{Width: width, Height: height, path: path, tmp: tmp}
	r.cmd = exec.CommandContext(ctx, bin, full...)
	r.cmd.Stderr = &r.stderr
	if r.in, err = r.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecorder, err)
	}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start ffmpeg: %v", ErrRecorder, err)
	}
	r.buf = bufio.NewWriterSize(r.in, 1<<20)
	return r, nil
}

// WriteFrame sends one frame. After a failure every later call returns the
// same error; Close adds what ffmpeg said.
func (r *Recorder) WriteFrame(img *image.RGBA) error {
	if r.err != nil {
		return r.err
	}
	b := img.Bounds()
	if b.Dx() != r.Width || b.Dy() != r.Height {
		return fmt.Errorf("%w: frame %d is %dx%d, want %dx%d", ErrRecorder, r.frames, b.Dx(), b.Dy(), r.Width, r.Height)
	}
	for y := 0; y < r.Height; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+4*r.Width]
		if _, err := r.buf.Write(row); err != nil {
			r.err = fmt.Errorf("%w: frame %d: %v", ErrRecorder, r.frames, err)
			return r.err
		}
	}
	r.frames++
	return nil
}

// Frames is how many frames were written.
func (r *Recorder) Frames() int { return r.frames }

// Close flushes the last frames, ends ffmpeg's input, waits for it to
// finish the file and moves the file to the recording's path. It returns
// ffmpeg's error output when it failed (and then leaves no file).
func (r *Recorder) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	ferr := r.buf.Flush()
	cerr := r.in.Close()
	werr := r.cmd.Wait()
	if r.err != nil {
		return fmt.Errorf("%w (ffmpeg: %s)", r.err, r.stderrTail())
	}
	if err := errors.Join(ferr, cerr, werr); err != nil {
		_ = os.Remove(r.tmp)
		return fmt.Errorf("%w: ffmpeg after %d frames: %v: %s", ErrRecorder, r.frames, err, r.stderrTail())
	}
	if err := os.Rename(r.tmp, r.path); err != nil {
		_ = os.Remove(r.tmp)
		return fmt.Errorf("%w: %v", ErrRecorder, err)
	}
	return nil
}

// Abort stops ffmpeg and removes what it wrote: nothing is left at the
// recording's path. Close after Abort does nothing more.
func (r *Recorder) Abort() {
	if r.closed {
		return
	}
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
	}
	_ = r.in.Close()
	_ = r.cmd.Wait()
	_ = os.Remove(r.tmp)
	r.closed = true
}

func (r *Recorder) stderrTail() string {
	b := bytes.TrimSpace(r.stderr.Bytes())
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return string(b)
}
