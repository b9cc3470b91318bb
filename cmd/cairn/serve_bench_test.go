package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/graphgen"
	"github.com/cairn-graph/cairn/internal/testbin"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

var bigServe = flag.Bool("cairn.big", false,
	"run BenchmarkServeRestart on 1,000,000 nodes and 3,000,000 edges (minutes and a few GB) instead of 20,000 nodes")

// streamLoader publishes pre-sealed transactions straight to the event
// store's stream, as the graph grains' appends store them, many in flight.
type streamLoader struct {
	tb    testing.TB
	nc    *nats.Conn
	js    jetstream.JetStream
	subj  string
	chain *graphgen.Chain
	acks  []jetstream.PubAckFuture
	last  uint64 // stream sequence of the last acknowledged transaction
}

func newStreamLoader(tb testing.TB, url, graph string) *streamLoader {
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		tb.Fatal(err)
	}
	subj := persistence.DefaultStoreConfig().SubjectPrefix + "." + graph
	return &streamLoader{tb: tb, nc: nc, js: js, subj: subj, chain: graphgen.NewChain(graph)}
}

func (l *streamLoader) publish(events []*cairnv1.Event) {
	tx, err := l.chain.Seal(events, time.Now().UnixNano())
	if err != nil {
		l.tb.Fatal(err)
	}
	data, err := proto.Marshal(tx)
	if err != nil {
		l.tb.Fatal(err)
	}
	ack, err := l.js.PublishAsync(l.subj, data)
	if err != nil {
		l.tb.Fatal(err)
	}
	if l.acks = append(l.acks, ack); len(l.acks) >= 1024 {
		l.wait()
	}
}

// wait waits for every publish in flight.
func (l *streamLoader) wait() {
	for _, a := range l.acks {
		select {
		case pa := <-a.Ok():
			l.last = max(l.last, pa.Sequence)
		case err := <-a.Err():
			l.tb.Fatal(err)
		case <-time.After(time.Minute):
			l.tb.Fatal("publish not acknowledged within a minute")
		}
	}
	l.acks = l.acks[:0]
}

// restartTimes is what one restart of serve took, from the process start.
type restartTimes struct {
	natsReady   time.Duration // to the embedded NATS server's "Server is ready" (its log)
	ready       time.Duration // to the ready line
	firstQuery  time.Duration // to the first answer of a node query
	firstCmd    time.Duration // to the first accepted command (a new graph's creation)
	caughtUp    time.Duration // to an answer that reflects the last transaction
	jsRestore   time.Duration // JetStream's recovery of the event store (its log)
	rmRestore   time.Duration // the projections' restore (health)
	restoredSeq uint64        // the manifest's seq they restored (health)
}

var (
	jsRestoredRE = regexp.MustCompile(`Restored [\d,]+ messages for stream '\$G > event-store' in ([0-9.]+[µmn]?s)`)
	natsReadyRE  = regexp.MustCompile(`time=(\S+) level=INFO msg="Server is ready"`)
)

// restarts numbers measureRestart's graphs.
var restarts int

// measureRestart starts serve on dir and times it to serving node's query
// and to serving the graph up to seq last.
func measureRestart(b *testing.B, bin, dir string, flags []string, graph, node string, last uint64) (*serverProc, restartTimes) {
	b.Helper()
	srv := startServe(b, bin, dir, flags...)
	rt := restartTimes{ready: srv.ready}
	// Queries wait until the projections have restored their snapshots.
	mustRun(b, "query", "node", graph, node, "--timeout", "30s", "--server", srv.url)
	rt.firstQuery = time.Since(srv.started)
	// A graph of its own: a command on the loaded graph would fork the
	// chain the loader goes on sealing.
	restarts++
	mustRun(b, "graph", "create", "restart-"+strconv.Itoa(restarts), "--timeout", "30s", "--server", srv.url)
	rt.firstCmd = time.Since(srv.started)
	mustRun(b, "query", "node", graph, node, "--min-seq", strconv.FormatUint(last, 10), "--timeout", "30s", "--server", srv.url)
	rt.caughtUp = time.Since(srv.started)
	h := health(b, srv.url)
	if h.Snapshots.RestoredSeq == 0 || h.Snapshots.Fallbacks != 0 {
		b.Errorf("restart: snapshot health %+v, want restored from a manifest without fallbacks", h.Snapshots)
	}
	rt.rmRestore = time.Duration(h.Snapshots.RestoreMs * float64(time.Millisecond))
	rt.restoredSeq = h.Snapshots.RestoredSeq
	logs, err := os.ReadFile(srv.stderr)
	if err != nil {
		b.Fatal(err)
	}
	if m := jsRestoredRE.FindSubmatch(logs); m != nil {
		rt.jsRestore, _ = time.ParseDuration(string(m[1]))
	}
	if m := natsReadyRE.FindSubmatch(logs); m != nil {
		if at, err := time.Parse(time.RFC3339Nano, string(m[1])); err == nil {
			rt.natsReady = at.Sub(srv.started)
		}
	}
	return srv, rt
}

