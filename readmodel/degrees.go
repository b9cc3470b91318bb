package readmodel

import (
	"maps"
	"slices"
)

// degrees holds one count per node in 1 byte; the few nodes whose count
// reaches 0xff (hubs of a power-law graph) keep it in a small map instead.
type degrees struct {
	low  []uint8
	high map[uint32]uint32 // node -> count, for counts >= degreeSpill
}

const degreeSpill = 0xff

// grow appends a zero count.
func (d *degrees) grow() { d.low = append(d.low, 0) }

func (d *degrees) get(u uint32) uint32 {
	if v := d.low[u]; v != degreeSpill {
		return uint32(v)
	}
	return d.high[u]
}

func (d *degrees) set(u, v uint32) {
	if v < degreeSpill {
		if d.low[u] == degreeSpill {
			delete(d.high, u)
		}
		d.low[u] = uint8(v)
		return
	}
	if d.high == nil {
		d.high = map[uint32]uint32{}
	}
	d.low[u], d.high[u] = degreeSpill, v
}

// bytes counts a map entry as 16 bytes, about what a Go map spends on one.
func (d *degrees) bytes() int { return cap(d.low) + 16*len(d.high) }

// clone returns a copy that shares nothing with d.
func (d *degrees) clone() degrees {
	return degrees{low: slices.Clone(d.low), high: maps.Clone(d.high)}
}

// trim drops unused capacity.
func (d *degrees) trim() {
	d.low, d.high = slices.Clone(d.low), maps.Clone(d.high)
}
