package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/cairn-graph/cairn/internal/logx"
)

// Config configures a cluster member. DefaultConfig documents the defaults.
type Config struct {
	// Name is the cluster name; members of one cluster share it. Default
	// "cairn".
	Name string
	// Host and Port are where the member's remote endpoint listens. Default
	// 127.0.0.1 and 0 (a free port). A Host beyond loopback needs TLS.
	Host string
	Port int
	// Advertise is the host:port the other members dial to reach this one,
	// when it is not Host:Port (a pod's DNS name, a listener on 0.0.0.0).
	// Default: the address the remote listens on.
	Advertise string
	// TLS, when set, makes the remote endpoint speak mutual TLS: it serves
	// with TLS.Certificates and takes only peers whose certificate
	// TLS.ClientCAs signed (whatever TLS.ClientAuth says), and it dials
	// other members with the same certificate, trusting TLS.RootCAs.
	// Default nil: plaintext gRPC, allowed on loopback only.
	TLS *tls.Config
	// RequestTimeout bounds a grain request, and a look-up through
	// protoactor's Cluster.Get (Lookup.GetContext takes the caller's
	// deadline instead). Default 10 seconds.
	RequestTimeout time.Duration
	// Membership is how members find each other: MembershipLocal (the
	// default, a single member), MembershipNATSKV (a bucket of NATS
	// JetStream, configured by KV) or MembershipK8s (pod labels, in a
	// binary built with the tag k8s).
	Membership Membership
	// KV configures MembershipNATSKV; its defaults are DefaultKVConfig's.
	KV KVConfig
	// HandoverMargin is how long a new owner of an identity waits at most
	// for its previous, still live, owner to stop its activation (see
	// Lookup). Default 2 seconds.
	HandoverMargin time.Duration
	// Logger receives the actor system's and cluster's logs. Default:
	// discard (protoactor builds a debug record per request otherwise).
	Logger *slog.Logger
}

// Membership says how the members of a cluster find each other.
//
// Supported: MembershipLocal, one member in one process (protoactor's
// in-memory provider: no I/O, so a single member starts in milliseconds);
// MembershipNATSKV, any number of members over the NATS JetStream the
// engine uses anyway (no outside service; heartbeats, TTL and
// self-fencing, see KVConfig), the default of a cluster; and
// MembershipK8s, protoactor's Kubernetes provider (members are the ready
// pods labelled with the cluster's name; no lease and no self-fencing:
// the event store's per-graph expected sequence is the only fence), for
// deployments that want the pods' state as the source of membership. It
// links client-go, so only a binary built with the tag k8s has it
// (K8sBuilt). protoactor's other providers (automanaged, consul, etcd,
// zk) implement the same cluster.ClusterProvider but are not wired: each
// needs an outside service of its own, and NATS KV needs none.
type Membership int

const (
	// MembershipLocal is a single member, alone in its cluster.
	MembershipLocal Membership = iota
	// MembershipNATSKV is membership over a NATS KV bucket (KVConfig).
	MembershipNATSKV
	// MembershipK8s is protoactor's Kubernetes provider (build tag k8s;
	// in a pod only, K8sInCluster).
	MembershipK8s
)

func (m Membership) String() string {
	switch m {
	case MembershipLocal:
		return "local"
	case MembershipNATSKV:
		return "nats-kv"
	case MembershipK8s:
		return "k8s"
	}
	return fmt.Sprintf("Membership(%d)", int(m))
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Name: "cairn", Host: "127.0.0.1", RequestTimeout: 10 * time.Second, KV: DefaultKVConfig(),
		HandoverMargin: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)}
}

