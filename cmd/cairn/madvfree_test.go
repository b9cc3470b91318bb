package main

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/internal/testbin"
)

// TestServeRunsWithMadvFree: the cairn binary re-executes serve with
// madvdontneed=0 added to GODEBUG (same PID, the settings already there
// kept), and leaves a GODEBUG that already sets madvdontneed alone.
func TestServeRunsWithMadvFree(t *testing.T) {
	bin := testbin.Cairn(t)
	for _, c := range []struct{ env, want string }{
		{"", "GODEBUG=madvdontneed=0"},
		{"gctrace=0", "GODEBUG=gctrace=0,madvdontneed=0"},
		{"madvdontneed=1", "GODEBUG=madvdontneed=1"},
	} {
		t.Setenv("GODEBUG", c.env)
		srv := startServe(t, bin, t.TempDir())
		environ, err := os.ReadFile("/proc/" + strconv.Itoa(srv.cmd.Process.Pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, kv := range strings.Split(string(environ), "\x00") {
			if strings.HasPrefix(kv, "GODEBUG=") {
				got = append(got, kv)
			}
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("GODEBUG=%q: serve runs with %q, want [%s]", c.env, got, c.want)
		}
		if err := srv.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		srv.wait(t)
	}
}
