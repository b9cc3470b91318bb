package actors_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// A grain whose member is fenced (GrainConfig.Fence answers an error)
// appends nothing: the command is refused UNAVAILABLE and the stream does
// not change.
func TestGrainFenceRefusesAppends(t *testing.T) {
	_, store := newStore(t)
	var fenced atomic.Bool
	cfg := quickGrains()
	cfg.Fence = func() error {
		if fenced.Load() {
			return errors.New("cluster member is fenced")
		}
		return nil
	}
	m := startMember(t, store, cfg)
	m.mustExec(cmdtest.Envelope("g", "c1", cmdtest.CreateGraph()))
	before := len(readGraph(t, store, "g"))
	fenced.Store(true)
	rep := m.exec(cmdtest.Envelope("g", "c2", cmdtest.AddNode("n1")))
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE {
		t.Fatalf("command at a fenced member: %v, want UNAVAILABLE", rep)
	}
	if after := len(readGraph(t, store, "g")); after != before {
		t.Fatalf("a fenced member appended: %d transactions, had %d", after, before)
	}
	fenced.Store(false)
	m.mustExec(cmdtest.Envelope("g", "c2", cmdtest.AddNode("n1")))
}

// A grain that stops writes its last snapshot, unless its member is
// fenced: a fenced member writes nothing more, and must stop its grains
// at once to join again (a paused member waited for snapshot writes that
// hung, AppendTimeout each, before it rejoined).
func TestGrainFencedStopWritesNoSnapshot(t *testing.T) {
	w := newSnapWorld(t)
	var fenced atomic.Bool
	cfg := snapGrains(w.snaps, 1000)
	cfg.Fence = func() error {
		if fenced.Load() {
			return errors.New("cluster member is fenced")
		}
		return nil
	}
	m := startMember(t, w.store, cfg)
	m.mustExec(cmdtest.Envelope("a", "c1", cmdtest.CreateGraph()))
	m.idle()
	if n := m.grains.Stats().SnapshotsWritten; n != 1 {
		t.Fatalf("%d snapshots written as a grain stopped, want 1", n)
	}
	m.mustExec(cmdtest.Envelope("b", "c1", cmdtest.CreateGraph()))
	fenced.Store(true)
	m.idle()
	if n := m.grains.Stats().SnapshotsWritten; n != 1 {
		t.Fatalf("%d snapshots written, want still 1: a grain of a fenced member wrote its last snapshot", n)
	}
}
