package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Recovery op names: each round's times, from the restarted process's
// start.
const (
	OpRecoverJetStream = "recover:jetstream" // the event stream answers (JetStream recovered)
	OpRecoverQuery     = "recover:query"     // a query answers with every acknowledged write
	OpRecoverCommand   = "recover:command"   // a command is accepted
)

// RecoveryConfig shapes the recovery scenario: `cairn serve` is started
// as a child process on DataDir, loaded with Workload, then killed with
// SIGKILL and restarted Rounds times.
type RecoveryConfig struct {
	// Binary is the cairn executable that runs `serve`. Required.
	Binary string
	// DataDir holds the engine's data; empty for a temporary directory
	// removed afterwards.
	DataDir string
	// ServeArgs are more `cairn serve` flags.
	ServeArgs []string
	Workload  Workload
	// Rounds of kill and restart. Default 3.
	Rounds          int
	Batch, InFlight int
	// Timeout bounds each restart until it serves. Default 2 minutes.
	Timeout time.Duration
}

func (c *RecoveryConfig) setDefaults() {
	if c.Rounds == 0 {
		c.Rounds = 3
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
}

// Validate returns every problem with c, joined.
func (c RecoveryConfig) Validate() error {
	c.setDefaults()
	errs := []error{IngestConfig{Workload: c.Workload, Batch: c.Batch, InFlight: c.InFlight}.Validate()}
	if c.Binary == "" {
		errs = append(errs, errors.New("recovery needs the cairn binary to run serve"))
	}
	if c.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds must be at least 1, not %d", c.Rounds))
	}
	return errors.Join(errs...)
}

