package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
	"github.com/cairn-graph/cairn/viewer/scene"
)

// RenderSource is what a render actor reads: one graph's checked
// transactions, and the chain to trust keyframes against.
// *persistence.Store is one, in process (Engine.Store) or opened on a NATS
// connection of another process.
type RenderSource interface {
	FollowGraph(ctx context.Context, graph string, after persistence.Head, fromSeq uint64, fn func(persistence.GraphTx) error) error
	LastSeq(ctx context.Context, graph string) (uint64, error)
	CheckHead(ctx context.Context, graph string, seq uint64, head persistence.Head) error
}

var _ RenderSource = (*persistence.Store)(nil)

// RenderConfig configures a render actor (StartRender).
type RenderConfig struct {
	// Graph is the graph shown.
	Graph string
	// Source reads the graph's transactions; required.
	Source RenderSource
	// Snapshots, when set, holds the read-model snapshots that serve as
	// keyframes: the start with FromSnapshot, and the resynchronisation of
	// a render that lags more than MaxLag. Only snapshots whose head the
	// Source confirms are used.
	Snapshots SnapshotStore
	// ReadModel decodes snapshots. Default readmodel.DefaultConfig().
	ReadModel readmodel.Config
	// NewPlacer makes the scene's Placer at the start and after each
	// keyframe. nil: nodes sit at hashed positions.
	NewPlacer func() scene.Placer
	// Scene holds the scene's options (colour component, fades, ranges).
	Scene []scene.Option
	// FromSnapshot starts from a keyframe at or before StopAt, trusted
	// (its head confirmed by the Source), and folds only the transactions
	// after it: the newest position keyframe (LayoutEvery), whose slots
	// are those of a fold from the beginning, else the newest read-model
	// snapshot (the same graph in other slots). Without it (or without a
	// keyframe) the render folds the history from its first transaction.
	FromSnapshot bool
	// LayoutOnly, with FromSnapshot, starts only from a position keyframe,
	// never from a read-model snapshot, and on a lag jumps only to a newer
	// position keyframe: the slots and positions stay those of a fold from
	// the beginning, as reproducible pictures and replays need. With TxPerFrame, the
	// keyframe is at or before PaceFrom - 1, so the paced part is folded
	// transaction by transaction.
	LayoutOnly bool
	// StopAt, when not 0, is the last stream sequence folded (as-of, or a
	// replay's end); past the graph's head at the start it is the head.
	// Reached is closed once a Frame holding it is published.
	StopAt uint64
	// TxPerFrame, when above 0, paces a replay: Frame k of the replay (one
	// per credit, counted from 1) holds the first floor(k × TxPerFrame)
	// transactions from PaceFrom on (fewer only at the stop), and each
	// Frame advances the fades by one step, so the frame sequence is a
	// pure function of the history: 0.5 folds one transaction every other
	// Frame, 3 three a Frame. After the stop, Frames go on until the fades
	// end (Finished). 0 folds as fast as the transactions come and
	// publishes one Frame per credit: a slow viewer gets the changes of
	// many transactions merged into one Frame.
	TxPerFrame float64
	// PaceFrom, with TxPerFrame, is the first stream sequence of the
	// paced replay: the transactions before it are folded at once, without
	// fades, into the first Frame.
	PaceFrom uint64
	// MaxLag is how many transactions the render may be behind the graph's
	// head (read and not folded, and not yet read) before it jumps to a
	// keyframe at least MaxLag/2 ahead (a read-model snapshot, or under
	// LayoutOnly a position keyframe), when Snapshots is set and
	// TxPerFrame is 0. Default
	// 100,000.
	MaxLag uint64
	// LayoutEvery, when not 0 and Snapshots is set, saves a position
	// keyframe (persistence.KindLayout: the scene's slot table, positions
	// and, for a scene.StatefulPlacer such as *layout.Layout, the Placer's
	// whole state; zstd, named layout/<graph>/<seq>) every LayoutEvery
	// transactions folded, one at a time, off the actor. With FromSnapshot
	// the newest trusted one at or before StopAt is the start, before any
	// read-model snapshot: it holds the very slots and positions a fold
	// from the beginning gives, and a render from it with a Placer of the
	// same kind and parameters lays the rest of the history out exactly as
	// that fold does. Keyframes of another scene.KeyframeFormat (format 1,
	// without the Placer's state) are passed over, logged; one whose
	// Placer state the new Placer refuses (other parameters) stops the
	// render with scene.ErrPlacerState. A render that started from (or
	// jumped to) a read-model snapshot saves none, since its slots differ.
	// A store that refuses the write (a viewer without the right), or a
	// Placer whose state cannot be written, is logged once.
	LayoutEvery uint64
	// MaxQueued bounds the transactions read and not folded yet; the
	// render's own reader waits beyond it (never the projections' reader,
	// which the render does not use). Default 4,096.
	MaxQueued int
	// Logger. Default: discard.
	Logger *slog.Logger
}

