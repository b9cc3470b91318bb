package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/cluster"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// OpFailoverCommand is one command of the failover scenario's load, from
// its first try to its acknowledgement, retries (same command id)
// included.
const OpFailoverCommand = "failover-command"

// failoverRequestTimeout is how long the failover scenario's client waits
// for one answer before it sends the command again.
const failoverRequestTimeout = 2 * time.Second

// FailoverConfig shapes the failover scenario: three `cairn serve`
// members, each an embedded node of one NATS JetStream cluster (replicas
// 3, fsync on every write), under steady load across Graphs graphs, go
// through four faults one after the other, each measured on its own.
type FailoverConfig struct {
	// Binary is the cairn executable that runs `serve`. Required.
	Binary string
	// DataDir holds the members' data; empty for a temporary directory
	// removed afterwards.
	DataDir string
	// Graphs is how many graphs take commands. Default 100.
	Graphs int
	// Rate is the commands per second offered over all graphs. Default
	// 500.
	Rate int
	// Settle is how long the load runs before the first fault and after
	// each one has healed. Default 5 seconds.
	Settle time.Duration
	// Restarts is how many times in a row one member is restarted.
	// Default 5.
	Restarts int
	// ClusterTTL is the members' membership TTL (serve's --cluster-ttl);
	// 0 for serve's default.
	ClusterTTL time.Duration
	// Retry bounds how long a client retries one command. Default 60
	// seconds.
	Retry time.Duration
	// Timeout bounds a member's start, each fault's healing and the
	// final checks. Default 2 minutes.
	Timeout time.Duration
	// NoSyncAlways runs the NATS nodes with JetStream's default fsync
	// interval instead of fsync on every write.
	NoSyncAlways bool
	// ServeArgs are more `cairn serve` flags for every member.
	ServeArgs []string
	// Faults names the faults to run, in their fixed order, from
	// FailoverFaults. Default all four.
	Faults []string
}

// FailoverFaults are the failover scenario's faults, in the order they
// run: a member's SIGKILL, the event stream leader's SIGKILL, a member's
// SIGSTOP, a member's restarts.
var FailoverFaults = []string{"member", "stream-leader", "pause", "restart"}

