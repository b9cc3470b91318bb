package cairn_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/enginetest"
	"github.com/cairn-graph/cairn/internal/testbin"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/metrics"
	"github.com/cairn-graph/cairn/persistence"
)

// gathered is one scrape: each series' value by name and labels
// ("name{k=v,...}", labels sorted as Prometheus sorts them); a histogram
// gives its _count.
type gathered map[string]float64

func gather(t *testing.T, reg *prometheus.Registry) gathered {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	g := gathered{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				g[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				g[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				g[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return g
}

// sum adds the series of name whose labels contain every one of with.
func (g gathered) sum(name string, with ...string) float64 {
	var s float64
	for k, v := range g {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, w := range with {
			ok = ok && strings.Contains(k, w)
		}
		if ok {
			s += v
		}
	}
	return s
}

func TestEngineMetrics(t *testing.T) {
	ctx := context.Background()
	// Pedantic: every series collected must match a described one.
	m := metrics.New(metrics.Options{Registry: prometheus.NewPedanticRegistry()})
	cfg := cairn.DefaultConfig(t.TempDir())
	cfg.NATSListen = persistence.ListenNone
	cfg.Metrics = m
	eng := enginetest.OpenConfig(t, cfg)

	const nodes = 25
	var last uint64
	send := func(env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
		t.Helper()
		rep, _ := eng.Execute(ctx, env)
		last = max(last, rep.GetSeq())
		return rep
	}
	send(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
	for i := range nodes {
		if rep := send(cmdtest.Envelope("g", fmt.Sprint("n", i), cmdtest.AddNode(fmt.Sprint("v", i)))); rep.GetError() != nil {
			t.Fatalf("add node: %v", rep.GetError())
		}
	}
	if rep := send(cmdtest.Envelope("g", "n0", cmdtest.AddNode("v0"))); !rep.GetDuplicate() {
		t.Fatalf("a retried command id was not answered as a duplicate: %v", rep)
	}
	if rep := send(cmdtest.Envelope("g", "rm", cmdtest.RemoveNode("nope"))); rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
		t.Fatalf("removing a missing node: %v", rep)
	}
	q := func(node string) *cairnv1.QueryRequest {
		return &cairnv1.QueryRequest{GraphId: "g", MinSeq: last, Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: node}}}
	}
	if _, err := eng.Query(ctx, q("v1")); err != nil {
		t.Fatalf("query: %v", err)
	}
	eng.Query(ctx, q("nope"))

	g := gather(t, m.Registry())
	for series, want := range map[string]float64{
		"cairn_commands_total{code=ok,kind=create_graph}":                 1,
		"cairn_commands_total{code=ok,kind=add_node}":                     nodes + 1,
		"cairn_commands_total{code=not_found,kind=remove_node}":           1,
		"cairn_command_duplicates_total":                                  1,
		"cairn_command_duration_seconds_count":                            nodes + 3,
		"cairn_append_batch_envelopes_count":                              nodes + 1,
		"cairn_append_errors_total":                                       0,
		"cairn_queries_total{code=ok,kind=get_node}":                      1,
		"cairn_queries_total{code=not_found,kind=get_node}":               1,
		"cairn_query_duration_seconds{kind=get_node,outcome=ok}_count":    1,
		"cairn_query_duration_seconds{kind=get_node,outcome=error}_count": 1,
		"cairn_grains_active":                                             1,
		"cairn_grain_activations_total{source=replay}":                    1,
		"cairn_grain_activation_duration_seconds_count":                   1,
		"cairn_aggregate_nodes":                                           nodes,
		"cairn_readmodel_nodes":                                           nodes,
		"cairn_readmodel_graphs":                                          1,
		"cairn_stream_head_seq":                                           float64(last),
		"cairn_jetstream_stream_messages":                                 float64(last),
		"cairn_ready":                                                     1,
		"cairn_nats_connected":                                            1,
		"cairn_cluster_members":                                           1,
		"cairn_stream_lost":                                               0,
	} {
		if got, ok := g[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if v := cairn.Version(); v == "" || g.sum("cairn_build_info", "version="+v) != 1 {
		t.Errorf("cairn_build_info does not carry the version %q", v)
	}
	if g.sum("cairn_projection_applied_transactions_total") != float64(last) {
		t.Errorf("applied transactions %v, want %d", g.sum("cairn_projection_applied_transactions_total"), last)
	}
	if g.sum("cairn_projection_lag_sequences") != 0 || g.sum("cairn_projection_lag_seconds") != 0 {
		t.Errorf("lag after a read-your-writes query: %v sequences, %v s", g.sum("cairn_projection_lag_sequences"), g.sum("cairn_projection_lag_seconds"))
	}
	if g["cairn_aggregate_memory_bytes"] <= 0 || g["cairn_readmodel_memory_bytes"] <= 0 || g["cairn_disk_size_bytes"] <= 0 {
		t.Errorf("memory or disk not reported: %v %v %v", g["cairn_aggregate_memory_bytes"], g["cairn_readmodel_memory_bytes"], g["cairn_disk_size_bytes"])
	}

	// A second engine cannot report on the same registry meanwhile; once
	// the first closed, it can.
	cfg2 := cairn.DefaultConfig(t.TempDir())
	cfg2.NATSListen, cfg2.Metrics = persistence.ListenNone, m
	if e2, err := cairn.Open(ctx, cfg2); err == nil {
		e2.Close(ctx)
		t.Fatal("a second engine opened on a Metrics in use")
	} else if !strings.Contains(err.Error(), "metrics") {
		t.Errorf("second engine's error does not name the metrics: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := eng.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Ready(); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("a closed engine's readiness: %v", err)
	}
	if _, ok := gather(t, m.Registry())["cairn_ready"]; ok {
		t.Error("a closed engine still reports")
	}
	enginetest.OpenConfig(t, cfg2)
	deadline := time.Now().Add(10 * time.Second)
	for g := gather(t, m.Registry()); g["cairn_ready"] != 1 || g["cairn_stream_head_seq"] != 0; g = gather(t, m.Registry()) {
		if time.Now().After(deadline) {
			t.Fatalf("the next engine on the registry: ready %v, head %v", g["cairn_ready"], g["cairn_stream_head_seq"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEngineReadyFollowsNATS: with an external NATS that goes away, the
// engine says it is not ready (naming the connection) and its metrics say
// so; once NATS is back it is ready again.
func TestEngineReadyFollowsNATS(t *testing.T) {
	scfg := persistence.ServerConfig{DataDir: t.TempDir(), Listen: testbin.FreeAddr(t)}
	start := func() *persistence.Server {
		t.Helper()
		srv, err := persistence.StartServer(scfg)
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	stop := func(srv *persistence.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}
	srv := start()
	// Registered before the engine's: the engine closes first.
	t.Cleanup(func() { stop(srv) })
	m := metrics.New(metrics.Options{})
	cfg := cairn.DefaultConfig("")
	cfg.NATSURL, cfg.Metrics = "nats://"+scfg.Listen, m
	eng := enginetest.OpenConfig(t, cfg)
	waitReady := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := eng.Ready()
			g := gather(t, m.Registry())
			switch {
			case want == "" && err == nil && g["cairn_ready"] == 1 && g["cairn_nats_connected"] == 1:
				return
			case want != "" && err != nil && strings.Contains(err.Error(), want) && g["cairn_ready"] == 0 && g["cairn_nats_connected"] == 0:
				return
			case time.Now().After(deadline):
				t.Fatalf("readiness %v, cairn_ready %v, cairn_nats_connected %v; want %q", err, g["cairn_ready"], g["cairn_nats_connected"], want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReady("")
	stop(srv)
	waitReady("not connected to NATS")
	srv = start()
	waitReady("")
}
