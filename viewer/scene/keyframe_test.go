package scene

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/testseed"
	"github.com/cairn-graph/cairn/internal/wire"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// sameScene fails unless a and b hold the same slots, colours, sizes,
// degrees, positions and place in the history.
func sameScene(t *testing.T, a, b *Scene) {
	t.Helper()
	if !slices.Equal(a.ids, b.ids) || !slices.Equal(a.ends, b.ends) || !slices.Equal(a.color, b.color) ||
		!slices.Equal(a.size, b.size) || !slices.Equal(a.deg, b.deg) || !slices.Equal(a.pos, b.pos) ||
		a.seq != b.seq || a.head != b.head || a.liveNodes != b.liveNodes || a.liveEdges != b.liveEdges {
		t.Fatalf("scenes differ at seq %d/%d", a.seq, b.seq)
	}
	for e := range uint32(a.Edges()) {
		if a.edgeIDs.String(e) != b.edgeIDs.String(e) {
			t.Fatalf("edge slot %d holds %q and %q", e, a.edgeIDs.String(e), b.edgeIDs.String(e))
		}
	}
}

// TestKeyframeRoundTrip saves keyframes along a random history and checks
// that a scene loaded from one equals the folded one and folds the rest of
// the history into the same slots.
func TestKeyframeRoundTrip(t *testing.T) {
	h := newHistory(testseed.Seed(t, 0))
	opts := []Option{WithColorComponent("colour")}
	folded := New("g", nil, opts...)
	var loaded []*Scene
	for seq := uint64(1); seq <= 500; seq++ {
		tx := h.tx()
		mustApply(t, folded, seq, tx...)
		for _, l := range loaded {
			mustApply(t, l, seq, tx...)
			sameScene(t, folded, l)
		}
		if seq%100 == 0 {
			data := folded.AppendKeyframe(nil)
			l := New("g", nil, opts...)
			if err := l.LoadKeyframe(data, nil); err != nil {
				t.Fatalf("seq %d: %v", seq, err)
			}
			sameScene(t, folded, l)
			if !l.Time().Equal(folded.Time()) {
				t.Fatalf("time %v, want %v", l.Time(), folded.Time())
			}
			if again := l.AppendKeyframe(nil); !bytes.Equal(again, data) {
				t.Fatalf("seq %d: a loaded keyframe encodes otherwise", seq)
			}
			loaded = append(loaded, l)
		}
	}
}

func TestKeyframeRestoresThePlacer(t *testing.T) {
	p := &logPlacer{}
	s := New("g", p)
	mustApply(t, s, 1, nodeAdded("a"), nodeAdded("b"), nodeAdded("c"), edgeAdded("ab", "a", "b"))
	mustApply(t, s, 2, nodeRemoved("c"))
	p2 := &logPlacer{}
	l := New("g", nil)
	if err := l.LoadKeyframe(s.AppendKeyframe(nil), p2); err != nil {
		t.Fatal(err)
	}
	if got := p2.calls; !slices.Equal(got, []string{"node+0", "node+1", "edge+0:0-1", "end"}) {
		t.Fatalf("calls %v", got)
	}
	sameScene(t, s, l)
}

func TestKeyframeRefusesWhatIsNotOne(t *testing.T) {
	s := New("g", nil)
	mustApply(t, s, 1, nodeAdded("a", "x"), nodeAdded("b"), edgeAdded("ab", "a", "b"))
	good := s.AppendKeyframe(nil)
	flip := func(i int) []byte { b := slices.Clone(good); b[i] ^= 1; return b }
	for name, data := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"magic":     flip(0),
		"format":    flip(8),
		"checksum":  flip(12),
		"body":      flip(len(good) - 1),
	} {
		if err := New("g", nil).LoadKeyframe(data, nil); !errors.Is(err, ErrInvalidKeyframe) {
			t.Errorf("%s: %v, want ErrInvalidKeyframe", name, err)
		}
	}
	if err := New("other", nil).LoadKeyframe(good, nil); !errors.Is(err, ErrInvalidKeyframe) {
		t.Errorf("another graph's keyframe: %v", err)
	}
	if err := New("g", nil, WithColorComponent("t")).LoadKeyframe(good, nil); !errors.Is(err, ErrInvalidKeyframe) {
		t.Errorf("another colour component: %v", err)
	}
}

// FuzzLoadKeyframe: any bytes load or are refused, never panic, and what
// loads encodes into a keyframe that loads into the same scene. The header
// is made valid (format, checksum, length) so that the body's decoder is
// what the fuzzer explores.
func FuzzLoadKeyframe(f *testing.F) {
	s := New("g", nil, WithColorComponent("c"))
	f.Add(s.AppendKeyframe(nil)[keyframeHeaderLen:])
	_ = s.ApplyTx(1, "h", time.Unix(5, 0), []*cairnv1.Event{nodeAdded("a", "x"), nodeAddedWith("b", "c", "v"), edgeAdded("ab", "a", "b"),
		edgeAdded("bb", "b", "b")})
	_ = s.ApplyTx(2, "h2", time.Unix(6, 0), []*cairnv1.Event{edgeRemoved("ab", "a", "b"), nodeRemoved("a")})
	f.Add(s.AppendKeyframe(nil)[keyframeHeaderLen:])
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append([]byte(keyframeMagic), make([]byte, 16)...)
		binary.LittleEndian.PutUint32(data[8:], KeyframeFormat)
		binary.LittleEndian.PutUint32(data[12:], wire.Checksum(body))
		binary.LittleEndian.PutUint64(data[16:], uint64(len(body)))
		data = append(data, body...)
		l := New("g", nil, WithColorComponent("c"))
		if err := l.LoadKeyframe(data, nil); err != nil {
			if !errors.Is(err, ErrInvalidKeyframe) {
				t.Fatalf("error %v is no ErrInvalidKeyframe", err)
			}
			return
		}
		again := l.AppendKeyframe(nil)
		l2 := New("g", nil, WithColorComponent("c"))
		if err := l2.LoadKeyframe(again, nil); err != nil {
			t.Fatalf("a loaded keyframe re-encoded does not load: %v", err)
		}
		sameScene(t, l, l2)
	})
}
