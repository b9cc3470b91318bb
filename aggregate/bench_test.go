package aggregate_test

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/graphgen"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// big runs the state benchmarks on graphgen.Big (1,000,000 nodes,
// 3,000,000 edges) instead of a tenth of it:
//
//	go test ./aggregate -run '^$' -bench 'State|Codec' -benchtime 1x -count 3 -aggregate.big
var big = flag.Bool("aggregate.big", false, "run the state benchmarks on 1M nodes / 3M edges")

func benchConfig() graphgen.Config {
	if *big {
		return graphgen.Big()
	}
	return graphgen.Big().Scaled(100_000)
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// buildState folds cfg's graph into a state: nodes, then edges; it reports
// the live heap the nodes and the edges added.
func buildState(b *testing.B, cfg graphgen.Config) (s *aggregate.State, nodeBytes, edgeBytes float64) {
	b.Helper()
	base := liveHeap()
	s = aggregate.NewState(cfg.Graph)
	var afterNodes uint64
	nodesDone := false
	err := cfg.Generate(func(events []*cairnv1.Event) error {
		for _, ev := range events {
			if _, ok := ev.GetKind().(*cairnv1.Event_EdgeAdded); ok && !nodesDone {
				nodesDone = true
				afterNodes = liveHeap()
			}
			if err := aggregate.Apply(s, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	end := liveHeap()
	return s, float64(afterNodes-base) / float64(cfg.Nodes), float64(end-afterNodes) / float64(cfg.Edges)
}

// BenchmarkStateMemory reports the live heap a state takes per node and per
// edge after GC (issue 11's goal: at most 40 and 30 bytes at 1M/3M).
func BenchmarkStateMemory(b *testing.B) {
	cfg := benchConfig()
	for range b.N {
		s, perNode, perEdge := buildState(b, cfg)
		b.ReportMetric(perNode, "bytes/node")
		b.ReportMetric(perEdge, "bytes/edge")
		b.ReportMetric(float64(s.Bytes())/(1<<20), "state-MiB")
		runtime.KeepAlive(s)
	}
}

// BenchmarkCodec times Freeze (what a grain blocks for when it snapshots),
// the encoding of the frozen state (on the grain's snapshot goroutine) and
// Unmarshal (with every check) of the whole state.
func BenchmarkCodec(b *testing.B) {
	cfg := benchConfig()
	s, _, _ := buildState(b, cfg)
	w := aggregate.NewWindow(10_000)
	for i := range 10_000 {
		w.Put(&cairnv1.CommandReply{CommandId: fmt.Sprint("cmd-", i), HeadCid: "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", Seq: uint64(i), Position: uint64(i), TxId: "tx"})
	}
	b.ResetTimer()
	var freeze, enc, dec time.Duration
	var size int
	for i := range b.N {
		start := time.Now()
		f, err := s.Freeze()
		freeze += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		// The next write after a freeze copies the page it touches.
		if err := aggregate.Apply(s, &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: fmt.Sprint("frozen-", i)}}}); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		data, err := f.Marshal(w.List())
		enc += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
		start = time.Now()
		if _, _, err := aggregate.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
		dec += time.Since(start)
	}
	b.ReportMetric(float64(freeze.Microseconds())/1000/float64(b.N), "freeze-ms")
	b.ReportMetric(float64(enc.Milliseconds())/float64(b.N), "encode-ms")
	b.ReportMetric(float64(dec.Milliseconds())/float64(b.N), "decode-ms")
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}

// BenchmarkDecideAddEdge decides and commits one single-event command at a
// time on a loaded state, as a grain does for one caller: the core's CPU
// and allocations per command.
func BenchmarkDecideAddEdge(b *testing.B) {
	cfg := graphgen.Big().Scaled(10_000)
	s, _, _ := buildState(b, cfg)
	envs := make([]*cairnv1.CommandEnvelope, 4096)
	for i := range envs {
		envs[i] = cmdtest.Envelope(cfg.Graph, fmt.Sprint("c", i), cmdtest.Connect(fmt.Sprint("x", i), graphgen.NodeID(i%cfg.Nodes), graphgen.NodeID((i*7)%cfg.Nodes)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		env := envs[i%len(envs)]
		if i%len(envs) == 0 && i > 0 {
			b.StopTimer()
			for _, e := range envs {
				if _, err := aggregate.DecideEnvelope(s, cmdtest.Envelope(cfg.Graph, "rm", cmdtest.Disconnect(e.GetCommands()[0].GetConnectNodes().GetEdgeId()))); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
		if _, err := aggregate.DecideEnvelope(s, env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContentHash is what the idempotency check adds to each accepted
// envelope (and to each retry of a remembered id), beside deciding it: an
// envelope of 1 and of 1,000 commands (nodes with a component, edges), with
// the decision of the same envelope on a fresh state as the baseline.
func BenchmarkContentHash(b *testing.B) {
	for _, n := range []int{1, 1000} {
		var cmds []*cairnv1.Command
		for i := range n {
			if i%2 == 0 {
				cmds = append(cmds, cmdtest.AddNode(fmt.Sprint("node-", i), cmdtest.Comp("version", "13.2.0-1ubuntu1")))
			} else {
				cmds = append(cmds, cmdtest.Connect(fmt.Sprint("edge-", i), fmt.Sprint("node-", i-1), fmt.Sprint("node-", i-1)))
			}
		}
		env := cmdtest.Envelope("g", "c", cmds...)
		b.Run(fmt.Sprintf("hash/commands=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				aggregate.ContentHash(env)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/command")
		})
		b.Run(fmt.Sprintf("decide/commands=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				s := aggregate.NewState("g")
				cmdtest.MustDecide(b, s, cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
				b.StartTimer()
				if _, err := aggregate.DecideEnvelope(s, env); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/command")
		})
	}
}

// BenchmarkCoreAddNode is a grain's step for one caller on one graph: one
// single-AddNode envelope proposed, its batch acknowledged as stored, its
// answer taken. It counts what the core allocates per command (the
// envelopes are built before the timer starts).
func BenchmarkCoreAddNode(b *testing.B) {
	c, err := aggregate.New[int](aggregate.NewState("g"), aggregate.NewWindow(10_000), aggregate.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	heads := []aggregate.Head{{N: 1, CID: "cid"}}
	step := func(env *cairnv1.CommandEnvelope, seq uint64) {
		rd := c.Propose(env, 0)
		if rd.Append == nil {
			b.Fatalf("%s: no batch to append (answers %v)", env.GetCommandId(), rd.Answers)
		}
		heads[0].N = uint64(len(rd.Append.Events)) + seq
		rd = c.Appended(aggregate.AppendResult{Seq: seq, TxID: "tx", Heads: heads})
		if len(rd.Answers) != 1 || rd.Answers[0].Reply.GetError() != nil {
			b.Fatalf("%s: answers %v", env.GetCommandId(), rd.Answers)
		}
	}
	step(cmdtest.Envelope("g", "create", cmdtest.CreateGraph()), 1)
	envs := make([]*cairnv1.CommandEnvelope, b.N)
	for i := range envs {
		envs[i] = cmdtest.Envelope("g", fmt.Sprint("c", i), cmdtest.AddNode(fmt.Sprint("n", i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i, env := range envs {
		step(env, uint64(i)+2)
	}
}
