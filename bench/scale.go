package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/benchutil"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Operations the scale scenario records.
const (
	// OpScaleCommand is one single-event AddNode command of the closed
	// loop, sent once (no retries).
	OpScaleCommand = "scale-command"
)

// ScaleConfig shapes the scale scenario: Members `cairn serve --cluster`
// processes on 127.0.0.1, laid out as the chaos scenario lays them out
// (each a Cairn member and a node of one NATS cluster; one member is a
// single NATS server), none killed, under a closed loop of single-event
// commands.
type ScaleConfig struct {
	// Binary is the cairn executable that runs `serve`. Required.
	Binary string
	// DataDir holds the members' data (DataDir/m0, …); empty for a
	// temporary directory removed afterwards.
	DataDir string
	// Members is how many processes run. Default 3.
	Members int
	// Replicas of the event stream, the object store and the membership
	// bucket: 1 to Members (at most 5, as JetStream allows). Default
	// min(Members, 3).
	Replicas int
	// Duration of the closed loop. Default 20 seconds.
	Duration time.Duration
	// Concurrency is how many callers send commands, each one at a time.
	// Default 32; at most Graphs.
	Concurrency int
	// Graphs take the commands, one command in flight per graph at a
	// time. Default 100.
	Graphs int
	// Probe is how many commands the hop probe sends one at a time
	// through one member's NATS node after the load. Default 600; 0 for
	// the default, negative for none.
	Probe int
	// NoBaseline skips the raw JetStream publish baseline.
	NoBaseline bool
	// NoSyncAlways runs the NATS nodes with JetStream's default fsync
	// interval instead of fsync on every write.
	NoSyncAlways bool
	// ServeArgs are more `cairn serve` flags for every member.
	ServeArgs []string
	// Timeout bounds a member's start and each setup step. Default 2
	// minutes.
	Timeout time.Duration
}

func (c *ScaleConfig) setDefaults() {
	if c.Members == 0 {
		c.Members = 3
	}
	if c.Replicas == 0 {
		c.Replicas = min(c.Members, 3)
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 32
	}
	if c.Graphs == 0 {
		c.Graphs = 100
	}
	if c.Probe == 0 {
		c.Probe = 600
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
}

// Validate returns every problem with c, joined.
func (c ScaleConfig) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Binary == "" {
		errs = append(errs, errors.New("scale needs the cairn binary to run serve"))
	}
	if c.Members < 1 {
		errs = append(errs, fmt.Errorf("members must be at least 1, not %d", c.Members))
	}
	if c.Replicas < 1 || c.Replicas > c.Members || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d: want 1 to the members (%d), at most 5", c.Replicas, c.Members))
	}
	if c.Duration < time.Second || c.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("duration %s, timeout %s: too short (at least 1s each)", c.Duration, c.Timeout))
	}
	if c.Graphs < 1 || c.Concurrency < 1 || c.Concurrency > c.Graphs {
		errs = append(errs, fmt.Errorf("concurrency %d and graphs %d: want 1 ≤ concurrency ≤ graphs (one command in flight per graph)", c.Concurrency, c.Graphs))
	}
	return errors.Join(errs...)
}

// scaleIdle is how long the members' idle CPU is measured before the load.
const scaleIdle = 2 * time.Second

