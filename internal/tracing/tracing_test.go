package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestParentRoundTrip(t *testing.T) {
	tp, id := NewParent()
	sc := ParseParent(tp)
	if !sc.IsValid() || !sc.IsSampled() || !sc.IsRemote() || sc.TraceID().String() != id {
		t.Fatalf("ParseParent(%q) = %+v, want a sampled remote context of trace %s", tp, sc, id)
	}
	if got := FormatParent(sc); got != tp {
		t.Fatalf("FormatParent = %q, want %q", got, tp)
	}
	for _, bad := range []string{"", "00-zz", "00-00000000000000000000000000000000-0000000000000001-01"} {
		if ParseParent(bad).IsValid() {
			t.Errorf("ParseParent(%q) is valid", bad)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	tp, id := NewParent()
	for _, key := range []string{"traceparent", "Traceparent"} {
		ctx := Extract(context.Background(), map[string][]string{key: {tp}})
		if got := trace.SpanContextFromContext(ctx).TraceID().String(); got != id {
			t.Fatalf("Extract with %s: trace %s, want %s", key, got, id)
		}
		h := map[string][]string{}
		Inject(ctx, h)
		if got := h[ParentHeader]; len(got) != 1 || got[0] != tp {
			t.Fatalf("Inject: %v, want %s: [%s]", h, ParentHeader, tp)
		}
	}
	h := map[string][]string{}
	Inject(context.Background(), h)
	if len(h) != 0 {
		t.Fatalf("Inject without a span context wrote %v", h)
	}
	if ctx := context.Background(); Extract(ctx, nil) != ctx {
		t.Fatal("Extract of no header made a new context")
	}
}
