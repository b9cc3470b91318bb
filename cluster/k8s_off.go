//go:build !k8s

package cluster

import "github.com/asynkron/protoactor-go/cluster"

// K8sBuilt reports whether this binary has the Kubernetes membership
// provider (build tag k8s).
const K8sBuilt = false

// K8sInCluster returns ErrK8sNotBuilt: this binary has no Kubernetes
// provider (see k8s.go, built with the tag k8s).
func K8sInCluster() error { return ErrK8sNotBuilt }

func newK8sProvider() (cluster.ClusterProvider, error) { return nil, ErrK8sNotBuilt }
