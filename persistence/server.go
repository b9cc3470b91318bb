package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
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
	// ServerName names the server. Default "cairn".
	ServerName string
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
}

// Server is an embedded nats-server with JetStream.
type Server struct {
	ns  *server.Server
	cfg ServerConfig
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
	return &Server{ns: ns, cfg: cfg}, nil
}

// ClientURL returns the URL other processes connect to, or "" when the server
// does not listen.
func (s *Server) ClientURL() string {
	if s.cfg.Listen == ListenNone {
		return ""
	}
	return s.ns.ClientURL()
}

// DataDir returns the JetStream data directory.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// Connect opens an in-process connection (no TCP) to the server.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.ns), nats.Name("cairn-engine")}, opts...)
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

func (s *serverLog) Noticef(format string, v ...any) { s.l.Info(fmt.Sprintf(format, v...)) }
func (s *serverLog) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s *serverLog) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLog) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLog) Debugf(format string, v ...any)  {}
func (s *serverLog) Tracef(format string, v ...any)  {}
