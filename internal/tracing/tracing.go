package tracing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/textproto"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// ParentHeader is the W3C trace context header, in lower case as the
// W3C recommends (NATS headers keep the case they are given).
const ParentHeader = "traceparent"

// Name is the instrumentation scope of Cairn's spans.
const Name = "github.com/cairn-graph/cairn"

// Tracer returns tp's Cairn tracer, nil (tracing off) when tp is nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(Name)
}

// carrier is a NATS header (nats.Header and micro.Headers are both
// map[string][]string) as a propagation.TextMapCarrier. Unlike
// propagation.HeaderCarrier it does not canonicalise the key: it writes
// "traceparent" and reads it in either case.
type carrier map[string][]string

func (c carrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	if v := c[textproto.CanonicalMIMEHeaderKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c carrier) Set(key, value string) { c[key] = []string{value} }

func (c carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Extract returns ctx with the remote span context that the NATS header h
// carries (traceparent, tracestate), or ctx as it is when h carries none.
func Extract(ctx context.Context, h map[string][]string) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, carrier(h))
}

// Inject writes the span context of ctx into the NATS header h; nothing
// when ctx carries no valid span context. h must not be nil.
func Inject(ctx context.Context, h map[string][]string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagation.TraceContext{}.Inject(ctx, carrier(h))
}

// FormatParent returns sc as a W3C traceparent, "" when sc is not valid.
func FormatParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	h := carrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), h)
	return h.Get(ParentHeader)
}

// ParseParent returns the remote span context of a W3C traceparent; an
// invalid one (check IsValid) when s is empty or malformed.
func ParseParent(s string) trace.SpanContext {
	if s == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), carrier{ParentHeader: {s}})
	return trace.SpanContextFromContext(ctx)
}

// NewParent returns a fresh, sampled W3C traceparent, and its trace id as
// 32 hex digits: a client that sends it finds the engine's spans of its
// request under that id.
func NewParent() (traceparent, traceID string) {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	traceID = hex.EncodeToString(b[:16])
	return "00-" + traceID + "-" + hex.EncodeToString(b[16:]) + "-01", traceID
}

// GraphAttr names a span's graph.
func GraphAttr(graph string) attribute.KeyValue { return attribute.String("cairn.graph", graph) }

// CommandAttr names a span's command id.
func CommandAttr(id string) attribute.KeyValue { return attribute.String("cairn.command_id", id) }

// End ends sp with the outcome of a reply whose error is e: its code as
// cairn.error_code and an error status.
func End(sp trace.Span, e *cairnv1.Error) {
	if e != nil {
		sp.SetAttributes(attribute.String("cairn.error_code", e.GetCode().String()))
		sp.SetStatus(codes.Error, e.GetMessage())
	}
	sp.End()
}

// The spans of a command's trace, in the order it makes them, and of a
// query's.
const (
	// SpanCommand is the engine's server span of a command, whether it
	// came through the gateway or Engine.Execute: the child of the
	// request's traceparent header, or of the embedder's span in ctx,
	// when there is one.
	SpanCommand = "cairn.command"
	// SpanDispatch is the dispatcher's: finding the graph's grain and
	// waiting for its answer, here or on another member.
	SpanDispatch = "cairn.dispatch"
	// SpanGrain is the graph grain's, from taking the envelope until
	// answering it: queueing behind an append, deciding, the append.
	SpanGrain = "cairn.grain"
	// SpanAppend is the transaction's append to the event store; a
	// group commit's is the child of its first traced command's grain
	// span and links to each traced command's. The stored message
	// carries its traceparent.
	SpanAppend = "cairn.append"
	// SpanApply is a projection shard applying a transaction that
	// carries a traceparent, as that append span's child.
	SpanApply = "cairn.apply"
	// SpanQuery is the engine's server span of a query that comes
	// traced: a request with a traceparent header, or an Engine.Query
	// whose ctx carries the embedder's span.
	SpanQuery = "cairn.query"
	// SpanFirstRead is the shard answering the first query on a graph
	// after a traced transaction was applied to it: the child of the
	// query's span, linked to the apply span, or, for an untraced
	// query, the apply span's child.
	SpanFirstRead = "cairn.query.first_read"
)
