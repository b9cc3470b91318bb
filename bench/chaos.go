package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/memlimit"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Operations the chaos scenario records.
const (
	// OpChaosCommand is one command from its first try to its
	// acknowledgement, retries (with the same command id) included.
	OpChaosCommand = "chaos-command"
	// OpChaosRestart is a killed member from its restart to its ready line.
	OpChaosRestart = "chaos-restart"
)

// ChaosConfig shapes the chaos scenario: Members `cairn serve` processes,
// each running a node of one NATS JetStream cluster (embedded, routes over
// loopback) and a member of one Cairn cluster, are started on 127.0.0.1;
// commands run against Graphs graphs through any member while members are
// killed with SIGKILL and restarted.
type ChaosConfig struct {
	// Binary is the cairn executable that runs `serve`. Required.
	Binary string
	// DataDir holds the members' data (DataDir/m0, …); empty for a
	// temporary directory removed afterwards.
	DataDir string
	// Members is how many processes run (each a Cairn member and a NATS
	// node). Default 3.
	Members int
	// Duration of the load. Default 60 seconds.
	Duration time.Duration
	// KillEvery is the mean time between two kills (each drawn between
	// half and one and a half of it). Default 10 seconds.
	KillEvery time.Duration
	// Down is how long a killed member stays down before it is restarted.
	// Default 1 second.
	Down time.Duration
	// Graphs is how many graphs take commands. Default 100.
	Graphs int
	// Rate is the commands per second offered over all graphs (each graph
	// takes its share one command at a time). Default 500.
	Rate int
	// Retry bounds how long a client retries one command (UNAVAILABLE,
	// CONFLICT, no answer) before it gives up on it. Default 60 seconds.
	Retry time.Duration
	// Seed draws the kills; 0 for a seed from the clock (the report
	// gives it).
	Seed uint64
	// NoSyncAlways runs the NATS nodes with JetStream's default fsync
	// interval instead of fsync on every write.
	NoSyncAlways bool
	// ServeArgs are more `cairn serve` flags for every member.
	ServeArgs []string
	// Timeout bounds a member's start and the final checks. Default 2
	// minutes.
	Timeout time.Duration
}

func (c *ChaosConfig) setDefaults() {
	if c.Members == 0 {
		c.Members = 3
	}
	if c.Duration == 0 {
		c.Duration = 60 * time.Second
	}
	if c.KillEvery == 0 {
		c.KillEvery = 10 * time.Second
	}
	if c.Down == 0 {
		c.Down = time.Second
	}
	if c.Graphs == 0 {
		c.Graphs = 100
	}
	if c.Rate == 0 {
		c.Rate = 500
	}
	if c.Retry == 0 {
		c.Retry = 60 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
}

// Validate returns every problem with c, joined.
func (c ChaosConfig) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Binary == "" {
		errs = append(errs, errors.New("chaos needs the cairn binary to run serve"))
	}
	if c.Members < 3 {
		errs = append(errs, fmt.Errorf("members must be at least 3 (a replicated stream keeps a quorum through one kill), not %d", c.Members))
	}
	if c.Duration < time.Second || c.KillEvery < 100*time.Millisecond || c.Down < 0 || c.Retry < time.Second || c.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("duration %s, kill-every %s, down %s, retry %s, timeout %s: too short (at least 1s, 100ms, 0, 1s, 1s)",
			c.Duration, c.KillEvery, c.Down, c.Retry, c.Timeout))
	}
	if c.Graphs < 1 || c.Rate < 1 {
		errs = append(errs, fmt.Errorf("graphs %d and rate %d must be positive", c.Graphs, c.Rate))
	}
	return errors.Join(errs...)
}

// chaosCluster is the name of the Cairn cluster chaos and failover run.
const chaosCluster = "cairn-chaos"

// chaosMember is one member's fixed addresses and its current process.
type chaosMember struct {
	// remote is the member's Proto.Actor remote address (fixed, so that a
	// member's key in the membership bucket names which process it is).
	name, dir, client, route, remote string
	args                             []string
	// log is where its stderr goes, kept after the run ("" for a
	// temporary file): DataDir/<name>.log when a data directory is given.
	log string
	p   *serveProc // nil while it is down
}

// chaosLog is the client's log: every acknowledged command and what it
// added, per graph, and how long each graph waited at most.
type chaosLog struct {
	mu      sync.Mutex
	acked   map[string]map[string]bool // graph → nodes acknowledged
	longest map[string]time.Duration   // graph → longest command (first try to ack)
	failed  int                        // commands given up (never acknowledged)
	answers map[string]int             // refusals seen on the way, by code or error
	// timeline, when not nil, gets every command sent (failover's
	// phases are measured on it).
	timeline *[]sentCommand
}

