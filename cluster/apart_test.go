package cluster_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/persistence"
)

// On a 3-node NATS cluster, a member whose KVConfig.ApartFrom names a
// stream moves the membership bucket's leader off that stream's leader
// when the two meet (here they are made to: the bucket's leader is asked
// to step down in favour of the stream's), so that one node's death never
// costs both elections at once.
func TestKVBucketLeaderKeptApart(t *testing.T) {
	c := natstest.StartCluster(t, 3, persistence.ServerConfig{})
	nc := c.Conn()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "apart", Subjects: []string{"apart.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	cfg := testKVConfig(js)
	cfg.KV.Replicas = 3
	cfg.KV.ApartFrom = []string{"apart"}
	m, err := cluster.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	bucket := "KV_" + cluster.BucketName(cfg.Name)
	leaderOf := func(stream string) string {
		ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
		defer icancel()
		s, err := js.Stream(ictx, stream)
		if err != nil || s.CachedInfo().Cluster == nil {
			return ""
		}
		return s.CachedInfo().Cluster.Leader
	}
	// Put the bucket's leader on the stream's leader's node.
	met := false
	for deadline := time.Now().Add(30 * time.Second); !met && time.Now().Before(deadline); {
		target := leaderOf("apart")
		if target == "" || leaderOf(bucket) == "" {
			time.Sleep(50 * time.Millisecond) // no leader yet (polling, bounded by deadline)
			continue
		}
		if leaderOf(bucket) == target {
			met = true
			break
		}
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": target}})
		if _, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+bucket, req); err != nil {
			t.Logf("step down: %v", err)
		}
		for wait := time.Now().Add(2 * time.Second); time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
			if l := leaderOf(bucket); l != "" {
				met = l == target
				break
			}
		}
	}
	if !met {
		t.Fatal("could not put the bucket's leader on the stream's leader's node")
	}
	// The member moves it off again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, s := leaderOf(bucket), leaderOf("apart")
		if b != "" && s != "" && b != s {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bucket's leader %s still shares its node with the stream's %s after 30 s", b, s)
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
}
