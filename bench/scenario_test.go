package bench_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"runtime/debug"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/bench"
	"github.com/cairn-graph/cairn/internal/enginetest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Smoke runs of the scenarios against real engines (embedded NATS
// JetStream, real actor systems). They check that each scenario measures
// what it says and that the graphs it builds are whole; the speed itself is
// for `make bench`. The recovery scenario needs the cairn binary: its smoke
// run is in cmd/cairn (TestBenchSuiteQuick).

func smallWorkload(shape bench.Shape) bench.Workload {
	w := bench.DefaultWorkload()
	w.Shape, w.Nodes, w.Edges = shape, 600, 1800
	if shape == bench.ShapeTree {
		w.Edges = w.Nodes - 1
	}
	return w
}

func TestIngestInProcessEveryShape(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	d := bench.InProcess(eng)
	for _, shape := range []bench.Shape{bench.ShapeBA, bench.ShapeRMAT, bench.ShapeUniform, bench.ShapeTree} {
		t.Run(string(shape), func(t *testing.T) {
			w := smallWorkload(shape)
			var live bytes.Buffer
			// Several envelopes of nodes in flight, then edges that must
			// wait for all of them.
			res, err := bench.Ingest(context.Background(), d, bench.IngestConfig{Workload: w, Graphs: 2, Batch: 250, InFlight: 3, Baseline: true}, &live)
			if err != nil {
				t.Fatal(err)
			}
			checkIngest(t, res, w, 2)
			if len(res.Baselines) != 1 || res.Baselines[0].Raw <= 0 || res.Baselines[0].Ratio <= 0 {
				t.Fatalf("baselines = %+v, want the raw JetStream one", res.Baselines)
			}
			if !strings.Contains(live.String(), "ingest") {
				t.Errorf("no live output: %q", live.String())
			}
		})
	}
}

func checkIngest(t *testing.T, res *bench.ScenarioResult, w bench.Workload, graphs int) {
	t.Helper()
	if len(res.Ops) != 1 || res.Ops[0].Op != bench.OpCommand {
		t.Fatalf("ops = %+v, want one %q", res.Ops, bench.OpCommand)
	}
	cmd := res.Ops[0]
	if cmd.Errors != 0 || cmd.Items != int64(graphs*w.Commands()) {
		t.Fatalf("command op: %d errors, %d items, want 0 and %d", cmd.Errors, cmd.Items, graphs*w.Commands())
	}
	if cmd.ItemRate <= 0 || cmd.P99MS <= 0 || len(res.Memory) == 0 || res.DurationS <= 0 {
		t.Fatalf("nothing measured: %+v, %d memory samples", cmd, len(res.Memory))
	}
}

