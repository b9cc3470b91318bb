package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/testbin"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// serve --cluster NAME joins the cluster NAME: its member's key is in the
// bucket cairn-members-NAME while it runs and gone after a drain.
func TestServeCluster(t *testing.T) {
	err := run(context.Background(), []string{"serve", "--cluster", "bad name", "--data", t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--cluster") {
		t.Fatalf("serve --cluster 'bad name': %v", err)
	}

	line, stop := serveInProcess(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--cluster", "c1", "--json", "--log-level", "warn")
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	nc, err := nats.Connect(ready.NATS)
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
	// The member joins in the background after the ready line.
	kv := waitMembers(ctx, t, js, "c1", 1)
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("the member's key: %v, %v", keys, err)
	}
	// A member's health shows the read models it holds.
	for !strings.Contains(mustRun(t, "health", "--server", ready.NATS), "partition: ") {
		if ctx.Err() != nil {
			t.Fatalf("cairn health of a cluster member shows no partition line:\n%s", mustRun(t, "health", "--server", ready.NATS))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Drain with a graceful leave: the key is deleted before the
	// embedded server stops, so read the bucket through a watcher that
	// sees the deletion.
	w, err := kv.Watch(ctx, keys[0], jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	// No w.Stop: it would ask the stopped server to delete the
	// watcher's consumer; closing the connection ends it.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.Updates():
		if e == nil || e.Operation() != jetstream.KeyValueDelete {
			t.Fatalf("after the drain the member's key saw %v, want a delete", e)
		}
	case <-ctx.Done():
		t.Fatal("the member's key was not deleted when serve drained")
	}
}

// clusterProc is a cairn serve --cluster process.
type clusterProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	ready  readyLine // its ready line (metrics: with --metrics-listen)
}

// startClusterServe starts "cairn serve --nats url --cluster name" and
// waits for its ready line.
func startClusterServe(t *testing.T, bin, url, name string, extra ...string) *clusterProc {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	var stderr lockedBuffer
	p := &clusterProc{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve", "--nats", url, "--cluster", name, "--no-signing", "--json", "--log-level", "warn"}, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = pw, &stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("serve stderr:\n%s", stderr.String())
		}
	})
	if err := json.Unmarshal([]byte(readLine(t, pr, p.exited)), &p.ready); err != nil {
		t.Fatalf("ready line: %v", err)
	}
	return p
}

