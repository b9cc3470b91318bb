package actors

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-graph/cairn/internal/tracing"
	"github.com/cairn-graph/cairn/persistence"
)

// Tracing (internal/tracing): each part holds a trace.Tracer that is nil
// when tracing is off, and starts spans only when it is not, so that an
// untraced command allocates nothing more and sends no header.

// applyTraced applies f inside the span of its application when its
// message carries a traceparent (the append span's), and keeps that span
// for the first query answered on the graph after it.
func (a *shardActor) applyTraced(f persistence.Followed) {
	ctx := tracing.Extract(context.Background(), f.Header)
	if !trace.SpanContextFromContext(ctx).IsValid() || a.foreign(f.Graph) {
		a.apply(f)
		return
	}
	_, sp := a.p.cfg.Tracer.Start(ctx, tracing.SpanApply, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(tracing.GraphAttr(f.Graph), attribute.Int64("cairn.seq", int64(f.Seq)), attribute.Int("cairn.shard", a.index)))
	a.apply(f)
	if e := a.graphs[f.Graph]; e != nil && e.stopped != nil && e.stopped.Seq == f.Seq {
		sp.SetStatus(codes.Error, e.stopped.Error())
	}
	sp.End()
	if a.firstRead == nil {
		a.firstRead = make(map[string]trace.SpanContext)
	}
	a.firstRead[f.Graph] = sp.SpanContext()
}

// foreign reports whether graph is another cluster member's, which this
// partitioned shard skips (apply): its owner traces the application.
func (a *shardActor) foreign(graph string) bool {
	return a.p.part != nil && a.graphs[graph] == nil && !a.p.part.Owns(graph)
}

// answerTraced answers m as answer does, inside a span when it is the
// first query on its graph since a traced transaction was applied to it:
// the child of the query's own span, linked to the apply span, or the
// apply span's child when the query is not traced.
func (a *shardActor) answerTraced(m *runQuery) {
	graph := m.req.GetGraphId()
	applied, ok := a.firstRead[graph]
	if !ok {
		m.reply <- a.answer(m.req)
		return
	}
	delete(a.firstRead, graph)
	parent, opts := applied, []trace.SpanStartOption{trace.WithAttributes(tracing.GraphAttr(graph))}
	if m.parent != nil && m.parent.IsValid() {
		parent = *m.parent
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: applied}))
	}
	_, sp := a.p.cfg.Tracer.Start(trace.ContextWithSpanContext(context.Background(), parent), tracing.SpanFirstRead, opts...)
	rep := a.answer(m.req)
	sp.SetAttributes(attribute.Int64("cairn.as_of_seq", int64(rep.GetAsOfSeq())))
	tracing.End(sp, rep.GetError())
	m.reply <- rep
}
