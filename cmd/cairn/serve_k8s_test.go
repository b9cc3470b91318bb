//go:build k8s

package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// Out of a pod, serve --cluster-provider k8s fails at once, naming the
// in-cluster configuration it lacks.
func TestServeK8sProviderOutOfPod(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	err := run(context.Background(), []string{"serve", "--data", t.TempDir(), "--nats-listen", "none", "--cluster", "c", "--cluster-provider", "k8s"}, io.Discard, io.Discard)
	if err == nil || exitCode(err) == exitUsage || !strings.Contains(err.Error(), "runs in a pod only") || !strings.Contains(err.Error(), "KUBERNETES_SERVICE_HOST") {
		t.Fatalf("serve --cluster-provider k8s out of a pod: exit %d, %v; want a failure naming the missing in-cluster configuration", exitCode(err), err)
	}
}
