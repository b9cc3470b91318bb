package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/testbin"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The tests of the monitoring files (rules, dashboard, a real scrape) run
// the cairn binary and Debian's prometheus and promtool.

// needProgram returns the path of program, which Debian's package pkg
// installs. Without it the test is skipped, or fails when CI is set: in CI
// a missing dependency fails.
func needProgram(t *testing.T, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing (CI is set): install Debian's %s package (make deps does)", program, pkg)
	}
	t.Skipf("%s is missing: install Debian's %s package (make deps does)", program, pkg)
	return ""
}

// startChild starts cmd with its stderr, and its stdout unless that is
// set, going to a file; t's cleanup kills it and, when t failed, logs the
// file. The channel is closed once the process has exited.
func startChild(t *testing.T, name string, cmd *exec.Cmd) <-chan struct{} {
	t.Helper()
	logFile, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	if cmd.Stdout == nil {
		cmd.Stdout = logFile
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("%s log:\n%s", strings.Join(cmd.Args, " "), b)
		}
	})
	return exited
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Remove()
	os.Exit(code)
}

// engine is "cairn serve" with its metrics listener on, as a child
// process.
type engine struct {
	nats    string // nats://127.0.0.1:PORT
	metrics string // http://127.0.0.1:PORT
	nc      *nats.Conn
}

// serveReady is serve's --json ready line.
type serveReady struct {
	NATS    string `json:"nats"`
	Data    string `json:"data"`
	Metrics string `json:"metrics"`
}

// startEngine starts cairn serve on a new data directory with NATS and
// metrics on free loopback ports, waits for its ready line and connects a
// NATS client. t's cleanup kills it (and prints its stderr when t failed).
func startEngine(t *testing.T, extra ...string) *engine {
	t.Helper()
	bin := testbin.Cairn(t)
	args := append([]string{"serve", "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--json", "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	out, stdout, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = stdout
	exited := startChild(t, "cairn", cmd)
	stdout.Close()
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		lines <- l
		_, _ = io.Copy(io.Discard, out) // until serve exits
		out.Close()
	}()
	var line string
	select {
	case line = <-lines:
		if line == "" {
			t.Fatal("cairn serve closed its stdout without a ready line")
		}
	case <-exited:
		t.Fatal("cairn serve exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("cairn serve printed no ready line within 30s")
	}
	var ready serveReady
	if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.NATS == "" || !strings.HasPrefix(ready.Metrics, "http://127.0.0.1:") {
		t.Fatalf("ready line %q (%v): want nats and metrics (http://127.0.0.1:PORT)", line, err)
	}
	nc, err := nats.Connect(ready.NATS)
	if err != nil {
		t.Fatalf("connect to %s: %v", ready.NATS, err)
	}
	t.Cleanup(nc.Close)
	return &engine{nats: ready.NATS, metrics: ready.Metrics, nc: nc}
}

// command sends one envelope and returns its reply; a transport failure
// fails t, a refused command is the reply's Error.
func (e *engine) command(t *testing.T, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	t.Helper()
	data, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.nc.Request(api.CommandSubjectFor(env.GraphId), data, 10*time.Second)
	if err != nil {
		t.Fatalf("command %s: %v", env.CommandId, err)
	}
	rep := &cairnv1.CommandReply{}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		t.Fatalf("command %s: reply: %v", env.CommandId, err)
	}
	return rep
}

// mustCommand sends one envelope and fails t unless it is accepted.
func (e *engine) mustCommand(t *testing.T, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	t.Helper()
	rep := e.command(t, env)
	if rep.Error != nil {
		t.Fatalf("command %s: %v", env.CommandId, rep.Error)
	}
	return rep
}

// query sends one query and fails t unless it is answered.
func (e *engine) query(t *testing.T, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	t.Helper()
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.nc.Request(api.QuerySubjectFor(req.GraphId), data, 10*time.Second)
	if err != nil {
		t.Fatalf("query %v: %v", req, err)
	}
	rep := &cairnv1.QueryReply{}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		t.Fatalf("query %v: reply: %v", req, err)
	}
	if rep.Error != nil {
		t.Fatalf("query %v: %v", req, rep.Error)
	}
	return rep
}

