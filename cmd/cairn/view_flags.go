package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const viewUsage = `Usage:
  cairn view <graph> [--as-of X] [--width W --height H] [client flags]
  cairn view <graph> --png FILE [--as-of X] [--width W --height H]
  cairn view <graph> --replay [--from X] [--to Y] [--speed N]
                     [--record FILE.mp4|DIR [--fps N]]

view shows a graph: nodes coloured by category (or by a component, with
--color-by component:TYPE) and sized by degree, laid out by a deterministic
ForceAtlas2 layout, with an overlay naming the stream seq and head CID of
what is on screen. It reads the graph's verified history from the event store
(which takes the admin role on an engine with users) and follows it live.

Without --png it opens a window (it needs a display: DISPLAY set, an X server
or Xvfb): drag to pan, scroll to zoom, click a node for its id, degree,
components and the seq they are as of; F fits the graph on screen; Q or Esc
quits. --png renders one picture headless (EGL, no display needed) and exits.

--replay animates the history between --from and --to, --speed transactions
a second; nodes fade in and out. In the window: space plays and pauses, the
right arrow steps one transaction, + and - change the speed, Home goes back
to the start, and a point typed on the terminal (a seq, a time or a CID,
then Enter) jumps there. --record exports the replay offline instead, at --fps frames a
second: FILE.mp4 through ffmpeg, or a directory of numbered PNGs. A replay
(and so a recording) is reproducible: the same history, flags and size give
the same frames, on any machine.

Flags:
  --as-of X             show the graph as of X instead of live
  --png FILE            render one picture to FILE and exit
  --width W, --height H size of the picture or window (default 1280x720)
  --replay              animate the history
  --from X, --to Y      replay from X (default: the start) to Y (default: the
                        head when the replay starts)
  --speed N             transactions a second in a replay (default 10)
  --record OUT          export the replay to OUT (FILE.mp4 or a directory)
  --fps N               frames a second of a recording (default 30)
  --color-by C          category (default) or component:TYPE
  --label-cell PX       label the largest node of each PX×PX screen cell
                        (default 96; 0: no labels)
  --relax N             lay the whole graph out again with N global
                        iterations once its history is folded (multilevel
                        above 50,000 nodes): default 60 for --png (about 3 s
                        for 68,000 nodes), 0 otherwise (each transaction is
                        laid out as it is folded)
  --keyframe-every N    save a position keyframe (the scene's slots, the
                        layout's state; layout/<graph>/<seq> in the object
                        store) every N transactions folded, and start from
                        the newest one at or before the point shown (or
                        before --from) instead of the first transaction
                        (default 1000; 0: neither); the picture is the same
  --no-layout           place nodes by a hash of their id instead of laying
                        them out
--json prints, when the command ends, what was shown: graph, seq, head,
nodes, edges, frames and the output file.
` + pointUsage

// defaultPNGRelax is --relax for --png: a picture is taken once, so it
// may take the time for a global layout (about 3 s for 68K nodes and 275K
// edges on two cores); a graph loaded in a few large transactions looks
// tangled without it.
const defaultPNGRelax = 60

// viewOptions is cairn view's command line, parsed.
type viewOptions struct {
	png           string
	asOf          string
	width, height int
	replay        bool
	from, to      string
	speed         float64
	record        string
	recordDir     bool // record is a directory of PNGs, not a video
	fps           int
	colorFlag     string // --color-by as typed
	colorBy       string // "" for categories, else a component type
	labelCell     int    // 0: no labels
	noLayout      bool
	relax         int    // global layout iterations after the fold (-1: the default)
	keyframeEvery uint64 // transactions between position keyframes; 0: none
}

