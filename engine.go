package cairn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/logx"
	"github.com/cairn-graph/cairn/internal/retry"
	"github.com/cairn-graph/cairn/internal/tracing"
	"github.com/cairn-graph/cairn/internal/tracing/otlp"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Engine is a running Cairn member: NATS JetStream (embedded or external),
// the event store, a cluster member hosting graph grains, the projection
// shards that answer queries, and the "cairn" NATS micro service.
type Engine struct {
	cfg    Config
	server *persistence.Server // nil with an external NATS
	nc     *nats.Conn          // connEngine; conns holds it and the others
	conns  conns
	store  *persistence.Store
	snaps  *persistence.Snapshots // nil when snapshots are off
	warm   *actors.Warm           // nil without local snapshot copies
	// archiving holds the graphs an Archive runs for.
	archiving sync.Map
	// member and disp are set by the goroutine that starts the member,
	// before it closes memberReady; read them only after that.
	member      *cairncluster.Member
	memberErr   error
	memberReady chan struct{}
	// memberMu guards member and disp once memberReady is closed: a
	// fenced member is replaced by a fresh one (rejoin).
	memberMu sync.RWMutex
	// rejoinStop and rejoinDone stop and wait for the rejoin loop; nil
	// for a single member.
	rejoinStop, rejoinDone chan struct{}
	rejoins                atomic.Uint64
	projSystem             *actor.ActorSystem
	grains                 *actors.GraphGrains
	disp                   *actors.Dispatcher
	proj                   *actors.Projections
	gateway                *actors.Gateway
	route                  *router              // nil for a single member
	trust                  *persistence.Keyring // nil: signatures are not checked
	cancel                 context.CancelFunc
	// tracer is nil when tracing is off; stopTracing flushes and stops
	// the tracer provider Open set up (nil when it set none up).
	tracer      trace.Tracer
	stopTracing func(context.Context) error

	closeOnce sync.Once
	closeErr  error
	closing   atomic.Bool // Close was called: not ready
	collector *collector  // on Config.Metrics's registry; nil without
	linker    *linker     // marks dangling links (linker.go)

	// metaApartDone is closed when keepStreamOffMeta, stopped by
	// rejoinStop, returned; nil when it does not run. metaLeader, when
	// set (tests), replaces the embedded node's own answer.
	metaApartDone chan struct{}
	metaLeader    atomic.Pointer[func() bool]
}