// workload is what the live tests send: a graph "g" created, nodes
// added one command each, a chain of edges, one command refused, and
// queries of several kinds, a time-travel one included, then an archive
// of the graph's first transactions. It returns the
// number of commands sent and the last accepted one's sequence.
func (e *engine) workload(t *testing.T, graph string, nodes int) (int, uint64) {
	t.Helper()
	sent := 0
	send := func(id string, cmd *cairnv1.Command) *cairnv1.CommandReply {
		sent++
		return e.mustCommand(t, cmdtest.Envelope(graph, id, cmd))
	}
	send(graph+"-create", cmdtest.CreateGraph())
	var seq uint64
	for i := range nodes {
		seq = send(fmt.Sprintf("%s-add-%d", graph, i), cmdtest.AddNodeCats(fmt.Sprintf("n%d", i), "c")).Seq
	}
	for i := 1; i < nodes && i < 5; i++ {
		seq = send(fmt.Sprintf("%s-edge-%d", graph, i), cmdtest.Connect(fmt.Sprintf("e%d", i), fmt.Sprintf("n%d", i-1), fmt.Sprintf("n%d", i))).Seq
	}
	// A refused command counts too, under its code.
	sent++
	if rep := e.command(t, cmdtest.Envelope(graph, graph+"-dup", cmdtest.AddNode("n0"))); rep.Error == nil {
		t.Fatalf("adding n0 twice: accepted (%v)", rep)
	}
	queries := []*cairnv1.QueryRequest{
		statsQuery(graph, seq),
		{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "n0"}}},
		{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "n0"}}}, // from the cache
		{Query: &cairnv1.QueryRequest_KHop{KHop: &cairnv1.KHop{NodeId: "n0", Depth: 2}}},
		{Query: &cairnv1.QueryRequest_TopDegree{TopDegree: &cairnv1.TopDegree{K: 3}}},
		{Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}, AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: seq - 1}}},
	}
	for _, q := range queries {
		q.GraphId = graph
		e.query(t, q)
	}
	// An admin's archive of the first transactions: archive runs are
	// counted whatever their outcome.
	req, _ := json.Marshal(api.ArchiveRequest{Graph: graph, Before: 3})
	msg, err := e.nc.Request(api.ArchiveSubject, req, 10*time.Second)
	if err != nil {
		t.Fatalf("archive: %v", err)
	}
	var rep api.ArchiveReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		t.Fatalf("archive: reply %q: %v", msg.Data, err)
	}
	t.Logf("archive of %s before seq 3: %d transactions, %s %s", graph, rep.Transactions, rep.Code, rep.Error)
	return sent, seq
}

// exposition is what a /metrics page holds: the metric families' types
// (from the # TYPE lines) and each sample name's label names.
type exposition struct {
	types  map[string]string
	labels map[string]map[string]bool
}

// scrape fetches the engine's /metrics.
func (e *engine) scrape(t *testing.T) exposition {
	t.Helper()
	code, body := testbin.Get(t, e.metrics+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET %s/metrics: %d", e.metrics, code)
	}
	return parseExposition(body)
}

var labelName = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)

// parseExposition reads Prometheus's text format.
func parseExposition(text string) exposition {
	x := exposition{types: map[string]string{}, labels: map[string]map[string]bool{}}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if f := strings.Fields(rest); len(f) == 2 {
				x.types[f[0]] = f[1]
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i <= 0 {
			continue
		}
		name := line[:i]
		if x.labels[name] == nil {
			x.labels[name] = map[string]bool{}
		}
		if line[i] == '{' {
			if j := strings.LastIndexByte(line, '}'); j > i {
				for _, m := range labelName.FindAllStringSubmatch(line[i+1:j], -1) {
					x.labels[name][m[1]] = true
				}
			}
		}
	}
	return x
}

// series returns the sample name /metrics exports for name: name itself,
// or one of a histogram's or summary's _bucket, _sum or _count series
// (a family whose base name is there); "" when there is none.
func (x exposition) series(name string) string {
	if x.labels[name] != nil {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if typ := x.types[base]; typ == "histogram" || typ == "summary" && suffix != "_bucket" {
			return name
		}
	}
	return ""
}

// statsQuery asks for graph's stats once its projection has applied
// minSeq.
func statsQuery(graph string, minSeq uint64) *cairnv1.QueryRequest {
	return &cairnv1.QueryRequest{GraphId: graph, MinSeq: minSeq, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}}
}