// BenchmarkServeRestart measures, end to end with the cairn binary, how
// soon an engine serves queries again after kill -9 and after a clean stop
// (SIGINT), holding one graph of graphgen.Big's shape: 20,000 nodes, or
// with -cairn.big 1,000,000 nodes and 3,000,000 edges. The graph is loaded
// by publishing sealed transactions straight to the event store's stream;
// then each iteration stops the engine cleanly (it takes a last read-model
// snapshot), restarts it, publishes a tail of 10 transactions of 100
// events, kill -9s it and restarts it. Reported, from the process start:
// the embedded NATS server's readiness (its log), the ready line, the first
// answer of a node query, the first accepted command (a new graph's
// creation, sent after that query), the first answer that
// reflects the tail, JetStream's recovery of the stream (its log) and the
// projections' snapshot restore.
//
//	go test ./cmd/cairn -run '^$' -bench ServeRestart -benchtime 3x -timeout 60m -cairn.big
func BenchmarkServeRestart(b *testing.B) {
	cfg := graphgen.Big().Scaled(20_000)
	if *bigServe {
		cfg = graphgen.Big()
	}
	bin := testbin.Cairn(b)
	dir := b.TempDir()
	// Rounds every 1,000,000 events; the load's rounds come at doubling
	// intervals and the clean stops write the last one.
	flags := []string{"--readmodel-snapshot-every", "1000000", "--log-level", "info"}
	srv := startServe(b, bin, dir, flags...)
	load := newStreamLoader(b, srv.url, cfg.Graph)
	start := time.Now()
	if err := cfg.Generate(func(events []*cairnv1.Event) error { load.publish(events); return nil }); err != nil {
		b.Fatal(err)
	}
	load.wait()
	published := time.Since(start)
	last := load.last
	node := graphgen.NodeID(0)
	pollFor(b, "the projections applying the load", 20*time.Minute, func() string {
		if h := health(b, srv.url); h.AppliedSeq < last {
			return fmt.Sprintf("applied up to seq %d of %d", h.AppliedSeq, last)
		}
		return ""
	})
	b.Logf("published %d events in %d transactions in %s, applied after %s (load %s)",
		cfg.Events(), last, published.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), loadAvg())

	var kill, clean []restartTimes
	var stops []time.Duration
	churn := cfg.Churn(2)
	for b.Loop() {
		t0 := time.Now()
		if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
			b.Fatal(err)
		}
		if code := srv.wait(b); code != 0 {
			b.Fatalf("after SIGINT: exit %d", code)
		}
		stops = append(stops, time.Since(t0))
		var rt restartTimes
		srv, rt = measureRestart(b, bin, dir, flags, cfg.Graph, node, last)
		clean = append(clean, rt)

		// A tail after the newest snapshot, then kill -9.
		chain := load.chain
		load.nc.Close()
		load = newStreamLoader(b, srv.url, cfg.Graph)
		load.chain = chain
		for range 10 {
			load.publish(churn.Next(100))
		}
		load.wait()
		last = load.last
		mustRun(b, "query", "node", cfg.Graph, node, "--min-seq", strconv.FormatUint(last, 10), "--timeout", "30s", "--server", srv.url)
		if err := srv.cmd.Process.Kill(); err != nil {
			b.Fatal(err)
		}
		srv.wait(b)
		srv, rt = measureRestart(b, bin, dir, flags, cfg.Graph, node, last)
		kill = append(kill, rt)
	}
	report := func(name string, rts []restartTimes) {
		med := func(f func(restartTimes) time.Duration) float64 {
			ds := make([]time.Duration, len(rts))
			for i, rt := range rts {
				ds[i] = f(rt)
			}
			slices.Sort(ds)
			return float64(ds[len(ds)/2].Microseconds()) / 1000
		}
		b.ReportMetric(med(func(r restartTimes) time.Duration { return r.natsReady }), name+"-nats-ready-ms")
		b.ReportMetric(med(func(r restartTimes) time.Duration { return r.ready }), name+"-ready-ms")
		b.ReportMetric(med(func(r restartTimes) time.Duration { return r.firstQuery }), name+"-query-ms")
		b.ReportMetric(med(func(r restartTimes) time.Duration { return r.firstCmd }), name+"-command-ms")
		b.ReportMetric(med(func(r restartTimes) time.Duration { return r.caughtUp }), name+"-caughtup-ms")
		b.ReportMetric(med(func(r restartTimes) time.Duration { return r.jsRestore }), name+"-js-restore-ms")
		b.ReportMetric(med(func(r restartTimes) time.Duration { return r.rmRestore }), name+"-rm-restore-ms")
		for i, rt := range rts {
			b.Logf("%s %d: NATS ready %s, ready %s, first query %s, first command %s, caught up %s, JetStream restore %s, read-model restore %s (seq %d)",
				name, i+1, rt.natsReady.Round(time.Millisecond), rt.ready.Round(time.Millisecond), rt.firstQuery.Round(time.Millisecond), rt.firstCmd.Round(time.Millisecond), rt.caughtUp.Round(time.Millisecond),
				rt.jsRestore.Round(time.Millisecond), rt.rmRestore.Round(time.Millisecond), rt.restoredSeq)
		}
	}
	report("kill", kill)
	report("clean", clean)
	slices.Sort(stops)
	b.ReportMetric(float64(stops[len(stops)/2].Milliseconds()), "clean-stop-ms")
	b.Logf("load %s", loadAvg())
}