func (c *FailoverConfig) setDefaults() {
	if c.Graphs == 0 {
		c.Graphs = 100
	}
	if c.Rate == 0 {
		c.Rate = 500
	}
	if c.Settle == 0 {
		c.Settle = 5 * time.Second
	}
	if c.Restarts == 0 {
		c.Restarts = 5
	}
	if c.Retry == 0 {
		c.Retry = 60 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if len(c.Faults) == 0 {
		c.Faults = FailoverFaults
	}
}

// Validate returns every problem with c, joined.
func (c FailoverConfig) Validate() error {
	c.setDefaults()
	var errs []error
	for _, f := range c.Faults {
		if !slices.Contains(FailoverFaults, f) {
			errs = append(errs, fmt.Errorf("fault %q: want one of %s", f, strings.Join(FailoverFaults, ", ")))
		}
	}
	if c.Binary == "" {
		errs = append(errs, errors.New("failover needs the cairn binary to run serve"))
	}
	if c.Graphs < 3 || c.Rate < 1 {
		errs = append(errs, fmt.Errorf("graphs %d must be at least 3 (one or more per member) and rate %d positive", c.Graphs, c.Rate))
	}
	if c.Settle < 100*time.Millisecond || c.Restarts < 1 || c.Retry < time.Second || c.Timeout < time.Second || c.ClusterTTL < 0 {
		errs = append(errs, fmt.Errorf("settle %s, restarts %d, retry %s, timeout %s, cluster TTL %s: out of range (at least 100ms, 1, 1s, 1s, 0)",
			c.Settle, c.Restarts, c.Retry, c.Timeout, c.ClusterTTL))
	}
	return errors.Join(errs...)
}

// failoverRun is one failover scenario under way.
type failoverRun struct {
	cfg     FailoverConfig
	ttl     time.Duration
	members []*chaosMember
	mu      sync.Mutex // guards members[i].p
	nc      *nats.Conn // the client's
	js      jetstream.JetStream
	log     *chaosLog
	graphs  []string
	live    io.Writer
	res     *ScenarioResult
}

// Failover runs the failover scenario of issue 13 point 4: three members
// and three NATS nodes on 127.0.0.1 under steady load (cfg.Rate commands/s
// over cfg.Graphs graphs, each command retried with the same id until
// acknowledged), and one after the other:
//
//  1. SIGKILL of a member that leads no stream: the graphs it did not own
//     must see no failed command, the graphs it owned must accept
//     commands again within 5 s (the distribution is reported);
//  2. SIGKILL of the event stream's leader (a member and its NATS node):
//     writes must resume within 10 s;
//  3. SIGSTOP of a member for twice the membership TTL, then SIGCONT: it
//     must fence itself (its log says so) and write nothing after it
//     resumes;
//  4. cfg.Restarts restarts in a row of one member (SIGINT and SIGKILL in
//     turn): each time it must rejoin with a fresh id and serve its share
//     of the graphs.
//
// After each fault the load runs cfg.Settle more. Then every graph's chain
// must verify, every acknowledged command must be stored exactly once and
// a query through every member's node (answered by the graph's owner)
// must agree with the stream.
func Failover(ctx context.Context, cfg FailoverConfig, live io.Writer) (_ *ScenarioResult, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cairn-bench-failover-"); err != nil {
			return nil, fmt.Errorf("failover: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	// A read-model snapshot round about every 2 s of load, so that a graph
	// that moves has a snapshot of its read model to be adopted from (with
	// serve's default, 100,000 events, a run takes no round).
	serveArgs := append([]string{"--readmodel-snapshot-every", strconv.Itoa(max(2*cfg.Rate, 100))}, cfg.ServeArgs...)
	ttl := 3 * time.Second // serve's default
	if cfg.ClusterTTL > 0 {
		ttl = cfg.ClusterTTL
		serveArgs = append(serveArgs, "--cluster-ttl", cfg.ClusterTTL.String())
	}
	members, err := chaosMembers(ChaosConfig{DataDir: cfg.DataDir, Members: 3, NoSyncAlways: cfg.NoSyncAlways, ServeArgs: serveArgs}, dir)
	if err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	r := &failoverRun{cfg: cfg, ttl: ttl, members: members, live: live}
	defer func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, m := range members {
			if m.p != nil {
				m.p.kill()
			}
		}
	}()
	r.res = &ScenarioResult{Scenario: "failover", Driver: "remote (child cairn serve members)", Config: map[string]any{
		"members": 3, "nats_nodes": 3, "replicas": 3, "graphs": cfg.Graphs, "rate": cfg.Rate, "settle_s": cfg.Settle.Seconds(),
		"restarts": cfg.Restarts, "cluster_ttl_s": ttl.Seconds(), "client_request_timeout_s": failoverRequestTimeout.Seconds(), "retry_s": cfg.Retry.Seconds(), "sync_always": !cfg.NoSyncAlways,
		"serve_args": fmt.Sprint(serveArgs), "faults": strings.Join(cfg.Faults, ","),
	}}
	nc, err := startChaosMembers(ctx, cfg.Binary, members, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	defer nc.Close()
	r.nc = nc
	if r.js, err = jetstream.New(nc); err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	// A client that waits 2 s for an answer before it sends the command
	// again (same id): a request in flight to a node that was killed is
	// never answered, and its wait would count against the graph.
	d, err := Remote(nc, failoverRequestTimeout)
	if err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	var timeline []sentCommand
	r.log = newChaosLog()
	r.log.timeline = &timeline
	if r.graphs, err = createChaosGraphs(ctx, d, "failover", cfg.Graphs, cfg.Retry, r.log); err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	r.say("failover: 3 members up (%s); %d graphs, %d commands/s, membership TTL %s", strings.Join(memberURLs(members), " "), cfg.Graphs, cfg.Rate, ttl)

	r.res.Started = time.Now()
	m := StartMeter(live, "failover", func(context.Context) (MemSample, error) { return chaosMemory(&r.mu, members) })
	r.res.MemorySource = "the sum of the members' RSS (/proc/<pid>/statm) of the members up at each sample"
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var load sync.WaitGroup
	load.Add(1)
	go func() {
		defer load.Done()
		steadyLoad(ctx, loadCtx, d, r.graphs, cfg.Rate, cfg.Retry, r.log, m, OpFailoverCommand)
	}()

	phaseErr := r.phases(ctx)
	stopLoad()
	load.Wait()
	ops := r.res.measured(m)
	if phaseErr != nil {
		return r.res, fmt.Errorf("failover: %w", phaseErr)
	}
	lost, twice, extra, err := chaosCheck(ctx, ChaosConfig{Binary: cfg.Binary, Timeout: cfg.Timeout}, d, nc, members, members, r.graphs, r.log)
	if err != nil {
		return r.res, fmt.Errorf("failover: check: %w", err)
	}
	acked := 0
	for _, g := range r.graphs {
		acked += len(r.log.acked[g])
	}
	cmd := find(ops, OpFailoverCommand)
	r.res.Figures = append(r.res.Figures,
		Figure{Name: "commands acknowledged", Value: float64(acked), Note: fmt.Sprintf("%d given up after %s of retries", r.log.failed, cfg.Retry)},
		goalFigure("acknowledged commands lost", float64(lost), "", "0", lost == 0, "acknowledged, but not in the stream"),
		goalFigure("commands applied twice", float64(twice), "", "0", twice == 0, "a node stored more than once"),
		Figure{Name: "unacknowledged commands stored", Value: float64(extra), Note: "stored, but the client gave up on it: allowed, counted"},
		Figure{Name: "command p99 (retries included)", Value: cmd.P99MS, Unit: "ms"},
	)
	if lost > 0 || twice > 0 {
		return r.res, fmt.Errorf("failover: %d acknowledged commands lost, %d applied twice", lost, twice)
	}
	return r.res, nil
}

func (r *failoverRun) say(format string, args ...any) {
	if r.live != nil {
		fmt.Fprintf(r.live, format+"\n", args...)
	}
}

// phases runs the four faults, each after cfg.Settle of load.
func (r *failoverRun) phases(ctx context.Context) error {
	if err := r.settle(ctx); err != nil {
		return err
	}
	for i, phase := range []func(context.Context) error{r.killMember, r.killStreamLeader, r.pauseMember, r.restartMember} {
		if !slices.Contains(r.cfg.Faults, FailoverFaults[i]) {
			continue
		}
		if err := phase(ctx); err != nil {
			return err
		}
		if err := r.settle(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *failoverRun) settle(ctx context.Context) error {
	select {
	case <-time.After(r.cfg.Settle):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leaderWait bounds how long leaders waits for a stream's leader: after
// the previous fault killed the node that led the JetStream meta group,
// stream info goes unanswered until the meta group has elected again,
// which took over 10 s on a loaded 2-core CI machine.
const leaderWait = 30 * time.Second

// leaders returns the names of the NATS nodes that lead the event stream
// and the membership bucket's stream.
func (r *failoverRun) leaders(ctx context.Context) (stream, kv string, err error) {
	lead := func(name string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, leaderWait)
		defer cancel()
		for {
			s, err := r.js.Stream(cctx, name)
			if err == nil {
				if info := s.CachedInfo(); info.Cluster != nil && info.Cluster.Leader != "" {
					return info.Cluster.Leader, nil
				}
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-cctx.Done():
				return "", fmt.Errorf("the leader of stream %s: %w", name, errors.Join(err, cctx.Err()))
			}
		}
	}
	if stream, err = lead(persistence.DefaultStoreConfig().Stream); err != nil {
		return "", "", err
	}
	if kv, err = lead("KV_" + cluster.BucketName(chaosCluster)); err != nil {
		return "", "", err
	}
	return stream, kv, nil
}

// member returns the member named name.
func (r *failoverRun) member(name string) (*chaosMember, error) {
	for _, m := range r.members {
		if m.name == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no member is named %q (a NATS node's name)", name)
}

// follower returns a member whose NATS node leads neither the event
// stream nor the membership bucket, so that a fault on it is a member's
// fault and not a NATS leader election; and, if one can be found, none
// of avoid.
func (r *failoverRun) follower(ctx context.Context, avoid ...string) (*chaosMember, error) {
	stream, kv, err := r.leaders(ctx)
	if err != nil {
		return nil, err
	}
	var found *chaosMember
	for _, m := range r.members {
		if m.name == stream || m.name == kv {
			continue
		}
		if !slices.Contains(avoid, m.name) {
			return m, nil
		}
		found = m
	}
	if found != nil {
		return found, nil
	}
	return nil, fmt.Errorf("every member leads a stream (event stream on %s, membership on %s)", stream, kv)
}

// idsAt returns the ids the membership bucket lists at the remote address
// addr.
func (r *failoverRun) idsAt(ctx context.Context, addr string) ([]string, error) {
	infos, err := cluster.Members(ctx, r.js, chaosCluster)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, i := range infos {
		if i.Address() == addr {
			ids = append(ids, i.ID)
		}
	}
	return ids, nil
}

// owned returns the graphs that the member m owns in the membership the
// bucket holds now, waiting (up to Timeout) until the bucket lists want
// members at want addresses, m's among them, leaving out the member ids
// in stale. A member that died or fenced itself keeps its key until the
// others delete it or it expires: with it, a restarted process was listed
// twice (or its old id in place of its new one), and the owners computed
// were not the ones the members use.
func (r *failoverRun) owned(ctx context.Context, m *chaosMember, want int, stale ...string) (map[string]bool, error) {
	deadline := time.Now().Add(r.cfg.Timeout)
	for {
		infos, err := cluster.Members(ctx, r.js, chaosCluster)
		infos = slices.DeleteFunc(infos, func(i cluster.MemberInfo) bool { return slices.Contains(stale, i.ID) })
		addrs := map[string]bool{}
		for _, i := range infos {
			addrs[i.Address()] = true
		}
		if err == nil && len(infos) == want && len(addrs) == want && addrs[m.remote] {
			out := map[string]bool{}
			for _, g := range r.graphs {
				if o, ok := cluster.OwnerOf(actors.GraphKind, g, infos); ok && o.Address() == m.remote {
					out[g] = true
				}
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the membership bucket lists %d members at %d addresses (%v), want %d with %s", len(infos), len(addrs), errors.Join(err, ctx.Err()), want, m.remote)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// waitServed waits until every graph has an acknowledged command sent
// after at, and returns when the last of them was acknowledged.
func (r *failoverRun) waitServed(ctx context.Context, at time.Time) (time.Time, error) {
	deadline := time.Now().Add(r.cfg.Timeout)
	for {
		r.log.mu.Lock()
		served := map[string]time.Time{}
		for _, c := range *r.log.timeline {
			if c.acked && !c.start.Before(at) {
				if t, ok := served[c.graph]; !ok || c.end.Before(t) {
					served[c.graph] = c.end
				}
			}
		}
		r.log.mu.Unlock()
		if len(served) == len(r.graphs) {
			var last time.Time
			for _, t := range served {
				if t.After(last) {
					last = t
				}
			}
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d of %d graphs acknowledged no command within %s of the fault", len(r.graphs)-len(served), len(r.graphs), r.cfg.Timeout)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// stall is, per graph of set, how long it kept a command waiting from at
// on: the longest of (acknowledgement − max(first try, at)) over its
// commands in flight at at or sent within a second after it. A graph
// that was not disturbed stalls for one command's latency; one whose
// owner died, until a new owner answered.
func (r *failoverRun) stall(at time.Time, set func(string) bool) []time.Duration {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	per := map[string]time.Duration{}
	for _, c := range *r.log.timeline {
		if !set(c.graph) || c.end.Before(at) || c.start.After(at.Add(time.Second)) {
			continue
		}
		per[c.graph] = max(per[c.graph], c.end.Sub(later(c.start, at)))
	}
	out := make([]time.Duration, 0, len(per))
	for _, d := range per {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// disturbed counts the commands of the graphs in set, in flight between
// from and to, that needed more than one try or were given up.
func (r *failoverRun) disturbed(from, to time.Time, set func(string) bool) (retried, failed int) {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	for _, c := range *r.log.timeline {
		if !set(c.graph) || c.end.Before(from) || c.start.After(to) {
			continue
		}
		if !c.acked {
			failed++
		} else if c.tries > 1 {
			retried++
		}
	}
	return retried, failed
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// spread describes sorted durations: min, median, 90th percentile, max.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	q := func(p float64) float64 { return ds[min(len(ds)-1, int(p*float64(len(ds))))].Seconds() }
	return fmt.Sprintf("min %.2f s, median %.2f s, p90 %.2f s, max %.2f s over %d graphs", ds[0].Seconds(), q(0.5), q(0.9), ds[len(ds)-1].Seconds(), len(ds))
}

// kill stops m's process with SIGKILL and returns when it did.
func (r *failoverRun) kill(m *chaosMember) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := time.Now()
	m.p.kill()
	m.p = nil
	return at
}

// restart starts m again and waits until it is ready.
func (r *failoverRun) restart(ctx context.Context, m *chaosMember) (time.Duration, error) {
	p, err := startServeLogged(r.cfg.Binary, m.args, m.dir, m.client, m.log)
	if err != nil {
		return 0, fmt.Errorf("restart %s: %w", m.name, err)
	}
	r.mu.Lock()
	m.p = p
	r.mu.Unlock()
	if err := p.waitReady(ctx, r.cfg.Timeout); err != nil {
		return 0, fmt.Errorf("restart %s: %w", m.name, err)
	}
	return time.Since(p.started), nil
}

// killMember is fault 1: SIGKILL of a member that leads no stream, kept
// down until every graph answered again.
func (r *failoverRun) killMember(ctx context.Context) error {
	victim, err := r.follower(ctx)
	if err != nil {
		return fmt.Errorf("member kill: %w", err)
	}
	owned, err := r.owned(ctx, victim, 3)
	if err != nil {
		return fmt.Errorf("member kill: %w", err)
	}
	survivor := r.members[0]
	if survivor == victim {
		survivor = r.members[1]
	}
	before, err := partitionStats(ctx, survivor)
	if err != nil {
		return fmt.Errorf("member kill: %w", err)
	}
	at := r.kill(victim)
	// Meanwhile, the victim's graphs are queried through a survivor until
	// each answers: their read models move to the survivors.
	type readBack struct {
		back []time.Duration
		err  error
	}
	reads := make(chan readBack, 1)
	go func() {
		back, err := r.queryBack(ctx, survivor, at, owned)
		reads <- readBack{back, err}
	}()
	healed, err := r.waitServed(ctx, at)
	if err != nil {
		return fmt.Errorf("member kill: %w", err)
	}
	rb := <-reads
	if rb.err != nil {
		return fmt.Errorf("member kill: %w", rb.err)
	}
	after, err := partitionStats(ctx, survivor)
	if err != nil {
		return fmt.Errorf("member kill: %w", err)
	}
	adoptions, fromSnap, longest := adoptedSince(before, after)
	// The others' graphs: nothing in flight from the kill until every
	// graph answered again may have failed.
	retried, failed := r.disturbed(at, healed, func(g string) bool { return !owned[g] })
	others := r.stall(at, func(g string) bool { return !owned[g] })
	back := r.stall(at, func(g string) bool { return owned[g] })
	ready, err := r.restart(ctx, victim)
	if err != nil {
		return fmt.Errorf("member kill: %w", err)
	}
	worst := back[len(back)-1]
	r.res.Figures = append(r.res.Figures,
		goalFigure("member kill: failed commands of graphs it did not own", float64(failed), "", "0", failed == 0,
			fmt.Sprintf("%d of them retried at least once; their stall %s", retried, spread(others))),
		goalFigure("member kill: its graphs accept commands again after", worst.Seconds(), "s", "≤ 5", worst <= 5*time.Second,
			fmt.Sprintf("from the SIGKILL; %s (membership TTL %s)", spread(back), r.ttl)),
		Figure{Name: "member kill: its graphs answer queries again after", Value: rb.back[len(rb.back)-1].Seconds(), Unit: "s",
			Note: fmt.Sprintf("from the SIGKILL, through %s; %s", survivor.name, spread(rb.back))},
		Figure{Name: "member kill: read models adopted by the survivors", Value: float64(adoptions),
			Note: fmt.Sprintf("%d of them from a read-model snapshot, the rest folded from the graph's first transaction; the longest adoption of a survivor %.0f ms",
				fromSnap, longest)},
	)
	r.note("fault 1, SIGKILL of member %s (it owned %d of %d graphs, led no stream): its graphs back after %s; the others' %d commands in flight: %d failed, %d retried; restarted, ready in %s",
		victim.name, len(owned), len(r.graphs), spread(back), len(r.graphs)-len(owned), failed, retried, ready.Round(time.Millisecond))
	r.note("fault 1, read models: the victim's graphs answered queries through %s again after %s; the survivors adopted %d read models, %d from a snapshot (longest %.0f ms)",
		survivor.name, spread(rb.back), adoptions, fromSnap, longest)
	return nil
}

// queryBack queries each graph of set through member m until it answers,
// and returns how long after at each did, sorted.
func (r *failoverRun) queryBack(ctx context.Context, m *chaosMember, at time.Time, set map[string]bool) ([]time.Duration, error) {
	nc, err := nats.Connect("nats://"+m.client, nats.Name("cairn-bench-failover-reads"), nats.Timeout(time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", m.name, err)
	}
	defer nc.Close()
	d, err := Remote(nc, failoverRequestTimeout)
	if err != nil {
		return nil, err
	}
	deadline := at.Add(r.cfg.Timeout)
	var back []time.Duration
	for g := range set {
		for {
			rep, err := d.Query(ctx, &cairnv1.QueryRequest{GraphId: g, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
			if queryErr(rep, err) == nil {
				back = append(back, time.Since(at))
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("graph %s answers no query through %s %s after the kill: %w", g, m.name, r.cfg.Timeout, queryErr(rep, err))
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	slices.Sort(back)
	return back, nil
}

// partitionStats returns the read-model partitions of the members that
// answer the service's stats through m's NATS node within half a second,
// by manifest series (one per member).
func partitionStats(ctx context.Context, m *chaosMember) (map[string]api.PartitionHealth, error) {
	nc, err := nats.Connect("nats://"+m.client, nats.Name("cairn-bench-failover-stats"), nats.Timeout(time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", m.name, err)
	}
	defer nc.Close()
	subject, err := micro.ControlSubject(micro.StatsVerb, api.ServiceName, "")
	if err != nil {
		return nil, err
	}
	sub, err := nc.SubscribeSync(nc.NewRespInbox())
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, sub.Subject, nil); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	out := map[string]api.PartitionHealth{}
	for {
		msg, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			return out, nil // every member that answered in time
		}
		var st micro.Stats
		if json.Unmarshal(msg.Data, &st) != nil {
			continue
		}
		for _, e := range st.Endpoints {
			var h api.ProjectionHealth
			if e != nil && e.Name == "query" && json.Unmarshal(e.Data, &h) == nil && h.Partition != nil {
				out[h.Partition.Series] = *h.Partition
			}
		}
	}
}

// adoptedSince sums what the members in after adopted since before.
func adoptedSince(before, after map[string]api.PartitionHealth) (adoptions, fromSnapshot uint64, longestMs float64) {
	for series, a := range after {
		b := before[series]
		adoptions += a.Adoptions - b.Adoptions
		fromSnapshot += a.FromSnapshot - b.FromSnapshot
		if a.Adoptions > b.Adoptions {
			longestMs = max(longestMs, a.MaxAdoptMs)
		}
	}
	return adoptions, fromSnapshot, longestMs
}

func (r *failoverRun) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.res.Notes = append(r.res.Notes, s)
	r.say("failover: %s", s)
}

// killStreamLeader is fault 2: SIGKILL of the member whose NATS node leads
// the event stream, kept down until every graph answered again.
func (r *failoverRun) killStreamLeader(ctx context.Context) error {
	stream, kv, err := r.leaders(ctx)
	if err != nil {
		return fmt.Errorf("stream leader kill: %w", err)
	}
	victim, err := r.member(stream)
	if err != nil {
		return fmt.Errorf("stream leader kill: %w", err)
	}
	owned, err := r.owned(ctx, victim, 3)
	if err != nil {
		return fmt.Errorf("stream leader kill: %w", err)
	}
	// The survivors' logs from here on: when they dropped the victim.
	offsets := r.logOffsets(victim)
	// The elections' advisories, timed as they arrive.
	streamAdv, stopStream := r.advisories(persistence.DefaultStoreConfig().Stream)
	defer stopStream()
	kvAdv, stopKV := r.advisories("KV_" + cluster.BucketName(chaosCluster))
	defer stopKV()
	at := r.kill(victim)
	// Where the seconds go: NATS's elections of the two leaders (polled),
	// the survivors' drop of the dead member (their logs), and what is
	// left after the last of them is the engine's and the client's.
	var elections sync.WaitGroup
	var streamElected, kvElected time.Duration
	elections.Add(2)
	go func() {
		defer elections.Done()
		streamElected = r.elected(ctx, streamAdv, persistence.DefaultStoreConfig().Stream, victim.name, at)
	}()
	go func() {
		defer elections.Done()
		if kv == stream {
			kvElected = r.elected(ctx, kvAdv, "KV_"+cluster.BucketName(chaosCluster), victim.name, at)
		}
	}()
	if _, err := r.waitServed(ctx, at); err != nil {
		return fmt.Errorf("stream leader kill: %w", err)
	}
	elections.Wait()
	dropped := r.droppedAfter(offsets, at)
	all := r.stall(at, func(string) bool { return true })
	others := r.stall(at, func(g string) bool { return !owned[g] })
	ownedStall := r.stall(at, func(g string) bool { return owned[g] })
	newStream, _, err := r.leaders(ctx)
	if err != nil {
		return fmt.Errorf("stream leader kill: %w", err)
	}
	ready, err := r.restart(ctx, victim)
	if err != nil {
		return fmt.Errorf("stream leader kill: %w", err)
	}
	worst := all[len(all)-1]
	r.res.Figures = append(r.res.Figures,
		goalFigure("stream leader kill: writes resume after", worst.Seconds(), "s", "≤ 10", worst <= 10*time.Second,
			fmt.Sprintf("from the SIGKILL to the last graph's acknowledgement; all graphs %s; the graphs the member did not own %s", spread(all), spread(others))),
	)
	kvNote := ""
	if kv == stream {
		kvNote = " and the membership bucket"
	}
	r.note("fault 2, SIGKILL of member %s, whose NATS node led the event stream%s (it owned %d graphs): every graph answered again after %s; new stream leader %s; restarted, ready in %s",
		victim.name, kvNote, len(owned), spread(all), newStream, ready.Round(time.Millisecond))
	r.note("fault 2 timeline from the SIGKILL: event stream leader elected after %s, membership bucket leader %s, the dead member dropped by the survivors after %s; its graphs answered again after %s",
		secs(streamElected), secs(kvElected), secs(dropped), spread(ownedStall))
	r.res.Figures = append(r.res.Figures,
		Figure{Name: "stream leader kill: stream leader elected after", Value: streamElected.Seconds(), Unit: "s", Note: "NATS's raft election (polled every 50 ms; 0: not seen)"},
		Figure{Name: "stream leader kill: membership bucket leader after", Value: kvElected.Seconds(), Unit: "s", Note: "0 when its leader was not on the killed node"},
		Figure{Name: "stream leader kill: dead member dropped after", Value: dropped.Seconds(), Unit: "s", Note: "the first survivor's log line that drops it"},
	)
	return nil
}

// secs formats d in seconds, "-" when it is 0 (not seen).
func secs(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// advisories returns a channel that gets the arrival time of each of
// stream's leader-elected advisories, and a func that stops them.
func (r *failoverRun) advisories(stream string) (<-chan time.Time, func()) {
	ch := make(chan time.Time, 16)
	sub, err := r.nc.Subscribe("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."+stream, func(*nats.Msg) {
		select {
		case ch <- time.Now():
		default:
		}
	})
	if err != nil {
		return ch, func() {}
	}
	return ch, func() { _ = sub.Unsubscribe() }
}

// elected returns how long after at stream, which old led, elected
// another leader: when its advisory came (adv), else when a poll of its
// info first names another (a second late at most); 0 when neither was
// seen within the run's timeout.
func (r *failoverRun) elected(ctx context.Context, adv <-chan time.Time, stream, old string, at time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	for {
		select {
		case t := <-adv:
			if t.After(at) {
				return t.Sub(at)
			}
			continue
		default:
		}
		ictx, icancel := context.WithTimeout(ctx, 250*time.Millisecond)
		s, err := r.js.Stream(ictx, stream)
		icancel()
		if err == nil {
			if info := s.CachedInfo(); info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != old {
				select {
				case t := <-adv:
					if t.After(at) {
						return t.Sub(at)
					}
				case <-time.After(200 * time.Millisecond):
				}
				return time.Since(at)
			}
		}
		select {
		case t := <-adv:
			if t.After(at) {
				return t.Sub(at)
			}
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return 0
		}
	}
}

// logOffsets returns the sizes of the logs of the members other than
// victim, to read what they log from now on.
func (r *failoverRun) logOffsets(victim *chaosMember) map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int64{}
	for _, m := range r.members {
		if m == victim || m.p == nil {
			continue
		}
		if fi, err := os.Stat(m.p.stderr.Name()); err == nil {
			out[m.p.stderr.Name()] = fi.Size()
		}
	}
	return out
}

// droppedAfter returns how long after at the first of the logs (from
// their offsets on) said that a member left the topology; 0 when none did.
func (r *failoverRun) droppedAfter(offsets map[string]int64, at time.Time) time.Duration {
	var first time.Time
	for path, off := range offsets {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if _, err := f.Seek(off, io.SeekStart); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if strings.Contains(line, "cluster topology") && !strings.Contains(line, "left=0") {
					if t := logTime(line); !t.IsZero() && (first.IsZero() || t.Before(first)) {
						first = t
					}
					break
				}
			}
		}
		f.Close()
	}
	if first.IsZero() {
		return 0
	}
	return first.Sub(at)
}

// pauseMember is fault 3: SIGSTOP of a member that leads no stream for
// twice the membership TTL, then SIGCONT; its log must show that it
// fenced itself on resuming, before any append, and that it joined again
// as a fresh member.
func (r *failoverRun) pauseMember(ctx context.Context) error {
	// Not the member whose NATS node the client is connected to: the
	// client would wait out the pause on its stalled connection, and that
	// is the client's fault to measure, not the cluster's.
	victim, err := r.follower(ctx, r.nc.ConnectedServerName())
	if err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	owned, err := r.owned(ctx, victim, 3)
	if err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	r.mu.Lock()
	p := victim.p
	r.mu.Unlock()
	fi, err := os.Stat(p.stderr.Name())
	if err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	logStart := fi.Size()
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause: SIGSTOP %s: %w", victim.name, err)
	}
	select {
	case <-time.After(2 * r.ttl):
	case <-ctx.Done():
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		return ctx.Err()
	}
	resumed := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("pause: SIGCONT %s: %w", victim.name, err)
	}
	if _, err := r.waitServed(ctx, resumed); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	// Its log from the pause on: the fence, then the rejoin.
	var fenced, rejoined time.Time
	deadline := time.Now().Add(r.cfg.Timeout)
	for rejoined.IsZero() {
		fenced, rejoined, err = readFence(p.stderr.Name(), logStart)
		if err != nil {
			return fmt.Errorf("pause: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pause: %s's log shows no fence and rejoin within %s of SIGCONT (fenced %v)%s", victim.name, r.cfg.Timeout, !fenced.IsZero(), p.stderrTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	back := r.stall(at, func(g string) bool { return owned[g] })
	r.res.Figures = append(r.res.Figures,
		goalFigure("pause: fenced itself on resuming", 1, "", "1", true,
			fmt.Sprintf("SIGSTOP for %s (twice the TTL); its log says it fenced itself %.0f ms after SIGCONT and joined again as a fresh member %.2f s after it; "+
				"its grains check the fence before every append, and the final check finds no command applied twice", 2*r.ttl, fenced.Sub(resumed).Seconds()*1000, rejoined.Sub(resumed).Seconds())),
	)
	r.note("fault 3, SIGSTOP of member %s for %s (it owned %d graphs): its graphs answered again after %s from the SIGSTOP; it fenced itself %.0f ms after SIGCONT and rejoined %.2f s after it",
		victim.name, 2*r.ttl, len(owned), spread(back), fenced.Sub(resumed).Seconds()*1000, rejoined.Sub(resumed).Seconds())
	return nil
}

// readFence reads a member's text log from offset on and returns when it
// logged its fence and when it next joined the cluster.
func readFence(path string, offset int64) (fenced, rejoined time.Time, err error) {
	f, err := os.Open(path)
	if err != nil {
		return fenced, rejoined, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fenced, rejoined, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		at := logTime(line)
		switch {
		case strings.Contains(line, "member fenced itself"):
			if fenced.IsZero() {
				fenced = at
			}
		case !fenced.IsZero() && strings.Contains(line, "joined the cluster"):
			if rejoined.IsZero() {
				rejoined = at
			}
		}
	}
	return fenced, rejoined, sc.Err()
}

// logTime is the time= attribute of a slog text line, zero when it has
// none.
func logTime(line string) time.Time {
	const key = "time="
	i := strings.Index(line, key)
	if i < 0 {
		return time.Time{}
	}
	v := line[i+len(key):]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return t
}

// restartMember is fault 4: one member that leads no stream is restarted
// cfg.Restarts times in a row, stopped with SIGINT and SIGKILL in turn;
// each time it must come back with a fresh id and serve its share.
func (r *failoverRun) restartMember(ctx context.Context) error {
	m, err := r.follower(ctx)
	if err != nil {
		return fmt.Errorf("restarts: %w", err)
	}
	var shares []string
	var backs []time.Duration
	for i := 1; i <= r.cfg.Restarts; i++ {
		// The ids it is listed under now, all gone once it restarted.
		before, err := r.idsAt(ctx, m.remote)
		if err != nil {
			return fmt.Errorf("restart %d of %s: %w", i, m.name, err)
		}
		how := "SIGINT"
		var at time.Time
		if i%2 == 1 {
			r.mu.Lock()
			p := m.p
			r.mu.Unlock()
			at = time.Now()
			if err := p.stop(r.cfg.Timeout); err != nil {
				return fmt.Errorf("restart %d of %s: %w", i, m.name, err)
			}
			p.kill() // gone already; closes its log
			r.mu.Lock()
			m.p = nil
			r.mu.Unlock()
		} else {
			how = "SIGKILL"
			at = r.kill(m)
		}
		ready, err := r.restart(ctx, m)
		if err != nil {
			return fmt.Errorf("restart %d: %w", i, err)
		}
		joined := time.Now()
		// A listing taken while keys come and go may place it wrongly:
		// its share is asked again a few times before it counts as none.
		var owned map[string]bool
		for try := 0; try < 5 && len(owned) == 0; try++ {
			if try > 0 {
				time.Sleep(500 * time.Millisecond)
			}
			if owned, err = r.owned(ctx, m, 3, before...); err != nil {
				return fmt.Errorf("restart %d of %s: %w", i, m.name, err)
			}
		}
		if len(owned) == 0 {
			infos, _ := cluster.Members(ctx, r.js, chaosCluster)
			return fmt.Errorf("restart %d of %s at %s: it owns none of %d graphs after rejoining (ids before %v; the bucket lists %+v)", i, m.name, m.remote, len(r.graphs), before, infos)
		}
		// It serves its share: each graph it owns acknowledges a
		// command sent after it was ready.
		if _, err := r.waitServed(ctx, joined); err != nil {
			return fmt.Errorf("restart %d of %s: %w", i, m.name, err)
		}
		back := r.stall(at, func(g string) bool { return owned[g] })
		backs = append(backs, back[len(back)-1])
		shares = append(shares, fmt.Sprintf("%s: ready %.2f s after its start, owns %d graphs, their longest wait %.2f s", how, ready.Seconds(), len(owned), back[len(back)-1].Seconds()))
		r.say("failover: restart %d of %s: %s", i, m.name, shares[len(shares)-1])
	}
	slices.Sort(backs)
	r.res.Figures = append(r.res.Figures,
		goalFigure("restarts: rejoined and served its share", float64(len(shares)), "", strconv.Itoa(r.cfg.Restarts), len(shares) == r.cfg.Restarts,
			fmt.Sprintf("member %s stopped with SIGINT and SIGKILL in turn; longest wait of its graphs per restart: median %.2f s, max %.2f s", m.name, backs[len(backs)/2].Seconds(), backs[len(backs)-1].Seconds())))
	r.note("fault 4, %d restarts of member %s: %s", r.cfg.Restarts, m.name, strings.Join(shares, "; "))
	return nil
}
