package aggregate

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Config tunes a Core. DefaultConfig documents every default.
type Config struct {
	// Window is how many recent command ids (with their replies) the core
	// remembers, so that a retry gets the first answer. Default 10,000.
	Window int
	// MaxBatchCommands caps the commands of one group-commit transaction;
	// an envelope that alone exceeds it still goes out alone. Default 4,096.
	MaxBatchCommands int
	// MaxBatchBytes caps the estimated stored size of one group-commit
	// transaction: envelopes that would take a batch past it wait for the
	// next. An envelope that alone exceeds it still goes out alone, up to
	// MaxTxBytes. Default 1 MiB.
	MaxBatchBytes int
	// MaxTxBytes is the hard limit on one transaction's estimated stored
	// size: an envelope whose events alone exceed it is refused as
	// RESOURCE_EXHAUSTED, naming both sizes. Its owner lowers it to what
	// its store accepts (the graph grain does). Default 64 MiB.
	MaxTxBytes int
	// MaxQueue caps envelopes waiting behind an append in flight; more are
	// refused as UNAVAILABLE. Default 10,000.
	MaxQueue int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Window: 10_000, MaxBatchCommands: 4096, MaxBatchBytes: 1 << 20, MaxTxBytes: 64 << 20, MaxQueue: 10_000}
}

// Validate returns every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"idempotency window", c.Window}, {"max batch commands", c.MaxBatchCommands}, {"max batch bytes", c.MaxBatchBytes},
		{"max transaction bytes", c.MaxTxBytes}, {"max queue", c.MaxQueue}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, not %d", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// Core is a graph aggregate with its group commit, as a state machine
// without I/O, time or goroutines, in the manner of etcd's raft: its owner
// feeds it envelopes (Propose) and the outcomes of appends (Appended,
// Reloaded), and carries out what each step returns in a Ready: answers to
// send and at most one transaction to append.
//
// While a transaction is being appended, new envelopes queue; when it is
// stored, the queued ones are decided one by one on the new state and the
// valid ones go out together (group commit). A refusal decided on top of
// the batch's own commands is held until the batch is stored, and decided
// again if it is not. W is the owner's handle for whoever waits for an
// answer.
//
// A Core is not safe for concurrent use.
type Core[W any] struct {
	cfg      Config
	state    *State
	recent   *Window
	queue    []*request[W]
	queue1   [4]*request[W]         // the queue's array while it is short
	pending  map[string]*request[W] // queued, in flight or awaiting a reload, by command id
	inflight *Batch[W]
	retry    []*request[W] // a conflicted batch's envelopes, until Reloaded
	stopping bool
	hash     hasher // computes the requests' ContentHash
}

type request[W any] struct {
	env      *cairnv1.CommandEnvelope
	hash     []byte // ContentHash(env), once needed
	waiters  []W
	first    [1]W // waiters' first backing array
	attempts int  // appends of this envelope that met a conflict
}

func (r *request[W]) contentHash(h *hasher) []byte {
	if r.hash == nil {
		r.hash = h.contentHash(r.env)
	}
	return r.hash
}

// Batch is a transaction to append: the events of the accepted envelopes,
// in order, and a command record for each.
type Batch[W any] struct {
	Events   []*cairnv1.Event
	Commands []*cairnv1.CommandRecord
	// Bytes is the estimated stored size (an upper bound).
	Bytes int
	reqs  []*request[W]
	held  []held[W]
	// The backing arrays of a batch of one single-event command (the
	// common case under one caller per graph): one allocation for the
	// batch instead of four.
	reqs1   [1]*request[W]
	events1 [1]*cairnv1.Event
	cmds1   [1]*cairnv1.CommandRecord
}

// Waiters calls fn for each waiter of the batch's envelopes, in the order
// of their commands (a grain links each command's trace to the append).
func (b *Batch[W]) Waiters(fn func(W)) {
	for _, r := range b.reqs {
		for _, w := range r.waiters {
			fn(w)
		}
	}
}

type held[W any] struct {
	r   *request[W]
	rep *cairnv1.CommandReply
}