// Scale runs the scale scenario. It starts cfg.Members members, creates
// cfg.Graphs graphs, then for cfg.Duration runs cfg.Concurrency callers,
// each sending single-event AddNode commands one at a time to a free graph
// (one command in flight per graph), over one NATS connection given every
// member's URL. It reports commands/s, latency, each member's CPU and
// RSS, the engine processes' CPU per command, the load average, and the
// cross-member hop: each reply names the member that took the command
// and the member whose grain answered (api.MemberHeader,
// api.OwnerHeader), so latencies split into local and forwarded commands,
// under the load and in a probe of cfg.Probe commands sent one at a time
// through the first member's node alone. A command not acknowledged
// fails the scenario.
func Scale(ctx context.Context, cfg ScaleConfig, live io.Writer) (_ *ScenarioResult, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cairn-bench-scale-"); err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	members, clusterName, err := scaleMembers(cfg, dir)
	if err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	var membersMu sync.Mutex // chaosMemory's; nothing here restarts a member
	defer func() {
		for _, m := range members {
			if m.p != nil {
				m.p.kill()
			}
		}
	}()
	res := &ScenarioResult{Scenario: "scale", Driver: "remote (child cairn serve members)", Config: map[string]any{
		"members": cfg.Members, "replicas": cfg.Replicas, "duration_s": cfg.Duration.Seconds(), "concurrency": cfg.Concurrency,
		"graphs": cfg.Graphs, "probe": max(cfg.Probe, 0), "sync_always": !cfg.NoSyncAlways, "serve_args": fmt.Sprint(cfg.ServeArgs),
	}}
	cms := make([]*chaosMember, len(members))
	for i, mb := range members {
		cms[i] = mb.chaosMember
	}
	nc, err := startChaosMembers(ctx, cfg.Binary, cms, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	defer nc.Close()
	urls := make([]string, len(members))
	byClient := map[string]string{} // client URL → member name
	byRemote := map[string]string{} // remote address → member name
	for i, m := range members {
		urls[i] = "nats://" + m.client
		byClient[urls[i]] = m.name
		byRemote[m.remote] = m.name
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	if err := scaleWaitMembers(ctx, js, clusterName, len(members), cfg.Timeout); err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	graphs := make([]string, cfg.Graphs)
	for i := range graphs {
		graphs[i] = fmt.Sprintf("scale-%04d", i)
		create := &cairnv1.CommandEnvelope{GraphId: graphs[i], CommandId: graphs[i] + "-create", Issuer: "cairn-bench",
			Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}}}
		// Creation activates each graph's grain: a member that has just
		// joined may still answer UNAVAILABLE for a moment.
		if _, _, err := scaleRetry(ctx, nc, create, cfg.Timeout); err != nil {
			return nil, fmt.Errorf("scale: create %s: %w", graphs[i], err)
		}
	}
	conn := byClient[nc.ConnectedUrl()]
	if live != nil {
		fmt.Fprintf(live, "scale: %d members up (%s), replicas %d; %d callers over %d graphs for %s; the client is on %s's node\n",
			len(members), strings.Join(urls, " "), cfg.Replicas, cfg.Concurrency, cfg.Graphs, cfg.Duration, conn)
	}

	// The members' CPU while idle (heartbeats, Raft, projections
	// polling): the floor under the load's figures.
	idle0, err := scaleCPU(members)
	if err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	idleStart := time.Now()
	select {
	case <-time.After(scaleIdle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	idle1, err := scaleCPU(members)
	if err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	idleFor := time.Since(idleStart)
	var idleCPU time.Duration
	for i := range members {
		idleCPU += idle1[i] - idle0[i]
	}

	// The load, with each member's CPU around it.
	loadBefore := loadAverage()
	cpu0 := idle1
	self0, selfOK := benchutil.CPUTime()
	res.Started = time.Now()
	res.MemorySource = "the sum of the members' RSS (/proc/<pid>/statm)"
	m := StartMeter(live, "scale", func(context.Context) (MemSample, error) { return chaosMemory(&membersMu, cms) })
	free := make(chan int, len(graphs))
	for i := range graphs {
		free <- i
	}
	next := make([]int, len(graphs)) // per graph, the next node's number (held with the graph)
	split := newScaleSplit()
	var failed atomic.Int64
	retries := &scaleRefusals{n: map[string]int{}}
	var firstErr error
	var errOnce sync.Once
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	var load sync.WaitGroup
	for range cfg.Concurrency {
		load.Add(1)
		go func() {
			defer load.Done()
			for loadCtx.Err() == nil {
				var gi int
				select {
				case gi = <-free:
				case <-loadCtx.Done():
					return
				}
				g, k := graphs[gi], next[gi]
				next[gi]++
				node := "n" + strconv.Itoa(k)
				env := &cairnv1.CommandEnvelope{GraphId: g, CommandId: g + "-" + node, Issuer: "cairn-bench",
					Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: node}}}}}
				start := time.Now()
				// A command sent is seen through, past the load's end:
				// an UNAVAILABLE (a member fenced on a starved machine, a
				// graph moving) is retried with its command id, counted.
				route, refused, err := scaleRetry(ctx, nc, env, 30*time.Second)
				took := time.Since(start)
				free <- gi
				m.Record(OpScaleCommand, 1, took, err)
				if len(refused) > 0 {
					retries.add(refused)
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = fmt.Errorf("graph %s, %s: %w", g, node, err) })
					continue
				}
				if len(refused) == 0 { // a retried command's latency is its retries'
					split.record(route, took)
				}
			}
		}()
	}
	load.Wait()
	ops := res.measured(m)
	cpu1, err := scaleCPU(members)
	if err != nil {
		return res, fmt.Errorf("scale: %w", err)
	}
	self1, _ := benchutil.CPUTime()
	loadAfter := loadAverage()
	cmd := find(ops, OpScaleCommand)

	// Which node leads the event stream (every append goes through it).
	leader := ""
	if st, err := persistenceStream(ctx, js); err == nil {
		if info, err := st.Info(ctx); err == nil && info.Cluster != nil {
			leader = info.Cluster.Leader
		}
	}
	var engineCPU time.Duration
	for i, mb := range members {
		used := cpu1[i] - cpu0[i]
		engineCPU += used
		rss := uint64(0)
		if pm, err := processMem(mb.p.cmd.Process.Pid, false); err == nil {
			rss = pm.RSS
		}
		role := ""
		if mb.name == leader {
			role = "; leads the event stream"
		}
		res.Figures = append(res.Figures,
			Figure{Name: mb.name + " CPU", Value: used.Seconds(), Unit: "s", Note: fmt.Sprintf("%.0f%% of one core over the load%s", 100*used.Seconds()/res.DurationS, role)},
			Figure{Name: mb.name + " RSS", Value: float64(rss) / (1 << 20), Unit: "MiB", Note: "after the load"})
	}
	acked := cmd.Count - cmd.Errors
	idleShare := idleCPU.Seconds() / idleFor.Seconds() // cores
	perCmd, perCmdBusy := 0.0, 0.0
	if acked > 0 {
		perCmd = float64(engineCPU.Microseconds()) / float64(acked)
		perCmdBusy = max(0, engineCPU.Seconds()-idleShare*res.DurationS) * 1e6 / float64(acked)
	}
	res.Figures = append(res.Figures,
		Figure{Name: "commands/s", Value: cmd.Rate, Note: fmt.Sprintf("single-event AddNode, %d callers over %d graphs, one in flight per graph", cfg.Concurrency, cfg.Graphs)},
		Figure{Name: "commands/s per member", Value: cmd.Rate / float64(len(members))},
		Figure{Name: "command p50", Value: cmd.P50MS, Unit: "ms"},
		Figure{Name: "command p99", Value: cmd.P99MS, Unit: "ms"},
		goalFigure("commands not acknowledged", float64(failed.Load()), "", "0", failed.Load() == 0, fmt.Sprintf("of %d sent, each retried for up to 30 s", cmd.Count)),
		Figure{Name: "commands retried", Value: float64(retries.commands), Note: retries.String()},
		Figure{Name: "engine CPU per command", Value: perCmd, Unit: "µs", Note: fmt.Sprintf("the members' processes together: %.1f s of CPU for %d commands", engineCPU.Seconds(), acked)},
		Figure{Name: "engine CPU idle", Value: 100 * idleShare, Unit: "% of a core", Note: fmt.Sprintf("the members together over %s before the load", idleFor.Round(time.Millisecond))},
		Figure{Name: "engine CPU per command, idle subtracted", Value: perCmdBusy, Unit: "µs"},
	)
	if selfOK {
		res.Figures = append(res.Figures, Figure{Name: "load generator CPU", Value: (self1 - self0).Seconds(), Unit: "s", Note: "this process (the callers), on the same cores"})
	}
	res.Figures = append(res.Figures, split.figures("load", len(members) > 1)...)
	res.Notes = append(res.Notes,
		"load average (1, 5, 15 min) before the load: "+loadBefore+"; after: "+loadAfter,
		fmt.Sprintf("the client's NATS connection was on %s's node; the event stream's leader: %s", conn, orNone(leader)),
		split.handlers(byRemote))
	if failed.Load() > 0 {
		res.Notes = append(res.Notes, scaleLogs(members)...)
		return res, fmt.Errorf("scale: %d of %d commands not acknowledged; the first: %w", failed.Load(), cmd.Count, firstErr)
	}

	// The hop probe: commands one at a time through the first member's
	// node alone, on the graphs in turn, split by where they ran. The
	// owner each reply names is checked against cluster.OwnerOf over the
	// membership bucket.
	if cfg.Probe > 0 {
		figs, notes, err := scaleProbe(ctx, cfg, members[0], clusterName, graphs, next, byRemote)
		res.Figures = append(res.Figures, figs...)
		res.Notes = append(res.Notes, notes...)
		if err != nil {
			return res, fmt.Errorf("scale: probe: %w", err)
		}
	}

	// Raw JetStream publishes with the event stream's replicas, of its
	// average transaction, from as many callers.
	if !cfg.NoBaseline {
		b, err := scaleRaw(ctx, js, cfg)
		if err != nil {
			return res, fmt.Errorf("scale: raw baseline: %w", err)
		}
		b.Engine = cmd.Rate
		if b.Raw > 0 {
			b.Ratio = b.Engine / b.Raw
		}
		res.Baselines = append(res.Baselines, b)
	}
	return res, nil
}

