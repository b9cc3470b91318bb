package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairn-graph/cairn/persistence"
	"github.com/nats-io/nats.go/jetstream"
)

// Auditor is what the projections' audit asks of the event store
// (*persistence.Store is one): the stream's census, a graph's archive
// objects, and the checks of one graph's history.
type Auditor interface {
	Census(ctx context.Context) (persistence.Census, error)
	Archives(ctx context.Context, graph string) ([]persistence.ArchiveInfo, error)
	Verify(ctx context.Context, graph string) (persistence.VerifyResult, error)
	CheckHead(ctx context.Context, graph string, seq uint64, head persistence.Head) error
}

var _ Auditor = (*persistence.Store)(nil)

// appliedHead is where a graph's projection stands: the stream sequence of
// the last transaction it applied and that transaction's last event.
type appliedHead struct {
	graph string
	seq   uint64
	head  persistence.Head
	// upTo is how many transactions of the graph with a stream sequence up
	// to headsRequest.upTo this run applied, -1 when not known (more than
	// auditRecent applied since).
	upTo int64
	// held counts the graph's transactions its read model holds, from its
	// first on (see projected.held; -1 when not known).
	held int64
}

// auditRecent is how many of a graph's last applied stream sequences a
// shard keeps for the audit.
const auditRecent = 4

// Shard messages of the audit.
type (
	// headsRequest asks a shard for the applied heads of its graphs that
	// are not stopped.
	headsRequest struct {
		upTo  uint64
		reply chan<- []appliedHead
	}
	// quarantineGraph stops a graph's projection: its history, as the
	// store holds it now, fails a check.
	quarantineGraph struct {
		graph string
		seq   uint64
		err   error
	}
)

// heads answers a headsRequest.
func (a *shardActor) heads(upTo uint64) []appliedHead {
	out := make([]appliedHead, 0, len(a.graphs))
	for id, e := range a.graphs {
		if e.stopped != nil || e.g == nil || e.head.N == 0 {
			continue
		}
		h := appliedHead{graph: id, seq: e.g.AsOf(), head: e.head, upTo: int64(e.applied), held: e.held}
		for i := range min(e.applied, auditRecent) {
			if e.recent[(e.applied-1-i)%auditRecent] <= upTo {
				break
			}
			h.upTo--
		}
		if e.applied > auditRecent && h.upTo <= int64(e.applied-auditRecent) {
			h.upTo = -1 // more than auditRecent applied after upTo
		}
		out = append(out, h)
	}
	return out
}

// quarantine stops m.graph's projection unless it stopped already. A
// graph the shard never saw (its history removed before the reader got to
// it, and a grain found out) is entered stopped, so that its queries answer
// DATA_LOSS rather than NOT_FOUND.
func (a *shardActor) quarantine(m *quarantineGraph) {
	e := a.graphs[m.graph]
	if e == nil {
		e = &projected{}
		a.put(m.graph, e)
	}
	if e.stopped != nil {
		return
	}
	e.stopped = &ProjectionStoppedError{Graph: m.graph, Seq: m.seq, Err: m.err}
	a.p.fail(e.stopped)
}

// audit watches the stream's state against what the projections applied,
// every cfg.AuditEvery until ctx ends, so that history removed behind the
// engine's back (a purge of a graph's subject, a deleted message, a deleted
// or recreated stream, an archive object gone) quarantines the graphs it
// concerns instead of being served from read models that no longer match
// the store:
//
//   - the stream gone, or ending before a transaction a graph's projection
//     applied: every such graph is quarantined;
//   - on the first round, each graph's applied head must still be in the
//     store (stream or archive): this catches what was removed while the
//     engine was down, for graphs restored from snapshots;
//   - a graph whose subject holds fewer messages than at the last round (an
//     archive, or a purge or deletion), or whose subject and archive
//     objects together hold fewer transactions than its read model does
//     (projected.held, kept across restarts by the manifests: this catches
//     a message deleted while the engine was down beneath the snapshot it
//     restarted from), has its whole history verified across archive and
//     stream, and its applied head checked.
//
// Breaks after the applied head reach the projection itself, which checks
// every transaction's link to the one before.
//
// A finding quarantines only when the next round finds it again: on a
// replicated stream, a census or a read answered during a leader election
// or by a replica catching up can lag behind what the projections applied
// a moment ago (seen in bench failover: a census 20 transactions short),
// while history removed stays removed.
func (p *Projections) audit(ctx context.Context, st Auditor) {
	select {
	case <-p.ready:
	case <-ctx.Done():
		return
	}
	t := time.NewTimer(0) // the first round at once: it checks what a restart restored
	defer t.Stop()
	var prev map[string]uint64
	a := &auditState{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		a.next = map[string]bool{}
		counts, err := p.auditRound(ctx, st, prev, a)
		a.suspects = a.next
		if ctx.Err() != nil {
			return
		}
		p.audits.Add(1)
		p.lastAuditNs.Store(int64(time.Since(start)))
		if err != nil {
			p.log.LogAttrs(ctx, slog.LevelWarn, "audit of the event stream failed; trying again next round", slog.String("err", err.Error()))
		} else {
			prev = counts
		}
		t.Reset(p.cfg.AuditEvery)
	}
}