// Answer is a reply for the waiters of one command.
type Answer[W any] struct {
	To    []W
	Reply *cairnv1.CommandReply
}

// Ready is what a step asks its owner to do, in this order: send Answers;
// then, when Reload is set, read the transactions stored since the last
// one folded, Fold each and call Reloaded; else, when Append is not nil,
// append it and call Appended with the outcome.
type Ready[W any] struct {
	Answers []Answer[W]
	Append  *Batch[W]
	Reload  bool
}

func (r *Ready[W]) answer(to []W, rep *cairnv1.CommandReply) {
	if len(to) > 0 {
		r.Answers = append(r.Answers, Answer[W]{To: to, Reply: rep})
	}
}

// Head is where a command's events end in the chain: the position of its
// last event and that event's CID.
type Head struct {
	N   uint64
	CID string
}

// AppendResult is the outcome of appending a Batch.
type AppendResult struct {
	// Seq is the stream sequence the transaction was stored at.
	Seq uint64
	// TxID is the transaction's id.
	TxID string
	// Heads holds, for each of the batch's commands, where its events end.
	Heads []Head
	// Conflict: the store moved on (another writer appended first), and
	// nothing was stored.
	Conflict bool
	// Err, when not nil and not a conflict: nothing is known to be stored.
	// The commands are refused as UNAVAILABLE (a retry may succeed), or
	// with Err itself when it is a *CommandError (RESOURCE_EXHAUSTED for a
	// transaction the store will never take, say).
	Err error
}

// New returns a core over state s (folded to the store's last transaction)
// and its idempotency window (nil: an empty one).
func New[W any](s *State, recent *Window, cfg Config) (*Core[W], error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aggregate config: %w", err)
	}
	if recent == nil {
		recent = NewWindow(cfg.Window)
	}
	return &Core[W]{cfg: cfg, state: s, recent: recent, pending: map[string]*request[W]{}}, nil
}

// State returns the state. While a Batch is in flight it holds the batch's
// changes, uncommitted.
func (c *Core[W]) State() *State { return c.state }

// Window returns the idempotency window.
func (c *Core[W]) Window() *Window { return c.recent }

// Busy reports whether an append is in flight, a reload is awaited, or
// envelopes wait.
func (c *Core[W]) Busy() bool { return c.inflight != nil || c.retry != nil || len(c.queue) > 0 }

// InFlight reports whether a batch is being appended or a reload is
// awaited: the state then differs from the store's.
func (c *Core[W]) InFlight() bool { return c.inflight != nil || c.retry != nil }

// Queued counts the envelopes waiting.
func (c *Core[W]) Queued() int { return len(c.queue) }

// Propose takes an envelope and who waits for its answer. It answers at once
// a refusal that needs no state (ValidateEnvelope), a command id it
// remembers (a duplicate when the content is the same, FAILED_PRECONDITION
// naming the command id when it is not; see ContentHash), and a full queue;
// an id already queued or in flight gets w added to its waiters when the
// content is the same, and the same refusal when it is not.
func (c *Core[W]) Propose(env *cairnv1.CommandEnvelope, w W) Ready[W] {
	var rd Ready[W]
	// The request holds its first waiter, so an accepted envelope costs
	// one allocation here, not two; the refusals below answer it alone.
	r := &request[W]{env: env}
	r.first[0] = w
	r.waiters = r.first[:]
	to := r.waiters
	if err := ValidateEnvelope(env); err != nil {
		rd.answer(to, ErrorReply(env, AsCommandError(err)))
		return rd
	}
	if env.GetGraphId() != c.state.graph {
		rd.answer(to, ErrorReply(env, invalid("graph_id", "envelope for graph %s reached the aggregate of graph %s", env.GetGraphId(), c.state.graph)))
		return rd
	}
	if rep, ok := c.recent.Get(env.GetCommandId()); ok {
		if reused(rep, func() []byte { return ContentHash(env) }) {
			rd.answer(to, ErrorReply(env, reusedID(env.GetCommandId())))
		} else {
			rd.answer(to, duplicate(rep))
		}
		return rd
	}
	if r, ok := c.pending[env.GetCommandId()]; ok {
		if !bytes.Equal(r.contentHash(&c.hash), ContentHash(env)) {
			rd.answer(to, ErrorReply(env, reusedID(env.GetCommandId())))
			return rd
		}
		r.waiters = append(r.waiters, w)
		return rd
	}
	if c.stopping {
		rd.answer(to, ErrorReply(env, unavailable("graph %s is shutting down; retry with the same command id", c.state.graph)))
		return rd
	}
	if len(c.queue) >= c.cfg.MaxQueue {
		rd.answer(to, ErrorReply(env, unavailable("graph %s has %d commands queued; retry later", c.state.graph, len(c.queue))))
		return rd
	}
	c.pending[env.GetCommandId()] = r
	c.queue = append(c.queue, r)
	c.flush(&rd)
	return rd
}

