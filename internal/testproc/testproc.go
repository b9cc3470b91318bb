// Package testproc starts children of the running test binary, for tests
// whose parts must live in processes of their own: to be killed with
// SIGKILL or paused with SIGSTOP, or because a library keeps process-wide
// state (protoactor sets gRPC's global logger for every member it starts).
package testproc

import (
	"bufio"
	"encoding/json"
	"fmt"
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

// Call writes one line, format and args, to a child's stdin and decodes
// its one JSON answer from out into an R; name says which child in a
// failure.
func Call[R any](t testing.TB, name string, in io.Writer, out *json.Decoder, format string, args ...any) R {
	t.Helper()
	if _, err := fmt.Fprintf(in, format+"\n", args...); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var r R
	if err := out.Decode(&r); err != nil {
		t.Fatalf("%s: no answer to %q: %v", name, fmt.Sprintf(format, args...), err)
	}
	return r
}

// ServeIfChild is for a TestMain: when the environment holds key (as Start
// sets it), this process is a child, and it runs serve with key's value,
// its stdin and its stdout, then exits (1 when serve failed, saying so
// with what on stderr). Otherwise it returns.
func ServeIfChild(key, what string, serve func(value string, in io.Reader, out io.Writer) error) {
	v := os.Getenv(key)
	if v == "" {
		return
	}
	if err := serve(v, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}
