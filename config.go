package cairn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/auth"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/tracing/otlp"
	"github.com/cairn-graph/cairn/metrics"
	"github.com/cairn-graph/cairn/persistence"
)

// Config assembles an engine. DefaultConfig documents every default.
type Config struct {
	// DataDir holds the embedded NATS server's JetStream files. Required
	// unless NATSURL is set.
	DataDir string
	// NATSListen is where the embedded server listens for other processes
	// (host:port), or persistence.ListenNone for in-process only. Default
	// "127.0.0.1:4222".
	NATSListen string
	// NATSURL, when set, connects to an external NATS with JetStream instead
	// of embedding a server.
	NATSURL string
	// NATSOptions are passed to nats.Connect for an external NATS
	// (credentials, user and password, TLS).
	NATSOptions []nats.Option
	// SyncAlways makes the embedded server fsync every write (cairn serve
	// --sync-always). Default false: JetStream's own default, an fsync
	// every 2 minutes, under which an acknowledged write survives a
	// process kill but not a power loss, nor (Jepsen, 2025) an OS crash of
	// a single node (the README's "Running a replicated store").
	SyncAlways bool
	// NATSName names the embedded server (cairn serve --name). Default
	// "cairn"; every node of a NATS cluster needs a name of its own.
	NATSName string
	// NATSCluster, when its Listen is set, makes the embedded server one
	// node of a NATS cluster (cairn serve --nats-cluster-listen and
	// --nats-routes), so that Store.Replicas and Snapshots.Replicas may
	// be more than 1, up to the nodes it knows. Routes beyond loopback
	// need NATSCluster.TLS. Default: a single node.
	NATSCluster persistence.ServerCluster
	// JetStreamWait bounds how long Open waits for JetStream to create or
	// bind the event stream and the buckets while it answers "unavailable":
	// in a cluster, until the nodes have elected a meta leader and enough
	// of them are up for the replicas asked for. 0 means the default, 1
	// minute.
	JetStreamWait time.Duration
	// Auth, when set, is who may connect to the embedded server and what
	// each may do (cairn serve --auth); the engine connects as an identity
	// of its own that only it can use. Default nil: the server takes
	// anyone who reaches NATSListen, with every right (keep it on
	// loopback).
	Auth *auth.File
	// TLS, when set, makes the embedded server's clients use TLS
	// (persistence.ServerTLS builds it; cairn serve --tls-cert). Default
	// nil: plain TCP.
	TLS *tls.Config
	// Store, Grain, Cluster and Projections configure the parts; see their
	// defaults (Projections.Shards: one shard per CPU). The caches with a
	// memory budget are the projections' query caches
	// (Projections.CacheEntries × CacheMaxReplyBytes per shard, 32 MiB by
	// default), the time-travel views (Projections.ViewCacheEntries, 8)
	// and the read-model snapshots time travel keeps
	// (Projections.ViewSnapshotBytes, 64 MiB); SizeCaches derives all three
	// from a memory limit.
	Store       persistence.StoreConfig
	Grain       actors.GrainConfig
	Cluster     cairncluster.Config
	Projections actors.ProjectionConfig
	// Snapshots configures the Object Store bucket that holds aggregate and
	// read-model snapshots and archives (default bucket "object-store").
	// How often they are taken and how many are kept is Grain.SnapshotEvery
	// and SnapshotKeep, and Projections.SnapshotEvery and SnapshotKeep.
	Snapshots persistence.SnapshotConfig
	// DisableSnapshots turns snapshots off: every activation and every
	// restart replays the stream, and `--as-of` queries replay from the
	// graph's first event. Default false.
	DisableSnapshots bool
	// NoLocalSnapshots turns off the local copies of snapshots: by default,
	// with snapshots on and a DataDir, the engine keeps a copy of the
	// newest snapshot of each graph it stored, uncompressed, under
	// DataDir/snapshots (persistence.LocalSnapshots), and a restart decodes
	// them while its NATS server recovers (actors.Warm), so that it
	// serves sooner. They cost their size on disk once more (about the
	// read models' and aggregate states' memory). Default false.
	NoLocalSnapshots bool
	// WarmAggregateBytes bounds the aggregate states a restart decodes
	// from local copies before any command asks for them, the most
	// recently written first (actors.WarmConfig.AggregateBytes). SizeCaches
	// sets it to an eighth of the memory limit. Default 256 MiB.
	WarmAggregateBytes int64
	// Gateway serves the "cairn" NATS micro service. Default true.
	Gateway bool
	// CommandTimeout bounds one command end to end. Default 10 seconds.
	CommandTimeout time.Duration
	// Logger. Default: discard.
	Logger *slog.Logger
	// Metrics, when set, receives the engine's Prometheus metrics: Open
	// passes it to the grains (Grain.Metrics) and registers a collector of
	// the engine's state on its registry (serve it with Metrics.Handler;
	// cairn serve --metrics-listen). Default nil: no metrics, no cost.
	Metrics *metrics.Metrics
	// Signer, when set, signs every transaction, snapshot and archive the
	// engine writes (cairn serve --signing-key). Default nil: unsigned.
	Signer *persistence.Signer
	// Trust is the keyring every signature is checked against: grain
	// replays, snapshot and archive loads, Store.Verify. The signer's own
	// key is added to it. Nil with a Signer: the signer's key alone. Nil
	// without one (the default): no signature is checked, unsigned
	// history is accepted.
	Trust *persistence.Keyring
	// AdoptUnsignedHistory makes Open accept, besides Trust's own bound,
	// the unsigned transactions the event stream holds when it opens (up
	// to its last sequence then): the history written before signing was
	// turned on. cairn serve sets it on the first start with its default
	// key and remembers the bound (DATA/signing.unsigned-through). Default
	// false.
	AdoptUnsignedHistory bool
	// Tracing turns OpenTelemetry tracing on (cairn serve --otlp-endpoint).
	// Default: off, no span is made and no header sent.
	Tracing TracingConfig
}