// Open starts an engine. On error everything it started is stopped again.
// It returns once the gateway serves: the projections restore their
// snapshots in the background (queries wait for them), and the cluster
// member that hosts the graph grains finishes starting in the background
// too (commands wait for it, a few milliseconds).
func Open(ctx context.Context, cfg Config) (_ *Engine, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	if cfg.Cluster.Membership == cairncluster.MembershipK8s {
		// Out of a pod the member could never join: say so now, not
		// after the NATS server and the stores are up.
		if err := cairncluster.K8sInCluster(); err != nil {
			return nil, fmt.Errorf("cluster membership: %w", err)
		}
	}
	base, cancel := context.WithCancel(context.Background())
	e := &Engine{cfg: cfg, cancel: cancel}
	defer func() {
		if err != nil {
			_ = e.Close(context.Background())
		}
	}()
	if err := e.startTracing(ctx); err != nil {
		return nil, err
	}
	// Before the NATS server recovers (after a kill -9 it rebuilds its
	// stream state, about half a second a gigabyte), the local snapshot
	// copies start decoding: the projections and grains take them once
	// they have checked them against the stores.
	var local *persistence.LocalSnapshots
	if cfg.DataDir != "" && !cfg.DisableSnapshots && !cfg.NoLocalSnapshots {
		if local, err = persistence.OpenLocalSnapshots(filepath.Join(cfg.DataDir, "snapshots")); err != nil {
			return nil, err
		}
		e.warm = actors.StartWarm(local, actors.WarmConfig{AggregateBytes: cfg.WarmAggregateBytes, ReadModel: cfg.Projections.ReadModel, Logger: cfg.Logger})
	}
	if cfg.NATSURL == "" {
		scfg := persistence.ServerConfig{
			DataDir: cfg.DataDir, Listen: cfg.NATSListen, SyncAlways: cfg.SyncAlways, Logger: cfg.Logger, TLS: cfg.TLS,
			ServerName: cfg.NATSName, Cluster: cfg.NATSCluster,
		}
		if cfg.Auth != nil {
			scfg.Users, scfg.NkeyUsers = cfg.Auth.ServerUsers(cfg.authStreams())
		}
		e.server, err = persistence.StartServer(scfg)
		if err != nil {
			return nil, err
		}
	}
	if e.nc, err = e.connect(connEngine); err != nil {
		return nil, err
	}
	js, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	trust, signer := cfg.Trust, cfg.Signer
	if signer != nil {
		trust = trust.Clone()
		if err := trust.Add(signer.KeyID()); err != nil {
			return nil, err
		}
		// What this engine's grains sign, its projections need not verify
		// again: a SignedSet vouches for each once.
		set := persistence.NewSignedSet(signedSetSize)
		signer = signer.Remembering(set)
		trust.Vouching(set)
	}
	var storeOpts []persistence.StoreOption
	// A NATS cluster answers "unavailable" until it has elected a meta
	// leader and enough nodes are up for the replicas: wait for it.
	err = e.waitJetStream(ctx, js, func(ctx context.Context) error {
		if cfg.AdoptUnsignedHistory && trust != nil {
			last, err := streamLastSeq(ctx, startBound{js}, cfg.Store.Stream)
			if err != nil {
				return err
			}
			if last > trust.UnsignedThrough() {
				trust = trust.Clone()
				trust.AllowUnsignedThrough(last)
			}
		}
		storeOpts = []persistence.StoreOption{persistence.WithSigning(cfg.Signer, trust)}
		if !cfg.DisableSnapshots {
			scfg := cfg.Snapshots
			scfg.Signer, scfg.Trust, scfg.Local = cfg.Signer, trust, local
			if e.snaps, err = persistence.OpenSnapshots(ctx, startBound{js}, scfg); err != nil {
				return err
			}
			storeOpts = append(storeOpts, persistence.WithObjects(e.snaps.Objects()))
		}
		e.store, err = persistence.OpenStore(ctx, startBound{js}, cfg.Store, storeOpts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	e.trust = trust
	grainCfg := cfg.Grain
	grainCfg.Logger = cfg.Logger
	grainCfg.Metrics = cfg.Metrics
	grainCfg.Signer, grainCfg.Trust = signer, trust
	grainCfg.Tracer = e.tracer
	if e.snaps != nil {
		grainCfg.Snapshots, grainCfg.Warm = e.snaps, e.warm
	}
	// Grains activate once the member has started, after the projections
	// below exist.
	grainCfg.Quarantined = func(graph string) error {
		if e.proj == nil {
			return nil
		}
		return e.proj.Quarantined(graph)
	}
	// A member that fenced itself (its membership lease ended) writes
	// nothing more.
	grainCfg.Fence = func() error {
		if m := e.startedMember(); m != nil {
			return m.Check()
		}
		return nil
	}
	grainCfg.OnDataLoss = func(graph string, seq uint64, err error) {
		if e.proj != nil {
			e.proj.Quarantine(graph, seq, err)
		}
	}
	if e.grains, err = actors.NewGraphKind(base, e.store, grainCfg); err != nil {
		return nil, err
	}
	// The projections run on an actor system of their own, so that they
	// restore their snapshots and answer queries while the cluster member
	// starts: a restarted engine serves queries as soon as its read models
	// are back.
	e.projSystem = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logx.Demoted(cfg.Logger.Handler()).With("component", "protoactor-projections")
	}))
	projCfg := cfg.Projections
	projCfg.Logger = cfg.Logger
	// The projections read history (time travel above all) on a
	// connection of their own: a flood of time-travel builds cannot make
	// the service's connection a slow consumer.
	if projCfg.Store, err = e.openHistory(ctx); err != nil {
		return nil, err
	}
	projCfg.Trust = trust
	projCfg.Tracer = e.tracer
	if e.snaps != nil {
		projCfg.Snapshots, projCfg.Warm = e.snaps, e.warm
	}
	if cfg.Cluster.Membership != cairncluster.MembershipLocal {
		// Each member holds the read models of the graphs it owns, and
		// writes their snapshots under a manifest series of its own
		// (route.go).
		projCfg.Partition = e.partition()
	}
	if e.proj, err = actors.NewProjections(e.projSystem, e.store, projCfg); err != nil {
		return nil, err
	}
	e.proj.Start()
	e.startLinker()
	clusterCfg := cfg.Cluster
	clusterCfg.Logger = cfg.Logger
	if clusterCfg.KV.ApartFrom == nil {
		// One node's death must not stop the event stream and the
		// membership bucket at once (cluster.KVConfig.ApartFrom).
		clusterCfg.KV.ApartFrom = []string{cfg.Store.Stream}
	}
	if clusterCfg.Membership == cairncluster.MembershipNATSKV && clusterCfg.KV.JetStream == nil {
		mc, err := e.connect(connMembership)
		if err != nil {
			return nil, err
		}
		if clusterCfg.KV.JetStream, err = jetstream.New(mc); err != nil {
			return nil, fmt.Errorf("membership jetstream: %w", err)
		}
	}
	e.memberReady = make(chan struct{})
	clustered := clusterCfg.Membership != cairncluster.MembershipLocal
	if clustered {
		e.rejoinStop, e.rejoinDone = make(chan struct{}), make(chan struct{})
		if e.server != nil && cfg.Store.Replicas > 1 {
			e.metaApartDone = make(chan struct{})
			go e.keepStreamOffMeta(e.rejoinStop, e.metaApartDone)
		}
	}
	go func() {
		defer close(e.memberReady)
		// Commands wait meanwhile (UNAVAILABLE, "still starting").
		if clustered {
			e.member, e.memberErr = e.join(clusterCfg)
		} else {
			e.member, e.memberErr = cairncluster.Start(clusterCfg, e.grains.Kind())
		}
		if e.memberErr != nil {
			cfg.Logger.LogAttrs(context.Background(), slog.LevelError, "cluster member did not start; commands are refused", slog.String("err", e.memberErr.Error()))
			return
		}
		e.disp = actors.NewDispatcher(e.member.Cluster(), cfg.CommandTimeout, actors.TraceDispatch(e.tracer))
	}()
	if clustered {
		go e.rejoin(clusterCfg)
		e.startRouting()
	}
	if cfg.Gateway {
		keys := &api.Keys{Trusted: append([]string{}, trust.IDs()...), UnsignedThrough: trust.UnsignedThrough()}
		if cfg.Signer != nil {
			keys.SigningKey = cfg.Signer.KeyID()
		}
		// Commands are taken on a connection of their own, so that no
		// flood of queries delays them.
		cmdConn, err := e.connect(connCommands)
		if err != nil {
			return nil, err
		}
		e.gateway, err = actors.StartGateway(e.nc, engineExecutor{e}, actors.GatewayConfig{Timeout: cfg.CommandTimeout, Queries: engineQuerier{e}, Grains: e.grains, Keys: keys, Repair: e.Repair, Logger: cfg.Logger, Graphs: e.graphsFor,
			Archive: e.archiveIfObjects(), Ready: e.Ready, AdapterStream: e.adapterStream,
			CommandConn: cmdConn, Propagate: e.tracer != nil})
		if err != nil {
			return nil, err
		}
	}
	if cfg.Metrics != nil {
		e.collector = &collector{e: e}
		if err := cfg.Metrics.Registry().Register(e.collector); err != nil {
			return nil, fmt.Errorf("metrics: %w (a Metrics serves one engine at a time)", err)
		}
	}
	return e, nil
}

