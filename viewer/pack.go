package viewer

import (
	"fmt"

	"github.com/cairn-graph/cairn/viewer/scene"
)

// growCap is the capacity a buffer of capacity cur grows to so that it
// holds need items: at least double, at least 1024.
func growCap(cur, need int) int {
	c := max(cur, 1024)
	for c < need {
		c *= 2
	}
	return c
}

// clampRanges appends to dst the ranges of rs cut to [0, n), leaving empty
// ones out and merging ranges that touch or overlap the previous one.
func clampRanges(dst, rs []scene.Range, n int) []scene.Range {
	start := len(dst)
	for _, r := range rs {
		lo, hi := int(r.Lo), int(r.Hi)
		hi = min(hi, n)
		if lo >= hi {
			continue
		}
		if k := len(dst) - 1; k >= start && int(dst[k].Hi) >= lo && int(dst[k].Lo) <= lo {
			dst[k].Hi = uint32(max(int(dst[k].Hi), hi))
			continue
		}
		dst = append(dst, scene.Range{Lo: uint32(lo), Hi: uint32(hi)})
	}
	return dst
}

// checkFrame checks that f's slices hold what its counts say, and that the
// edges in edges (ranges of edge slots; every edge when all) end at node
// slots below Nodes, so that no upload or draw reads past a buffer. Its
// errors wrap ErrBadFrame and name the field or edge slot.
func checkFrame(f *scene.Frame, edges []scene.Range, all bool) error {
	n := f.Nodes
	if n < 0 || f.Edges < 0 {
		return fmt.Errorf("%w: Nodes %d, Edges %d", ErrBadFrame, n, f.Edges)
	}
	for _, c := range []struct {
		name       string
		have, need int
	}{{"Pos", len(f.Pos), 2 * n}, {"Color", len(f.Color), n}, {"Size", len(f.Size), n},
		{"ID", len(f.ID), n}, {"Deg", len(f.Deg), n}, {"Ends", len(f.Ends), 2 * f.Edges}} {
		if c.have < c.need {
			return fmt.Errorf("%w: %s holds %d entries, want %d", ErrBadFrame, c.name, c.have, c.need)
		}
	}
	if all {
		edges = []scene.Range{{Lo: 0, Hi: uint32(f.Edges)}}
	}
	for _, r := range edges {
		for e := int(r.Lo); e < min(int(r.Hi), f.Edges); e++ {
			if a, b := f.Ends[2*e], f.Ends[2*e+1]; int(a) >= n || int(b) >= n {
				return fmt.Errorf("%w: edge slot %d joins slots %d and %d, past Nodes %d", ErrBadFrame, e, a, b, n)
			}
		}
	}
	return nil
}
