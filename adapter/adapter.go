package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Dead-letter headers: a dead letter is the original event's bytes with
// these.
const (
	HeaderAdapter     = "Cairn-Adapter"     // the adapter kind
	HeaderGraph       = "Cairn-Graph"       // the graph written to
	HeaderReason      = "Cairn-Dead-Reason" // one of the Reason constants
	HeaderDetail      = "Cairn-Dead-Detail" // what is wrong, for people
	HeaderEventID     = "Cairn-Event-Id"    // the event's id, when it decoded
	HeaderEventType   = "Cairn-Event-Type"  // its type, when it decoded
	HeaderErrorCode   = "Cairn-Error-Code"  // the engine's code (NOT_FOUND, FAILED_PRECONDITION ...), when it refused
	HeaderSourceSubj  = "Cairn-Source-Subject"
	HeaderSourceSeq   = "Cairn-Source-Seq" // the event's sequence in the stream
	HeaderDeliveries  = "Cairn-Deliveries" // how many times it was tried (deliveries, and the tries in place of a missing entity)
	commandIDPrefix   = "adapter/"         // command ids: adapter/<kind>/<event id>[/set]
	graphTypeRelation = "relationship"
)

// Stats are an adapter's counts since Run started.
type Stats struct {
	Kind  string `json:"adapter"`
	Graph string `json:"graph"`
	// Read counts deliveries taken from the stream (a redelivered event
	// counts again).
	Read int64 `json:"read"`
	// Written counts commands the engine applied (new transactions).
	Written int64 `json:"written"`
	// Duplicates counts events that changed nothing: a command id the
	// engine had seen, an edge that exists, an upsert not newer than the
	// node, a removal of what is gone.
	Duplicates int64 `json:"duplicates"`
	// Skipped counts events of another adapter's domain.
	Skipped int64 `json:"skipped"`
	// Retried counts the tries of an event again, in place, after a
	// back-off: a node it names is missing, or the engine did not answer.
	Retried int64 `json:"retried"`
	// DeadLettered counts events published to the dead-letter subject.
	DeadLettered int64 `json:"dead_lettered"`
	// Lag is how many events the stream holds past the consumer's
	// position (not yet delivered), as last asked.
	Lag uint64 `json:"lag"`
	// Seq is the engine's stream sequence of the last command written:
	// a query's min_seq to read the adapter's writes.
	Seq uint64 `json:"seq"`
	// Elapsed since Run started.
	Elapsed time.Duration `json:"-"`
}

// Adapter reads one domain's events from a JetStream stream and writes
// them to a graph. Make one with New and call Run.
type Adapter struct {
	cfg    Config
	kind   Kind
	nc     *nats.Conn
	js     jetstream.JetStream
	engine *engine
	log    *slog.Logger

	read, written, dups, skipped, retried, dead atomic.Int64
	lag, seq                                    atomic.Uint64
	start                                       time.Time

	// deadStream is the stream that captures the dead-letter subject, ""
	// when none did as Run started.
	deadStream string

	// afterApply, when set (tests), is called once an event's command is
	// acknowledged by the engine and before the event is acked.
	afterApply func()
}

// New returns an adapter that talks to the engine and JetStream over nc.
// The error joins every problem with cfg.
func New(nc *nats.Conn, cfg Config) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	k, _ := kindOf(cfg.Kind)
	return &Adapter{
		cfg: cfg, kind: k, nc: nc, js: js,
		engine: &engine{nc: nc, timeout: cfg.RequestTimeout, retry: cfg.Retry},
		log:    cfg.Logger.With("component", "adapter", "adapter", cfg.Kind, "graph", cfg.Graph),
	}, nil
}

// Stats returns the counts so far.
func (a *Adapter) Stats() Stats {
	s := Stats{
		Kind: a.cfg.Kind, Graph: a.cfg.Graph,
		Read: a.read.Load(), Written: a.written.Load(), Duplicates: a.dups.Load(),
		Skipped: a.skipped.Load(), Retried: a.retried.Load(), DeadLettered: a.dead.Load(),
		Lag: a.lag.Load(), Seq: a.seq.Load(),
	}
	if !a.start.IsZero() {
		s.Elapsed = time.Since(a.start)
	}
	return s
}