// TracingConfig says where an engine's spans go. A command's trace runs
// cairn.command (from the gateway or Engine.Execute) → dispatcher →
// grain → append → projection apply → the first query on its graph after
// it; the README's Tracing section lists the spans.
type TracingConfig struct {
	// Endpoint is an OTLP/HTTP collector's base URL, such as
	// http://127.0.0.1:4318: spans go to Endpoint/v1/traces (or to
	// Endpoint itself when it has a path). Default "": no export.
	Endpoint string
	// Sample is the share of new traces kept, 0 to 1, parent-based: a
	// request whose traceparent is sampled is always traced. Default 1.
	Sample float64
	// Provider, when set, is used instead of Endpoint and Sample: an
	// embedder's own SDK, exporters and sampler. The engine does not shut
	// it down. Default nil.
	Provider trace.TracerProvider
	// Instance is the exported spans' service.instance.id, which tells the
	// members of a cluster apart. Default: the embedded server's name
	// (NATSName) when set, else the host's name and the process id
	// (host-pid; on Kubernetes the host name is the pod's).
	Instance string
}

// instance returns Instance, else natsName, else host-pid.
func (t TracingConfig) instance(natsName string) string {
	switch {
	case t.Instance != "":
		return t.Instance
	case natsName != "":
		return natsName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "cairn"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// on reports whether the engine traces.
func (t TracingConfig) on() bool { return t.Provider != nil || t.Endpoint != "" }

// DefaultConfig returns the defaults with dataDir.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir:        dataDir,
		NATSListen:     "127.0.0.1:4222",
		Store:          persistence.DefaultStoreConfig(),
		Snapshots:      persistence.DefaultSnapshotConfig(),
		Grain:          actors.DefaultGrainConfig(),
		Cluster:        cairncluster.DefaultConfig(),
		Projections:    actors.DefaultProjectionConfig(),
		Gateway:        true,
		CommandTimeout: 10 * time.Second,
		JetStreamWait:  defaultJetStreamWait,
		Logger:         slog.New(slog.DiscardHandler),
		Tracing:        TracingConfig{Sample: 1},
	}
}

