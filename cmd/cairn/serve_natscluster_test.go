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
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/internal/testbin"
	"github.com/cairn-graph/cairn/internal/tlstest"
)

// flagRefusal is a set of flags a command must refuse with a usage error
// containing want.
type flagRefusal struct {
	name string
	args []string
	want string
}

// nodeFlagRefusals are the refusals of the embedded NATS node's cluster
// flags, which serve and nats-node check with the same code.
func nodeFlagRefusals(pki tlstest.PKI) []flagRefusal {
	return []flagRefusal{
		{"routes without a listen", []string{"--nats-routes", "nats-route://127.0.0.1:6223"}, "--nats-routes and --nats-cluster-name need --nats-cluster-listen"},
		{"listen without a name", []string{"--nats-cluster-listen", "127.0.0.1:6222", "--nats-routes", "nats-route://127.0.0.1:6223"}, "--nats-cluster-listen needs --name"},
		{"bad route", []string{"--name", "a", "--nats-cluster-listen", "127.0.0.1:6222", "--nats-routes", "http://127.0.0.1:6223"}, `--nats-routes: route "http://127.0.0.1:6223": want nats-route://host:port`},
		{"no routes", []string{"--name", "a", "--nats-cluster-listen", "127.0.0.1:6222"}, "needs routes to the other nodes"},
		{"beyond loopback without TLS", []string{"--name", "a", "--nats-cluster-listen", "0.0.0.0:6222", "--nats-routes", "nats-route://10.0.0.2:6222"},
			"routes there need mutual TLS"},
		{"--insecure does not lift it", []string{"--name", "a", "--nats-cluster-listen", "127.0.0.1:6222", "--nats-routes", "nats-route://nats-2:6222", "--insecure"},
			"give --tls-cert, --tls-key and --tls-ca"},
		{"TLS without a CA", []string{"--name", "a", "--nats-cluster-listen", "0.0.0.0:6222", "--nats-routes", "nats-route://10.0.0.2:6222",
			"--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--insecure"}, "give --tls-ca"},
	}
}

// testFlagRefusals runs command with each refusal's flags after base.
func testFlagRefusals(t *testing.T, command string, base []string, cases []flagRefusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, append(append([]string{command}, base...), tc.args...)...)
			if r.code() != exitUsage || !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("exit %d, err %v; want a usage error containing %q", r.code(), r.err, tc.want)
			}
		})
	}
}

// serve refuses NATS cluster flags that cannot work, each by name, before
// it starts anything.
func TestServeNATSClusterFlags(t *testing.T) {
	testFlagRefusals(t, "serve", []string{"--data", t.TempDir()}, append(nodeFlagRefusals(tlstest.New(t)),
		flagRefusal{"replicas without a cluster", []string{"--replicas", "3"}, "--replicas 3 needs a NATS cluster, and the embedded server is a single node"},
		flagRefusal{"more replicas than nodes", []string{"--replicas", "3", "--name", "a", "--nats-cluster-listen", "127.0.0.1:6222", "--nats-routes", "nats-route://127.0.0.1:6223"},
			"3 replicas need 3 NATS nodes, and this node knows of 2"},
		flagRefusal{"external NATS with cluster flags", []string{"--nats", "nats://127.0.0.1:4222", "--name", "a"}, "configure the embedded server"},
	))
}

// Three cairn serve processes with --name, --nats-cluster-listen,
// --nats-routes, --replicas 3 and --sync-always, started at once as the
// README starts them, form one NATS cluster: each gets ready, the event
// stream and the object store have 3 replicas over the three nodes, and a
// command sent to one node is answered. (Processes, not serves in this
// one: protoactor sets gRPC's process-wide logger as each member starts.)
func TestServeNATSCluster(t *testing.T) {
	bin := testbin.Cairn(t)
	start := time.Now()
	dir := t.TempDir()
	key := filepath.Join(dir, "cluster.nk")
	mustRun(t, "keys", "new", "--out", key)
	const n = 3
	client, route := make([]string, n), make([]string, n)
	for i := range n {
		client[i], route[i] = testbin.FreeAddr(t), testbin.FreeAddr(t)
	}
	type started struct {
		i     int
		ready readyLine
		err   error
	}
	readies := make(chan started, n)
	type proc struct {
		cmd    *exec.Cmd
		exited chan error
		stderr *lockedBuffer
	}
	var procs []proc
	// The test is about forming the cluster, not draining it: the nodes
	// are killed. (A whole cluster stopped at once leaves the last node to
	// drain without a quorum: its last snapshot writes wait out their
	// timeout, and so may its drain; see the README.)
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
		}
		for i, p := range procs {
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				t.Errorf("serve n%d did not exit within 10s of SIGKILL", i)
			}
			if t.Failed() {
				t.Logf("serve n%d stderr:\n%s", i, p.stderr.String())
			}
		}
	})
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, "nats-route://"+route[j])
			}
		}
		cmd := exec.Command(bin, "serve", "--data", filepath.Join(dir, fmt.Sprint("n", i)), "--name", fmt.Sprint("n", i),
			"--nats-listen", client[i], "--nats-cluster-listen", route[i], "--nats-routes", strings.Join(routes, ","),
			"--replicas", "3", "--sync-always", "--signing-key", key, "--json", "--log-level", "warn")
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() {
			s := started{i: i}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err == nil {
				err = json.Unmarshal([]byte(line), &s.ready)
			} else {
				err = fmt.Errorf("no ready line: %w", err)
			}
			s.err = err
			readies <- s
			_, _ = io.Copy(io.Discard, stdout)
			exited <- cmd.Wait()
		}()
		procs = append(procs, proc{cmd: cmd, exited: exited, stderr: &stderr})
	}
	deadline := time.After(60 * time.Second)
	for range n {
		select {
		case s := <-readies:
			if s.err != nil {
				t.Fatalf("serve n%d: %v", s.i, s.err)
			}
			t.Logf("n%d ready after %s", s.i, time.Since(start).Round(time.Millisecond))
			if s.ready.NATS != "nats://"+client[s.i] {
				t.Errorf("serve n%d ready on %s, want nats://%s", s.i, s.ready.NATS, client[s.i])
			}
		case <-deadline:
			t.Fatal("the three nodes were not ready within 60s")
		}
	}
	nc, err := nats.Connect("nats://" + client[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, stream := range []string{"event-store", "OBJ_object-store"} {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		info := st.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas, cluster %+v; want 3 replicas, a leader and 2 followers", stream, info.Config.Replicas, info.Cluster)
		}
	}
	mustRun(t, "graph", "create", "g", "--server", "nats://"+client[1])
}