// EnsureStream returns the name of the stream the adapter of cfg reads:
// cfg.Stream when set (created capturing cfg.From when it does not
// exist), else the stream that captures cfg.From, else a new one named
// "ADAPTER_<KIND>" capturing cfg.From (file storage). Events published
// before any stream captured the subject are not kept: create the stream
// (run the adapter once) before the source publishes.
//
// With cfg.AskEngine a stream that does not exist is created by the engine
// (api.AdapterStreamSubject), which checks the login may have it: a
// refusal is a *StreamRefusedError. An engine without users answers that
// the adapter creates it itself, as without AskEngine, through JetStream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (string, error) {
	name := cfg.Stream
	if name == "" {
		found, err := js.StreamNameBySubject(ctx, cfg.From)
		switch {
		case err == nil:
			return found, nil
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return "", fmt.Errorf("find the stream capturing %s: %w", cfg.From, err)
		}
		name = "ADAPTER_" + strings.ToUpper(cfg.Kind)
	}
	_, err := js.Stream(ctx, name)
	if err == nil {
		return name, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return "", fmt.Errorf("look up stream %s: %w", name, err)
	}
	if cfg.AskEngine {
		open, err := askEngine(ctx, js.Conn(), cfg, name)
		if err != nil || !open {
			return name, err
		}
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{cfg.From}, Storage: jetstream.FileStorage,
		Description: "source events of the Cairn " + cfg.Kind + " adapter",
	})
	if err != nil {
		return "", fmt.Errorf("create stream %s capturing %s: %w", name, cfg.From, err)
	}
	return name, nil
}

// askEngine has the engine create stream name capturing cfg.From; open
// when the engine has no users, so the adapter creates it itself.
func askEngine(ctx context.Context, nc *nats.Conn, cfg Config, name string) (open bool, err error) {
	note := func(format string, a ...any) {
		if cfg.OnSetup != nil {
			cfg.OnSetup(fmt.Sprintf(format, a...))
		}
	}
	note("stream %s does not exist: asking the engine to create it capturing %s", name, cfg.From)
	data, err := json.Marshal(api.AdapterStreamRequest{Stream: name, Subjects: []string{cfg.From}})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.withDefaults().RequestTimeout)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, api.AdapterStreamSubject, data)
	if err != nil {
		return false, fmt.Errorf("ask the engine for stream %s capturing %s (%s): %w", name, cfg.From, api.AdapterStreamSubject, err)
	}
	var rep api.AdapterStreamReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return false, fmt.Errorf("ask the engine for stream %s: the answer is not a JSON api.AdapterStreamReply: %w", name, err)
	}
	switch {
	case rep.Open:
		note("the engine has no users: creating stream %s", name)
		return true, nil
	case rep.Code != "":
		return false, &StreamRefusedError{Stream: name, Code: rep.Code, Message: rep.Error}
	case rep.Created:
		note("the engine created stream %s capturing %s", name, strings.Join(rep.Config.GetSubjects(), " "))
	default:
		note("stream %s exists, capturing %s", name, strings.Join(rep.Config.GetSubjects(), " "))
	}
	return false, nil
}

// Run reads events and writes them until ctx ends or the graph goes away.
// An event is acked only once the engine acknowledged its command (or it
// was dead-lettered or skipped), so the durable consumer's position is the
// checkpoint: after a crash the events in flight are delivered again
// (after Config.AckWait) and their command ids make them duplicates. When
// ctx ends, Run finishes the event in flight (within Config.StopGrace),
// hands the rest of the fetched batch back unacknowledged and returns
// nil. It returns ErrNoGraph when the graph does not exist (and
// Config.CreateGraph is not set), and an error when the stream or the
// consumer cannot be set up or the connection fails.
func (a *Adapter) Run(ctx context.Context) error {
	a.start = time.Now()
	work, cancelWork := graceContext(ctx, a.cfg.StopGrace)
	defer cancelWork()
	if err := a.ensureGraph(work); err != nil {
		return err
	}
	stream, err := EnsureStream(work, a.js, a.cfg)
	if err != nil {
		return err
	}
	switch ds, err := a.js.StreamNameBySubject(work, a.cfg.DeadLetter); {
	case err == nil:
		a.deadStream = ds
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("find the stream capturing %s: %w", a.cfg.DeadLetter, err)
	}
	cons, err := a.js.CreateOrUpdateConsumer(work, stream, jetstream.ConsumerConfig{
		Durable: a.cfg.Durable, FilterSubject: a.cfg.From,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: a.cfg.AckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy, MaxDeliver: -1,
		// One event at a time: an event waiting for an entity another
		// adapter has not written holds the ones after it, and after a
		// crash the events come back in their order (JetStream redelivers
		// unacknowledged events after AckWait, behind newer ones, when
		// more than one is out).
		MaxAckPending: 1,
		Description:   fmt.Sprintf("Cairn %s adapter into graph %s", a.cfg.Kind, a.cfg.Graph),
	})
	if err != nil {
		return fmt.Errorf("durable consumer %s on stream %s: %w", a.cfg.Durable, stream, err)
	}
	a.log.Info("adapter started", "stream", stream, "durable", a.cfg.Durable, "from", a.cfg.From, "dead_letter", a.cfg.DeadLetter, "dead_letter_stream", a.deadStream)

	var wg sync.WaitGroup
	progressDone := make(chan struct{})
	wg.Add(1)
	go func() { // the progress reporter; Run waits for it
		defer wg.Done()
		t := time.NewTicker(a.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				a.updateLag(work, cons)
				if a.cfg.OnProgress != nil {
					a.cfg.OnProgress(a.Stats())
				}
			}
		}
	}()
	err = a.loop(ctx, work, cons)
	close(progressDone)
	wg.Wait()
	a.updateLag(work, cons)
	return err
}

