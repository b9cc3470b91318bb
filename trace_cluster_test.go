package cairn_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/api"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/tracing"
	"github.com/cairn-graph/cairn/internal/tracing/otlp"
	"github.com/cairn-graph/cairn/internal/tracing/otlptest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TestTraceAcrossMembers: two engines in one cluster over one NATS, both
// exporting to one OTLP receiver, each as a service.instance.id of its
// own: "receiver", in this process, with the gateway, and "owner", in a
// child (no gateway), which owns the graph. A command taken by the
// receiver's gateway (and one by its Engine.Execute, under the caller's
// span) is dispatched to the owner's grain: the owner's grain, append,
// apply and first-read spans join the receiver's trace, under its
// dispatch span (CommandEnvelope.trace_parent, then the stored message's
// traceparent). A query with a traceparent, taken by the receiver and
// routed over NATS to the owner, keeps its trace there.
func TestTraceAcrossMembers(t *testing.T) {
	recv := otlptest.Start(t)
	srv := natstest.Start(t)
	url := srv.ClientURL()

	ctx := t.Context()
	tp, stopTracing, err := otlp.Setup(ctx, otlp.Config{Endpoint: recv.URL, Sample: 1, Instance: "receiver"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stopTracing(context.Background()) }) // after the engine's close
	cfg := cairn.DefaultConfig("")
	cfg.NATSURL = url
	cfg.Cluster.Name, cfg.Cluster.Membership = "engines", cairncluster.MembershipNATSKV
	cfg.Tracing.Provider = tp
	eng, err := cairn.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeEngine(t, eng) })
	owner := startEngineProc(t, url+" "+recv.URL+" owner")

	m := eng.Member()
	deadline := time.Now().Add(15 * time.Second)
	for len(m.Lookup().Members()) != 2 || owner.call("members").N != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the members do not see each other: %v", m.Lookup().Members())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A graph the child owns, in both members' view.
	graph := ""
	for i := 0; i < 100 && graph == ""; i++ {
		g := fmt.Sprintf("tg%02d", i)
		if id, _, ok := m.Lookup().Owner(g, actors.GraphKind); ok && id == owner.id && owner.call("owns %s", g).N == 1 {
			graph = g
		}
	}
	if graph == "" {
		t.Fatalf("none of 100 graphs is owned by member %s", owner.id)
	}

	nc := eng.Conn()
	// 1. Through the receiver's gateway, with a traceparent; then an
	// untraced query, routed to the owner: its first read after the
	// command joins the command's trace.
	parent1, trace1 := tracing.NewParent()
	rep1 := &cairnv1.CommandReply{}
	request(t, nc, api.CommandSubjectFor(graph), nats.Header{tracing.ParentHeader: {parent1}},
		env(graph, "c1", cmdCreate(), cmdAdd("n1", nil)), rep1)
	if rep1.GetError() != nil || rep1.GetSeq() == 0 {
		t.Fatalf("command reply %v", rep1)
	}
	if q := (&cairnv1.QueryReply{}); true {
		request(t, nc, api.QuerySubjectFor(graph), nil, getNode(graph, "n1", rep1.GetSeq()), q)
		if q.GetError() != nil {
			t.Fatalf("untraced query: %v", q.GetError())
		}
	}
	// 2. Through Engine.Execute, under the caller's span; then a query
	// with a traceparent of its own, routed to the owner.
	parent2, trace2 := tracing.NewParent()
	rep2, err := eng.Execute(trace.ContextWithRemoteSpanContext(ctx, tracing.ParseParent(parent2)), env(graph, "c2", cmdAdd("n2", nil)))
	if err != nil {
		t.Fatalf("Engine.Execute: %v", err)
	}
	parent3, trace3 := tracing.NewParent()
	if q := (&cairnv1.QueryReply{}); true {
		request(t, nc, api.QuerySubjectFor(graph), nats.Header{tracing.ParentHeader: {parent3}}, getNode(graph, "n2", rep2.GetSeq()), q)
		if q.GetError() != nil {
			t.Fatalf("traced query: %v", q.GetError())
		}
	}

	// Both flush their spans as they close.
	if r := owner.call("close"); r.Error != "" {
		t.Fatalf("close the owner: %s", r.Error)
	}
	owner.closed = true
	closeEngine(t, eng)
	if err := stopTracing(ctx); err != nil {
		t.Fatal(err)
	}

	spans := recv.Spans()
	one := func(traceID, name string) otlptest.Span {
		t.Helper()
		var got []otlptest.Span
		for _, s := range spans {
			if s.TraceID == traceID && s.Name == name {
				got = append(got, s)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%d %s spans in trace %s, want 1; got %v", len(got), name, traceID, spans)
		}
		return got[0]
	}
	type want struct {
		span             otlptest.Span
		parent, instance string
	}
	check := func(traceID string, ws ...want) {
		t.Helper()
		for _, w := range ws {
			if w.span.Parent != w.parent || w.span.Instance != w.instance {
				t.Errorf("trace %s: %s has parent %s on %q, want parent %s on %q", traceID, w.span.Name, w.span.Parent, w.span.Instance, w.parent, w.instance)
			}
		}
	}
	spanOf := func(traceparent string) string { return tracing.ParseParent(traceparent).SpanID().String() }

	cmd1, disp1, grain1 := one(trace1, tracing.SpanCommand), one(trace1, tracing.SpanDispatch), one(trace1, tracing.SpanGrain)
	app1, apply1, first1 := one(trace1, tracing.SpanAppend), one(trace1, tracing.SpanApply), one(trace1, tracing.SpanFirstRead)
	check(trace1, want{cmd1, spanOf(parent1), "receiver"}, want{disp1, cmd1.SpanID, "receiver"},
		want{grain1, disp1.SpanID, "owner"}, want{app1, grain1.SpanID, "owner"},
		want{apply1, app1.SpanID, "owner"}, want{first1, apply1.SpanID, "owner"})
	if disp1.Attrs["cairn.owner"] == "" {
		t.Errorf("dispatch span %v names no owner: the command was not sent to another member", disp1.Attrs)
	}

	cmd2, disp2, grain2 := one(trace2, tracing.SpanCommand), one(trace2, tracing.SpanDispatch), one(trace2, tracing.SpanGrain)
	app2, apply2 := one(trace2, tracing.SpanAppend), one(trace2, tracing.SpanApply)
	check(trace2, want{cmd2, spanOf(parent2), "receiver"}, want{disp2, cmd2.SpanID, "receiver"},
		want{grain2, disp2.SpanID, "owner"}, want{app2, grain2.SpanID, "owner"}, want{apply2, app2.SpanID, "owner"})

	query3, first3 := one(trace3, tracing.SpanQuery), one(trace3, tracing.SpanFirstRead)
	check(trace3, want{query3, spanOf(parent3), "receiver"}, want{first3, query3.SpanID, "owner"})
	if l := trace2 + "/" + apply2.SpanID; !slices.Contains(first3.Links, l) {
		t.Errorf("the routed query's first read links %v, want the owner's apply %s", first3.Links, l)
	}
}
