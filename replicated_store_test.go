package cairn_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/aggregate"
	cairncluster "github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/enginetest"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/retry"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// ackLog is what the writers were told: each acknowledged command id and
// when.
type ackLog struct {
	mu   sync.Mutex
	acks []ack
}

type ack struct {
	graph, id string
	at        time.Time
}

func (l *ackLog) add(graph, id string) {
	l.mu.Lock()
	l.acks = append(l.acks, ack{graph: graph, id: id, at: time.Now()})
	l.mu.Unlock()
}

func (l *ackLog) snapshot() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ack(nil), l.acks...)
}

// countSince returns, per graph, the acks at or after t.
func (l *ackLog) countSince(t time.Time) map[string]int {
	n := map[string]int{}
	for _, a := range l.snapshot() {
		if !a.at.Before(t) {
			n[a.graph]++
		}
	}
	return n
}

// The event stream, the object store and its index bucket have 3 replicas
// on a 3-node NATS cluster (fsync always); the stream leader's node is
// shut down gracefully (it hands its Raft leadership over) under a steady
// write load on 3 graphs; writes resume on the two left, and no
// acknowledged command is lost or applied twice: each is in the stream
// exactly once and in the read model.
func TestReplicatedStoreLeaderStop(t *testing.T) {
	c := natstest.StartCluster(t, 3, persistence.ServerConfig{SyncAlways: true})
	gap := runLeaderFailover(t, c, c.Stop)
	t.Logf("graceful stop of the stream leader: the longest pause in a graph's writes after it was %s", gap.Round(time.Millisecond))
}

// As TestReplicatedStoreLeaderStop, but the leader's process is killed
// with SIGKILL: no hand-over, no flush; the other two notice it is gone
// and elect a new leader.
func TestReplicatedStoreLeaderKill(t *testing.T) {
	c := natstest.StartCluster(t, 3, persistence.ServerConfig{SyncAlways: true}, natstest.AsProcesses())
	gap := runLeaderFailover(t, c, c.Kill)
	t.Logf("kill -9 of the stream leader: the longest pause in a graph's writes after it was %s", gap.Round(time.Millisecond))
}

// runLeaderFailover writes to an engine on c until every graph has acks,
// takes the event stream's leader down with down, writes on until every
// graph has as many again, and checks the stream and the read model
// against the acks. It returns the longest pause in a graph's
// acknowledgements after the failure.
func runLeaderFailover(t *testing.T, c *natstest.Cluster, down func(int)) time.Duration {
	ctx := context.Background()
	cfg := cairn.DefaultConfig("")
	cfg.NATSURL = c.URLs()
	// A client whose node went down tries the next one after 50 ms, not
	// nats.go's default 2 s.
	cfg.NATSOptions = []nats.Option{nats.ReconnectWait(50 * time.Millisecond)}
	cfg.Store.Replicas, cfg.Snapshots.Replicas = 3, 3
	cfg.Projections.Shards = 1
	// Snapshots are written all along, so that some are in flight when
	// the leader goes.
	cfg.Projections.SnapshotEvery, cfg.Grain.SnapshotEvery = 5, 5
	cfg.Projections.SnapshotSpacing, cfg.Grain.SnapshotSpacing = 0, 0
	// A snapshot write whose acknowledgements went down with the leader
	// gives up after 5 s and is taken again.
	cfg.Snapshots.OpTimeout = 5 * time.Second
	eng := enginetest.OpenConfig(t, cfg)

	js, err := jetstream.New(c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []string{cfg.Store.Stream, "OBJ_" + cfg.Snapshots.Bucket, "KV_" + persistence.SnapshotIndexBucket(cfg.Snapshots.Bucket)} {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", stream, r)
		}
	}

	graphs := []string{"g0", "g1", "g2"}
	const perPhase = 8
	var log ackLog
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, len(graphs))
	for _, g := range graphs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := write(wctx, eng, g, &log); err != nil {
				errs <- fmt.Errorf("graph %s: %w", g, err)
			}
		}()
	}
	defer func() {
		stop()
		wg.Wait()
	}()
	waitAcks := func(since time.Time, what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			n := log.countSince(since)
			done := true
			for _, g := range graphs {
				done = done && n[g] >= perPhase
			}
			if done {
				return
			}
			select {
			case err := <-errs:
				t.Fatal(err)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: acks per graph %v after 60s, want %d each", what, n, perPhase)
			}
		}
	}
	waitAcks(time.Time{}, "before the failure")
	leader := c.Leader(cfg.Store.Stream)
	downAt := time.Now()
	down(leader)
	t.Logf("took %s (the event stream's leader) down in %s", c.Nodes()[leader].Name, time.Since(downAt).Round(time.Millisecond))
	waitAcks(downAt, "after the failure")
	stop()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	acks := log.snapshot()
	// The pause: on each graph, the longest wait between two
	// acknowledgements of which the second came after the failure (an
	// acknowledgement in transit when the leader went does not hide the
	// pause after it); the longest over the graphs.
	var gap time.Duration
	for _, g := range graphs {
		var prev time.Time
		for _, a := range acks { // in the order they came
			if a.graph != g {
				continue
			}
			if a.at.After(downAt) && !prev.IsZero() {
				from := prev
				if from.Before(downAt) {
					from = downAt
				}
				gap = max(gap, a.at.Sub(from))
			}
			prev = a.at
		}
	}
	checkAcked(t, eng, js, cfg.Store.Stream, graphs, acks)
	return gap
}