// Execute runs one command envelope. It returns the reply and, when the
// command was refused, a *aggregate.CommandError (match its code with errors.Is
// against the actors sentinels, for example aggregate.ErrNotFound).
//
// With Config.Tracing on, the command gets the trace a NATS client's
// does: a cairn.command span, the child of the span ctx carries (the
// caller's own), else a new trace's root.
//
// env belongs to the engine once passed: do not change it, or anything it
// points to, after the call (a grain still deciding it when Execute gave
// up waiting reads it, and the read models apply the events decided from
// its commands, which share their fields).
func (e *Engine) Execute(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	rep := e.execute(ctx, env)
	return rep, aggregate.ErrorFromProto(rep.GetError())
}

// execute runs env (dispatch), inside its cairn.command span when
// tracing is on (executeTraced), and records it in the metrics. Both the
// gateway (its Executor) and Engine.Execute run a command through here,
// once.
func (e *Engine) execute(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	if e.tracer != nil {
		return e.executeTraced(ctx, env)
	}
	return e.measure(ctx, env)
}

// measure runs env (dispatch) and records it in the metrics.
func (e *Engine) measure(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	m := e.cfg.Metrics
	if m == nil {
		return e.dispatch(ctx, env)
	}
	start := time.Now()
	rep := e.dispatch(ctx, env)
	m.Command(env, rep, time.Since(start))
	return rep
}

