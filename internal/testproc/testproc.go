// Package testproc starts children of the running test binary, for tests
// whose parts must live in processes of their own: to be killed with
// SIGKILL or paused with SIGSTOP, or because a library keeps process-wide
// state (protoactor sets gRPC's global logger for every member it starts).
package testproc

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"
)

// Start runs this test binary again, running no test, with env
// ("KEY=VALUE") added to its environment: the child's TestMain looks for
// it and serves instead of testing. The child's stderr is this process's.
// It returns the started command, the child's stdin, and a JSON decoder
// over its stdout.
func Start(t testing.TB, env string) (*exec.Cmd, io.WriteCloser, *json.Decoder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, in, json.NewDecoder(bufio.NewReader(out))
}
