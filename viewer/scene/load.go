package scene

import (
	"fmt"
	"time"

	"github.com/cairn-graph/cairn/readmodel"
)

// Load resets the scene (with placer as its Placer) and fills it from a
// read model instead of the history: g's live nodes, then its live edges,
// in their deterministic order (readmodel.Graph.LiveNodes, LiveEdges), as
// one transaction ending at g.AsOf(), whose last event has CID head and
// whose time is at (a read-model snapshot records both). Slots are then a
// pure function of the read model, not of the history before it: a scene
// loaded from a snapshot and one folded from the start hold the same
// nodes and edges in other slots. The next Frame published is Full.
//
// It returns an error wrapping ErrInvalidEvent when g is inconsistent (an
// edge whose endpoint it does not list), after which the scene must be
// Reset.
func (s *Scene) Load(g *readmodel.Graph, placer Placer, head string, at time.Time) error {
	s.Reset(placer)
	for n := range g.LiveNodes() {
		var value []byte
		has := false
		if s.opt.colorComponent != "" {
			for _, c := range n.Components {
				if c.Type == s.opt.colorComponent {
					value, has = c.Value, true
				}
			}
		}
		if reason := s.add(n.ID, n.Categories, value, has); reason != "" {
			return fmt.Errorf("load %s at seq %d: %s: %w", g.ID(), g.AsOf(), reason, ErrInvalidEvent)
		}
	}
	for e := range g.LiveEdges() {
		if reason := s.addEdge(e.ID, e.From, e.To); reason != "" {
			return fmt.Errorf("load %s at seq %d: %s: %w", g.ID(), g.AsOf(), reason, ErrInvalidEvent)
		}
	}
	s.EndTx(g.AsOf(), head, at)
	return nil
}
