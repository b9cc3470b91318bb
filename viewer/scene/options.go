package scene

// Option is an optional behaviour of a Scene.
type Option func(*options)

type options struct {
	colorComponent string
	fadeFrames     int
	maxSize        float32
	rangeGap       uint32
	maxRanges      int
}

func defaultOptions() options {
	return options{maxSize: DefaultMaxSize, rangeGap: DefaultRangeGap, maxRanges: DefaultMaxRanges}
}

// Defaults of the options.
const (
	// DefaultMaxSize caps a node's diameter, in pixels at zoom 1.
	DefaultMaxSize = 24
	// DefaultRangeGap is how many clean slots may lie between two dirty
	// ones before they are uploaded as two ranges rather than one.
	DefaultRangeGap = 16
	// DefaultMaxRanges is the most dirty ranges per buffer in a Frame;
	// more are merged into wider spans.
	DefaultMaxRanges = 64
)

// WithColorComponent colours each node by the value of its component of
// type typ (hashed into the palette) instead of by its first category. A
// node without such a component keeps its category's colour.
func WithColorComponent(typ string) Option {
	return func(o *options) { o.colorComponent = typ }
}

// WithFade makes nodes fade in when added and out when removed over frames
// calls of Scene.Advance (for replays). 0, the default, shows and hides
// them at once. Fades never change slots: a removed node's slot is free at
// once, and a node added to it stops the fade.
func WithFade(frames int) Option {
	return func(o *options) { o.fadeFrames = max(frames, 0) }
}

// WithMaxSize caps a node's diameter at px pixels (default DefaultMaxSize).
// A node's diameter is 4 + 2·log2(1 + degree), capped.
func WithMaxSize(px float32) Option {
	return func(o *options) {
		if px > 0 {
			o.maxSize = px
		}
	}
}

// WithRanges sets how dirty slots become upload ranges: runs at most gap
// clean slots apart merge, and at most maxRanges ranges per buffer are
// handed over (defaults DefaultRangeGap and DefaultMaxRanges).
func WithRanges(gap uint32, maxRanges int) Option {
	return func(o *options) {
		o.rangeGap = gap
		if maxRanges > 0 {
			o.maxRanges = maxRanges
		}
	}
}
