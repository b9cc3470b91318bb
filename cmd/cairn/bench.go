package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/bench"
	"github.com/cairn-graph/cairn/internal/memlimit"
	"github.com/cairn-graph/cairn/persistence"
)

const benchUsage = `Usage:
  cairn bench ingest|mixed|recovery|replay [--out DIR] [flags]
  cairn bench suite [--out DIR] [--quick]
  cairn bench peer [--out DIR] [--nodes N --edges N] [--rounds N] [--no-durable]
  cairn bench chaos [--out DIR] [--members 3] [--nats N] [--duration D] [--kill-every T]
  cairn bench failover [--out DIR] [--faults LIST] [--restarts 5] [--settle D] [--cluster-ttl D]
  cairn bench scale [--out DIR] [--members 3] [--replicas N] [--concurrency 32]

Runs a load test and writes its report to --out: report.md, report.json and
PNG plots (throughput, latency percentiles over time, latency distribution,
the engine's memory over time). A line per second shows the progress (ops/s,
p50, p99, errors, the engine's Go heap and RSS); --quiet turns it off. The
memory is always the engine process's: in-process, this process (the
engine runs in it); remote, the engine's own report in the "cairn"
service's stats; recovery, the child cairn serve (its /proc/PID/statm and
its stats).

Scenarios:
  ingest    builds --graphs graphs of the workload at once: closed loop (as
            fast as the engine takes it, --inflight envelopes in flight per
            graph), or open loop at --rate events/s. Beside it, raw
            JetStream publishes with per-subject optimistic concurrency of
            the same size and concurrency (the baseline ratio).
  mixed     loads the graphs, then for --duration writes at --write-rate
            events/s (open loop) while a query mix runs (--mix, open loop at
            --query-rate, or --query-workers closed-loop callers).
  recovery  starts 'cairn serve' as a child process, loads the workload,
            kills it with SIGKILL and restarts it --rounds times: time until
            JetStream answers, a query sees every acknowledged write, and a
            command is accepted.
  replay    loads one graph and replays it --rounds times: the aggregate
            folded from the stream, a fresh projection caught up, and raw
            JetStream reading the same messages.
  peer      side by side with PostgreSQL: starts a throwaway PostgreSQL on
            loopback (Debian's postgresql package; 'make deps' installs
            it) and 'cairn serve' as a child process, loads the same graph
            into both, then asks both the same questions in --rounds
            rounds (default 20): node degree, a neighbours page, 2-hop
            count, shortest path (PL/pgSQL breadth-first search on the
            PostgreSQL side), single-edge writes; then durable writes
            (the engine restarted with --sync-always, against
            PostgreSQL's default fsync). Every answer is compared. The
            report gives each side's p50/p99, server CPU per operation,
            load time, disk size, server memory, the ratios and the goals.
  chaos     starts --members 'cairn serve' processes on 127.0.0.1, each a
            Cairn cluster member and a node of one NATS JetStream cluster
            (replicas 3, sync always, one shared signing key), sends
            --rate commands/s (default 500) to --graphs graphs (default
            100) through any node, each retried with its command id
            until acknowledged, and kills a random member with SIGKILL
            every --kill-every on average (default 10s), restarting it
            --down later (default 1s), for --duration; one member (and its
            node) is down at a time. With --nats N it first starts N
            'cairn nats-node' processes, a NATS JetStream cluster of their
            own (replicas 3, 5 from 5 nodes on, sync always), and the
            members run on it (cairn serve --nats with every node's URL):
            each kill then takes a random member or NATS node, half of the
            NATS kills the event stream's leader, a node staying down
            --nats-down; kills overlap when restarts take longer than
            --kill-every, but never all members are down, nor more than
            (N-1)/2 nodes. Then it checks every graph's chain, that every
            acknowledged command is stored exactly once (lost and applied
            twice must be 0) and that a query through each NATS node
            agrees with the stream. The report gives kills survived (per
            kind), commands acknowledged, lost, applied twice, command
            latency (retries included), and per graph its p99 and longest
            unavailability (report.json per_graph, and a plot).
  failover  the four faults of a 3-member cluster, measured one after the
            other: 3 'cairn serve' members on 127.0.0.1, each a node of
            one NATS JetStream cluster (replicas 3, sync always), under
            --rate commands/s (default 500) over --graphs graphs (default
            100), each retried with its command id until acknowledged.
            1. SIGKILL of a member whose NATS node leads no stream: failed
            commands of the graphs it did not own (goal 0) and when its
            graphs accept commands again (goal 5 s; min, median, p90,
            max). 2. SIGKILL of the event stream's leader (a member and
            its node): when writes resume (goal 10 s). 3. SIGSTOP of a
            member for twice the membership TTL, then SIGCONT: its log
            must show that it fenced itself, then joined again with a
            fresh id. 4. --restarts restarts in a row of one member
            (SIGINT and SIGKILL in turn): each time it must rejoin and
            serve its share of the graphs. The load runs --settle
            (default 5s) before and after each fault. Then the same
            checks as chaos (lost and applied twice must be 0).
  scale     starts --members 'cairn serve' processes as chaos does (one
            member: a single NATS server), kills none, and runs
            --concurrency callers for --duration (default 20s), each
            sending single-event AddNode commands one at a time to a free
            graph of --graphs (default 100; one command in flight per
            graph) over one NATS connection, retried with its command id
            on UNAVAILABLE or no answer (counted). The report gives
            commands/s, p50/p99, each member's CPU seconds and RSS, the
            engine's CPU per command, the load average, and the
            cross-member hop: every reply names the member that took the
            command and the owner whose grain answered, so latencies
            split into local and forwarded, under the load and in a probe
            of --probe commands (default 600) sent one at a time through
            the first member's node. Beside it, raw JetStream publishes to
            a stream of the same replicas (--no-baseline skips them).
  suite     the standard suite (the other workload flags apply): ingest of
            1,000,000 nodes and 3,000,000 edges, mixed load at 10,000
            events/s for 30 s and recovery on that graph, replay of
            100,000 nodes and 300,000 edges; each
            in-process scenario on a fresh engine (under --data DIR/<scenario>
            with --data); --quick runs it on small graphs (a smoke test).

Latency in open loop is measured from each request's scheduled start, so a
stall counts against every request it delays (no coordinated omission).

Engine:
  --driver inprocess|remote
                        inprocess (default): an engine embedded in this
                        process on --data; remote: the engine at --server,
                        through the "cairn" NATS micro service
  --data DIR            the embedded engine's data (default: a temporary
                        directory, removed afterwards)
  --sign                the embedded engine signs its history with a fresh
                        key and checks every signature, as cairn serve does
                        by default (default: unsigned, as a library user's
                        engine); recovery's and peer's cairn serve always sign
  --memory-limit SIZE|off
                        the memory limit of the in-process engine (given to
                        the Go runtime, and its caches sized from it) and of
                        recovery's cairn serve, as for cairn serve (default:
                        GOMEMLIMIT, else 75% of the cgroup's or the
                        machine's memory; see cairn help serve)
  --serve-flag FLAG     one more flag for the cairn serve processes bench
                        starts (recovery, peer, chaos, failover, scale), for example
                        --serve-flag=--no-local-snapshots; repeatable
  --server URL          NATS URL of the engine, for --driver remote
                        (default nats://127.0.0.1:4222); the client flags
                        --creds, --user, --password, --nkey, --tls-* apply
                        (on an engine with --auth: --no-baseline, which
                        no login may run there; a writer can ingest, but
                        bench reads the stream's size and heads itself,
                        which takes an admin)
  --no-baseline         skip the raw JetStream baselines (they create and
                        delete the stream bench-raw on the server)

Workload (graph i is generated with seed --seed + i):
  --shape ba|rmat|uniform|tree
                        Barabási–Albert, R-MAT, uniform random or random tree
                        (default ba)
  --nodes N --edges N   size of each graph (default 100000 and 300000; a
                        tree has nodes-1 edges)
  --types N --values N --per-node N
                        component pool: N types of N values each; each node
                        holds --per-node components (default 10, 100, 3)
  --skew S              Zipf exponent of the component values (0 uniform,
                        default 1)
  --categories N --edge-types N  (default 5 and 4)
  --seed N              (default 1)
  --graphs N            graphs built at once (default 1)
  --batch N             commands per envelope, 1-1000 (default 1000)
  --inflight N          envelopes in flight per graph (default 4)
  --rate R              ingest: events/s offered, open loop (default 0:
                        closed loop)

Mixed:
  --write-rate R        events/s written (default 10000)
  --write-batch N       events per write: a new node and N-1 edges (default 10)
  --query-rate R        queries/s, open loop (default 1000); 0: closed loop
  --query-workers N     closed-loop query callers (default 4)
  --mix SPEC            query mix, kind=weight,... of node, neighbors, khop2,
                        path, find, stats, top (default
                        node=40,neighbors=30,khop2=10,path=5,find=5,stats=5,top=5)
  --duration D          measured phase (default 30s)

Recovery, replay and peer:
  --rounds N            kill/restart or replay rounds (default 3); peer
                        rounds (default 20)
  --binary FILE         the cairn executable recovery and peer start
                        (default: this program)
  --pg-bin DIR          peer: PostgreSQL's initdb and postgres (default: the
                        newest /usr/lib/postgresql/*/bin, else PATH)
  --no-durable          peer: skip the durable-write phase

Chaos:
  --members N           cairn serve processes, each a member and, without
                        --nats, a NATS node (default 3; at least 3 without
                        --nats, 2 with it)
  --nats N              separate NATS node processes (cairn nats-node), at
                        least 3, that the members use as an external
                        cluster (default: none, each member embeds a node)
  --kill-every T        mean time between two SIGKILLs (default 10s)
  --down T              how long a killed member stays down (default 1s)
  --nats-down T         how long a killed NATS node stays down (default
                        --down)
  --cluster-ttl D       the members' membership TTL (serve --cluster-ttl;
                        default serve's 3s)
  --graphs, --rate, --duration, --seed, --data, --binary, --memory-limit
                        as above (defaults 100 graphs, 500 commands/s, 60s)

Failover:
  --faults LIST         the faults to run, comma-separated, in this order:
                        member, stream-leader, pause, restart (default all)
  --restarts N          restarts of one member in a row (default 5)
  --settle D            load before and after each fault (default 5s)
  --cluster-ttl D       as for chaos
  --graphs, --rate, --data, --binary, --memory-limit
                        as above (defaults 100 graphs, 500 commands/s);
                        for chaos and failover, --data DIR keeps the
                        members' data and their logs (DIR/m0.log, …)
Scale:
  --members N           cairn serve processes (default 3, at least 1)
  --replicas N          replicas of the event stream and buckets, 1 to
                        --members (default: --members, at most 3)
  --concurrency N       callers, each one command at a time (default 32,
                        at most --graphs)
  --probe N             hop probe commands, one at a time (default 600;
                        -1 for none)
  --no-sync-always      JetStream's default fsync interval instead of fsync
                        on every write (default: fsync always, as chaos)
  --graphs, --duration, --data, --binary, --memory-limit, --cluster-ttl,
  --no-baseline         as above (defaults 100 graphs, 20s)

Output:
  --out DIR             report directory (default bench-report)
  --quiet               no line per second
  --json                print report.json to stdout at the end
  --cpuprofile FILE     write a CPU profile of the whole run (go tool pprof)
  --memprofile FILE     write a profile of what the whole run allocated
                        (go tool pprof -sample_index=alloc_space)
  --trace FILE          mixed: write a runtime execution trace of the
                        measured phase, of this process (go tool trace;
                        -pprof=sched shows where goroutines waited for a CPU)
`