// Three cairn serve --cluster processes on one NATS: commands for 30
// graphs reach them through the "cairn" service; one is killed with
// SIGKILL; the graphs it owned answer again on the survivors once its key
// expired (the default TTL, 3 s), and every command acknowledged before
// the kill is in the stream once.
func TestServeClusterFailover(t *testing.T) {
	bin := testbin.Cairn(t)
	srv := natstest.Start(t)
	url := srv.ClientURL()
	var procs []*clusterProc
	for range 3 {
		procs = append(procs, startClusterServe(t, bin, url, "f", "--metrics-listen", "127.0.0.1:0"))
	}
	nc := srv.Conn()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitMembers(ctx, t, js, "f", 3)
	for _, p := range procs {
		waitMetric(t, p.ready.Metrics, "cairn_cluster_members", func(v float64) bool { return v == 3 })
	}
	// send sends one envelope and returns the reply, or an error for a
	// refusal or no answer.
	send := func(graph, id string, cmd *cairnv1.Command) error {
		data, err := proto.Marshal(&cairnv1.CommandEnvelope{GraphId: graph, CommandId: id, Commands: []*cairnv1.Command{cmd}})
		if err != nil {
			return err
		}
		msg, err := nc.Request(api.CommandSubjectFor(graph), data, 500*time.Millisecond)
		if err != nil {
			return err
		}
		var rep cairnv1.CommandReply
		if err := proto.Unmarshal(msg.Data, &rep); err != nil {
			return err
		}
		if e := rep.GetError(); e != nil {
			return fmt.Errorf("%s: %s", e.GetCode(), e.GetMessage())
		}
		return nil
	}
	// until retries send (same command id: never applied twice) until it
	// succeeds, and returns when it did.
	until := func(graph, id string, cmd *cairnv1.Command) time.Time {
		for {
			err := send(graph, id, cmd)
			if err == nil {
				return time.Now()
			}
			if ctx.Err() != nil {
				t.Errorf("%s %s: %v", graph, id, err)
				return time.Now()
			}
			if os.Getenv("CLUSTER_DEBUG") != "" {
				t.Logf("%s %s: %v", graph, id, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	const graphs = 30
	create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "deps"}}}
	add := func(n string) *cairnv1.Command {
		return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: n}}}
	}
	for i := range graphs {
		g := fmt.Sprintf("g%02d", i)
		until(g, g+"-create", create)
		until(g, g+"-before", add("before"))
	}

	killed := time.Now()
	if err := procs[2].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	back := make([]time.Duration, graphs)
	var wg sync.WaitGroup
	for i := range graphs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := fmt.Sprintf("g%02d", i)
			back[i] = until(g, g+"-after", add("after")).Sub(killed)
		}()
	}
	wg.Wait()
	slices.Sort(back)
	// The killed member's graphs answer once its key expired: 2 to 3 s
	// after the kill (its last heartbeat was up to a second before it).
	slow := slices.IndexFunc(back, func(d time.Duration) bool { return d > time.Second })
	if slow < 0 {
		t.Fatalf("every graph answered within a second of the kill (%v): the killed member owned none?", back)
	}
	// The survivors' metrics: two members, every command after the kill
	// counted where it arrived, the killed member's read models adopted.
	var after, adopted float64
	for _, p := range procs[:2] {
		waitMetric(t, p.ready.Metrics, "cairn_cluster_members", func(v float64) bool { return v == 2 })
		after += scrape(t, p.ready.Metrics)["cairn_commands_total{code=\"ok\",kind=\"add_node\"}"]
	}
	if after < 2*graphs { // 30 before the kill on the three, 30 after on the two
		t.Errorf("survivors counted %v add_node commands, want at least %d", after, 2*graphs)
	}
	deadline := time.Now().Add(30 * time.Second)
	for adopted == 0 && time.Now().Before(deadline) {
		adopted = 0
		for _, p := range procs[:2] {
			adopted += scrape(t, p.ready.Metrics)["cairn_cluster_adoptions_total"]
		}
		time.Sleep(50 * time.Millisecond)
	}
	if adopted == 0 {
		t.Error("no survivor counted an adoption of the killed member's graphs")
	}
	t.Logf("after SIGKILL of a member: %d graphs answered within %.3f s, %d (the killed member's) after %.2f to %.2f s (median %.2f s)",
		slow, back[max(slow-1, 0)].Seconds(), graphs-slow, back[slow].Seconds(), back[graphs-1].Seconds(), back[slow+(graphs-slow)/2].Seconds())
	// Each command is stored once.
	for i := range graphs {
		g := fmt.Sprintf("g%02d", i)
		n := 0
		if _, err := srv.Store().Read(ctx, g, 0, func(persistence.Record) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("%s holds %d transactions, want 3 (create, before, after)", g, n)
		}
	}
}

