package natstest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/persistence"

	"github.com/cairn-graph/cairn/internal/testbin"
)

// Cluster is n embedded nats-server nodes with JetStream, routed to each
// other over 127.0.0.1, each with its files in a directory of the test's.
// Nodes run in the test's process (StartCluster) or, so that a test can
// kill one with SIGKILL, each in a process of its own (AsProcesses).
// Stopped, killed and restarted nodes keep their ports and files.
//
//	c := natstest.StartCluster(t, 3, persistence.ServerConfig{SyncAlways: true})
//	eng := open(t, c.URLs())                    // an external NATS to the engine
//	leader := c.Leader(t, "event-store")        // the stream leader's index
//	c.Kill(leader)                              // AsProcesses: kill -9
//	c.Restart(leader)
type Cluster struct {
	t     testing.TB
	cfg   persistence.ServerConfig
	procs bool
	nodes []*Node
}

// Node is one node of a Cluster.
type Node struct {
	// Name is the node's server name, "n0", "n1", ….
	Name string
	// ClientURL is where clients connect, ClusterURL where routes do
	// (nats-route://127.0.0.1:port).
	ClientURL, ClusterURL string
	// DataDir holds its JetStream files.
	DataDir string

	srv *persistence.Server // in-process node; nil when stopped
	cmd *exec.Cmd           // process node; nil when stopped
}

// Running reports whether the node is up.
func (n *Node) Running() bool { return n.srv != nil || n.cmd != nil }

// ClusterOption changes how StartCluster runs its nodes.
type ClusterOption func(*Cluster)

// AsProcesses runs each node in a process of its own, the test binary
// started again, so that Kill can SIGKILL it. The test package's TestMain
// must call RunNodeIfChild first. Process nodes take cfg's SyncAlways,
// MaxPayload and Cluster.Name only; users and TLS are for in-process
// nodes.
func AsProcesses() ClusterOption { return func(c *Cluster) { c.procs = true } }

// StartCluster starts an n-node cluster for t and stops it in t.Cleanup.
// cfg is every node's template: each gets its own data directory, a
// random client port and a route port on 127.0.0.1 (picked free before
// the nodes start), the name "n<i>" and routes to every other node;
// cfg.Cluster.Name names the cluster (default "cairn"). It returns once
// JetStream can place a stream with n replicas, within 30 seconds.
func StartCluster(t testing.TB, n int, cfg persistence.ServerConfig, opts ...ClusterOption) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("StartCluster: %d nodes", n)
	}
	c := &Cluster{t: t, cfg: cfg}
	for _, o := range opts {
		o(c)
	}
	if c.procs && (len(cfg.Users) > 0 || len(cfg.NkeyUsers) > 0 || cfg.TLS != nil || cfg.Cluster.TLS != nil) {
		t.Fatal("StartCluster: process nodes take no users or TLS")
	}
	// nats-server starts clustered JetStream only with routes configured,
	// so every node gets routes to all: their route ports are picked
	// first.
	for i := range n {
		c.nodes = append(c.nodes, &Node{Name: fmt.Sprintf("n%d", i), DataDir: t.TempDir(), ClusterURL: "nats-route://" + testbin.FreeAddr(t)})
	}
	// After t.TempDir, so that the nodes stop before their directories
	// are removed (cleanups run last first).
	t.Cleanup(c.stopAll)
	for i := range n {
		c.start(i, "127.0.0.1:0", strings.TrimPrefix(c.nodes[i].ClusterURL, "nats-route://"), c.routes(i))
	}
	c.WaitReady(n, 30*time.Second)
	return c
}

// Nodes returns the cluster's nodes, by index.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// URLs returns the client URLs of every node, comma-separated, for
// nats.Connect (and cairn.Config.NATSURL): a client whose node goes down
// reconnects to another.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.ClientURL
	}
	return strings.Join(urls, ",")
}