// auditState is what one audit round hands the next: the graphs it
// suspected.
type auditState struct {
	suspects map[string]bool // found by the last round
	next     map[string]bool // found by this round
	lost     error           // the stream gone, as the last round found
	// covered holds, per graph, how many of the transactions its read
	// model holds a round found not in the stream but accounted for (in
	// archive objects, or by a verify of the whole history): a later
	// round looks again only when more are missing (see missing).
	covered map[string]uint64
}

// suspect quarantines h's graph with err when the last round suspected it
// too, and otherwise marks it for the next round.
func (p *Projections) suspect(ctx context.Context, a *auditState, h appliedHead, err error) {
	a.next[h.graph] = true
	if a.suspects[h.graph] {
		p.quarantine(h, err)
		return
	}
	p.log.LogAttrs(ctx, slog.LevelWarn, "audit found a graph's history short; the next round decides (a replica or a census can lag)",
		slog.String("graph", h.graph), slog.Uint64("applied_seq", h.seq), slog.String("err", err.Error()))
}

// auditRound runs one round of audit and returns the census's counts; prev
// is the last round's (nil on the first).
func (p *Projections) auditRound(ctx context.Context, st Auditor, prev map[string]uint64, a *auditState) (map[string]uint64, error) {
	// Asked before the census: every transaction applied then was in the
	// stream, so the stream must reach it.
	before, err := p.appliedHeads(ctx, 0)
	if err != nil {
		return nil, err
	}
	c, err := st.Census(ctx)
	if err != nil {
		if errors.Is(err, persistence.ErrTruncated) {
			lost := a.lost
			a.lost = err
			if lost == nil {
				p.log.LogAttrs(ctx, slog.LevelWarn, "audit found the event stream gone; the next round decides", slog.String("err", err.Error()))
				return nil, err
			}
			if p.lost.CompareAndSwap(nil, &err) {
				p.log.LogAttrs(ctx, slog.LevelError, "the event stream is gone: every graph answers DATA_LOSS", slog.String("err", err.Error()))
			}
			for _, h := range before {
				p.quarantine(h, err)
			}
		}
		return nil, err
	}
	a.lost = nil
	for _, h := range before {
		if h.seq > c.LastSeq {
			p.suspect(ctx, a, h, fmt.Errorf("%w: the event stream ends at seq %d, before seq %d that the graph's projection applied (the stream was deleted or recreated)",
				persistence.ErrTruncated, c.LastSeq, h.seq))
		}
	}
	// Asked after the census: every transaction a graph applied with a
	// sequence up to the census's last was in the stream when it was
	// taken, unless removed.
	heads, err := p.appliedHeads(ctx, c.LastSeq)
	if err != nil {
		return nil, err
	}
	for _, h := range heads {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch n, had := c.Graphs[h.graph], prev[h.graph]; {
		case h.seq > c.LastSeq:
			// Applied after the census; the next round looks at it.
		case a.next[h.graph]:
			// Suspected above.
		case n == 0:
			p.suspect(ctx, a, h, fmt.Errorf("%w: the graph's subject holds no message, but the projection applied seq %d (purged)", persistence.ErrTruncated, h.seq))
		case a.suspects[h.graph], prev != nil && n < had, int64(n) < h.upTo, p.missing(ctx, st, a, h, n):
			// Suspected by the last round, or fewer messages than last
			// round, or than this run applied, or fewer transactions in
			// stream and archive than the read model holds: an archive
			// moved some, or they were purged or deleted. Only the whole
			// chain tells.
			if res, err := st.Verify(ctx, h.graph); err != nil {
				if isDataLoss(err) {
					err = fmt.Errorf("%w: messages of the graph were removed from the stream: %w", persistence.ErrTruncated, err)
				}
				p.auditFailed(ctx, a, h, err)
			} else if res.LastSeq < h.seq {
				p.suspect(ctx, a, h, fmt.Errorf("%w: the graph's history ends at seq %d, before seq %d that its projection applied", persistence.ErrTruncated, res.LastSeq, h.seq))
			} else {
				if h.held > int64(n) {
					// The chain holds: what is not in the stream is
					// accounted for (an archive's metadata undercounts
					// it, or the count is wrong); not verified again for
					// this shortfall.
					a.cover(h.graph, uint64(h.held)-n)
				}
				p.auditFailed(ctx, a, h, st.CheckHead(ctx, h.graph, h.seq, h.head))
			}
		case prev == nil:
			p.auditFailed(ctx, a, h, st.CheckHead(ctx, h.graph, h.seq, h.head))
		}
	}
	return c.Graphs, nil
}