// dispatch waits (bounded by ctx, else by Config.CommandTimeout) for the
// cluster member to have started, then dispatches env.
func (e *Engine) dispatch(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	select {
	case <-e.memberReady:
	default:
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, e.cfg.CommandTimeout)
			defer cancel()
		}
		select {
		case <-e.memberReady:
		case <-ctx.Done():
			return &cairnv1.CommandReply{CommandId: env.GetCommandId(), Error: &cairnv1.Error{Code: cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE,
				Message: "the engine's cluster member is still starting; retry with the same command id"}}
		}
	}
	if e.memberErr != nil {
		return &cairnv1.CommandReply{CommandId: env.GetCommandId(), Error: &cairnv1.Error{Code: cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE,
			Message: "the engine's cluster member did not start: " + e.memberErr.Error()}}
	}
	e.memberMu.RLock()
	disp := e.disp
	e.memberMu.RUnlock()
	return e.executeLinked(ctx, disp, env)
}

// engineExecutor is the gateway's view of the engine.
type engineExecutor struct{ e *Engine }

func (x engineExecutor) Execute(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	return x.e.execute(ctx, env)
}

// Query answers one query from the graph's read model. Pass a write's reply
// seq as min_seq to read your writes: the query waits (bounded by ctx, else
// by Config.Projections.QueryTimeout) until the graph's projection shard has
// applied it. It returns the reply and, when the query failed, its error as
// a *aggregate.CommandError (errors.Is with aggregate.ErrNotFound,
// aggregate.ErrInvalidArgument, aggregate.ErrDeadlineExceeded, aggregate.ErrInternal
// for a stopped projection, aggregate.ErrUnavailable).
//
// With Config.Tracing on, a query whose ctx carries a span (the caller's
// own) gets a cairn.query span under it, as a NATS request with a
// traceparent header does; one without is not traced.
func (e *Engine) Query(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	rep := e.query(ctx, req)
	return rep, aggregate.ErrorFromProto(rep.GetError())
}

// Archive moves graph's transactions with stream sequences below before
// into archive objects, signed with the engine's key, and purges them from
// the stream (persistence.Store.Archive), with the engine's own rights: an
// admin's cairn archive asks it (api.ArchiveSubject). One archive of a
// graph runs at a time; another is refused with actors.ErrArchiveBusy.
func (e *Engine) Archive(ctx context.Context, graph string, before uint64) (api.ArchiveReply, error) {
	rep := api.ArchiveReply{Graph: graph, Objects: []api.ArchiveObject{}}
	if _, busy := e.archiving.LoadOrStore(graph, struct{}{}); busy {
		return rep, fmt.Errorf("archive %s: %w", graph, actors.ErrArchiveBusy)
	}
	defer e.archiving.Delete(graph)
	res, err := e.store.Archive(ctx, graph, before, nil)
	e.cfg.Metrics.Archive(err)
	rep.Before, rep.Transactions, rep.Purged = res.Before, res.Transactions, res.Purged
	for _, o := range res.Objects {
		rep.Objects = append(rep.Objects, api.ArchiveObject{Name: o.Name, FromSeq: o.FromSeq, ToSeq: o.ToSeq, FromN: o.FromN, ToN: o.ToN,
			Transactions: o.Transactions, Size: o.Size, Stored: o.Stored})
	}
	return rep, err
}