// scaleMembers lays the members out as chaosMembers does (data
// directories, client and route addresses, one signing key), with the
// replicas asked for, a fixed remote address for each member (so that a
// reply's member header names it), and for a single member no NATS
// cluster at all. It returns the members and their cluster's name.
func scaleMembers(cfg ScaleConfig, dir string) ([]*scaleMember, string, error) {
	cm, err := chaosMembers(ChaosConfig{Members: cfg.Members, NoSyncAlways: cfg.NoSyncAlways, ServeArgs: cfg.ServeArgs}, dir)
	if err != nil {
		return nil, "", err
	}
	out := make([]*scaleMember, len(cm))
	name := flagValue(cm[0].args, "--cluster")
	for i, m := range cm {
		m.args = setFlag(m.args, "--replicas", strconv.Itoa(cfg.Replicas))
		if cfg.Members == 1 {
			m.args = dropFlag(dropFlag(m.args, "--nats-cluster-listen"), "--nats-routes")
		}
		out[i] = &scaleMember{chaosMember: m}
	}
	return out, name, nil
}

// scaleMember is a chaos member (its remote address is fixed, so that a
// reply's member header names it).
type scaleMember struct {
	*chaosMember
}

// flagValue returns the value that follows flag in args, "" for none.
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// setFlag returns args with flag's value set to v (appended when absent).
func setFlag(args []string, flag, v string) []string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		args[i+1] = v
		return args
	}
	return append(args, flag, v)
}