// TestIngestOpenLoop offers the load at a fixed rate: the run takes about
// events ÷ rate, and every envelope still lands.
func TestIngestOpenLoop(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	w := smallWorkload(bench.ShapeBA)
	const rate = 6000 // events/s: 2 graphs × 2,400 commands ≈ 0.8 s
	res, err := bench.Ingest(context.Background(), bench.InProcess(eng), bench.IngestConfig{Workload: w, Graphs: 2, Batch: 100, Rate: rate}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkIngest(t, res, w, 2)
	if res.Config["mode"] != "open loop" {
		t.Errorf("mode = %v", res.Config["mode"])
	}
	// The schedule alone takes (envelopes-1)/envelope rate: the run cannot
	// be shorter.
	envelopes := 2 * ((w.Commands() + 99) / 100)
	if min := float64(envelopes-1) / (rate / 100); res.DurationS < min*0.99 {
		t.Errorf("open loop at %d events/s took %.2f s, less than its schedule's %.2f s", rate, res.DurationS, min)
	}
}

// TestIngestRemote drives an engine through the "cairn" NATS micro
// service, as against a separate `cairn serve`.
func TestIngestRemote(t *testing.T) {
	eng := enginetest.Open(t, "127.0.0.1:0")
	nc, err := nats.Connect(eng.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	d, err := bench.Remote(nc, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := smallWorkload(bench.ShapeRMAT)
	res, err := bench.Ingest(context.Background(), d, bench.IngestConfig{Workload: w, Baseline: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkIngest(t, res, w, 1)
	if res.Driver != "remote" {
		t.Errorf("driver = %q", res.Driver)
	}
	// The memory is the engine's own report over NATS: here the engine
	// runs in the test's process, so its limit is this process's.
	lim := debug.SetMemoryLimit(-1)
	if lim == math.MaxInt64 {
		lim = 0
	}
	for _, m := range res.Memory {
		if m.HeapBytes == 0 || m.RSSBytes == 0 || m.GoBytes < m.HeapBytes || m.LimitBytes != lim {
			t.Fatalf("memory sample %+v: want the engine's heap, RSS and limit %d", m, lim)
		}
	}
	if !strings.Contains(res.MemorySource, "engine's process, as it reports itself") {
		t.Errorf("memory source %q", res.MemorySource)
	}
	// A refused command is an error the scenario reports, not a success.
	rep, err := d.Execute(context.Background(), &cairnv1.CommandEnvelope{GraphId: "no-such-graph", CommandId: "x",
		Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: "a"}}}}})
	if err != nil || !errors.Is(aggregate.ErrorFromProto(rep.GetError()), aggregate.ErrNotFound) {
		t.Fatalf("command on a missing graph: %v, %v", rep, err)
	}
}

func TestMixed(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	w := smallWorkload(bench.ShapeBA)
	for _, tc := range []struct {
		name      string
		queryRate float64
	}{{"open-loop queries", 400}, {"closed-loop queries", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			var tr bytes.Buffer
			res, err := bench.Mixed(context.Background(), bench.InProcess(eng), bench.MixedConfig{
				Workload: w, WriteRate: 2000, WriteBatch: 5, QueryRate: tc.queryRate, QueryWorkers: 2,
				Duration: time.Second, Baseline: true, Trace: &tr,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The measured phase's execution trace, and no trace after it.
			if !bytes.HasPrefix(tr.Bytes(), []byte("go 1.")) || tr.Len() < 1000 || trace.IsEnabled() {
				t.Errorf("trace: %d bytes starting %q, tracing still on: %v", tr.Len(), tr.Bytes()[:min(tr.Len(), 16)], trace.IsEnabled())
			}
			kinds := map[string]bool{}
			for _, o := range res.Ops {
				kinds[o.Op] = true
				if o.Errors != 0 {
					t.Errorf("%s: %d errors", o.Op, o.Errors)
				}
			}
			for _, k := range []string{bench.OpWrite, bench.QueryNode, bench.QueryNeighbors} {
				if !kinds[k] {
					t.Errorf("no %s ops in %+v", k, res.Ops)
				}
			}
			wr := findOp(res.Ops, bench.OpWrite)
			// 2,000 events/s in writes of 5 for 1 s: 400 scheduled; each one
			// that was due runs to its end.
			if wr.Count < 390 || wr.Count > 401 {
				t.Errorf("%d writes at 400/s for 1 s", wr.Count)
			}
			if len(res.Baselines) != 1 || res.Baselines[0].Raw <= 0 {
				t.Errorf("baselines = %+v", res.Baselines)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	eng := enginetest.Open(t, persistence.ListenNone)
	w := smallWorkload(bench.ShapeUniform)
	res, err := bench.Replay(context.Background(), bench.InProcess(eng), bench.ReplayConfig{Workload: w, Rounds: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{bench.OpReadRaw, bench.OpReplayAggregate, bench.OpReplayProjection} {
		o := findOp(res.Ops, op)
		if o.Count != 2 || o.Errors != 0 || o.Items != int64(2*(1+w.Commands())) {
			t.Errorf("%s: %+v", op, o)
		}
	}
	if len(res.Baselines) != 2 || res.Baselines[0].Ratio <= 0 {
		t.Errorf("baselines = %+v", res.Baselines)
	}
}

func TestConfigsValidate(t *testing.T) {
	w := bench.DefaultWorkload()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"batch", bench.IngestConfig{Workload: w, Batch: 1001}.Validate(), "batch must be 1-1000"},
		{"graphs", bench.IngestConfig{Workload: w, Graphs: -1}.Validate(), "graphs must be at least 1"},
		{"prefix", bench.IngestConfig{Workload: w, Prefix: "a.b"}.Validate(), "prefix"},
		{"duration", bench.MixedConfig{Workload: w, Duration: -time.Second}.Validate(), "duration must be positive"},
		{"mix", bench.MixedConfig{Workload: w, Mix: bench.QueryMix{"node": 0}}.Validate(), "every weight is 0"},
		{"binary", bench.RecoveryConfig{Workload: w}.Validate(), "needs the cairn binary"},
		{"rounds", bench.ReplayConfig{Workload: w, Rounds: -2}.Validate(), "rounds must be at least 1"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, tc.err, tc.want)
		}
	}
	if _, err := bench.ParseQueryMix("node=1,nope=2"); err == nil || !strings.Contains(err.Error(), `unknown kind "nope"`) {
		t.Errorf("ParseQueryMix: %v", err)
	}
	m, err := bench.ParseQueryMix("node=3,path=1")
	if err != nil || m.String() != "node=3,path=1" {
		t.Errorf("ParseQueryMix = %v, %v", m, err)
	}
}

func findOp(ops []bench.OpSummary, op string) bench.OpSummary {
	for _, o := range ops {
		if o.Op == op {
			return o
		}
	}
	return bench.OpSummary{}
}
