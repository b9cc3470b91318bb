//go:build k8s

package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/cluster"
)

// Out of a pod the Kubernetes provider does not start: K8sInCluster and
// Start fail with ErrNotInPod, naming the in-cluster configuration that
// is missing.
func TestK8sOutOfPod(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	if !cluster.K8sBuilt {
		t.Fatal("K8sBuilt is false in a build with the tag k8s")
	}
	cfg := cluster.DefaultConfig()
	cfg.Membership = cluster.MembershipK8s
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for name, err := range map[string]error{"K8sInCluster": cluster.K8sInCluster(), "Start": startErr(cfg)} {
		if !errors.Is(err, cluster.ErrNotInPod) || !strings.Contains(err.Error(), "KUBERNETES_SERVICE_HOST") {
			t.Errorf("%s out of a pod: %v, want ErrNotInPod naming KUBERNETES_SERVICE_HOST", name, err)
		}
	}
}

func startErr(cfg cluster.Config) error {
	m, err := cluster.Start(cfg)
	if err == nil {
		_ = m.Close(context.Background())
	}
	return err
}
