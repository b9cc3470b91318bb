package persistence_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/tracing"
	"github.com/cairn-graph/cairn/persistence"
)

// A traced append (a span context in its ctx) stores the span's
// traceparent with the transaction; Read and Follow hand it back on
// Record.Header. An untraced one stores no traceparent.
func TestStoreAppendCarriesTraceParent(t *testing.T) {
	ctx := testCtx(t)
	st := natstest.Start(t).Store()
	txs, _ := mustBuildChain(t, "g")
	parent, _ := tracing.NewParent()
	sc := tracing.ParseParent(parent)
	mustAppend(t, ctx, st, "g", 0, txs[0])
	mustAppend(t, trace.ContextWithRemoteSpanContext(ctx, sc), st, "g", 1, txs[1])

	want := []string{"", parent}
	var got []string
	if _, err := st.Read(ctx, "g", 1, func(r persistence.Record) error {
		got = append(got, r.Header.Get(tracing.ParentHeader))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Read's traceparents %q, want %q", got, want)
	}
	got = nil
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = st.Follow(fctx, 1, func(f persistence.Followed) error {
		got = append(got, f.Header.Get(tracing.ParentHeader))
		if len(got) == 2 {
			cancel()
		}
		return nil
	})
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Follow's traceparents %q, want %q", got, want)
	}
}
