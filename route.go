package cairn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/tracing"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Read models in a cluster.
//
// Each member's projections hold the read models of the graphs it owns
// (actors.Partition), the same graphs whose grains it hosts. A query taken
// by any member (Engine.Query, the gateway) goes to the graph's owner over
// NATS, on the owner's api.MemberQuerySubject, and the owner answers it
// from its read model (waiting for min_seq as everywhere). A member with
// no owner to route to (it has not joined yet, it fenced itself, the owner
// does not answer) answers the query itself: its projections adopt the
// graph for it. The owner answers a routed query itself whatever its own
// view of the cluster, so a query makes one hop at most.

// partition returns the partition of a clustered engine's projections.
func (e *Engine) partition() *actors.Partition {
	return &actors.Partition{
		Owns: func(graph string) bool {
			m := e.startedMember()
			if m == nil {
				return false
			}
			id, _, ok := m.Lookup().Owner(graph, actors.GraphKind)
			return ok && id == m.ID()
		},
		Series: func() string {
			if m := e.startedMember(); m != nil {
				return actors.MemberSeries(m.ID())
			}
			return ""
		},
		Live: func(series string) bool {
			id, ok := actors.SeriesMember(series)
			if !ok {
				return false // a single engine's series, from before the cluster
			}
			m := e.startedMember()
			if m == nil {
				return true
			}
			ids := m.Lookup().Members()
			return len(ids) == 0 || slices.Contains(ids, id)
		},
	}
}

// router holds a clustered engine's query routing.
type router struct {
	mu   sync.Mutex
	subs []*nats.Subscription // the member's query and repair subjects
	id   string               // the member it serves
	// sem bounds the routed queries answered at once.
	sem chan struct{}

	// ctx ends when the routing stops, stop closes then; done is closed
	// when followMembership has returned.
	ctx    context.Context
	cancel context.CancelFunc
	stop   <-chan struct{}
	done   chan struct{}

	// covered holds the membership view's change channel taken before the
	// last Rebalance that succeeded: while it is nil (none yet, or a fresh
	// member) or closed (the view changed since), the member may own
	// graphs it has not started to adopt (rebalancing).
	covered atomic.Pointer[viewMark]
}

// viewMark is a membership view's change channel (cluster.Lookup.Changed).
type viewMark struct{ changed <-chan struct{} }

// rebalancing reports whether the membership view changed since the last
// Rebalance that succeeded (or none succeeded yet for this member).
func (r *router) rebalancing() bool {
	m := r.covered.Load()
	if m == nil {
		return true
	}
	select {
	case <-m.changed:
		return true
	default:
		return false
	}
}

// routedQueriesInFlight bounds the routed requests (queries, repairs) a member runs at once;
// more wait in NATS.
const routedQueriesInFlight = 4096

