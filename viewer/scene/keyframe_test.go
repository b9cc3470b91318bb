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

// keyframe returns s's keyframe.
func keyframe(t testing.TB, s *Scene) []byte {
	t.Helper()
	data, err := s.AppendKeyframe(nil)
	if err != nil {
		t.Fatal(err)
	}
	return data
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
			data := keyframe(t, folded)
			l := New("g", nil, opts...)
			if err := l.LoadKeyframe(data, nil); err != nil {
				t.Fatalf("seq %d: %v", seq, err)
			}
			sameScene(t, folded, l)
			if !l.Time().Equal(folded.Time()) {
				t.Fatalf("time %v, want %v", l.Time(), folded.Time())
			}
			if again := keyframe(t, l); !bytes.Equal(again, data) {
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
	if err := l.LoadKeyframe(keyframe(t, s), p2); err != nil {
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
	good := keyframe(t, s)
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

// FuzzLoadKeyframe: any bytes load or are refused (with a stateful placer
// too), never panic, and what loads encodes into a keyframe that loads into the same scene. The header
// is made valid (format, checksum, length) so that the body's decoder is
// what the fuzzer explores.
func FuzzLoadKeyframe(f *testing.F) {
	s := New("g", nil, WithColorComponent("c"))
	f.Add(keyframe(f, s)[keyframeHeaderLen:])
	_ = s.ApplyTx(1, "h", time.Unix(5, 0), []*cairnv1.Event{nodeAdded("a", "x"), nodeAddedWith("b", "c", "v"), edgeAdded("ab", "a", "b"),
		edgeAdded("bb", "b", "b")})
	_ = s.ApplyTx(2, "h2", time.Unix(6, 0), []*cairnv1.Event{edgeRemoved("ab", "a", "b"), nodeRemoved("a")})
	f.Add(keyframe(f, s)[keyframeHeaderLen:])
	sp := New("g", &statePlacer{}, WithColorComponent("c"))
	_ = sp.ApplyTx(1, "h", time.Unix(5, 0), []*cairnv1.Event{nodeAdded("a", "x"), nodeAdded("b"), edgeAdded("ab", "a", "b")})
	f.Add(keyframe(f, sp)[keyframeHeaderLen:])
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append([]byte(keyframeMagic), make([]byte, 16)...)
		binary.LittleEndian.PutUint32(data[8:], KeyframeFormat)
		binary.LittleEndian.PutUint32(data[12:], wire.Checksum(body))
		binary.LittleEndian.PutUint64(data[16:], uint64(len(body)))
		data = append(data, body...)
		if err := New("g", nil, WithColorComponent("c")).LoadKeyframe(data, &statePlacer{}); err != nil &&
			!errors.Is(err, ErrInvalidKeyframe) && !errors.Is(err, ErrPlacerState) {
			t.Fatalf("with a stateful placer: error %v is neither ErrInvalidKeyframe nor ErrPlacerState", err)
		}
		l := New("g", nil, WithColorComponent("c"))
		if err := l.LoadKeyframe(data, nil); err != nil {
			if !errors.Is(err, ErrInvalidKeyframe) {
				t.Fatalf("error %v is no ErrInvalidKeyframe", err)
			}
			return
		}
		again := keyframe(t, l)
		l2 := New("g", nil, WithColorComponent("c"))
		if err := l2.LoadKeyframe(again, nil); err != nil {
			t.Fatalf("a loaded keyframe re-encoded does not load: %v", err)
		}
		sameScene(t, l, l2)
	})
}

// TestKeyframeCarriesPlacerState: a StatefulPlacer restores its state from
// a keyframe instead of being told the nodes and edges, and then places
// later transactions as the placer that saved it does; a placer without a
// state, or state a placer refuses, fails as documented.
func TestKeyframeCarriesPlacerState(t *testing.T) {
	p := &statePlacer{}
	s := New("g", p)
	mustApply(t, s, 1, nodeAdded("a"), nodeAdded("b"), edgeAdded("ab", "a", "b"))
	mustApply(t, s, 2, nodeAdded("c"))
	data := keyframe(t, s)

	p2 := &statePlacer{}
	l := New("g", nil)
	if err := l.LoadKeyframe(data, p2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p2.calls, []string{"restore"}) || p2.txs != 2 {
		t.Fatalf("restored placer: calls %v, %d transactions; want only a restore, 2", p2.calls, p2.txs)
	}
	sameScene(t, s, l)
	mustApply(t, s, 3, nodeAdded("d"))
	mustApply(t, l, 3, nodeAdded("d"))
	sameScene(t, s, l)
	if again := keyframe(t, l); !bytes.Equal(again, keyframe(t, s)) {
		t.Fatal("keyframes differ after the same transaction")
	}

	// A placer that is no StatefulPlacer is told the slots, as before.
	p3 := &logPlacer{}
	if err := New("g", nil).LoadKeyframe(data, p3); err != nil || !slices.Contains(p3.calls, "node+0") {
		t.Fatalf("plain placer: %v, calls %v", err, p3.calls)
	}
	// State whose positions are not the keyframe's is refused.
	if err := New("g", nil).LoadKeyframe(data, &statePlacer{skew: 1}); !errors.Is(err, ErrPlacerState) {
		t.Fatalf("skewed state: %v, want ErrPlacerState", err)
	}
	// A keyframe of format 1 (no placer state) is refused.
	old := slices.Clone(data)
	binary.LittleEndian.PutUint32(old[8:], 1)
	if err := New("g", nil).LoadKeyframe(old, &statePlacer{}); !errors.Is(err, ErrInvalidKeyframe) {
		t.Fatalf("format 1: %v, want ErrInvalidKeyframe", err)
	}
}

// TestKeyframePlacerStateRefused: a state the placer's RestoreState refuses
// fails the load with ErrPlacerState and leaves the scene empty.
func TestKeyframePlacerStateRefused(t *testing.T) {
	s := New("g", &statePlacer{})
	mustApply(t, s, 1, nodeAdded("a"))
	data := keyframe(t, s)
	// Cut the state to 3 bytes (statePlacer refuses it) and fix the header.
	body := data[keyframeHeaderLen:]
	at := len(body) - 13 // the state's length prefix: 12 bytes (count, x, y) follow
	if body[at] != 12 {
		t.Fatalf("state length %d, want 12", body[at])
	}
	body = append(append(slices.Clone(body[:at]), 3), body[at+1:at+4]...)
	bad := append([]byte(keyframeMagic), make([]byte, 16)...)
	binary.LittleEndian.PutUint32(bad[8:], KeyframeFormat)
	binary.LittleEndian.PutUint32(bad[12:], wire.Checksum(body))
	binary.LittleEndian.PutUint64(bad[16:], uint64(len(body)))
	bad = append(bad, body...)
	l := New("g", nil)
	if err := l.LoadKeyframe(bad, &statePlacer{}); !errors.Is(err, ErrPlacerState) || errors.Is(err, ErrInvalidKeyframe) {
		t.Fatalf("refused state: %v, want ErrPlacerState only", err)
	}
	if l.LiveNodes() != 0 {
		t.Fatalf("after a refused state the scene holds %d nodes", l.LiveNodes())
	}
}
