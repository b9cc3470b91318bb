package viewer

// decodePick finds the node nearest the centre of a (2r+1)×(2r+1) block of
// the id attachment, read row by row from its bottom-left corner. Each value
// is slot+1, 0 where no node drew. It returns the slot of the nearest
// non-zero value (ties: the first in row order) and false when all are 0.
func decodePick(ids []uint32, r int) (slot uint32, ok bool) {
	n := 2*r + 1
	best := -1
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			v := ids[y*n+x]
			if v == 0 {
				continue
			}
			d := (x-r)*(x-r) + (y-r)*(y-r)
			if best < 0 || d < best {
				best, slot, ok = d, v-1, true
			}
		}
	}
	return slot, ok
}
