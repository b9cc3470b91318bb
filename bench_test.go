package cairn_test

// Write-path benchmarks.
//
// One op is one command envelope through Engine.Execute: a single AddNode,
// or in BenchmarkTx10Events1000Graphs one envelope of ten AddNode commands
// (ten events, one transaction). b.N is set by the framework. Each benchmark
// run opens its own engine (embedded NATS, no TCP listener) and creates its
// graphs before the timer starts. After the timed part, with the timer
// stopped, it measures the baseline on the same server and connection: raw
// JetStream publishes with Nats-Expected-Last-Subject-Sequence and a fresh
// Nats-Msg-Id (the headers persistence.Store.Append sends, minus the
// engine) of a payload as large as
// the transaction message, on as many subjects as there are graphs, with as
// many callers (at most one per subject), one publish in flight per subject
// (benchutil.RawOCC).
//
// Metrics: events/s and raw-events/s (events, not messages: a ten-event
// transaction counts ten), ratio = events/s ÷ raw-events/s, and the command
// latency p50-ms, p99-ms, max-ms (raw-p50-ms… for the baseline's publishes
// in the open-loop benchmark). In the closed-loop benchmarks latency is
// measured at saturation; only BenchmarkLatencyAt10kPerSecond measures it
// under a fixed offered load. cpu-us/event and raw-cpu-us/event are the
// process's CPU time (user and system, embedded server included) per event,
// and cpu-ratio = raw-cpu-us/event ÷ cpu-us/event: when other processes
// compete for the CPUs these move much less than the rates, and on an idle
// machine where both sides are CPU-bound cpu-ratio predicts ratio.
// allocs/op and B/op count the whole process during the timed part: this
// file's client code, the engine and the embedded NATS server.
//
// The goals (2-core reference machine) are read off these numbers,
// never asserted: ≥ 50,000 events/s and ratio ≥ 0.6 for
// Commands1000GraphsConcurrent, ≥ 200,000 events/s for Tx10Events1000Graphs,
// p99-ms ≤ 5 for LatencyAt10kPerSecond.
//
//	go test -run '^$' -bench . -benchtime 3s -count 3 .
//
// -bench.raw=false skips the baselines, for profiling the engine alone:
//
//	go test -run '^$' -bench 1000GraphsConcurrent -cpuprofile cpu.out . -args -bench.raw=false
//
// -cpuprofile holds the whole process: the engine's start, the graphs'
// creation and its close (with the grains' final snapshots) as well as the
// timed part. -bench.cpuprofile FILE profiles the timed part alone, and
// -bench.memprofile FILE writes the allocation profile before it (FILE.base)
// and after it, to read with -diff_base. The engine runs unsigned, as
// cairn.DefaultConfig does; -bench.sign signs every transaction with a
// fresh key, as cairn serve does by default:
//
//	go test -run '^$' -bench 1000GraphsConcurrent/callers=1000$ . -args -bench.sign -bench.cpuprofile cpu.out

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/internal/benchutil"
	"github.com/cairn-graph/cairn/internal/enginetest"
	"github.com/cairn-graph/cairn/internal/tracing/otlptest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

const benchGraphs = 1000

var benchRaw = flag.Bool("bench.raw", true, "measure the raw JetStream baseline after each engine benchmark")

// -bench.trace measures with tracing on: every command traced (a root span
// per command, sample 1), exported to an in-process OTLP receiver.
var benchTrace = flag.Bool("bench.trace", false, "trace every command, exporting to an in-process OTLP receiver")

// -bench.sign measures with signing on, as cairn serve runs by default:
// every transaction signed with a fresh ed25519 key.
var benchSign = flag.Bool("bench.sign", false, "sign every transaction, as cairn serve does by default")

// -bench.cpuprofile writes a CPU profile of the timed part alone (the last
// run's: each run overwrites it), without the engine's start, the graphs'
// creation, the baseline and the close that -test.cpuprofile also holds.
var benchCPUProfile = flag.String("bench.cpuprofile", "", "write a CPU profile of the timed part to `file`")

// -bench.memprofile writes the allocation profile at the start of the
// timed part to FILE.base and at its end to FILE, so that
// `go tool pprof -sample_index=alloc_objects -diff_base FILE.base X.test FILE`
// shows what the timed part allocated (-test.memprofilerate sets the rate).
var benchMemProfile = flag.String("bench.memprofile", "", "write allocation profiles around the timed part to `file`.base and `file`")

// BenchmarkCommandsOneGraphSequential: one caller, one graph, one AddNode
// per command, each waiting for the previous reply.
func BenchmarkCommandsOneGraphSequential(b *testing.B) {
	benchClosedLoop(b, 1, 1, 1)
}