type benchFlags struct {
	driver, data, server string
	auth                 authFlags
	noBaseline           bool
	sign                 bool
	shape                string
	w                    bench.Workload
	graphs, batch, infl  int
	rate                 float64
	writeRate            float64
	writeBatch           int
	queryRate            float64
	queryWorkers         int
	mix                  string
	duration             time.Duration
	rounds               int
	out                  string
	quiet, json, quick   bool
	cpuProfile           string
	memProfile           string
	trace                string
	binary               string
	pgBin                string
	noDurable            bool
	memLimit             string
	serveFlags           []string
	members, natsNodes   int
	killEvery, down      time.Duration
	natsDown             time.Duration
	clusterTTL           time.Duration
	restarts             int
	settle               time.Duration
	faults               string
	scale                bench.ScaleConfig
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	f := &benchFlags{}
	fs := newFlagSet("bench")
	def := bench.DefaultWorkload()
	fs.StringVar(&f.driver, "driver", "inprocess", "`inprocess` or remote")
	fs.StringVar(&f.data, "data", "", "embedded engine data `dir`")
	fs.StringVar(&f.memLimit, "memory-limit", "", "the engine's memory `limit` (2GiB, 1500MB, off)")
	fs.Func("serve-flag", "one more `flag` for the cairn serve processes bench starts", func(v string) error {
		f.serveFlags = append(f.serveFlags, v)
		return nil
	})
	fs.StringVar(&f.server, "server", defaultServer, "NATS `URL` of the engine (--driver remote)")
	f.auth.register(fs)
	fs.BoolVar(&f.noBaseline, "no-baseline", false, "skip the raw JetStream baselines")
	fs.StringVar(&f.shape, "shape", "ba", "graph `shape`")
	fs.IntVar(&f.w.Nodes, "nodes", 100_000, "nodes per graph")
	fs.IntVar(&f.w.Edges, "edges", 300_000, "edges per graph")
	fs.IntVar(&f.w.Types, "types", def.Types, "component types")
	fs.IntVar(&f.w.Values, "values", def.Values, "values per component type")
	fs.IntVar(&f.w.PerNode, "per-node", def.PerNode, "components per node")
	fs.Float64Var(&f.w.Skew, "skew", def.Skew, "Zipf exponent of component values")
	fs.IntVar(&f.w.Categories, "categories", def.Categories, "categories")
	fs.IntVar(&f.w.EdgeTypes, "edge-types", def.EdgeTypes, "edge types")
	seed := fs.Uint64("seed", 1, "seed")
	fs.IntVar(&f.graphs, "graphs", 1, "graphs built at once")
	fs.IntVar(&f.batch, "batch", 1000, "commands per envelope")
	fs.IntVar(&f.infl, "inflight", 4, "envelopes in flight per graph")
	fs.Float64Var(&f.rate, "rate", 0, "ingest events/s, open loop")
	fs.Float64Var(&f.writeRate, "write-rate", 10_000, "mixed: events/s written")
	fs.IntVar(&f.writeBatch, "write-batch", 10, "mixed: events per write")
	fs.Float64Var(&f.queryRate, "query-rate", 1000, "mixed: queries/s, open loop")
	fs.IntVar(&f.queryWorkers, "query-workers", 4, "mixed: closed-loop query callers")
	fs.StringVar(&f.mix, "mix", bench.DefaultQueryMix().String(), "mixed: query mix")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "mixed: measured phase")
	fs.IntVar(&f.rounds, "rounds", 3, "recovery and replay rounds")
	fs.StringVar(&f.out, "out", "bench-report", "report `dir`")
	fs.BoolVar(&f.quiet, "quiet", false, "no line per second")
	fs.BoolVar(&f.json, "json", false, "print report.json")
	fs.BoolVar(&f.quick, "quick", false, "suite: small graphs")
	fs.StringVar(&f.binary, "binary", "", "recovery: the cairn `executable` to start (default: this program)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `file`")
	fs.StringVar(&f.memProfile, "memprofile", "", "write an allocation profile of the run to `file`")
	fs.StringVar(&f.trace, "trace", "", "mixed: write an execution trace of the measured phase to `file`")
	fs.StringVar(&f.pgBin, "pg-bin", "", "peer: PostgreSQL's binaries `dir`")
	fs.BoolVar(&f.noDurable, "no-durable", false, "peer: skip the durable writes")
	fs.BoolVar(&f.sign, "sign", false, "the in-process engine signs and checks signatures")
	fs.IntVar(&f.members, "members", 3, "chaos: cluster members")
	fs.IntVar(&f.natsNodes, "nats", 0, "chaos: separate NATS node processes (default: one embedded in each member)")
	fs.DurationVar(&f.killEvery, "kill-every", 10*time.Second, "chaos: mean `time` between kills")
	fs.DurationVar(&f.down, "down", time.Second, "chaos: how long a killed member stays down")
	fs.DurationVar(&f.natsDown, "nats-down", 0, "chaos: how long a killed NATS node stays down (default --down)")
	fs.DurationVar(&f.clusterTTL, "cluster-ttl", 0, "chaos, failover, scale: the members' membership `TTL` (default serve's)")
	fs.IntVar(&f.restarts, "restarts", 5, "failover: restarts of one member in a row")
	fs.DurationVar(&f.settle, "settle", 5*time.Second, "failover: load before and after each fault")
	fs.StringVar(&f.faults, "faults", "", "failover: the faults to run, comma-separated (member, stream-leader, pause, restart; default all)")
	fs.IntVar(&f.scale.Replicas, "replicas", 0, "scale: replicas of the event stream (default members, at most 3)")
	fs.IntVar(&f.scale.Concurrency, "concurrency", 32, "scale: callers")
	fs.IntVar(&f.scale.Probe, "probe", 600, "scale: hop probe commands (-1 for none)")
	fs.BoolVar(&f.scale.NoSyncAlways, "no-sync-always", false, "scale: JetStream's default fsync interval")
	pos, err := parseArgs(fs, "bench", args, "scenario")
	if err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		return &usageError{topic: "bench", err: fmt.Errorf("bench: "+format, a...)}
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	scenario := pos[0]
	switch scenario {
	case "ingest", "mixed", "recovery", "replay", "peer", "chaos", "failover", "scale", "suite":
	default:
		return usage("unknown scenario %q: want ingest, mixed, recovery, replay, peer, chaos, failover, scale or suite", scenario)
	}
	if scenario != "chaos" && scenario != "scale" && given["members"] {
		return usage("--members is for chaos and scale")
	}
	if scenario != "chaos" && scenario != "failover" && scenario != "scale" && given["cluster-ttl"] {
		return usage("--cluster-ttl is for chaos, failover and scale")
	}
	if scenario != "chaos" && (given["nats"] || given["kill-every"] || given["down"] || given["nats-down"]) {
		return usage("--nats, --kill-every, --down and --nats-down are for chaos")
	}
	if err := f.checkScale(scenario, given); err != nil {
		return usage("%v", err)
	}
	if scenario != "failover" && (given["restarts"] || given["settle"] || given["faults"]) {
		return usage("--restarts, --settle and --faults are for failover")
	}
	if scenario == "failover" {
		if f.restarts < 1 || f.settle <= 0 {
			return usage("--restarts %d and --settle %s: at least 1 restart and a positive settle", f.restarts, f.settle)
		}
		if !given["graphs"] {
			f.graphs = 100
		}
		if !given["rate"] {
			f.rate = 500
		}
		if err := f.failoverConfig("cairn").Validate(); err != nil {
			return usage("%v", err)
		}
	}
	if scenario == "chaos" {
		if given["nats"] && f.natsNodes < 3 {
			return usage("--nats %d: a NATS cluster of at least 3 separate nodes (without --nats, each member embeds one)", f.natsNodes)
		}
		if given["nats-down"] && !given["nats"] {
			return usage("--nats-down is for separate NATS nodes (--nats N)")
		}
		if !given["graphs"] {
			f.graphs = 100
		}
		if !given["rate"] {
			f.rate = 500
		}
		if !given["duration"] {
			f.duration = 60 * time.Second
		}
		if err := f.chaosConfig("cairn").Validate(); err != nil {
			return usage("%v", err)
		}
	}
	if scenario != "peer" && (given["pg-bin"] || given["no-durable"]) {
		return usage("--pg-bin and --no-durable are for peer")
	}
	if scenario == "peer" && !given["rounds"] {
		f.rounds = 20
	}
	if f.quick && scenario != "suite" {
		return usage("--quick is for the suite")
	}
	if f.w.Shape, err = bench.ParseShape(f.shape); err != nil {
		return usage("--shape: %v", err)
	}
	f.w.Seed = *seed
	if f.w.Shape == bench.ShapeTree && !given["edges"] {
		f.w.Edges = f.w.Nodes - 1
	}
	if err := f.w.Validate(); err != nil {
		return usage("%v", err)
	}
	mix, err := bench.ParseQueryMix(f.mix)
	if err != nil {
		return usage("--mix: %v", err)
	}
	if err := (bench.IngestConfig{Workload: f.w, Graphs: f.graphs, Batch: f.batch, InFlight: f.infl, Rate: f.rate}).Validate(); err != nil {
		return usage("%v", err)
	}
	if err := (bench.MixedConfig{Workload: f.w, Graphs: f.graphs, WriteRate: f.writeRate, WriteBatch: f.writeBatch, QueryRate: f.queryRate,
		QueryWorkers: f.queryWorkers, Mix: mix, Duration: f.duration}).Validate(); scenario == "mixed" && err != nil {
		return usage("%v", err)
	}
	if f.rounds < 1 {
		return usage("--rounds must be at least 1, not %d", f.rounds)
	}
	limit, limitFrom, err := memoryLimit(f.memLimit, given["memory-limit"], os.Getenv("GOMEMLIMIT"), debug.SetMemoryLimit(-1))
	if err != nil {
		return usage("--memory-limit: %v", err)
	}
	if given["memory-limit"] && f.driver == "remote" {
		return usage("--memory-limit is for the engines bench starts (--driver inprocess, recovery); set it on the remote cairn serve")
	}
	// The in-process engines share this process: its limit is theirs.
	// Put back when bench returns (tests run it in-process).
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	var live io.Writer = stderr
	if f.quiet {
		live = nil
	}
	if live != nil && f.driver == "inprocess" {
		fmt.Fprintf(live, "engine memory limit %s (%s)\n", memlimit.Format(limit), limitFrom)
	}

	// What each scenario drives: a fresh embedded engine (so that one
	// scenario's graphs and memory do not weigh on the next), or a remote
	// engine over one connection.
	var open func(scenario string) (bench.Driver, func() error, error)
	switch f.driver {
	case "inprocess":
		if given["server"] || f.auth.set() {
			return usage("--server and the NATS credentials are for --driver remote")
		}
		open = func(name string) (bench.Driver, func() error, error) {
			dir := f.data
			if dir != "" && scenario == "suite" {
				dir = filepath.Join(dir, name)
			}
			return openBenchEngine(ctx, dir, limit, f.sign)
		}
	case "remote":
		if given["data"] {
			return usage("--data is for --driver inprocess")
		}
		if scenario == "recovery" || scenario == "peer" || scenario == "chaos" || scenario == "failover" || scenario == "scale" || scenario == "suite" {
			return usage("%s starts its own engine; it takes no --driver remote", scenario)
		}
		opts, err := f.auth.options("bench")
		if err != nil {
			return err
		}
		nc, err := nats.Connect(f.server, append(opts, nats.Name("cairn-bench"))...)
		if err != nil {
			return fmt.Errorf("bench: cannot reach NATS at %s: %w (is 'cairn serve' running?)", f.server, err)
		}
		defer nc.Close()
		d, err := bench.Remote(nc, 30*time.Second)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		open = func(string) (bench.Driver, func() error, error) { return d, func() error { return nil }, nil }
	default:
		return usage("--driver %q: want inprocess or remote", f.driver)
	}

	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); err = errors.Join(err, pf.Close()) }()
	}
	if f.memProfile != "" {
		defer func() {
			pf, perr := os.Create(f.memProfile)
			if perr == nil {
				perr = errors.Join(pprof.Lookup("allocs").WriteTo(pf, 0), pf.Close())
			}
			if perr != nil {
				err = errors.Join(err, fmt.Errorf("bench: --memprofile: %w", perr))
			}
		}()
	}
	rep := &bench.Report{Title: "Cairn benchmark: " + scenario, Started: time.Now(), Machine: bench.CurrentMachine()}
	runs := f.scenarios(scenario, mix)
	for _, r := range runs {
		if live != nil {
			fmt.Fprintf(live, "== %s\n", r.name)
		}
		// Start each scenario from a collected heap: the last one's engine
		// is garbage now, and its collection would otherwise land inside
		// this scenario's measurements.
		runtime.GC()
		debug.FreeOSMemory()
		var d bench.Driver
		closeDriver := func() error { return nil }
		if r.name != "recovery" && r.name != "peer" && r.name != "chaos" && r.name != "failover" && r.name != "scale" { // they start their own engines
			if d, closeDriver, err = open(r.name); err != nil {
				return fmt.Errorf("bench: %s: %w", r.name, err)
			}
		}
		res, err := r.run(ctx, d, live)
		err = errors.Join(err, closeDriver())
		if res != nil {
			rep.Scenarios = append(rep.Scenarios, *res)
		}
		if err != nil {
			// Keep what was measured: the report says how far it got.
			if len(rep.Scenarios) > 0 {
				_ = rep.Write(f.out)
			}
			return fmt.Errorf("bench: %w", err)
		}
	}
	if err := rep.Write(f.out); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	if f.json {
		b, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	abs, _ := filepath.Abs(f.out)
	printBenchSummary(stdout, rep)
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(abs, "report.md"))
	return nil
}

