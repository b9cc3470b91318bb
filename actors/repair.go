package actors

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Repairer is what Projections.Repair needs of the event store
// (*persistence.Store is one).
type Repairer interface {
	Raw(ctx context.Context, seq uint64) (subject string, data []byte, err error)
	NextAfter(ctx context.Context, graph string, seq uint64) (persistence.Record, error)
	Drop(ctx context.Context, graph string, seq uint64) error
	Subject(graph string) string
	Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error)
}

var _ Repairer = (*persistence.Store)(nil)

// ErrNotRepairable: the quarantined graph's history cannot be mended by
// dropping the message that stopped it (it is part of the chain, or the
// history after it is broken too, or history was truncated).
var ErrNotRepairable = errors.New("not repairable")

// Shard messages of a repair.
type (
	// stoppedRequest asks for a quarantined graph's state: where it
	// stopped and the head it had applied.
	stoppedRequest struct {
		graph string
		reply chan<- stoppedState
	}
	stoppedState struct {
		stopped *ProjectionStoppedError // nil: not stopped
		asOf    uint64
		head    persistence.Head
	}
	// resumeGraph un-stops a graph and folds what it skipped.
	resumeGraph struct {
		graph string
		reply chan<- error
	}
)

// Repair mends graph's quarantine when the message at stream sequence seq,
// the one that stopped it, was never part of its chain: garbage, a
// transaction that does not link to the head before it, or one whose events
// do not apply, and that no later transaction of the graph links to. It
// checks that, erases the message (persistence.Store.Drop), folds what the
// projection skipped since, and resumes the graph; grains load afresh on
// their next command. Anything else is refused with ErrNotRepairable and
// nothing is changed.
//
// Errors: ErrNotRepairable; persistence.ErrNotFound (graph unknown, or not
// quarantined at seq); store errors.
func (p *Projections) Repair(ctx context.Context, graph string, seq uint64) (api.RepairResult, error) {
	res := api.RepairResult{Graph: graph, Seq: seq}
	st, ok := p.cfg.Store.(Repairer)
	if !ok {
		return res, fmt.Errorf("repair %s: the projections have no event store to repair", graph)
	}
	state, err := p.stoppedState(ctx, graph)
	if err != nil {
		return res, err
	}
	switch {
	case state.stopped == nil:
		return res, fmt.Errorf("repair %s: %w: the graph is not quarantined", graph, persistence.ErrNotFound)
	case !state.stopped.DataLoss():
		return res, fmt.Errorf("repair %s: %w: its projection stopped on a read-model failure, not on its history: %v", graph, ErrNotRepairable, state.stopped)
	case errors.Is(state.stopped, persistence.ErrTruncated):
		return res, fmt.Errorf("repair %s: %w: history was removed (%v); restore it from a copy of the stream", graph, ErrNotRepairable, state.stopped.Err)
	case seq <= state.asOf:
		return res, fmt.Errorf("repair %s: %w: the transaction at seq %d was applied: it is part of the chain", graph, ErrNotRepairable, seq)
	case state.stopped.Seq != seq:
		return res, fmt.Errorf("repair %s: %w: the graph is quarantined at seq %d, not %d: %v", graph, persistence.ErrNotFound, state.stopped.Seq, seq, state.stopped)
	}
	subject, data, err := st.Raw(ctx, seq)
	if err != nil {
		return res, fmt.Errorf("repair %s: %w", graph, err)
	}
	if subject != st.Subject(graph) {
		return res, fmt.Errorf("repair %s: %w: the message at seq %d is on subject %s", graph, persistence.ErrNotFound, seq, subject)
	}
	res.Reason = state.stopped.Err.Error()
	// The message must not be a piece of the chain that later transactions
	// build on: the graph's next transaction must link to the head before
	// it (or there is none).
	next, err := st.NextAfter(ctx, graph, seq)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
	case err != nil:
		return res, fmt.Errorf("repair %s: %w: the transaction after seq %d: %w", graph, ErrNotRepairable, seq, err)
	default:
		if _, err := checkTx(p.cfg.Trust, graph, state.head, next.Seq, next.Tx); err != nil {
			return res, fmt.Errorf("repair %s: %w: without seq %d the chain still does not continue: %w", graph, ErrNotRepairable, seq, err)
		}
	}
	tx := &cairnv1.Transaction{}
	if proto.Unmarshal(data, tx) == nil {
		d, err := decodeChecked(p.cfg.Trust, graph, seq, tx)
		switch {
		case err != nil:
			// Not a piece of any chain of graph: droppable.
		case d.prev.N > state.head.N:
			// A sound transaction further on: what is missing is before it.
			return res, fmt.Errorf("repair %s: %w: the transaction at seq %d starts at position %d, but the graph's history stops at position %d: transactions before it are missing; restore them from a copy of the stream",
				graph, ErrNotRepairable, seq, d.prev.N+1, state.head.N)
		case d.linksTo(graph, seq, state.head) == nil && !errors.Is(state.stopped, errInconsistent):
			return res, fmt.Errorf("repair %s: %w: the transaction at seq %d continues the chain (%d events)", graph, ErrNotRepairable, seq, len(d.events))
		}
	}
	if err := st.Drop(ctx, graph, seq); err != nil {
		return res, fmt.Errorf("repair %s: %w", graph, err)
	}
	res.Dropped = true
	reply := make(chan error, 1)
	p.root.Send(p.shards[p.Shard(graph)].pid, &resumeGraph{graph: graph, reply: reply})
	select {
	case err = <-reply:
	case <-ctx.Done():
		return res, fmt.Errorf("repair %s: dropped seq %d; resuming: %w", graph, seq, ctx.Err())
	}
	if err != nil {
		return res, fmt.Errorf("repair %s: dropped seq %d, but the graph stays quarantined: %w", graph, seq, err)
	}
	res.Resumed = true
	state, err = p.stoppedState(ctx, graph)
	if err == nil {
		res.AppliedSeq = state.asOf
	}
	return res, nil
}

func (p *Projections) stoppedState(ctx context.Context, graph string) (stoppedState, error) {
	reply := make(chan stoppedState, 1)
	p.root.Send(p.shards[p.Shard(graph)].pid, &stoppedRequest{graph: graph, reply: reply})
	select {
	case s := <-reply:
		return s, nil
	case <-ctx.Done():
		return stoppedState{}, ctx.Err()
	}
}

// stoppedState answers a stoppedRequest.
func (a *shardActor) stoppedState(graph string) stoppedState {
	e := a.graphs[graph]
	if e == nil || e.g == nil {
		return stoppedState{}
	}
	return stoppedState{stopped: e.stopped, asOf: e.g.AsOf(), head: e.head}
}

// resume un-stops graph and folds its transactions after the read model's
// point up to what the shard has seen (the reader skipped them while it was
// stopped). On a failure the graph stops again, with that failure.
func (a *shardActor) resume(graph string) error {
	e := a.graphs[graph]
	if e == nil || e.stopped == nil {
		return nil
	}
	if a.p.cfg.Store == nil {
		return errors.New("no event store")
	}
	failed, err := a.foldRange(a.p.cfg.Store, e, e.g.AsOf()+1, a.seq)
	switch {
	case err != nil && failed == 0:
		return err // the store failed: still stopped as before
	case err != nil:
		pe := &ProjectionStoppedError{Graph: graph, Seq: failed, Err: err}
		e.stopped = pe
		a.p.fail(pe)
		return pe
	}
	e.stopped = nil
	a.p.unfail(graph)
	return nil
}
