package readmodel

import "maps"

// degrees holds one count per node in 1 byte; the few nodes whose count
// reaches 0xff (hubs of a power-law graph) keep it in a small map instead.
type degrees struct {
	low  pagedBytes
	high map[uint32]uint32 // node -> count, for counts >= degreeSpill
}

const degreeSpill = 0xff

// grow appends a zero count.
func (d *degrees) grow() { d.low.append(0) }

func (d *degrees) get(u uint32) uint32 {
	if v := d.low.at(int(u)); v != degreeSpill {
		return uint32(v)
	}
	return d.high[u]
}

func (d *degrees) set(u, v uint32) {
	if v < degreeSpill {
		if d.low.at(int(u)) == degreeSpill {
			delete(d.high, u)
		}
		d.low.set(int(u), uint8(v))
		return
	}
	if d.high == nil {
		d.high = map[uint32]uint32{}
	}
	d.low.set(int(u), degreeSpill)
	d.high[u] = v
}

// bytes counts a map entry as 16 bytes, about what a Go map spends on one.
func (d *degrees) bytes() int { return d.low.bytes() + 16*len(d.high) }

// freeze returns a copy that never changes: the counts' pages are shared
// copy-on-write, the few spilled counts copied.
func (d *degrees) freeze() degrees {
	return degrees{low: d.low.freeze(), high: maps.Clone(d.high)}
}

// trim drops unused capacity.
func (d *degrees) trim() {
	d.low.clip()
	d.high = maps.Clone(d.high)
}