// sentCommand is one command of the load: when it was first sent, when
// it was acknowledged or given up, and how many tries it took.
type sentCommand struct {
	graph      string
	start, end time.Time
	tries      int
	acked      bool
}

func newChaosLog() *chaosLog {
	return &chaosLog{acked: map[string]map[string]bool{}, longest: map[string]time.Duration{}, answers: map[string]int{}}
}

// steadyLoad offers rate commands/s over graphs until loadCtx ends: each
// graph takes its share, one command at a time (each adds one node),
// retried with the same command id until acknowledged or retry passed.
// Retries run on past loadCtx's end (until ctx ends): a command sent is
// seen through, so the log knows its fate. Each command is recorded in log
// and in m.
func steadyLoad(ctx, loadCtx context.Context, d Driver, graphs []string, rate int, retry time.Duration, log *chaosLog, m *Meter, op string) {
	var load sync.WaitGroup
	every := time.Duration(float64(time.Second) * float64(len(graphs)) / float64(rate))
	for gi, g := range graphs {
		load.Add(1)
		go func() {
			defer load.Done()
			// Spread the graphs' first commands over one period.
			next := time.Now().Add(every * time.Duration(gi) / time.Duration(len(graphs)))
			for k := 0; ; k++ {
				if wait := time.Until(next); wait > 0 {
					select {
					case <-time.After(wait):
					case <-loadCtx.Done():
					}
				}
				if loadCtx.Err() != nil {
					return
				}
				next = next.Add(every)
				node := "n" + strconv.Itoa(k)
				env := &cairnv1.CommandEnvelope{GraphId: g, CommandId: g + "-" + node, Issuer: "cairn-bench",
					Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: node}}}}}
				start := time.Now()
				_, tries, err := chaosCommand(ctx, d, env, retry, log)
				end := time.Now()
				m.Record(op, 1, end.Sub(start), err)
				log.mu.Lock()
				if err == nil {
					log.acked[g][node] = true
				} else {
					log.failed++
				}
				log.longest[g] = max(log.longest[g], end.Sub(start))
				if log.timeline != nil {
					*log.timeline = append(*log.timeline, sentCommand{graph: g, start: start, end: end, tries: tries, acked: err == nil})
				}
				log.mu.Unlock()
			}
		}()
	}
	load.Wait()
}

