package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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

// TestDeployProbe starts serve as the embedded manifests' StatefulSet runs
// it, with the Secrets' files made as deploy/README.md makes them, and
// runs the probe's command against it. One node: the flags that cluster it
// (NATS routes, members, replicas) are left out, with 127.0.0.1 stand-ins
// for the pod's paths and ports.
func TestDeployProbe(t *testing.T) {
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
	var c *corev1.Container
	for i := range pod.spec.Containers {
		if isCairnImage(pod.spec.Containers[i].Image) {
			c = &pod.spec.Containers[i]
		}
	}
	if c == nil || c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil {
		t.Fatalf("%s: no cairn container with an exec readiness probe", pod.where)
	}

	// The Secrets' files, made as deploy/README.md says.
	root := t.TempDir()
	made := t.TempDir()
	pki := tlstest.New(t)
	mustRun(t, "auth", "add-user", filepath.Join(made, "users.json"), "probe", "--role", "reader", "--graph", "probe",
		"--new-nkey", filepath.Join(made, "probe.nk"))
	mustRun(t, "keys", "new", "--out", filepath.Join(made, "signing.nk"))
	sources := map[string]string{
		"cairn-tls/tls.crt": pki.ServerCert, "cairn-tls/tls.key": pki.ServerKey, "cairn-tls/ca.crt": pki.CA,
		"cairn-auth/users.json":    filepath.Join(made, "users.json"),
		"cairn-signing/signing.nk": filepath.Join(made, "signing.nk"),
		"cairn-probe/probe.nk":     filepath.Join(made, "probe.nk"),
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v := volumes[m.Name]
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
			dst := filepath.Join(root, m.MountPath, it.Path)
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	// local moves an absolute path of the pod under root.
	local := func(arg string) string {
		name, val, ok := strings.Cut(arg, "=")
		if ok && strings.HasPrefix(val, "/") {
			return name + "=" + filepath.Join(root, val)
		}
		return arg
	}

	clustering := map[string]bool{"name": true, "cluster": true, "cluster-listen": true, "cluster-advertise": true,
		"nats-cluster-listen": true, "nats-routes": true, "nats-cluster-name": true, "replicas": true}
	var args []string
	for _, a := range c.Args[1:] {
		name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case clustering[name]:
		case name == "nats-listen":
			host, _, _ := strings.Cut(val, ":")
			args = append(args, "--nats-listen="+host+":0")
		case name == "log-level":
		default:
			args = append(args, local(a))
		}
	}
	if c.Args[0] != "serve" || !strings.Contains(strings.Join(args, " "), "--auth=") || !strings.Contains(strings.Join(args, " "), "--tls-cert=") {
		t.Fatalf("%s: serve with --auth and --tls-cert expected, got %q", pod.where, c.Args)
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

	var probe []string
	for _, a := range c.ReadinessProbe.Exec.Command[1:] {
		if v, ok := strings.CutPrefix(a, "--server="); ok {
			su, err := url.Parse(v)
			if err != nil {
				t.Fatalf("probe --server %q: %v", v, err)
			}
			su.Host = su.Hostname() + ":" + u.Port()
			a = "--server=" + su.String()
		}
		probe = append(probe, local(a))
	}
	out := mustRun(t, probe...)
	if !regexp.MustCompile(`(?m)^N[A-Z0-9]{55} # signing key$`).MatchString(out) {
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
