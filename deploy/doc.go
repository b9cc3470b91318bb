// Package deploy holds what runs Cairn in containers, and no Go API:
// Dockerfile builds the image (a static cairn binary, non-root), k8s/
// holds the Kubernetes manifests of a 3-member cluster, prometheus/ the
// alert and recording rules with their promtool unit tests, and grafana/
// a dashboard. README.md says how to use them.
//
// No Docker engine or Kubernetes runs where the tests do, so the tests
// check what can be checked without them: the Dockerfile's stages, user,
// build flags and build context; every manifest decoded strictly into the
// Kubernetes API types (k8s.io/api), so that a misspelt field fails; and
// the references between the pieces (Service selectors and pod labels,
// named ports, volumes and mounts, Secrets and the files the commands
// read, probes, security contexts, resources, the NATS routes). The
// cairn serve flags the manifests use are checked against serve's own flag
// set by a test in cmd/cairn. The monitoring files are checked against
// the real thing: promtool runs the rules' unit tests, the metrics the
// dashboard and rules name are looked up on a running cairn serve's
// /metrics, and a real Prometheus scrapes one (these need Debian's
// prometheus package, and fail without it when CI is set).
package deploy
