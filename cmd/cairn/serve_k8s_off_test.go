//go:build !k8s

package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// The default binary has no Kubernetes provider: --cluster-provider k8s
// is a usage error that says how to build one that has it.
func TestServeK8sProviderNotBuilt(t *testing.T) {
	err := run(context.Background(), []string{"serve", "--data", t.TempDir(), "--cluster", "c", "--cluster-provider", "k8s"}, io.Discard, io.Discard)
	if exitCode(err) != exitUsage || err == nil || !strings.Contains(err.Error(), "-tags k8s") {
		t.Fatalf("serve --cluster-provider k8s: exit %d, %v; want a usage error saying to build with -tags k8s", exitCode(err), err)
	}
}