// Render defaults.
const (
	DefaultRenderMaxLag    = 100_000
	DefaultRenderMaxQueued = 4096
)

// RenderStats counts what a render actor did.
type RenderStats struct {
	Seq          uint64 // stream sequence folded through
	Published    uint64 // the Seq of the newest Frame published
	Transactions uint64 // transactions folded
	Frames       uint64 // Frames published
	Resyncs      uint64 // keyframes jumped to after a lag (the start not counted)
	Layouts      uint64 // position keyframes saved (LayoutEvery)
	Queued       int    // transactions read and not folded yet
}

// Render is a running render actor: an actor that folds one graph's
// transactions into a scene.Scene and publishes Frames to a
// scene.Exchange for the GL thread, and the reader goroutine that follows
// the graph for it. It publishes a Frame only when it holds a credit: one
// at the start and one each time the GL thread acquires a Frame
// (Exchange.Credits), so at most one Frame waits, and the transactions
// folded while none is held are merged into the next one.
type Render struct {
	cfg  RenderConfig
	root *actor.RootContext
	pid  *actor.PID
	x    *scene.Exchange
	log  *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup

	queued atomic.Int64
	space  chan struct{}

	seq, published, txs, frames, resyncs atomic.Uint64
	layouts                              atomic.Uint64 // position keyframes saved
	saving                               atomic.Bool   // one is being saved
	saveErrs                             sync.Once

	reached   chan struct{}
	done      chan struct{}
	endOnce   sync.Once
	reachOnce sync.Once
	finished  chan struct{}
	finOnce   sync.Once
	err       error // set before done is closed
}

// Messages of the render actor.
type (
	renderTx      struct{ tx persistence.GraphTx }
	renderCredit  struct{}
	renderReached struct{ seq uint64 }
	renderFailed  struct{ err error }
	renderRelax   struct {
		iterations int
		done       chan error
	}
	renderKeyframe struct {
		g    *readmodel.Graph
		head persistence.Head
	}
	renderLayout struct {
		data []byte
		info persistence.SnapshotInfo
	}
)

// errReached and errResync end a FollowGraph on purpose.
var (
	errReached = errors.New("stop sequence reached")
	errResync  = errors.New("resynchronising from a keyframe")
)