// Repair mends graph's quarantine when the message at stream sequence seq
// that stopped it was never part of its chain (Projections.Repair); in a
// cluster, at the graph's owner, which holds its read model.
func (e *Engine) Repair(ctx context.Context, graph string, seq uint64) (api.RepairResult, error) {
	if id := e.ownerElsewhere(graph); id != "" {
		if res, ok, err := e.forwardRepair(ctx, id, graph, seq); ok {
			return res, err
		}
	}
	return e.proj.Repair(ctx, graph, seq)
}

// Projections returns the projection shards, for their health
// (Stopped, Failures) and WaitFor.
func (e *Engine) Projections() *actors.Projections { return e.proj }

// Trust returns the keyring the engine checks signatures against (its
// Config's Trust with its Signer's key), nil when it checks none. Readers
// pass it to their chains: persistence.WithTrust(e.Trust()).
func (e *Engine) Trust() *persistence.Keyring { return e.trust }

// Store returns the event store, for reading and verifying graphs.
func (e *Engine) Store() *persistence.Store { return e.store }

// Snapshots returns the snapshot store, nil when Config.DisableSnapshots is
// set.
func (e *Engine) Snapshots() *persistence.Snapshots { return e.snaps }

// Member waits until the engine's cluster member has started (or failed
// to) and returns it: its id, its view of the cluster (Member.Lookup), its
// fencing. Nil when it did not start.
func (e *Engine) Member() *cairncluster.Member {
	<-e.memberReady
	e.memberMu.RLock()
	defer e.memberMu.RUnlock()
	return e.member
}

// Fenced returns why this engine's cluster member fenced itself (an
// error matching cluster.ErrFenced): its membership lease ended (a pause
// or a lost NATS connection longer than the TTL), so it stopped its graph
// grains and refuses commands (UNAVAILABLE) until the engine has joined the
// cluster again with a fresh member (see Rejoins). Nil while it has not,
// and always for a single member.
func (e *Engine) Fenced() error {
	if m := e.startedMember(); m != nil {
		return m.Err()
	}
	return nil
}

// startedMember returns the cluster member once it has started, nil
// before and when it did not.
func (e *Engine) startedMember() *cairncluster.Member {
	select {
	case <-e.memberReady:
		e.memberMu.RLock()
		defer e.memberMu.RUnlock()
		return e.member
	default:
		return nil
	}
}

// Rejoins counts the fresh cluster members this engine started after its
// member fenced itself.
func (e *Engine) Rejoins() uint64 { return e.rejoins.Load() }

// rejoin replaces a member that fenced itself (its membership lease ended:
// the process was paused, NATS was out of reach, the membership bucket's
// leader was being elected) with a fresh one, under a fresh member id, so
// that the engine takes its share of the graphs again without a restart
// (the embedded NATS node, the projections and the queries were never
// stopped). The fenced member has stopped its grains; the new one
// activates them again from their snapshots and the store. Starts that
// fail are retried with a back-off until the engine closes.
func (e *Engine) rejoin(cfg cairncluster.Config) {
	defer close(e.rejoinDone)
	select {
	case <-e.memberReady:
	case <-e.rejoinStop:
		return
	}
	if e.memberErr != nil {
		return
	}
	log := e.cfg.Logger
	for {
		m := e.startedMember()
		select {
		case <-m.Fenced():
		case <-e.rejoinStop:
			return
		}
		log.LogAttrs(context.Background(), slog.LevelWarn, "cluster member fenced; joining again with a fresh member id",
			slog.String("member", m.ID()), slog.String("why", m.Err().Error()))
		// A fenced member's grains append nothing more; a grain waiting
		// for a snapshot write (the store may be out of reach, which is
		// often why the member fenced) is not waited for long: the graphs
		// wait for the new member.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := e.grains.StopAll(ctx, m.System().Root)
		cancel()
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		err = errors.Join(err, m.Close(ctx))
		cancel()
		if err != nil {
			log.LogAttrs(context.Background(), slog.LevelWarn, "fenced member did not stop cleanly", slog.String("err", err.Error()))
		}
		if !e.waitStoreLeader(rejoinStoreWait) {
			return // the engine closes
		}
		nm, err := e.join(cfg)
		if err != nil {
			return // the engine closes
		}
		e.memberMu.Lock()
		e.member, e.disp = nm, actors.NewDispatcher(nm.Cluster(), e.cfg.CommandTimeout, actors.TraceDispatch(e.tracer))
		e.memberMu.Unlock()
		e.rejoins.Add(1)
		log.LogAttrs(context.Background(), slog.LevelInfo, "joined the cluster again", slog.String("member", nm.ID()))
	}
}

