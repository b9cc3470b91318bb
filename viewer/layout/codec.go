package layout

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The state's byte form, version 2 (integers are unsigned varints, floats
// little-endian IEEE 754 binary64, bitsets one bit per slot, low bit first):
//
//	"CLY" 0x02
//	seed (8 bytes)
//	Params: Theta Repulsion Gravity Tolerance MaxStep Jitter HopDamp (floats)
//	        Ticks HotCap MultilevelAbove Coarsest (varints)
//	        flags (varint; bit 0: WeakGravity, other bits 0)
//	transactions ended (varint)
//	node slots N, then bitsets live, pinned, unplaced (N bits each)
//	x, y of every live node, in slot order (floats)
//	count, then from, to of each edge added or removed in the open
//	transaction (varints)
//	edge slots E, then bitset live (E bits), then from, to of every live edge
//	0, or 1 and the cold tree's stale nodes: their count, then for each (in
//	order of first change) its slot, 1 if it was live when the tree was
//	built else 0, and its base x, y and mass (floats)
//
// Adjacency and the cold tree are rebuilt from these; nothing else affects
// positions. Version 1 (magic "CLY" 0x01) has no flags and was written when
// gravity was always ForceAtlas2's plain kind: it still decodes, with
// WeakGravity set, so it resumes under the forces it was made with.
const (
	magic   = "CLY\x02"
	magicV1 = "CLY\x01"
)

// MarshalBinary returns l's state in a compact byte form: about 16 bytes a
// node and 4–8 bytes an edge, plus 33 bytes for each node changed since the
// cold tree was built (at most HotCap + nodes/32 of them). UnmarshalBinary
// of it gives a Layout whose every later call gives the same positions as
// l's would. It may be called inside a transaction too; it never fails.
func (l *Layout) MarshalBinary() ([]byte, error) {
	return l.AppendBinary(make([]byte, 0, 64+17*len(l.live)+8*len(l.elive)))
}

// AppendBinary appends MarshalBinary's bytes to dst.
func (l *Layout) AppendBinary(dst []byte) ([]byte, error) {
	b := append(dst, magic...)
	b = binary.LittleEndian.AppendUint64(b, l.seed)
	p := l.p
	for _, f := range []float64{p.Theta, p.Repulsion, p.Gravity, p.Tolerance, p.MaxStep, p.Jitter, p.HopDamp} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	for _, v := range []int{p.Ticks, p.HotCap, p.MultilevelAbove, p.Coarsest} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	var flags uint64
	if p.WeakGravity {
		flags |= flagWeakGravity
	}
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendUvarint(b, l.txs)
	b = binary.AppendUvarint(b, uint64(len(l.live)))
	b = appendBits(b, l.live)
	b = appendBits(b, l.pinned)
	b = appendBits(b, l.isNew)
	for i, ok := range l.live {
		if ok {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(l.x[i]))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(l.y[i]))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(l.touched)))
	for _, s := range l.touched {
		b = binary.AppendUvarint(b, uint64(s))
	}
	b = binary.AppendUvarint(b, uint64(len(l.elive)))
	b = appendBits(b, l.elive)
	for e, ok := range l.elive {
		if ok {
			b = binary.AppendUvarint(b, uint64(l.from[e]))
			b = binary.AppendUvarint(b, uint64(l.to[e]))
		}
	}
	if !l.coldOK {
		return append(b, 0), nil
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(l.stale)))
	for _, s := range l.stale {
		b = binary.AppendUvarint(b, uint64(s))
		was := byte(0)
		if l.wasLive[s] {
			was = 1
		}
		b = append(b, was)
		for _, f := range []float64{l.baseX[s], l.baseY[s], l.baseM[s]} {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		}
	}
	return b, nil
}

// flagWeakGravity is the flags bit of Params.WeakGravity.
const flagWeakGravity = 1

func appendBits(b []byte, bits []bool) []byte {
	for i := 0; i < len(bits); i += 8 {
		var c byte
		for k := 0; k < 8 && i+k < len(bits); k++ {
			if bits[i+k] {
				c |= 1 << k
			}
		}
		b = append(b, c)
	}
	return b
}

// Unmarshal returns the Layout whose state data holds (see MarshalBinary),
// with opts applied. Its errors are *DecodeError, wrapping ErrCorrupt.
func Unmarshal(data []byte, opts ...Option) (*Layout, error) {
	l := &Layout{workers: defaultWorkers()}
	for _, o := range opts {
		o(l)
	}
	if err := l.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	return l, nil
}

