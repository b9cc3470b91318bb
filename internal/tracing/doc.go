// Package tracing carries OpenTelemetry trace context through Cairn: W3C
// traceparent headers on NATS messages, the traceparent string a command
// envelope carries to another member, and the tracer the engine's parts
// share.
//
// It is light on purpose (the otel API, no SDK): clients such as cairn's
// CLI import it to send a traceparent; the SDK and the OTLP exporter are
// in tracing/otlp, which only the engine imports.
//
// Tracing off is a nil trace.Tracer: every part guards its span work with
// `if tracer != nil`, so a command adds no allocation and no header then.
//
//	ctx = tracing.Extract(ctx, req.Headers())           // a server span's parent
//	ctx, span := tracer.Start(ctx, "cairn.command", trace.WithSpanKind(trace.SpanKindServer))
//	defer span.End()
//	tracing.Inject(ctx, msg.Header)                      // the next hop's traceparent
package tracing
