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
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
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
	// TLS, when set, makes the remote endpoint speak mutual TLS: it serves
	// with TLS.Certificates and takes only peers whose certificate
	// TLS.ClientCAs signed (whatever TLS.ClientAuth says), and it dials
	// other members with the same certificate, trusting TLS.RootCAs.
	// Default nil: plaintext gRPC, allowed on loopback only.
	TLS *tls.Config
	// RequestTimeout bounds a grain request. Default 10 seconds.
	RequestTimeout time.Duration
	// Logger receives the actor system's and cluster's logs. Default:
	// discard (protoactor builds a debug record per request otherwise).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Name: "cairn", Host: "127.0.0.1", RequestTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)}
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
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("request timeout must be positive"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger is nil (use a discard logger)"))
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
	provider *joinProvider
	// started is closed when protoactor's StartMember has returned; see
	// Start.
	started chan struct{}
}

// joinProvider is protoactor's in-memory provider that reports when this
// member has joined. Cluster.StartMember sets everything up (remote,
// identity lookup, gossip, pub-sub, topology consensus), calls the
// provider's StartMember last and then sleeps a fixed second before it
// returns. The in-memory provider registers the member and updates the
// member list and the identity lookup's members before its StartMember
// returns, so once it has returned the member places and activates
// grains: that, not the sleep, is the readiness signal.
type joinProvider struct {
	*test.Provider
	joined chan struct{}
}

func (p *joinProvider) StartMember(c *cluster.Cluster) error {
	if err := p.Provider.StartMember(c); err != nil {
		return err
	}
	close(p.joined)
	return nil
}

// Start starts a single-member cluster (in-memory membership, distributed
// hash identity lookup) hosting kinds. It returns as soon as the member
// has joined its cluster, without waiting for the fixed second that
// protoactor's Cluster.StartMember sleeps after that (the sleep finishes
// on a goroutine that Close waits for). A panic in StartMember (a remote
// port in use, for example) is returned as an error.
func Start(cfg Config, kinds ...*cluster.Kind) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	logger := cfg.Logger
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	provider := &joinProvider{Provider: test.NewTestProvider(test.NewInMemAgent()), joined: make(chan struct{})}
	lookup := disthash.New()
	var remoteOpts []remote.ConfigOption
	if cfg.TLS != nil {
		srv := cfg.TLS.Clone()
		srv.ClientAuth = tls.RequireAndVerifyClientCert
		remoteOpts = append(remoteOpts,
			remote.WithServerOptions(grpc.Creds(credentials.NewTLS(srv))),
			remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(cfg.TLS.Clone()))))
	}
	rc := remote.Configure(cfg.Host, cfg.Port, remoteOpts...)
	cc := cluster.Configure(cfg.Name, provider, lookup, rc,
		cluster.WithKinds(kinds...),
		cluster.WithRequestTimeout(cfg.RequestTimeout),
		cluster.WithRequestLog(false),
	)
	c := cluster.New(system, cc)
	m := &Member{system: system, cluster: c, provider: provider, started: make(chan struct{})}
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
	case <-provider.joined:
		return m, nil
	case <-m.started:
	}
	// StartMember returned (or panicked) before the member joined.
	select {
	case <-provider.joined:
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

// Close leaves the cluster and stops the actor system and its remote
// endpoint, within ctx's deadline. Stop the grains first (for graph grains,
// actors.GraphGrains.StopAll) so that they drain.
//
// A single member has no one to hand its identities to, so it skips the
// graceful hand-over (which waits two seconds). Close also waits for the
// rest of protoactor's StartMember (its fixed sleep, up to a second after
// Start returned) to be over.
func (m *Member) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		_ = m.provider.Shutdown(true)
		m.cluster.Shutdown(false)
		<-m.started
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster shutdown: %w", ctx.Err())
	}
}