// defaultJetStreamWait is Config.JetStreamWait's default.
const defaultJetStreamWait = time.Minute

// Validate returns every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" && c.NATSURL == "" {
		errs = append(errs, errors.New("data dir is empty and no external NATS URL is set"))
	}
	if c.NATSURL != "" && (c.Auth != nil || c.TLS != nil) {
		errs = append(errs, errors.New("auth and TLS configure the embedded server; an external NATS (NATSURL) has its own (NATSOptions)"))
	}
	if c.Auth != nil {
		errs = append(errs, c.Auth.Validate())
	}
	errs = append(errs, c.validateNATSCluster())
	if c.CommandTimeout <= 0 {
		errs = append(errs, errors.New("command timeout must be positive"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger is nil (use a discard logger)"))
	}
	if c.Tracing.Provider == nil && c.Tracing.Endpoint != "" {
		errs = append(errs, otlp.Config{Endpoint: c.Tracing.Endpoint, Sample: c.Tracing.Sample}.Validate())
	}
	proj := c.Projections
	proj.Logger = c.Logger // Open passes the engine's logger down
	errs = append(errs, c.Store.Validate(), c.Grain.Validate(), c.Cluster.Validate(), proj.Validate())
	if !c.DisableSnapshots {
		errs = append(errs, c.Snapshots.Validate())
	}
	return errors.Join(errs...)
}

// validateNATSCluster checks the embedded server's cluster settings and
// that the replicas asked for fit the nodes it knows of. An external
// NATS is checked when Open creates the stream (persistence.ErrNotClustered).
func (c Config) validateNATSCluster() error {
	if c.JetStreamWait < 0 {
		return errors.New("JetStream wait must not be negative")
	}
	if c.NATSURL != "" {
		if c.NATSCluster.Clustered() || len(c.NATSCluster.Routes) > 0 || c.NATSName != "" {
			return errors.New("the server name and cluster settings configure the embedded server; an external NATS (NATSURL) is clustered on its own")
		}
		return nil
	}
	var errs []error
	if err := c.NATSCluster.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("NATS cluster: %w", err))
	}
	if c.NATSCluster.Clustered() && c.NATSName == "" {
		errs = append(errs, errors.New("NATS cluster: this node needs a name of its own (NATSName; cairn serve --name)"))
	}
	if err := c.NATSCluster.ReplicasPossible(c.Store.Replicas); err != nil {
		errs = append(errs, fmt.Errorf("event stream: %w", err))
	}
	if !c.DisableSnapshots && c.Snapshots.Replicas != c.Store.Replicas {
		if err := c.NATSCluster.ReplicasPossible(c.Snapshots.Replicas); err != nil {
			errs = append(errs, fmt.Errorf("object store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// SizeCaches sizes every cache that has a memory budget from limit, the
// memory the engine's process may use in bytes (cairn serve passes its
// --memory-limit, which it also gives the Go runtime with
// debug.SetMemoryLimit; Open itself sets no process-wide limit). No limit
// (0 or math.MaxInt64) keeps the defaults. The budgets are shares of the
// limit, documented on actors.ProjectionConfig.SizeCaches: a 32nd for the
// query caches of all shards, a 32nd for the snapshots time travel keeps,
// an eighth for time-travel views, an eighth for the aggregate states a
// restart decodes ahead (WarmAggregateBytes); a 2 GiB limit on 2 CPUs gives the
// defaults. Set a budget explicitly after calling it to override it.
func (c *Config) SizeCaches(limit int64) {
	c.Projections.SizeCaches(limit)
	if limit > 0 && limit != math.MaxInt64 {
		c.WarmAggregateBytes = limit / 8
	}
}

// authStreams names what the engine keeps in JetStream, for its users'
// permissions and the checks of adapters' streams.
func (c Config) authStreams() auth.Streams {
	return auth.Streams{Events: c.Store.Stream, EventSubjects: c.Store.SubjectPrefix, Objects: c.Snapshots.Bucket}
}
