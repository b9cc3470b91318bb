package scene

// slotHeap is a min-heap of free slots, so that an add takes the lowest
// free slot and slots are a pure function of the history folded.
type slotHeap []uint32

func (h *slotHeap) push(s uint32) {
	*h = append(*h, s)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p] <= a[i] {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *slotHeap) pop() (uint32, bool) {
	a := *h
	if len(a) == 0 {
		return 0, false
	}
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && a[l] < a[m] {
			m = l
		}
		if r < n && a[r] < a[m] {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top, true
}
