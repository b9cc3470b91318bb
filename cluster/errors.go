package cluster

import "errors"

// Errors of the identity lookup.
var (
	// ErrFenced: this member fenced itself (its membership lease ended);
	// it activates nothing and routes nothing.
	ErrFenced = errors.New("cluster member is fenced: its membership lease ended")
	// ErrMemberLeft: the member a request went to left the topology
	// before it answered.
	ErrMemberLeft = errors.New("the member left the cluster")
	// ErrNoMember: no live member hosts the kind.
	ErrNoMember = errors.New("no live member hosts the kind")
)

// Errors of the Kubernetes membership (MembershipK8s).
var (
	// ErrK8sNotBuilt: this binary was built without the Kubernetes
	// provider (it links client-go only with the build tag k8s).
	ErrK8sNotBuilt = errors.New("the Kubernetes membership provider is not in this binary: build it with the tag k8s (go build -tags k8s ./cmd/cairn, or make build-k8s)")
	// ErrNotInPod: the Kubernetes provider found no in-cluster
	// configuration (the service account and KUBERNETES_SERVICE_HOST and
	// _PORT that Kubernetes gives a pod): it runs in a pod only.
	ErrNotInPod = errors.New("the Kubernetes membership provider runs in a pod only: no in-cluster configuration")
)
