package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/testproc"
)

// Members of a multi-member test run in processes of their own, children
// of the test binary: protoactor's remote sets grpc's global logger each
// time a member starts, which races (under -race) with the grpc traffic of
// members already running in the same process. Processes also make the
// faults real: a member is killed with SIGKILL and paused with SIGSTOP.
//
// A child reads one command a line on stdin and answers one JSON line on
// stdout (memberReply).

const memberEnv = "CAIRN_TEST_CLUSTER_MEMBER"

func TestMain(m *testing.M) {
	testproc.ServeIfChild(memberEnv, "member", runMember)
	os.Exit(m.Run())
}

// where answers every string (a protobuf StringValue: it crosses the
// wire) with the address of the member it runs on.
type where struct{}

func (where) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(*wrapperspb.StringValue); ok {
		ctx.Respond(wrapperspb.String(ctx.Self().Address + " " + s.GetValue()))
	}
}

// testKVConfig is a member's config in tests: a TTL of 2 s, heartbeats
// every 500 ms; with CAIRN_TEST_MEMBERSHIP_DEFAULTS set, the defaults
// (TTL 3 s, heartbeats every second), to measure failover as cairn serve
// --cluster runs it.
func testKVConfig(js jetstream.JetStream) cluster.Config {
	cfg := cluster.DefaultConfig()
	cfg.Name = "test"
	cfg.Membership = cluster.MembershipNATSKV
	cfg.KV.JetStream = js
	if os.Getenv("CAIRN_TEST_MEMBERSHIP_DEFAULTS") == "" {
		cfg.KV.TTL = 2 * time.Second
		cfg.KV.Heartbeat = 500 * time.Millisecond
		cfg.KV.LeaseMargin = 300 * time.Millisecond
		cfg.HandoverMargin = time.Second
	}
	if os.Getenv("CLUSTER_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return cfg
}

// memberReply is a child's answer to one command.
type memberReply struct {
	ID      string   `json:"id,omitempty"`
	Address string   `json:"address,omitempty"`
	Members []string `json:"members,omitempty"`
	Count   int      `json:"count,omitempty"`
	Took    float64  `json:"took,omitempty"` // seconds
	Err     string   `json:"err,omitempty"`
	// Deadline: the error was the caller's deadline.
	Deadline bool `json:"deadline,omitempty"`
	// Fenced: the error matches cluster.ErrFenced.
	Fenced bool `json:"fenced,omitempty"`
}

func replyErr(err error) memberReply {
	return memberReply{Err: err.Error(), Deadline: errors.Is(err, context.DeadlineExceeded), Fenced: errors.Is(err, cluster.ErrFenced)}
}

// runMember is a child: a member on the NATS server at url, hosting the
// "where" kind, serving commands until stdin closes or "close".
func runMember(url string, in io.Reader, out io.Writer) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	kind := protocluster.NewKind("where", actor.PropsFromProducer(func() actor.Actor { return where{} }))
	m, err := cluster.Start(testKVConfig(js), kind)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(memberReply{ID: m.ID(), Address: m.System().Address()}); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		arg := func(i int) string {
			if i < len(f) {
				return f[i]
			}
			return ""
		}
		ms, _ := strconv.Atoi(arg(2))
		var r memberReply
		switch f[0] {
		case "members":
			r.Members = m.Lookup().Members()
		case "owner":
			_, r.Address, _ = m.Lookup().Owner(arg(1), "where")
		case "ask": // ask ID TIMEOUT_MS: a request through protoactor's Cluster.Request
			res, err := m.Cluster().Request(arg(1), "where", wrapperspb.String("hi"), protocluster.WithTimeout(time.Duration(ms)*time.Millisecond))
			if err != nil {
				r = replyErr(err)
				break
			}
			sv, _ := res.(*wrapperspb.StringValue)
			addr, rest, ok := strings.Cut(sv.GetValue(), " ")
			if !ok || rest != "hi" {
				r.Err = fmt.Sprintf("unexpected answer %q", sv.GetValue())
				break
			}
			r.Address = addr
		case "get": // get ID TIMEOUT_MS: Lookup.GetContext with that deadline
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ms)*time.Millisecond)
			start := time.Now()
			pid, err := m.Lookup().GetContext(ctx, arg(1), "where")
			r.Took = time.Since(start).Seconds()
			cancel()
			if err != nil {
				e := replyErr(err)
				e.Took = r.Took
				r = e
				break
			}
			r.Address = pid.Address
		case "cached": // cached ID: the address of the PID cached for ID
			if pid, _ := m.Cluster().PidCache.Get(arg(1), "where"); pid != nil {
				r.Address = pid.Address
			}
		case "active": // how many grains run here
			if k, ok := m.Cluster().TryGetClusterKind("where"); ok {
				r.Count = int(k.Count())
			}
		case "fenced":
			if err := m.Err(); err != nil {
				r = replyErr(err)
			}
		case "pause": // pause _ MS: skip heartbeats for MS
			m.PauseHeartbeat(time.Duration(ms) * time.Millisecond)
		case "close":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := m.Close(ctx)
			cancel()
			if err != nil {
				r = replyErr(err)
			}
			return enc.Encode(r)
		default:
			r.Err = "unknown command " + f[0]
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return m.Close(ctx)
}

// proc is a member running in a child process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *json.Decoder
	ID      string
	Address string
	done    chan struct{}
	killed  bool
}

// startProc starts a member in a child process connected to url.
func startProc(t *testing.T, url string) *proc {
	t.Helper()
	cmd, in, out := testproc.Start(t, memberEnv+"="+url)
	p := &proc{t: t, cmd: cmd, in: in, out: out, done: make(chan struct{})}
	t.Cleanup(p.stop)
	var hello memberReply
	if err := p.out.Decode(&hello); err != nil {
		t.Fatalf("member process did not start: %v", err)
	}
	p.ID, p.Address = hello.ID, hello.Address
	return p
}

// call sends one command and returns the answer.
func (p *proc) call(format string, args ...any) memberReply {
	p.t.Helper()
	return testproc.Call[memberReply](p.t, "member "+p.ID, p.in, p.out, format, args...)
}

// kill kills the member's process (SIGKILL): its key stays until it
// expires.
func (p *proc) kill() {
	p.t.Helper()
	p.killed = true
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	p.wait()
}

// signal sends sig to the member's process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// close leaves gracefully and waits for the process to end.
func (p *proc) close() {
	p.t.Helper()
	if r := p.call("close"); r.Err != "" {
		p.t.Errorf("member %s close: %s", p.ID, r.Err)
	}
	p.wait()
}

func (p *proc) wait() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Wait()
	close(p.done)
}

// stop ends the process if the test did not.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.in.Close()
	exited := make(chan struct{})
	go func() {
		p.wait()
		close(exited)
	}()
	select {
	case <-exited:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 && !p.killed {
			p.t.Errorf("member %s exited with status %d", p.ID, code)
		}
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-exited
		p.t.Errorf("member %s did not exit when its stdin closed", p.ID)
	}
}
