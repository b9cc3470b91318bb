package persistence

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultClusterName is the NATS cluster name when ServerCluster.Name is
// empty.
const DefaultClusterName = "cairn"

// ServerCluster makes the embedded server one node of a NATS cluster: it
// takes routes from the other nodes on Listen and dials Routes. JetStream
// then runs clustered (a Raft group per stream), so that streams and
// buckets can have more than one replica. Its zero value is no cluster.
type ServerCluster struct {
	// Name is the NATS cluster's name; every node of one cluster has the
	// same one, and nats-server refuses routes from a node of another.
	// Default DefaultClusterName ("cairn").
	Name string
	// Listen is host:port where the node takes routes from the other nodes;
	// port 0 picks a free one. Empty: the server is not clustered (the
	// default), and Routes must be empty too.
	Listen string
	// Routes are the route URLs of the other nodes,
	// nats-route://host:port (nats:// is taken too). List every other node:
	// ReplicasPossible counts them, and a node that knows them all joins
	// whichever of them is up first. A URL of the node itself is
	// harmless (nats-server drops a route to itself).
	Routes []string
	// TLS, when set, makes routes use mutual TLS: the node presents
	// TLS.Certificates, takes only peers whose certificate TLS.ClientCAs
	// signed, and checks the nodes it dials against TLS.RootCAs (RouteTLS
	// builds it). Required when Listen or any route is beyond loopback:
	// a route is a full member of the cluster, that reads and writes every
	// stream. Default nil: plaintext routes, allowed on loopback only.
	TLS *tls.Config
}

// Clustered reports whether c makes the server a cluster node.
func (c ServerCluster) Clustered() bool { return c.Listen != "" }

// Validate returns every problem with c, joined.
func (c ServerCluster) Validate() error {
	if !c.Clustered() {
		if len(c.Routes) > 0 {
			return errors.New("cluster routes without a cluster listen address: a node takes routes on its own listen address too (set the cluster listen, host:port)")
		}
		if c.TLS != nil {
			return errors.New("cluster TLS without a cluster listen address")
		}
		return nil
	}
	var errs []error
	if c.NodesKnown() < 2 {
		errs = append(errs, errors.New("a cluster node needs routes to the other nodes (nats-server starts no clustered JetStream without them)"))
	}
	beyond := []string{}
	host, _, err := splitHostPort(c.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("cluster listen address %q: %w", c.Listen, err))
	} else if !loopbackHost(host) {
		beyond = append(beyond, c.Listen)
	}
	for _, r := range c.Routes {
		u, err := ParseRoute(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !loopbackHost(u.Hostname()) {
			beyond = append(beyond, r)
		}
	}
	if len(beyond) > 0 && c.TLS == nil {
		errs = append(errs, fmt.Errorf("cluster routes reach beyond this machine (%s): a route reads and writes every stream, so routes there need mutual TLS (a certificate and the CA that signs every node's)", strings.Join(beyond, ", ")))
	}
	if c.TLS != nil && (len(c.TLS.Certificates) == 0 || c.TLS.ClientCAs == nil || c.TLS.RootCAs == nil || c.TLS.ClientAuth != tls.RequireAndVerifyClientCert) {
		errs = append(errs, errors.New("cluster TLS must be mutual: a certificate, the CAs that sign peers' certificates (ClientCAs, required and verified) and the CAs to trust dialled nodes by (RootCAs); RouteTLS builds one"))
	}
	return errors.Join(errs...)
}

// ParseRoute parses a route URL, nats-route://host:port or nats://host:port
// (user info is refused: routes authenticate with TLS).
func ParseRoute(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("route %q: %w", s, err)
	}
	if u.Scheme != "nats-route" && u.Scheme != "nats" {
		return nil, fmt.Errorf("route %q: want nats-route://host:port", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("route %q: user info in a route URL is not supported; routes authenticate with TLS", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("route %q: want nats-route://host:port, without a path or query", s)
	}
	if _, _, err := splitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("route %q: %w", s, err)
	}
	return u, nil
}

// NodesKnown is the number of NATS nodes c names: this one and each
// distinct route that is not this node's own listen address. 1 when not
// clustered.
func (c ServerCluster) NodesKnown() int {
	seen := map[string]bool{}
	if c.Listen != "" {
		seen[c.Listen] = true
	}
	n := 1
	for _, r := range c.Routes {
		u, err := ParseRoute(r)
		if err != nil || seen[u.Host] {
			continue
		}
		seen[u.Host] = true
		n++
	}
	return n
}

// ReplicasPossible returns an error naming the problem when a stream with
// replicas replicas cannot be placed on the NATS nodes c knows of: more
// than one replica needs a cluster, and no more replicas than nodes.
func (c ServerCluster) ReplicasPossible(replicas int) error {
	if replicas <= 1 {
		return nil
	}
	if !c.Clustered() {
		return fmt.Errorf("%d replicas need a NATS cluster, and the embedded server is a single node: make it a cluster node (a cluster listen address and the other nodes' routes; cairn serve --nats-cluster-listen and --nats-routes) or use an external NATS cluster (--nats URL)", replicas)
	}
	if n := c.NodesKnown(); replicas > n {
		return fmt.Errorf("%d replicas need %d NATS nodes, and this node knows of %d (itself and %d other routes): list every other node in the routes", replicas, replicas, n, n-1)
	}
	return nil
}

// RouteTLS returns a mutual TLS config for ServerCluster.TLS from PEM
// files: the node's certificate and key, presented both to nodes that
// dial it and to nodes it dials, and the CA that signs every node's
// certificate, required of peers and trusted for dialled nodes. A node's
// certificate must name the host its routes are dialled by (an IP SAN for
// nats-route://10.0.0.2:6222) and be usable for both server and client
// authentication.
func RouteTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, errors.New("route TLS: routes are mutual TLS and need the CA that signs every node's certificate")
	}
	c, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile, CaFile: caFile, Verify: true})
	if err != nil {
		return nil, fmt.Errorf("route TLS: %w", err)
	}
	// As nats-server does for a cluster block's tls: a node is server
	// and client at once.
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.RootCAs = c.ClientCAs
	return c, nil
}

// apply sets opts' cluster part from c; c is valid.
func (c ServerCluster) apply(opts *server.Options) error {
	if !c.Clustered() {
		return nil
	}
	host, port, err := splitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("cluster listen address %q: %w", c.Listen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts.Cluster.Name = c.Name
	if opts.Cluster.Name == "" {
		opts.Cluster.Name = DefaultClusterName
	}
	// nats-server dials a configured route again and again until it
	// answers: nodes start in any order.
	opts.Cluster.Host, opts.Cluster.Port = host, port
	for _, r := range c.Routes {
		u, err := ParseRoute(r)
		if err != nil {
			return err
		}
		opts.Routes = append(opts.Routes, u)
	}
	if c.TLS != nil {
		opts.Cluster.TLSConfig = c.TLS
		opts.Cluster.TLSTimeout = (2 * time.Second).Seconds()
	}
	return nil
}

// splitHostPort splits host:port and checks the port.
func splitHostPort(hostport string) (string, int, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("port %q is not a port number", port)
	}
	return host, p, nil
}

// loopbackHost reports whether host is a loopback address or localhost.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
