package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// ProbeGrain returns the state of the graph grain at pid as aggregate.Export
// gives it (idempotency window included), its head and its last sequence.
func ProbeGrain(root *actor.RootContext, pid *actor.PID) (*cairnv1.GraphSnapshot, persistence.Head, uint64, error) {
	return probeGrain(root, pid, false)
}

// PingGrain is ProbeGrain without the state: the grain's head and last
// sequence, once it is loaded.
func PingGrain(root *actor.RootContext, pid *actor.PID) (persistence.Head, uint64, error) {
	_, head, seq, err := probeGrain(root, pid, true)
	return head, seq, err
}

func probeGrain(root *actor.RootContext, pid *actor.PID, headOnly bool) (*cairnv1.GraphSnapshot, persistence.Head, uint64, error) {
	ch := make(chan probed, 1)
	root.Send(pid, &stateProbe{reply: ch, headOnly: headOnly})
	select {
	case p := <-ch:
		return p.snap, p.head, p.seq, p.err
	case <-time.After(5 * time.Minute): // a full replay of a long history takes a while
		return nil, persistence.Head{}, 0, fmt.Errorf("grain %s did not answer the probe", pid)
	}
}