// Chaos runs the chaos scenario: it starts cfg.Members members, creates
// cfg.Graphs graphs, offers cfg.Rate commands/s (each adds one node; a
// client retries with the same command id until it is acknowledged or
// cfg.Retry passed) and kills a random member with SIGKILL every
// cfg.KillEvery on average, restarting it cfg.Down later, for
// cfg.Duration. Then it restarts whatever is down, waits for the cluster,
// and checks: every graph's chain verifies, every acknowledged node is
// stored exactly once, and a query through each member's NATS node agrees
// with the stream. It reports kills survived, commands acknowledged,
// lost, applied twice, command latency and the longest unavailability per
// graph. Lost or applied-twice commands fail the scenario.
func Chaos(ctx context.Context, cfg ChaosConfig, live io.Writer) (_ *ScenarioResult, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cairn-bench-chaos-"); err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	members, err := chaosMembers(cfg, dir)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	var membersMu sync.Mutex // guards members[i].p
	defer func() {
		membersMu.Lock()
		defer membersMu.Unlock()
		for _, m := range members {
			if m.p != nil {
				m.p.kill()
			}
		}
	}()
	res := &ScenarioResult{Scenario: "chaos", Driver: "remote (child cairn serve members)", Config: map[string]any{
		"members": cfg.Members, "duration_s": cfg.Duration.Seconds(), "kill_every_s": cfg.KillEvery.Seconds(), "down_s": cfg.Down.Seconds(),
		"graphs": cfg.Graphs, "rate": cfg.Rate, "retry_s": cfg.Retry.Seconds(), "seed": cfg.Seed, "sync_always": !cfg.NoSyncAlways,
		"serve_args": fmt.Sprint(cfg.ServeArgs),
	}}

	nc, err := startChaosMembers(ctx, cfg.Binary, members, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	defer nc.Close()
	urls := memberURLs(members)
	d, err := Remote(nc, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if live != nil {
		fmt.Fprintf(live, "chaos: %d members up (%s); %d graphs, %d commands/s, a kill every %s for %s (seed %d)\n",
			len(members), strings.Join(urls, " "), cfg.Graphs, cfg.Rate, cfg.KillEvery, cfg.Duration, cfg.Seed)
	}
	log := newChaosLog()
	graphs, err := createChaosGraphs(ctx, d, "chaos", cfg.Graphs, cfg.Retry, log)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}

	res.Started = time.Now()
	mem := func(context.Context) (MemSample, error) { return chaosMemory(&membersMu, members) }
	res.MemorySource = "the sum of the members' RSS (/proc/<pid>/statm) of the members up at each sample"
	m := StartMeter(live, "chaos", mem)
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()

	var load sync.WaitGroup
	load.Add(1)
	go func() {
		defer load.Done()
		steadyLoad(ctx, loadCtx, d, graphs, cfg.Rate, cfg.Retry, log, m, OpChaosCommand)
	}()

	// The chaos: kill a member, keep it down, restart it, wait for it.
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed))
	var kills []string
	killed := 0
	chaosErr := func() error {
		for {
			wait := cfg.KillEvery/2 + time.Duration(rng.Int64N(int64(cfg.KillEvery)))
			select {
			case <-time.After(wait):
			case <-loadCtx.Done():
				return nil
			}
			i := rng.IntN(len(members))
			mb := members[i]
			membersMu.Lock()
			pid := mb.p.cmd.Process.Pid
			mb.p.kill()
			mb.p = nil
			membersMu.Unlock()
			killed++
			at := time.Since(res.Started)
			select {
			case <-time.After(cfg.Down):
			case <-ctx.Done():
				return ctx.Err()
			}
			p, err := startServeLogged(cfg.Binary, mb.args, mb.dir, mb.client, mb.log)
			if err != nil {
				return fmt.Errorf("restart %s: %w", mb.name, err)
			}
			membersMu.Lock()
			mb.p = p
			membersMu.Unlock()
			if err := p.waitReady(ctx, cfg.Timeout); err != nil {
				return fmt.Errorf("restart %s after kill %d: %w", mb.name, killed, err)
			}
			ready := time.Since(p.started)
			m.Record(OpChaosRestart, 1, ready, nil)
			kills = append(kills, fmt.Sprintf("kill %d at %.1f s: %s (pid %d), down %s, ready %s after its restart",
				killed, at.Seconds(), mb.name, pid, cfg.Down, ready.Round(time.Millisecond)))
			if live != nil {
				fmt.Fprintf(live, "chaos: %s\n", kills[len(kills)-1])
			}
		}
	}()
	stopLoad()
	load.Wait()
	ops := res.measured(m)
	res.Notes = append(res.Notes, kills...)
	if chaosErr != nil {
		return res, fmt.Errorf("chaos: %w", chaosErr)
	}

	// The checks, on the whole cluster up again.
	lost, twice, extra, err := chaosCheck(ctx, cfg, d, nc, members, graphs, log)
	if err != nil {
		return res, fmt.Errorf("chaos: check: %w", err)
	}
	acked := 0
	var longest []time.Duration
	for _, g := range graphs {
		acked += len(log.acked[g])
		longest = append(longest, log.longest[g])
	}
	slices.Sort(longest)
	cmd := find(ops, OpChaosCommand)
	var refusals []string
	for what, n := range log.answers {
		refusals = append(refusals, fmt.Sprintf("%s ×%d", what, n))
	}
	slices.Sort(refusals)
	if len(refusals) > 0 {
		res.Notes = append(res.Notes, "answers retried on the way: "+strings.Join(refusals, ", "))
	}
	res.Figures = append(res.Figures,
		Figure{Name: "kills survived", Value: float64(killed), Unit: "", Note: fmt.Sprintf("SIGKILL of a member (its Cairn member and NATS node), down %s", cfg.Down)},
		Figure{Name: "commands acknowledged", Value: float64(acked), Note: fmt.Sprintf("%d given up after %s of retries", log.failed, cfg.Retry)},
		goalFigure("acknowledged commands lost", float64(lost), "", "0", lost == 0, "acknowledged, but not in the stream"),
		goalFigure("commands applied twice", float64(twice), "", "0", twice == 0, "a node stored more than once"),
		Figure{Name: "unacknowledged commands stored", Value: float64(extra), Note: "stored, but the client gave up on it (its replies were lost): allowed, counted"},
		Figure{Name: "command p99 (retries included)", Value: cmd.P99MS, Unit: "ms"},
		Figure{Name: "longest unavailability of a graph", Value: longest[len(longest)-1].Seconds(), Unit: "s",
			Note: fmt.Sprintf("one command's first try to its acknowledgement; median over graphs %.2f s", longest[len(longest)/2].Seconds())},
	)
	if lost > 0 || twice > 0 {
		return res, fmt.Errorf("chaos: %d acknowledged commands lost, %d applied twice", lost, twice)
	}
	return res, nil
}

