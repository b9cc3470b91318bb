package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/testbin"
)

// readyLine is serve's ready line with --json.
type readyLine struct {
	NATS    string `json:"nats"`
	Data    string `json:"data"`
	Metrics string `json:"metrics"`
}

// readLine reads one line from r, failing t after timeout or when exited is
// closed first.
func readLine(t testing.TB, r io.Reader, exited <-chan struct{}) string {
	t.Helper()
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(r).ReadString('\n')
		lines <- l
	}()
	select {
	case l := <-lines:
		if l == "" {
			t.Fatal("serve printed no ready line")
		}
		return l
	case <-exited:
		t.Fatal("serve exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("serve printed no ready line within 30s")
	}
	return ""
}

// lockedBuffer collects a writer's output across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveInProcess runs "cairn serve args..." in-process; it returns the ready
// line and a stop function that cancels serve and returns run's error.
func serveInProcess(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), pw, &stderr)
		pw.Close()
		done <- err
		close(exited)
	}()
	line := readLine(t, pr, exited)
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = fmt.Errorf("serve did not stop within 30s; stderr:\n%s", stderr.String())
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return line, stop
}

// TestServeSample runs serve in-process with --sample, reads the sample
// graph's log, and checks that a restart with --sample adds nothing.
func TestServeSample(t *testing.T) {
	dir := t.TempDir()
	line, stop := serveInProcess(t, "--data", dir, "--nats-listen", "127.0.0.1:0", "--sample", "--json", "--log-level", "warn")
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil || !strings.HasPrefix(ready.NATS, "nats://127.0.0.1:") || ready.Data != dir {
		t.Fatalf("ready line %q (%v), want nats on 127.0.0.1 and data %s", line, err, dir)
	}
	golden(t, "sample.golden", mask(mustRun(t, "log", "sample", "--server", ready.NATS)))
	// The chain line: the snapshots listed after it depend on when the
	// engine took them (on stopping, at least).
	want, _, _ := strings.Cut(mask(mustRun(t, "verify", "sample", "--server", ready.NATS)), "\n")
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	line, stop = serveInProcess(t, "--data", dir, "--nats-listen", "127.0.0.1:0", "--sample", "--log-level", "warn")
	url, ok := strings.CutPrefix(strings.TrimSuffix(line, " data="+dir+"\n"), "cairn ready: nats=")
	if !ok || !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ready line %q, want cairn ready: nats=nats://127.0.0.1:PORT data=%s", line, dir)
	}
	got, snaps, _ := strings.Cut(mask(mustRun(t, "verify", "sample", "--server", url)), "\n")
	if got != want {
		t.Errorf("after a restart with --sample: %s, want %s", got, want)
	}
	// serve signs by default; verify exits 1 on a bad snapshot: every one
	// listed is good.
	sigs, snaps, _ := strings.Cut(snaps, "\n")
	if !strings.HasPrefix(sigs, "signatures: 4 of 4 transactions signed by N") {
		t.Errorf("after a restart: %s, want every transaction signed", sigs)
	}
	for _, l := range strings.Split(strings.TrimSpace(snaps), "\n") {
		if l != "" && !strings.HasSuffix(l, ": ok") {
			t.Errorf("after a restart: %s", l)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// serverProc is "cairn serve" running as a child process.
type serverProc struct {
	cmd     *exec.Cmd
	url     string
	stderr  string // file name
	started time.Time
	ready   time.Duration // from started to the ready line
	exited  chan struct{}
	waitErr error
}

// startServe starts the binary's serve on dir, on a free port, with the
// extra flags, and waits for its ready line.
func startServe(t testing.TB, bin, dir string, extra ...string) *serverProc {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	errFile, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	p := &serverProc{stderr: errFile.Name(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve", "--data", dir, "--nats-listen", "127.0.0.1:0", "--json"}, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = pw, errFile
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.stderr)
			t.Logf("serve stderr:\n%s", b)
		}
	})
	var ready readyLine
	line := readLine(t, pr, p.exited)
	p.ready = time.Since(p.started)
	if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.NATS == "" || ready.Data != dir {
		t.Fatalf("ready line %q (%v)", line, err)
	}
	p.url = ready.NATS
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *serverProc) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30s")
	}
	return p.cmd.ProcessState.ExitCode()
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Remove()
	os.Exit(code)
}

