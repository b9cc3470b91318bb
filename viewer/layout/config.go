package layout

import (
	"errors"
	"fmt"
	"math"
)

// Params are the layout's tunables. Positions are a pure function of the
// calls made, the Params and the seed, so every viewer of a graph that
// wants the same picture must use the same Params.
type Params struct {
	// Theta is the Barnes–Hut opening criterion: a cell whose width is under
	// Theta times its distance counts as one body. Larger is faster and
	// coarser. Default 1.2.
	Theta float64
	// Repulsion is ForceAtlas2's kr: two nodes of masses m1, m2 (mass =
	// degree + 1) at distance d repel with kr·m1·m2/d. Default 2.
	Repulsion float64
	// Gravity is ForceAtlas2's kg: every node of mass m at distance d from
	// the origin is pulled to it with kg·m·d (ForceAtlas2's strong gravity)
	// or, when WeakGravity is set, with kg·m. Default 0.1.
	Gravity float64
	// WeakGravity selects ForceAtlas2's plain gravity kg·m, constant in the
	// distance. It lets the repulsion of a large component push small
	// components and isolated nodes out to a ring far away (at about
	// kr·M/kg for a component of mass M), so that a picture framed on every
	// node shows the graph as a dot: keep it off for pictures. Under the
	// default strong gravity everything settles within about √(kr·M/kg) of
	// the origin, and isolated nodes beside the rest. Default false.
	WeakGravity bool
	// Tolerance is ForceAtlas2's jitter tolerance: higher moves faster and
	// swings more. Default 1.
	Tolerance float64
	// MaxStep caps how far one node moves in one tick of EndTx, as a share
	// of the transaction's length scale (the mean length of the edges at its
	// hot set's older nodes, 1 when there are none; see EndTx). Default 0.1.
	MaxStep float64
	// Jitter is the radius of the hashed offset a new node gets around its
	// placed neighbours' barycentre (or around the origin when it has
	// none), as a share of the transaction's length scale; in FirstLayout,
	// of the coarser level's mean edge length. Default 0.25.
	Jitter float64
	// Ticks is how many ticks EndTx runs on a transaction's hot set.
	// Default 12.
	Ticks int
	// HotCap caps the hot set of one transaction: its changed nodes in slot
	// order first, then their neighbours, then the neighbours' neighbours,
	// each ring gathered in slot and edge slot order and cut when the set
	// holds HotCap nodes (or after 16 × HotCap edges per ring). Nodes
	// beyond it stay put (new ones are still placed). Default 2048.
	HotCap int
	// HopDamp scales the step of a hot node one hop from a changed node;
	// two hops away the step is scaled by HopDamp². Default 0.5.
	HopDamp float64
	// MultilevelAbove is the live node count above which FirstLayout
	// coarsens the graph first. Default 50,000.
	MultilevelAbove int
	// Coarsest is the node count at which FirstLayout stops coarsening.
	// Default 1,000.
	Coarsest int
}

// DefaultParams returns the documented defaults.
func DefaultParams() Params {
	return Params{
		Theta:           1.2,
		Repulsion:       2,
		Gravity:         0.1,
		Tolerance:       1,
		MaxStep:         0.1,
		Jitter:          0.25,
		Ticks:           12,
		HotCap:          2048,
		HopDamp:         0.5,
		MultilevelAbove: 50_000,
		Coarsest:        1_000,
	}
}

// ErrParams is wrapped by every error Validate returns.
var ErrParams = errors.New("invalid layout params")

// Validate returns every problem with p, joined, each wrapping ErrParams;
// nil when p is usable.
func (p Params) Validate() error {
	var errs []error
	pos := func(name string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%w: %s is %v, want a finite number > 0", ErrParams, name, v))
		}
	}
	nonNeg := func(name string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%w: %s is %v, want a finite number ≥ 0", ErrParams, name, v))
		}
	}
	pos("Theta", p.Theta)
	pos("Repulsion", p.Repulsion)
	nonNeg("Gravity", p.Gravity)
	pos("Tolerance", p.Tolerance)
	pos("MaxStep", p.MaxStep)
	nonNeg("Jitter", p.Jitter)
	if !(p.HopDamp >= 0 && p.HopDamp <= 1) {
		errs = append(errs, fmt.Errorf("%w: HopDamp is %v, want 0 ≤ HopDamp ≤ 1", ErrParams, p.HopDamp))
	}
	if p.Ticks < 0 {
		errs = append(errs, fmt.Errorf("%w: Ticks is %d, want ≥ 0", ErrParams, p.Ticks))
	}
	if p.HotCap < 1 {
		errs = append(errs, fmt.Errorf("%w: HotCap is %d, want ≥ 1", ErrParams, p.HotCap))
	}
	if p.MultilevelAbove < 0 {
		errs = append(errs, fmt.Errorf("%w: MultilevelAbove is %d, want ≥ 0", ErrParams, p.MultilevelAbove))
	}
	if p.Coarsest < 2 {
		errs = append(errs, fmt.Errorf("%w: Coarsest is %d, want ≥ 2", ErrParams, p.Coarsest))
	}
	return errors.Join(errs...)
}