// startChaosMembers starts every member at once (a replicated stream
// needs a quorum of nodes before any member can open the event store),
// waits until each is ready and returns a connection to all of their NATS
// nodes that reconnects for ever.
func startChaosMembers(ctx context.Context, binary string, members []*chaosMember, timeout time.Duration) (*nats.Conn, error) {
	var wg sync.WaitGroup
	startErrs := make([]error, len(members))
	for i, m := range members {
		var err error
		if m.p, err = startServeLogged(binary, m.args, m.dir, m.client, m.log); err != nil {
			return nil, fmt.Errorf("start %s: %w", m.name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			startErrs[i] = m.p.waitReady(ctx, timeout)
		}()
	}
	wg.Wait()
	if err := errors.Join(startErrs...); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(memberURLs(members), ","), nats.Name("cairn-bench-chaos"), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.Timeout(time.Second), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return nc, nil
}

// memberURLs are the members' NATS client URLs.
func memberURLs(members []*chaosMember) []string {
	urls := make([]string, len(members))
	for i, m := range members {
		urls[i] = "nats://" + m.client
	}
	return urls
}

// chaosMembers lays out the members: data directories, fixed client and
// route addresses, one shared signing key, and their serve flags.
func chaosMembers(cfg ChaosConfig, dir string) ([]*chaosMember, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	seed, err := persistence.NewSigningKey()
	if err != nil {
		return nil, err
	}
	// One key for all: every member checks the chain every other member
	// writes.
	key := filepath.Join(dir, "signing.nk")
	if err := os.WriteFile(key, seed, 0o600); err != nil {
		return nil, err
	}
	members := make([]*chaosMember, cfg.Members)
	var routes []string
	// Three ports a member, all distinct: each is held until all are
	// drawn.
	ports, err := freePorts(3 * cfg.Members)
	if err != nil {
		return nil, err
	}
	for i := range members {
		addr := func(k int) string { return "127.0.0.1:" + strconv.Itoa(ports[3*i+k]) }
		members[i] = &chaosMember{name: "m" + strconv.Itoa(i), dir: filepath.Join(dir, "m"+strconv.Itoa(i)),
			client: addr(0), route: addr(1), remote: addr(2)}
		if cfg.DataDir != "" {
			members[i].log = filepath.Join(dir, members[i].name+".log")
		}
		routes = append(routes, "nats-route://"+members[i].route)
	}
	for _, m := range members {
		m.args = []string{"--name", m.name, "--cluster", chaosCluster, "--cluster-listen", m.remote,
			"--nats-cluster-listen", m.route, "--nats-routes", strings.Join(routes, ","),
			"--replicas", strconv.Itoa(min(cfg.Members, 3)), "--signing-key", key}
		if !cfg.NoSyncAlways {
			m.args = append(m.args, "--sync-always")
		}
		m.args = append(m.args, cfg.ServeArgs...)
	}
	return members, nil
}

// createChaosGraphs creates n graphs named prefix-0000, … and enters them in
// log.
func createChaosGraphs(ctx context.Context, d Driver, prefix string, n int, retry time.Duration, log *chaosLog) ([]string, error) {
	graphs := make([]string, n)
	for i := range graphs {
		graphs[i] = fmt.Sprintf("%s-%04d", prefix, i)
		create := &cairnv1.CommandEnvelope{GraphId: graphs[i], CommandId: graphs[i] + "-create", Issuer: "cairn-bench",
			Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}}}
		if _, _, err := chaosCommand(ctx, d, create, retry, log); err != nil {
			return nil, fmt.Errorf("create %s: %w", graphs[i], err)
		}
		log.acked[graphs[i]] = map[string]bool{}
	}
	return graphs, nil
}

