package persistence_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/tlstest"
	"github.com/cairn-graph/cairn/persistence"
)

// Three nodes whose routes are mutual TLS (RouteTLS) form a cluster that
// places a stream with 3 replicas; the event store opens on it with 3
// replicas and takes appends.
func TestServerClusterTLS(t *testing.T) {
	pki := tlstest.New(t)
	routeTLS, err := persistence.RouteTLS(pki.ServerCert, pki.ServerKey, pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	c := natstest.StartCluster(t, 3, persistence.ServerConfig{Cluster: persistence.ServerCluster{Name: "tls", TLS: routeTLS}})
	js, err := jetstream.New(c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	cfg := persistence.DefaultStoreConfig()
	cfg.Replicas = 3
	st, err := persistence.OpenStore(ctx, js, cfg)
	if err != nil {
		t.Fatalf("OpenStore with 3 replicas: %v", err)
	}
	txs, _ := mustBuildChain(t, "g")
	mustAppend(t, ctx, st, "g", 0, txs[0])
	s, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || info.Cluster.Name != "tls" || len(info.Cluster.Replicas) != 2 {
		t.Errorf("stream cluster info %+v, want cluster tls with a leader and 2 replicas", info.Cluster)
	}
}

// A stream or bucket with more than one replica on a server that is not
// clustered is refused with ErrNotClustered, which names the problem.
func TestStoreReplicasNotClustered(t *testing.T) {
	srv := startServer(t, persistence.ServerConfig{DataDir: t.TempDir(), Listen: persistence.ListenNone})
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	cfg := persistence.DefaultStoreConfig()
	cfg.Replicas = 3
	_, err = persistence.OpenStore(ctx, js, cfg)
	if !errors.Is(err, persistence.ErrNotClustered) || !strings.Contains(err.Error(), "replicas > 1 need a clustered NATS") {
		t.Errorf("OpenStore with 3 replicas on one server: %v, want ErrNotClustered", err)
	}
	scfg := persistence.DefaultSnapshotConfig()
	scfg.Replicas = 3
	if _, err := persistence.OpenSnapshots(ctx, js, scfg); !errors.Is(err, persistence.ErrNotClustered) {
		t.Errorf("OpenSnapshots with 3 replicas on one server: %v, want ErrNotClustered", err)
	}
}

// A cluster node's settings are checked before anything starts.
func TestServerClusterValidate(t *testing.T) {
	pki := tlstest.New(t)
	mutual, err := persistence.RouteTLS(pki.ServerCert, pki.ServerKey, pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	oneWay := pki.Mutual(t, pki.ServerCert, pki.ServerKey)
	oneWay.ClientCAs = nil
	for _, tc := range []struct {
		name string
		c    persistence.ServerCluster
		want string // "" for valid
	}{
		{"none", persistence.ServerCluster{}, ""},
		{"loopback", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://localhost:6223"}}, ""},
		{"beyond loopback with TLS", persistence.ServerCluster{Listen: "0.0.0.0:6222", Routes: []string{"nats-route://10.0.0.2:6222"}, TLS: mutual}, ""},
		{"no routes", persistence.ServerCluster{Listen: "127.0.0.1:6222"}, "needs routes to the other nodes"},
		{"only itself", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.1:6222"}}, "needs routes to the other nodes"},
		{"routes without listen", persistence.ServerCluster{Routes: []string{"nats-route://127.0.0.1:6223"}}, "without a cluster listen address"},
		{"TLS without listen", persistence.ServerCluster{TLS: mutual}, "cluster TLS without a cluster listen address"},
		{"bad listen", persistence.ServerCluster{Listen: "127.0.0.1", Routes: []string{"nats-route://127.0.0.1:6223"}}, `cluster listen address "127.0.0.1"`},
		{"bad port", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.1:99999"}}, `port "99999" is not a port number`},
		{"user info", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://u:p@127.0.0.1:6223"}}, "routes authenticate with TLS"},
		{"path", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.1:6223/x"}}, "without a path or query"},
		{"scheme", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"tls://127.0.0.1:6223"}}, "want nats-route://host:port"},
		{"beyond loopback without TLS", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://nats-1:6222"}}, "routes there need mutual TLS"},
		{"TLS not mutual", persistence.ServerCluster{Listen: "0.0.0.0:6222", Routes: []string{"nats-route://10.0.0.2:6222"}, TLS: oneWay}, "cluster TLS must be mutual"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := persistence.RouteTLS(pki.ServerCert, pki.ServerKey, ""); err == nil || !strings.Contains(err.Error(), "need the CA") {
		t.Errorf("RouteTLS without a CA: %v, want an error asking for it", err)
	}
	if _, err := persistence.StartServer(persistence.ServerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		Cluster: persistence.ServerCluster{Listen: "127.0.0.1:0", Routes: []string{"nats-route://127.0.0.1:6223"}}}); err == nil || !strings.Contains(err.Error(), "server name of its own") {
		t.Errorf("StartServer of a cluster node without a name: %v, want a refusal", err)
	}
}

// ReplicasPossible counts the nodes a cluster node knows of.
func TestServerClusterReplicasPossible(t *testing.T) {
	three := persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.1:6222", "nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6224", "nats-route://127.0.0.1:6224"}}
	if n := three.NodesKnown(); n != 3 {
		t.Errorf("NodesKnown() = %d, want 3 (itself and duplicates not counted)", n)
	}
	for _, tc := range []struct {
		c        persistence.ServerCluster
		replicas int
		want     string
	}{
		{persistence.ServerCluster{}, 1, ""},
		{persistence.ServerCluster{}, 3, "3 replicas need a NATS cluster"},
		{three, 3, ""},
		{three, 5, "5 replicas need 5 NATS nodes, and this node knows of 3"},
	} {
		err := tc.c.ReplicasPossible(tc.replicas)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v.ReplicasPossible(%d) = %v, want %q", tc.c, tc.replicas, err, tc.want)
		}
	}
}

// A node stopped and restarted on its ports and files rejoins: the
// stream's replica on it catches up with what was appended meanwhile.
func TestServerClusterRestart(t *testing.T) {
	c := natstest.StartCluster(t, 3, persistence.ServerConfig{SyncAlways: true})
	js, err := jetstream.New(c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	cfg := persistence.DefaultStoreConfig()
	cfg.Replicas = 3
	st, err := persistence.OpenStore(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	txs, _ := mustBuildChain(t, "g")
	seq := mustAppend(t, ctx, st, "g", 0, txs[0])
	leader := c.Leader(cfg.Stream)
	c.Stop(leader)
	for _, tx := range txs[1:] {
		// The connection may have been on the node stopped, and the
		// stream electing: retry, with the same transaction.
		for {
			next, err := st.Append(ctx, "g", seq, tx)
			if err == nil {
				seq = next
				break
			}
			if !errors.Is(err, persistence.ErrUnavailable) || ctx.Err() != nil {
				t.Fatalf("append %s after %d: %v", tx.GetTxId(), seq, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	c.Restart(leader)
	name := c.Nodes()[leader].Name
	s, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range info.Cluster.Replicas {
			if p.Name == name && p.Current && !p.Offline {
				return
			}
		}
		if info.Cluster.Leader == name {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("restarted %s is not a current replica of %s: %+v", name, cfg.Stream, info.Cluster)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Store.LeaderElected closes when the event stream elects a leader (here
// its leader steps down), and gives a fresh channel for the next one.
func TestStoreLeaderElected(t *testing.T) {
	c := natstest.StartCluster(t, 3, persistence.ServerConfig{})
	nc := c.Conn()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	cfg := persistence.DefaultStoreConfig()
	cfg.Replicas = 3
	st, err := persistence.OpenStore(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	txs, _ := mustBuildChain(t, "g")
	mustAppend(t, ctx, st, "g", 0, txs[0]) // the store listens from its first append on
	elected := st.LeaderElected()
	old := c.Nodes()[c.Leader(cfg.Stream)].Name
	if _, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+cfg.Stream, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-elected:
	case <-time.After(30 * time.Second):
		t.Fatalf("no leader election seen within 30 s of %s stepping down", old)
	}
	select {
	case <-st.LeaderElected():
		t.Fatal("LeaderElected after the election is already closed, want the next election's channel")
	default:
	}
	// Leader names the node that leads now.
	names := map[string]bool{}
	for _, n := range c.Nodes() {
		names[n.Name] = true
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		l, err := st.Leader(ctx)
		if err == nil && names[l] {
			break
		}
		if err != nil && !errors.Is(err, persistence.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Leader = %q, %v; want one of the nodes", l, err)
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
}

// An append that finds no stream leader answering its subject is
// refused as ErrUnavailable and ErrNoLeader (a grain sends it again when
// a leader is elected).
func TestStoreAppendNoLeader(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	js := srv.JetStream()
	st, err := persistence.OpenStore(ctx, js, persistence.DefaultStoreConfig())
	if err != nil {
		t.Fatal(err)
	}
	txs, _ := mustBuildChain(t, "g")
	seq := mustAppend(t, ctx, st, "g", 0, txs[0])
	if err := js.DeleteStream(ctx, persistence.DefaultStoreConfig().Stream); err != nil {
		t.Fatal(err)
	}
	_, err = st.Append(ctx, "g", seq, txs[1])
	if !errors.Is(err, persistence.ErrNoLeader) || !errors.Is(err, persistence.ErrUnavailable) {
		t.Errorf("append with no stream to take it: %v, want ErrNoLeader and ErrUnavailable", err)
	}
	if l, err := st.Leader(ctx); !errors.Is(err, persistence.ErrTruncated) {
		t.Errorf("Leader of a deleted stream: %q, %v; want ErrTruncated", l, err)
	}
}