// BenchmarkCommands1000GraphsConcurrent: single AddNode commands on 1,000
// graphs, one caller per graph (every append carries one command), and four
// and sixteen callers per graph (commands queue behind the in-flight append
// and go out together: group commit). The baseline has one publish in flight per
// subject either way.
func BenchmarkCommands1000GraphsConcurrent(b *testing.B) {
	for _, callers := range []int{benchGraphs, 4 * benchGraphs, 16 * benchGraphs} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			benchClosedLoop(b, benchGraphs, callers, 1)
		})
	}
}

// BenchmarkTx10Events1000Graphs: envelopes of ten AddNode commands on 1,000
// graphs, one and four callers per graph; an op is one envelope (ten events).
func BenchmarkTx10Events1000Graphs(b *testing.B) {
	for _, callers := range []int{benchGraphs, 4 * benchGraphs} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			benchClosedLoop(b, benchGraphs, callers, 10)
		})
	}
}

// BenchmarkLatencyAt10kPerSecond: an open loop offers 10,000 single AddNode
// commands a second across 1,000 graphs, whatever the replies do; latency
// runs from each command's scheduled start. An op is one command, so b.N
// sets the duration (-benchtime 3s: about 30,000 commands). The baseline
// publishes at the same rate on 1,000 subjects.
func BenchmarkLatencyAt10kPerSecond(b *testing.B) {
	const rate = 10_000
	ctx := context.Background()
	eng, graphs, lat := startBench(b, benchGraphs)
	stop := startBenchProfile(b)
	run, err := benchutil.OpenLoop(b.N, rate, lat, func(i int) error {
		return benchExecute(ctx, eng, graphs[i%len(graphs)], i, 1)
	})
	stop()
	reportEngine(b, run, err, b.N, lat)
	if !*benchRaw {
		return
	}

	raw := newBenchRaw(b, eng, len(graphs), benchTxPayload(b, 1))
	rawLat := benchutil.NewLatency()
	rawRun, err := benchutil.OpenLoop(b.N, rate, rawLat, func(i int) error { return raw.Publish(ctx, i) })
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rawRun.CPUPerOp(b.N), "raw-cpu-us/event")
	rawLat.Report(b, "raw-")
}

// benchClosedLoop runs b.N envelopes of perEnvelope AddNode commands from
// callers goroutines on graphs graphs (caller k writes to graph k mod
// graphs), then the raw baseline with the same shape.
func benchClosedLoop(b *testing.B, graphs, callers, perEnvelope int) {
	ctx := context.Background()
	eng, ids, lat := startBench(b, graphs)
	stop := startBenchProfile(b)
	run, err := benchutil.ClosedLoop(b.N, callers, lat, func(w, i int) error {
		return benchExecute(ctx, eng, ids[w%len(ids)], i, perEnvelope)
	})
	stop()
	events := b.N * perEnvelope
	reportEngine(b, run, err, events, lat)
	if !*benchRaw {
		return
	}

	// The baseline sends at least 20 messages per subject so that short
	// calibration runs still give a usable rate. With one publish in flight
	// per subject, callers beyond one per subject would only queue on the
	// subject's lock, so it uses at most one per subject.
	raw := newBenchRaw(b, eng, graphs, benchTxPayload(b, perEnvelope))
	rawN := max(b.N, 20*graphs, 2000)
	rawRun, err := benchutil.ClosedLoop(rawN, min(callers, graphs), nil, func(w, _ int) error { return raw.Publish(ctx, w) })
	if err != nil {
		b.Fatal(err)
	}
	rawEvents := rawN * perEnvelope
	b.ReportMetric(rawRun.Rate(rawEvents), "raw-events/s")
	b.ReportMetric(run.Rate(events)/rawRun.Rate(rawEvents), "ratio")
	b.ReportMetric(rawRun.CPUPerOp(rawEvents), "raw-cpu-us/event")
	if run.CPU > 0 {
		b.ReportMetric(rawRun.CPUPerOp(rawEvents)/run.CPUPerOp(events), "cpu-ratio")
	}
}

// startBench opens an engine with graphs graphs and an empty latency
// histogram, then starts timing afresh.
func startBench(b *testing.B, graphs int) (*cairn.Engine, []string, *benchutil.Latency) {
	eng := openBenchEngine(b)
	ids := createBenchGraphs(b, eng, graphs)
	b.ReportAllocs()
	b.ResetTimer()
	return eng, ids, benchutil.NewLatency()
}

// reportEngine stops the timer and reports the engine's side of a run of
// events events.
func reportEngine(b *testing.B, run benchutil.Run, err error, events int, lat *benchutil.Latency) {
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(run.Rate(events), "events/s")
	b.ReportMetric(run.CPUPerOp(events), "cpu-us/event")
	lat.Report(b, "")
}