// missing reports whether h's graph has fewer transactions in the store,
// its n messages in the stream and those its archive objects hold, than its
// read model holds (h.held, when known): some were deleted or purged, while
// the engine ran or while it was down. The archive objects are listed only
// when the stream holds fewer than the read model, and then only when more
// are missing than a round before accounted for (a.covered): an archive
// moves messages out of the stream, a deletion removes them, anything else
// leaves the shortfall as it was. A store that does not answer is left to
// the next round.
//
// Messages of the graph's subject that are not its transactions (garbage,
// or an archive's copy still in the stream after a crash before its purge)
// count as held: they can hide a deletion from this check, never make a
// false alarm.
func (p *Projections) missing(ctx context.Context, st Auditor, a *auditState, h appliedHead, n uint64) bool {
	if h.held <= int64(n) {
		return false // or not known
	}
	short := uint64(h.held) - n
	if short <= a.covered[h.graph] {
		return false
	}
	arcs, err := st.Archives(ctx, h.graph)
	if err != nil && !errors.Is(err, persistence.ErrNoObjects) {
		if ctx.Err() == nil {
			p.log.LogAttrs(ctx, slog.LevelWarn, "audit could not list a graph's archives", slog.String("graph", h.graph), slog.String("err", err.Error()))
		}
		return false
	}
	var archived uint64
	for _, arc := range arcs {
		archived += uint64(max(arc.Transactions, 0))
	}
	if archived >= short {
		a.cover(h.graph, archived)
		return false
	}
	return true
}

// cover notes that n of graph's transactions are accounted for outside the
// stream (see auditState.covered).
func (a *auditState) cover(graph string, n uint64) {
	if a.covered == nil {
		a.covered = map[string]uint64{}
	}
	a.covered[graph] = n
}

// auditFailed suspects h's graph (see suspect) when err says its history
// fails its check; a store that did not answer is left to the next round.
func (p *Projections) auditFailed(ctx context.Context, a *auditState, h appliedHead, err error) {
	switch {
	case err == nil, ctx.Err() != nil:
	case errors.Is(err, persistence.ErrNotFound):
		p.suspect(ctx, a, h, fmt.Errorf("%w: the transaction at seq %d that the graph's projection applied is in neither stream nor archive: %w", persistence.ErrTruncated, h.seq, err))
	case isDataLoss(err):
		p.suspect(ctx, a, h, err)
	default:
		p.log.LogAttrs(ctx, slog.LevelWarn, "audit could not check a graph", slog.String("graph", h.graph), slog.String("err", err.Error()))
	}
}

// watchArchives quarantines the graph of every archive object deleted
// while it runs (until ctx ends): the engine never deletes one, so a
// deletion is history gone behind its back. It watches the object store's
// updates from now on; a deletion while the engine was down leaves the
// graph's count of transactions short (see missing), and is found by the
// readers of the archived stretch (time travel, a rebuild, cairn verify).
func (p *Projections) watchArchives(ctx context.Context, obj jetstream.ObjectStore) {
	w, err := obj.Watch(ctx, jetstream.UpdatesOnly())
	if err != nil {
		p.log.LogAttrs(ctx, slog.LevelWarn, "cannot watch the object store for deleted archives", slog.String("err", err.Error()))
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case info, ok := <-w.Updates():
			if !ok {
				return
			}
			if info == nil || !info.Deleted {
				continue
			}
			graph, _, to, ok := persistence.ParseArchiveName(info.Name)
			if !ok {
				continue
			}
			p.Quarantine(graph, to, fmt.Errorf("%w: archive object %s, which held the graph's transactions up to seq %d, was deleted (the engine never deletes one)",
				persistence.ErrTruncated, info.Name, to))
		}
	}
}

// quarantine has h's shard stop h's graph with err.
func (p *Projections) quarantine(h appliedHead, err error) {
	p.Quarantine(h.graph, h.seq, err)
}

// Quarantine stops graph's projection, if it has not stopped, because its
// stored history failed a check that something else made (a grain's
// replay): err, wrapping a persistence.IsDataLoss error, names the stream
// sequence seq. Its queries answer DATA_LOSS from then on.
func (p *Projections) Quarantine(graph string, seq uint64, err error) {
	p.root.Send(p.shards[p.Shard(graph)].pid, &quarantineGraph{graph: graph, seq: seq, err: err})
}

// appliedHeads asks every shard for its graphs' applied heads.
// upTo: see appliedHead.upTo.
func (p *Projections) appliedHeads(ctx context.Context, upTo uint64) ([]appliedHead, error) {
	reply := make(chan []appliedHead, len(p.shards))
	for _, sh := range p.shards {
		p.root.Send(sh.pid, &headsRequest{upTo: upTo, reply: reply})
	}
	var out []appliedHead
	for range p.shards {
		select {
		case hs := <-reply:
			out = append(out, hs...)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}