// Conn opens a client connection to the cluster (any node), closed in
// t.Cleanup.
func (c *Cluster) Conn() *nats.Conn {
	c.t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		c.t.Fatalf("connect to the cluster: %v", err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// Leader returns the index of the node that leads stream, waiting up to
// 20 seconds for it to have one.
func (c *Cluster) Leader(stream string) int {
	c.t.Helper()
	js, err := jetstream.New(c.Conn())
	if err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := streamInfo(ctx, js, stream)
		cancel()
		if err == nil && info.Cluster != nil {
			for i, n := range c.nodes {
				if n.Name == info.Cluster.Leader && n.Running() {
					return i
				}
			}
			err = fmt.Errorf("leader %q is not a running node", info.Cluster.Leader)
		}
		last = err
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
	c.t.Fatalf("stream %s has no leader within 20s: %v", stream, last)
	return -1
}

func streamInfo(ctx context.Context, js jetstream.JetStream, stream string) (*jetstream.StreamInfo, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}

// Stop stops node i gracefully: it hands the leadership of its Raft
// groups over before it goes (SIGTERM for a process node).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if err := c.stop(i, false); err != nil {
		c.t.Fatalf("stop %s: %v", c.nodes[i].Name, err)
	}
}

// Kill kills node i's process with SIGKILL: no hand-over, no flush. It
// needs AsProcesses.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if !c.procs {
		c.t.Fatal("Kill needs a cluster started AsProcesses (an in-process server can only shut down gracefully)")
	}
	if err := c.stop(i, true); err != nil {
		c.t.Fatalf("kill %s: %v", c.nodes[i].Name, err)
	}
}

// Restart starts a stopped node i again on its ports and files, with
// routes to every other node.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	n := c.nodes[i]
	if n.Running() {
		c.t.Fatalf("restart %s: it is running", n.Name)
	}
	c.start(i, strings.TrimPrefix(n.ClientURL, "nats://"), strings.TrimPrefix(n.ClusterURL, "nats-route://"), c.routes(i))
}

// routes returns the route URLs of every node but i.
func (c *Cluster) routes(i int) []string {
	var routes []string
	for j, o := range c.nodes {
		if j != i {
			routes = append(routes, o.ClusterURL)
		}
	}
	return routes
}

// WaitReady waits until JetStream can place a stream with replicas
// replicas (a meta leader is elected and as many nodes are up), failing t
// after within.
func (c *Cluster) WaitReady(replicas int, within time.Duration) {
	c.t.Helper()
	js, err := jetstream.New(c.Conn())
	if err != nil {
		c.t.Fatal(err)
	}
	name := fmt.Sprintf("natstest-ready-%d", time.Now().UnixNano())
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}, Storage: jetstream.MemoryStorage, Replicas: replicas})
		if err == nil {
			err = js.DeleteStream(ctx, name)
			cancel()
			if err == nil {
				return
			}
		}
		cancel()
		last = err
		time.Sleep(100 * time.Millisecond) // polling, bounded by deadline
	}
	c.t.Fatalf("cluster not ready for %d replicas within %s: %v", replicas, within, last)
}