// Validate returns every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("cluster name is empty"))
	}
	if c.TLS == nil && !loopback(c.Host) {
		errs = append(errs, fmt.Errorf("host %q reaches beyond this machine: the remote endpoint needs mutual TLS there (Config.TLS)", c.Host))
	}
	if c.TLS != nil && (len(c.TLS.Certificates) == 0 || c.TLS.ClientCAs == nil || c.TLS.RootCAs == nil) {
		errs = append(errs, errors.New("TLS needs a certificate, the CAs that sign peers' certificates (ClientCAs) and the CAs to trust peers by (RootCAs)"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is out of range", c.Port))
	}
	if ip := net.ParseIP(c.Host); ip != nil && ip.IsUnspecified() && c.Advertise == "" {
		errs = append(errs, fmt.Errorf("host %s listens on every interface: say where the other members reach this one (Config.Advertise)", c.Host))
	}
	if c.Advertise != "" {
		if h, p, err := net.SplitHostPort(c.Advertise); err != nil || h == "" || p == "" || p == "0" {
			errs = append(errs, fmt.Errorf("advertised address %q is not host:port with a port", c.Advertise))
		}
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("request timeout must be positive"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger is nil (use a discard logger)"))
	}
	if c.HandoverMargin <= 0 {
		errs = append(errs, errors.New("hand-over margin must be positive"))
	}
	switch c.Membership {
	case MembershipLocal:
	case MembershipNATSKV:
		if !bucketName.MatchString(c.Name) {
			errs = append(errs, fmt.Errorf("cluster name %q names the membership bucket: only letters, digits, - and _", c.Name))
		}
		errs = append(errs, c.KV.validate())
	case MembershipK8s:
		if !K8sBuilt {
			errs = append(errs, ErrK8sNotBuilt)
		}
	default:
		errs = append(errs, fmt.Errorf("unknown membership %v", c.Membership))
	}
	return errors.Join(errs...)
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Member is one running member of a Proto.Actor cluster that hosts kinds.
type Member struct {
	system   *actor.ActorSystem
	cluster  *cluster.Cluster
	lookup   *Lookup
	provider cluster.ClusterProvider
	// kv is the NATS KV membership, nil for a single member.
	kv *kvProvider
	// started is closed when protoactor's StartMember has returned; see
	// Start.
	started chan struct{}
}

// joinProvider is a provider (protoactor's in-memory one, or the
// Kubernetes one) that reports when this member has joined. Cluster.StartMember sets everything up (remote,
// identity lookup, gossip, pub-sub, topology consensus), calls the
// provider's StartMember last and then sleeps a fixed second before it
// returns. The in-memory provider registers the member and updates the
// member list and the identity lookup's members before its StartMember
// returns, so once it has returned the member places and activates
// grains: that, not the sleep, is the readiness signal. The NATS KV
// provider does the same (its StartMember returns once the member's key
// is written and the member list holds the members in the bucket). The
// Kubernetes provider's StartMember only starts its registration (its
// pod's labels) and its watch of the pods: commands wait (UNAVAILABLE,
// no member hosts the kind) until the pods' topology arrives.
type joinProvider struct {
	cluster.ClusterProvider
	joined chan struct{}
}

func (p *joinProvider) StartMember(c *cluster.Cluster) error {
	if err := p.ClusterProvider.StartMember(c); err != nil {
		return err
	}
	close(p.joined)
	return nil
}

// Start starts a cluster member hosting kinds, with Cairn's identity
// lookup (Lookup) and the membership cfg.Membership names: alone in its
// cluster (in-memory, the default) or over a NATS KV bucket (cfg.KV). It
// returns as soon as the member has joined its cluster, without waiting
// for the fixed second that protoactor's Cluster.StartMember sleeps after
// that (the sleep finishes on a goroutine that Close waits for). A panic
// in StartMember (a remote port in use, for example) is returned as an
// error, and so is a membership that could not be joined (NATS KV without
// cfg.KV.JetStream, the bucket or the member's key not written).
func Start(cfg Config, kinds ...*cluster.Kind) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	if cfg.Membership == MembershipNATSKV && cfg.KV.JetStream == nil {
		return nil, errors.New("cluster config: NATS KV membership needs a JetStream context (KV.JetStream)")
	}
	logger := cfg.Logger
	// Proto.Actor's own life-cycle lines at DEBUG; the membership's lines
	// (on logger) stay at INFO.
	actorLog := logx.Demoted(logger.Handler()).With("component", "protoactor")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLog }))
	lookup := newLookup(cfg.RequestTimeout, cfg.HandoverMargin, logger)
	m := &Member{system: system, lookup: lookup, started: make(chan struct{})}
	var joined chan struct{}
	switch cfg.Membership {
	case MembershipNATSKV:
		m.kv = newKVProvider(cfg.KV, cfg.Name, lookup, logger)
		lookup.leaseValid = m.kv.leaseValid
		m.provider, joined = m.kv, m.kv.joined
	case MembershipK8s:
		k, err := newK8sProvider()
		if err != nil {
			return nil, err
		}
		p := &joinProvider{ClusterProvider: k, joined: make(chan struct{})}
		m.provider, joined = p, p.joined
	default:
		p := &joinProvider{ClusterProvider: test.NewTestProvider(test.NewInMemAgent()), joined: make(chan struct{})}
		m.provider, joined = p, p.joined
	}
	var remoteOpts []remote.ConfigOption
	if cfg.TLS != nil {
		srv := cfg.TLS.Clone()
		srv.ClientAuth = tls.RequireAndVerifyClientCert
		remoteOpts = append(remoteOpts,
			remote.WithServerOptions(grpc.Creds(credentials.NewTLS(srv))),
			remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(cfg.TLS.Clone()))))
	}
	if cfg.Advertise != "" {
		remoteOpts = append(remoteOpts, remote.WithAdvertisedHost(cfg.Advertise))
	}
	rc := remote.Configure(cfg.Host, cfg.Port, remoteOpts...)
	cc := cluster.Configure(cfg.Name, m.provider, lookup, rc,
		cluster.WithKinds(kinds...),
		cluster.WithRequestTimeout(cfg.RequestTimeout),
		cluster.WithRequestLog(false),
		withoutGossip,
	)
	c := cluster.New(system, cc)
	m.cluster = c
	var startErr error
	go func() {
		defer close(m.started)
		defer func() {
			if r := recover(); r != nil {
				startErr = fmt.Errorf("start cluster member: %v", r)
			}
		}()
		c.StartMember()
	}()
	select {
	case <-joined:
		return m, nil
	case <-m.started:
	}
	// StartMember returned (or panicked) before the member joined.
	select {
	case <-joined:
		return m, nil
	default:
	}
	if startErr == nil {
		startErr = errors.New("start cluster member: it returned without joining the cluster")
	}
	system.Shutdown()
	stopRemote(c)
	return nil, startErr
}