// chaosCommand sends env until it is acknowledged, retrying with the same
// command id on answers that say it was not applied (UNAVAILABLE,
// CONFLICT) or on no answer, for at most retry. A refusal that a retry
// cannot change is returned at once. It returns how many tries were
// sent.
func chaosCommand(ctx context.Context, d Driver, env *cairnv1.CommandEnvelope, retry time.Duration, log *chaosLog) (*cairnv1.CommandReply, int, error) {
	deadline := time.Now().Add(retry)
	pause := 20 * time.Millisecond
	for tries := 1; ; tries++ {
		rep, err := d.Execute(ctx, env)
		err = replyErr(rep, err)
		if err == nil {
			return rep, tries, nil
		}
		what := "no answer"
		var ce *aggregate.CommandError
		if errors.As(err, &ce) {
			switch ce.Code {
			case cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE, cairnv1.ErrorCode_ERROR_CODE_CONFLICT:
				what = ce.Code.String()
			default:
				return nil, tries, err
			}
		}
		log.mu.Lock()
		log.answers[what]++
		log.mu.Unlock()
		if time.Now().Add(pause).After(deadline) || ctx.Err() != nil {
			return nil, tries, fmt.Errorf("not acknowledged after %s of retries: %w", retry, err)
		}
		time.Sleep(pause) // back off before the same command goes again
		pause = min(2*pause, time.Second)
	}
}

// chaosCheck restarts the members that are down, then reads every graph's
// chain from the stream and checks it against the client's log and every
// member's read model.
func chaosCheck(ctx context.Context, cfg ChaosConfig, d Driver, nc *nats.Conn, members []*chaosMember, graphs []string, log *chaosLog) (lost, twice, extra int, err error) {
	for _, m := range members {
		if m.p == nil {
			if m.p, err = startServeLogged(cfg.Binary, m.args, m.dir, m.client, m.log); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	for _, m := range members {
		if err := m.p.waitReady(ctx, cfg.Timeout); err != nil {
			return 0, 0, 0, err
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	st, err := persistence.LookupStore(cctx, js, persistence.DefaultStoreConfig())
	if err != nil {
		return 0, 0, 0, fmt.Errorf("look up the event store: %w", err)
	}
	for _, g := range graphs {
		if _, err := st.Verify(cctx, g); err != nil {
			return 0, 0, 0, fmt.Errorf("graph %s does not verify: %w", g, err)
		}
		stored := map[string]int{}
		chain := persistence.NewChain(g)
		last, err := st.Read(cctx, g, 1, func(r persistence.Record) error {
			evs, err := chain.Check(r.Seq, r.Tx)
			for _, ev := range evs {
				if n := ev.Event.GetNodeAdded(); n != nil {
					stored[n.GetNodeId()]++
				}
			}
			return err
		})
		if err != nil {
			return 0, 0, 0, fmt.Errorf("read graph %s: %w", g, err)
		}
		// Every node is one command's: a node acknowledged and not stored
		// is lost, one stored more than once was applied twice.
		for node := range log.acked[g] {
			if stored[node] == 0 {
				lost++
			}
		}
		for node, n := range stored {
			if n > 1 {
				twice++
			}
			if !log.acked[g][node] {
				extra++
			}
		}
		// Every member's read model, each asked through its own node.
		for _, m := range members {
			if err := chaosQuery(cctx, m, g, last, len(stored)); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	return lost, twice, extra, nil
}

// chaosQuery asks one member, over a connection to its own NATS node, for
// graph's node count as of seq. Queries are served by whichever member
// answers first on the subject, which routes it to the graph's owner: the
// check goes through each member's node and each member's routing.
func chaosQuery(ctx context.Context, m *chaosMember, graph string, seq uint64, want int) error {
	nc, err := nats.Connect("nats://"+m.client, nats.Name("cairn-bench-chaos-check"), nats.Timeout(time.Second))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", m.name, err)
	}
	defer nc.Close()
	d, err := Remote(nc, 10*time.Second)
	if err != nil {
		return err
	}
	rep, err := d.Query(ctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: seq, TimeoutMs: 10_000,
		Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
	if err = queryErr(rep, err); err != nil {
		return fmt.Errorf("stats of %s through %s: %w", graph, m.name, err)
	}
	if got := rep.GetStats().GetNodes(); got != uint64(want) {
		return fmt.Errorf("through %s, %s has %d nodes as of seq %d; its stream holds %d", m.name, graph, got, seq, want)
	}
	return nil
}

// chaosMemory sums the RSS of the members up now.
func chaosMemory(mu *sync.Mutex, members []*chaosMember) (MemSample, error) {
	mu.Lock()
	defer mu.Unlock()
	var s MemSample
	for _, m := range members {
		if m.p == nil || m.p.exited() {
			continue
		}
		rss, err := memlimit.RSS(m.p.cmd.Process.Pid)
		if err == nil {
			s.RSSBytes += rss
		}
	}
	if s.RSSBytes == 0 {
		return s, errors.New("no member up")
	}
	return s, nil
}