// register adds view's own flags to fs.
func (o *viewOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.png, "png", "", "render one picture to this `file`")
	fs.StringVar(&o.asOf, "as-of", "", "show the graph as of this `point`")
	fs.IntVar(&o.width, "width", 1280, "picture or window `width` in pixels")
	fs.IntVar(&o.height, "height", 720, "picture or window `height` in pixels")
	fs.BoolVar(&o.replay, "replay", false, "animate the history")
	fs.StringVar(&o.from, "from", "", "replay from this `point`")
	fs.StringVar(&o.to, "to", "", "replay to this `point`")
	fs.Float64Var(&o.speed, "speed", 10, "transactions a `second` in a replay")
	fs.StringVar(&o.record, "record", "", "export the replay to this `file.mp4 or directory`")
	fs.IntVar(&o.fps, "fps", 30, "`frames` a second of a recording")
	fs.StringVar(&o.colorFlag, "color-by", "category", "colour nodes by `category or component:TYPE`")
	fs.IntVar(&o.labelCell, "label-cell", 96, "label the largest node of each `PX`×PX screen cell")
	fs.BoolVar(&o.noLayout, "no-layout", false, "place nodes by a hash of their id")
	fs.IntVar(&o.relax, "relax", -1, "global layout `iterations` once the history is folded")
	fs.Uint64Var(&o.keyframeEvery, "keyframe-every", 1000, "save a position keyframe every `N` transactions folded (0: none, and none used)")
}

// check validates the parsed options.
func (o *viewOptions) check() error {
	color := o.colorFlag
	bad := func(format string, a ...any) error {
		return &usageError{topic: "view", err: fmt.Errorf(format, a...)}
	}
	switch {
	case color == "" || color == "category":
		o.colorBy = ""
	case strings.HasPrefix(color, "component:") && len(color) > len("component:"):
		o.colorBy = strings.TrimPrefix(color, "component:")
	default:
		return bad("--color-by %q: want category or component:TYPE", color)
	}
	if o.width < 16 || o.height < 16 || o.width > 16384 || o.height > 16384 {
		return bad("--width %d --height %d: each must be between 16 and 16384 pixels", o.width, o.height)
	}
	if o.png != "" && o.replay {
		return bad("--png and --replay do not go together: --record exports a replay")
	}
	if o.record != "" && !o.replay {
		return bad("--record exports a replay: add --replay")
	}
	if !o.replay && (o.from != "" || o.to != "") {
		return bad("--from and --to bound a replay: add --replay (or use --as-of for one point)")
	}
	if o.replay && o.asOf != "" {
		return bad("--as-of and --replay do not go together: --to ends a replay")
	}
	if !(o.speed > 0 && o.speed <= 1e6) {
		return bad("--speed %v: want a number of transactions a second above 0", o.speed)
	}
	if o.fps < 1 || o.fps > 240 {
		return bad("--fps %d: want 1 to 240", o.fps)
	}
	if o.relax < -1 || o.relax > 10000 {
		return bad("--relax %d: want 0 to 10000 iterations", o.relax)
	}
	if o.relax > 0 && o.replay {
		return bad("--relax lays out a graph once its history is folded: a replay lays out each transaction as it comes")
	}
	if o.relax == -1 {
		o.relax = 0
		if o.png != "" {
			o.relax = defaultPNGRelax
		}
	}
	if o.labelCell != 0 && (o.labelCell < 8 || o.labelCell > 4096) {
		return bad("--label-cell %d: want 0 (no labels) or 8 to 4096 pixels", o.labelCell)
	}
	for _, p := range []struct{ flag, v string }{{"--as-of", o.asOf}, {"--from", o.from}, {"--to", o.to}} {
		if p.v == "" {
			continue
		}
		if _, err := parsePoint(p.flag, p.v); err != nil {
			return &usageError{topic: "view", err: err}
		}
	}
	if o.record != "" {
		switch {
		case strings.HasSuffix(strings.ToLower(o.record), ".mp4"):
			if o.width%2 != 0 || o.height%2 != 0 {
				return bad("--record %s: a video's --width and --height must be even (H.264 4:2:0), not %dx%d", o.record, o.width, o.height)
			}
			if _, err := os.Stat(filepath.Dir(o.record)); err != nil {
				return fmt.Errorf("view: --record %s: its directory: %w", o.record, err)
			}
		default:
			o.recordDir = true
		}
	}
	return nil
}
