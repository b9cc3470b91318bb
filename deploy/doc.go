// Package deploy holds what runs Cairn in containers, and no Go API:
// Dockerfile builds the image (a static cairn binary, non-root) and k8s/
// holds the Kubernetes manifests of a 3-member cluster. README.md says how
// to use them.
//
// No Docker engine or Kubernetes runs where the tests do, so the tests
// check what can be checked without them: the Dockerfile's stages, user,
// build flags and build context; every manifest decoded strictly into the
// Kubernetes API types (k8s.io/api), so that a misspelt field fails; and
// the references between the pieces (Service selectors and pod labels,
// named ports, volumes and mounts, Secrets and the files the commands
// read, probes, security contexts, resources, the NATS routes). The
// cairn serve flags the manifests use are checked against serve's own flag
// set by a test in cmd/cairn.
package deploy