// loop fetches batches and handles their events one by one, in stream
// order.
func (a *Adapter) loop(ctx, work context.Context, cons jetstream.Consumer) error {
	for ctx.Err() == nil {
		batch, err := cons.Fetch(a.cfg.Batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch from consumer %s: %w", a.cfg.Durable, err)
		}
		var failed error
		for msg := range batch.Messages() {
			if ctx.Err() != nil || failed != nil {
				_ = msg.Nak() // not handled: back to the stream for the next run
				continue
			}
			failed = a.handle(work, msg)
		}
		if failed != nil {
			return failed
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			return fmt.Errorf("fetch from consumer %s: %w", a.cfg.Durable, err)
		}
	}
	return nil
}

func (a *Adapter) updateLag(ctx context.Context, cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	if info, err := cons.Info(ctx); err == nil {
		a.lag.Store(info.NumPending)
	}
}

// outcome is what became of an event's command.
type outcome int

const (
	applied   outcome = iota + 1 // a new transaction
	duplicate                    // nothing to change
	missing                      // a node it names does not exist yet
	refused                      // refused for good
	unknown                      // no answer: try again later
)

// handle maps one event, writes it and acks it, dead-letters it or hands
// it back for a later delivery. It returns an error only when the adapter
// must stop (the graph is gone, the connection failed).
func (a *Adapter) handle(ctx context.Context, msg jetstream.Msg) error {
	a.read.Add(1)
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("event without JetStream metadata: %w", err)
	}
	ev, err := Decode(a.cfg.Format, msg.Data())
	var act action
	if err == nil {
		act, err = mapEvent(a.kind, ev)
	}
	var ue *UnmappableError
	if errors.As(err, &ue) {
		if ue.Reason == ReasonOtherDomain && !a.cfg.StrictDomain {
			a.skipped.Add(1)
			return a.ack(ctx, msg)
		}
		return a.deadLetter(ctx, msg, md, ev, ue.Reason, "", ue.Err.Error())
	}
	if err != nil {
		return err
	}
	// An event naming a node not written yet, or whose command had no
	// answer, is tried again in place, after a back-off, before any later
	// event: events about one entity keep their order (a relation's end
	// never overtakes its start). The event stays ours meanwhile
	// (InProgress); the rest of the batch may be delivered again after
	// AckWait, and their commands' ids make those copies duplicates.
	out, rerr := a.apply(ctx, act)
	attempts := md.NumDelivered
	for ; (out == missing && attempts < uint64(a.cfg.MaxAttempts)) || (out == unknown && ctx.Err() == nil); attempts++ {
		if err := a.wait(ctx, msg, attempts, ev, rerr); err != nil {
			return err
		}
		if ctx.Err() != nil {
			break
		}
		out, rerr = a.apply(ctx, act)
	}
	if a.afterApply != nil && (out == applied || out == duplicate) {
		a.afterApply()
	}
	switch out {
	case applied:
		a.written.Add(1)
		return a.ack(ctx, msg)
	case duplicate:
		a.dups.Add(1)
		return a.ack(ctx, msg)
	case missing:
		if ctx.Err() != nil { // stopping: the next run takes it again
			_ = msg.Nak()
			return nil
		}
		md.NumDelivered = attempts // the header counts the attempts, in place ones too
		return a.deadLetter(ctx, msg, md, ev, ReasonMissingEntity, codeOf(rerr), fmt.Sprintf("%v (after %d attempts)", rerr, attempts))
	case refused:
		var ce *aggregate.CommandError
		if errors.As(rerr, &ce) && ce.Code == cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND && strings.HasPrefix(ce.Field, "graph_id") {
			_ = msg.Nak()
			return fmt.Errorf("graph %s: %w", a.cfg.Graph, rerr)
		}
		return a.deadLetter(ctx, msg, md, ev, ReasonRefused, codeOf(rerr), rerr.Error())
	default: // unknown, and stopping: the next run takes it again
		_ = msg.Nak()
		return nil
	}
}

