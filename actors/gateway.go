package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/tracing"
	"github.com/cairn-graph/cairn/internal/workers"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Executor runs one command envelope and always returns a reply.
type Executor interface {
	Execute(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply
}

var _ Executor = (*Dispatcher)(nil)

// Gateway is the NATS micro service "cairn": any NATS client can send
// commands to it, and `nats micro ls` / `nats micro info cairn` show it.
type Gateway struct {
	svc     micro.Service
	cmdSvc  micro.Service // the command endpoint's, when on a connection of its own
	exec    Executor
	queries Querier
	log     *slog.Logger
	// propagate hands the requests' traceparent headers on in ctx.
	propagate bool
	// maxPayload is the server's largest message.
	maxPayload int64
	timeout    time.Duration
	// cmdSem and querySem bound commands and queries in flight apart, so
	// that a flood of queries leaves commands their own room.
	cmdSem, querySem chan struct{}
	inflight         sync.WaitGroup
	// workers run the commands and queries: long-lived goroutines, whose
	// stacks stay grown (a goroutine per request grew its stack on each).
	workers *workers.Pool
	ctx     context.Context
	cancel  context.CancelFunc

	// mu orders taking a command (inflight.Add) against Close: once closing
	// is set, no command is taken, so Close's wait covers every one.
	mu      sync.Mutex
	closing bool
}

// GatewayConfig tunes the gateway.
type GatewayConfig struct {
	// Timeout bounds one command. Default 10 seconds.
	Timeout time.Duration
	// MaxInFlight bounds commands being run at once, and queries apart
	// (each kind has its own MaxInFlight); more wait
	// in NATS. Default 8,192.
	MaxInFlight int
	// Grains, when set, reports the graph grains' counters in the command
	// endpoint's stats (api.CommandStats; the process's memory is always
	// there).
	Grains interface{ Health() api.GrainHealth }
	// Ready, when set, says whether the engine is ready
	// (cairn.Engine.Ready), in the command endpoint's stats.
	Ready func() error
	// Queries, when set, is served on the "query" endpoint
	// (api.QuerySubjects, and the deprecated api.QuerySubject).
	Queries Querier
	// Graphs, when set, is served on the "graphs" endpoint
	// (api.GraphsSubject): the catalogue and the finds across graphs
	// (gateway_graphs.go).
	Graphs GraphsFunc
	// Repair, when set, is served on the admin "repair" endpoint
	// (api.RepairSubject, JSON): cairn repair (Projections.Repair).
	Repair func(ctx context.Context, graph string, seq uint64) (api.RepairResult, error)
	// Archive, when set, is served on the admin "archive" endpoint
	// (api.ArchiveSubject, JSON): cairn archive without a signing key
	// (Engine.Archive), bounded by ArchiveTimeout, not Timeout.
	Archive func(ctx context.Context, graph string, before uint64) (api.ArchiveReply, error)
	// AdapterStream, when set, is served on the "adapter-stream" endpoint
	// (api.AdapterStreamSubject, JSON): an adapter user's request that the
	// engine create its stream. It is given the request's reply subject,
	// which names the asking user (api.IdentityOfReply).
	AdapterStream func(ctx context.Context, reply string, req api.AdapterStreamRequest) api.AdapterStreamReply
	// ArchiveTimeout bounds one archive request. Default 10 minutes.
	ArchiveTimeout time.Duration
	// Keys, when set, is served as JSON on the "keys" endpoint
	// (api.KeysSubject): the engine's public signing keys.
	Keys *api.Keys
	// CommandConn, when set, serves the "command" endpoint on a connection
	// of its own, as a second instance of the service: a flood of queries
	// (or of their answers) on the first connection cannot delay or drop
	// commands. Nil: both endpoints on the service's connection.
	CommandConn *nats.Conn
	// Propagate, when set, hands each request's W3C traceparent header
	// on as the remote span context of the ctx the Executor and the
	// Querier are given: they start the request's server span under it
	// (the engine's cairn.command and cairn.query, internal/tracing).
	// Default false: the headers are not read, at no cost.
	Propagate bool
	// Logger. Default: discard.
	Logger *slog.Logger
}

// StartGateway registers the micro service on nc and serves until Close; when
// it returns, the server routes requests to it.
func StartGateway(nc *nats.Conn, exec Executor, cfg GatewayConfig) (*Gateway, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 8192
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{exec: exec, queries: cfg.Queries, log: cfg.Logger.With("component", "gateway"), propagate: cfg.Propagate, timeout: cfg.Timeout,
		cmdSem: make(chan struct{}, cfg.MaxInFlight), querySem: make(chan struct{}, cfg.MaxInFlight), ctx: ctx, cancel: cancel, maxPayload: nc.MaxPayload(),
		workers: workers.New(workerIdle)}
	mcfg := micro.Config{
		Name:        api.ServiceName,
		Version:     api.ServiceVersion,
		Description: "Cairn event-sourced graph engine: commands in, CID-chained transactions out",
		// Both instances (see CommandConn) carry one engine id, so that a
		// client pairs their stats (api.EndpointStats).
		Metadata: map[string]string{api.EngineMetadata: engineID()},
		// The query endpoint's stats carry the projections' health, the
		// command endpoint's the grains' and the process's memory.
		StatsHandler: func(e *micro.Endpoint) any {
			if h, ok := cfg.Queries.(interface{ Health() api.ProjectionHealth }); ok && e.Name == "query" {
				return h.Health()
			}
			if e.Name == "command" {
				st := api.CommandStats{Memory: ReadMemory()}
				if cfg.Ready != nil {
					st.Ready = api.NewReadyHealth(cfg.Ready())
				}
				if cfg.Grains != nil {
					h := cfg.Grains.Health()
					st.GrainHealth = &h
				}
				return st
			}
			return nil
		},
	}
	svc, err := micro.AddService(nc, mcfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	cmdSvc, cmdConn := svc, nc
	if cfg.CommandConn != nil {
		cmdConn = cfg.CommandConn
		if cmdSvc, err = micro.AddService(cmdConn, mcfg); err != nil {
			_ = svc.Stop()
			cancel()
			return nil, fmt.Errorf("start gateway: command service: %w", err)
		}
		g.cmdSvc = cmdSvc
	}
	stop := func() {
		_ = svc.Stop()
		if g.cmdSvc != nil {
			_ = g.cmdSvc.Stop()
		}
		cancel()
	}
	// Each kind of request on its per-graph subjects (whose stats carry
	// the health), and on the deprecated un-graphed subject for one more
	// release.
	type endpoint struct {
		svc           micro.Service
		name, subject string
		handler       micro.HandlerFunc
		meta          map[string]string
	}
	cmdMeta := map[string]string{"request": "cairn.v1.CommandEnvelope (protobuf)", "response": "cairn.v1.CommandReply (protobuf)"}
	endpoints := []endpoint{
		{cmdSvc, "command", api.CommandSubjects, g.handleCommand, cmdMeta},
		{cmdSvc, "command-deprecated", api.CommandSubject, g.handleCommand, cmdMeta},
	}
	if cfg.Queries != nil {
		queryMeta := map[string]string{"request": "cairn.v1.QueryRequest (protobuf)", "response": "cairn.v1.QueryReply (protobuf)"}
		endpoints = append(endpoints,
			endpoint{svc, "query", api.QuerySubjects, g.handleQuery, queryMeta},
			endpoint{svc, "query-deprecated", api.QuerySubject, g.handleQuery, queryMeta})
	}
	for _, e := range endpoints {
		if err := e.svc.AddEndpoint(e.name, e.handler, micro.WithEndpointSubject(e.subject), micro.WithEndpointMetadata(e.meta)); err != nil {
			stop()
			return nil, fmt.Errorf("start gateway: add %s endpoint: %w", e.name, err)
		}
	}
	if err := g.addGraphsEndpoint(svc, cfg.Graphs); err != nil {
		stop()
		return nil, err
	}
	if cfg.Repair != nil {
		err = svc.AddEndpoint("repair", micro.HandlerFunc(func(req micro.Request) { g.handleRepair(req, cfg.Repair) }),
			micro.WithEndpointSubject(api.RepairSubject),
			micro.WithEndpointMetadata(map[string]string{
				"request":  "api.RepairRequest (JSON)",
				"response": "api.RepairReply (JSON)",
			}))
		if err != nil {
			stop()
			return nil, fmt.Errorf("start gateway: add repair endpoint: %w", err)
		}
	}
	if cfg.Archive != nil {
		if cfg.ArchiveTimeout <= 0 {
			cfg.ArchiveTimeout = 10 * time.Minute
		}
		err = svc.AddEndpoint("archive", micro.HandlerFunc(func(req micro.Request) { g.handleArchive(req, cfg.Archive, cfg.ArchiveTimeout) }),
			micro.WithEndpointSubject(api.ArchiveSubject),
			micro.WithEndpointMetadata(map[string]string{
				"request":  "api.ArchiveRequest (JSON)",
				"response": "api.ArchiveReply (JSON)",
			}))
		if err != nil {
			stop()
			return nil, fmt.Errorf("start gateway: add archive endpoint: %w", err)
		}
	}
	if cfg.AdapterStream != nil {
		err = svc.AddEndpoint("adapter-stream", micro.HandlerFunc(func(req micro.Request) { g.handleAdapterStream(req, cfg.AdapterStream) }),
			micro.WithEndpointSubject(api.AdapterStreamSubject),
			micro.WithEndpointMetadata(map[string]string{
				"request":  "api.AdapterStreamRequest (JSON)",
				"response": "api.AdapterStreamReply (JSON)",
			}))
		if err != nil {
			stop()
			return nil, fmt.Errorf("start gateway: add adapter-stream endpoint: %w", err)
		}
	}
	if cfg.Keys != nil {
		keys, err := json.Marshal(cfg.Keys)
		if err == nil {
			err = svc.AddEndpoint("keys", micro.HandlerFunc(func(req micro.Request) { _ = req.Respond(keys) }),
				micro.WithEndpointSubject(api.KeysSubject),
				micro.WithEndpointMetadata(map[string]string{"request": "anything", "response": "api.Keys (JSON)"}))
		}
		if err != nil {
			stop()
			return nil, fmt.Errorf("start gateway: add keys endpoint: %w", err)
		}
	}
	// Ready means the server has the subscriptions: a request sent right
	// after StartGateway returns, on any connection, finds the service.
	for _, c := range []*nats.Conn{nc, cmdConn} {
		if err := c.Flush(); err != nil {
			stop()
			return nil, fmt.Errorf("start gateway: %w", err)
		}
	}
	g.svc = svc
	return g, nil
}

// handleCommand runs on the endpoint's subscription goroutine: it decodes and
// hands the command to a worker so that a slow graph never holds up others.
// The executor validates it.
func (g *Gateway) handleCommand(req micro.Request) {
	env := &cairnv1.CommandEnvelope{}
	if err := proto.Unmarshal(req.Data(), env); err != nil {
		g.reply(req, aggregate.ErrorReply(env, invalid("", "request is not a protobuf cairn.v1.CommandEnvelope: %v", err)))
		return
	}
	if err := subjectGraph(req.Subject(), env.GetGraphId()); err != nil {
		g.reply(req, aggregate.ErrorReply(env, err))
		return
	}
	g.work(g.cmdSem, func() { g.reply(req, aggregate.ErrorReply(env, unavailable("cairn is shutting down"))) },
		func(ctx context.Context) {
			if g.propagate {
				ctx = tracing.Extract(ctx, req.Headers())
			}
			var r Route
			ctx = WithCaller(ctx, req.Reply())
			rep := g.exec.Execute(WithRoute(ctx, &r), env)
			if r.Here == "" {
				g.reply(req, rep)
				return
			}
			// Where it ran, for clients that measure the cross-member hop
			// (cairn bench scale).
			data, err := proto.Marshal(rep)
			g.send(req, data, err, micro.WithHeaders(micro.Headers{api.MemberHeader: {r.Here}, api.OwnerHeader: {r.Owner}}))
		})
}

// subjectGraph refuses a request whose per-graph subject names another
// graph than the request itself: subject permissions are per graph, so
// the graph a user may reach is the subject's. A request on a deprecated
// un-graphed subject has no graph in its subject.
func subjectGraph(subject, graph string) *aggregate.CommandError {
	if sg, ok := api.GraphOfSubject(subject); ok && sg != graph {
		return invalid("graph_id", "graph_id %q is not the graph of subject %s (%q)", graph, subject, sg)
	}
	return nil
}

// work runs do on a worker goroutine, at most MaxInFlight of sem's kind at once, bounded by
// the gateway's timeout; when the gateway is closing it calls refuse instead
// (the subscription drains requests that arrived before Close).
func (g *Gateway) work(sem chan struct{}, refuse func(), do func(ctx context.Context)) {
	g.workFor(sem, g.timeout, refuse, do)
}

// workFor is work bounded by timeout instead of the gateway's Timeout.
func (g *Gateway) workFor(sem chan struct{}, timeout time.Duration, refuse func(), do func(ctx context.Context)) {
	select {
	case sem <- struct{}{}:
	case <-g.ctx.Done():
		refuse()
		return
	}
	if !g.take() {
		<-sem
		refuse()
		return
	}
	g.workers.Go(func() {
		defer func() { <-sem; g.inflight.Done() }()
		ctx, cancel := context.WithTimeout(g.ctx, timeout)
		defer cancel()
		do(ctx)
	})
}

// workerIdle is how long a gateway worker waits for the next request
// before it exits.
const workerIdle = time.Second

// handleQuery is handleCommand for queries: a query may wait for its
// min_seq, so it runs on a worker too.
func (g *Gateway) handleQuery(req micro.Request) {
	q := &cairnv1.QueryRequest{}
	if err := proto.Unmarshal(req.Data(), q); err != nil {
		g.respond(req, &cairnv1.QueryReply{Error: invalid("", "request is not a protobuf cairn.v1.QueryRequest: %v", err).Proto()})
		return
	}
	if err := subjectGraph(req.Subject(), q.GetGraphId()); err != nil {
		g.respond(req, &cairnv1.QueryReply{Error: err.Proto()})
		return
	}
	if now, ok := g.queries.(NowQuerier); ok && !g.propagate && g.take() {
		// A query that needs no wait is answered here, on the
		// subscription's goroutine: no worker, no shard mailbox.
		rep, ok := now.QueryNow(q)
		if ok {
			g.respondQuery(req, rep)
		}
		g.inflight.Done()
		if ok {
			return
		}
	}
	g.work(g.querySem, func() { g.respond(req, &cairnv1.QueryReply{Error: unavailable("cairn is shutting down").Proto()}) },
		func(ctx context.Context) {
			if g.propagate {
				ctx = tracing.Extract(ctx, req.Headers())
			}
			rep := g.queries.Query(WithCaller(ctx, req.Reply()), q)
			g.respondQuery(req, rep)
		})
}

// handleRepair runs an admin's repair (api.RepairSubject).
func (g *Gateway) handleRepair(req micro.Request, repair func(context.Context, string, uint64) (api.RepairResult, error)) {
	answer := func(rep api.RepairReply) {
		data, err := json.Marshal(rep)
		g.send(req, data, err)
	}
	var r api.RepairRequest
	if err := json.Unmarshal(req.Data(), &r); err != nil || r.Graph == "" || r.Seq == 0 {
		answer(api.RepairReply{Code: "INVALID_ARGUMENT", Error: fmt.Sprintf("request is not a JSON api.RepairRequest with a graph and a seq (%s)", req.Data())})
		return
	}
	g.work(g.querySem, func() { answer(api.RepairReply{Code: "UNAVAILABLE", Error: "cairn is shutting down"}) },
		func(ctx context.Context) {
			res, err := repair(ctx, r.Graph, r.Seq)
			rep := api.RepairReply{RepairResult: res}
			if err != nil {
				rep.Error, rep.Code = err.Error(), AdminCode(err)
			}
			answer(rep)
		})
}

// handleArchive runs an admin's archive request (api.ArchiveSubject),
// bounded by timeout: archiving a long history takes longer than a command.
func (g *Gateway) handleArchive(req micro.Request, archive func(context.Context, string, uint64) (api.ArchiveReply, error), timeout time.Duration) {
	answer := func(rep api.ArchiveReply) {
		data, err := json.Marshal(rep)
		g.send(req, data, err)
	}
	var r api.ArchiveRequest
	if err := json.Unmarshal(req.Data(), &r); err != nil || r.Graph == "" || r.Before < 2 {
		answer(api.ArchiveReply{Code: "INVALID_ARGUMENT", Error: fmt.Sprintf("request is not a JSON api.ArchiveRequest with a graph and a before seq of at least 2 (%s)", req.Data())})
		return
	}
	g.workFor(g.querySem, timeout, func() { answer(api.ArchiveReply{Graph: r.Graph, Code: "UNAVAILABLE", Error: "cairn is shutting down"}) },
		func(ctx context.Context) {
			rep, err := archive(ctx, r.Graph, r.Before)
			if err != nil {
				rep.Graph, rep.Error, rep.Code = r.Graph, err.Error(), AdminCode(err)
			}
			answer(rep)
		})
}

// handleAdapterStream answers an adapter's request for its stream
// (api.AdapterStreamSubject).
func (g *Gateway) handleAdapterStream(req micro.Request, create func(context.Context, string, api.AdapterStreamRequest) api.AdapterStreamReply) {
	answer := func(rep api.AdapterStreamReply) {
		data, err := json.Marshal(rep)
		g.send(req, data, err)
	}
	var r api.AdapterStreamRequest
	if err := json.Unmarshal(req.Data(), &r); err != nil || r.Stream == "" || len(r.Subjects) == 0 {
		answer(api.AdapterStreamReply{Code: "INVALID_ARGUMENT", Error: fmt.Sprintf("request is not a JSON api.AdapterStreamRequest with a stream and subjects (%.200s)", req.Data())})
		return
	}
	g.work(g.querySem, func() { answer(api.AdapterStreamReply{Code: "UNAVAILABLE", Error: "cairn is shutting down"}) },
		func(ctx context.Context) { answer(create(ctx, req.Reply(), r)) })
}

// AdminCode names the wire code of an admin request's failure (repair,
// archive): the store's sentinels and the requests' own refusals.
func AdminCode(err error) string {
	var ae *AdminError
	switch {
	case errors.As(err, &ae):
		return ae.Code
	case errors.Is(err, persistence.ErrNotFound):
		return "NOT_FOUND"
	case errors.Is(err, persistence.ErrInvalidGraph):
		return "INVALID_ARGUMENT"
	case errors.Is(err, ErrNotRepairable), errors.Is(err, ErrArchiveBusy), persistence.IsDataLoss(err):
		return "FAILED_PRECONDITION"
	case errors.Is(err, persistence.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return "UNAVAILABLE"
	}
	return "INTERNAL"
}

// AdminError is an admin request's failure as another engine answered it
// (a repair routed to the graph's owner): its wire code and message.
type AdminError struct{ Code, Message string }

func (e *AdminError) Error() string { return e.Message }

// ErrArchiveBusy: an archive of the graph is already running.
var ErrArchiveBusy = errors.New("an archive of this graph is already running")

// respondQuery sends rep, or, when it would not fit in one NATS message,
// a RESOURCE_EXHAUSTED error that says so.
func (g *Gateway) respondQuery(req micro.Request, rep *cairnv1.QueryReply) {
	data, err := MarshalQueryReply(rep, g.maxPayload)
	g.send(req, data, err)
}

// MarshalQueryReply encodes rep for a NATS reply, or, when it would not fit
// in a message of maxPayload bytes, a RESOURCE_EXHAUSTED error that says
// so: the gateway's answers and those a cluster member routes to another.
func MarshalQueryReply(rep *cairnv1.QueryReply, maxPayload int64) ([]byte, error) {
	data, err := proto.Marshal(rep)
	if n := len(data); err == nil && n > int(maxPayload)-1024 {
		data, err = proto.Marshal(&cairnv1.QueryReply{AsOfSeq: rep.GetAsOfSeq(), Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED,
			Message: fmt.Sprintf("the answer takes %d bytes, more than a NATS message holds (%d): ask for a smaller page, depth or max_results", n, maxPayload)}).Proto()})
	}
	return data, err
}

// take counts a command in flight, unless the gateway is closing.
func (g *Gateway) take() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.inflight.Add(1)
	return true
}