// withoutGossip turns protoactor's gossip off (its loop never ticks).
// Membership comes from the provider alone: gossip would add a second,
// weaker failure detector (members whose gossip heartbeat expires are
// blocked for good) and a topology consensus Cairn does not use, and at
// the pinned version it reads the member list and the block list without
// their locks (data races between the gossip actor and the provider).
func withoutGossip(c *cluster.Config) { c.GossipInterval = 24 * time.Hour }

// stopRemote stops the remote endpoint of a member that failed to start,
// if it got as far as listening.
func stopRemote(c *cluster.Cluster) {
	defer func() { _ = recover() }() // a remote that never listened has nothing to stop
	if c.Remote != nil {
		c.Remote.Shutdown(false)
	}
}

// Cluster returns the Proto.Actor cluster.
func (m *Member) Cluster() *cluster.Cluster { return m.cluster }

// System returns the actor system.
func (m *Member) System() *actor.ActorSystem { return m.system }

// Lookup returns the member's identity lookup.
func (m *Member) Lookup() *Lookup { return m.lookup }

// ID returns the member's id, fresh on every start.
func (m *Member) ID() string { return m.system.ID }

// Fenced returns a channel closed when the member fenced itself (NATS KV
// membership only; see KVConfig); Err then says why.
func (m *Member) Fenced() <-chan struct{} {
	if m.kv == nil {
		return nil
	}
	return m.kv.fenced
}

// Err returns why the member fenced itself (an error matching ErrFenced),
// nil while it has not.
func (m *Member) Err() error {
	if m.kv == nil {
		return nil
	}
	return m.kv.err()
}

// Check returns an error matching ErrFenced when the member must not
// write: it fenced itself, or, its soft lease run out (a pause it has just
// woken from, before its heartbeat noticed), a heartbeat sent at once is
// refused (the others dropped it) or its hard lease ran out too (see
// KVConfig). Nil for a single member. Grains check it before each append
// (actors.GrainConfig.Fence).
func (m *Member) Check() error {
	if m.kv == nil {
		return nil
	}
	return m.kv.check()
}

// Leave makes the member activate nothing more: it refuses activation
// requests (its grains already active still answer), and callers retry
// until it has left and the identities have other owners. Call it before
// stopping the grains, then Close.
func (m *Member) Leave() { m.lookup.leaving.Store(true) }

// Close leaves the cluster and stops the actor system and its remote
// endpoint, within ctx's deadline. Stop the grains first (for graph grains,
// actors.GraphGrains.StopAll) so that they drain.
//
// Leaving is deleting the member's key (NATS KV membership): the other
// members drop it at once, and as its grains have stopped they activate
// its identities without waiting. So Close skips protoactor's graceful
// hand-over (which waits two seconds). Close also waits for the rest of
// protoactor's StartMember (its fixed sleep, up to a second after Start
// returned) to be over.
func (m *Member) Close(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		err := m.provider.Shutdown(true)
		m.lookup.Shutdown()
		m.cluster.Shutdown(false)
		<-m.started
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("cluster shutdown: %w", ctx.Err())
	}
}
