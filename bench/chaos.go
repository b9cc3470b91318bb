package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// members of one Cairn cluster, are started on 127.0.0.1, each running a
// node of one NATS JetStream cluster (embedded, routes over loopback), or,
// with NATS, all on an external cluster of NATS separate `cairn nats-node`
// processes; commands run against Graphs graphs through any node while
// members (and NATS nodes) are killed with SIGKILL and restarted.
type ChaosConfig struct {
	// Binary is the cairn executable that runs `serve`. Required.
	Binary string
	// DataDir holds the members' data (DataDir/m0, …); empty for a
	// temporary directory removed afterwards.
	DataDir string
	// Members is how many `cairn serve` processes run (each a Cairn
	// member and, without NATS, a NATS node). Default 3.
	Members int
	// NATS is how many separate `cairn nats-node` processes make the NATS
	// cluster the members use (each member is given every node's URL);
	// at least 3. 0 (the default): each member embeds a node instead.
	NATS int
	// NATSDown is how long a killed NATS node stays down before it is
	// restarted. Default Down.
	NATSDown time.Duration
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
	if c.NATSDown == 0 {
		c.NATSDown = c.Down
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
	switch {
	case c.NATS == 0 && c.Members < 3:
		errs = append(errs, fmt.Errorf("members must be at least 3 (a replicated stream keeps a quorum through one kill), not %d", c.Members))
	case c.NATS != 0 && c.NATS < 3:
		errs = append(errs, fmt.Errorf("nats must be at least 3 (a replicated stream keeps a quorum through one kill), not %d", c.NATS))
	case c.NATS != 0 && c.Members < 2:
		errs = append(errs, fmt.Errorf("members must be at least 2 (one is always up while another is killed), not %d", c.Members))
	}
	if c.Duration < time.Second || c.KillEvery < 100*time.Millisecond || c.Down < 0 || c.NATSDown < 0 || c.Retry < time.Second || c.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("duration %s, kill-every %s, down %s, NATS down %s, retry %s, timeout %s: too short (at least 1s, 100ms, 0, 0, 1s, 1s)",
			c.Duration, c.KillEvery, c.Down, c.NATSDown, c.Retry, c.Timeout))
	}
	if c.Graphs < 1 || c.Rate < 1 {
		errs = append(errs, fmt.Errorf("graphs %d and rate %d must be positive", c.Graphs, c.Rate))
	}
	return errors.Join(errs...)
}

// chaosCluster is the name of the Cairn cluster chaos and failover run.
const chaosCluster = "cairn-chaos"

// chaosMember is one process's fixed addresses and its current process:
// a member (embedding a NATS node or not) or a bare NATS node.
type chaosMember struct {
	// remote is the member's Proto.Actor remote address (fixed, so that a
	// member's key in the membership bucket names which process it is);
	// client and route its NATS node's ("" for a member on an external
	// NATS, remote "" for a bare NATS node).
	name, dir, client, route, remote string
	// args are serve's flags after --data, --nats-listen and --json; argv,
	// when set, the whole command line instead (nats-node, or serve on an
	// external NATS).
	args, argv []string
	// nats: a bare NATS node, not a member.
	nats bool
	// log is where its stderr goes, kept after the run ("" for a
	// temporary file): DataDir/<name>.log when a data directory is given.
	log string
	p   *serveProc // nil while it is down
	// up: started and ready, and not killed since (the kill schedule's).
	up bool
}

// start starts m's process (not waiting for it to be ready).
func (m *chaosMember) start(binary string) (*serveProc, error) {
	if m.argv == nil {
		return startServeLogged(binary, m.args, m.dir, m.client, m.log)
	}
	url := ""
	if m.client != "" {
		url = "nats://" + m.client
	}
	return startLogged(binary, m.argv, url, m.log)
}

