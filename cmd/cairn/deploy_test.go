package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/cairn-graph/cairn/internal/tlstest"
)

// deployDir holds the manifests; deploy's own tests decode them strictly
// and check their references. These tests check the cairn command lines in
// them against cairn itself.
const deployDir = "../../deploy/k8s"

// deployPod is the pod template of a workload in the manifests.
type deployPod struct {
	where string // file: Kind name
	spec  corev1.PodSpec
}

func deployPods(t *testing.T) []deployPod {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "*", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", deployDir, err)
	}
	var pods []deployPod
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var w struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
				Spec struct {
					Template corev1.PodTemplateSpec `json:"template"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(doc, &w); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if w.Kind == "StatefulSet" || w.Kind == "Deployment" {
				pods = append(pods, deployPod{where: fmt.Sprintf("%s: %s %s", f, w.Kind, w.Metadata.Name), spec: w.Spec.Template.Spec})
			}
		}
	}
	if len(pods) == 0 {
		t.Fatalf("no StatefulSet or Deployment in %s", deployDir)
	}
	return pods
}

// isCairnImage reports whether an image reference names the cairn image
// (deploy/Dockerfile).
func isCairnImage(ref string) bool {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return path.Base(ref) == "cairn"
}

var podVar = regexp.MustCompile(`\$\([A-Za-z_][A-Za-z0-9_]*\)`)

// deployCommand is one cairn command line of the manifests: a cairn
// container's args or a probe that runs cairn.
type deployCommand struct {
	where string
	args  []string // without the program; $(VAR) replaced by "cairn-0"
	probe bool
}

func deployCommands(t *testing.T) []deployCommand {
	t.Helper()
	var out []deployCommand
	for _, pod := range deployPods(t) {
		for _, c := range pod.spec.Containers {
			if !isCairnImage(c.Image) {
				continue
			}
			at := pod.where + ": container " + c.Name
			if len(c.Command) > 0 {
				t.Errorf("%s: command %q: the image's ENTRYPOINT is cairn", at, c.Command)
			}
			args := make([]string, len(c.Args))
			for i, a := range c.Args {
				args[i] = podVar.ReplaceAllString(a, "cairn-0")
			}
			out = append(out, deployCommand{where: at + ": args", args: args})
			for name, p := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
				if p != nil && p.Exec != nil && len(p.Exec.Command) > 0 && path.Base(p.Exec.Command[0]) == "cairn" {
					out = append(out, deployCommand{where: at + ": " + name, args: p.Exec.Command[1:], probe: true})
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no cairn container in %s", deployDir)
	}
	return out
}

// TestDeployFlags parses every cairn command line of the Kubernetes
// manifests with cairn's own flag sets, so that a flag serve or a probe's
// command does not know, or a value it cannot parse, fails here rather
// than in a crash-looping pod.
//
// serve has no flag set of its own to look up: the command line runs
// through run with --log-level set to a level that does not exist, last.
// serve parses all its flags and checks that it has no positional
// arguments before it looks at the level, so the level's usage error is
// the answer for a command line that parses, and any other error names
// what does not. The context is cancelled besides, so that nothing starts
// even if that order changed. A probe's command line ends in --help
// instead: a command that parses prints its help and succeeds.
func TestDeployFlags(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	serves := 0
	for _, dc := range deployCommands(t) {
		var stdout, stderr bytes.Buffer
		if dc.probe {
			if err := run(ctx, append(dc.args[:len(dc.args):len(dc.args)], "--help"), &stdout, &stderr); err != nil || stdout.Len() == 0 {
				t.Errorf("%s: cairn %s: %v %s", dc.where, strings.Join(dc.args, " "), err, stderr.String())
			}
			continue
		}
		if len(dc.args) == 0 || dc.args[0] != "serve" {
			t.Errorf("%s: %q, want serve ...", dc.where, dc.args)
			continue
		}
		serves++
		const bad = "--log-level=no-such-level"
		err := run(ctx, append(dc.args[:len(dc.args):len(dc.args)], bad), &stdout, &stderr)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), `--log-level "no-such-level"`) {
			t.Errorf("%s: cairn %s: %v, want only the usage error of %s", dc.where, strings.Join(dc.args, " "), err, bad)
		}
	}
	if serves == 0 {
		t.Errorf("no cairn serve in %s", deployDir)
	}
}

// deployMember is the embedded manifests' cairn container, with the files
// of its Secrets made as deploy/README.md makes them, under root where
// the pod has them at /.
type deployMember struct {
	where string
	c     *corev1.Container
	root  string
	pki   tlstest.PKI
	// app is the nkey seed of a writer on every graph, a user the tests add
	// to the users file to send commands with.
	app string
}

func embeddedMember(t *testing.T) *deployMember {
	t.Helper()
	var pod *deployPod
	for _, p := range deployPods(t) {
		if strings.Contains(p.where, "/embedded/") {
			pod = &p
			break
		}
	}
	if pod == nil {
		t.Fatalf("no workload in %s/embedded", deployDir)
	}
	m := &deployMember{where: pod.where, root: t.TempDir(), pki: tlstest.New(t)}
	for i := range pod.spec.Containers {
		if isCairnImage(pod.spec.Containers[i].Image) {
			m.c = &pod.spec.Containers[i]
		}
	}
	if m.c == nil || len(m.c.Args) == 0 || m.c.Args[0] != "serve" || m.c.ReadinessProbe == nil || m.c.ReadinessProbe.Exec == nil {
		t.Fatalf("%s: no cairn container running serve with an exec readiness probe", pod.where)
	}
	made := t.TempDir()
	users := filepath.Join(made, "users.json")
	mustRun(t, "auth", "add-user", users, "probe", "--role", "reader", "--graph", "probe", "--new-nkey", filepath.Join(made, "probe.nk"))
	m.app = filepath.Join(made, "app.nk")
	mustRun(t, "auth", "add-user", users, "app", "--role", "writer", "--new-nkey", m.app)
	mustRun(t, "keys", "new", "--out", filepath.Join(made, "signing.nk"))
	sources := map[string]string{
		"cairn-tls/tls.crt": m.pki.ServerCert, "cairn-tls/tls.key": m.pki.ServerKey, "cairn-tls/ca.crt": m.pki.CA,
		"cairn-auth/users.json":    users,
		"cairn-signing/signing.nk": filepath.Join(made, "signing.nk"),
		"cairn-probe/probe.nk":     filepath.Join(made, "probe.nk"),
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.spec.Volumes {
		volumes[v.Name] = v
	}
	for _, vm := range m.c.VolumeMounts {
		v := volumes[vm.Name]
		if v.Secret == nil {
			continue
		}
		for _, it := range v.Secret.Items {
			src, ok := sources[v.Secret.SecretName+"/"+it.Key]
			if !ok {
				t.Fatalf("the test cannot make Secret %s's key %s: teach it", v.Secret.SecretName, it.Key)
			}
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(m.root, vm.MountPath, it.Path)
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m
}

// local moves an absolute path of the pod in --flag=/path under root.
func (m *deployMember) local(arg string) string {
	name, val, ok := strings.Cut(arg, "=")
	if ok && strings.HasPrefix(val, "/") {
		return name + "=" + filepath.Join(m.root, val)
	}
	return arg
}

// probe returns the readiness probe's command line (without the program)
// for the NATS node at port on 127.0.0.1.
func (m *deployMember) probe(t *testing.T, port string) []string {
	t.Helper()
	var out []string
	for _, a := range m.c.ReadinessProbe.Exec.Command[1:] {
		if v, ok := strings.CutPrefix(a, "--server="); ok {
			u, err := url.Parse(v)
			if err != nil {
				t.Fatalf("probe --server %q: %v", v, err)
			}
			u.Host = u.Hostname() + ":" + port
			a = "--server=" + u.String()
		}
		out = append(out, m.local(a))
	}
	return out
}

// login returns the flags of the app user on the NATS node at port.
func (m *deployMember) login(port string) []string {
	return []string{"--server", "tls://localhost:" + port, "--tls-ca", m.pki.CA, "--nkey", m.app, "--timeout", "30s"}
}

var signingKeyLine = regexp.MustCompile(`(?m)^N[A-Z0-9]{55} # signing key$`)

// TestDeployProbe starts serve as the embedded manifests' StatefulSet runs
// it, with the Secrets' files made as deploy/README.md says, and runs the
// probe's command against it. One node: the flags that cluster it (NATS
// routes, members, replicas) are left out, and the pod's paths and port
// are moved to the test's.
func TestDeployProbe(t *testing.T) {
	m := embeddedMember(t)
	clustering := map[string]bool{"name": true, "cluster": true, "cluster-listen": true, "cluster-advertise": true,
		"nats-cluster-listen": true, "nats-routes": true, "nats-cluster-name": true, "replicas": true}
	var args []string
	for _, a := range m.c.Args[1:] {
		name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case clustering[name]:
		case name == "nats-listen":
			host, _, _ := strings.Cut(val, ":")
			args = append(args, "--nats-listen="+host+":0")
		case name == "log-level":
		default:
			args = append(args, m.local(a))
		}
	}
	if joined := strings.Join(args, " "); !strings.Contains(joined, "--auth=") || !strings.Contains(joined, "--tls-cert=") {
		t.Fatalf("%s: serve with --auth and --tls-cert expected, got %q", m.where, m.c.Args)
	}
	line, stop := serveInProcess(t, append(args, "--json", "--log-level=error")...)
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	u, err := url.Parse(ready.NATS)
	if err != nil || u.Scheme != "tls" {
		t.Fatalf("ready line %q: want a tls:// URL (%v)", line, err)
	}

	probe := m.probe(t, u.Port())
	out := mustRun(t, probe...)
	if !signingKeyLine.MatchString(out) {
		t.Errorf("cairn %s printed %q, want the engine's public key", strings.Join(probe, " "), out)
	}
	// The probe's login asks for health (deploy/README.md has it do so),
	// and writes nothing.
	var login []string
	for _, a := range probe {
		if strings.HasPrefix(a, "--") {
			login = append(login, a)
		}
	}
	if out := mustRun(t, append([]string{"health"}, login...)...); !strings.Contains(out, "projections: ") {
		t.Errorf("cairn health with the probe's login printed %q", out)
	}
	if r := runCLI(t, append([]string{"graph", "create", "g"}, login...)...); r.err == nil || !strings.Contains(r.stderr, "refused") {
		t.Errorf("the probe's login created a graph: %v %s", r.err, r.stderr)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// freeAddr returns a free 127.0.0.1:port (free when it returns).
var routeHost = regexp.MustCompile(`^[a-z0-9-]+-(\d+)\.`)

// TestDeployCluster runs the embedded manifests' serve command line as the
// StatefulSet would, three members at once on 127.0.0.1 (each pod's
// addresses, ports and paths moved to the test's, everything else as
// written: --cluster, --replicas=3, --sync-always, TLS, users, signing
// key), then the readiness probe against each, commands through every
// member and a query that reads them all back through the third (about
// 20 s here: three engines fsyncing every write on an R3 store).
func TestDeployCluster(t *testing.T) {
	m := embeddedMember(t)
	type node struct{ client, route, remote string }
	var routes []string
	for _, a := range m.c.Args {
		if v, ok := strings.CutPrefix(a, "--nats-routes="); ok {
			routes = strings.Split(v, ",")
		}
	}
	n := len(routes)
	if n < 3 {
		t.Fatalf("%s: --nats-routes names %d nodes", m.where, n)
	}
	nodes := make([]node, n)
	for i := range nodes {
		nodes[i] = node{freeAddr(t), freeAddr(t), freeAddr(t)}
	}
	argsOf := func(i int) []string {
		var args []string
		for _, a := range m.c.Args[1:] {
			name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			switch name {
			case "data":
				a = fmt.Sprintf("--data=%s-%d", filepath.Join(m.root, val), i)
			case "nats-listen":
				a = "--nats-listen=" + nodes[i].client
			case "nats-cluster-listen":
				a = "--nats-cluster-listen=" + nodes[i].route
			case "cluster-listen", "cluster-advertise":
				a = "--" + name + "=" + nodes[i].remote
			case "nats-routes":
				var rs []string
				for _, r := range routes {
					u, err := url.Parse(r)
					var mm []string
					if err == nil {
						mm = routeHost.FindStringSubmatch(u.Hostname())
					}
					if mm == nil {
						t.Fatalf("route %q: want SCHEME://POD-N.SERVICE:PORT (%v)", r, err)
					}
					j, _ := strconv.Atoi(mm[1])
					u.Host = nodes[j].route
					rs = append(rs, u.String())
				}
				a = "--nats-routes=" + strings.Join(rs, ",")
			case "log-level":
				continue
			default:
				a = m.local(podVar.ReplaceAllString(a, fmt.Sprintf("cairn-%d", i)))
			}
			args = append(args, a)
		}
		return append(args, "--json", "--log-level=info")
	}

	// Processes, as in the pods (and protoactor's remote sets grpc's
	// process-wide logger as it starts: members in one process race).
	bin := buildBinary(t)
	type member struct {
		cmd    *exec.Cmd
		stderr string // file name
		exited chan struct{}
		err    error // cmd.Wait's, once exited is closed
	}
	members := make([]*member, n)
	ready, exits := make(chan int, n), make(chan int, n)
	for i := range members {
		mb := &member{stderr: filepath.Join(t.TempDir(), "stderr"), exited: make(chan struct{})}
		members[i] = mb
		errFile, err := os.Create(mb.stderr)
		if err != nil {
			t.Fatal(err)
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		mb.cmd = exec.Command(bin, append([]string{"serve"}, argsOf(i)...)...)
		mb.cmd.Stdout, mb.cmd.Stderr = pw, errFile
		err = mb.cmd.Start()
		pw.Close()
		errFile.Close()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			mb.err = mb.cmd.Wait()
			close(mb.exited)
			exits <- i
		}()
		go func() {
			defer pr.Close()
			if line, err := bufio.NewReader(pr).ReadString('\n'); err == nil && strings.HasPrefix(line, "{") {
				ready <- i
			}
			_, _ = io.Copy(io.Discard, pr)
		}()
	}
	logs := func(i int) string {
		b, _ := os.ReadFile(members[i].stderr)
		return fmt.Sprintf("serve %s\n%s", strings.Join(argsOf(i), " "), b)
	}
	// stop drains the members one at a time (SIGINT), as a rolling update
	// does, waiting for each and killing one that has not stopped in 60s.
	// With report, a member that does not exit cleanly is an error, but for
	// the last: alone, its NATS node has no quorum for the event store, so
	// its drain's last snapshot round cannot finish (it exits 1, and loses
	// nothing acknowledged).
	stopped := false
	stop := func(report bool) {
		if stopped {
			return
		}
		stopped = true
		for i, mb := range members {
			_ = mb.cmd.Process.Signal(os.Interrupt)
			select {
			case <-mb.exited:
				switch {
				case !report || mb.err == nil:
				case i < n-1:
					t.Errorf("member %d: %v\n%s", i, mb.err, logs(i))
				default:
					t.Logf("member %d, the last: %v", i, mb.err)
				}
			case <-time.After(60 * time.Second):
				_ = mb.cmd.Process.Kill()
				<-mb.exited
				t.Errorf("member %d did not stop within 60s of SIGINT\n%s", i, logs(i))
			}
		}
	}
	t.Cleanup(func() { stop(false) })
	// A bound, not a speed goal: serve waits up to a minute for JetStream.
	deadline := time.After(90 * time.Second)
	for range n {
		select {
		case <-ready:
		case i := <-exits:
			stop(false)
			t.Fatalf("member %d exited before it was ready: %v\n%s", i, members[i].err, logs(i))
		case <-deadline:
			stop(false)
			for i := range members {
				t.Log(logs(i))
			}
			t.Fatal("the members were not all ready within 90s")
		}
	}

	for i, nd := range nodes {
		_, port, _ := net.SplitHostPort(nd.client)
		if out := mustRun(t, m.probe(t, port)...); !signingKeyLine.MatchString(out) {
			t.Errorf("member %d: the probe printed %q", i, out)
		}
	}
	port := func(i int) string {
		_, p, _ := net.SplitHostPort(nodes[i%n].client)
		return p
	}
	// A member prints its ready line once its NATS node and projections
	// are up; its cluster member may still be joining, and a command
	// answers UNAVAILABLE (not applied) until it has: the first one is
	// sent again until it is taken, as the answer says.
	create := append([]string{"graph", "create", "g"}, m.login(port(0))...)
	for joinBy := time.Now().Add(60 * time.Second); ; {
		r := runCLI(t, create...)
		if r.err == nil {
			break
		}
		if !strings.Contains(r.stderr, "UNAVAILABLE") || time.Now().After(joinBy) {
			t.Fatalf("cairn %s: %v\nstderr: %s", strings.Join(create, " "), r.err, r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	const adds = 9
	for k := range adds {
		mustRun(t, append([]string{"node", "add", "g", fmt.Sprintf("n%d", k)}, m.login(port(k))...)...)
	}
	out := mustRun(t, append([]string{"query", "stats", "g", "--min-seq", strconv.Itoa(adds + 1)}, m.login(port(n-1))...)...)
	if !strings.Contains(out, fmt.Sprintf(" nodes=%d ", adds)) {
		t.Errorf("query stats through member %d: %q, want nodes=%d", n-1, out, adds)
	}
	stop(true)
}