func duplicate(rep *cairnv1.CommandReply) *cairnv1.CommandReply {
	dup := proto.Clone(rep).(*cairnv1.CommandReply)
	dup.Duplicate = true
	dup.ContentHash = nil // the window's own
	return dup
}

// ErrorReply is the reply refusing env with e.
func ErrorReply(env *cairnv1.CommandEnvelope, e *CommandError) *cairnv1.CommandReply {
	return &cairnv1.CommandReply{CommandId: env.GetCommandId(), Error: e.Proto()}
}

// eventOverhead bounds what a stored event adds to its protobuf size: its
// CID, the dag-cbor envelope's fixed fields and the link to the previous
// event (see persistence.Seal), with room to spare.
const eventOverhead = 200

// estimate bounds the stored size of env's events and command record.
func (c *Core[W]) estimate(env *cairnv1.CommandEnvelope, evs []*cairnv1.Event) int {
	n := 64 + len(env.GetCommandId()) + len(env.GetCorrelationId()) + len(env.GetCausationId()) + len(env.GetIssuer())
	per := eventOverhead + 2*len(c.state.graph)
	for _, ev := range evs {
		n += proto.Size(ev) + per
	}
	return n
}

// flush decides queued envelopes and puts the valid ones in the next batch,
// when none is in flight.
func (c *Core[W]) flush(rd *Ready[W]) {
	for c.inflight == nil && c.retry == nil && len(c.queue) > 0 && !c.stopping {
		b := &Batch[W]{Bytes: 128 + len(c.state.graph)}
		b.reqs, b.Events, b.Commands = b.reqs1[:0], b.events1[:0], b.cmds1[:0]
		c.state.Begin()
		taken := 0
		for _, r := range c.queue {
			if len(b.reqs) > 0 && len(b.Commands)+len(r.env.GetCommands()) > c.cfg.MaxBatchCommands {
				break
			}
			m := c.state.Mark()
			evs, err := DecideEnvelope(c.state, r.env)
			if err == nil {
				size := c.estimate(r.env, evs)
				if size > c.cfg.MaxTxBytes {
					c.state.Rollback(m)
					err = exhausted("commands", "the transaction would take about %d bytes; the limit is %d bytes (split the envelope, or remove fewer edges at once)", size, c.cfg.MaxTxBytes)
				} else if len(b.reqs) > 0 && b.Bytes+size > c.cfg.MaxBatchBytes {
					c.state.Rollback(m) // it goes in the next batch
					break
				} else {
					b.Bytes += size
				}
			}
			taken++
			if err != nil {
				rep := ErrorReply(r.env, AsCommandError(err))
				if len(b.reqs) == 0 {
					// Decided on stored state alone: final.
					c.finish(rd, r, rep)
				} else {
					// It may rest on the batch's own commands: answer when
					// the batch is stored, decide again if it is not.
					b.held = append(b.held, held[W]{r, rep})
				}
				continue
			}
			b.reqs = append(b.reqs, r)
			b.Events = append(b.Events, evs...)
			b.Commands = append(b.Commands, &cairnv1.CommandRecord{
				CommandId: r.env.GetCommandId(), CorrelationId: r.env.GetCorrelationId(),
				CausationId: r.env.GetCausationId(), Issuer: r.env.GetIssuer(), EventCount: uint32(len(evs)),
				ContentHash: r.contentHash(&c.hash),
			})
		}
		c.queue = c.queue[taken:]
		if len(b.reqs) == 0 {
			c.state.Commit()
			continue
		}
		c.inflight = b
		rd.Append = b
	}
	if len(c.queue) == 0 {
		// Let a burst's backing array go; the next envelopes queue in the
		// core's own small array, without an allocation.
		clear(c.queue1[:])
		c.queue = c.queue1[:0]
	}
}

