//go:build viewer

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cairn-graph/cairn/actors"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/viewer"
	"github.com/cairn-graph/cairn/viewer/layout"
	"github.com/cairn-graph/cairn/viewer/scene"
)

// viewFadeFrames is how many frames a node of a replay takes to fade in or
// out.
const viewFadeFrames = 8

// runView is cairn view: it opens the event store, starts a render actor
// on the graph and shows its Frames in a window, in a PNG or in a
// recording.
func runView(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o viewOptions
	r, octx, done, err := openGraphReader(ctx, "view", args, o.register)
	if err != nil {
		return err
	}
	defer done()
	if err := o.check(); err != nil {
		return err
	}
	v := &viewRun{o: o, r: r, stdout: stdout, stderr: stderr}
	if err := v.resolve(octx); err != nil {
		return err
	}
	v.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}))
	defer v.system.Shutdown()
	switch {
	case o.png != "":
		err = v.png(ctx)
	case o.record != "":
		err = v.recordReplay(ctx)
	default:
		err = v.window(ctx)
	}
	if err != nil {
		return err
	}
	if r.json {
		return writeJSON(stdout, v.result)
	}
	return nil
}

// viewResult is what --json prints when view ends.
type viewResult struct {
	Graph     string  `json:"graph"`
	Seq       uint64  `json:"seq"`
	Head      string  `json:"head"`
	Nodes     int     `json:"nodes"`
	Edges     int     `json:"edges"`
	Frames    int     `json:"frames"`
	Out       string  `json:"out,omitempty"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	FrameMS   float64 `json:"frame_ms,omitempty"`
	LayoutSeq uint64  `json:"layout_seq"`
}

// viewRun is one cairn view.
type viewRun struct {
	o              viewOptions
	r              *graphReader
	stdout, stderr io.Writer
	system         *actor.ActorSystem

	head      uint64 // the graph's last seq when view started
	stopAt    uint64 // --as-of, --to, or 0 (live)
	fromSeq   uint64 // --from (replay), or where a jump goes
	firstFrom uint64 // --from as typed, for Home
	result    viewResult
	outputMu  sync.Mutex
}

// resolve turns the points of the command line into stream sequences.
func (v *viewRun) resolve(ctx context.Context) error {
	g := v.r.graph
	head, err := v.r.store.LastSeq(ctx, g)
	if err != nil {
		return fmt.Errorf("view %s: %w", g, err)
	}
	if head == 0 {
		return fmt.Errorf("view %s: the graph has no transactions on %s (is the name right? cairn query stats %s)", g, v.r.server, g)
	}
	v.head = head
	if v.o.asOf != "" {
		if v.stopAt, err = v.seqOf(ctx, "--as-of", v.o.asOf); err != nil {
			return err
		}
	}
	if v.o.replay {
		v.stopAt = head
		if v.o.to != "" {
			if v.stopAt, err = v.seqOf(ctx, "--to", v.o.to); err != nil {
				return err
			}
		}
		if v.o.from != "" {
			if v.fromSeq, err = v.seqOf(ctx, "--from", v.o.from); err != nil {
				return err
			}
			if v.fromSeq > v.stopAt {
				return &usageError{topic: "view", err: fmt.Errorf("--from (seq %d) is after --to (seq %d)", v.fromSeq, v.stopAt)}
			}
		}
	}
	if v.o.png != "" && v.stopAt == 0 {
		v.stopAt = head
	}
	v.result = viewResult{Graph: g, Width: v.o.width, Height: v.o.height}
	return nil
}

// seqOf resolves a point of the graph's history typed as flag to a stream
// sequence: a seq (at most the head when view started), a time or an
// event CID.
func (v *viewRun) seqOf(ctx context.Context, flag, text string) (uint64, error) {
	g, head := v.r.graph, v.head
	p, err := parsePoint(flag, text)
	if err != nil {
		return 0, &usageError{topic: "view", err: err}
	}
	switch {
	case p.isSeq:
		if p.seq == 0 {
			return 0, &usageError{topic: "view", err: fmt.Errorf("%s 0: sequences start at 1", flag)}
		}
		if p.seq > head {
			return 0, fmt.Errorf("view %s: %s %d is past the graph's last transaction (seq %d)", g, flag, p.seq, head)
		}
		return p.seq, nil
	case p.isTime:
		seq, err := v.r.store.SeqAtTime(ctx, g, p.at)
		if err != nil {
			return 0, fmt.Errorf("view %s: %s %s: %w", g, flag, text, err)
		}
		if seq == 0 {
			return 0, fmt.Errorf("view %s: %s %s is before the graph's first transaction", g, flag, text)
		}
		return seq, nil
	default:
		seq, _, err := v.r.store.FindEvent(ctx, g, p.cid)
		if err != nil {
			return 0, fmt.Errorf("view %s: %s %s: %w", g, flag, text, err)
		}
		return seq, nil
	}
}

// config is the render actor's configuration for this view; pace is the
// transactions a Frame of a replay folds (0: as fast as they come).
func (v *viewRun) config(pace float64) actors.RenderConfig {
	cfg := actors.RenderConfig{
		Graph:      v.r.graph,
		Source:     v.r.store,
		Snapshots:  v.r.snaps,
		StopAt:     v.stopAt,
		TxPerFrame: pace,
		PaceFrom:   v.fromSeq,
		// Position keyframes only: they hold what a fold from the first
		// transaction gives, so pictures and replays stay reproducible.
		FromSnapshot: v.o.keyframeEvery > 0 && !v.o.noLayout,
		LayoutOnly:   true,
	}
	if !v.o.noLayout {
		cfg.LayoutEvery = v.o.keyframeEvery
	}
	if !v.o.noLayout {
		seed := layout.SeedFor(v.r.graph)
		cfg.NewPlacer = func() scene.Placer {
			l, err := layout.New(layout.DefaultParams(), seed)
			if err != nil {
				panic(err) // the default parameters are valid
			}
			return l
		}
	}
	if v.o.colorBy != "" {
		cfg.Scene = append(cfg.Scene, scene.WithColorComponent(v.o.colorBy))
	}
	if v.o.replay {
		cfg.Scene = append(cfg.Scene, scene.WithFade(viewFadeFrames))
	}
	return cfg
}

// viewerConfig is the renderer's configuration for this view.
func (v *viewRun) viewerConfig() viewer.Config {
	c := viewer.DefaultConfig()
	c.Labels = v.o.labelCell > 0
	if c.Labels {
		c.LabelCell = v.o.labelCell
	}
	// A picture or a recording must be a pure function of the history:
	// it shows the transactions' time, not the clock's frame time.
	c.FrameTime = v.o.png == "" && v.o.record == ""
	return c
}

// note prints a line for a person (to stderr with --json, so that stdout
// stays JSON).
func (v *viewRun) note(format string, a ...any) {
	v.outputMu.Lock()
	defer v.outputMu.Unlock()
	w := v.stdout
	if v.r.json {
		w = v.stderr
	}
	fmt.Fprintf(w, format+"\n", a...)
}

// start starts a render actor with cfg publishing to a new Exchange.
func (v *viewRun) start(cfg actors.RenderConfig) (*actors.Render, *scene.Exchange, error) {
	x := scene.NewExchange()
	rd, err := actors.StartRender(v.system.Root, x, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("view %s: %w", v.r.graph, err)
	}
	return rd, x, nil
}

// stop stops a render actor, and returns why it had stopped by itself.
func stopRender(rd *actors.Render) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := rd.Err()
	if serr := rd.Stop(ctx); err == nil && serr != nil {
		err = serr
	}
	return err
}

// nextFrame waits until x holds a Frame the GL side has not taken and
// acquires it (a credit for the next); it returns nil when done is closed
// first (nil: never).
func nextFrame(ctx context.Context, rd *actors.Render, x *scene.Exchange, done <-chan struct{}) (*scene.Frame, error) {
	for {
		if f := x.Acquire(); f != nil {
			return f, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-rd.Done():
			if err := rd.Err(); err != nil {
				return nil, err
			}
			return nil, errors.New("render stopped")
		case <-done:
			return nil, nil
		case <-x.Published():
		}
	}
}

// waitReached acquires Frames until the render reached its stop, and
// returns the Frame that holds it: the next one, or the last one taken.
func waitReached(ctx context.Context, rd *actors.Render, x *scene.Exchange) (*scene.Frame, error) {
	var last *scene.Frame
	for {
		f, err := nextFrame(ctx, rd, x, rd.Reached())
		switch {
		case err != nil:
			return nil, err
		case f != nil:
			last = f
			continue
		}
		if f = x.Acquire(); f == nil {
			f = last
		}
		if f == nil {
			return nextFrame(ctx, rd, x, nil)
		}
		return f, nil
	}
}

// png renders the graph as of stopAt into one picture.
func (v *viewRun) png(ctx context.Context) error {
	start := time.Now()
	rd, x, err := v.start(v.config(0))
	if err != nil {
		return err
	}
	f, err := waitReached(ctx, rd, x)
	if err == nil && v.o.relax > 0 && !v.o.noLayout {
		if err = rd.Relax(ctx, v.o.relax); err == nil {
			f, err = nextFrame(ctx, rd, x, nil)
		}
	}
	if err != nil {
		_ = stopRender(rd)
		return fmt.Errorf("view %s: %w", v.r.graph, err)
	}
	folded := time.Since(start)
	rend, err := viewer.NewHeadless(v.o.width, v.o.height, viewer.WithConfig(v.viewerConfig()))
	if err != nil {
		_ = stopRender(rd)
		return fmt.Errorf("view %s: %w", v.r.graph, err)
	}
	defer rend.Close()
	t0 := time.Now()
	err = rend.Draw(f)
	if err == nil {
		err = rend.Finish()
	}
	drawn := time.Since(t0)
	var img *image.RGBA
	if err == nil {
		img, err = rend.ReadImage(nil)
	}
	if err == nil {
		err = viewer.WritePNG(v.o.png, img)
	}
	if serr := stopRender(rd); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("view %s: %w", v.r.graph, err)
	}
	v.fill(f, 1)
	v.result.Out, v.result.FrameMS = v.o.png, float64(drawn.Microseconds())/1000
	v.note("wrote %s: %s as of seq %d (head %s), %d nodes, %d edges, %dx%d; folded and laid out in %s, drawn in %s",
		v.o.png, v.r.graph, f.Seq, f.Head, f.LiveNodes, f.LiveEdges, v.o.width, v.o.height,
		folded.Round(time.Millisecond), drawn.Round(time.Millisecond))
	return nil
}

// fill records f in the result.
func (v *viewRun) fill(f *scene.Frame, frames int) {
	v.result.Seq, v.result.Head = f.Seq, f.Head
	v.result.Nodes, v.result.Edges = f.LiveNodes, f.LiveEdges
	v.result.LayoutSeq = f.LayoutSeq
	v.result.Frames = frames
}

// recordReplay exports the replay offline: one Frame per frame of the
// recording, the camera fitted to each Frame's bounds, so the frames are
// a pure function of the history and the flags.
func (v *viewRun) recordReplay(ctx context.Context) error {
	rend, err := viewer.NewHeadless(v.o.width, v.o.height, viewer.WithConfig(v.viewerConfig()))
	if err != nil {
		return fmt.Errorf("view %s: %w", v.r.graph, err)
	}
	defer rend.Close()
	var rec *viewer.Recorder
	if v.o.recordDir {
		if err := os.MkdirAll(v.o.record, 0o755); err != nil {
			return fmt.Errorf("view: --record %s: %w", v.o.record, err)
		}
	} else {
		rec, err = viewer.NewRecorder(ctx, v.o.record, v.o.width, v.o.height, v.o.fps)
		if err != nil {
			return fmt.Errorf("view: --record %s: %w", v.o.record, err)
		}
		// Interrupted or failed, the recording leaves no file behind;
		// Close makes it whole.
		defer rec.Abort()
	}
	rd, x, err := v.start(v.config(v.o.speed / float64(v.o.fps))) // transactions a frame
	if err != nil {
		return err
	}
	defer stopRender(rd)
	var (
		img    *image.RGBA
		cam    viewCamera
		frames int
		last   *scene.Frame
		every  = time.Now()
	)
	for {
		f := x.Acquire()
		if f == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-rd.Done():
				if err := rd.Err(); err != nil {
					return fmt.Errorf("view %s: %w", v.r.graph, err)
				}
				if f = x.Acquire(); f == nil {
					goto end
				}
			case <-rd.Finished():
				// The last Frame is published: drawn already, or
				// still to acquire.
				if f = x.Acquire(); f == nil {
					goto end
				}
			case <-x.Published():
				continue
			}
		}
		last = f
		rend.SetCamera(cam.follow(f, v.o.width, v.o.height))
		if err := rend.Draw(f); err != nil {
			return fmt.Errorf("view %s: frame %d: %w", v.r.graph, frames, err)
		}
		if img, err = rend.ReadImage(img); err != nil {
			return fmt.Errorf("view %s: frame %d: %w", v.r.graph, frames, err)
		}
		if rec != nil {
			err = rec.WriteFrame(img)
		} else {
			err = viewer.WritePNG(filepath.Join(v.o.record, fmt.Sprintf("frame-%06d.png", frames)), img)
		}
		if err != nil {
			if ctx.Err() != nil && rec != nil { // ffmpeg was stopped with us
				return fmt.Errorf("view: --record %s: interrupted at frame %d: %w (no video written)", v.o.record, frames, ctx.Err())
			}
			return fmt.Errorf("view: --record %s: frame %d: %w", v.o.record, frames, err)
		}
		frames++
		if time.Since(every) > 2*time.Second {
			every = time.Now()
			v.note("recording: frame %d, seq %d of %d", frames, f.Seq, v.stopAt)
		}
	}
end:
	if rec != nil {
		if err := rec.Close(); err != nil {
			return fmt.Errorf("view: --record %s: %w", v.o.record, err)
		}
	}
	if last == nil {
		return fmt.Errorf("view %s: the replay drew no frame", v.r.graph)
	}
	v.fill(last, frames)
	v.result.Out = v.o.record
	from := "its start"
	if v.fromSeq > 0 {
		from = fmt.Sprintf("seq %d", v.fromSeq)
	}
	v.note("wrote %s: %d frames at %d a second, %s from %s to seq %d (head %s), %d nodes, %d edges at the end",
		v.o.record, frames, v.o.fps, v.r.graph, from, last.Seq, last.Head, last.LiveNodes, last.LiveEdges)
	return nil
}

// viewCamera fits the camera to each Frame of a replay, growing at once
// and shrinking slowly, so that a recording neither crops new nodes nor
// jumps when one leaves. It is a pure function of the Frames.
type viewCamera struct {
	b  viewer.Bounds
	ok bool
}

// follow returns the camera for f.
func (c *viewCamera) follow(f *scene.Frame, w, h int) viewer.Camera {
	b, ok := viewer.FrameBounds(f)
	switch {
	case !ok && !c.ok:
		return viewer.FitCamera(viewer.Bounds{MinX: -1, MinY: -1, MaxX: 1, MaxY: 1}, w, h, 24)
	case !ok:
	case !c.ok:
		c.b, c.ok = b, true
	default:
		const shrink = 0.1 // of the gap, per frame
		ease := func(cur, want float64, grow bool) float64 {
			if grow {
				return want
			}
			return cur + (want-cur)*shrink
		}
		c.b.MinX = ease(c.b.MinX, b.MinX, b.MinX < c.b.MinX)
		c.b.MinY = ease(c.b.MinY, b.MinY, b.MinY < c.b.MinY)
		c.b.MaxX = ease(c.b.MaxX, b.MaxX, b.MaxX > c.b.MaxX)
		c.b.MaxY = ease(c.b.MaxY, b.MaxY, b.MaxY > c.b.MaxY)
	}
	return viewer.FitCamera(c.b, w, h, 24)
}

// window shows the graph in a window: live, as of a point, or replayed.
func (v *viewRun) window(ctx context.Context) error {
	var (
		mu     sync.Mutex
		cur    *scene.Frame // the Frame on screen; the GL side's until the next Acquire
		paused bool
		speed  = v.o.speed
		step   int
		home   bool
		quit   bool
		fit    bool
	)
	const displayHz = 60
	perFrame := 0.0
	if v.o.replay {
		perFrame = 1 // one transaction per acquired Frame; the pace is set by acquiring
		if speed > displayHz {
			perFrame = math.Ceil(speed / displayHz)
		}
	}
	in := viewer.Input{
		Key: func(k viewer.Key, _ viewer.Mod) {
			mu.Lock()
			defer mu.Unlock()
			switch k {
			case viewer.KeyEscape, 'Q':
				quit = true
			case 'F':
				fit = true
			case viewer.KeySpace:
				paused = !paused
			case viewer.KeyRight:
				paused, step = true, step+1
			case '+', '=':
				speed = min(speed*2, 1e6)
			case '-':
				speed = max(speed/2, 0.125)
			case viewer.KeyHome:
				home = true
			}
		},
		Pick: func(slot uint32, ok bool, _, _ int) {
			mu.Lock()
			f := cur
			mu.Unlock()
			if !ok || f == nil || int(slot) >= f.Nodes || f.ID[slot] == "" {
				return
			}
			go v.describe(ctx, f.ID[slot], f.Deg[slot], f.Seq, f.Head)
		},
	}
	title := fmt.Sprintf("cairn view %s", v.r.graph)
	w, err := viewer.OpenWindow(title, v.o.width, v.o.height, in, viewer.WithConfig(v.viewerConfig()))
	if err != nil {
		return fmt.Errorf("view %s: %w (cairn view --png FILE renders without a display)", v.r.graph, err)
	}
	defer w.Close()
	rd, x, err := v.start(v.config(perFrame))
	if err != nil {
		return err
	}
	defer func() { _ = stopRender(rd) }()
	jumps := make(chan uint64, 1)
	if v.o.replay {
		v.firstFrom = v.fromSeq
		go v.readJumps(ctx, jumps)
	}
	frames := 0
	lastTake := time.Now()
	tick := time.NewTicker(time.Second / displayHz)
	defer tick.Stop()
	for !w.ShouldClose() {
		if err := w.PollEvents(); err != nil {
			return fmt.Errorf("view %s: %w", v.r.graph, err)
		}
		mu.Lock()
		if quit {
			mu.Unlock()
			break
		}
		take := true
		if v.o.replay {
			due := !paused && time.Since(lastTake).Seconds() >= perFrame/speed
			take = due || step > 0
			if step > 0 {
				step--
			}
		}
		restart := home
		if home {
			v.fromSeq = v.firstFrom
		}
		home = false
		select {
		case seq := <-jumps:
			restart, v.fromSeq = true, seq+1
			v.note("jumping to seq %d", seq)
		default:
		}
		doFit := fit
		fit = false
		mu.Unlock()
		if restart {
			_ = stopRender(rd)
			if rd, x, err = v.start(v.config(perFrame)); err != nil {
				return err
			}
			mu.Lock()
			cur = nil
			mu.Unlock()
		}
		if take {
			if f := x.Acquire(); f != nil {
				mu.Lock()
				cur = f
				mu.Unlock()
				lastTake = time.Now()
			}
		}
		select {
		case <-rd.Done():
			if err := rd.Err(); err != nil {
				return fmt.Errorf("view %s: %w", v.r.graph, err)
			}
		default:
		}
		if cur != nil {
			if doFit {
				w.Fit(cur, 24)
			}
			if err := w.Draw(cur); err != nil {
				return fmt.Errorf("view %s: %w", v.r.graph, err)
			}
			frames++
		}
		select {
		case <-ctx.Done():
			goto end
		case <-tick.C:
		}
	}
end:
	if cur != nil {
		v.fill(cur, frames)
	}
	return nil
}

// readJumps reads points typed on stdin during a replay in a window and
// sends their sequences: the replay jumps there.
func (v *viewRun) readJumps(ctx context.Context, jumps chan<- uint64) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		seq, err := v.seqOf(ctx, "jump", text)
		if err != nil {
			v.note("cannot jump: %v", err)
			continue
		}
		select {
		case jumps <- seq:
		case <-ctx.Done():
			return
		}
	}
}

// describe prints what a click picked: the node's id and degree as drawn,
// and its components as of the Frame's seq, asked of the engine.
func (v *viewRun) describe(ctx context.Context, id string, deg uint32, seq uint64, head string) {
	req := &cairnv1.QueryRequest{GraphId: v.r.graph,
		AsOf:  &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: seq}},
		Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: id}}}
	var comps, cats []string
	rep, err := v.r.query(ctx, req)
	if err == nil && rep.GetError() == nil {
		for _, c := range rep.GetNode().GetComponents() {
			comps = append(comps, c.GetType()+"="+string(c.GetValue()))
		}
		cats = rep.GetNode().GetCategories()
	}
	if v.r.json {
		_ = writeJSON(v.stdout, map[string]any{"picked": id, "degree": deg, "seq": seq, "head": head, "categories": cats, "components": comps})
		return
	}
	line := fmt.Sprintf("node %s: degree %d, as of seq %d (head %s)", id, deg, seq, head)
	switch {
	case err != nil:
		line += fmt.Sprintf("; components unknown: %v", err)
	case rep.GetError() != nil:
		line += fmt.Sprintf("; components unknown: %s", rep.GetError().GetMessage())
	default:
		if len(cats) > 0 {
			line += "; categories " + strings.Join(cats, ", ")
		}
		if len(comps) > 0 {
			line += "; " + strings.Join(comps, ", ")
		}
	}
	v.note("%s", line)
}
