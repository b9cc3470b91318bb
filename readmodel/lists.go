package readmodel

import (
	"encoding/binary"

	"github.com/cairn-graph/cairn/internal/packed"
)

// lists holds a short list of uint32 handles per node in one shared byte
// array, each handle a uvarint, so that a node costs about 3.5 bytes (an
// offset and a length packed in the fewest bits that hold them) plus 1 to 2
// per handle below 16,384 instead of a slice header and an allocation. A list
// that grows moves to the end; the hole it leaves is reclaimed when holes
// pass half of the array.
type lists struct {
	off     packed.Pages // node -> start of its list in data
	n       packed.Pages // node -> number of handles
	data    pagedBytes   // uvarint handles
	garbage int          // bytes in holes
}

// maxList is the most components, and the most categories, a node may hold.
const maxList = 1<<16 - 1

// compsOf appends node u's component handles to buf and returns them.
func (g *Graph) compsOf(u uint32, buf []uint32) []uint32 {
	l := g.attrs.get(u, buf)
	if len(l) == len(buf) {
		return l
	}
	at := len(buf)
	return l[at+1 : at+1+int(l[at])]
}

// catsOf appends node u's category ids to buf and returns them.
func (g *Graph) catsOf(u uint32, buf []uint32) []uint32 {
	l := g.attrs.get(u, buf)
	if len(l) == len(buf) {
		return l
	}
	at := len(buf)
	return l[at+1+int(l[at]):]
}

// setAttrs replaces node u's component handles and category ids; neither
// may alias the other's storage in g.
func (g *Graph) setAttrs(u uint32, comps, cats []uint32) {
	if len(comps)+len(cats) == 0 {
		g.attrs.set(u, nil)
		return
	}
	var buf [16]uint32
	l := append(append(append(buf[:0], uint32(len(comps))), comps...), cats...)
	g.attrs.set(u, l)
}

func (l *lists) grow(size int) {
	for l.off.Len() < size {
		l.off.Append(0)
		l.n.Append(0)
	}
}

// get appends list i's handles to buf and returns it; a caller passes a
// small stack array's slice to avoid allocating.
func (l *lists) get(i uint32, buf []uint32) []uint32 {
	if int(i) >= l.off.Len() {
		return buf
	}
	p := int(l.off.Get(int(i)))
	for range l.n.Get(int(i)) {
		v, k := l.data.uvarint(p)
		buf = append(buf, uint32(v))
		p += k
	}
	return buf
}

// span returns where list i's bytes start and end.
func (l *lists) span(i uint32) (int, int) {
	o := int(l.off.Get(int(i)))
	p := o
	for range l.n.Get(int(i)) {
		_, k := l.data.uvarint(p)
		p += k
	}
	return o, p
}

// set replaces list i with h.
func (l *lists) set(i uint32, h []uint32) {
	l.grow(int(i) + 1)
	var tmp [32]byte
	enc := tmp[:0]
	for _, x := range h {
		enc = binary.AppendUvarint(enc, uint64(x))
	}
	o, p := l.span(i)
	if old := p - o; len(enc) <= old {
		l.data.write(o, enc)
		l.garbage += old - len(enc)
	} else {
		l.garbage += old
		l.off.Set(int(i), uint32(l.data.len()))
		l.data.append(enc...)
	}
	l.n.Set(int(i), uint32(len(h)))
	if l.garbage > 4096 && l.garbage*2 > l.data.len() {
		l.compact()
	}
}

func (l *lists) compact() {
	var data pagedBytes
	var buf []byte
	for i := range l.off.Len() {
		o, p := l.span(uint32(i))
		l.off.Set(i, uint32(data.len()))
		buf = l.data.slice(o, p, buf)
		data.append(buf...)
	}
	l.data, l.garbage = data, 0
}

func (l *lists) bytes() int { return l.off.Bytes() + l.n.Bytes() + l.data.bytes() }

// trim drops holes and unused capacity.
func (l *lists) trim() {
	l.compact()
	l.data.clip()
	l.off.Clip()
	l.n.Clip()
}