func (g *Gateway) reply(req micro.Request, rep *cairnv1.CommandReply) { g.respond(req, rep) }

func (g *Gateway) respond(req micro.Request, rep proto.Message) {
	data, err := proto.Marshal(rep)
	g.send(req, data, err)
}

// send answers req with data, or logs why it cannot (err from encoding it).
func (g *Gateway) send(req micro.Request, data []byte, err error, opts ...micro.RespondOpt) {
	if err == nil {
		err = req.Respond(data, opts...)
	}
	if err != nil {
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "reply failed", slog.String("err", err.Error()))
	}
}

// Close stops taking requests and waits, until ctx ends, for the commands in
// flight to be answered. Requests that reach it after Close began are
// refused as UNAVAILABLE.
func (g *Gateway) Close(ctx context.Context) error {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	err := g.svc.Stop()
	if g.cmdSvc != nil {
		err = errors.Join(err, g.cmdSvc.Stop())
	}
	done := make(chan struct{})
	go func() { g.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.cancel()
		err = errors.Join(err, fmt.Errorf("gateway drain: %w", ctx.Err()))
	}
	g.cancel()
	// Past ctx, the drain error says it: the workers still running end
	// with their cancelled requests.
	if werr := g.workers.Close(ctx); ctx.Err() == nil {
		err = errors.Join(err, werr)
	}
	return err
}

// engineID is a random name for one gateway's service instances.
func engineID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
