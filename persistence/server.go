package persistence

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/cairn-graph/cairn/internal/logx"
)

// DefaultMaxPayload is the embedded server's default max_payload: the
// largest message it takes, headers included. It is FileStoreMaxRecord,
// because JetStream's file store refuses a larger message anyway: raising
// max_payload past it lets no larger transaction in. Removing a node with
// 100,000 edges is one transaction of about 21 MB (about 210 bytes an
// event, its CID and its link to the previous one included), which fits;
// see the README's "Limits".
const DefaultMaxPayload = FileStoreMaxRecord

// ListenNone disables the embedded server's TCP listener: only in-process
// connections reach it.
const ListenNone = "none"

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// DataDir holds JetStream's files. Required.
	DataDir string
	// Listen is host:port for clients, or ListenNone. Port 0 picks a free
	// port. Default "127.0.0.1:4222".
	Listen string
	// SyncAlways makes JetStream fsync every write (survives power loss, much
	// slower). Default false: acknowledged writes are in the OS and survive a
	// process kill.
	SyncAlways bool
	// ServerName names the server. Default "cairn". The nodes of a
	// cluster need names of their own (nats-server refuses a route from a
	// node with its own name): Cluster makes it required.
	ServerName string
	// Cluster, when its Listen is set, makes the server one node of a NATS
	// cluster, so that streams and buckets can have replicas. Default: a
	// single node, whose streams have one replica.
	Cluster ServerCluster
	// ReadyTimeout bounds start-up. Default 10 seconds.
	ReadyTimeout time.Duration
	// MaxPayload is the largest message the server accepts, headers
	// included (nats-server's max_payload); it bounds one transaction.
	// Default DefaultMaxPayload. The server's max_pending (per-client
	// outbound buffer) is set to four times it, at least 64 MiB, so that a
	// reader pulling two of the largest messages at once is never cut off
	// as a slow consumer.
	MaxPayload int32
	// Logger receives the server's notices and errors (debug and trace are
	// off). Default: discard.
	Logger *slog.Logger
	// Users and NkeyUsers, when either is set, are the only identities
	// other processes may connect as, each with its own permissions
	// (auth.File.ServerUsers builds them). The engine then connects as an
	// identity of its own, with every right, made at start: an nkey whose
	// seed never leaves the process and that only in-process connections
	// may use (Connect). Default: none, and anyone who reaches the
	// listener may do anything.
	Users     []*server.User
	NkeyUsers []*server.NkeyUser
	// TLS, when set, makes clients on the listener use TLS with it (see
	// ServerTLS); a config that requires and verifies client certificates
	// makes the server require them. In-process connections never use TLS.
	TLS *tls.Config
}

// Server is an embedded nats-server with JetStream.
type Server struct {
	ns  *server.Server
	cfg ServerConfig
	// engine is the engine's own identity when the server has users; nil
	// otherwise.
	engine nkeys.KeyPair
}

// StartServer starts an embedded nats-server with JetStream in cfg.DataDir
// and waits until it accepts connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("start nats: data dir is empty")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4222"
	}
	if cfg.Cluster.Clustered() && cfg.ServerName == "" {
		return nil, errors.New("start nats: a cluster node needs a server name of its own")
	}
	if err := cfg.Cluster.Validate(); err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "cairn"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
		MaxPayload: cfg.MaxPayload,
		MaxPending: max(64<<20, 4*int64(cfg.MaxPayload)),
	}
	if cfg.SyncAlways {
		opts.SyncAlways = true
	}
	if err := cfg.Cluster.apply(opts); err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	var engine nkeys.KeyPair
	if len(cfg.Users) > 0 || len(cfg.NkeyUsers) > 0 {
		var pub string
		var err error
		if engine, pub, err = engineIdentity(); err != nil {
			return nil, fmt.Errorf("start nats: %w", err)
		}
		opts.Users = cfg.Users
		opts.Nkeys = append(slices.Clone(cfg.NkeyUsers), &server.NkeyUser{
			Nkey: pub, AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}},
		})
	}
	if cfg.TLS != nil {
		opts.TLS, opts.TLSConfig = true, cfg.TLS
		opts.TLSVerify = cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	}
	if cfg.Listen == ListenNone {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("start nats: listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("start nats: listen port %q is not a port number", port)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(&serverLog{l: cfg.Logger.With("component", "nats-server")}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("start nats: not ready within %s (is %s in use, or %s not writable?)", cfg.ReadyTimeout, cfg.Listen, cfg.DataDir)
	}
	return &Server{ns: ns, cfg: cfg, engine: engine}, nil
}

// engineIdentity makes the engine's nkey for one run of the server.
func engineIdentity() (nkeys.KeyPair, string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", fmt.Errorf("engine identity: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, "", fmt.Errorf("engine identity: %w", err)
	}
	return kp, pub, nil
}

// ServerTLS returns a TLS config for ServerConfig.TLS from PEM files: the
// server's certificate and key, and, when caFile is set, the CA that
// client certificates are checked against. verifyClients requires every
// client to present a certificate that caFile's CA signed.
func ServerTLS(certFile, keyFile, caFile string, verifyClients bool) (*tls.Config, error) {
	if verifyClients && caFile == "" {
		return nil, errors.New("server TLS: requiring client certificates needs a CA file to check them with")
	}
	c, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile, CaFile: caFile, Verify: verifyClients})
	if err != nil {
		return nil, fmt.Errorf("server TLS: %w", err)
	}
	return c, nil
}

// ClientURL returns the URL other processes connect to, or "" when the server
// does not listen.
func (s *Server) ClientURL() string {
	if s.cfg.Listen == ListenNone {
		return ""
	}
	return s.ns.ClientURL()
}

// ClusterURL returns the URL other nodes dial this node's routes at
// (nats-route://host:port), or "" when the server is not clustered.
func (s *Server) ClusterURL() string {
	if !s.cfg.Cluster.Clustered() {
		return ""
	}
	addr := s.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats-route://" + addr.String()
}

// Name returns the server's name.
func (s *Server) Name() string { return s.cfg.ServerName }

// MetaLeader reports whether this node leads the JetStream meta group of
// its NATS cluster (false for a single server).
func (s *Server) MetaLeader() bool { return s.cfg.Cluster.Clustered() && s.ns.JetStreamIsLeader() }

// DataDir returns the JetStream data directory.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// Connect opens an in-process connection (no TCP) to the server, as the
// engine's own identity when the server has users.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{nats.InProcessServer(s.ns), nats.Name("cairn-engine")}
	if s.engine != nil {
		pub, err := s.engine.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("connect to embedded nats: %w", err)
		}
		base = append(base, nats.Nkey(pub, s.engine.Sign))
	}
	opts = append(base, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("nats shutdown: %w", ctx.Err())
	}
}

// serverLog adapts slog to nats-server's logger.
type serverLog struct{ l *slog.Logger }

func (s *serverLog) Noticef(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	s.l.Log(context.Background(), logx.ServerNotice(msg), msg)
}
func (s *serverLog) Warnf(format string, v ...any)  { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s *serverLog) Fatalf(format string, v ...any) { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLog) Errorf(format string, v ...any) { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLog) Debugf(format string, v ...any) {}
func (s *serverLog) Tracef(format string, v ...any) {}