// StartRender starts a render actor on root's actor system that publishes
// graph cfg.Graph's Frames to x. It returns at once; the render runs until
// Stop, or until a transaction fails its check or does not fit the scene
// (Done, Err). Errors: a config without Graph or Source, or a spawn that
// failed.
func StartRender(root *actor.RootContext, x *scene.Exchange, cfg RenderConfig) (*Render, error) {
	switch {
	case cfg.Graph == "":
		return nil, errors.New("render: no graph")
	case cfg.Source == nil:
		return nil, fmt.Errorf("render %s: no source", cfg.Graph)
	case x == nil:
		return nil, fmt.Errorf("render %s: no exchange", cfg.Graph)
	}
	if s, ok := cfg.Snapshots.(*persistence.Snapshots); ok && s == nil {
		cfg.Snapshots = nil // Engine.Snapshots with snapshots off
	}
	if cfg.MaxLag == 0 {
		cfg.MaxLag = DefaultRenderMaxLag
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = DefaultRenderMaxQueued
	}
	if cfg.ReadModel == (readmodel.Config{}) {
		cfg.ReadModel = readmodel.DefaultConfig()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Render{cfg: cfg, root: root, x: x, log: log.With("component", "render", "graph", cfg.Graph),
		space: make(chan struct{}, 1), reached: make(chan struct{}), finished: make(chan struct{}), done: make(chan struct{})}
	var placer scene.Placer
	if cfg.NewPlacer != nil {
		placer = cfg.NewPlacer()
	}
	a := &renderActor{r: r, sc: scene.New(cfg.Graph, placer, cfg.Scene...), credit: true}
	pid, err := root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return a }), fmt.Sprintf("render-%s-%p", cfg.Graph, r))
	if err != nil {
		return nil, fmt.Errorf("render %s: spawn: %w", cfg.Graph, err)
	}
	r.pid = pid
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		if err := r.read(ctx); err != nil && ctx.Err() == nil {
			root.Send(pid, &renderFailed{err: err})
		}
	}()
	go func() {
		defer r.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-x.Credits():
				root.Send(pid, &renderCredit{})
			}
		}
	}()
	return r, nil
}

// Reached is closed once a Frame holding every transaction up to StopAt
// (or the graph's head at the start, when that is lower) is published:
// the GL thread's next Acquire returns it (or, in a paced replay with
// fades, a later Frame at the same Seq). Without StopAt it is never
// closed.
func (r *Render) Reached() <-chan struct{} { return r.reached }