// Appended takes the outcome of appending the batch in flight: on success
// the batch's changes are committed and its commands answered; on a
// conflict they are rolled back and Ready.Reload asks for the store's new
// transactions; on any other error they are rolled back and the commands
// refused as UNAVAILABLE (a retry with the same command id is safe).
func (c *Core[W]) Appended(res AppendResult) Ready[W] {
	var rd Ready[W]
	b := c.inflight
	if b == nil {
		return rd
	}
	c.inflight = nil
	switch {
	case res.Err == nil && !res.Conflict:
		c.state.Commit()
		for k, r := range b.reqs {
			h := res.Heads[k]
			rep := &cairnv1.CommandReply{CommandId: r.env.GetCommandId(), HeadCid: h.CID, Seq: res.Seq, Position: h.N, TxId: res.TxID}
			c.recent.Put(&cairnv1.CommandReply{CommandId: rep.CommandId, HeadCid: h.CID, Seq: res.Seq, Position: h.N, TxId: res.TxID, ContentHash: r.contentHash(&c.hash)})
			c.finish(&rd, r, rep)
		}
		for _, h := range b.held {
			c.finish(&rd, h.r, h.rep)
		}
	case res.Conflict:
		c.state.Rollback(0)
		c.state.Commit()
		c.retry = b.reqs
		c.requeueHeld(b)
		rd.Reload = true
		return rd
	default:
		c.state.Rollback(0)
		c.state.Commit()
		refusal := unavailable("append to graph %s failed: %v; retry with the same command id", c.state.graph, res.Err)
		var final *CommandError
		if errors.As(res.Err, &final) {
			refusal = final
		}
		for _, r := range b.reqs {
			c.finish(&rd, r, ErrorReply(r.env, refusal))
		}
		c.requeueHeld(b)
	}
	c.refuseIfStopping(&rd)
	return rd
}

// Flush decides what is queued into the next batch, when none is in
// flight. Appended leaves that to it after a success, so that the owner can
// take a snapshot of the committed state first.
func (c *Core[W]) Flush() Ready[W] {
	var rd Ready[W]
	c.flush(&rd)
	return rd
}

// Stored is a transaction read back from the store, its chain checked.
type Stored struct {
	Seq      uint64
	TxID     string
	Commands []*cairnv1.CommandRecord
	Events   []*cairnv1.Event
	// Heads holds, for each command, where its events end.
	Heads []Head
}

// Fold applies a stored transaction: at activation, and after a conflict
// before Reloaded. It must not be called while a batch is in flight.
func (c *Core[W]) Fold(t Stored) error {
	if c.inflight != nil {
		return fmt.Errorf("fold %s seq %d: a batch is in flight", c.state.graph, t.Seq)
	}
	return FoldTx(c.state, c.recent, t)
}

// FoldTx applies a stored transaction to s and remembers its commands'
// replies in w (nil: none).
func FoldTx(s *State, w *Window, t Stored) error {
	if len(t.Heads) != len(t.Commands) {
		return fmt.Errorf("fold %s seq %d: %d heads for %d commands", s.graph, t.Seq, len(t.Heads), len(t.Commands))
	}
	i := 0
	for k, cr := range t.Commands {
		n := int(cr.GetEventCount())
		if n == 0 {
			return fmt.Errorf("fold %s seq %d: command %q records no events", s.graph, t.Seq, cr.GetCommandId())
		}
		if i+n > len(t.Events) {
			return fmt.Errorf("fold %s seq %d: commands record %d+ events, the transaction holds %d", s.graph, t.Seq, i+n, len(t.Events))
		}
		for _, ev := range t.Events[i : i+n] {
			if err := Apply(s, ev); err != nil {
				return fmt.Errorf("fold %s seq %d: %w", s.graph, t.Seq, err)
			}
		}
		i += n
		if w != nil {
			w.Put(&cairnv1.CommandReply{CommandId: cr.GetCommandId(), HeadCid: t.Heads[k].CID, Seq: t.Seq, Position: t.Heads[k].N, TxId: t.TxID, ContentHash: cr.GetContentHash()})
		}
	}
	if i != len(t.Events) {
		return fmt.Errorf("fold %s seq %d: commands record %d events, the transaction holds %d", s.graph, t.Seq, i, len(t.Events))
	}
	return nil
}

