package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/internal/testbin"
	"github.com/cairn-graph/cairn/internal/tlstest"
)

// nats-node refuses what serve refuses for its embedded server, each by
// name, before it starts anything.
func TestNATSNodeFlags(t *testing.T) {
	testFlagRefusals(t, "nats-node", []string{"--data", t.TempDir()}, append(nodeFlagRefusals(tlstest.New(t)),
		flagRefusal{"clients beyond loopback without --auth", []string{"--nats-listen", "0.0.0.0:0"}, "reaches beyond this machine, and without --auth"},
		flagRefusal{"a client login", []string{"--user", "u", "--password", "p"}, "a node's users come from --auth FILE"},
		flagRefusal{"no listener", []string{"--nats-listen", "none"}, "--nats-listen none"},
		flagRefusal{"bad log level", []string{"--log-level", "loud"}, "--log-level"},
		flagRefusal{"bad log format", []string{"--log-format", "xml"}, "--log-format"},
	))
}

// natsNodeProc is a child cairn nats-node or serve.
type natsNodeProc struct {
	cmd    *exec.Cmd
	ready  chan json.RawMessage // the ready line, or closed without one
	exited chan struct{}        // closed once it exited, with err
	err    error
	stderr *lockedBuffer
}

func startNATSNodeProc(t *testing.T, bin string, args ...string) *natsNodeProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	p := &natsNodeProc{cmd: cmd, ready: make(chan json.RawMessage, 1), exited: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil {
			p.ready <- json.RawMessage(line)
		}
		close(p.ready)
		_, _ = io.Copy(io.Discard, stdout)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not exit within 10s of SIGKILL", args[0])
		}
		if t.Failed() {
			t.Logf("%v stderr:\n%s", args, p.stderr.String())
		}
	})
	return p
}

func (p *natsNodeProc) waitReady(t *testing.T, v any) {
	t.Helper()
	select {
	case line, ok := <-p.ready:
		if !ok {
			t.Fatalf("%v exited without a ready line:\n%s", p.cmd.Args, p.stderr.String())
		}
		if err := json.Unmarshal(line, v); err != nil {
			t.Fatalf("%v ready line %q: %v", p.cmd.Args, line, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%v not ready within 60s:\n%s", p.cmd.Args, p.stderr.String())
	}
}

// Three cairn nats-node processes make a NATS JetStream cluster that a
// cairn serve --nats URL,URL,URL --cluster member runs on (issue 13 point
// 2, "an external NATS cluster"): the event stream, the object store and
// the membership bucket get 3 replicas over the three nodes, and the
// member keeps taking commands while each node in turn is killed with
// SIGKILL and restarted (so the node it is connected to dies at some
// point and it reconnects to another). SIGTERM stops a node cleanly.
func TestNATSNodeCluster(t *testing.T) {
	bin := testbin.Cairn(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "cluster.nk")
	mustRun(t, "keys", "new", "--out", key)
	const n = 3
	client, route, routes, urls := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i := range n {
		client[i], route[i] = testbin.FreeAddr(t), testbin.FreeAddr(t)
		routes[i], urls[i] = "nats-route://"+route[i], "nats://"+client[i]
	}
	nodeArgs := func(i int) []string {
		return []string{"nats-node", "--data", filepath.Join(dir, fmt.Sprint("n", i)), "--name", fmt.Sprint("n", i), "--nats-listen", client[i],
			"--nats-cluster-listen", route[i], "--nats-routes", strings.Join(routes, ","), "--sync-always", "--json"}
	}
	type nodeReady struct{ NATS, Route, Name, Data string }
	nodes := make([]*natsNodeProc, n)
	for i := range n {
		nodes[i] = startNATSNodeProc(t, bin, nodeArgs(i)...)
	}
	for i, p := range nodes {
		var r nodeReady
		p.waitReady(t, &r)
		if r.NATS != urls[i] || r.Route != routes[i] || r.Name != fmt.Sprint("n", i) || r.Data != filepath.Join(dir, fmt.Sprint("n", i)) {
			t.Errorf("node %d ready line %+v; want nats %s, route %s, name n%d", i, r, urls[i], routes[i], i)
		}
	}
	member := startNATSNodeProc(t, bin, "serve", "--nats", strings.Join(urls, ","), "--cluster", "ext", "--replicas", "3",
		"--signing-key", key, "--json")
	var mr readyLine
	member.waitReady(t, &mr)

	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, stream := range []string{"event-store", "OBJ_object-store", "KV_cairn-members-ext"} {
		// The member joins the cluster (and makes the membership
		// bucket) after its ready line, and a new stream elects its
		// leader after it is made.
		// Each look gets its own 3 s: a stream info request that
		// reaches a stream still electing its leader may go
		// unanswered, and one look must not spend the whole wait.
		led := func(st jetstream.Stream) bool { c := st.CachedInfo().Cluster; return c != nil && c.Leader != "" }
		look := func() (jetstream.Stream, error) {
			lctx, lcancel := context.WithTimeout(ctx, 3*time.Second)
			defer lcancel()
			return js.Stream(lctx, stream)
		}
		st, err := look()
		for ; (err != nil || !led(st)) && ctx.Err() == nil; st, err = look() {
			time.Sleep(100 * time.Millisecond) // polling another process: nothing to wait on
		}
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		info := st.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas, cluster %+v; want 3 replicas, a leader and 2 followers", stream, info.Config.Replicas, info.Cluster)
		}
	}
	mustRun(t, "graph", "create", "g", "--server", urls[0])
	// A command, retried with its id until answered: while the member
	// reconnects the request may find no responder or no answer.
	var seq string
	command := func(via, node string) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			r := runCLI(t, "node", "add", "g", node, "--server", via, "--command-id", "add-"+node, "--timeout", "5s", "--json")
			var rep struct {
				Seq json.Number `json:"seq"`
			}
			if r.err == nil && json.Unmarshal([]byte(r.stdout), &rep) == nil && rep.Seq != "" {
				seq = rep.Seq.String()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node add %s through %s: %v\n%s", node, via, r.err, r.stderr)
			}
			time.Sleep(200 * time.Millisecond) // retrying a child's answer: nothing to wait on
		}
	}
	for i := range n {
		_ = nodes[i].cmd.Process.Kill()
		<-nodes[i].exited
		command(urls[(i+1)%n], fmt.Sprint("after-kill-", i))
		nodes[i] = startNATSNodeProc(t, bin, nodeArgs(i)...)
		var r nodeReady
		nodes[i].waitReady(t, &r)
	}
	if out := mustRun(t, "query", "stats", "g", "--server", urls[2], "--min-seq", seq, "--json"); !strings.Contains(out, fmt.Sprintf(`"nodes":"%d"`, n)) {
		t.Errorf("stats after %d adds: %s", n, out)
	}
	// SIGTERM: a clean stop.
	_ = nodes[0].cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nodes[0].exited:
		if err := nodes[0].err; err != nil {
			t.Errorf("nats-node after SIGTERM: %v\n%s", err, nodes[0].stderr.String())
		}
		if !strings.Contains(nodes[0].stderr.String(), "msg=stopped") {
			t.Errorf("nats-node log after SIGTERM has no stopped line:\n%s", nodes[0].stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nats-node did not stop within 30s of SIGTERM")
	}
}