type benchRun struct {
	name string
	run  func(ctx context.Context, d bench.Driver, live io.Writer) (*bench.ScenarioResult, error)
}

// scenarios returns what one `cairn bench` runs, in order.
func (f *benchFlags) scenarios(scenario string, mix bench.QueryMix) []benchRun {
	baseline := !f.noBaseline
	ingest := func(w bench.Workload) benchRun {
		return benchRun{"ingest", func(ctx context.Context, d bench.Driver, live io.Writer) (*bench.ScenarioResult, error) {
			return bench.Ingest(ctx, d, bench.IngestConfig{Workload: w, Graphs: f.graphs, Batch: f.batch, InFlight: f.infl, Rate: f.rate, Baseline: baseline}, live)
		}}
	}
	mixed := func(w bench.Workload, dur time.Duration) benchRun {
		return benchRun{"mixed", func(ctx context.Context, d bench.Driver, live io.Writer) (res *bench.ScenarioResult, err error) {
			cfg := bench.MixedConfig{Workload: w, Graphs: f.graphs, WriteRate: f.writeRate, WriteBatch: f.writeBatch,
				QueryRate: f.queryRate, QueryWorkers: f.queryWorkers, Mix: mix, Duration: dur, Baseline: baseline, Batch: f.batch, InFlight: f.infl}
			if f.trace != "" {
				tf, err := os.Create(f.trace)
				if err != nil {
					return nil, fmt.Errorf("mixed: --trace: %w", err)
				}
				defer func() { err = errors.Join(err, tf.Close()) }()
				cfg.Trace = tf
			}
			return bench.Mixed(ctx, d, cfg, live)
		}}
	}
	recovery := func(w bench.Workload) benchRun {
		return benchRun{"recovery", func(ctx context.Context, _ bench.Driver, live io.Writer) (*bench.ScenarioResult, error) {
			exe, err := f.executable()
			if err != nil {
				return nil, fmt.Errorf("recovery: %w", err)
			}
			return bench.Recovery(ctx, bench.RecoveryConfig{Binary: exe, Workload: w, Rounds: f.rounds, Batch: f.batch, InFlight: f.infl, ServeArgs: f.serveArgs()}, live)
		}}
	}
	peer := func(w bench.Workload) benchRun {
		return benchRun{"peer", func(ctx context.Context, _ bench.Driver, live io.Writer) (*bench.ScenarioResult, error) {
			exe, err := f.executable()
			if err != nil {
				return nil, fmt.Errorf("peer: %w", err)
			}
			return bench.Peer(ctx, bench.PeerConfig{Binary: exe, Workload: w, Rounds: f.rounds, Batch: f.batch, InFlight: f.infl,
				NoDurable: f.noDurable, PGBinDir: f.pgBin, ServeArgs: f.serveArgs()}, live)
		}}
	}
	replay := func(w bench.Workload) benchRun {
		return benchRun{"replay", func(ctx context.Context, d bench.Driver, live io.Writer) (*bench.ScenarioResult, error) {
			return bench.Replay(ctx, d, bench.ReplayConfig{Workload: w, Rounds: f.rounds, Batch: f.batch, InFlight: f.infl}, live)
		}}
	}
	chaos := benchRun{"chaos", func(ctx context.Context, _ bench.Driver, live io.Writer) (*bench.ScenarioResult, error) {
		exe, err := f.executable()
		if err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		return bench.Chaos(ctx, f.chaosConfig(exe), live)
	}}
	failover := benchRun{"failover", func(ctx context.Context, _ bench.Driver, live io.Writer) (*bench.ScenarioResult, error) {
		exe, err := f.executable()
		if err != nil {
			return nil, fmt.Errorf("failover: %w", err)
		}
		return bench.Failover(ctx, f.failoverConfig(exe), live)
	}}
	switch scenario {
	case "chaos":
		return []benchRun{chaos}
	case "failover":
		return []benchRun{failover}
	case "scale":
		return []benchRun{f.scaleRun()}
	case "ingest":
		return []benchRun{ingest(f.w)}
	case "mixed":
		return []benchRun{mixed(f.w, f.duration)}
	case "recovery":
		return []benchRun{recovery(f.w)}
	case "replay":
		return []benchRun{replay(f.w)}
	case "peer":
		return []benchRun{peer(f.w)}
	}
	// The standard suite.
	big, mid, dur := f.w, f.w, 30*time.Second
	big.Nodes, big.Edges = 1_000_000, 3_000_000
	// Replay folds a second copy of the aggregate and of the read model
	// in this process, beside the engine's own: a tenth of the size keeps
	// it within a few GB.
	mid.Nodes, mid.Edges = 100_000, 300_000
	if f.quick {
		big.Nodes, big.Edges = 2_000, 6_000
		mid, dur = big, 2*time.Second
	}
	return []benchRun{ingest(big), mixed(big, dur), recovery(big), replay(mid)}
}

