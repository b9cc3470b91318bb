package actors_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
)

// After a restart (or a failover) every graph activates at once: a member
// runs at most MaxActivations of them together, the others wait their
// turn with their commands queued, and every command is answered.
func TestActivationsTakeTurns(t *testing.T) {
	_, st := newStore(t)
	const graphs, limit = 12, 2
	first := startMember(t, st, quickGrains())
	for i := range graphs {
		g := fmt.Sprintf("g%d", i)
		first.mustExec(cmdtest.Envelope(g, "create", cmdtest.CreateGraph()))
		first.mustExec(cmdtest.Envelope(g, "a", cmdtest.AddNode("a")))
	}
	first.stop()

	held := &heldStore{Store: st}
	cfg := quickGrains()
	cfg.MaxActivations = limit
	m := startMember(t, held, cfg)
	held.hold()
	var wg sync.WaitGroup
	errs := make(chan error, graphs)
	for i := range graphs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := fmt.Sprintf("g%d", i)
			rep := m.exec(cmdtest.Envelope(g, "b", cmdtest.AddNode("b")))
			if err := aggregate.ErrorFromProto(rep.GetError()); err != nil {
				errs <- fmt.Errorf("%s: %v", g, err)
			}
		}()
	}
	// Two activations read the store (held); every other one waits for
	// its turn instead of reading too.
	for range limit {
		<-held.in
	}
	eventually(t, "the other activations wait their turn", 10*time.Second, func() bool {
		return m.grains.Stats().ActivationWaits == graphs-limit
	})
	if n := len(held.in); n != 0 {
		t.Fatalf("%d more activations read the store while %d ran", n, limit)
	}
	held.release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := m.grains.Stats()
	if s.ActivationsAtOnce != limit || s.Activations != graphs {
		t.Errorf("%d activations, at most %d at once; want %d, %d at once", s.Activations, s.ActivationsAtOnce, graphs, limit)
	}
	if h := m.grains.Health(); h.ActivationWaits != graphs-limit || h.ActivationsAtOnce != limit {
		t.Errorf("health: %d waits, %d at once", h.ActivationWaits, h.ActivationsAtOnce)
	}
}
