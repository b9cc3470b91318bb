package cairn_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/tracing"
	"github.com/cairn-graph/cairn/internal/tracing/otlptest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// request sends msg through the engine's "cairn" service over NATS, with
// header, and decodes the reply into rep.
func request(t *testing.T, nc *nats.Conn, subject string, header nats.Header, req, rep proto.Message) {
	t.Helper()
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msg, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: data, Header: header})
	if err != nil {
		t.Fatalf("request on %s: %v", subject, err)
	}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		t.Fatal(err)
	}
}

// TestTraceCommandToQuery sends a command with a traceparent through the
// NATS gateway, then two queries, and checks the spans the engine exported:
// one trace from the client's span through the gateway, dispatcher,
// grain, append, projection apply, to the first query after it.
func TestTraceCommandToQuery(t *testing.T) {
	recv := otlptest.Start(t)
	eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) { cfg.Tracing.Endpoint = recv.URL })
	nc := eng.Conn()

	parent, traceID := tracing.NewParent()
	client := tracing.ParseParent(parent).SpanID().String()
	rep := &cairnv1.CommandReply{}
	request(t, nc, api.CommandSubjectFor("tg"), nats.Header{tracing.ParentHeader: {parent}},
		env("tg", "c1", cmdCreate(), cmdAdd("n1", nil)), rep)
	if rep.GetError() != nil || rep.GetSeq() == 0 {
		t.Fatalf("command reply %v", rep)
	}
	q := &cairnv1.QueryRequest{GraphId: "tg", MinSeq: rep.GetSeq(), Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "n1"}}}
	for i, h := range []nats.Header{nil, nil} {
		qrep := &cairnv1.QueryReply{}
		request(t, nc, api.QuerySubjectFor("tg"), h, q, qrep)
		if qrep.GetError() != nil {
			t.Fatalf("query %d: %v", i, qrep.GetError())
		}
	}
	// A later query with a traceparent of its own: its server span, and
	// no first read (the first query had it).
	parent2, trace2 := tracing.NewParent()
	request(t, nc, api.QuerySubjectFor("tg"), nats.Header{tracing.ParentHeader: {parent2}}, q, &cairnv1.QueryReply{})

	closeEngine(t, eng) // flushes the spans
	byName := map[string][]otlptest.Span{}
	for _, s := range recv.Spans() {
		byName[s.Name] = append(byName[s.Name], s)
	}
	one := func(name string) otlptest.Span {
		t.Helper()
		if n := len(byName[name]); n != 1 {
			t.Fatalf("%d %s spans, want 1; got %v", n, name, recv.Spans())
		}
		return byName[name][0]
	}
	cmd, disp, grain := one(tracing.SpanCommand), one(tracing.SpanDispatch), one(tracing.SpanGrain)
	app, apply, first := one(tracing.SpanAppend), one(tracing.SpanApply), one(tracing.SpanFirstRead)
	for _, c := range []struct {
		span   otlptest.Span
		parent string
	}{
		{cmd, client}, {disp, cmd.SpanID}, {grain, disp.SpanID}, {app, grain.SpanID}, {apply, app.SpanID}, {first, apply.SpanID},
	} {
		if c.span.TraceID != traceID || c.span.Parent != c.parent {
			t.Errorf("%s: trace %s parent %s, want trace %s parent %s", c.span.Name, c.span.TraceID, c.span.Parent, traceID, c.parent)
		}
	}
	if want := traceID + "/" + grain.SpanID; !slices.Contains(app.Links, want) {
		t.Errorf("append links %v, want the command's grain span %s", app.Links, want)
	}
	if cmd.Attrs["cairn.graph"] != "tg" || cmd.Attrs["cairn.command_id"] != "c1" {
		t.Errorf("command span attributes %v", cmd.Attrs)
	}
	if qs := one(tracing.SpanQuery); qs.TraceID != trace2 || qs.Parent != tracing.ParseParent(parent2).SpanID().String() {
		t.Errorf("traced query's span: trace %s parent %s, want trace %s", qs.TraceID, qs.Parent, trace2)
	}
}

