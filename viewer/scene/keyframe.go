package scene

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cairn-graph/cairn/internal/wire"
)

// KeyframeFormat is the format version AppendKeyframe writes and
// LoadKeyframe reads. Format 2 adds the Placer's state (StatefulPlacer).
// LoadKeyframe refuses every other format, 1 included: a format 1
// keyframe holds positions but not the layout's own state, so a scene
// loaded from it would lay the rest of the history out otherwise than one
// folded from the start. A renderer passes such a keyframe over and folds
// from an older start instead.
const KeyframeFormat = 2

const (
	keyframeMagic     = "CAIRNLAY"
	keyframeHeaderLen = 8 + 4 + 4 + 8 // magic, format, CRC-32C of the body, body length
)

// ErrInvalidKeyframe: bytes that are not a keyframe this build reads
// (another format, a checksum or a bound that fails, a table that does not
// hold together).
var ErrInvalidKeyframe = errors.New("invalid scene keyframe")

// ErrPlacerState: a keyframe's Placer state that the Placer refuses (made
// with other parameters, say) or that does not agree with the keyframe's
// positions.
var ErrPlacerState = errors.New("keyframe's placer state does not fit the placer")

// StatefulPlacer is a Placer that can save and restore its whole state
// (positions and whatever else its later placements depend on), so that a
// scene loaded from a keyframe places the rest of the history exactly as
// the scene that saved it. AppendKeyframe stores the state of a
// StatefulPlacer; LoadKeyframe hands it to RestoreState of a
// StatefulPlacer instead of telling it the keyframe's nodes and edges.
type StatefulPlacer interface {
	Placer
	// AppendState appends the Placer's state to dst.
	AppendState(dst []byte) ([]byte, error)
	// RestoreState replaces the Placer's state with one AppendState wrote;
	// on error the Placer is unchanged. Every live slot counts as moved.
	RestoreState(data []byte) error
}

// PositionRestorer is a Placer that can take saved positions: after a
// keyframe's nodes and edges were added to it, LoadKeyframe hands it the
// keyframe's positions (x, y per slot) instead of ending a transaction,
// so that the layout goes on from where it was saved. A Placer that is no
// PositionRestorer places the keyframe's nodes afresh (EndTx).
type PositionRestorer interface {
	RestorePositions(pos []float32)
}

// AppendKeyframe appends the scene's keyframe to dst: its position in the
// history (seq, head, time), its whole slot table (node ids and colours,
// edge ids and ends, free slots included), its positions and, when its
// Placer is a StatefulPlacer, the Placer's state, with a CRC-32C. A scene
// loaded from it (LoadKeyframe, with a Placer of the same kind and
// parameters) holds the same slots and positions and folds the rest of
// the history exactly as this one does, so a replay can jump to a
// keyframe's seq without folding from the start. Fades in progress are
// not kept: they end at once. Call it between transactions.
//
// Errors: the StatefulPlacer's AppendState error, wrapped; dst is then
// returned as it was.
func (s *Scene) AppendKeyframe(dst []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, keyframeMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, KeyframeFormat)
	dst = append(dst, make([]byte, 12)...) // checksum and length, below
	body := len(dst)
	dst = wire.AppendString(dst, s.graph)
	dst = wire.AppendUvarint(dst, s.seq)
	dst = wire.AppendString(dst, s.head)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(s.at.UnixNano()))
	dst = wire.AppendString(dst, s.opt.colorComponent)
	dst = wire.AppendUvarint(dst, uint64(len(s.ids)))
	for slot, id := range s.ids {
		dst = wire.AppendString(dst, id)
		hue := uint8(noHue)
		if s.compHue != nil {
			hue = s.compHue[slot]
		}
		dst = append(dst, s.catHue[slot], hue)
	}
	for _, p := range s.pos {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(p))
	}
	dst = wire.AppendUvarint(dst, uint64(len(s.ends)/2))
	for e := range uint32(len(s.ends) / 2) {
		dst = wire.AppendString(dst, s.edgeIDs.String(e))
		dst = wire.AppendUvarint(dst, uint64(s.ends[2*e]))
		dst = wire.AppendUvarint(dst, uint64(s.ends[2*e+1]))
	}
	// The placer's state, length first (0: none).
	if sp, ok := s.placer.(StatefulPlacer); ok {
		st, err := sp.AppendState(nil)
		if err != nil {
			return dst[:start], fmt.Errorf("keyframe of %s: placer state: %w", s.graph, err)
		}
		dst = wire.AppendUvarint(dst, uint64(len(st)))
		dst = append(dst, st...)
	} else {
		dst = wire.AppendUvarint(dst, 0)
	}
	b := dst[body:]
	binary.LittleEndian.PutUint32(dst[start+12:], wire.Checksum(b))
	binary.LittleEndian.PutUint64(dst[start+16:], uint64(len(b)))
	return dst, nil
}