// rejoinStoreWait bounds how long a fenced member waits for the event
// stream's leader before it joins again all the same.
const rejoinStoreWait = 30 * time.Second

// waitStoreLeader waits, at most within, until this engine reaches the
// event stream's leader (its info names one): a member that joins again
// while its NATS node still catches up after a pause takes its graphs
// back from the others only to stall them (for about 7 s, measured in
// bench failover). It returns false when the engine closes meanwhile.
func (e *Engine) waitStoreLeader(within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := e.store.Leader(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return true
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-e.rejoinStop:
			return false
		}
	}
}

// join starts a member of the cluster, retrying with a back-off until it
// has joined or the engine closes (then it returns the last error):
// members that start together over a NATS cluster still electing its
// leaders can time out creating the membership bucket, and a fenced
// member's successor may find NATS out of reach for a while.
func (e *Engine) join(cfg cairncluster.Config) (*cairncluster.Member, error) {
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 5*time.Second) {
		m, err := cairncluster.Start(cfg, e.grains.Kind())
		if err == nil {
			return m, nil
		}
		e.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "joining the cluster failed; retrying", slog.String("err", err.Error()), slog.Duration("in", pause))
		select {
		case <-time.After(pause):
		case <-e.rejoinStop:
			return nil, err
		}
	}
}

// Warm returns what the engine decoded at start from local snapshot
// copies (nil without them; see Config.NoLocalSnapshots).
func (e *Engine) Warm() *actors.Warm { return e.warm }

// Grains returns the graph grains hosted by this member, for their
// statistics (snapshots written and loaded, fallbacks).
func (e *Engine) Grains() *actors.GraphGrains { return e.grains }

// openHistory opens the event store the projections read history from
// (time travel, snapshot head checks, archived prefixes) on its own
// connection, connHistory: the same stream and archives as e.store. Its
// look-ups wait for JetStream as opening the store does: a NATS node of
// the cluster killed, or a stream leader election, while the engine starts
// made the start fail here, after the store had opened (bench chaos
// --nats).
func (e *Engine) openHistory(ctx context.Context) (*persistence.Store, error) {
	nc, err := e.connect(connHistory)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream on %s: %w", connHistory, err)
	}
	var st *persistence.Store
	err = e.waitJetStream(ctx, js, func(ctx context.Context) error {
		opts := []persistence.StoreOption{persistence.WithSigning(e.cfg.Signer, e.trust)}
		if e.snaps != nil {
			lctx, cancel := context.WithTimeout(ctx, min(e.cfg.Snapshots.OpTimeout, jetStreamRequest))
			obj, err := js.ObjectStore(lctx, e.cfg.Snapshots.Bucket)
			cancel()
			if err != nil {
				return fmt.Errorf("object store %s on %s: %w", e.cfg.Snapshots.Bucket, connHistory, err)
			}
			opts = append(opts, persistence.WithObjects(obj))
		}
		lctx, cancel := context.WithTimeout(ctx, jetStreamRequest)
		defer cancel()
		var err error
		st, err = persistence.LookupStore(lctx, js, e.cfg.Store, opts...)
		return err
	})
	return st, err
}

// Conn returns the engine's main NATS connection (see Connections for
// all of them).
func (e *Engine) Conn() *nats.Conn { return e.nc }

