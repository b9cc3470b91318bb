//go:build !k8s

package cluster_test

import (
	"errors"
	"testing"

	"github.com/cairn-graph/cairn/cluster"
)

// Without the tag k8s the Kubernetes provider is not built in: the
// config does not validate and K8sInCluster says how to build it.
func TestK8sNotBuilt(t *testing.T) {
	cfg := cluster.DefaultConfig()
	cfg.Membership = cluster.MembershipK8s
	if err := cfg.Validate(); !errors.Is(err, cluster.ErrK8sNotBuilt) {
		t.Errorf("Validate: %v, want ErrK8sNotBuilt", err)
	}
	if err := cluster.K8sInCluster(); !errors.Is(err, cluster.ErrK8sNotBuilt) {
		t.Errorf("K8sInCluster: %v, want ErrK8sNotBuilt", err)
	}
}