// chaosConfig is the chaos scenario's config from the flags.
func (f *benchFlags) chaosConfig(exe string) bench.ChaosConfig {
	args := f.serveArgs()
	if f.clusterTTL > 0 {
		args = append(args, "--cluster-ttl", f.clusterTTL.String())
	}
	return bench.ChaosConfig{Binary: exe, DataDir: f.data, Members: f.members, Duration: f.duration, KillEvery: f.killEvery,
		Down: f.down, NATS: f.natsNodes, NATSDown: f.natsDown, Graphs: f.graphs, Rate: int(f.rate), Seed: f.w.Seed, ServeArgs: args}
}

// failoverConfig is the failover scenario's config from the flags.
func (f *benchFlags) failoverConfig(exe string) bench.FailoverConfig {
	return bench.FailoverConfig{Binary: exe, DataDir: f.data, Graphs: f.graphs, Rate: int(f.rate), Settle: f.settle,
		Restarts: f.restarts, ClusterTTL: f.clusterTTL, ServeArgs: f.serveArgs(), Faults: faultList(f.faults)}
}

// executable is the cairn binary that recovery and peer start: --binary,
// else this program.
func (f *benchFlags) executable() (string, error) {
	if f.binary != "" {
		return f.binary, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the cairn binary: %w (give --binary)", err)
	}
	return exe, nil
}