// LoadKeyframe resets the scene to the keyframe in data, with placer as
// its Placer. When the keyframe holds a Placer state and placer is a
// StatefulPlacer, placer restores that state (RestoreState), and its
// positions must then be the keyframe's, bit for bit, at every live slot.
// Otherwise every live node, then every live edge, is told to placer in
// slot order, and then placer gets the saved positions when it is a
// PositionRestorer (else it places them: EndTx). The keyframe must be of
// the scene's graph and colour component. The next Frame published is
// Full.
//
// Errors: an error wrapping ErrInvalidKeyframe that names what failed and
// where; one wrapping ErrPlacerState when placer refuses the keyframe's
// state (and the Placer's error), when its positions differ from the
// keyframe's, or when placer is a StatefulPlacer and the keyframe holds no
// state. The scene is then empty (Reset).
func (s *Scene) LoadKeyframe(data []byte, placer Placer) error {
	s.Reset(nil)
	state, err := s.decodeKeyframe(data)
	if err != nil {
		s.Reset(placer)
		return fmt.Errorf("load keyframe of %s: %w", s.graph, err)
	}
	s.placer = placer
	if placer == nil {
		return nil
	}
	if sp, ok := placer.(StatefulPlacer); ok {
		if len(state) == 0 {
			// Telling it the nodes afresh would lay the rest of the
			// history out otherwise than the fold the keyframe stands for.
			s.Reset(placer)
			return fmt.Errorf("load keyframe of %s: %w: the keyframe holds no Placer state for a Placer that keeps one", s.graph, ErrPlacerState)
		}
		if err := s.restoreState(sp, state); err != nil {
			s.Reset(placer)
			return fmt.Errorf("load keyframe of %s: %w", s.graph, err)
		}
		return nil
	}
	for slot, id := range s.ids {
		if id != "" {
			placer.AddNode(uint32(slot))
		}
	}
	for e := range uint32(len(s.ends) / 2) {
		if s.edgeIDs.Has(e) {
			placer.AddEdge(e, s.ends[2*e], s.ends[2*e+1])
		}
	}
	if r, ok := placer.(PositionRestorer); ok {
		r.RestorePositions(s.pos)
		placer.TakeMoved(nil) // what they were told is what the scene holds
		return nil
	}
	s.endTx()
	return nil
}

// restoreState hands sp the keyframe's placer state and checks that its
// positions are the keyframe's at every live slot.
func (s *Scene) restoreState(sp StatefulPlacer, state []byte) error {
	if err := sp.RestoreState(state); err != nil {
		return fmt.Errorf("%w: %w", ErrPlacerState, err)
	}
	p := sp.Positions()
	for slot, id := range s.ids {
		if id == "" {
			continue
		}
		i := 2 * slot
		if i+1 >= len(p) || math.Float32bits(p[i]) != math.Float32bits(s.pos[i]) || math.Float32bits(p[i+1]) != math.Float32bits(s.pos[i+1]) {
			got := "none"
			if i+1 < len(p) {
				got = fmt.Sprintf("(%v, %v)", p[i], p[i+1])
			}
			return fmt.Errorf("%w: slot %d (%q) at (%v, %v), the placer's state puts it at %s", ErrPlacerState, slot, id, s.pos[i], s.pos[i+1], got)
		}
	}
	sp.TakeMoved(nil) // the scene holds these positions already
	return nil
}

