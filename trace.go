package cairn

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-graph/cairn/internal/tracing"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The engine's server spans (internal/tracing). A request's span starts
// where every request of its kind passes once, whether it came over NATS
// (the gateway hands the request's traceparent header on in ctx) or from
// an embedder (Engine.Execute, Engine.Query, whose ctx may carry a span
// of the embedder's): the trace is the same tree either way.

// executeTraced runs env inside its cairn.command span: the child of the
// span context ctx carries (the request's traceparent, an embedder's
// span), else a new trace's root.
func (e *Engine) executeTraced(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	ctx, sp := e.tracer.Start(ctx, tracing.SpanCommand, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(tracing.GraphAttr(env.GetGraphId()), tracing.CommandAttr(env.GetCommandId())))
	rep := e.measure(ctx, env)
	tracing.End(sp, rep.GetError())
	return rep
}

// queryTraced answers req inside its cairn.query span, the child of the
// span context ctx carries: only a query that comes traced gets one, as
// queries are many and an untraced one costs nothing.
func (e *Engine) queryTraced(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	ctx, sp := e.tracer.Start(ctx, tracing.SpanQuery, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(tracing.GraphAttr(req.GetGraphId())))
	rep := e.measureQuery(ctx, req)
	tracing.End(sp, rep.GetError())
	return rep
}