// chaosLog is the client's log: every acknowledged command and what it
// added, per graph, and how long each graph waited at most.
type chaosLog struct {
	mu      sync.Mutex
	acked   map[string]map[string]bool // graph → nodes acknowledged
	longest map[string]time.Duration   // graph → longest command (first try to ack)
	lat     map[string][]time.Duration // graph → every command's, first try to ack or give-up
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
	return &chaosLog{acked: map[string]map[string]bool{}, longest: map[string]time.Duration{}, lat: map[string][]time.Duration{}, answers: map[string]int{}}
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
				log.lat[g] = append(log.lat[g], end.Sub(start))
				if log.timeline != nil {
					*log.timeline = append(*log.timeline, sentCommand{graph: g, start: start, end: end, tries: tries, acked: err == nil})
				}
				log.mu.Unlock()
			}
		}()
	}
	load.Wait()
}

// Chaos runs the chaos scenario: it starts cfg.Members members (with
// cfg.NATS, first cfg.NATS bare NATS nodes that the members use as an
// external cluster), creates cfg.Graphs graphs, offers cfg.Rate
// commands/s (each adds one node; a client retries with the same command
// id until it is acknowledged or cfg.Retry passed) and kills a random
// member or NATS node with SIGKILL every cfg.KillEvery on average,
// restarting it cfg.Down (a NATS node cfg.NATSDown) later, for
// cfg.Duration; never all members at once, never more NATS nodes than
// (cfg.NATS-1)/2 (without cfg.NATS, one member at a time), and half of the
// NATS node kills take the event stream's leader. Then it restarts
// whatever is down, waits for the cluster, and checks: every graph's chain
// verifies, every acknowledged node is stored exactly once, and a query
// through each NATS node agrees with the stream. It reports kills per
// kind, commands acknowledged, lost, applied twice, command latency, and
// per graph the p99 and the longest unavailability. Lost or applied-twice
// commands fail the scenario.
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
	var nodes, members []*chaosMember
	if cfg.NATS > 0 {
		nodes, members, err = chaosExternal(cfg, dir)
	} else {
		members, err = chaosMembers(cfg, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	all := append(slices.Clone(nodes), members...)
	// via are the NATS nodes: the client's, and those the final queries
	// go through.
	via := members
	if len(nodes) > 0 {
		via = nodes
	}
	var membersMu sync.Mutex // guards all[i].p and all[i].up
	defer func() {
		membersMu.Lock()
		defer membersMu.Unlock()
		for _, m := range all {
			if m.p != nil {
				m.p.kill()
			}
		}
	}()
	res := &ScenarioResult{Scenario: "chaos", Driver: "remote (child cairn serve members)", Config: map[string]any{
		"members": cfg.Members, "duration_s": cfg.Duration.Seconds(), "kill_every_s": cfg.KillEvery.Seconds(), "down_s": cfg.Down.Seconds(),
		"graphs": cfg.Graphs, "rate": cfg.Rate, "retry_s": cfg.Retry.Seconds(), "seed": cfg.Seed, "sync_always": !cfg.NoSyncAlways,
		"serve_args": fmt.Sprint(cfg.ServeArgs), "nats_nodes": "embedded, one per member",
	}}
	if len(nodes) > 0 {
		res.Driver = "remote (child cairn serve members on child cairn nats-node nodes)"
		res.Config["nats_nodes"], res.Config["nats_down_s"], res.Config["replicas"] = len(nodes), cfg.NATSDown.Seconds(), chaosReplicas(cfg)
		// The NATS cluster first: a member's start waits for JetStream.
		if err := startChaosProcs(ctx, cfg.Binary, nodes, cfg.Timeout); err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
	}
	if err := startChaosProcs(ctx, cfg.Binary, members, cfg.Timeout); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	for _, m := range all {
		m.up = true
	}
	nc, err := chaosConnect(via)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	defer nc.Close()
	urls := memberURLs(via)
	d, err := Remote(nc, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if live != nil {
		if len(nodes) > 0 {
			fmt.Fprintf(live, "chaos: %d members up on %d NATS nodes (%s); %d graphs, %d commands/s, a kill every %s for %s (seed %d)\n",
				len(members), len(nodes), strings.Join(urls, " "), cfg.Graphs, cfg.Rate, cfg.KillEvery, cfg.Duration, cfg.Seed)
		} else {
			fmt.Fprintf(live, "chaos: %d members up (%s); %d graphs, %d commands/s, a kill every %s for %s (seed %d)\n",
				len(members), strings.Join(urls, " "), cfg.Graphs, cfg.Rate, cfg.KillEvery, cfg.Duration, cfg.Seed)
		}
	}
	log := newChaosLog()
	graphs, err := createChaosGraphs(ctx, d, "chaos", cfg.Graphs, cfg.Retry, log)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}

	res.Started = time.Now()
	mem := func(context.Context) (MemSample, error) { return chaosMemory(&membersMu, all) }
	res.MemorySource = "the sum of the members' RSS (/proc/<pid>/statm) of the members up at each sample"
	if len(nodes) > 0 {
		res.MemorySource = "the sum of the RSS (/proc/<pid>/statm) of the members and NATS nodes up at each sample"
	}
	m := StartMeter(live, "chaos", mem)
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()

	var load sync.WaitGroup
	load.Add(1)
	go func() {
		defer load.Done()
		steadyLoad(ctx, loadCtx, d, graphs, cfg.Rate, cfg.Retry, log, m, OpChaosCommand)
	}()

	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	k := &chaosKiller{cfg: cfg, js: js, mu: &membersMu, nodes: nodes, members: members, meter: m, live: live, started: res.Started}
	chaosErr := k.run(ctx, loadCtx)
	stopLoad()
	load.Wait()
	ops := res.measured(m)
	res.Notes = append(res.Notes, k.notes...)
	if k.deferred > 0 {
		rule := "one member down at a time"
		if len(nodes) > 0 {
			rule = fmt.Sprintf("never all members down, never more than %d NATS nodes down", k.maxNATSDown())
		}
		res.Notes = append(res.Notes, fmt.Sprintf("%d kills waited for an earlier kill's restart, nothing else being killable (%s)", k.deferred, rule))
	}
	if chaosErr != nil {
		return res, fmt.Errorf("chaos: %w", chaosErr)
	}

	// The checks, on the whole cluster up again.
	lost, twice, extra, err := chaosCheck(ctx, cfg, d, nc, all, via, graphs, log)
	if err != nil {
		return res, fmt.Errorf("chaos: check: %w", err)
	}
	acked := 0
	var longest, p99s []time.Duration
	for _, g := range graphs {
		acked += len(log.acked[g])
		lat := log.lat[g]
		slices.Sort(lat)
		gf := GraphFigure{Graph: g, Commands: len(lat), LongestS: log.longest[g].Seconds()}
		if len(lat) > 0 {
			p99 := lat[min(len(lat)-1, len(lat)*99/100)]
			gf.P99MS = float64(p99) / float64(time.Millisecond)
			p99s = append(p99s, p99)
		}
		res.PerGraph = append(res.PerGraph, gf)
		longest = append(longest, log.longest[g])
	}
	slices.Sort(longest)
	slices.Sort(p99s)
	cmd := find(ops, OpChaosCommand)
	var refusals []string
	for what, n := range log.answers {
		refusals = append(refusals, fmt.Sprintf("%s ×%d", what, n))
	}
	slices.Sort(refusals)
	if len(refusals) > 0 {
		res.Notes = append(res.Notes, "answers retried on the way: "+strings.Join(refusals, ", "))
	}
	killNote := fmt.Sprintf("SIGKILL of a member (its Cairn member and NATS node), down %s", cfg.Down)
	if len(nodes) > 0 {
		killNote = fmt.Sprintf("%d of members (down %s), %d of NATS nodes (down %s; %d of them the event stream's leader)",
			k.kills[killMember], cfg.Down, k.kills[killNATS]+k.kills[killLeader], cfg.NATSDown, k.kills[killLeader])
	}
	res.Figures = append(res.Figures,
		Figure{Name: "kills survived", Value: float64(k.total()), Unit: "", Note: killNote},
		Figure{Name: "member kills", Value: float64(k.kills[killMember])},
	)
	if len(nodes) > 0 {
		res.Figures = append(res.Figures,
			Figure{Name: "NATS node kills", Value: float64(k.kills[killNATS] + k.kills[killLeader]), Note: "a bare NATS node, its members reconnecting to another"},
			Figure{Name: "NATS stream-leader kills", Value: float64(k.kills[killLeader]), Note: "the node that led the event stream when it was killed"},
			Figure{Name: "most processes down at once", Value: float64(k.mostDown)},
		)
	}
	res.Figures = append(res.Figures,
		Figure{Name: "commands acknowledged", Value: float64(acked), Note: fmt.Sprintf("%d given up after %s of retries", log.failed, cfg.Retry)},
		goalFigure("acknowledged commands lost", float64(lost), "", "0", lost == 0, "acknowledged, but not in the stream"),
		goalFigure("commands applied twice", float64(twice), "", "0", twice == 0, "a node stored more than once"),
		Figure{Name: "unacknowledged commands stored", Value: float64(extra), Note: "stored, but the client gave up on it (its replies were lost): allowed, counted"},
		Figure{Name: "command p99 (retries included)", Value: cmd.P99MS, Unit: "ms"},
		Figure{Name: "per-graph command p99, worst graph", Value: durMS(p99s[len(p99s)-1]), Unit: "ms",
			Note: fmt.Sprintf("each graph's own p99 (retries included); median over graphs %.0f ms; every graph in report.json per_graph", durMS(p99s[len(p99s)/2]))},
		Figure{Name: "longest unavailability of a graph", Value: longest[len(longest)-1].Seconds(), Unit: "s",
			Note: fmt.Sprintf("one command's first try to its acknowledgement; per graph: %s", spread(longest))},
	)
	if lost > 0 || twice > 0 {
		return res, fmt.Errorf("chaos: %d acknowledged commands lost, %d applied twice", lost, twice)
	}
	return res, nil
}

func durMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// startChaosMembers starts every member at once (a replicated stream
// needs a quorum of nodes before any member can open the event store),
// waits until each is ready and returns a connection to all of their NATS
// nodes that reconnects for ever.
func startChaosMembers(ctx context.Context, binary string, members []*chaosMember, timeout time.Duration) (*nats.Conn, error) {
	if err := startChaosProcs(ctx, binary, members, timeout); err != nil {
		return nil, err
	}
	return chaosConnect(members)
}

// startChaosProcs starts every process of procs at once and waits until
// each is ready.
func startChaosProcs(ctx context.Context, binary string, procs []*chaosMember, timeout time.Duration) error {
	var wg sync.WaitGroup
	startErrs := make([]error, len(procs))
	for i, m := range procs {
		var err error
		if m.p, err = m.start(binary); err != nil {
			return fmt.Errorf("start %s: %w", m.name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.p.waitReady(ctx, timeout); err != nil {
				startErrs[i] = fmt.Errorf("%s: %w", m.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(startErrs...)
}

// chaosConnect returns a connection to every NATS node of via that
// reconnects for ever.
func chaosConnect(via []*chaosMember) (*nats.Conn, error) {
	nc, err := nats.Connect(strings.Join(memberURLs(via), ","), nats.Name("cairn-bench-chaos"), nats.MaxReconnects(-1),
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
	key, err := chaosKey(dir)
	if err != nil {
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

// chaosKey makes dir and a signing key in it for all the members (each
// checks the chain every other member writes) and returns its path.
func chaosKey(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	seed, err := persistence.NewSigningKey()
	if err != nil {
		return "", err
	}
	key := filepath.Join(dir, "signing.nk")
	if err := os.WriteFile(key, seed, 0o600); err != nil {
		return "", err
	}
	return key, nil
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

// chaosCheck restarts the processes of procs that are down, then reads
// every graph's chain from the stream and checks it against the client's
// log and the members' read models, asked through each NATS node of via.
func chaosCheck(ctx context.Context, cfg ChaosConfig, d Driver, nc *nats.Conn, procs, via []*chaosMember, graphs []string, log *chaosLog) (lost, twice, extra int, err error) {
	for _, m := range procs {
		if m.p == nil {
			if m.p, err = m.start(cfg.Binary); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	for _, m := range procs {
		if err := m.p.waitReady(ctx, cfg.Timeout); err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", m.name, err)
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
		// The members' read models, asked through every node.
		for _, m := range via {
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