// Relax lays the graph out afresh with iterations global layout
// iterations (viewer/layout's FirstLayout: multilevel on large graphs)
// between two transactions, and publishes the result. It is meant after a
// bulk load, or for a picture of a graph whose history was folded: the
// positions stay a pure function of the history folded and iterations.
// A Frame is published after it (on a credit), whether or not a node
// moved.
// A relaxed render saves no more position keyframes (LayoutEvery): those
// hold the positions of a fold alone. Errors: a placer without a global layout, or ctx's.
func (r *Render) Relax(ctx context.Context, iterations int) error {
	m := &renderRelax{iterations: iterations, done: make(chan error, 1)}
	r.root.Send(r.pid, m)
	select {
	case err := <-m.done:
		if err != nil {
			return fmt.Errorf("render %s: relax: %w", r.cfg.Graph, err)
		}
		return nil
	case <-r.done:
		if err := r.Err(); err != nil {
			return err
		}
		return fmt.Errorf("render %s: relax: the render had stopped", r.cfg.Graph)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Finished is closed once the Frame that reaches the stop was published
// and every fade has ended in a Frame published after it: the last Frame
// of a replay. Without StopAt it is never closed.
func (r *Render) Finished() <-chan struct{} { return r.finished }

// Done is closed when the render stopped: Stop, or a failure (Err).
func (r *Render) Done() <-chan struct{} { return r.done }

// Err returns why the render stopped by itself: a *persistence.ChainError
// (a transaction that failed its check: nothing past it is shown), a
// *scene.ApplyError, or the reader's error. nil while it runs and after
// Stop.
func (r *Render) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// Stats returns the render's counters.
func (r *Render) Stats() RenderStats {
	return RenderStats{Seq: r.seq.Load(), Published: r.published.Load(), Transactions: r.txs.Load(),
		Frames: r.frames.Load(), Resyncs: r.resyncs.Load(), Layouts: r.layouts.Load(), Queued: int(r.queued.Load())}
}

// Stop stops the reader and the actor and waits for them, at most until
// ctx ends.
func (r *Render) Stop(ctx context.Context) error {
	r.cancel()
	// The actor first: it starts the keyframe savers the wait group
	// counts.
	_ = r.root.PoisonFuture(r.pid).Wait() // an error: it was stopped already
	waited := make(chan struct{})
	go func() { r.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		return fmt.Errorf("stop render %s: %w", r.cfg.Graph, ctx.Err())
	}
	r.end(nil)
	return nil
}

func (r *Render) end(err error) {
	r.endOnce.Do(func() {
		r.err = err
		close(r.done)
	})
}

// read follows the graph and hands its transactions to the actor, at most
// MaxQueued ahead of it; it jumps to a keyframe at the start (FromSnapshot)
// and when it lags more than MaxLag.
func (r *Render) read(ctx context.Context) error {
	graph, stop := r.cfg.Graph, r.cfg.StopAt
	if stop > 0 {
		last, err := r.cfg.Source.LastSeq(ctx, graph)
		if err != nil {
			return fmt.Errorf("render %s: %w", graph, err)
		}
		if stop = min(stop, last); stop == 0 {
			r.root.Send(r.pid, &renderReached{})
			return nil
		}
	}
	after, from := persistence.Head{}, uint64(1)
	// A keyframe of a paced replay must not pass its first paced
	// transaction.
	limit, use := stop, r.cfg.FromSnapshot
	if p := r.cfg.PaceFrom; r.cfg.TxPerFrame > 0 {
		if p <= 1 { // paced from the first transaction
			use = false
		} else if limit == 0 || p-1 < limit {
			limit = p - 1
		}
	}
	if use {
		if lk := r.layoutKeyframe(ctx, 0, limit); lk != nil {
			r.root.Send(r.pid, lk)
			after, from = persistence.Head{N: lk.info.Position, CID: lk.info.Head}, lk.info.Seq+1
		} else if !r.cfg.LayoutOnly {
			if kf := r.keyframe(ctx, 0, limit); kf != nil {
				r.root.Send(r.pid, kf)
				after, from = kf.head, kf.g.AsOf()+1
			}
		}
	}
	var checked uint64 // the seq of the last lag check
	for {
		if stop > 0 && from > stop {
			r.root.Send(r.pid, &renderReached{seq: from - 1})
			return nil
		}
		err := r.cfg.Source.FollowGraph(ctx, graph, after, from, func(tx persistence.GraphTx) error {
			if stop > 0 && tx.Seq > stop {
				return errReached
			}
			if err := r.waitSpace(ctx); err != nil {
				return err
			}
			r.queued.Add(1)
			r.root.Send(r.pid, &renderTx{tx: tx})
			after, from = tx.Head, tx.Seq+1
			if stop > 0 && tx.Seq >= stop {
				return errReached
			}
			lag := tx.Pending + uint64(r.queued.Load())
			if r.cfg.Snapshots != nil && r.cfg.TxPerFrame == 0 && lag > r.cfg.MaxLag && tx.Seq >= checked+r.cfg.MaxLag/4 {
				checked = tx.Seq
				// A keyframe worth the jump: at least half the lag ahead;
				// under LayoutOnly a position keyframe only, which holds
				// what folding up to it would.
				above := tx.Seq + r.cfg.MaxLag/2
				if r.cfg.LayoutOnly {
					if lk := r.layoutKeyframe(ctx, above, stop); lk != nil {
						r.root.Send(r.pid, lk)
						r.resyncs.Add(1)
						after, from = persistence.Head{N: lk.info.Position, CID: lk.info.Head}, lk.info.Seq+1
						return errResync
					}
				} else if kf := r.keyframe(ctx, above, stop); kf != nil {
					r.root.Send(r.pid, kf)
					r.resyncs.Add(1)
					after, from = kf.head, kf.g.AsOf()+1
					return errResync
				}
			}
			return nil
		})
		switch {
		case errors.Is(err, errResync):
			continue
		case errors.Is(err, errReached):
			r.root.Send(r.pid, &renderReached{seq: from - 1})
			return nil
		default:
			return err
		}
	}
}

// waitSpace waits while MaxQueued transactions wait for the actor.
func (r *Render) waitSpace(ctx context.Context) error {
	for r.queued.Load() >= int64(r.cfg.MaxQueued) {
		select {
		case <-r.space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// renderActor owns the scene: it folds, and publishes on a credit.
type renderActor struct {
	r      *Render
	sc     *scene.Scene
	credit bool                  // the GL thread took the last Frame: the next may go
	dirty  bool                  // the scene changed since the last Frame
	queue  []persistence.GraphTx // paced (TxPerFrame): read, not folded yet
	reach  bool                  // the reader reached the stop sequence
	failed bool
	head   persistence.Head // the chain's head at the scene's seq
	// mixed: the scene started from a read-model keyframe, so its slots
	// are not those of a fold from the beginning, or was relaxed (Relax),
	// so its positions are not; it saves no position keyframes, which
	// must hold those.
	mixed   bool
	since   uint64           // transactions folded since the last position keyframe
	paced   uint64           // paced Frames made
	stepped uint64           // transactions those Frames were to hold
	events  []*cairnv1.Event // scratch
}

// Receive handles the render's messages.
func (a *renderActor) Receive(c actor.Context) {
	if a.failed {
		return
	}
	switch m := c.Message().(type) {
	case *renderTx:
		switch {
		case a.r.cfg.TxPerFrame > 0 && m.tx.Seq < a.r.cfg.PaceFrom:
			// Before the paced part: folded at once, shown in its
			// first Frame, fades ended.
			if !a.fold(m.tx) {
				return
			}
			for a.sc.Advance() {
			}
			a.dirty = false
		case a.r.cfg.TxPerFrame > 0:
			a.queue = append(a.queue, m.tx)
		case !a.fold(m.tx):
			return
		}
	case *renderKeyframe:
		a.dropQueue()
		var placer scene.Placer
		if a.r.cfg.NewPlacer != nil {
			placer = a.r.cfg.NewPlacer()
		}
		if err := a.sc.Load(m.g, placer, m.head.CID.String(), time.Time{}); err != nil {
			a.fail(err)
			return
		}
		a.r.seq.Store(a.sc.Seq())
		// A paced replay shows a keyframe in its first paced Frame,
		// as it does the transactions before PaceFrom.
		a.head, a.dirty, a.mixed = m.head, a.r.cfg.TxPerFrame == 0, true
	case *renderLayout:
		a.dropQueue()
		var placer scene.Placer
		if a.r.cfg.NewPlacer != nil {
			placer = a.r.cfg.NewPlacer()
		}
		if err := a.sc.LoadKeyframe(m.data, placer); err != nil {
			a.fail(fmt.Errorf("layout keyframe %s: %w", m.info.Name, err))
			return
		}
		if a.sc.Seq() != m.info.Seq || a.sc.Head() != m.info.Head.String() {
			a.fail(fmt.Errorf("layout keyframe %s holds seq %d head %s, not seq %d head %s", m.info.Name, a.sc.Seq(), a.sc.Head(), m.info.Seq, m.info.Head))
			return
		}
		a.r.seq.Store(a.sc.Seq())
		a.head, a.dirty, a.mixed = persistence.Head{N: m.info.Position, CID: m.info.Head}, a.r.cfg.TxPerFrame == 0, false
	case *renderCredit:
		a.credit = true
		if a.r.cfg.TxPerFrame == 0 && a.sc.Fading() {
			a.sc.Advance()
			a.dirty = true
		}
	case *renderReached:
		a.reach = true
		if a.r.frames.Load() == 0 {
			a.dirty = true // an empty graph still gets its Frame
		}
	case *renderFailed:
		a.fail(m.err)
		return
	case *renderRelax:
		m.done <- a.relax(m.iterations)
	default:
		return
	}
	if a.r.cfg.TxPerFrame > 0 && !a.step() {
		return
	}
	a.publish()
}

// step makes a paced Frame when a credit allows: exactly TxPerFrame
// transactions folded (fewer only at the stop) and the fades advanced
// once, so that the Frames are a pure function of the history. It returns
// false when a transaction did not fit.
func (a *renderActor) step() bool {
	// Frame k holds floor(k × TxPerFrame) transactions: n more than the
	// last. Computed from k, not summed, so no rounding drifts.
	n := int(uint64(float64(a.paced+1)*a.r.cfg.TxPerFrame) - a.stepped)
	switch {
	case !a.credit:
		return true
	case a.reach && len(a.queue) == 0 && !a.sc.Fading() && a.paced > 0:
		return true // the replay is over: nothing more to show
	case len(a.queue) >= n:
	case a.reach:
	default:
		// Wait for n transactions (or the stop), whatever the timing
		// of the reader.
		return true
	}
	a.paced++
	a.stepped += uint64(n)
	k := min(n, len(a.queue))
	for _, tx := range a.queue[:k] {
		if !a.fold(tx) {
			return false
		}
	}
	a.queue = append(a.queue[:0], a.queue[k:]...)
	if a.sc.Fading() {
		a.sc.Advance()
	}
	a.dirty = true
	return true
}

// relax lays the whole scene out afresh (a Placer with FirstLayout, as
// viewer/layout's) and takes the positions it moved into the scene.
func (a *renderActor) relax(iterations int) error {
	l, ok := a.sc.Placer().(interface{ FirstLayout(iterations int) })
	if !ok {
		return errors.New("its placer has no global layout (FirstLayout)")
	}
	l.FirstLayout(iterations)
	a.mixed = true // positions no fold of the history alone gives
	a.sc.TakeMoved()
	a.dirty = true // a Frame follows, moved or not: Relax's caller waits for it
	return nil
}

// dropQueue forgets the paced queue (a keyframe replaces it).
func (a *renderActor) dropQueue() {
	if len(a.queue) > 0 {
		a.r.queued.Add(-int64(len(a.queue)))
		a.queue = a.queue[:0]
		select {
		case a.r.space <- struct{}{}:
		default:
		}
	}
}

// fold folds one transaction; false when it did not fit (the render
// stopped).
func (a *renderActor) fold(tx persistence.GraphTx) bool {
	a.r.queued.Add(-1)
	select {
	case a.r.space <- struct{}{}:
	default:
	}
	a.events = a.events[:0]
	for _, ev := range tx.Events {
		a.events = append(a.events, ev.Event)
	}
	if err := a.sc.ApplyTx(tx.Seq, tx.Head.CID.String(), time.Unix(0, tx.Tx.GetTimestampUnixNano()), a.events); err != nil {
		a.fail(err)
		return false
	}
	a.r.seq.Store(tx.Seq)
	a.r.txs.Add(1)
	a.head, a.dirty = tx.Head, true
	if every := a.r.cfg.LayoutEvery; every > 0 && a.r.cfg.Snapshots != nil && !a.mixed {
		if a.since++; a.since >= every && a.r.saving.CompareAndSwap(false, true) {
			a.since = 0
			info := persistence.SnapshotInfo{Kind: persistence.KindLayout, Graph: a.r.cfg.Graph, Seq: tx.Seq,
				Position: tx.Head.N, Head: tx.Head.CID, Format: scene.KeyframeFormat}
			data, err := a.sc.AppendKeyframe(nil)
			if err != nil {
				a.r.saving.Store(false)
				a.r.saveErrs.Do(func() {
					a.r.log.LogAttrs(context.Background(), slog.LevelWarn, "layout keyframe not saved (logged once)", slog.Uint64("seq", tx.Seq), slog.String("err", err.Error()))
				})
				return true
			}
			a.r.wg.Add(1)
			go a.r.saveLayout(info, data)
		}
	}
	return true
}

// publish hands the scene over when a credit and a change allow it, and
// closes Reached once everything up to the stop is in a published Frame.
// The Frame that reaches the stop goes without a credit (a Publish over a
// Frame not acquired yet is safe; credits only spare copies), so that
// Reached means the GL thread's next Acquire returns it.
func (a *renderActor) publish() {
	final := a.reach && len(a.queue) == 0
	if a.dirty && (a.credit || final) {
		a.sc.Publish(a.r.x)
		a.credit, a.dirty = false, false
		a.r.frames.Add(1)
		a.r.published.Store(a.sc.Seq())
	}
	if a.reach && !a.dirty && len(a.queue) == 0 {
		a.r.reachOnce.Do(func() { close(a.r.reached) })
		if !a.sc.Fading() {
			a.r.finOnce.Do(func() { close(a.r.finished) })
		}
	}
}

func (a *renderActor) fail(err error) {
	a.failed = true
	a.r.log.LogAttrs(context.Background(), slog.LevelError, "render stopped", slog.String("err", err.Error()))
	a.r.end(fmt.Errorf("render %s: %w", a.r.cfg.Graph, err))
	a.r.cancel()
}