// ClientURL is the URL other processes use to reach this engine's NATS: the
// embedded server's listen URL, or the external URL.
func (e *Engine) ClientURL() string {
	if e.server != nil {
		return e.server.ClientURL()
	}
	return e.cfg.NATSURL
}

// DataDir returns the embedded server's data directory ("" when external).
func (e *Engine) DataDir() string {
	if e.server != nil {
		return e.server.DataDir()
	}
	return ""
}

// Close shuts down in order: stop taking commands and queries, drain the
// grains (their in-flight appends finish), stop the projections, drain the
// NATS connection, stop the embedded server. It returns when done or when
// ctx ends. Later calls return the first call's result.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() { e.closeErr = e.close(ctx) })
	return e.closeErr
}

func (e *Engine) close(ctx context.Context) error {
	e.closing.Store(true)
	if e.collector != nil {
		e.cfg.Metrics.Registry().Unregister(e.collector)
	}
	var errs []error
	if e.gateway != nil {
		errs = append(errs, e.gateway.Close(ctx))
	}
	e.stopRouting()
	if e.linker != nil {
		e.linker.close()
	}
	if e.rejoinStop != nil {
		// No fresh member after this: the one there is now is closed below.
		close(e.rejoinStop)
		<-e.rejoinDone
		if e.metaApartDone != nil {
			<-e.metaApartDone
		}
	}
	if e.memberReady != nil {
		// Starting cannot be cancelled: wait, so that no member is left
		// running behind a closed engine.
		<-e.memberReady
	}
	started := e.memberReady != nil && e.memberErr == nil
	if started {
		// Activate nothing more here while the grains drain, then leave
		// the cluster at once: the other members take this one's graphs
		// when it has left.
		e.member.Leave()
		errs = append(errs, e.grains.StopAll(ctx, e.member.System().Root))
		errs = append(errs, e.member.Close(ctx))
	}
	if e.proj != nil {
		errs = append(errs, e.proj.Close(ctx))
	}
	if e.projSystem != nil {
		e.projSystem.Shutdown()
	}
	e.cancel()
	e.warm.Close()
	errs = append(errs, e.drainConns(ctx)...)
	if e.server != nil {
		errs = append(errs, e.server.Shutdown(ctx))
	}
	if e.stopTracing != nil {
		errs = append(errs, e.stopTracing(ctx))
	}
	return errors.Join(errs...)
}

// startTracing sets the engine's tracer up from Config.Tracing: the
// embedder's provider, or one that exports to the OTLP endpoint; none
// (nil, tracing off) when neither is set.
func (e *Engine) startTracing(ctx context.Context) error {
	t := e.cfg.Tracing
	if !t.on() {
		return nil
	}
	tp := t.Provider
	if tp == nil {
		var err error
		if tp, e.stopTracing, err = otlp.Setup(ctx, otlp.Config{Endpoint: t.Endpoint, Sample: t.Sample, Instance: t.instance(e.cfg.NATSName)}); err != nil {
			return err
		}
	}
	e.tracer = tracing.Tracer(tp)
	return nil
}