// TestTraceOff: without Config.Tracing the engine exports nothing, even
// with the OpenTelemetry environment set (only cairn serve reads it), and
// stores no traceparent with a transaction whose command came with one.
func TestTraceOff(t *testing.T) {
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", recv.URL+"/v1/traces")
	eng := openEngineWith(t, t.TempDir(), func(*cairn.Config) {})
	parent, _ := tracing.NewParent()
	rep := &cairnv1.CommandReply{}
	request(t, eng.Conn(), api.CommandSubjectFor("tg"), nats.Header{tracing.ParentHeader: {parent}}, env("tg", "c1", cmdCreate()), rep)
	if rep.GetError() != nil {
		t.Fatalf("command reply %v", rep)
	}
	ctx := t.Context()
	if _, err := eng.Query(ctx, &cairnv1.QueryRequest{GraphId: "tg", MinSeq: rep.GetSeq(), Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}}); err != nil {
		t.Fatal(err)
	}
	var headers []nats.Header
	if _, err := eng.Store().Read(ctx, "tg", 1, func(r persistence.Record) error {
		headers = append(headers, r.Header)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(headers) != 1 || headers[0].Get(tracing.ParentHeader) != "" || headers[0].Get("Traceparent") != "" {
		t.Fatalf("stored headers %v, want one transaction without a traceparent", headers)
	}
	closeEngine(t, eng)
	if n := recv.Requests(); n != 0 {
		t.Fatalf("%d export requests with tracing off: %v", n, recv.Spans())
	}
}

// TestTraceEmbedder: an embedder's Engine.Execute and Engine.Query get the
// spans a NATS client's requests get: a command without a span in its
// ctx is a new trace's root cairn.command; a query under the caller's
// span gets a cairn.query under it (and the first read after the
// command under that); a query with no span in ctx gets none.
func TestTraceEmbedder(t *testing.T) {
	recv := otlptest.Start(t)
	eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) { cfg.Tracing.Endpoint = recv.URL })
	ctx := t.Context()
	rep, err := eng.Execute(ctx, env("tg", "c1", cmdCreate(), cmdAdd("n1", nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Query(ctx, getNode("tg", "n1", rep.GetSeq())); err != nil {
		t.Fatal(err)
	}
	caller, traceID := tracing.NewParent()
	rep, err = eng.Execute(ctx, env("tg", "c2", cmdAdd("n2", nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Query(trace.ContextWithRemoteSpanContext(ctx, tracing.ParseParent(caller)), getNode("tg", "n2", rep.GetSeq())); err != nil {
		t.Fatal(err)
	}
	closeEngine(t, eng)

	byName := map[string][]otlptest.Span{}
	host, _ := os.Hostname()
	for _, s := range recv.Spans() {
		byName[s.Name] = append(byName[s.Name], s)
		// No NATSName, no TracingConfig.Instance: host-pid.
		if want := fmt.Sprintf("%s-%d", host, os.Getpid()); s.Instance != want {
			t.Errorf("%s: service.instance.id %q, want %q", s.Name, s.Instance, want)
		}
	}
	if n := len(byName[tracing.SpanCommand]); n != 2 {
		t.Fatalf("%d command spans, want one per Execute; got %v", n, recv.Spans())
	}
	for _, cmd := range byName[tracing.SpanCommand] {
		if cmd.Parent != "" {
			t.Errorf("command %s: parent %s, want a trace's root", cmd.Attrs["cairn.command_id"], cmd.Parent)
		}
		var disp *otlptest.Span
		for i, d := range byName[tracing.SpanDispatch] {
			if d.TraceID == cmd.TraceID {
				disp = &byName[tracing.SpanDispatch][i]
			}
		}
		if disp == nil || disp.Parent != cmd.SpanID {
			t.Errorf("command %s: dispatch span %v, want the command span's child", cmd.Attrs["cairn.command_id"], disp)
		}
	}
	qs, first := byName[tracing.SpanQuery], byName[tracing.SpanFirstRead]
	if len(qs) != 1 || qs[0].TraceID != traceID || qs[0].Parent != tracing.ParseParent(caller).SpanID().String() {
		t.Fatalf("query spans %v, want one, the caller's span's child in trace %s", qs, traceID)
	}
	// Each command's first read: the untraced query's under its apply,
	// the traced one's under its cairn.query.
	if len(first) != 2 {
		t.Fatalf("%d first-read spans, want 2: %v", len(first), first)
	}
	if !slices.ContainsFunc(first, func(s otlptest.Span) bool { return s.TraceID == traceID && s.Parent == qs[0].SpanID }) {
		t.Errorf("first reads %v, none the child of the query span %s", first, qs[0].SpanID)
	}
}