// startRouting serves the member's query subject for whichever member the
// engine has (a fenced one is replaced) and adopts the graphs the member
// owns whenever the membership changes, until Close.
func (e *Engine) startRouting() {
	r := &router{sem: make(chan struct{}, routedQueriesInFlight), done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.stop = r.ctx.Done()
	e.route = r
	go e.followMembership()
}

// followMembership keeps the member's query subscription and the read
// models it holds in step with its membership: at its start, at every
// topology change and when the engine rejoined with a fresh member.
func (e *Engine) followMembership() {
	r := e.route
	defer close(r.done)
	select {
	case <-e.memberReady:
	case <-r.stop:
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var (
		seen    *cairncluster.Member
		changed <-chan struct{}
		pending bool
	)
	for {
		m := e.startedMember()
		if m == nil {
			return // it did not start: commands are refused, queries answered here
		}
		if m != seen {
			r.covered.Store(nil)
			e.serveMember(m.ID())
			seen, pending = m, true
		}
		select {
		case <-changed:
			pending = true
		default:
		}
		if pending {
			changed = m.Lookup().Changed()
			ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
			err := e.proj.Rebalance(ctx)
			cancel()
			pending = err != nil // tried again at the next tick
			if err == nil {
				r.covered.Store(&viewMark{changed: changed})
				e.proj.NotifyAdoptions() // requests waiting in share look again
			}
			if err != nil && r.ctx.Err() == nil {
				e.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "adopting this member's graphs failed; retrying",
					slog.String("err", err.Error()))
			}
		}
		select {
		case <-r.stop:
			return
		case <-changed:
			pending = true
		case <-tick.C:
		}
	}
}

// serveMember subscribes to member id's query subject, replacing the
// subscription of the member before it.
func (e *Engine) serveMember(id string) {
	r := e.route
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sub := range r.subs {
		_ = sub.Unsubscribe()
	}
	r.subs, r.id = nil, id
	for subject, handler := range map[string]nats.MsgHandler{api.MemberQuerySubject(id): e.answerRouted, api.MemberRepairSubject(id): e.repairRouted,
		api.MemberGraphsSubject(id): e.answerGraphsRouted} {
		sub, err := e.nc.Subscribe(subject, handler)
		if err != nil {
			e.cfg.Logger.LogAttrs(context.Background(), slog.LevelError, "serving routed requests failed; this member's graphs are queried where asked",
				slog.String("member", id), slog.String("subject", subject), slog.String("err", err.Error()))
			continue
		}
		r.subs = append(r.subs, sub)
	}
}

// repairRouted runs a repair another member routed here.
func (e *Engine) repairRouted(msg *nats.Msg) {
	r := e.route
	r.serve(func() {
		var req api.RepairRequest
		var rep api.RepairReply
		if err := json.Unmarshal(msg.Data, &req); err != nil {
			rep = api.RepairReply{Code: "INVALID_ARGUMENT", Error: fmt.Sprintf("routed repair is not a JSON api.RepairRequest: %v", err)}
		} else {
			ctx, cancel := context.WithTimeout(r.ctx, e.cfg.CommandTimeout)
			res, err := e.proj.Repair(ctx, req.Graph, req.Seq)
			cancel()
			rep.RepairResult = res
			if err != nil {
				rep.Error, rep.Code = err.Error(), actors.AdminCode(err)
			}
		}
		data, err := json.Marshal(rep)
		if err == nil {
			err = msg.Respond(data)
		}
		if err != nil {
			e.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "answering a routed repair failed", slog.String("err", err.Error()))
		}
	})
}

// serve runs do on a goroutine of its own, at most routedQueriesInFlight
// at once (more wait here, and so in NATS), nothing once routing stopped.
func (r *router) serve(do func()) {
	select {
	case r.sem <- struct{}{}:
	case <-r.stop:
		return
	}
	go func() {
		defer func() { <-r.sem }()
		do()
	}()
}

// forwardRepair asks member id to repair graph, as forward does a query.
func (e *Engine) forwardRepair(ctx context.Context, id, graph string, seq uint64) (api.RepairResult, bool, error) {
	data, _ := json.Marshal(api.RepairRequest{Graph: graph, Seq: seq})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.cfg.CommandTimeout)
		defer cancel()
	}
	msg, err := e.nc.RequestWithContext(ctx, api.MemberRepairSubject(id), data)
	if err != nil {
		return api.RepairResult{Graph: graph, Seq: seq}, false, nil
	}
	var rep api.RepairReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return api.RepairResult{Graph: graph, Seq: seq}, true, fmt.Errorf("repair of %s: its owner (member %s) answered no RepairReply: %w", graph, id, err)
	}
	if rep.Error != "" {
		return rep.RepairResult, true, &actors.AdminError{Code: rep.Code, Message: rep.Error}
	}
	return rep.RepairResult, true, nil
}

// answerRouted answers a query another member routed here, on a goroutine
// of its own (a query may wait for its min_seq or an adoption).
func (e *Engine) answerRouted(msg *nats.Msg) {
	e.route.serve(func() {
		req := &cairnv1.QueryRequest{}
		var rep *cairnv1.QueryReply
		if err := proto.Unmarshal(msg.Data, req); err != nil {
			rep = &cairnv1.QueryReply{Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT,
				Message: fmt.Sprintf("routed query is not a protobuf cairn.v1.QueryRequest: %v", err)}).Proto()}
		} else {
			ctx := context.Background()
			if e.tracer != nil {
				ctx = tracing.Extract(ctx, msg.Header)
			}
			rep = e.proj.Query(ctx, req)
		}
		data, err := actors.MarshalQueryReply(rep, e.nc.MaxPayload())
		if err == nil {
			err = msg.Respond(data)
		}
		if err != nil {
			e.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "answering a routed query failed", slog.String("err", err.Error()))
		}
	})
}

// stopRouting stops following the membership and serving routed queries.
func (e *Engine) stopRouting() {
	r := e.route
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	r.mu.Lock()
	for _, sub := range r.subs {
		_ = sub.Unsubscribe()
	}
	r.subs = nil
	r.mu.Unlock()
}