// waitJetStream waits until JetStream answers (its account info: in a
// cluster only the meta leader answers, once one is elected), then runs
// open, which creates or binds the event stream and the buckets, until it
// succeeds, fails for good, or Config.JetStreamWait has passed since the
// first try (each try is bounded by what is left of it). A NATS cluster
// answers "unavailable" until enough of its nodes are up for the replicas
// asked for; a single server is ready at once. More replicas than a
// non-clustered NATS can hold fail at once (persistence.ErrNotClustered).
func (e *Engine) waitJetStream(ctx context.Context, js jetstream.JetStream, open func(context.Context) error) error {
	wait := e.cfg.JetStreamWait
	if wait == 0 {
		wait = defaultJetStreamWait
	}
	p := retry.Policy{Attempts: math.MaxInt, Initial: 100 * time.Millisecond, Max: 2 * time.Second, Budget: wait}
	deadline := time.Now().Add(wait)
	// A request no server answers waits for its whole deadline: probe
	// with short ones.
	probed := false
	err := p.Do(ctx, func(ctx context.Context, try int) (bool, error) {
		var err error
		if !probed {
			pctx, cancel := context.WithTimeout(ctx, min(jetStreamProbe, time.Until(deadline)))
			_, err = js.AccountInfo(pctx)
			cancel()
			probed = err == nil
		}
		if probed {
			tctx, cancel := context.WithDeadline(ctx, deadline)
			err = open(tctx)
			cancel()
		}
		if err != nil && jetStreamStarting(err) && ctx.Err() == nil {
			e.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "waiting for JetStream (a NATS cluster elects a leader, and needs enough nodes up for the replicas)",
				slog.Int("try", try), slog.String("err", err.Error()))
			return true, err
		}
		return false, err
	})
	if err == nil {
		return nil
	}
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return fmt.Errorf("JetStream: %w", err)
	}
	if errors.Is(err, persistence.ErrNotClustered) {
		return fmt.Errorf("%w (%d replicas asked for: use a NATS cluster, or --replicas 1)", err, e.cfg.Store.Replicas)
	}
	var give *retry.GiveUpError
	if errors.As(err, &give) {
		return fmt.Errorf("JetStream did not become ready within %s (is a quorum of the NATS cluster's nodes up, and as many as the replicas asked for?): %w", wait, give.Last)
	}
	return err
}

// jetStreamProbe bounds one probe of waitJetStream's, jetStreamRequest
// one JetStream API request made while opening (startBound).
const (
	jetStreamProbe   = 2 * time.Second
	jetStreamRequest = 3 * time.Second
)

// startBound bounds each create-or-update and each look-up of a stream
// or bucket by jetStreamRequest. A clustered NATS answers only one of
// several equal creates that arrive at once (nodes starting together
// create the same buckets), and a stream's info only once the stream has
// a leader: the others would wait out their whole deadline. Retried, they
// are answered.
type startBound struct{ jetstream.JetStream }

func (c startBound) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, jetStreamRequest)
	defer cancel()
	return c.JetStream.CreateOrUpdateStream(ctx, cfg)
}

func (c startBound) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	ctx, cancel := context.WithTimeout(ctx, jetStreamRequest)
	defer cancel()
	return c.JetStream.CreateOrUpdateObjectStore(ctx, cfg)
}

func (c startBound) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, jetStreamRequest)
	defer cancel()
	return c.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
}

func (c startBound) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, jetStreamRequest)
	defer cancel()
	return c.JetStream.Stream(ctx, name)
}

func (c startBound) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, jetStreamRequest)
	defer cancel()
	return c.JetStream.KeyValue(ctx, bucket)
}

func (c startBound) ObjectStore(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	ctx, cancel := context.WithTimeout(ctx, jetStreamRequest)
	defer cancel()
	return c.JetStream.ObjectStore(ctx, bucket)
}

// jetStreamStarting reports whether err from creating the stream or the
// buckets may pass once a NATS cluster is ready: it is unavailable, timed
// out, or had no responder.
func jetStreamStarting(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, persistence.ErrNotClustered),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return false
	case errors.Is(err, persistence.ErrUnavailable), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders):
		return true
	case errors.Is(err, persistence.ErrNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		// Opening creates what is missing: a stream not found is one that
		// another node's create (timed out here, done there) has not
		// placed yet.
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503
	}
	return false
}

// streamLastSeq returns the last sequence of the event stream, 0 when it
// does not exist yet.
func streamLastSeq(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("event stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("event stream %s: %w", name, err)
	}
	return info.State.LastSeq, nil
}

// signedSetSize bounds the transactions signed by this engine that its
// readers have not yet seen (persistence.SignedSet): 64K digests, about
// 6 MB; a projection further behind verifies the rest in full.
const signedSetSize = 1 << 16

// archiveIfObjects is Archive when the engine keeps an object store (the
// archives' home), nil otherwise.
func (e *Engine) archiveIfObjects() func(context.Context, string, uint64) (api.ArchiveReply, error) {
	if e.snaps == nil {
		return nil
	}
	return e.Archive
}
