package cairn_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/actors"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/testproc"
	"github.com/cairn-graph/cairn/internal/tracing/otlp"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// The engines of a cluster test run in processes of their own, children of
// the test binary: protoactor's remote sets grpc's global logger each time
// a member starts, a data race (under -race) with the grpc logging of the
// members already running in the same process.

const engineMemberEnv = "CAIRN_TEST_ENGINE_MEMBER"

// TestMain runs a child of this test binary when one is asked for: a
// natstest cluster node started AsProcesses, or an engine member.
func TestMain(m *testing.M) {
	natstest.RunNodeIfChild()
	testproc.ServeIfChild(engineMemberEnv, "engine member", runEngineMember)
	os.Exit(m.Run())
}

// engineReply is a child's answer to one command.
type engineReply struct {
	ID    string `json:"id,omitempty"`
	N     uint64 `json:"n,omitempty"`
	Error string `json:"error,omitempty"`
}

// runEngineMember is a child: an engine on the NATS at url in the cluster
// "engines", serving commands on in until it closes or "close". Its arg
// is "URL", or "URL OTLP INSTANCE" for one that exports its spans to the
// OTLP endpoint OTLP as service.instance.id INSTANCE. Commands:
//
//	create GRAPH ID | add GRAPH ID NODE   execute; N is the reply's seq
//	members | active | held              N: members seen, grains active here,
//	                                      read models held here
//	nodes GRAPH MINSEQ                    N: the graph's nodes, queried here
//	owns GRAPH | repair GRAPH SEQ         N: 1 when this member owns it, when
//	                                      the repair (asked here) resumed it
//	addpkg GRAPH ID NODE                  add a node in category pkg
//	graphs MINSEQ | findpkg MINSEQ        N: graphs listed, pkg nodes found
//	                                      across graphs, asked here (graphs_cluster_test.go)
func runEngineMember(arg string, in io.Reader, out io.Writer) error {
	ctx := context.Background()
	url, traced, _ := strings.Cut(arg, " ")
	cfg := cairn.DefaultConfig("")
	cfg.NATSURL, cfg.Gateway = url, false
	cfg.Cluster.Name, cfg.Cluster.Membership = "engines", cairncluster.MembershipNATSKV
	stopTracing := func(context.Context) error { return nil }
	if traced != "" {
		endpoint, instance, _ := strings.Cut(traced, " ")
		tp, stop, err := otlp.Setup(ctx, otlp.Config{Endpoint: endpoint, Sample: 1, Instance: instance})
		if err != nil {
			return err
		}
		cfg.Tracing.Provider, stopTracing = tp, stop
	}
	eng, err := cairn.Open(ctx, cfg)
	if err != nil {
		return errors.Join(err, stopTracing(ctx))
	}
	closeEngine := func() error {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		// The spans are flushed once the engine has made its last.
		return errors.Join(eng.Close(cctx), stopTracing(cctx))
	}
	m := eng.Member()
	if m == nil {
		return fmt.Errorf("cluster member did not start: %w", closeEngine())
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(engineReply{ID: m.ID()}); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := append(strings.Fields(sc.Text()), "", "", "", "")
		var r engineReply
		var cmd *cairnv1.Command
		switch f[0] {
		case "create":
			cmd = &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "deps"}}}
		case "add":
			cmd = &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: f[3]}}}
		case "addpkg":
			cmd = &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: f[3], Categories: []string{"pkg"}}}}
		case "graphs", "findpkg":
			r.N, r.Error = countAcross(ctx, eng, f[0], f[1])
		case "members":
			r.N = uint64(len(m.Lookup().Members()))
		case "active":
			r.N = uint64(eng.Grains().Active())
		case "owns":
			if id, _, ok := m.Lookup().Owner(f[1], actors.GraphKind); ok && id == m.ID() {
				r.N = 1
			}
		case "repair":
			seq, _ := strconv.ParseUint(f[2], 10, 64)
			res, err := eng.Repair(ctx, f[1], seq)
			if err != nil {
				r.Error = err.Error()
			} else if res.Resumed {
				r.N = 1
			}
		case "held":
			if ph := eng.Projections().Health().Partition; ph != nil {
				r.N = uint64(ph.Graphs)
			}
		case "nodes":
			minSeq, _ := strconv.ParseUint(f[2], 10, 64)
			rep, err := eng.Query(ctx, &cairnv1.QueryRequest{GraphId: f[1], MinSeq: minSeq, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
			if err != nil {
				r.Error = err.Error()
			}
			r.N = rep.GetStats().GetNodes()
		case "close":
			if err := closeEngine(); err != nil {
				r.Error = err.Error()
			}
			return enc.Encode(r)
		default:
			r.Error = "unknown command " + f[0]
		}
		if cmd != nil {
			rep, err := eng.Execute(ctx, env(f[1], f[2], cmd))
			if err != nil {
				r.Error = err.Error()
			}
			r.N = rep.GetSeq()
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return closeEngine()
}

// engineProc is an engine in a child process.
type engineProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *json.Decoder
	id     string
	closed bool
}