// dropFlag returns args without flag and its value.
func dropFlag(args []string, flag string) []string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return slices.Delete(args, i, i+2)
	}
	return args
}

func orNone(s string) string {
	if s == "" {
		return "none (a single node)"
	}
	return s
}

// scaleWaitMembers waits until the membership bucket holds n members.
func scaleWaitMembers(ctx context.Context, js jetstream.JetStream, name string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ms, err := cluster.Members(cctx, js, name)
		cancel()
		if err == nil && len(ms) == n {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("cluster %s has %d members after %s, want %d (last error: %v)", name, len(ms), timeout, n, err)
		}
		time.Sleep(100 * time.Millisecond) // polling child processes' membership
	}
}

// scaleLogs returns, for a failed run's report, each member's errors and
// the leader changes its NATS node logged (the first few of each).
func scaleLogs(members []*scaleMember) []string {
	var out []string
	for _, m := range members {
		b, err := os.ReadFile(m.p.stderr.Name())
		if err != nil {
			continue
		}
		n := 0
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "new stream leader") || strings.Contains(line, "metadata leader") {
				out = append(out, m.name+": "+strings.TrimSpace(line))
				if n++; n == 8 {
					break
				}
			}
		}
	}
	return out
}

// scaleRefusals counts the commands that needed a retry and the answers
// that made them.
type scaleRefusals struct {
	mu       sync.Mutex
	commands int
	n        map[string]int
}

func (r *scaleRefusals) add(refused []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commands++
	for _, what := range refused {
		r.n[what]++
	}
}

