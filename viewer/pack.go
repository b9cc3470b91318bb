package viewer

import "github.com/cairn-graph/cairn/viewer/scene"

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
