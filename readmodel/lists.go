package readmodel

import "slices"

// lists holds a short list of uint32 handles per node in one shared array, so
// that a node costs 6 bytes plus 4 per handle instead of a slice header and an
// allocation. A list that grows moves to the end; the hole it leaves is
// reclaimed when holes pass half of the array.
type lists struct {
	off     []uint32
	n       []uint16
	data    []uint32
	garbage int
}

// maxList is the longest list a node may hold.
const maxList = 1<<16 - 1

func (l *lists) grow(size int) {
	for len(l.off) < size {
		l.off = append(l.off, 0)
		l.n = append(l.n, 0)
	}
}

func (l *lists) get(i uint32) []uint32 {
	if int(i) >= len(l.off) {
		return nil
	}
	o := l.off[i]
	return l.data[o : o+uint32(l.n[i]) : o+uint32(l.n[i])]
}

// set replaces list i with h (len(h) <= maxList); h may alias nothing in l.
func (l *lists) set(i uint32, h []uint32) {
	l.grow(int(i) + 1)
	old := int(l.n[i])
	if len(h) <= old {
		copy(l.data[l.off[i]:], h)
		l.garbage += old - len(h)
	} else {
		l.garbage += old
		l.off[i] = uint32(len(l.data))
		l.data = append(l.data, h...)
	}
	l.n[i] = uint16(len(h))
	if l.garbage > 4096 && l.garbage*2 > len(l.data) {
		l.compact()
	}
}

func (l *lists) compact() {
	data := make([]uint32, 0, len(l.data)-l.garbage)
	for i := range l.off {
		h := l.get(uint32(i))
		l.off[i] = uint32(len(data))
		data = append(data, h...)
	}
	l.data, l.garbage = data, 0
}

func (l *lists) bytes() int { return 4*cap(l.off) + 2*cap(l.n) + 4*cap(l.data) }

// trim drops holes and unused capacity.
func (l *lists) trim() {
	l.compact()
	l.off, l.n = slices.Clone(l.off), slices.Clone(l.n)
}
