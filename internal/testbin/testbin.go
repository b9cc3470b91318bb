// Package testbin gives tests that run the cairn binary as a child
// process what they share: the binary, built once per test binary, and
// free loopback addresses.
package testbin

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var bin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Cairn builds ./cmd/cairn with the go command on PATH, once per test
// binary, and returns its path. The environment (CGO_ENABLED included) is
// the test's own, so that the build reuses the packages the test binary
// was built from. Call Remove from TestMain after the tests.
func Cairn(tb testing.TB) string {
	tb.Helper()
	bin.once.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			bin.err = fmt.Errorf("the go command is needed to build cairn: %w", err)
			return
		}
		if bin.dir, err = os.MkdirTemp("", "cairn-bin"); err != nil {
			bin.err = err
			return
		}
		bin.path = filepath.Join(bin.dir, "cairn")
		build := exec.Command(goCmd, "build", "-o", bin.path, "github.com/cairn-graph/cairn/cmd/cairn")
		if out, err := build.CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("go build ./cmd/cairn: %w\n%s", err, out)
		}
	})
	if bin.err != nil {
		tb.Fatal(bin.err)
	}
	return bin.path
}

// Remove deletes the binary Cairn built, if it did.
func Remove() {
	if bin.dir != "" {
		_ = os.RemoveAll(bin.dir)
	}
}

// FreeAddr returns 127.0.0.1:port with a port that was free a moment ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Get GETs url and returns the status code and the body, failing tb when
// the request or the read fails.
func Get(tb testing.TB, url string) (int, string) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}
