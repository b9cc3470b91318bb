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
	"net/http"
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

	"github.com/cairn-graph/cairn/internal/testbin"
	"github.com/cairn-graph/cairn/internal/tlstest"
)

// deployDir holds the manifests; deploy's own tests decode them strictly
// and check their references. These tests check the cairn command lines in
// them against cairn itself.
const deployDir = "../../deploy/k8s"

// deployPod is the pod template of a workload in the manifests.
type deployPod struct {
	where       string // file: Kind name
	annotations map[string]string
	spec        corev1.PodSpec
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
				pods = append(pods, deployPod{where: fmt.Sprintf("%s: %s %s", f, w.Kind, w.Metadata.Name),
					annotations: w.Spec.Template.Annotations, spec: w.Spec.Template.Spec})
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
	// annotations are the pod template's.
	annotations map[string]string
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
	if m.c == nil || len(m.c.Args) == 0 || m.c.Args[0] != "serve" {
		t.Fatalf("%s: no cairn container running serve", pod.where)
	}
	m.annotations = pod.annotations
	made := t.TempDir()
	users := filepath.Join(made, "users.json")
	m.app = filepath.Join(made, "app.nk")
	mustRun(t, "auth", "add-user", users, "app", "--role", "writer", "--new-nkey", m.app)
	mustRun(t, "keys", "new", "--out", filepath.Join(made, "signing.nk"))
	sources := map[string]string{
		"cairn-tls/tls.crt": m.pki.ServerCert, "cairn-tls/tls.key": m.pki.ServerKey, "cairn-tls/ca.crt": m.pki.CA,
		"cairn-auth/users.json":    users,
		"cairn-signing/signing.nk": filepath.Join(made, "signing.nk"),
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

// metricsPort is the port of the manifests' --metrics-listen, where the
// kubelet's probes and Prometheus ask.
func (m *deployMember) metricsPort(t *testing.T) string {
	t.Helper()
	for _, a := range m.c.Args {
		if v, ok := strings.CutPrefix(a, "--metrics-listen="); ok {
			_, port, err := net.SplitHostPort(v)
			if err != nil {
				t.Fatalf("%s: --metrics-listen=%s: %v", m.where, v, err)
			}
			return port
		}
	}
	t.Fatalf("%s: serve has no --metrics-listen: the probes and Prometheus need it", m.where)
	return ""
}

// deployProbe is one of the container's probes as the kubelet runs it.
type deployProbe struct {
	name, path string
}

// probes returns the container's startup, readiness and liveness probes,
// each an HTTP GET of a path on the port --metrics-listen listens on (a
// named port resolved through the container's ports, as the kubelet
// does). Anything else fails the test: the probe would ask nothing serve
// answers.
func (m *deployMember) probes(t *testing.T) []deployProbe {
	t.Helper()
	want := m.metricsPort(t)
	var out []deployProbe
	for _, p := range []struct {
		name string
		pr   *corev1.Probe
	}{{"startupProbe", m.c.StartupProbe}, {"readinessProbe", m.c.ReadinessProbe}, {"livenessProbe", m.c.LivenessProbe}} {
		if p.pr == nil || p.pr.HTTPGet == nil {
			t.Fatalf("%s: %s is not an httpGet probe", m.where, p.name)
		}
		g := p.pr.HTTPGet
		port := g.Port.String()
		for _, cp := range m.c.Ports {
			if cp.Name == port {
				port = strconv.Itoa(int(cp.ContainerPort))
			}
		}
		if port != want || g.Host != "" || g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			t.Fatalf("%s: %s asks %s on port %s (%s), host %q, scheme %q; serve listens on port %s of the pod's IP (--metrics-listen), plain HTTP",
				m.where, p.name, g.Path, g.Port.String(), port, g.Host, g.Scheme, want)
		}
		out = append(out, deployProbe{p.name, g.Path})
	}
	return out
}

// httpGet asks url once, as a probe does (a short timeout, no retry).
func httpGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// probeBodies are what serve answers each probe path with when it passes.
var probeBodies = map[string]string{"/readyz": "ready\n", "/healthz": "ok\n"}

// checkProbes asks what each probe asks of the metrics listener at addr,
// polling as the kubelet does until each passes (200) or the deadline,
// then checks that the /metrics of the pod's annotations say ready.
func (m *deployMember) checkProbes(t *testing.T, who, addr string, within time.Duration) {
	t.Helper()
	for _, p := range m.probes(t) {
		deadline := time.Now().Add(within)
		for {
			code, body, err := httpGet("http://" + addr + p.path)
			if err == nil && code == http.StatusOK {
				if want, ok := probeBodies[p.path]; !ok || body != want {
					t.Errorf("%s: %s: GET %s: 200 %q, want %q", who, p.name, p.path, body, want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s: GET %s: %d %q (%v), still not 200 after %s", who, p.name, p.path, code, body, err, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if m.annotations["prometheus.io/scrape"] != "true" || m.annotations["prometheus.io/port"] != m.metricsPort(t) {
		t.Fatalf("%s: the pod's annotations %v do not point Prometheus at --metrics-listen's port %s", m.where, m.annotations, m.metricsPort(t))
	}
	path := m.annotations["prometheus.io/path"]
	code, body, err := httpGet("http://" + addr + path)
	if err != nil || code != http.StatusOK || !cairnReady.MatchString(body) {
		t.Errorf("%s: GET %s (the prometheus.io/path annotation): %d (%v), want 200 with cairn_ready 1; cairn_ready lines: %q",
			who, path, code, err, regexp.MustCompile(`(?m)^cairn_ready.*$`).FindAllString(body, -1))
	}
}

var cairnReady = regexp.MustCompile(`(?m)^cairn_ready 1$`)

// login returns the flags of the app user on the NATS node at port.
func (m *deployMember) login(port string) []string {
	return []string{"--server", "tls://localhost:" + port, "--tls-ca", m.pki.CA, "--nkey", m.app, "--timeout", "30s"}
}

// TestDeployProbe starts serve as the embedded manifests' StatefulSet runs
// it, with the Secrets' files made as deploy/README.md says, and asks it
// what the kubelet's probes and Prometheus ask: each probe's path on the
// port it names, and the annotations' metrics path. One node: the flags
// that cluster it (NATS routes, members, replicas) are left out, and the
// pod's paths and ports are moved to the test's.
func TestDeployProbe(t *testing.T) {
	m := embeddedMember(t)
	clustering := map[string]bool{"name": true, "cluster": true, "cluster-listen": true, "cluster-advertise": true,
		"nats-cluster-listen": true, "nats-routes": true, "nats-cluster-name": true, "replicas": true}
	metrics := testbin.FreeAddr(t)
	var args []string
	for _, a := range m.c.Args[1:] {
		name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case clustering[name]:
		case name == "nats-listen":
			host, _, _ := strings.Cut(val, ":")
			args = append(args, "--nats-listen="+host+":0")
		case name == "metrics-listen":
			args = append(args, "--metrics-listen="+metrics)
		case name == "log-level":
		default:
			args = append(args, m.local(a))
		}
	}
	if joined := strings.Join(args, " "); !strings.Contains(joined, "--auth=") || !strings.Contains(joined, "--tls-cert=") || !strings.Contains(joined, "--metrics-listen=") {
		t.Fatalf("%s: serve with --auth, --tls-cert and --metrics-listen expected, got %q", m.where, m.c.Args)
	}
	line, stop := serveInProcess(t, append(args, "--json", "--log-level=error")...)
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	if u, err := url.Parse(ready.NATS); err != nil || u.Scheme != "tls" {
		t.Fatalf("ready line %q: want a tls:// URL (%v)", line, err)
	}
	if ready.Metrics != "http://"+metrics {
		t.Fatalf("ready line %q: want metrics=http://%s", line, metrics)
	}
	m.checkProbes(t, "serve", metrics, 30*time.Second)
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
// 20 s here: three engines fsyncing every write on an R3 store). The
// first member starts alone, and its probes are asked before the others
// start: without a quorum its engine cannot open, so its liveness probe
// must pass while its readiness probe fails.
func TestDeployCluster(t *testing.T) {
	m := embeddedMember(t)
	type node struct{ client, route, remote, metrics string }
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
		nodes[i] = node{testbin.FreeAddr(t), testbin.FreeAddr(t), testbin.FreeAddr(t), testbin.FreeAddr(t)}
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
			case "metrics-listen":
				a = "--metrics-listen=" + nodes[i].metrics
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
	bin := testbin.Cairn(t)
	type member struct {
		cmd    *exec.Cmd
		stderr string // file name
		exited chan struct{}
		err    error // cmd.Wait's, once exited is closed
	}
	members := make([]*member, n)
	ready, exits := make(chan int, n), make(chan int, n)
	start := func(i int) {
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
			if mb == nil {
				continue // never started
			}
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

	// The first member alone: its HTTP listener answers before its engine
	// opens, and its engine cannot open without a quorum of NATS nodes.
	// The kubelet would keep it (liveness 200) and keep it out of the
	// Service (readiness 503) until the others come.
	start(0)
	probes := m.probes(t)
	for _, p := range probes {
		want := http.StatusServiceUnavailable
		if p.name == "livenessProbe" {
			want = http.StatusOK
		}
		u := "http://" + nodes[0].metrics + p.path
		for upBy := time.Now().Add(30 * time.Second); ; {
			code, body, err := httpGet(u)
			if err == nil {
				if code != want || want != http.StatusOK && !strings.HasPrefix(body, "not ready:\n") {
					t.Errorf("member 0 alone: %s: GET %s: %d %q, want %d", p.name, p.path, code, body, want)
				}
				break
			}
			if time.Now().After(upBy) {
				stop(false)
				t.Fatalf("member 0 alone: %s: GET %s: %v, its listener not up after 30s\n%s", p.name, p.path, err, logs(0))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	select {
	case i := <-ready:
		t.Fatalf("member %d was ready alone, without a quorum of NATS nodes", i)
	default:
	}
	for i := 1; i < n; i++ {
		start(i)
	}
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

	// The ready line comes once a member's NATS node and projections are
	// up; its cluster member may still be joining, and /readyz waits for
	// that too: the probes are polled, as the kubelet does.
	for i, nd := range nodes {
		m.checkProbes(t, fmt.Sprintf("member %d", i), nd.metrics, 60*time.Second)
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