// query answers req (ask), inside its cairn.query span when tracing is
// on and ctx carries a span context (queryTraced), and records it in the
// metrics. Both the gateway (its Querier) and Engine.Query ask through
// here, once.
func (e *Engine) query(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	if e.tracer != nil && trace.SpanContextFromContext(ctx).IsValid() {
		return e.queryTraced(ctx, req)
	}
	return e.measureQuery(ctx, req)
}

// measureQuery answers req (ask) and records it in the metrics.
func (e *Engine) measureQuery(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	m := e.cfg.Metrics
	if m == nil {
		return e.ask(ctx, req)
	}
	start := time.Now()
	rep := e.ask(ctx, req)
	m.Query(req, rep, time.Since(start))
	return rep
}

// ask answers req at its graph's owner: here, or over NATS at the member
// that owns it.
func (e *Engine) ask(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	if rep, ok := e.crossQuery(ctx, req); ok {
		return rep
	}
	if id := e.ownerElsewhere(req.GetGraphId()); id != "" {
		if rep, ok := e.forward(ctx, id, req); ok {
			return rep
		}
	}
	return e.proj.Query(ctx, req)
}

// ownerElsewhere returns the id of the member that owns graph when it is
// not this one, "" when this member answers (it owns the graph, or it has
// no view of the cluster to route by).
func (e *Engine) ownerElsewhere(graph string) string {
	if e.route == nil {
		return ""
	}
	m := e.startedMember()
	if m == nil || m.Lookup().Fenced() {
		return ""
	}
	id, _, ok := m.Lookup().Owner(graph, actors.GraphKind)
	if !ok || id == m.ID() {
		return ""
	}
	return id
}

// forward asks member id to answer req. ok is false when the member did
// not take it (no such subscriber: it left or is starting; the connection
// failed): the caller answers it here instead.
func (e *Engine) forward(ctx context.Context, id string, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, bool) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.cfg.Projections.QueryTimeout)
		defer cancel()
	}
	// The owner bounds its answer by what is left of this caller's time.
	dl, _ := ctx.Deadline()
	left := time.Until(dl)
	if left <= 0 {
		return nil, false
	}
	fwd := proto.CloneOf(req)
	if ms := uint32(min(left.Milliseconds(), 1<<31)); fwd.GetTimeoutMs() == 0 || ms < fwd.GetTimeoutMs() {
		fwd.TimeoutMs = max(ms, 1)
	}
	data, err := proto.Marshal(fwd)
	if err != nil {
		return nil, false
	}
	out := &nats.Msg{Subject: api.MemberQuerySubject(id), Data: data}
	if e.tracer != nil {
		// The owner's spans of the query join the caller's trace.
		h := nats.Header{}
		if tracing.Inject(ctx, h); len(h) > 0 {
			out.Header = h
		}
	}
	msg, err := e.nc.RequestMsgWithContext(ctx, out)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return &cairnv1.QueryReply{Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
			Message: fmt.Sprintf("graph %s: its owner (member %s) did not answer in time", req.GetGraphId(), id)}).Proto()}, true
	case err != nil:
		return nil, false
	}
	rep := &cairnv1.QueryReply{}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		return &cairnv1.QueryReply{Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL,
			Message: fmt.Sprintf("graph %s: its owner (member %s) answered no QueryReply: %v", req.GetGraphId(), id, err)}).Proto()}, true
	}
	return rep, true
}

// engineQuerier is the gateway's view of the engine's queries: routed to
// the graph's owner in a cluster.
type engineQuerier struct{ e *Engine }

func (q engineQuerier) Query(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	return q.e.query(ctx, req)
}

// QueryNow answers req on the caller's goroutine when that needs no wait
// (actors.Projections.QueryNow) and this member answers it: not a
// traversal across links, not another member's graph, not traced.
func (q engineQuerier) QueryNow(req *cairnv1.QueryRequest) (*cairnv1.QueryReply, bool) {
	e := q.e
	if k := req.GetKHop(); k != nil && k.GetFollowLinks() {
		return nil, false
	}
	if sp := req.GetShortestPath(); sp != nil && sp.GetFollowLinks() {
		return nil, false
	}
	if e.ownerElsewhere(req.GetGraphId()) != "" {
		return nil, false
	}
	m := e.cfg.Metrics
	if m == nil {
		return e.proj.QueryNow(req)
	}
	start := time.Now()
	rep, ok := e.proj.QueryNow(req)
	if ok {
		m.Query(req, rep, time.Since(start))
	}
	return rep, ok
}

// Health is the projections' health (the gateway's query stats).
func (q engineQuerier) Health() api.ProjectionHealth { return q.e.proj.Health() }
