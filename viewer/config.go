package viewer

import (
	"errors"
	"fmt"
	"log/slog"
)

// Config holds the renderer's tunables. Start from DefaultConfig.
type Config struct {
	// Background is the clear colour, RGBA8 with R in the low byte.
	// Default 0xff1a1410 (a dark blue-grey, opaque).
	Background uint32
	// EdgeAlpha scales the alpha of edges, which take their end nodes'
	// colours. Default 0.35.
	EdgeAlpha float32
	// LOD chooses what to leave out of a crowded frame; see LOD.
	LOD LOD
	// Labels draws node ids for the nodes of highest degree, one per
	// LabelCell×LabelCell pixel cell. Default true, 96 pixels, ids cut to
	// LabelChars (24) characters.
	Labels     bool
	LabelCell  int
	LabelChars int
	// LabelMinPx and LabelMaxPx bound a label's text size in pixels to
	// the em, which is otherwise half its node's width on screen (see
	// LabelPx). Default 11 and 20; at least 11, where the atlas's
	// distance field still reaches past the halo, and at most 96.
	LabelMinPx, LabelMaxPx float64
	// Overlay draws the graph, seq, counts and head CID in the top-left
	// corner, with the frame time when FrameTime is set and the time of
	// the frame's last transaction otherwise (a recording must not depend
	// on the clock). Default true, FrameTime true.
	Overlay   bool
	FrameTime bool
	// PickRadius is how many pixels around a click Pick searches for a
	// node. Default 3.
	PickRadius int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Background: 0xff1a1410,
		EdgeAlpha:  0.35,
		LOD:        DefaultLOD(),
		Labels:     true,
		LabelCell:  96,
		LabelChars: 24,
		LabelMinPx: 11,
		LabelMaxPx: 20,
		Overlay:    true,
		FrameTime:  true,
		PickRadius: 3,
	}
}

// Validate returns every problem of c, joined; nil when c is usable.
func (c Config) Validate() error {
	var errs []error
	if c.EdgeAlpha < 0 || c.EdgeAlpha > 1 {
		errs = append(errs, fmt.Errorf("EdgeAlpha %v outside [0, 1]", c.EdgeAlpha))
	}
	if c.LOD.EdgeBudget < 0 {
		errs = append(errs, fmt.Errorf("LOD.EdgeBudget %d negative", c.LOD.EdgeBudget))
	}
	if c.LOD.MaxEdgeShare <= 0 {
		errs = append(errs, fmt.Errorf("LOD.MaxEdgeShare %v not positive", c.LOD.MaxEdgeShare))
	}
	if c.Labels && c.LabelCell < 8 {
		errs = append(errs, fmt.Errorf("LabelCell %d below 8 pixels", c.LabelCell))
	}
	if c.Labels && c.LabelChars < 1 {
		errs = append(errs, fmt.Errorf("LabelChars %d below 1", c.LabelChars))
	}
	if c.Labels && !(c.LabelMinPx >= 11 && c.LabelMinPx <= c.LabelMaxPx && c.LabelMaxPx <= 96) {
		errs = append(errs, fmt.Errorf("LabelMinPx %v and LabelMaxPx %v: want 11 <= min <= max <= 96", c.LabelMinPx, c.LabelMaxPx))
	}
	if c.PickRadius < 0 || c.PickRadius > 32 {
		errs = append(errs, fmt.Errorf("PickRadius %d outside [0, 32]", c.PickRadius))
	}
	return errors.Join(errs...)
}

// Option changes how a renderer or window is made.
type Option func(*options)

type options struct {
	cfg Config
	log *slog.Logger
}

// WithConfig replaces DefaultConfig.
func WithConfig(c Config) Option { return func(o *options) { o.cfg = c } }

// WithLogger logs context creation and GL problems (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

func buildOptions(opts []Option) (options, error) {
	o := options{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	if err := o.cfg.Validate(); err != nil {
		return o, fmt.Errorf("viewer config: %w", err)
	}
	o.log = o.log.With("component", "viewer")
	return o, nil
}
