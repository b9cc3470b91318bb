package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	cairncluster "github.com/cairn-graph/cairn/cluster"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/deadline"
	"github.com/cairn-graph/cairn/internal/tracing"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Dispatcher sends command envelopes to their graph's grain wherever the
// cluster placed it.
type Dispatcher struct {
	cluster *cluster.Cluster
	timeout time.Duration
	tracer  trace.Tracer // nil: tracing off
	wheel   *deadline.Wheel
}

// DispatcherOption configures a Dispatcher.
type DispatcherOption func(*Dispatcher)

// TraceDispatch makes the dispatcher trace each command with t (a span
// under the caller's, whose context goes on to the grain, on this member
// or another). Default: no spans.
func TraceDispatch(t trace.Tracer) DispatcherOption {
	return func(d *Dispatcher) { d.tracer = t }
}

// NewDispatcher returns a dispatcher over c; timeout bounds a request when
// the caller's ctx has no earlier deadline.
func NewDispatcher(c *cluster.Cluster, timeout time.Duration, opts ...DispatcherOption) *Dispatcher {
	d := &Dispatcher{cluster: c, timeout: timeout, wheel: deadline.New(dispatchTick)}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Route is where Execute sent a command: Here is this member's remote
// address, Owner the address of the grain's member that was asked last.
// They differ for a command forwarded to another member.
type Route struct{ Here, Owner string }

type routeKey struct{}

// WithRoute returns a context under which Execute records into r where it
// sent the command; r is written by Execute's goroutine before it
// returns, and read after.
func WithRoute(ctx context.Context, r *Route) context.Context {
	return context.WithValue(ctx, routeKey{}, r)
}

// Execute validates env, sends it to its graph's grain and returns the reply.
// Failures are in the reply's error: INVALID_ARGUMENT for a malformed
// envelope, UNAVAILABLE when the grain did not answer in time (retry with the
// same command id: it is never applied twice).
//
// A grain on this member is sent a message carrying a reply channel; a grain
// on another member gets the protobuf envelope in a request to its PID. The
// PID comes from the cluster's PID cache, else from the identity lookup
// (within ctx with package cluster's Lookup); a PID that turns out gone (a
// dead letter, or its member left the cluster) is dropped and looked up
// again.
func (d *Dispatcher) Execute(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	if d.tracer == nil {
		return d.execute(ctx, env)
	}
	ctx, sp := d.tracer.Start(ctx, tracing.SpanDispatch, trace.WithAttributes(tracing.GraphAttr(env.GetGraphId()), tracing.CommandAttr(env.GetCommandId())))
	rep := d.execute(ctx, env)
	tracing.End(sp, rep.GetError())
	return rep
}

func (d *Dispatcher) execute(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	if err := aggregate.ValidateEnvelope(env); err != nil {
		return aggregate.ErrorReply(env, aggregate.AsCommandError(err))
	}
	if rep := d.local(ctx, env); rep != nil {
		return rep
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	graph := env.GetGraphId()
	sys := d.cluster.ActorSystem
	why := "no cluster member could activate it"
	for attempt := 0; attempt < 3; attempt++ {
		if ctx.Err() != nil {
			break
		}
		pid, _ := d.cluster.PidCache.Get(graph, GraphKind)
		if pid == nil {
			var err error
			if pid, err = d.lookup(ctx, graph); pid == nil {
				if err != nil {
					why = err.Error()
				}
				continue
			}
			d.cluster.PidCache.Set(graph, GraphKind, pid)
		}
		if r, ok := ctx.Value(routeKey{}).(*Route); ok {
			r.Here, r.Owner = sys.ProcessRegistry.Address, pid.Address
		}
		if pid.Address != sys.ProcessRegistry.Address {
			rep, gone := d.remote(ctx, pid, env)
			if !gone {
				return rep
			}
			// The grain is gone (passivated, moved, or its member
			// died): look the graph up again.
			d.cluster.PidCache.RemoveByValue(graph, GraphKind, pid)
			continue
		}
		if _, alive := sys.ProcessRegistry.Get(pid); !alive {
			// A passivated grain's PID: look the graph up again.
			d.cluster.PidCache.Remove(graph, GraphKind)
			continue
		}
		cmd := d.send(ctx, sys, pid, env)
		select {
		case <-cmd.done:
			return cmd.rep
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		why = "no answer in time (" + context.Cause(ctx).Error() + ")"
	}
	return aggregate.ErrorReply(env, unavailable("graph %s: %s; retry with the same command id", graph, why))
}

// dispatchTick is how late a command's time-out may fire when the caller's
// ctx has no deadline.
const dispatchTick = 10 * time.Millisecond

// local is Execute's common case: a grain on this member whose PID is
// cached and alive is sent env and waited for until ctx ends or, when ctx
// has no deadline, for the dispatcher's timeout: a coarse one that the
// commands ending in the same tick share (deadline.Wheel), with no
// context or timer per command. Nil when the grain is not known to be
// here (Execute then looks it up), or ctx has ended already.
func (d *Dispatcher) local(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	graph := env.GetGraphId()
	sys := d.cluster.ActorSystem
	pid, _ := d.cluster.PidCache.Get(graph, GraphKind)
	if pid == nil || pid.Address != sys.ProcessRegistry.Address || ctx.Err() != nil {
		return nil
	}
	if _, alive := sys.ProcessRegistry.Get(pid); !alive {
		return nil
	}
	var expired <-chan struct{}
	if _, ok := ctx.Deadline(); !ok {
		expired = d.wheel.After(d.timeout)
	}
	if r, ok := ctx.Value(routeKey{}).(*Route); ok {
		r.Here, r.Owner = sys.ProcessRegistry.Address, pid.Address
	}
	cmd := d.send(ctx, sys, pid, env)
	why := "context deadline exceeded"
	select {
	case <-cmd.done:
		return cmd.rep
	case <-ctx.Done():
		why = context.Cause(ctx).Error()
	case <-expired:
	}
	return aggregate.ErrorReply(env, unavailable("graph %s: no answer in time (%s); retry with the same command id", graph, why))
}

// lookup returns the PID of graph's grain, activating it where the
// cluster places it, within ctx when the cluster's identity lookup takes
// one.
func (d *Dispatcher) lookup(ctx context.Context, graph string) (*actor.PID, error) {
	if l, ok := d.cluster.IdentityLookup.(*cairncluster.Lookup); ok {
		return l.GetContext(ctx, graph, GraphKind)
	}
	return d.cluster.Get(graph, GraphKind), nil
}

// remote sends env to the grain pid on another member and returns its
// reply; gone reports that the grain is not there any more (a dead
// letter, or its member left the cluster while the request waited), so
// that the caller looks it up again: a retry with the same command id is
// never applied twice.
func (d *Dispatcher) remote(ctx context.Context, pid *actor.PID, env *cairnv1.CommandEnvelope) (rep *cairnv1.CommandReply, gone bool) {
	dl, _ := ctx.Deadline()
	msg := env
	if d.tracer != nil {
		// The owner's grain span is the child of this one.
		if tp := tracing.FormatParent(trace.SpanContextFromContext(ctx)); tp != "" {
			msg = proto.CloneOf(env)
			msg.TraceParent = tp
		}
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("cairn.owner", pid.Address))
	}
	f := d.cluster.ActorSystem.Root.RequestFuture(pid, msg, time.Until(dl))
	var res any
	var err error
	if l, ok := d.cluster.IdentityLookup.(*cairncluster.Lookup); ok {
		res, err = l.Await(ctx, f, pid.Address)
	} else {
		res, err = f.Result()
	}
	if errors.Is(err, actor.ErrDeadLetter) || errors.Is(err, cairncluster.ErrMemberLeft) {
		return nil, true
	}
	if err != nil {
		return aggregate.ErrorReply(env, unavailable("graph %s did not answer: %v", env.GetGraphId(), err)), false
	}
	rep, ok := res.(*cairnv1.CommandReply)
	if !ok {
		return aggregate.ErrorReply(env, &aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Message: "grain answered with an unexpected message"}), false
	}
	return rep, false
}

// send hands env to the local grain pid, traced when the dispatcher
// traces, and returns the command, answered on its channel: a fresh one
// per command (a pooled one could carry a late answer to the next
// command).
func (d *Dispatcher) send(ctx context.Context, sys *actor.ActorSystem, pid *actor.PID, env *cairnv1.CommandEnvelope) *localCommand {
	cmd := &localCommand{env: env, done: make(chan struct{}, 1)}
	if d.tracer != nil {
		sc := trace.SpanContextFromContext(ctx)
		cmd.parent = &sc
	}
	sys.Root.Send(pid, cmd)
	return cmd
}