// logByCommand reads a graph with "cairn log --json" and returns, for each
// command id, its transaction and last event, and how often it appears.
func logByCommand(t *testing.T, url, graph string) (map[string]replyJSON, map[string]int) {
	t.Helper()
	out := mustRun(t, "log", graph, "--json", "--server", url)
	heads, seen := map[string]replyJSON{}, map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var tx txJSON
		if err := json.Unmarshal([]byte(line), &tx); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		for _, c := range tx.Commands {
			seen[c.CommandID]++
		}
		for _, ev := range tx.Events {
			heads[ev.CommandID] = replyJSON{CommandID: ev.CommandID, Seq: tx.Seq, Position: ev.N, HeadCID: ev.CID, TxID: tx.TxID}
		}
	}
	return heads, seen
}

// TestServeProcess runs the cairn binary: 200 commands, a kill -9 while
// they are in flight, a restart on the same data, and checks that every
// acknowledged command is stored exactly once with the sequence it was
// acknowledged with. Then SIGINT drains and exits 0, and SIGINT followed by
// SIGTERM exits at once.
func TestServeProcess(t *testing.T) {
	start := time.Now()
	phase := func(name string) { t.Logf("%s: %s", name, time.Since(start).Round(time.Millisecond)) }
	bin := testbin.Cairn(t)
	phase("built")
	dir := t.TempDir()
	srv := startServe(t, bin, dir)
	mustRun(t, "graph", "create", "load", "--command-id", "load-create", "--server", srv.url)

	const total, killAt, workers = 200, 150, 8
	cmdLine := func(i int, url string) []string {
		return []string{"node", "add", "load", fmt.Sprintf("n-%03d", i), "--command-id", fmt.Sprintf("load-%03d", i),
			"--json", "--timeout", "5s", "--server", url}
	}
	var mu sync.Mutex
	acked := map[string]replyJSON{}
	kill := make(chan struct{})
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := runCLI(t, cmdLine(i, srv.url)...)
				if r.err != nil {
					if r.code() != exitFailure {
						t.Errorf("command %d: exit %d: %s", i, r.code(), r.stderr)
					}
					continue
				}
				var rep replyJSON
				if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
					t.Errorf("command %d: %v: %q", i, err, r.stdout)
					continue
				}
				mu.Lock()
				acked[rep.CommandID] = rep
				if len(acked) == killAt {
					close(kill)
				}
				mu.Unlock()
			}
		}()
	}
	go func() {
		for i := range total {
			jobs <- i
		}
		close(jobs)
	}()
	select {
	case <-kill:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d of %d commands acknowledged within 60s", len(acked), killAt)
	}
	phase("acked")
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	srv.wait(t)
	t.Logf("%d of %d commands acknowledged before kill -9", len(acked), total)

	phase("killed")
	srv = startServe(t, bin, dir)
	phase("restarted")
	heads, _ := logByCommand(t, srv.url, "load")
	for id, rep := range acked {
		if got, ok := heads[id]; !ok || got != rep {
			t.Errorf("acknowledged %+v, stored %+v (found %v)", rep, got, ok)
		}
	}

	// Retry every command: the acknowledged ones are duplicates with their
	// original result, the others are stored now, all exactly once.
	for i := range total {
		r := runCLI(t, cmdLine(i, srv.url)...)
		var rep replyJSON
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.err != nil {
			v := runCLI(t, "verify", "load", "--server", srv.url)
			t.Logf("verify: %s%s", v.stdout, v.stderr)
			log := strings.SplitAfterN(runCLI(t, "log", "load", "--server", srv.url).stdout, "\n", 40)
			t.Logf("log:\n%s", strings.Join(log[:len(log)-1], ""))
			t.Fatalf("retry %d: %v %v: %s", i, r.err, err, r.stderr)
		}
		if first, ok := acked[rep.CommandID]; ok {
			first.Duplicate = true
			if rep != first {
				t.Errorf("retry of an acknowledged command: %+v, want %+v", rep, first)
			}
		}
	}
	phase("retried")
	_, seen := logByCommand(t, srv.url, "load")
	for i := range total {
		if id := fmt.Sprintf("load-%03d", i); seen[id] != 1 {
			t.Errorf("command %s is stored %d times", id, seen[id])
		}
	}
	if out := mustRun(t, "verify", "load", "--server", srv.url); !strings.Contains(out, fmt.Sprintf("%d events", total+1)) {
		t.Errorf("verify: %s", out)
	}

	phase("verified")
	if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t); code != 0 {
		t.Errorf("after SIGINT: exit %d (%v), want 0", code, srv.waitErr)
	}
	if b, _ := os.ReadFile(srv.stderr); !bytes.Contains(b, []byte("draining")) || !bytes.Contains(b, []byte("msg=stopped")) {
		t.Errorf("stderr after SIGINT does not show the drain:\n%s", b)
	}

	phase("drained")
	srv = startServe(t, bin, dir)
	if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t); code != exitSignal {
		t.Errorf("after a second signal: exit %d, want %d", code, exitSignal)
	}
}
