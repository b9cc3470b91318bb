package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/cairn-graph/cairn"
	cairnauth "github.com/cairn-graph/cairn/auth"
	"github.com/cairn-graph/cairn/persistence"
)

const natsNodeUsage = `Usage:
  cairn nats-node [--data DIR] [--nats-listen ADDR] [--sync-always]
                  [--name NAME --nats-cluster-listen ADDR --nats-routes URL,URL
                   [--nats-cluster-name NAME]]
                  [--auth FILE] [--tls-cert F --tls-key F [--tls-ca F] [--tls-verify]]
                  [--insecure] [--log-level LEVEL] [--log-format text|json]
                  [--drain-timeout D] [--json]

nats-node runs a bare NATS server with JetStream, the same one cairn serve
embeds, and no engine: no graphs, projections or cluster member. Several of
them make an external NATS JetStream cluster for cairn serve --nats
URL,URL,... members (each member given every node's URL reconnects to
another node when its node dies). The flags are serve's for its embedded
server, with the same rules: a listen address beyond loopback is refused
without --auth (or --insecure), and routes beyond loopback need mutual TLS
(--tls-cert, --tls-key and --tls-ca; --insecure does not lift this). It
prints one line on stdout once it accepts clients, for example
  cairn nats-node ready: nats=nats://127.0.0.1:4222 route=nats-route://127.0.0.1:6222 name=n1 data=/abs/path/.cairn-nats
(with --json: {"nats":"nats://...","route":"nats-route://...","name":"n1","data":"/abs/..."};
no route without --nats-cluster-listen). A node of a cluster serves
JetStream once a quorum of the nodes is up: until then a member's start
waits, and a write is answered "unavailable". It logs to stderr and runs
until SIGINT or SIGTERM: the first shuts the server down (within
--drain-timeout), a second exits at once.

Flags:
  --data DIR            JetStream's data directory (default .cairn-nats)
  --nats-listen ADDR    where clients connect, host:port (port 0 picks a
                        free one; default 127.0.0.1:4222)
  --sync-always         fsync every write before it is acknowledged (see
                        cairn help serve); give it to every node
  --name NAME           the node's name, its own within the cluster
                        (default cairn)
  --nats-cluster-listen ADDR
                        where the node takes routes from the others
                        (host:port); needs --name
  --nats-routes URL,URL the other nodes' route URLs, nats-route://host:port
  --nats-cluster-name NAME
                        the NATS cluster's name, the same on every node
                        (default cairn)
  --auth FILE           users file (cairn auth add-user): only its users may
                        connect, each with its role's rights, as for serve
  --tls-cert F --tls-key F [--tls-ca F] [--tls-verify] [--insecure]
                        as for serve
  --log-level LEVEL     debug, info, warn or error (default info)
  --log-format F        text or json (default text)
  --drain-timeout D     how long the first signal waits for the server to
                        shut down (default 30s)
  --json                print the ready line as JSON
`