// openBenchEngine opens an embedded engine (no TCP listener) on dir, or
// on a temporary directory removed by the returned close.
func openBenchEngine(ctx context.Context, dir string, memLimit int64, sign bool) (bench.Driver, func() error, error) {
	tmp := ""
	if dir == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "cairn-bench-"); err != nil {
			return nil, nil, err
		}
		dir = tmp
	}
	cfg := cairn.DefaultConfig(dir)
	cfg.NATSListen = persistence.ListenNone
	cfg.SizeCaches(memLimit)
	if sign {
		seed, err := persistence.NewSigningKey()
		if err == nil {
			cfg.Signer, err = persistence.NewSigner(seed)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("bench: --sign: %w", err)
		}
	}
	eng, err := cairn.Open(ctx, cfg)
	if err != nil {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		return nil, nil, err
	}
	return bench.InProcess(eng), func() error {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := eng.Close(cctx)
		if tmp != "" {
			err = errors.Join(err, os.RemoveAll(tmp))
		}
		return err
	}, nil
}

// serveArgs are the flags recovery passes on to its cairn serve.
func (f *benchFlags) serveArgs() []string {
	args := slices.Clone(f.serveFlags)
	if f.memLimit != "" {
		args = append(args, "--memory-limit", f.memLimit)
	}
	return args
}