// write sends add-node commands to graph until ctx ends, each retried with
// its command id until it is acknowledged or refused for good, and logs
// the acknowledged ones.
func write(ctx context.Context, eng *cairn.Engine, graph string, log *ackLog) error {
	if err := send(ctx, eng, env(graph, graph+"-create", cmdCreate())); err != nil {
		return err
	}
	log.add(graph, graph+"-create")
	for k := 0; ; k++ {
		id := fmt.Sprintf("%s-c%d", graph, k)
		err := send(ctx, eng, env(graph, id, cmdAdd(fmt.Sprintf("n%d", k), nil)))
		if ctx.Err() != nil {
			return nil // unknown outcome: not acknowledged
		}
		if err != nil {
			return fmt.Errorf("command %s: %w", id, err)
		}
		log.add(graph, id)
	}
}

// send executes e until it is acknowledged, refused for good or ctx ends.
func send(ctx context.Context, eng *cairn.Engine, e *cairnv1.CommandEnvelope) error {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		rep, err := eng.Execute(cctx, e)
		cancel()
		if err == nil {
			return nil
		}
		if rep.GetError() == nil || !retry.Retryable(rep.GetError().GetCode()) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return ctx.Err()
}

// checkAcked checks that every acknowledged command is in the stream once
// (read whole by a consumer, which the stream's leader serves) and in the
// read model, and that no command is in the stream twice.
func checkAcked(t *testing.T, eng *cairn.Engine, js jetstream.JetStream, stream string, graphs []string, acks []ack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stored, last := streamCommands(ctx, t, js, stream)
	for id, n := range stored {
		if n > 1 {
			t.Errorf("command %s applied %d times", id, n)
		}
	}
	// The read model catches up after the failover (its stream reader
	// re-creates its consumer once the stream has a leader again): wait
	// for each graph's last write to be applied, within a minute.
	caught := time.Now()
	for _, g := range graphs {
		for {
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := eng.Query(qctx, &cairnv1.QueryRequest{GraphId: g, MinSeq: last[g],
				Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "n0"}}})
			qcancel()
			if err == nil {
				break
			}
			if !errors.Is(err, aggregate.ErrDeadlineExceeded) && !errors.Is(err, aggregate.ErrUnavailable) || time.Since(caught) > time.Minute {
				t.Fatalf("graph %s: the read model did not reach seq %d: %v", g, last[g], err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	t.Logf("the read model had every acknowledged write %s after the writers stopped", time.Since(caught).Round(time.Millisecond))
	lost := 0
	for _, a := range acks {
		if stored[a.id] != 1 {
			lost++
			t.Errorf("acknowledged command %s is not in the stream", a.id)
			continue
		}
		if a.id == a.graph+"-create" {
			continue
		}
		node := "n" + a.id[strings.LastIndex(a.id, "-c")+2:]
		if _, err := eng.Query(ctx, getNode(a.graph, node, last[a.graph])); err != nil {
			lost++
			t.Errorf("acknowledged command %s: node %s not in the read model: %v", a.id, node, err)
		}
	}
	t.Logf("%d commands acknowledged, %d stored, %d lost", len(acks), len(stored), lost)
}

// streamCommands reads the whole stream with an ordered consumer and
// counts each command id; it returns the counts and each graph's last
// sequence.
func streamCommands(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) (map[string]int, map[string]uint64) {
	t.Helper()
	// Right after a failover the stream may still be electing, and a
	// request no one answers waits its whole deadline: ask with short ones.
	var info *jetstream.StreamInfo
	for {
		ictx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := js.Stream(ictx, stream)
		if err == nil {
			info, err = st.Info(ictx)
		}
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
	}
	stored, last := map[string]int{}, map[string]uint64{}
	if info.State.LastSeq == 0 {
		return stored, last
	}
	// A consumer is created through the JetStream meta leader, which may
	// be electing too: a create sent to the one that died is never
	// answered, so ask with short requests until one is.
	var cons jetstream.Consumer
	for {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var err error
		cons, err = js.OrderedConsumer(cctx, stream, jetstream.OrderedConsumerConfig{})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("consumer on %s: %v", stream, err)
		}
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatalf("read %s: %v", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		var tx cairnv1.Transaction
		if err := proto.Unmarshal(m.Data(), &tx); err != nil {
			t.Fatalf("seq %d: %v", md.Sequence.Stream, err)
		}
		for _, cr := range tx.GetCommands() {
			stored[cr.GetCommandId()]++
		}
		last[tx.GetGraphId()] = md.Sequence.Stream
		if md.Sequence.Stream >= info.State.LastSeq {
			return stored, last
		}
	}
}

// An engine whose embedded server is one node of a 3-node NATS cluster
// creates its stream and buckets with 3 replicas, and writes.
func TestReplicatedStoreEmbeddedNode(t *testing.T) {
	c := natstest.StartCluster(t, 2, persistence.ServerConfig{SyncAlways: true})
	var routes []string
	for _, n := range c.Nodes() {
		routes = append(routes, n.ClusterURL)
	}
	cfg := cairn.DefaultConfig(t.TempDir())
	cfg.NATSListen = "127.0.0.1:0"
	cfg.SyncAlways = true
	cfg.NATSName = "engine"
	cfg.NATSCluster = persistence.ServerCluster{Listen: "127.0.0.1:0", Routes: routes}
	cfg.Store.Replicas, cfg.Snapshots.Replicas = 3, 3
	cfg.Projections.Shards = 1
	eng := enginetest.OpenConfig(t, cfg)
	ctx := context.Background()
	for i, e := range []*cairnv1.CommandEnvelope{env("g", "c0", cmdCreate()), env("g", "c1", cmdAdd("a", nil))} {
		if _, err := eng.Execute(ctx, e); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	js, err := jetstream.New(c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []string{cfg.Store.Stream, "OBJ_" + cfg.Snapshots.Bucket, "KV_" + persistence.SnapshotIndexBucket(cfg.Snapshots.Bucket)} {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		peers := []string{info.Cluster.Leader}
		for _, p := range info.Cluster.Replicas {
			peers = append(peers, p.Name)
		}
		sort.Strings(peers)
		if info.Config.Replicas != 3 || strings.Join(peers, ",") != "engine,n0,n1" {
			t.Errorf("stream %s: %d replicas on %v, want 3 on engine, n0 and n1", stream, info.Config.Replicas, peers)
		}
	}
}

// More replicas than a single server can hold are refused: by Validate
// for the embedded server, and at Open, at once and by name, for an
// external NATS that is not clustered.
func TestReplicatedStoreNeedsCluster(t *testing.T) {
	cfg := cairn.DefaultConfig(t.TempDir())
	cfg.NATSListen = persistence.ListenNone
	cfg.Store.Replicas, cfg.Snapshots.Replicas = 3, 3
	if _, err := cairn.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "3 replicas need a NATS cluster") {
		t.Errorf("embedded single server, 3 replicas: err = %v, want one saying they need a NATS cluster", err)
	}

	srv := natstest.Start(t)
	cfg = cairn.DefaultConfig("")
	cfg.NATSURL = srv.ClientURL()
	cfg.Store.Replicas, cfg.Snapshots.Replicas = 3, 3
	start := time.Now()
	_, err := cairn.Open(context.Background(), cfg)
	if !errors.Is(err, persistence.ErrNotClustered) || !strings.Contains(err.Error(), "3 replicas asked for") {
		t.Errorf("external single server, 3 replicas: err = %v, want ErrNotClustered naming the replicas", err)
	}
	if d := time.Since(start); d > cfg.JetStreamWait/2 {
		t.Errorf("the refusal took %s: it waited instead of failing at once", d)
	}
}

// Validate refuses cluster settings that cannot work, each by name.
func TestConfigNATSCluster(t *testing.T) {
	loop := persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6224"}}
	for _, tc := range []struct {
		name string
		tune func(*cairn.Config)
		want string // "" for valid
	}{
		{"single server", func(c *cairn.Config) {}, ""},
		{"loopback cluster R3", func(c *cairn.Config) {
			c.NATSName, c.NATSCluster = "a", loop
			c.Store.Replicas, c.Snapshots.Replicas = 3, 3
		}, ""},
		{"own route listed too", func(c *cairn.Config) {
			c.NATSName, c.NATSCluster = "a", loop
			c.NATSCluster.Routes = append(c.NATSCluster.Routes, "nats-route://127.0.0.1:6222")
			c.Store.Replicas, c.Snapshots.Replicas = 3, 3
		}, ""},
		{"replicas without a cluster", func(c *cairn.Config) { c.Store.Replicas = 3 }, "event stream: 3 replicas need a NATS cluster"},
		{"bucket replicas without a cluster", func(c *cairn.Config) { c.Snapshots.Replicas = 3 }, "object store: 3 replicas need a NATS cluster"},
		{"more replicas than nodes", func(c *cairn.Config) {
			c.NATSName = "a"
			c.NATSCluster = persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.1:6223"}}
			c.Store.Replicas = 3
		}, "3 replicas need 3 NATS nodes, and this node knows of 2"},
		{"routes without a listen", func(c *cairn.Config) {
			c.NATSCluster = persistence.ServerCluster{Routes: loop.Routes}
		}, "cluster routes without a cluster listen address"},
		{"no name", func(c *cairn.Config) { c.NATSCluster = loop }, "this node needs a name of its own"},
		{"bad route", func(c *cairn.Config) {
			c.NATSName, c.NATSCluster = "a", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"http://127.0.0.1:6223"}}
		}, `route "http://127.0.0.1:6223": want nats-route://host:port`},
		{"route without a port", func(c *cairn.Config) {
			c.NATSName, c.NATSCluster = "a", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://10.0.0.2"}}
		}, "missing port"},
		{"listen beyond loopback without TLS", func(c *cairn.Config) {
			c.NATSName, c.NATSCluster = "a", persistence.ServerCluster{Listen: "0.0.0.0:6222"}
		}, "cluster routes reach beyond this machine (0.0.0.0:6222)"},
		{"route beyond loopback without TLS", func(c *cairn.Config) {
			c.NATSName, c.NATSCluster = "a", persistence.ServerCluster{Listen: "127.0.0.1:6222", Routes: []string{"nats-route://nats-2:6222"}}
		}, "routes there need mutual TLS"},
		{"external NATS with cluster settings", func(c *cairn.Config) {
			c.NATSURL, c.NATSName, c.NATSCluster = "nats://127.0.0.1:4222", "a", loop
		}, "an external NATS (NATSURL) is clustered on its own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cairn.DefaultConfig(t.TempDir())
			tc.tune(&cfg)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// BenchmarkLeaderFailover measures how long appends to a 3-replica event
// stream (3-node cluster, fsync always) pause when the stream leader's
// node goes: one writer appends with Store.Append, each try bounded by
// 250 ms and retried with the same transaction id and expected sequence
// (a try that was stored after all is found, not doubled); resume-ms is
// the time from the failure to the first append acknowledged after it.
// Each iteration starts a fresh cluster; the metric is the median.
//
//	go test -run '^$' -bench LeaderFailover -benchtime 5x .
func BenchmarkLeaderFailover(b *testing.B) {
	for _, mode := range []string{"stop", "kill"} {
		b.Run(mode, func(b *testing.B) {
			var resumes []time.Duration
			for range b.N {
				var opts []natstest.ClusterOption
				if mode == "kill" {
					opts = append(opts, natstest.AsProcesses())
				}
				resumes = append(resumes, appendResume(b, mode, opts))
			}
			sort.Slice(resumes, func(i, j int) bool { return resumes[i] < resumes[j] })
			b.ReportMetric(float64(resumes[len(resumes)/2].Microseconds())/1000, "resume-ms")
			b.ReportMetric(float64(resumes[len(resumes)-1].Microseconds())/1000, "max-resume-ms")
			b.Logf("%s: resume times %v", mode, resumes)
		})
	}
}

// appendResume runs one failover of BenchmarkLeaderFailover's.
func appendResume(b *testing.B, mode string, opts []natstest.ClusterOption) time.Duration {
	b.StopTimer()
	c := natstest.StartCluster(b, 3, persistence.ServerConfig{SyncAlways: true}, opts...)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cfg := persistence.DefaultStoreConfig()
	cfg.Replicas = 3
	st, err := persistence.OpenStore(ctx, js, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var last uint64
	appendOne := func(i int) time.Time {
		tx := &cairnv1.Transaction{GraphId: "bench", TxId: fmt.Sprintf("tx-%d", i)}
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			actx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
			seq, err := st.Append(actx, "bench", last, tx)
			cancel()
			if err == nil {
				last = seq
				return time.Now()
			}
			if !errors.Is(err, persistence.ErrUnavailable) {
				b.Fatalf("append %d: %v", i, err)
			}
		}
		b.Fatalf("append %d: not acknowledged within 60s", i)
		return time.Time{}
	}
	i := 0
	for ; i < 50; i++ {
		appendOne(i)
	}
	leader := c.Leader(cfg.Stream)
	b.StartTimer()
	down := time.Now()
	if mode == "kill" {
		c.Kill(leader)
	} else {
		c.Stop(leader)
	}
	resumed := appendOne(i).Sub(down)
	b.StopTimer()
	return resumed
}

// An engine whose embedded node leads the JetStream meta group (forced
// here: a test cannot choose the meta leader) moves the event stream's
// leader off its node: while the meta group elects, leader reads answer
// 503 everywhere, so one node's death must not cost both elections.
func TestStreamLeaderKeptOffMetaLeader(t *testing.T) {
	c := natstest.StartCluster(t, 2, persistence.ServerConfig{})
	var routes []string
	for _, n := range c.Nodes() {
		routes = append(routes, n.ClusterURL)
	}
	cfg := cairn.DefaultConfig(t.TempDir())
	cfg.NATSListen = "127.0.0.1:0"
	cfg.NATSName = "engine"
	cfg.NATSCluster = persistence.ServerCluster{Listen: "127.0.0.1:0", Routes: routes}
	cfg.Store.Replicas, cfg.Snapshots.Replicas = 3, 3
	cfg.Cluster.Name, cfg.Cluster.Membership = "apart", cairncluster.MembershipNATSKV
	cfg.Cluster.KV.Replicas = 3
	cfg.Projections.Shards = 1
	eng := enginetest.OpenConfig(t, cfg)
	nc := c.Conn()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader := func() string {
		ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
		defer icancel()
		st, err := js.Stream(ictx, cfg.Store.Stream)
		if err != nil || st.CachedInfo().Cluster == nil {
			return ""
		}
		return st.CachedInfo().Cluster.Leader
	}
	// The stream's leader on the engine's node, before the engine is told
	// it leads the meta group.
	for deadline := time.Now().Add(60 * time.Second); leader() != "engine"; {
		if time.Now().After(deadline) {
			t.Fatalf("could not put the event stream's leader on the engine's node (it is on %q)", leader())
		}
		req := []byte(`{"placement":{"preferred":"engine"}}`)
		if _, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+cfg.Store.Stream, req); err != nil {
			t.Logf("step down: %v", err)
		}
		time.Sleep(500 * time.Millisecond) // the election (polling, bounded by deadline)
	}
	cairn.ForceMetaLeader(eng)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if l := leader(); l != "" && l != "engine" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the event stream's leader is still %q, the meta leader's node, after 30 s", leader())
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
	// Writes go on.
	for i, e := range []*cairnv1.CommandEnvelope{env("g", "c0", cmdCreate()), env("g", "c1", cmdAdd("a", nil))} {
		if _, err := eng.Execute(ctx, e); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
}