// The member's remote endpoint: on loopback by default; beyond loopback
// only with mutual TLS; an address for the others to dial when it listens
// on every interface; and only with --cluster.
func TestServeMemberRemoteFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-listen", "127.0.0.1:0"}, "need --cluster"},
		{[]string{"--cluster-ttl", "8s"}, "need --cluster"},
		{[]string{"--cluster-provider", "nats-kv"}, "need --cluster"},
		{[]string{"--cluster", "c", "--cluster-provider", "etcd"}, `--cluster-provider "etcd": want nats-kv or k8s`},
		{[]string{"--cluster", "c", "--cluster-ttl", "1500ms"}, "whole seconds"},
		{[]string{"--cluster", "c", "--cluster-listen", "0.0.0.0:7222", "--cluster-advertise", "m0.example:7222"}, "mutual TLS"},
		{[]string{"--cluster", "c", "--cluster-listen", "10.1.2.3:7222"}, "mutual TLS"},
		{[]string{"--cluster", "c", "--cluster-listen", "127.0.0.1:0", "--cluster-advertise", "10.1.2.3:7222"}, "mutual TLS"},
		{[]string{"--cluster", "c", "--cluster-listen", "nonsense"}, "--cluster-listen"},
		{[]string{"--cluster", "c", "--cluster-listen", "127.0.0.1:0", "--cluster-advertise", "127.0.0.1"}, "advertised address"},
	} {
		args := append([]string{"serve", "--data", t.TempDir()}, tc.args...)
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

// A member that logs in to another member's NATS (serve --auth) with a
// member's nkey joins the cluster: commands and queries sent by a writer
// reach the graphs either member owns, queries routed between them. A
// writer may not use the members' routed subjects.
func TestServeClusterMemberAuth(t *testing.T) {
	bin := testbin.Cairn(t)
	dir := t.TempDir()
	file, peerSeed, appSeed := filepath.Join(dir, "users.json"), filepath.Join(dir, "peer.nk"), filepath.Join(dir, "app.nk")
	mustRun(t, "auth", "add-user", file, "peer", "--role", "member", "--new-nkey", peerSeed)
	mustRun(t, "auth", "add-user", file, "app", "--role", "writer", "--new-nkey", appSeed)
	if r := runCLI(t, "auth", "add-user", file, "bad", "--role", "member", "--graph", "a", "--new-nkey", filepath.Join(dir, "bad.nk")); r.code() == 0 {
		t.Fatalf("a member limited to graphs was taken: %s", r.stdout)
	}
	line, stop := serveInProcess(t, "--data", filepath.Join(dir, "data"), "--nats-listen", "127.0.0.1:0", "--auth", file, "--cluster", "sec",
		"--no-signing", "--json", "--log-level", "error")
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatal(err)
	}
	url := ready.NATS
	startClusterServe(t, bin, url, "sec", "--nkey", peerSeed)

	opt, err := nats.NkeyOptionFromSeed(peerSeed)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitMembers(ctx, t, js, "sec", 2)
	app := []string{"--server", url, "--nkey", appSeed}
	for i := range 8 {
		g := fmt.Sprintf("s%d", i)
		mustRun(t, append([]string{"graph", "create", g}, app...)...)
		out := mustRun(t, append([]string{"node", "add", g, "x", "--json"}, app...)...)
		var rep replyJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Seq == 0 {
			t.Fatalf("node add to %s: %s (%v)", g, out, err)
		}
		stats := mustRun(t, append([]string{"query", "stats", g, "--min-seq", fmt.Sprint(rep.Seq), "--json"}, app...)...)
		if !strings.Contains(stats, `"nodes":"1"`) {
			t.Fatalf("stats of %s after its write: %s", g, stats)
		}
	}
	// The routed subjects are the engines' only.
	wopt, err := nats.NkeyOptionFromSeed(appSeed)
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 1)
	wc, err := nats.Connect(url, wopt,
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case refused <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	if err := wc.Publish(api.MemberQuerySubject("x"), []byte("q")); err != nil {
		t.Fatal(err)
	}
	_ = wc.Flush()
	select {
	case err := <-refused:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("a writer publishing to a member's subject: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a writer published to a member's routed subject unrefused")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// waitMembers waits until cluster's membership bucket holds n member keys,
// failing the test when ctx ends first, and returns the bucket.
func waitMembers(ctx context.Context, t *testing.T, js jetstream.JetStream, cluster string, n int) jetstream.KeyValue {
	t.Helper()
	bucket := "cairn-members-" + cluster
	var keys []string
	for {
		kv, err := js.KeyValue(ctx, bucket)
		if err == nil {
			if keys, _ = kv.Keys(ctx); len(keys) == n {
				return kv
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("%s holds %d member keys %v, want %d (%v)", bucket, len(keys), keys, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape reads a /metrics page into its series' values by name and labels
// as the exposition writes them (histograms' lines included).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body := testbin.Get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("scrape %s: %d", base, code)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: %q: %v", base, line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitMetric polls base's /metrics until series satisfies ok, for at most
// 30 s.
func waitMetric(t *testing.T, base, series string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, found := scrape(t, base)[series]
		if found && ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at %s: %v (present %v)", series, base, v, found)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