// wait sleeps the back-off of an event's attempt-th attempt (RetryDelay
// doubling, at most MaxRetryDelay), telling JetStream the event is in
// progress so that it is not delivered again meanwhile. It returns early
// when ctx ends.
func (a *Adapter) wait(ctx context.Context, msg jetstream.Msg, attempt uint64, ev *cairnv1.DomainEvent, cause error) error {
	a.retried.Add(1)
	d := min(a.cfg.RetryDelay<<min(max(attempt, 1)-1, 10), a.cfg.MaxRetryDelay)
	a.log.Warn("event tried again later", "event_id", ev.GetId(), "attempts", attempt, "delay", d, "cause", cause)
	tick := max(a.cfg.AckWait/3, time.Millisecond)
	for left := d; left > 0 && ctx.Err() == nil; left -= tick {
		if err := msg.InProgress(); err != nil {
			return fmt.Errorf("keep event %s: %w", ev.GetId(), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(left, tick)):
		}
	}
	return nil
}

func (a *Adapter) ack(ctx context.Context, msg jetstream.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("ack event: %w", err)
	}
	return nil
}

// deadLetter publishes the event's bytes to the dead-letter subject with
// headers naming why, then acks it. Through JetStream when a stream
// captured the subject when Run started (so that the dead letter is kept
// and its publication acknowledged), else as a plain NATS message.
func (a *Adapter) deadLetter(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, ev *cairnv1.DomainEvent, reason, code, detail string) error {
	h := nats.Header{}
	h.Set(HeaderAdapter, a.cfg.Kind)
	h.Set(HeaderGraph, a.cfg.Graph)
	h.Set(HeaderReason, reason)
	h.Set(HeaderDetail, detail)
	if ev.GetId() != "" {
		h.Set(HeaderEventID, ev.GetId())
	}
	if t := EventType(ev); ev != nil && t != "" {
		h.Set(HeaderEventType, t)
	}
	if code != "" {
		h.Set(HeaderErrorCode, code)
	}
	h.Set(HeaderSourceSubj, msg.Subject())
	h.Set(HeaderSourceSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	h.Set(HeaderDeliveries, strconv.FormatUint(md.NumDelivered, 10))
	dl := &nats.Msg{Subject: a.cfg.DeadLetter, Data: msg.Data(), Header: h}
	pctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	var err error
	if a.deadStream != "" {
		_, err = a.js.PublishMsg(pctx, dl)
	} else if err = a.nc.PublishMsg(dl); err == nil {
		err = a.nc.FlushWithContext(pctx)
	}
	if err != nil {
		_ = msg.Nak()
		return fmt.Errorf("publish dead letter to %s: %w", a.cfg.DeadLetter, err)
	}
	a.dead.Add(1)
	a.log.Warn("event dead-lettered", "event_id", ev.GetId(), "reason", reason, "code", code, "detail", detail)
	return a.ack(ctx, msg)
}

// codeOf is the code of an engine refusal without ERROR_CODE_, empty for
// other errors.
func codeOf(err error) string {
	var ce *aggregate.CommandError
	if errors.As(err, &ce) {
		return strings.TrimPrefix(ce.Code.String(), "ERROR_CODE_")
	}
	return ""
}

// graceContext returns a context that is not cancelled with ctx but grace
// after it ends: the event in flight gets that long to finish.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-work.Done():
		}
	})
	return work, func() { stop(); cancel() }
}