// startEngineProc starts an engine member in a child; arg is
// runEngineMember's.
func startEngineProc(t *testing.T, arg string) *engineProc {
	t.Helper()
	cmd, in, out := testproc.Start(t, engineMemberEnv+"="+arg)
	p := &engineProc{t: t, cmd: cmd, in: in, out: out}
	t.Cleanup(func() {
		if !p.closed {
			_ = p.in.Close()
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil && !p.closed {
				t.Errorf("engine member %s: %v", p.id, err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			t.Errorf("engine member %s did not exit when its stdin closed", p.id)
		}
	})
	var hello engineReply
	if err := p.out.Decode(&hello); err != nil {
		t.Fatalf("engine member did not start: %v", err)
	}
	p.id = hello.ID
	return p
}

func (p *engineProc) call(format string, args ...any) engineReply {
	p.t.Helper()
	return testproc.Call[engineReply](p.t, "engine member "+p.id, p.in, p.out, format, args...)
}

// Three engines joined in one cluster over one NATS (cairn serve
// --cluster), each in a process of its own: commands for 20 graphs sent
// to any of them succeed, the graphs' grains are spread over the members,
// a member that leaves hands its graphs over (grains and read models), and
// a query at any member answers for any graph.
func TestEngineClusterSpreadsGraphs(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	t.Cleanup(func() {
		// Runs once the engines have closed: each member wrote the last
		// round of the read models it held under a series of its own.
		snaps, err := persistence.OpenSnapshots(context.Background(), srv.JetStream(), persistence.DefaultSnapshotConfig())
		if err != nil {
			t.Fatal(err)
		}
		ms, err := snaps.List(context.Background(), persistence.KindManifest, "")
		if err != nil {
			t.Fatal(err)
		}
		series := map[string]bool{}
		for _, m := range ms {
			if _, ok := actors.SeriesMember(m.Graph); !ok {
				t.Errorf("manifest %s is not in a member's series", m.Name)
			}
			series[m.Graph] = true
		}
		if len(series) == 0 {
			t.Errorf("no member wrote a read-model manifest")
		}
	})
	engs := []*engineProc{startEngineProc(t, url), startEngineProc(t, url), startEngineProc(t, url)}
	deadline := time.Now().Add(15 * time.Second)
	for _, e := range engs {
		for e.call("members").N != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("member %s does not see the 3 members", e.id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Queried before it exists: NOT_FOUND, which its owner remembers
	// until the graph's first transaction reaches it.
	if r := engs[1].call("nodes g00 0"); !strings.Contains(r.Error, "NOT_FOUND") {
		t.Fatalf("a graph not created yet: %+v, want NOT_FOUND", r)
	}
	const graphs = 20
	last := make([]uint64, graphs)
	for i := range graphs {
		g := fmt.Sprintf("g%02d", i)
		if r := engs[i%3].call("create %s %s-create", g, g); r.Error != "" {
			t.Fatalf("create %s through member %d: %s", g, i%3, r.Error)
		}
		for _, n := range []string{"n1", "n2"} {
			r := engs[(i+1)%3].call("add %s %s-%s %s", g, g, n, n)
			if r.Error != "" {
				t.Fatalf("add to %s through member %d: %s", g, (i+1)%3, r.Error)
			}
			last[i] = r.N
		}
	}
	var active []uint64
	for _, e := range engs {
		active = append(active, e.call("active").N)
	}
	if active[0] == 0 || active[1] == 0 || active[2] == 0 || active[0]+active[1]+active[2] != graphs {
		t.Fatalf("grains per member %v, want %d spread over all 3", active, graphs)
	}
	t.Logf("graph grains per member: %v", active)

	// A member that leaves gracefully hands its graphs over: commands for
	// every graph go on succeeding through the others.
	if r := engs[2].call("close"); r.Error != "" {
		t.Fatalf("close member 2: %s", r.Error)
	}
	engs[2].closed = true
	engs = engs[:2]
	for i := range graphs {
		g := fmt.Sprintf("g%02d", i)
		r := engs[i%2].call("add %s %s-n3 n3", g, g)
		if r.Error != "" {
			t.Fatalf("add to %s after a member left: %s", g, r.Error)
		}
		last[i] = r.N
	}
	if n := engs[0].call("active").N + engs[1].call("active").N; n != graphs {
		t.Fatalf("%d graph grains on the two members left, want %d", n, graphs)
	}
	// A query at any member reaches the graph's owner, whose projections
	// hold its read model, and waits there for min_seq.
	for i := range graphs {
		g := fmt.Sprintf("g%02d", i)
		for j, e := range engs {
			r := e.call("nodes %s %d", g, last[i])
			if r.Error != "" {
				t.Fatalf("stats of %s at member %d: %s", g, j, r.Error)
			}
			if r.N != 3 {
				t.Fatalf("%s at member %d has %d nodes, want 3", g, j, r.N)
			}
		}
	}
	// A graph bricked by a message that is no transaction is quarantined
	// at its owner; a repair asked at the other member is run there.
	bad := "g05"
	ack, err := srv.JetStream().Publish(context.Background(), "cairn.events."+bad, []byte("junk!"))
	if err != nil {
		t.Fatal(err)
	}
	other := engs[0]
	if other.call("owns %s", bad).N == 1 {
		other = engs[1]
	}
	deadline = time.Now().Add(15 * time.Second)
	for r := other.call("nodes %s %d", bad, ack.Sequence); !strings.Contains(r.Error, "DATA_LOSS"); r = other.call("nodes %s %d", bad, ack.Sequence) {
		if time.Now().After(deadline) {
			t.Fatalf("%s after a junk message, queried at a member that does not own it: %+v, want DATA_LOSS", bad, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := other.call("repair %s %d", bad, ack.Sequence); r.Error != "" || r.N != 1 {
		t.Fatalf("repair of %s asked at a member that does not own it: %+v, want it resumed", bad, r)
	}
	if r := other.call("nodes %s 0", bad); r.Error != "" || r.N != 3 {
		t.Fatalf("%s after its repair: %+v, want its 3 nodes", bad, r)
	}
	// Each member holds the read models of the graphs it owns, the
	// departed member's share adopted by the two left.
	deadline = time.Now().Add(15 * time.Second)
	for {
		var held, active []uint64
		for _, e := range engs {
			held, active = append(held, e.call("held").N), append(active, e.call("active").N)
		}
		if slices.Equal(held, active) {
			t.Logf("read models per member %v", held)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read models per member %v, grains per member %v: want the same", held, active)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