// start starts node i listening on clientAddr and clusterAddr.
func (c *Cluster) start(i int, clientAddr, clusterAddr string, routes []string) {
	c.t.Helper()
	n := c.nodes[i]
	cfg := c.cfg
	cfg.DataDir, cfg.Listen, cfg.ServerName = n.DataDir, clientAddr, n.Name
	cfg.Cluster.Listen, cfg.Cluster.Routes = clusterAddr, routes
	if cfg.ReadyTimeout == 0 {
		// A node of a test cluster on a busy 2-core machine (make test
		// runs packages side by side) has been seen to take over the
		// default 10 s to listen.
		cfg.ReadyTimeout = 30 * time.Second
	}
	if !c.procs {
		srv, err := persistence.StartServer(cfg)
		if err != nil {
			c.t.Fatalf("start %s: %v", n.Name, err)
		}
		n.srv, n.ClientURL, n.ClusterURL = srv, srv.ClientURL(), srv.ClusterURL()
		return
	}
	spec, err := json.Marshal(nodeSpec{DataDir: cfg.DataDir, Listen: cfg.Listen, Name: cfg.ServerName, ClusterName: cfg.Cluster.Name,
		ClusterListen: clusterAddr, Routes: routes, SyncAlways: cfg.SyncAlways, MaxPayload: cfg.MaxPayload})
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.Name, err)
	}
	_ = stdin // held open: the node exits when the test's process does
	n.cmd = cmd
	ready := make(chan nodeReady, 1)
	go func() {
		var r nodeReady
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil {
			err = json.Unmarshal([]byte(line), &r)
		}
		if err != nil {
			r.Err = fmt.Sprintf("read ready line: %v", err)
		}
		ready <- r
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case r := <-ready:
		if r.Err != "" {
			_ = c.stop(i, true)
			c.t.Fatalf("start %s: %s", n.Name, r.Err)
		}
		n.ClientURL, n.ClusterURL = r.ClientURL, r.ClusterURL
	case <-time.After(30 * time.Second):
		_ = c.stop(i, true)
		c.t.Fatalf("start %s: not ready within 30s", n.Name)
	}
}

// stop stops node i, with SIGKILL when kill is set.
func (c *Cluster) stop(i int, kill bool) error {
	n := c.nodes[i]
	switch {
	case n.srv != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := n.srv.Shutdown(ctx)
		n.srv = nil
		return err
	case n.cmd != nil:
		sig := syscall.SIGTERM
		if kill {
			sig = syscall.SIGKILL
		}
		err := n.cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- n.cmd.Wait() }()
		select {
		case werr := <-done:
			var exit *exec.ExitError
			if kill && errors.As(werr, &exit) {
				werr = nil // killed, as asked
			}
			err = errors.Join(err, werr)
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			err = errors.Join(err, errors.New("did not stop within 10s; killed"), <-done)
		}
		n.cmd = nil
		return err
	}
	return nil
}

func (c *Cluster) stopAll() {
	for i := range c.nodes {
		if err := c.stop(i, false); err != nil {
			c.t.Errorf("stop %s: %v", c.nodes[i].Name, err)
		}
	}
}

// nodeEnv carries a process node's nodeSpec.
const nodeEnv = "CAIRN_NATSTEST_NODE"

type nodeSpec struct {
	DataDir, Listen, Name, ClusterName, ClusterListen string
	Routes                                            []string
	SyncAlways                                        bool
	MaxPayload                                        int32
}

type nodeReady struct {
	ClientURL, ClusterURL, Err string
}

// RunNodeIfChild runs a process node of a Cluster started AsProcesses and
// exits, when this process is one; otherwise it returns at once. Call it
// first in TestMain:
//
//	func TestMain(m *testing.M) {
//		natstest.RunNodeIfChild()
//		os.Exit(m.Run())
//	}
//
// The node prints its URLs as one JSON line on stdout, then runs until
// SIGTERM (a graceful shutdown), SIGKILL, or the end of its stdin (the
// test's process ended).
func RunNodeIfChild() {
	raw, ok := os.LookupEnv(nodeEnv)
	if !ok {
		return
	}
	os.Exit(runNode(raw))
}

func runNode(raw string) int {
	out := json.NewEncoder(os.Stdout)
	var spec nodeSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		_ = out.Encode(nodeReady{Err: err.Error()})
		return 2
	}
	srv, err := persistence.StartServer(persistence.ServerConfig{DataDir: spec.DataDir, Listen: spec.Listen, ServerName: spec.Name,
		SyncAlways: spec.SyncAlways, MaxPayload: spec.MaxPayload,
		Cluster: persistence.ServerCluster{Name: spec.ClusterName, Listen: spec.ClusterListen, Routes: spec.Routes}})
	if err != nil {
		_ = out.Encode(nodeReady{Err: err.Error()})
		return 2
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	_ = out.Encode(nodeReady{ClientURL: srv.ClientURL(), ClusterURL: srv.ClusterURL()})
	select {
	case <-sigs:
	case <-eof:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return 1
	}
	return 0
}