// Reloaded follows a conflict: err is nil when the owner folded every
// transaction the store holds. The conflicted envelopes that a fold stored
// (an earlier activation of the graph wrote them) are answered as
// duplicates, or refused as FAILED_PRECONDITION when the stored command of
// that id had other content; the others are decided once more, and refused as CONFLICT
// after a second conflict. When the reload failed, the state may be half
// folded: every waiting envelope is refused, with err when it is a
// *CommandError (DATA_LOSS, for a history that fails its check) and as
// UNAVAILABLE otherwise, and the owner must rebuild the state before
// proposing more.
func (c *Core[W]) Reloaded(err error) Ready[W] {
	var rd Ready[W]
	reqs := c.retry
	c.retry = nil
	if err != nil {
		// A *CommandError (DATA_LOSS, say) is the answer as it is; any
		// other error is a store that could not be read.
		var ce *CommandError
		if !errors.As(err, &ce) {
			ce = unavailable("graph %s changed and could not be reloaded: %v", c.state.graph, err)
		}
		for _, r := range append(reqs, c.queue...) {
			c.finish(&rd, r, ErrorReply(r.env, ce))
		}
		c.queue = nil
		return rd
	}
	var again []*request[W]
	for _, r := range reqs {
		if prev, ok := c.recent.Get(r.env.GetCommandId()); ok {
			if reused(prev, func() []byte { return r.contentHash(&c.hash) }) {
				c.finish(&rd, r, ErrorReply(r.env, reusedID(r.env.GetCommandId())))
			} else {
				c.finish(&rd, r, duplicate(prev))
			}
			continue
		}
		if r.attempts++; r.attempts > 1 {
			c.finish(&rd, r, ErrorReply(r.env, conflict("graph %s was changed by another writer twice while deciding; retry with the same command id", c.state.graph)))
			continue
		}
		again = append(again, r)
	}
	c.queue = append(again, c.queue...)
	c.refuseIfStopping(&rd)
	c.flush(&rd)
	return rd
}

// refuseIfStopping refuses what waits once Stop was called: envelopes put
// back on the queue after a failed append or a conflict.
func (c *Core[W]) refuseIfStopping(rd *Ready[W]) {
	if !c.stopping {
		return
	}
	for _, r := range c.queue {
		c.finish(rd, r, ErrorReply(r.env, unavailable("graph %s is shutting down; retry with the same command id", c.state.graph)))
	}
	c.queue = nil
}

// Stop refuses what is queued (nothing of it was stored) and every later
// proposal; a batch in flight still gets its outcome through Appended.
func (c *Core[W]) Stop() Ready[W] {
	var rd Ready[W]
	c.stopping = true
	c.refuseIfStopping(&rd)
	return rd
}

// requeueHeld puts the batch's held refusals back at the head of the queue,
// to be decided again on the state as stored.
func (c *Core[W]) requeueHeld(b *Batch[W]) {
	if len(b.held) == 0 {
		return
	}
	again := make([]*request[W], 0, len(b.held)+len(c.queue))
	for _, h := range b.held {
		again = append(again, h.r)
	}
	c.queue = append(again, c.queue...)
	b.held = nil
}

func (c *Core[W]) finish(rd *Ready[W], r *request[W], rep *cairnv1.CommandReply) {
	delete(c.pending, r.env.GetCommandId())
	rd.answer(r.waiters, rep)
}
