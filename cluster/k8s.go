//go:build k8s

package cluster

import (
	"fmt"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/k8s"
	"k8s.io/client-go/rest"
)

// K8sBuilt reports whether this binary has the Kubernetes membership
// provider (build tag k8s).
const K8sBuilt = true

// K8sInCluster returns nil when the Kubernetes provider can start here:
// it is built in, and the process runs in a pod (the in-cluster
// configuration: KUBERNETES_SERVICE_HOST and _PORT and the service
// account's token). Otherwise an error matching ErrNotInPod, which names
// what is missing, or ErrK8sNotBuilt.
func K8sInCluster() error {
	_, err := inClusterConfig()
	return err
}

func inClusterConfig() (*rest.Config, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInPod, err)
	}
	return cfg, nil
}

// newK8sProvider returns protoactor's Kubernetes provider: members are
// the running, ready pods labelled with the cluster's name, which each
// member puts on its own pod (it needs get, list, watch and patch on
// pods in its namespace).
func newK8sProvider() (cluster.ClusterProvider, error) {
	cfg, err := inClusterConfig()
	if err != nil {
		return nil, err
	}
	p, err := k8s.NewWithConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes membership: %w", err)
	}
	return p, nil
}