// printBenchSummary prints each scenario's figures and baselines.
func printBenchSummary(w io.Writer, rep *bench.Report) {
	for _, s := range rep.Scenarios {
		fmt.Fprintf(w, "%s (%s, %.1f s)\n", s.Scenario, s.Driver, s.DurationS)
		for _, fg := range s.Figures {
			met := ""
			if fg.Met != nil {
				met = "  goal " + fg.Goal + map[bool]string{true: " met", false: " MISSED"}[*fg.Met]
			}
			fmt.Fprintf(w, "  %-40s %12.3f %s%s\n", fg.Name, fg.Value, fg.Unit, met)
		}
		for _, b := range s.Baselines {
			fmt.Fprintf(w, "  %-40s engine %.3f, raw %.3f %s, ratio %.2f\n", b.Name, b.Engine, b.Raw, b.Unit, b.Ratio)
		}
		for _, c := range s.Comparisons {
			met := ""
			if c.Met != nil {
				met = "  goal " + c.Goal + map[bool]string{true: " met", false: " MISSED"}[*c.Met]
			}
			fmt.Fprintf(w, "  %-32s cairn %10.3f  %s %10.3f %-7s ratio %5.2f%s\n", c.Name, c.Engine, s.Peer, c.Peer, c.Unit, c.Ratio, met)
		}
	}
}

// faultList splits --faults at commas; nil when it is empty (every fault).
func faultList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
