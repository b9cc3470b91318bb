package layout

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// TestNoFusedMultiplyAdd compiles the package for arm64, where Go fuses
// x*y + z into one instruction unless the product is converted explicitly,
// and fails if any fused multiply-add is left: a fused one rounds once
// instead of twice, and positions would differ between machines.
func TestNoFusedMultiplyAdd(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the package for arm64")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "build", "-gcflags=-S", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "GOARCH=arm64", "GOOS=linux", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build for arm64: %v\n%s", err, out)
	}
	fused := regexp.MustCompile(`(?m)^.*\b(FMADDD|FMSUBD|FNMADDD|FNMSUBD)\b.*$`)
	if m := fused.FindAll(out, 10); len(m) > 0 {
		for _, l := range m {
			t.Errorf("fused multiply-add: %s", l)
		}
	}
	if !regexp.MustCompile(`\bFMULD\b`).Match(out) {
		t.Fatal("no FMULD in the arm64 listing: the check looks at the wrong output")
	}
}