// loadAvg returns the system's load averages, where /proc says.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.14s", b)
}

// BenchmarkServeFirstCommand measures, with the cairn binary on an empty
// data directory, how soon after the process starts `cairn serve` prints
// its ready line and accepts its first command (a graph creation sent over
// the "cairn" micro service as soon as the ready line is read; the engine
// holds it until its cluster member has started). Each iteration is a new
// process on a new directory; the metrics are medians.
//
//	go test ./cmd/cairn -run '^$' -bench ServeFirstCommand -benchtime 5x
func BenchmarkServeFirstCommand(b *testing.B) {
	bin := testbin.Cairn(b)
	var ready, first []time.Duration
	for i := 0; b.Loop(); i++ {
		srv := startServe(b, bin, b.TempDir(), "--log-level", "warn")
		nc, err := nats.Connect(srv.url)
		if err != nil {
			b.Fatal(err)
		}
		env := &cairnv1.CommandEnvelope{GraphId: "g" + strconv.Itoa(i), CommandId: "c" + strconv.Itoa(i),
			Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}}}
		data, err := proto.Marshal(env)
		if err != nil {
			b.Fatal(err)
		}
		msg, err := nc.Request(api.CommandSubject, data, 30*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(srv.started)
		rep := &cairnv1.CommandReply{}
		if err := proto.Unmarshal(msg.Data, rep); err != nil || rep.GetError() != nil {
			b.Fatalf("first command: %v %v", err, rep.GetError())
		}
		nc.Close()
		ready, first = append(ready, srv.ready), append(first, took)
		if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
			b.Fatal(err)
		}
		if code := srv.wait(b); code != 0 {
			b.Fatalf("after SIGINT: exit %d", code)
		}
	}
	med := func(ds []time.Duration) float64 {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	b.ReportMetric(med(ready), "ready-ms")
	b.ReportMetric(med(first), "first-command-ms")
	b.Logf("ready %v; first command %v (load %s)", ready, first, loadAvg())
}
