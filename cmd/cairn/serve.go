package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-graph/cairn"
	cairnauth "github.com/cairn-graph/cairn/auth"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/logx"
	"github.com/cairn-graph/cairn/internal/memlimit"
	"github.com/cairn-graph/cairn/internal/memtrim"
	"github.com/cairn-graph/cairn/internal/tracing/otlp"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/metrics"
	"github.com/cairn-graph/cairn/persistence"
)

const serveUsage = `Usage:
  cairn serve [--data DIR] [--nats-listen ADDR|none] [--sync-always] [--sample]
              [--replicas N] [--max-bytes N] [--passivate-after D] [--shards N]
              [--snapshot-every N] [--snapshot-keep K] [--readmodel-snapshot-every N]
              [--snapshot-spacing F]
              [--no-snapshots] [--no-local-snapshots] [--memory-limit SIZE|off]
              [--cluster NAME [--cluster-listen ADDR] [--cluster-advertise ADDR]
               [--cluster-ttl D] [--cluster-provider nats-kv|k8s]]
              [--signing-key FILE | --no-signing] [--trust-keys FILE]
              [--trust-unsigned-through SEQ]
              [--log-level LEVEL] [--log-format text|json] [--drain-timeout D] [--json]
              [--metrics-listen ADDR [--metrics-graphs N] [--pprof]]
              [--otlp-endpoint URL [--trace-sample RATIO]]
              [--auth FILE] [--tls-cert F --tls-key F [--tls-ca F] [--tls-verify]]
              [--insecure]
              [--name NAME --nats-cluster-listen ADDR --nats-routes URL,URL
               [--nats-cluster-name NAME]]
  cairn serve --nats URL [--creds FILE] [--user U --password P | --nkey F]
              [--tls-cert F --tls-key F] [--tls-ca F] [--sample] ...

serve runs the engine: an embedded NATS server with JetStream keeping its
files in --data (or, with --nats, an external NATS with JetStream), the event
store, the graph actors, the projection shards that answer queries (on
each start they load their newest read-model snapshot and replay the events
after it) and the "cairn" NATS micro service. Snapshots and archives live in
the JetStream Object Store bucket "object-store". It prints one
line on stdout when it is ready, for example
  cairn ready: nats=nats://127.0.0.1:4222 data=/abs/path/.cairn
(with --json: {"nats":"nats://127.0.0.1:4222","data":"/abs/path/.cairn"};
with --metrics-listen the line adds metrics=http://127.0.0.1:9464, the
JSON "metrics":"http://127.0.0.1:9464"), logs to stderr, and runs until SIGINT or SIGTERM: the first drains (commands
in flight are answered, within --drain-timeout), a second exits at once.

Flags:
  --data DIR            embedded server's data directory (default .cairn)
  --nats-listen ADDR    where the embedded server listens for NATS clients,
                        host:port (port 0 picks a free one) or none
                        (default 127.0.0.1:4222). An address beyond
                        loopback is refused without --auth
  --auth FILE           users file (cairn auth add-user): only its users may
                        connect, each with its role's rights (reader,
                        writer, admin) on its graphs. Without it anyone who
                        reaches --nats-listen may do anything
  --tls-cert F --tls-key F
                        clients must use TLS, with this server certificate
  --tls-ca F            the CA that client certificates are checked against
  --tls-verify          require a client certificate signed by --tls-ca
  --insecure            listen beyond loopback without --auth anyway
  --sync-always         fsync every write before it is acknowledged
                        (survives power loss, slower). Without it JetStream
                        fsyncs every 2 minutes: an acknowledged write
                        survives a process kill, but Jepsen (2025) lost
                        acknowledged writes of NATS 2.12 on power loss and
                        on an OS crash of a single node. Give it to every
                        node of a replicated store
  --name NAME           the embedded NATS server's name (default cairn);
                        every node of a NATS cluster needs its own
  --nats-cluster-listen ADDR
                        make the embedded server one node of a NATS
                        cluster, taking routes from the other nodes at
                        host:port (port 0 picks a free one); needs --name.
                        Routes read and write every stream: beyond loopback
                        (this address or any route) they need mutual TLS,
                        with --tls-cert, --tls-key and --tls-ca (the CA
                        that signs every node's certificate; the same
                        certificate, which must allow client authentication
                        too, then serves clients as well), else serve
                        refuses to start; --insecure does not lift this.
                        At start a node waits up to a minute for a quorum
                        of the nodes and for as many as --replicas
  --nats-routes URL,URL the other nodes' route URLs,
                        nats-route://host:port, comma-separated; list every
                        other node (this node's own URL may be listed too)
  --nats-cluster-name NAME
                        the NATS cluster's name, the same on every node
                        (default cairn)
  --nats URL            use an external NATS with JetStream instead (its
                        users and TLS are its own: no --auth); a cluster's
                        nodes comma-separated (nats://a:4222,nats://b:4222,
                        ...; cairn nats-node runs one): the member
                        reconnects to another when its node dies
  --creds, --user, --password, --nkey, --tls-cert, --tls-key, --tls-ca
                        credentials and TLS files to log in to --nats
  --replicas N          replicas of the event-store stream, of the
                        object-store bucket (snapshots, archives) and of
                        its index bucket: 1, 3 or 5 (default 1). More than
                        1 needs a NATS cluster, embedded (at least as many
                        nodes as replicas in --nats-routes, counting this
                        one) or external (--nats); a single server refuses
                        it. An acknowledged write is then on a majority of
                        the replicas; see --sync-always for what survives
                        a power loss
  --max-bytes N         event-store stream size limit in bytes; new
                        transactions are refused when it is full
                        (default -1, unlimited)
  --cluster NAME        join the Proto.Actor cluster NAME of the cairn
                        processes on the same NATS: membership is a key per
                        process in the KV bucket cairn-members-NAME (with
                        --replicas replicas), kept alive by a heartbeat
                        every second and dropped 3 s after the last one;
                        graphs are spread over the members by rendezvous
                        hashing and a dead member's graphs move to the
                        others. A member that misses its heartbeats for 3 s
                        (paused, cut off from NATS) fences itself: it stops
                        its graphs and refuses commands, then joins again
                        as a fresh member (a new id) and takes its share
                        of the graphs again. NAME:
                        letters, digits, - and _. Without --cluster the
                        engine is a cluster of one (no membership I/O)
  --cluster-listen ADDR where the member's remote endpoint (the gRPC server
                        other members send commands to) listens, host:port
                        (default 127.0.0.1:0, a free port). Beyond loopback
                        it speaks mutual TLS with --tls-cert, --tls-key and
                        --tls-ca (the CA that signs every member's
                        certificate), else serve refuses to start
  --cluster-advertise ADDR
                        host:port the other members dial to reach this one
                        (default: the listen address); needed when
                        --cluster-listen is 0.0.0.0
  --cluster-ttl D       how long a dead member keeps its graphs, whole
                        seconds (default 3s; heartbeats every third of it,
                        at most every second): the others drop a member
                        whose heartbeats stopped for D while theirs went
                        through, and delete its key. Its key's TTL on the
                        server, and the member's hard lease, is D, or at
                        least 15s with --replicas above 1, so that a NATS
                        leader election of the membership bucket (several
                        seconds) fences nobody
  --cluster-provider P  how members find each other: nats-kv (default; the
                        KV bucket above, no outside service) or k8s
                        (protoactor's Kubernetes provider: the ready pods
                        labelled with the cluster NAME, which each member
                        puts on its own pod; in a pod only, with a service
                        account that may get, list, watch and patch pods;
                        no heartbeats or self-fencing, the event store's
                        per-graph expected sequence is the only fence;
                        --cluster-advertise must be the pod's IP and the
                        --cluster-listen port). k8s links client-go, so it
                        is only in a binary built with -tags k8s (make
                        build-k8s)
  --passivate-after D   stop a graph's actor after D without commands; the
                        next command reloads it (default 5m)
  --shards N            projection shard actors (default: the number of CPUs)
  --snapshot-every N    a graph actor snapshots its state every N events, or
                        a sixteenth of its nodes and edges if more (and when
                        it stops), so that it restarts from the snapshot
                        plus the events after it (default 1000)
  --snapshot-keep K     aggregate snapshots kept per graph (default 3); cairn
                        archive moves only events older than the oldest one
  --readmodel-snapshot-every N
                        the projection shards snapshot their read models
                        every N events, or a thousandth of the bytes the
                        last round wrote if more (default 100000)
  --snapshot-spacing F  a snapshot (a graph actor's, or a read-model round)
                        that took T starts the next no sooner than F T
                        after it, at most a minute, however many events
                        are due: snapshots take at most about 1/F of the
                        time, and a bulk load writes a few rather than one
                        per sixteenth of the graph (default 10; 0: by the
                        event counts alone)
  --no-snapshots        take and load no snapshots: every graph activation
                        and every start replays the stream, and --as-of
                        queries replay from the graph's first event
  --no-local-snapshots  keep no local copies of snapshots: by default the
                        newest snapshot of each graph is also kept,
                        uncompressed, in DATA/snapshots, and a restart
                        decodes them while NATS recovers, so that it serves
                        sooner (they cost their size on disk once more)
  --memory-limit SIZE   the memory the engine's process may use, for example
                        2GiB or 1500MB (B, KB, MB, GB, TB, KiB, MiB, GiB,
                        TiB; at least 64MiB), or off. It is the Go runtime's
                        soft limit (debug.SetMemoryLimit): as the process
                        nears it the garbage collector runs more often;
                        nothing fails at it. The caches are sized from it:
                        the query caches of all shards get a 32nd of it,
                        time-travel views an eighth, the snapshots time
                        travel keeps a 32nd, the time-travel views being
                        built a quarter (2GiB on 2 CPUs gives 4096 answers
                        per shard, 8 views, 64 MiB and 512 MiB; an --as-of
                        query that finds no build room in 2s is refused
                        as RESOURCE_EXHAUSTED). Default:
                        GOMEMLIMIT from the environment when set, else 75%
                        of the cgroup's memory limit or, without one, of
                        the machine's memory. GOGC (default 100) still sets
                        how often the collector runs below the limit:
                        GOGC=200 trades memory for less collection work,
                        GOGC=off collects only near the limit. The limit in
                        force is logged at start and shown by cairn health.
                        serve re-executes itself at start with
                        madvdontneed=0 added to GODEBUG (freed heap goes
                        back with MADV_FREE, so reusing it takes no page
                        faults) unless GODEBUG sets madvdontneed already
  --signing-key FILE    the nkey seed the engine signs every transaction,
                        snapshot and archive with (see cairn help keys);
                        default DATA/signing.nk, created (mode 0600) on
                        first start. With --nats there is no default: give
                        one, or the engine runs unsigned (a warning is
                        logged). Signatures are checked on every replay,
                        snapshot and archive load against the signing key
                        and --trust-keys
  --no-signing          sign nothing and check no signatures
  --trust-keys FILE     public keys trusted besides the signing key, one per
                        line (# comments): the keys of earlier rotations,
                        or of the other members of a cluster
  --trust-unsigned-through SEQ
                        accept unsigned transactions at stream sequences up
                        to SEQ: the history written before signing was
                        turned on (default 0: none)
  --sample              create the graph "sample" if it has no transactions
  --otlp-endpoint URL   export OpenTelemetry traces over OTLP/HTTP
                        (protobuf) to this collector, such as
                        http://127.0.0.1:4318 (spans go to URL/v1/traces,
                        or to URL itself when it has a path). Default: the
                        environment's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
                        (used as is), else OTEL_EXPORTER_OTLP_ENDPOINT
                        (+ /v1/traces), else none: no spans, no trace
                        headers. A command's trace runs cairn.command →
                        cairn.dispatch → cairn.grain → cairn.append →
                        cairn.apply → the first query after it; a client
                        joins it with a traceparent header (cairn node add
                        --trace)
  --trace-sample RATIO  share of new traces kept, 0 to 1 (default 1);
                        a request's sampled traceparent is always followed
  --log-level LEVEL     debug, info, warn or error (default info). NATS
                        server's start-up banner and Proto.Actor's
                        life-cycle lines are logged at debug
  --log-format F        text (key=value, the default) or json (one object
                        per line: time, level, msg, component, ...)
  --metrics-listen ADDR serve Prometheus metrics on http://ADDR/metrics and
                        the probes /healthz (200 while the process runs)
                        and /readyz (200 once NATS is connected, the
                        projections restored and the cluster member
                        started; else 503 naming what is missing),
                        host:port (port 0 picks a free one; the ready line
                        then names it). Default: off. The metrics name no
                        graph (unless --metrics-graphs); see
                        docs/operations.md for each one
  --pprof               also serve the Go runtime's profiles on the metrics
                        listener: http://ADDR/debug/pprof/ (CPU profile,
                        heap, goroutines, execution trace; go tool pprof
                        and go tool trace read them). Needs a loopback
                        --metrics-listen: a profile shows memory contents
                        and the command line
  --metrics-graphs N    add cairn_graph_commands_total{graph} for the first
                        N graphs that receive commands (at most 1000; the
                        others count as graph="_other"). Default 0
  --drain-timeout D     how long the first signal waits for a drain (default 30s)
  --json                print the ready line as JSON
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve")
	data := fs.String("data", ".cairn", "data `directory`")
	listen := fs.String("nats-listen", "127.0.0.1:4222", "listen `address` or none")
	natsURL := fs.String("nats", "", "external NATS `URL`")
	var auth authFlags
	auth.register(fs)
	authFile := fs.String("auth", "", "users `file` of the embedded server")
	tlsVerify := fs.Bool("tls-verify", false, "require client certificates signed by --tls-ca")
	insecure := fs.Bool("insecure", false, "listen beyond loopback without --auth")
	syncAlways := fs.Bool("sync-always", false, "fsync every write")
	natsName := fs.String("name", "", "embedded NATS server `name` (default cairn)")
	clusterListen := fs.String("nats-cluster-listen", "", "NATS cluster route listen `address`")
	routes := fs.String("nats-routes", "", "other nodes' route `URLs`, comma-separated")
	natsClusterName := fs.String("nats-cluster-name", persistence.DefaultClusterName, "NATS cluster `name`")
	sample := fs.Bool("sample", false, "create the sample graph")
	replicas := fs.Int("replicas", 1, "stream `replicas`")
	maxBytes := fs.Int64("max-bytes", -1, "stream size `limit`")
	clusterName := fs.String("cluster", "", "cluster `name` to join over NATS")
	memberListen := fs.String("cluster-listen", "127.0.0.1:0", "the member's remote endpoint `address`")
	memberAdvertise := fs.String("cluster-advertise", "", "`host:port` the other members dial")
	memberTTL := fs.Duration("cluster-ttl", cairncluster.DefaultKVConfig().TTL, "membership key `TTL`")
	provider := fs.String("cluster-provider", "nats-kv", "membership `provider`: nats-kv or k8s")
	passivate := fs.Duration("passivate-after", 5*time.Minute, "idle `time` before a graph actor stops")
	shards := fs.Int("shards", 0, "projection `shards` (default: the number of CPUs)")
	def := cairn.DefaultConfig("")
	snapEvery := fs.Int("snapshot-every", def.Grain.SnapshotEvery, "aggregate snapshot every `N` events")
	snapKeep := fs.Int("snapshot-keep", def.Grain.SnapshotKeep, "aggregate snapshots `kept` per graph")
	rmSnapEvery := fs.Int("readmodel-snapshot-every", def.Projections.SnapshotEvery, "read-model snapshot every `N` events")
	snapSpacing := fs.Int("snapshot-spacing", def.Grain.SnapshotSpacing, "snapshots no sooner than `F` times the last one's time after it")
	noSnaps := fs.Bool("no-snapshots", false, "take and load no snapshots")
	noLocal := fs.Bool("no-local-snapshots", false, "keep no local copies of snapshots")
	memLimit := fs.String("memory-limit", "", "the process's memory `limit` (2GiB, 1500MB, off)")
	level := fs.String("log-level", "info", "log `level`")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	drain := fs.Duration("drain-timeout", 30*time.Second, "drain `timeout`")
	jsonOut := fs.Bool("json", false, "print the ready line as JSON")
	metricsListen := fs.String("metrics-listen", "", "Prometheus metrics and probes listen `address`")
	profiles := fs.Bool("pprof", false, "serve Go profiles on the metrics listener")
	metricsGraphs := fs.Int("metrics-graphs", 0, "per-graph command counters for the first `N` graphs")
	signingKeyFile := fs.String("signing-key", "", "signing key seed `file` (default DATA/signing.nk)")
	noSigning := fs.Bool("no-signing", false, "sign nothing, check no signatures")
	trustKeys := fs.String("trust-keys", "", "`file` of public keys trusted besides the signing key")
	unsignedThrough := fs.Uint64("trust-unsigned-through", 0, "accept unsigned transactions up to this stream `seq`")
	otlpURL := fs.String("otlp-endpoint", "", "OTLP/HTTP collector `URL` for traces")
	traceSample := fs.Float64("trace-sample", 1, "share of new traces kept, 0 to 1")
	if _, err := parseArgs(fs, "serve", args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	usage := func(format string, a ...any) error {
		return &usageError{topic: "serve", err: fmt.Errorf("serve: "+format, a...)}
	}
	logger, err := newLogger(stderr, *level, *logFormat)
	if err != nil {
		return usage("%v", err)
	}
	if *drain <= 0 {
		return usage("--drain-timeout must be positive, not %s", *drain)
	}
	if *metricsGraphs < 0 || *metricsGraphs > metrics.MaxGraphs {
		return usage("--metrics-graphs must be 0 to %d, not %d", metrics.MaxGraphs, *metricsGraphs)
	}
	if given["metrics-graphs"] && *metricsListen == "" {
		return usage("--metrics-graphs needs --metrics-listen")
	}
	if *profiles {
		if *metricsListen == "" {
			return usage("--pprof needs --metrics-listen")
		}
		if host, _, err := net.SplitHostPort(*metricsListen); err != nil || !isLoopback(host) {
			return usage("--pprof serves profiles, which show memory contents, to whoever reaches --metrics-listen %s: give a loopback address (127.0.0.1:PORT)", *metricsListen)
		}
	}
	// The gRPC under Proto.Actor's remote and OpenTelemetry's exporter
	// log through it.
	logx.RouteGRPC(logger)
	logx.RouteOTel(logger)

	cfg := cairn.DefaultConfig("")
	cfg.Logger = logger
	var probe *probes
	if *metricsListen != "" {
		cfg.Metrics = metrics.New(metrics.Options{Graphs: *metricsGraphs})
		var err error
		if probe, err = startProbes(*metricsListen, cfg.Metrics, *profiles, logger); err != nil {
			return usage("%v", err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			probe.close(ctx)
		}()
		logger.Info("metrics and probes", "url", probe.url)
	}
	cfg.Store.Replicas, cfg.Store.MaxBytes = *replicas, *maxBytes
	// Archives are the only copy of the events they hold: the bucket needs
	// the stream's replicas.
	cfg.Snapshots.Replicas = *replicas
	cfg.Grain.PassivateAfter = *passivate
	if given["cluster"] {
		cfg.Cluster.Name, cfg.Cluster.Membership = *clusterName, cairncluster.MembershipNATSKV
		switch *provider {
		case "nats-kv":
		case "k8s":
			if !cairncluster.K8sBuilt {
				return usage("--cluster-provider k8s: %v", cairncluster.ErrK8sNotBuilt)
			}
			if given["cluster-ttl"] {
				return usage("--cluster-ttl is for --cluster-provider nats-kv")
			}
			cfg.Cluster.Membership = cairncluster.MembershipK8s
		default:
			return usage("--cluster-provider %q: want nats-kv or k8s", *provider)
		}
		cfg.Cluster.KV.Replicas = *replicas
		// The heartbeat a third of the TTL, at most a second.
		cfg.Cluster.KV.TTL, cfg.Cluster.KV.Heartbeat = *memberTTL, min(time.Second, *memberTTL/3)
		if err := serveMemberRemote(&cfg, auth, *memberListen, *memberAdvertise, usage); err != nil {
			return err
		}
		if err := cfg.Cluster.Validate(); err != nil {
			return usage("--cluster: %v", err)
		}
	} else if given["cluster-listen"] || given["cluster-advertise"] || given["cluster-ttl"] || given["cluster-provider"] {
		return usage("--cluster-listen, --cluster-advertise, --cluster-ttl and --cluster-provider need --cluster NAME")
	}
	cfg.Grain.SnapshotEvery, cfg.Grain.SnapshotKeep = *snapEvery, *snapKeep
	cfg.Projections.SnapshotEvery = *rmSnapEvery
	cfg.Grain.SnapshotSpacing, cfg.Projections.SnapshotSpacing = *snapSpacing, *snapSpacing
	if *snapSpacing < 0 {
		return usage("--snapshot-spacing must be 0 (off) or more, not %d", *snapSpacing)
	}
	cfg.DisableSnapshots, cfg.NoLocalSnapshots = *noSnaps, *noLocal
	if *rmSnapEvery < 1 {
		return usage("--readmodel-snapshot-every must be at least 1, not %d", *rmSnapEvery)
	}
	if given["shards"] {
		cfg.Projections.Shards = *shards
	}
	limit, limitFrom, err := memoryLimit(*memLimit, given["memory-limit"], os.Getenv("GOMEMLIMIT"), debug.SetMemoryLimit(-1))
	if err != nil {
		return usage("--memory-limit: %v", err)
	}
	cfg.SizeCaches(limit) // after Projections.Shards
	if err := cfg.Store.Validate(); err != nil {
		return usage("%v", err)
	}
	if err := cfg.Grain.Validate(); err != nil {
		return usage("%v", err)
	}
	if err := cfg.Projections.Validate(); err != nil {
		return usage("%v", err)
	}
	if *natsURL != "" {
		if given["data"] || given["nats-listen"] || given["sync-always"] || given["auth"] || given["tls-verify"] || given["insecure"] ||
			given["name"] || given["nats-cluster-listen"] || given["nats-routes"] || given["nats-cluster-name"] {
			return usage("--data, --nats-listen, --sync-always, --auth, --tls-verify, --insecure, --name, --nats-cluster-listen, --nats-routes and --nats-cluster-name configure the embedded server; with --nats the data, users, TLS and cluster are the external NATS's")
		}
		opts, err := auth.options("serve")
		if err != nil {
			return err
		}
		cfg.NATSURL, cfg.NATSOptions = *natsURL, opts
	} else {
		if auth.credentials() {
			return usage("--creds, --user, --password and --nkey log in to an external NATS (--nats); the embedded server's users come from --auth FILE")
		}
		dir, err := filepath.Abs(*data)
		if err != nil {
			return fmt.Errorf("serve: data dir %s: %w", *data, err)
		}
		cfg.DataDir, cfg.NATSListen, cfg.SyncAlways = dir, *listen, *syncAlways
		if *authFile != "" {
			if cfg.Auth, err = cairnauth.Load(*authFile); err != nil {
				return fmt.Errorf("serve: --auth: %w", err)
			}
		}
		if cfg.TLS, err = serverTLS(auth, *tlsVerify, usage); err != nil {
			return err
		}
		if err := serveNATSCluster(&cfg, auth, *natsName, *clusterListen, *routes, *natsClusterName, given, usage); err != nil {
			return err
		}
		if host, _, err := net.SplitHostPort(*listen); err == nil && !isLoopback(host) {
			switch {
			case cfg.Auth != nil:
			case !*insecure:
				return usage("--nats-listen %s reaches beyond this machine, and without --auth anyone who reaches it may write, purge or forge every graph: give --auth FILE (see 'cairn help auth'), or --insecure to listen open anyway", *listen)
			default:
				logger.Warn("--insecure: the embedded NATS server takes anyone, with every right, and listens beyond this machine", "listen", *listen)
			}
		}
	}
	if err := serveSigning(&cfg, logger, *noSigning, *signingKeyFile, *trustKeys, *unsignedThrough, usage); err != nil {
		return err
	}
	cfg.Tracing.Endpoint, cfg.Tracing.Sample = otlpEndpoint(*otlpURL, os.Getenv), *traceSample
	if cfg.Tracing.Endpoint == "" && given["trace-sample"] {
		return usage("--trace-sample needs --otlp-endpoint URL (or OTEL_EXPORTER_OTLP_ENDPOINT)")
	}
	if cfg.Tracing.Endpoint != "" {
		if err := (otlp.Config{Endpoint: cfg.Tracing.Endpoint, Sample: cfg.Tracing.Sample}).Validate(); err != nil {
			return usage("--otlp-endpoint, --trace-sample: %v", err)
		}
		logger.Info("tracing", "otlp_endpoint", cfg.Tracing.Endpoint, "sample", cfg.Tracing.Sample)
	}

	// Process-wide, so put back when serve returns (tests run serve
	// in-process).
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	gogc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gogc)
	logger.Info("memory limit", "limit", memlimit.Format(limit), "bytes", limit, "from", limitFrom, "gogc", gogc,
		"query_cache_entries_per_shard", cfg.Projections.CacheEntries, "view_cache_entries", cfg.Projections.ViewCacheEntries,
		"view_snapshot_bytes", cfg.Projections.ViewSnapshotBytes, "view_build_bytes", cfg.Projections.ViewBuildBytes)
	eng, err := cairn.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	closeEngine := func() error {
		dctx, cancel := context.WithTimeout(context.Background(), *drain)
		defer cancel()
		return eng.Close(dctx)
	}
	if err := rememberUnsigned(cfg, eng); err != nil {
		return errors.Join(err, closeEngine())
	}
	if *sample {
		if err := createSample(ctx, eng); err != nil {
			return errors.Join(fmt.Errorf("serve: sample graph: %w", err), closeEngine())
		}
	}
	metricsURL, metricsText := "", ""
	if probe != nil {
		probe.eng.Store(eng)
		metricsURL, metricsText = probe.url, " metrics="+probe.url
	}
	url, dir := eng.ClientURL(), eng.DataDir()
	switch {
	case *jsonOut:
		err = writeJSON(stdout, struct {
			NATS    string `json:"nats"`
			Data    string `json:"data"`
			Metrics string `json:"metrics,omitempty"`
		}{url, dir, metricsURL})
	case cfg.NATSURL != "":
		_, err = fmt.Fprintf(stdout, "cairn ready: nats=%s (external)%s\n", url, metricsText)
	default:
		if url == "" {
			url = persistence.ListenNone
		}
		_, err = fmt.Fprintf(stdout, "cairn ready: nats=%s data=%s%s\n", url, dir, metricsText)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("serve: print ready line: %w", err), closeEngine())
	}
	logger.Info("cairn ready", "nats", url, "data", dir)

	// Hand the heap of a burst back once the engine has gone quiet after
	// it (internal/memtrim).
	tctx, stopTrim := context.WithCancel(ctx)
	var trim sync.WaitGroup
	trim.Go(func() { memtrim.Run(tctx, memtrim.Config{}, logger.With("component", "memtrim")) })
	defer trim.Wait()
	defer stopTrim()

	<-ctx.Done()
	logger.Info("draining; a second signal exits at once", "timeout", *drain)
	if err := closeEngine(); err != nil {
		return fmt.Errorf("serve: drain: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// otlpEndpoint is where serve exports traces: the --otlp-endpoint flag,
// else the OpenTelemetry environment's traces endpoint (a full URL), else
// its base endpoint with /v1/traces; "" for none.
func otlpEndpoint(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		return v
	}
	if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		return strings.TrimSuffix(v, "/") + "/v1/traces"
	}
	return ""
}

// memoryLimit decides serve's memory limit and says where it comes from:
// the --memory-limit flag when given (memlimit.Parse), else GOMEMLIMIT when
// the environment sets it (the Go runtime applied it at start-up, so
// runtimeLimit, the limit in force, is it), else memlimit.Default().
func memoryLimit(flagValue string, flagGiven bool, gomemlimit string, runtimeLimit int64) (int64, string, error) {
	switch {
	case flagGiven:
		n, err := memlimit.Parse(flagValue)
		return n, "--memory-limit", err
	case gomemlimit != "":
		return runtimeLimit, "GOMEMLIMIT", nil
	}
	n, from := memlimit.Default()
	if from == "" {
		from = "no limit: the available memory is unknown"
	}
	return n, from, nil
}

// serverTLS returns the embedded server's TLS config from --tls-cert,
// --tls-key, --tls-ca and --tls-verify, nil without --tls-cert.
func serverTLS(a authFlags, verify bool, usage func(string, ...any) error) (*tls.Config, error) {
	if (a.tlsCert == "") != (a.tlsKey == "") {
		return nil, usage("--tls-cert and --tls-key go together")
	}
	if a.tlsCert == "" {
		if a.tlsCA != "" || verify {
			return nil, usage("--tls-ca and --tls-verify need --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if verify && a.tlsCA == "" {
		return nil, usage("--tls-verify needs --tls-ca, the CA that signs the client certificates")
	}
	c, err := persistence.ServerTLS(a.tlsCert, a.tlsKey, a.tlsCA, verify)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return c, nil
}

// serveMemberRemote sets where the cluster member's remote endpoint (the
// Proto.Actor gRPC server other members send commands to) listens and is
// reached, from --cluster-listen and --cluster-advertise. Beyond loopback
// it speaks mutual TLS with --tls-cert, --tls-key and --tls-ca (the CA that
// signs every member's certificate), as NATS routes do; serve refuses to
// start without them.
func serveMemberRemote(cfg *cairn.Config, a authFlags, listen, advertise string, usage func(string, ...any) error) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return usage("--cluster-listen %q: want host:port (port 0 for a free one): %v", listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return usage("--cluster-listen %q: bad port", listen)
	}
	cfg.Cluster.Host, cfg.Cluster.Port, cfg.Cluster.Advertise = host, p, advertise
	if isLoopback(host) && (advertise == "" || isLoopback(hostOf(advertise))) {
		return nil
	}
	if a.tlsCert == "" || a.tlsKey == "" || a.tlsCA == "" {
		return usage("--cluster-listen %s reaches beyond this machine: the member's remote endpoint then needs mutual TLS: give --tls-cert, --tls-key and --tls-ca (the CA that signs every member's certificate)", listen)
	}
	if cfg.Cluster.TLS, err = persistence.RouteTLS(a.tlsCert, a.tlsKey, a.tlsCA); err != nil {
		return fmt.Errorf("serve: the member's remote endpoint: %w", err)
	}
	return nil
}

// hostOf returns addr's host, addr itself when it has no port.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// serveNATSCluster sets the embedded server's name and cluster from
// --name, --nats-cluster-listen, --nats-routes and --nats-cluster-name,
// with route TLS from --tls-cert, --tls-key and --tls-ca, and checks that
// cfg's replicas fit the nodes the routes name.
func serveNATSCluster(cfg *cairn.Config, a authFlags, name, listen, routes, clusterName string, given map[string]bool, usage func(string, ...any) error) error {
	cfg.NATSName = name
	if listen == "" {
		if given["nats-routes"] || given["nats-cluster-name"] {
			return usage("--nats-routes and --nats-cluster-name need --nats-cluster-listen HOST:PORT, where this node takes routes from the others")
		}
		if cfg.Store.Replicas > 1 {
			return usage("--replicas %d needs a NATS cluster, and the embedded server is a single node: give --name, --nats-cluster-listen and --nats-routes on each of at least %d nodes, or --nats URL of a NATS cluster", cfg.Store.Replicas, cfg.Store.Replicas)
		}
		return nil
	}
	if name == "" {
		return usage("--nats-cluster-listen needs --name NAME, a name of this node's own among the cluster's nodes")
	}
	if clusterName == "" {
		return usage("--nats-cluster-name is empty")
	}
	c := persistence.ServerCluster{Name: clusterName, Listen: listen}
	for r := range strings.SplitSeq(routes, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if _, err := persistence.ParseRoute(r); err != nil {
			return usage("--nats-routes: %v", err)
		}
		c.Routes = append(c.Routes, r)
	}
	if a.tlsCert != "" {
		if a.tlsCA == "" {
			return usage("--tls-cert with --nats-cluster-listen makes routes mutual TLS: give --tls-ca, the CA that signs every node's certificate")
		}
		var err error
		if c.TLS, err = persistence.RouteTLS(a.tlsCert, a.tlsKey, a.tlsCA); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if err := c.Validate(); err != nil {
		if c.TLS == nil {
			return usage("%v: give --tls-cert, --tls-key and --tls-ca", err)
		}
		return usage("%v", err)
	}
	if err := c.ReplicasPossible(cfg.Store.Replicas); err != nil {
		return usage("--replicas: %v", err)
	}
	cfg.NATSCluster = c
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// createSample creates the graph "sample" unless it already has
// transactions. Its commands have fixed ids, so that even a race with another
// member creates it once.
func createSample(ctx context.Context, eng *cairn.Engine) error {
	const graph = "sample"
	last, err := eng.Store().LastSeq(ctx, graph)
	if err != nil || last > 0 {
		return err
	}
	comp := func(typ, val string) *cairnv1.Component { return &cairnv1.Component{Type: typ, Value: []byte(val)} }
	addNode := func(id string, cats []string, comps ...*cairnv1.Component) *cairnv1.Command {
		return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id, Components: comps, Categories: cats}}}
	}
	connect := func(id, src, dst string) *cairnv1.Command {
		return &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{EdgeId: id, Source: src, Target: dst, EdgeType: "depends"}}}
	}
	pkg := []string{"package"}
	envs := [][]*cairnv1.Command{
		{{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphId: graph, GraphType: "packages",
			Metadata: map[string]string{"created_by": "cairn serve --sample"}}}}},
		{
			addNode("libc6", pkg, comp("name", "GNU C Library"), comp("version", "2.41-5")),
			addNode("libgcc-s1", pkg, comp("name", "GCC support library"), comp("version", "14.2.0")),
			addNode("libstdc++6", pkg, comp("name", "GNU Standard C++ Library v3"), comp("version", "14.2.0")),
			addNode("Zürich", []string{"mirror"}, comp("url", "https://mirror.example.ch/debian")),
		},
		{connect("dep-1", "libstdc++6", "libc6"), connect("dep-2", "libstdc++6", "libgcc-s1"), connect("dep-3", "libgcc-s1", "libc6")},
		{{Kind: &cairnv1.Command_SetNodeComponents{SetNodeComponents: &cairnv1.SetNodeComponents{
			NodeId: "libc6", Components: []*cairnv1.Component{comp("version", "2.41-6")}}}}},
	}
	for i, cmds := range envs {
		env := &cairnv1.CommandEnvelope{GraphId: graph, CommandId: fmt.Sprintf("sample-%d", i+1), Issuer: "cairn serve --sample", Commands: cmds}
		if _, err := eng.Execute(ctx, env); err != nil {
			return fmt.Errorf("%s: %w", env.GetCommandId(), err)
		}
	}
	return nil
}

// newLogger is the logger of --log-level and --log-format, on stderr; the
// error names the flag that is wrong.
func newLogger(stderr io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