// UnmarshalBinary replaces l's state (Params and seed included; its worker
// count stays) with the one data holds. Every live slot counts as moved. On
// error l is unchanged; the error is a *DecodeError wrapping ErrCorrupt
// that names the byte offset.
func (l *Layout) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	n, err := d.decode()
	if err != nil {
		return err
	}
	n.workers = l.workers
	*l = *n
	return nil
}

type decoder struct {
	b   []byte
	off int
}

func (d *decoder) fail(format string, args ...any) error {
	return &DecodeError{Offset: d.off, Reason: fmt.Sprintf(format, args...)}
}

func (d *decoder) u64() (uint64, error) {
	if len(d.b)-d.off < 8 {
		return 0, d.fail("truncated: want 8 bytes, have %d", len(d.b)-d.off)
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v, nil
}

func (d *decoder) float(what string) (float64, error) {
	v, err := d.u64()
	if err != nil {
		return 0, err
	}
	f := math.Float64frombits(v)
	if !isFinite(f) {
		d.off -= 8
		return 0, d.fail("%s is %v, want a finite number", what, f)
	}
	return f, nil
}

func (d *decoder) uvarint(what string, limit uint64) (uint64, error) {
	v, k := binary.Uvarint(d.b[d.off:])
	if k <= 0 {
		return 0, d.fail("%s: bad or truncated varint", what)
	}
	if v > limit {
		return 0, d.fail("%s is %d, want ≤ %d", what, v, limit)
	}
	d.off += k
	return v, nil
}

func (d *decoder) bits(what string, n int) ([]bool, error) {
	k := (n + 7) / 8
	if len(d.b)-d.off < k {
		return nil, d.fail("%s: truncated: want %d bytes, have %d", what, k, len(d.b)-d.off)
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = d.b[d.off+i/8]&(1<<(i%8)) != 0
	}
	if n%8 != 0 && d.b[d.off+k-1]>>(n%8) != 0 {
		return nil, d.fail("%s: bits set past slot %d", what, n)
	}
	d.off += k
	return out, nil
}

func (d *decoder) decode() (*Layout, error) {
	v1 := len(d.b) >= len(magicV1) && string(d.b[:len(magicV1)]) == magicV1
	if !v1 && (len(d.b) < len(magic) || string(d.b[:len(magic)]) != magic) {
		return nil, d.fail("not layout state version 1 or 2 (want magic %q)", magic)
	}
	d.off = len(magic)
	l := &Layout{}
	var err error
	if l.seed, err = d.u64(); err != nil {
		return nil, err
	}
	p := &l.p
	for _, f := range []struct {
		name string
		v    *float64
	}{{"Theta", &p.Theta}, {"Repulsion", &p.Repulsion}, {"Gravity", &p.Gravity}, {"Tolerance", &p.Tolerance}, {"MaxStep", &p.MaxStep}, {"Jitter", &p.Jitter}, {"HopDamp", &p.HopDamp}} {
		if *f.v, err = d.float(f.name); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		v    *int
	}{{"Ticks", &p.Ticks}, {"HotCap", &p.HotCap}, {"MultilevelAbove", &p.MultilevelAbove}, {"Coarsest", &p.Coarsest}} {
		v, err := d.uvarint(f.name, math.MaxInt32)
		if err != nil {
			return nil, err
		}
		*f.v = int(v)
	}
	if v1 {
		p.WeakGravity = true
	} else {
		flags, err := d.uvarint("flags", flagWeakGravity)
		if err != nil {
			return nil, err
		}
		p.WeakGravity = flags&flagWeakGravity != 0
	}
	if err := p.Validate(); err != nil {
		return nil, d.fail("%v", err)
	}
	if l.txs, err = d.uvarint("transaction count", math.MaxUint64); err != nil {
		return nil, err
	}
	rest := uint64(len(d.b) - d.off)
	nodes, err := d.uvarint("node slots", min(rest*8, math.MaxUint32))
	if err != nil {
		return nil, err
	}
	n := int(nodes)
	live, err := d.bits("live nodes", n)
	if err != nil {
		return nil, err
	}
	pinned, err := d.bits("pinned nodes", n)
	if err != nil {
		return nil, err
	}
	isNew, err := d.bits("unplaced nodes", n)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		l.growNodes(uint32(n - 1))
	}
	for i := range n {
		if (pinned[i] || isNew[i]) && !live[i] {
			return nil, d.fail("slot %d is pinned or unplaced but not live", i)
		}
		if !live[i] {
			continue
		}
		if l.x[i], err = d.float(fmt.Sprintf("x of slot %d", i)); err != nil {
			return nil, err
		}
		if l.y[i], err = d.float(fmt.Sprintf("y of slot %d", i)); err != nil {
			return nil, err
		}
		l.pos[2*i], l.pos[2*i+1] = float32(l.x[i]), float32(l.y[i])
		l.moved[i/64] |= 1 << (i % 64)
		if isNew[i] {
			l.pending = append(l.pending, uint32(i))
		}
	}
	copy(l.live, live)
	copy(l.pinned, pinned)
	copy(l.isNew, isNew)
	touched, err := d.uvarint("touched count", uint64(len(d.b)-d.off))
	if err != nil {
		return nil, err
	}
	if touched%2 != 0 {
		return nil, d.fail("touched count %d is odd, want pairs of slots", touched)
	}
	for range touched {
		s, err := d.uvarint("touched slot", uint64(max(n-1, 0)))
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, d.fail("touched slot %d with no node slots", s)
		}
		l.touched = append(l.touched, uint32(s))
	}
	edges, err := d.uvarint("edge slots", min(uint64(len(d.b)-d.off)*8, math.MaxUint32))
	if err != nil {
		return nil, err
	}
	elive, err := d.bits("live edges", int(edges))
	if err != nil {
		return nil, err
	}
	if edges > 0 {
		l.growEdges(uint32(edges - 1))
	}
	for e, ok := range elive {
		if !ok {
			continue
		}
		var ends [2]uint32
		for k := range ends {
			v, err := d.uvarint(fmt.Sprintf("end of edge %d", e), uint64(max(n-1, 0)))
			if err != nil {
				return nil, err
			}
			if n == 0 || !live[v] {
				return nil, d.fail("edge %d ends at slot %d, which is not a live node", e, v)
			}
			ends[k] = uint32(v)
		}
		l.from[e], l.to[e], l.elive[e] = ends[0], ends[1], true
		// Edges come in ascending slot order: appending keeps rows sorted.
		l.adj[ends[0]] = append(l.adj[ends[0]], uint32(e))
		if ends[1] != ends[0] {
			l.adj[ends[1]] = append(l.adj[ends[1]], uint32(e))
		}
	}
	for i := range l.adj {
		l.setMass(uint32(i))
	}
	if err := d.cold(l); err != nil {
		return nil, err
	}
	if d.off != len(d.b) {
		return nil, d.fail("%d bytes after the state", len(d.b)-d.off)
	}
	return l, nil
}