// startBenchProfile starts the -bench.cpuprofile profile, when asked for;
// the function it returns stops it.
func startBenchProfile(b *testing.B) func() {
	if *benchMemProfile != "" {
		writeBenchHeap(b, *benchMemProfile+".base")
		stopCPU := startBenchCPUProfile(b)
		return func() {
			stopCPU()
			writeBenchHeap(b, *benchMemProfile)
		}
	}
	return startBenchCPUProfile(b)
}

func writeBenchHeap(b *testing.B, name string) {
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC() // the profile holds what the last collection saw
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func startBenchCPUProfile(b *testing.B) func() {
	if *benchCPUProfile == "" {
		return func() {}
	}
	f, err := os.Create(*benchCPUProfile)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

func openBenchEngine(b *testing.B) *cairn.Engine {
	cfg := cairn.DefaultConfig(b.TempDir())
	cfg.NATSListen = persistence.ListenNone
	if *benchTrace {
		cfg.Tracing.Endpoint = otlptest.Start(b).URL
	}
	if *benchSign {
		seed, err := persistence.NewSigningKey()
		if err != nil {
			b.Fatal(err)
		}
		if cfg.Signer, err = persistence.NewSigner(seed); err != nil {
			b.Fatal(err)
		}
	}
	return enginetest.OpenConfig(b, cfg)
}

// createBenchGraphs creates n graphs, which also activates their grains.
func createBenchGraphs(b *testing.B, eng *cairn.Engine, n int) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("g%04d", i)
	}
	create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "bench"}}}
	_, err := benchutil.ClosedLoop(n, min(n, 100), nil, func(_, i int) error {
		_, err := eng.Execute(context.Background(), &cairnv1.CommandEnvelope{GraphId: ids[i], CommandId: "create", Commands: []*cairnv1.Command{create}})
		return err
	})
	if err != nil {
		b.Fatalf("create graphs: %v", err)
	}
	return ids
}

// benchValue is the one component every benchmark node carries: with it an
// event's envelope is about 230 bytes.
var benchValue = []byte("a benchmark node's component value, 64 bytes of opaque payload..")

func benchAddNode(id string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{
		NodeId:     id,
		Components: []*cairnv1.Component{{Type: "name", Value: benchValue}},
		Categories: []string{"bench"},
	}}}
}

// benchExecute sends envelope i: n AddNode commands with fresh node ids.
func benchExecute(ctx context.Context, eng *cairn.Engine, graph string, i, n int) error {
	id := strconv.Itoa(i)
	cmds := make([]*cairnv1.Command, n)
	for k := range cmds {
		node := "n" + id
		if n > 1 {
			node += "-" + strconv.Itoa(k)
		}
		cmds[k] = benchAddNode(node)
	}
	_, err := eng.Execute(ctx, &cairnv1.CommandEnvelope{GraphId: graph, CommandId: "c" + id, Commands: cmds})
	return err
}

// benchTxPayload returns a transaction message as the grain builds it for
// one envelope of n AddNode commands in mid-chain (so events carry prev),
// for the baseline's payload size.
func benchTxPayload(b *testing.B, n int) []byte {
	b.Helper()
	events := make([]*cairnv1.Event, n)
	for k := range events {
		add := benchAddNode(fmt.Sprintf("n%06d-%d", 123456, k)).GetAddNode()
		events[k] = &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{
			NodeId: add.GetNodeId(), Components: add.GetComponents(), Categories: add.GetCategories(),
		}}}
	}
	prev, err := cid.Cast(persistence.EventCID([]byte("previous event")))
	if err != nil {
		b.Fatal(err)
	}
	graph, txID, now := "g0500", nuid.Next(), time.Now().UnixNano()
	recs, _, err := persistence.Seal(graph, txID, now, persistence.Head{N: 500, CID: prev}, events)
	if err != nil {
		b.Fatal(err)
	}
	data, err := proto.Marshal(&cairnv1.Transaction{
		GraphId: graph, TxId: txID, TimestampUnixNano: now, Events: recs,
		Commands: []*cairnv1.CommandRecord{{CommandId: "c123456", EventCount: uint32(n)}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func newBenchRaw(b *testing.B, eng *cairn.Engine, subjects int, payload []byte) *benchutil.RawOCC {
	b.Helper()
	js, err := jetstream.New(eng.Conn(), jetstream.WithPublishAsyncMaxPending(16384)) // as the engine's
	if err != nil {
		b.Fatal(err)
	}
	raw, err := benchutil.NewRawOCC(context.Background(), js, subjects, payload, true) // with Nats-Msg-Id, as Append
	if err != nil {
		b.Fatal(err)
	}
	return raw
}
