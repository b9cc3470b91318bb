// Package otlp sets up the OpenTelemetry SDK that exports Cairn's spans
// over OTLP/HTTP (protobuf) to a collector: Setup returns the tracer
// provider and the function that flushes and stops it.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config says where spans go and how many are kept.
type Config struct {
	// Endpoint is the collector's OTLP/HTTP base URL
	// (http://127.0.0.1:4318): spans are posted to Endpoint/v1/traces,
	// or to Endpoint itself when it has a path of its own (as
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT does). Required.
	Endpoint string
	// Sample is the share of new traces kept, 0 to 1. Parent-based: a
	// request whose traceparent is sampled is always traced, one whose
	// traceparent is not is never.
	Sample float64
	// Service is the resource's service.name. Default "cairn".
	Service string
	// Instance, when set, is the resource's service.instance.id.
	Instance string
}

// Validate returns every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	if _, err := parseEndpoint(c.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if !(c.Sample >= 0 && c.Sample <= 1) {
		errs = append(errs, fmt.Errorf("trace sample ratio %v is not between 0 and 1", c.Sample))
	}
	return errors.Join(errs...)
}

type endpoint struct {
	hostPort, path string
	insecure       bool
}

func parseEndpoint(s string) (endpoint, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return endpoint{}, fmt.Errorf("OTLP endpoint %q is not an http:// or https:// URL with a host", s)
	}
	e := endpoint{hostPort: u.Host, path: u.Path, insecure: u.Scheme == "http"}
	if e.path == "" || e.path == "/" {
		e.path = "/v1/traces"
	}
	return e, nil
}

// Setup returns a tracer provider that batches spans and exports them to
// cfg.Endpoint, and shutdown, which exports what is left (within its ctx)
// and stops it. Creating the exporter connects to nothing: a collector
// that is down costs dropped spans, logged by otel's handler, never a
// failed command.
func Setup(ctx context.Context, cfg Config) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	e, _ := parseEndpoint(cfg.Endpoint)
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(e.hostPort), otlptracehttp.WithURLPath(e.path)}
	if e.insecure {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	if cfg.Service == "" {
		cfg.Service = "cairn"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.Service)}
	if cfg.Instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.Instance))
	}
	p := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Sample))),
	)
	return p, p.Shutdown, nil
}