func (r *scaleRefusals) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.n) == 0 {
		return "none: every command was acknowledged at its first try"
	}
	var parts []string
	for what, n := range r.n {
		parts = append(parts, fmt.Sprintf("%s ×%d", what, n))
	}
	slices.Sort(parts)
	return "answers retried: " + strings.Join(parts, ", ")
}

// scaleCPU reads each member process's CPU time so far.
func scaleCPU(members []*scaleMember) ([]time.Duration, error) {
	out := make([]time.Duration, len(members))
	for i, m := range members {
		c, err := processCPU(m.p.cmd.Process.Pid, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		out[i] = c
	}
	return out, nil
}

// wrongLastSequence reports whether JetStream refused a publish because its
// subject's last sequence was not the one expected.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// scaleRaw publishes for a few seconds, from cfg.Concurrency callers on
// cfg.Graphs subjects (one publish in flight per subject), to a stream with
// the event store's storage and cfg.Replicas replicas, messages of the
// event stream's average size with per-subject optimistic concurrency and
// a message id, as an append does.
func scaleRaw(ctx context.Context, js jetstream.JetStream, cfg ScaleConfig) (Baseline, error) {
	payload := 200
	if st, err := persistenceStream(ctx, js); err == nil {
		if info, err := st.Info(ctx); err == nil && info.State.Msgs > 0 {
			payload = int(info.State.Bytes / info.State.Msgs)
		}
	}
	const name = "bench-raw-scale"
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	stream, err := js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{"bench.rawscale.>"}, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		Duplicates: 2 * time.Minute, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew,
	})
	if err != nil {
		return Baseline{}, fmt.Errorf("stream %s: %w", name, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, name) // best effort: the next run reuses it
	}()
	run := nuid.Next()
	data := make([]byte, payload)
	last := make([]uint64, cfg.Graphs)
	free := make(chan int, cfg.Graphs)
	for i := range cfg.Graphs {
		free <- i
	}
	lat := benchutil.NewLatency()
	dur := min(cfg.Duration, 5*time.Second)
	pctx, stop := context.WithTimeout(cctx, dur)
	defer stop()
	var n, retries atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pctx.Err() == nil {
				var i int
				select {
				case i = <-free:
				case <-pctx.Done():
					return
				}
				msg := &nats.Msg{Subject: "bench.rawscale." + run + "." + strconv.Itoa(i), Data: data, Header: nats.Header{}}
				msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last[i], 10))
				msg.Header.Set(jetstream.MsgIDHeader, nuid.Next())
				t := time.Now()
				ack, err := js.PublishMsg(cctx, msg)
				switch {
				case err == nil:
					last[i] = ack.Sequence
					lat.Record(time.Since(t))
					n.Add(1)
				case wrongLastSequence(err) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, context.DeadlineExceeded):
					// A publish whose answer was lost (nats.go sends it
					// again on no responders) may be stored all the same,
					// as an append's can: take the subject's last sequence
					// again, as the grain does, and go on.
					if m, gerr := stream.GetLastMsgForSubject(cctx, msg.Subject); gerr == nil {
						last[i] = m.Sequence
						retries.Add(1)
					} else if !errors.Is(gerr, jetstream.ErrMsgNotFound) {
						errOnce.Do(func() { firstErr = errors.Join(err, gerr) })
					}
				default:
					errOnce.Do(func() { firstErr = err })
				}
				free <- i
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if firstErr != nil {
		return Baseline{}, fmt.Errorf("publish: %w", firstErr)
	}
	return Baseline{
		Name: "single-event commands vs raw OCC publish", Unit: "msgs/s", Raw: float64(n.Load()) / wall.Seconds(),
		RawP50MS: msOf(lat.Quantile(50)), RawP99MS: msOf(lat.Quantile(99)), PayloadB: payload, Concurrent: cfg.Concurrency,
		Note: fmt.Sprintf("%s of publishes to a stream of %d replicas (the event store's storage), one in flight per subject over %d subjects, each with the expected last subject sequence and a message id; %d answers lost or refused as out of date were resumed from the subject's last sequence", dur, cfg.Replicas, cfg.Graphs, retries.Load()),
	}, nil
}