// runNATSNode runs a bare NATS JetStream node: serve's embedded server
// without the engine.
func runNATSNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("nats-node")
	data := fs.String("data", ".cairn-nats", "data `directory`")
	listen := fs.String("nats-listen", "127.0.0.1:4222", "client listen `address`")
	var af authFlags
	af.register(fs)
	authFile := fs.String("auth", "", "users `file`")
	tlsVerify := fs.Bool("tls-verify", false, "require client certificates signed by --tls-ca")
	insecure := fs.Bool("insecure", false, "listen beyond loopback without --auth")
	syncAlways := fs.Bool("sync-always", false, "fsync every write")
	name := fs.String("name", "", "node `name` (default cairn)")
	clusterListen := fs.String("nats-cluster-listen", "", "route listen `address`")
	routes := fs.String("nats-routes", "", "other nodes' route `URLs`, comma-separated")
	clusterName := fs.String("nats-cluster-name", persistence.DefaultClusterName, "NATS cluster `name`")
	level := fs.String("log-level", "info", "log `level`")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	drain := fs.Duration("drain-timeout", 30*time.Second, "shutdown `timeout`")
	jsonOut := fs.Bool("json", false, "print the ready line as JSON")
	if _, err := parseArgs(fs, "nats-node", args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	usage := func(format string, a ...any) error {
		return &usageError{topic: "nats-node", err: fmt.Errorf("nats-node: "+format, a...)}
	}
	logger, err := newLogger(stderr, *level, *logFormat)
	if err != nil {
		return usage("%v", err)
	}
	if *drain <= 0 {
		return usage("--drain-timeout must be positive, not %s", *drain)
	}
	if af.credentials() {
		return usage("--creds, --user, --password and --nkey log in to a NATS server; a node's users come from --auth FILE")
	}
	if *listen == persistence.ListenNone {
		return usage("--nats-listen none: a bare node nobody can connect to serves nobody")
	}
	dir, err := filepath.Abs(*data)
	if err != nil {
		return fmt.Errorf("nats-node: data dir %s: %w", *data, err)
	}
	// The embedded server's rules, checked by serve's own code: one
	// replica, so that a lone node is allowed too.
	cfg := cairn.DefaultConfig("")
	cfg.Store.Replicas = 1
	scfg := persistence.ServerConfig{DataDir: dir, Listen: *listen, SyncAlways: *syncAlways, Logger: logger}
	if scfg.TLS, err = serverTLS(af, *tlsVerify, usage); err != nil {
		return err
	}
	if err := serveNATSCluster(&cfg, af, *name, *clusterListen, *routes, *clusterName, given, usage); err != nil {
		return err
	}
	scfg.ServerName, scfg.Cluster = cfg.NATSName, cfg.NATSCluster
	var users *cairnauth.File
	if *authFile != "" {
		if users, err = cairnauth.Load(*authFile); err != nil {
			return fmt.Errorf("nats-node: --auth: %w", err)
		}
		scfg.Users, scfg.NkeyUsers = users.ServerUsers(cairnauth.Streams{Events: cfg.Store.Stream, EventSubjects: cfg.Store.SubjectPrefix, Objects: cfg.Snapshots.Bucket})
	}
	if host, _, err := net.SplitHostPort(*listen); err == nil && !isLoopback(host) {
		switch {
		case users != nil:
		case !*insecure:
			return usage("--nats-listen %s reaches beyond this machine, and without --auth anyone who reaches it may write, purge or forge every graph: give --auth FILE (see 'cairn help auth'), or --insecure to listen open anyway", *listen)
		default:
			logger.Warn("--insecure: the NATS node takes anyone, with every right, and listens beyond this machine", "listen", *listen)
		}
	}

	srv, err := persistence.StartServer(scfg)
	if err != nil {
		return fmt.Errorf("nats-node: %w", err)
	}
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), *drain)
		defer cancel()
		return srv.Shutdown(sctx)
	}
	url, route := srv.ClientURL(), srv.ClusterURL()
	if *jsonOut {
		err = writeJSON(stdout, struct {
			NATS  string `json:"nats"`
			Route string `json:"route,omitempty"`
			Name  string `json:"name"`
			Data  string `json:"data"`
		}{url, route, srv.Name(), dir})
	} else {
		routeText := ""
		if route != "" {
			routeText = " route=" + route
		}
		_, err = fmt.Fprintf(stdout, "cairn nats-node ready: nats=%s%s name=%s data=%s\n", url, routeText, srv.Name(), dir)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("nats-node: print ready line: %w", err), shutdown())
	}
	logger.Info("nats-node ready", "nats", url, "route", route, "name", srv.Name(), "data", dir)
	<-ctx.Done()
	logger.Info("shutting down; a second signal exits at once", "timeout", *drain)
	if err := shutdown(); err != nil {
		return fmt.Errorf("nats-node: %w", err)
	}
	logger.Info("stopped")
	return nil
}