// Recovery measures how fast a killed engine serves again: after loading
// a graph (and stopping cleanly once, so that its snapshots are written),
// it restarts `cairn serve` and kills it with SIGKILL (no clean stop, no
// final snapshot), Rounds times, and reports per round the time
// from the new process's start until JetStream answers (the baseline),
// until a query answers with every acknowledged write, and until a command
// is accepted. Each round writes one more node before the kill; a round
// whose query misses an acknowledged write fails the scenario.
func Recovery(ctx context.Context, cfg RecoveryConfig, live io.Writer) (_ *ScenarioResult, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cairn-bench-recovery-"); err != nil {
			return nil, fmt.Errorf("recovery: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	res := &ScenarioResult{Scenario: "recovery", Driver: "remote (child cairn serve)", Config: describeWorkload(cfg.Workload)}
	res.Config["rounds"] = cfg.Rounds
	res.Config["serve_args"] = fmt.Sprint(cfg.ServeArgs)

	// Load the graph into a first process, then kill it.
	p, err := startServe(cfg.Binary, cfg.ServeArgs, dir)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	defer func() { p.kill() }()
	if err := p.waitReady(ctx, cfg.Timeout); err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	if live != nil {
		fmt.Fprintf(live, "recovery: loading %d nodes and %d edges into cairn serve (pid %d)\n", cfg.Workload.Nodes, cfg.Workload.Edges, p.cmd.Process.Pid)
	}
	d, err := p.driver(ctx, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	ic := IngestConfig{Workload: cfg.Workload, Batch: cfg.Batch, InFlight: cfg.InFlight, Prefix: "recovery"}
	ic.setDefaults()
	graphs, err := createGraphs(ctx, d, ic.Prefix, 1)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	graph := graphs[0]
	seqs, err := load(ctx, d, NewRecorder(), ic, graphs)
	if err != nil {
		return nil, fmt.Errorf("recovery: load: %w", err)
	}
	lastSeq, wantNodes := seqs[0], cfg.Workload.Nodes
	// A clean stop (SIGINT) writes the final snapshots, so that the first
	// kill finds the engine as a long-running one would be: snapshots a
	// short tail behind the head, not a bulk load without any.
	if err := p.stop(cfg.Timeout); err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}

	res.Started = time.Now()
	mem := &childMemory{}
	defer mem.close() // after the meter stopped: it is the meter's
	res.MemorySource = "the child cairn serve of each round: RSS from /proc/<pid>/statm, Go heap, GC count and limit from its stats (none while it starts)"
	m := StartMeter(live, "recovery", mem.sample)
	var rounds []string
	for round := range cfg.Rounds {
		var r recoveryRound
		r, err = recoverOnce(ctx, cfg, dir, graph, lastSeq, wantNodes, round, mem, m.SampleMem)
		m.Record(OpRecoverJetStream, 1, r.jetstream, nil)
		m.Record(OpRecoverQuery, 1, r.query, err)
		if err != nil {
			break
		}
		m.Record(OpRecoverCommand, 1, r.command, nil)
		lastSeq, wantNodes = r.seq, wantNodes+1
		rounds = append(rounds, fmt.Sprintf("round %d: JetStream %s, full query %s, command %s", round+1,
			r.jetstream.Round(time.Millisecond), r.query.Round(time.Millisecond), r.command.Round(time.Millisecond)))
	}
	ops := res.measured(m)
	res.Notes = append(res.Notes, rounds...)
	if err != nil {
		return res, fmt.Errorf("recovery: %w", err)
	}
	q, c, js := find(ops, OpRecoverQuery), find(ops, OpRecoverCommand), find(ops, OpRecoverJetStream)
	res.Figures = append(res.Figures,
		goalFigure("restart to a full query (median)", q.P50MS/1000, "s", "< 1", q.P50MS < 1000, "SIGKILL, then a new process; every acknowledged write is there"),
		goalFigure("restart to an accepted command (median)", c.P50MS/1000, "s", "< 1", c.P50MS < 1000, "timed beside the query, from the new process's start"),
		goalFigure("acknowledged writes lost", 0, "", "0", true, fmt.Sprintf("%d kill -9 rounds", cfg.Rounds)),
	)
	res.Baselines = append(res.Baselines, Baseline{
		Name: "restart to a full query vs to JetStream answering", Unit: "ms (median)", Engine: q.P50MS, Raw: js.P50MS, Ratio: q.P50MS / js.P50MS,
		Note: "both from the new process's start; a ratio above 1 is the engine's own recovery on top of JetStream's",
	})
	return res, nil
}

type recoveryRound struct {
	jetstream, query, command time.Duration
	seq                       uint64
}

// recoverOnce starts serve, times it, writes one node, and kills it; mem
// samples the child while it runs, and up is called once it accepted the
// command, before the kill.
func recoverOnce(ctx context.Context, cfg RecoveryConfig, dir, graph string, lastSeq uint64, wantNodes, round int, mem *childMemory, up func()) (recoveryRound, error) {
	var r recoveryRound
	p, err := startServe(cfg.Binary, cfg.ServeArgs, dir)
	if err != nil {
		return r, err
	}
	mem.set(p.cmd.Process.Pid, p.url)
	defer func() {
		mem.set(0, "")
		p.kill()
	}()
	deadline := time.Now().Add(cfg.Timeout)
	// JetStream: poll the embedded server's port until the event stream answers.
	for {
		if err := p.streamAnswers(ctx); err == nil {
			r.jetstream = time.Since(p.started)
			break
		} else if time.Now().After(deadline) || ctx.Err() != nil || p.exited() {
			return r, fmt.Errorf("round %d: JetStream did not answer within %s: %w%s", round+1, cfg.Timeout, err, p.stderrTail())
		}
		time.Sleep(2 * time.Millisecond) // polling a child process: nothing to wait on
	}
	d, err := p.driver(ctx, time.Until(deadline))
	if err != nil {
		return r, fmt.Errorf("round %d: %w", round+1, err)
	}
	// The first query and the first command are timed apart, both from
	// the process's start: a command does not wait for the read models,
	// nor a query for the graph's activation.
	var (
		wg         sync.WaitGroup
		qerr, cerr error
		nodes      uint64
		node       = "recovered-" + strconv.Itoa(round)
		stopped    = func() bool { return time.Now().After(deadline) || ctx.Err() != nil || p.exited() }
	)
	wg.Go(func() {
		for {
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			rep, err := d.Query(qctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: lastSeq, TimeoutMs: 1000,
				Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
			cancel()
			if err = queryErr(rep, err); err == nil {
				r.query, nodes = time.Since(p.started), rep.GetStats().GetNodes()
				return
			}
			if stopped() {
				qerr = fmt.Errorf("round %d: no full answer within %s: %w%s", round+1, cfg.Timeout, err, p.stderrTail())
				return
			}
			time.Sleep(time.Millisecond) // not ready yet (no responders): don't spin on the child's CPUs
		}
	})
	wg.Go(func() {
		for {
			rep, err := d.Execute(ctx, &cairnv1.CommandEnvelope{GraphId: graph, CommandId: graph + "-" + node, Issuer: "cairn-bench",
				Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: node}}}}})
			if err = replyErr(rep, err); err == nil {
				r.command, r.seq = time.Since(p.started), rep.GetSeq()
				return
			}
			if stopped() {
				cerr = fmt.Errorf("round %d: no command accepted within %s: %w%s", round+1, cfg.Timeout, err, p.stderrTail())
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	if err := errors.Join(qerr, cerr); err != nil {
		return r, err
	}
	// The first answer may or may not hold this round's node (its
	// command ran beside it), never fewer than every earlier write.
	if nodes != uint64(wantNodes) && nodes != uint64(wantNodes)+1 {
		return r, fmt.Errorf("round %d: after the restart the graph has %d nodes, want %d (acknowledged writes lost)", round+1, nodes, wantNodes)
	}
	// Then exactly every acknowledged write, this round's included.
	qctx, cancel := context.WithTimeout(ctx, time.Until(deadline))
	rep, err := d.Query(qctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: r.seq, TimeoutMs: uint32(max(time.Until(deadline).Milliseconds(), 1)),
		Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
	cancel()
	if err = queryErr(rep, err); err != nil {
		return r, fmt.Errorf("round %d: query after the round's write: %w", round+1, err)
	}
	if n := rep.GetStats().GetNodes(); n != uint64(wantNodes)+1 {
		return r, fmt.Errorf("round %d: after its write the graph has %d nodes, want %d", round+1, n, wantNodes+1)
	}
	up()
	return r, nil
}

// serveProc is a child `cairn serve`.
type serveProc struct {
	cmd     *exec.Cmd
	ready   chan struct{} // closed once serve printed its ready line
	url     string
	started time.Time
	stderr  *os.File
	keepLog bool // stderr is a log to keep, not a temporary file
	done    chan struct{}
	nc      *nats.Conn
}

// startServe starts binary's `cairn serve` on dir with serveArgs more,
// listening on a free port, and returns without waiting for it to be
// ready.
func startServe(binary string, serveArgs []string, dir string) (*serveProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startServeAt(binary, serveArgs, dir, "127.0.0.1:"+strconv.Itoa(port))
}

// startServeAt is startServe with the embedded NATS server's client
// address given (a member restarted where its clients reconnect).
func startServeAt(binary string, serveArgs []string, dir, addr string) (*serveProc, error) {
	return startServeLogged(binary, serveArgs, dir, addr, "")
}

// startServeLogged is startServeAt with the child's stderr appended to
// logPath, which stays; "" for a temporary file removed when it stops.
func startServeLogged(binary string, serveArgs []string, dir, addr, logPath string) (*serveProc, error) {
	args := append([]string{"serve", "--data", dir, "--nats-listen", addr, "--json"}, serveArgs...)
	return startLogged(binary, args, "nats://"+addr, logPath)
}

// startLogged starts binary with args (a cairn command that prints a JSON
// ready line with a "nats" field: serve --json, nats-node --json), its
// stderr appended to logPath, which stays; "" for a temporary file removed
// when it stops. url is where its NATS clients connect ("" for a member on
// an external NATS).
func startLogged(binary string, args []string, url, logPath string) (*serveProc, error) {
	var errf *os.File
	var err error
	if logPath == "" {
		errf, err = os.CreateTemp("", "cairn-serve-stderr-")
	} else {
		errf, err = os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	}
	if err != nil {
		return nil, err
	}
	return startProc(binary, args, url, errf, logPath != "")
}

// startProc starts binary with args, its stderr going to errf (removed
// when it stops unless keepLog).
func startProc(binary string, args []string, url string, errf *os.File, keepLog bool) (*serveProc, error) {
	p := &serveProc{cmd: exec.Command(binary, args...), url: url, stderr: errf, keepLog: keepLog, done: make(chan struct{}), ready: make(chan struct{})}
	p.cmd.Stderr = errf
	dieWithParent(p.cmd)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		errf.Close()
		return nil, fmt.Errorf("start %s %s: %w", binary, args[0], err)
	}
	go func() {
		// The ready line and anything after it: read to EOF so that the
		// child never blocks on a full pipe.
		sc := bufio.NewScanner(stdout)
		for first := true; sc.Scan(); first = false {
			var ready struct {
				NATS string `json:"nats"`
			}
			if first && json.Unmarshal(sc.Bytes(), &ready) == nil && ready.NATS != "" {
				close(p.ready)
			}
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *serveProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady waits for serve's ready line.
func (p *serveProc) waitReady(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return fmt.Errorf("cairn serve exited before it was ready%s", p.stderrTail())
	case <-t.C:
		return fmt.Errorf("cairn serve was not ready within %s%s", timeout, p.stderrTail())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// streamAnswers connects (once) and asks for the event stream's info.
func (p *serveProc) streamAnswers(ctx context.Context) error {
	if err := p.connect(); err != nil {
		return err
	}
	js, err := jetstream.New(p.nc)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = js.Stream(sctx, persistence.DefaultStoreConfig().Stream)
	return err
}

// connect connects to the child once.
func (p *serveProc) connect() error {
	if p.nc != nil {
		return nil
	}
	nc, err := nats.Connect(p.url, nats.Timeout(time.Second), nats.Name("cairn-bench"))
	p.nc = nc
	return err
}

// driver connects to the child (waiting for it to listen) and returns a
// remote driver.
func (p *serveProc) driver(ctx context.Context, timeout time.Duration) (Driver, error) {
	deadline := time.Now().Add(timeout)
	for {
		err := p.connect()
		if err == nil {
			return Remote(p.nc, 30*time.Second)
		}
		if time.Now().After(deadline) || ctx.Err() != nil || p.exited() {
			return nil, fmt.Errorf("cannot reach cairn serve at %s: %w%s", p.url, err, p.stderrTail())
		}
		time.Sleep(5 * time.Millisecond) // polling a child process: nothing to wait on
	}
}

// stop stops serve cleanly (SIGINT: it drains and writes its final
// snapshots) and waits for it to exit, at most timeout.
func (p *serveProc) stop(timeout time.Duration) error {
	if p.nc != nil {
		p.nc.Close()
		p.nc = nil
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		return fmt.Errorf("cairn serve did not stop within %s of SIGINT%s", timeout, p.stderrTail())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("cairn serve exited with status %d after SIGINT%s", code, p.stderrTail())
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *serveProc) kill() {
	if p.nc != nil {
		p.nc.Close()
		p.nc = nil
	}
	if !p.exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.stderr.Close()
	if !p.keepLog {
		os.Remove(p.stderr.Name())
	}
}

// stderrTail is the end of the child's stderr, for an error message.
func (p *serveProc) stderrTail() string {
	b, err := os.ReadFile(p.stderr.Name())
	if err != nil || len(b) == 0 {
		return ""
	}
	b = b[max(0, len(b)-2000):]
	return "\ncairn serve stderr (end):\n" + string(b)
}

// freePorts returns n distinct free ports on 127.0.0.1 (each listener is
// held until all are drawn: ports drawn one by one can repeat).
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