// decodeKeyframe fills the scene from data and returns the placer state
// it holds (nil: none).
func (s *Scene) decodeKeyframe(data []byte) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidKeyframe}, args...)...)
	}
	if len(data) < keyframeHeaderLen {
		return nil, bad("%d bytes, want at least %d", len(data), keyframeHeaderLen)
	}
	if string(data[:8]) != keyframeMagic {
		return nil, bad("bad magic %q", data[:8])
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != KeyframeFormat {
		return nil, bad("format version %d (this build reads %d)", v, KeyframeFormat)
	}
	body := data[keyframeHeaderLen:]
	if n := binary.LittleEndian.Uint64(data[16:]); n != uint64(len(body)) {
		return nil, bad("body length %d, %d bytes follow", n, len(body))
	}
	if want, got := binary.LittleEndian.Uint32(data[12:]), wire.Checksum(body); want != got {
		return nil, bad("checksum %08x, body has %08x", want, got)
	}
	r := wire.NewReader(body)
	r.Section("header")
	if g := r.String(); r.Err() == nil && g != s.graph {
		return nil, bad("a keyframe of graph %q, not %q", g, s.graph)
	}
	seq := r.Uvarint()
	head := r.String()
	at := r.Next(8)
	if c := r.String(); r.Err() == nil && c != s.opt.colorComponent {
		return nil, bad("coloured by component %q, the scene by %q", c, s.opt.colorComponent)
	}
	r.Section("nodes")
	n := r.Count(3, "node slot")
	for slot := range uint32(n) {
		id := r.String()
		hues := r.Next(2)
		if r.Err() != nil {
			break
		}
		if hues[0] >= uint8(PaletteSize) && hues[0] != noHue || hues[1] >= uint8(PaletteSize) && hues[1] != noHue {
			r.Failf("slot %d: hue %d/%d outside the palette", slot, hues[0], hues[1])
			break
		}
		if id != "" {
			if _, dup := s.nodeIDs.Lookup(id); dup {
				r.Failf("slot %d: node %q twice", slot, id)
				break
			}
			s.nodeIDs.Set(slot, id)
			s.liveNodes++
		} else {
			s.freeNodes.push(slot)
		}
		s.ids = append(s.ids, id)
		s.catHue = append(s.catHue, hues[0])
		if s.opt.colorComponent != "" {
			s.compHue = append(s.compHue, hues[1])
		}
	}
	r.Section("positions")
	if p := r.Next(8 * n); p != nil {
		s.pos = make([]float32, 2*n)
		for i := range s.pos {
			v := math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				r.Failf("slot %d: position %v", i/2, v)
				break
			}
			s.pos[i] = v
		}
	}
	r.Section("edges")
	m := r.Count(3, "edge slot")
	s.deg = make([]uint32, n)
	for e := range uint32(m) {
		id := r.String()
		from, to := r.Uvarint(), r.Uvarint()
		if r.Err() != nil {
			break
		}
		if from >= uint64(n) || to >= uint64(n) {
			r.Failf("edge slot %d: ends %d, %d past %d node slots", e, from, to, n)
			break
		}
		a, b := uint32(from), uint32(to)
		if id == "" {
			if a != b {
				r.Failf("free edge slot %d is not degenerate (%d, %d)", e, a, b)
				break
			}
			s.freeEdges.push(e)
		} else {
			if s.ids[a] == "" || s.ids[b] == "" {
				r.Failf("edge %q: an end is a free slot", id)
				break
			}
			if _, dup := s.edgeIDs.Lookup(id); dup {
				r.Failf("edge %q twice", id)
				break
			}
			s.edgeIDs.Set(e, id)
			s.liveEdges++
			s.deg[a]++
			s.deg[b]++
		}
		s.ends = append(s.ends, a, b)
	}
	r.Section("placer state")
	state := r.Bytes()
	if r.Err() == nil && r.Len() != 0 {
		r.Failf("%d bytes after the placer state", r.Len())
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKeyframe, err)
	}
	s.color, s.size = make([]uint32, n), make([]float32, n)
	for slot := range uint32(n) {
		if s.ids[slot] == "" {
			s.color[slot] = withAlpha(s.baseColor(slot), 0)
			continue
		}
		s.color[slot] = s.baseColor(slot)
		s.size[slot] = sizeFor(s.deg[slot], s.opt.maxSize)
	}
	s.seq, s.head = seq, head
	s.at = time.Unix(0, int64(binary.LittleEndian.Uint64(at)))
	return state, nil
}