// cold decodes the cold tree's stale nodes into l and rebuilds the tree.
func (d *decoder) cold(l *Layout) error {
	ok, err := d.byte01("cold tree flag")
	if err != nil || !ok {
		return err
	}
	n := len(l.live)
	count, err := d.uvarint("stale count", uint64(n))
	if err != nil {
		return err
	}
	for range count {
		s, err := d.uvarint("stale slot", uint64(max(n-1, 0)))
		if err != nil {
			return err
		}
		if n == 0 || l.isStale[s] {
			return d.fail("stale slot %d listed twice or out of range", s)
		}
		if l.wasLive[s], err = d.byte01("stale liveness"); err != nil {
			return err
		}
		for _, f := range []*float64{&l.baseX[s], &l.baseY[s], &l.baseM[s]} {
			if *f, err = d.float(fmt.Sprintf("base state of slot %d", s)); err != nil {
				return err
			}
		}
		if !(l.baseM[s] >= 1) {
			return d.fail("base mass of slot %d is %v, want ≥ 1", s, l.baseM[s])
		}
		l.isStale[s] = true
		l.stale = append(l.stale, uint32(s))
	}
	l.coldOK = true
	l.rebuildCold()
	return nil
}

func (d *decoder) byte01(what string) (bool, error) {
	if d.off >= len(d.b) {
		return false, d.fail("%s: truncated", what)
	}
	switch d.b[d.off] {
	case 0, 1:
		d.off++
		return d.b[d.off-1] == 1, nil
	}
	return false, d.fail("%s is %d, want 0 or 1", what, d.b[d.off])
}
