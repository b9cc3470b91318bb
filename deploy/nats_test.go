package deploy

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/cairn-graph/cairn/internal/tlstest"
)

// natsPod is the NATS StatefulSet of a variant and its nats.conf, parsed
// by nats-server itself.
type natsPod struct {
	set  *appsv1.StatefulSet
	c    *corev1.Container
	root string // where the pod's absolute paths are, in the test
	opts *server.Options
}

var quotedPath = regexp.MustCompile(`"(/[^"]*)"`)

// loadNATS finds the StatefulSet whose container is named nats, lays out
// the files it mounts under a temporary root (nats.conf from the
// ConfigMap, its absolute paths moved under the root; the Secrets' files
// made as deploy/README.md says) and parses nats.conf with nats-server's
// ProcessConfigFile, as the pod's first node.
func loadNATS(t *testing.T, v *variant) *natsPod {
	t.Helper()
	np := &natsPod{root: t.TempDir()}
	for _, s := range v.sets {
		for i := range s.Spec.Template.Spec.Containers {
			if c := &s.Spec.Template.Spec.Containers[i]; c.Name == "nats" {
				np.set, np.c = s, c
			}
		}
	}
	if np.c == nil {
		t.Fatalf("%s: no StatefulSet with a container named nats", v.dir)
	}
	pki := tlstest.New(t)
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := user.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	read := func(f string) string {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	secrets := map[string]string{
		"nats-tls/tls.crt": read(pki.ServerCert), "nats-tls/tls.key": read(pki.ServerKey), "nats-tls/ca.crt": read(pki.CA),
		"nats-auth/auth.conf": fmt.Sprintf("authorization {\n  users: [\n    {nkey: %q}\n  ]\n}\n", pub),
	}
	volumes := map[string]corev1.Volume{}
	for _, vol := range np.set.Spec.Template.Spec.Volumes {
		volumes[vol.Name] = vol
	}
	var conf string
	for _, m := range np.c.VolumeMounts {
		vol := volumes[m.Name]
		var items []corev1.KeyToPath
		var content func(key string) (string, bool)
		switch {
		case vol.Secret != nil:
			items = vol.Secret.Items
			content = func(key string) (string, bool) { s, ok := secrets[vol.Secret.SecretName+"/"+key]; return s, ok }
		case vol.ConfigMap != nil:
			items = vol.ConfigMap.Items
			content = func(key string) (string, bool) {
				s, ok := v.configMap[vol.ConfigMap.Name].Data[key]
				return quotedPath.ReplaceAllString(s, `"`+np.root+`$1"`), ok
			}
		default:
			if err := os.MkdirAll(filepath.Join(np.root, m.MountPath), 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		for _, it := range items {
			data, ok := content(it.Key)
			if !ok {
				t.Fatalf("volume %s: the test cannot make key %s: teach it", vol.Name, it.Key)
			}
			dst := filepath.Join(np.root, m.MountPath, it.Path)
			if m.SubPath != "" {
				if m.SubPath != it.Path {
					continue
				}
				dst = filepath.Join(np.root, m.MountPath)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			if path.Base(dst) == "nats.conf" {
				conf = dst
			}
		}
	}
	var confFlag string
	for _, a := range np.c.Command {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			confFlag = filepath.Join(np.root, v)
		}
	}
	if conf == "" || confFlag != conf {
		t.Fatalf("nats-server --config=%s, and the ConfigMap's nats.conf is mounted at %s", confFlag, conf)
	}
	t.Setenv("POD_NAME", np.set.Name+"-0")
	if np.opts, err = server.ProcessConfigFile(conf); err != nil {
		t.Fatalf("nats-server does not take nats.conf: %v", err)
	}
	return np
}

// check returns the ways the NATS configuration falls short of the
// deployment: JetStream with fsync always on the pod's claim, TLS for
// clients, users, mutual TLS between the nodes, routes to every pod,
// monitoring on loopback where the probes ask, lame duck within the grace
// period.
func (np *natsPod) check() []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	o, spec := np.opts, &np.set.Spec.Template.Spec
	ports := map[string]int32{}
	for _, p := range np.c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if want := np.set.Name + "-0"; o.ServerName != want {
		fail("server_name %q, want the pod's name %s ($POD_NAME)", o.ServerName, want)
	}
	if o.Port != int(ports["client"]) {
		fail("listen port %d, want the container port client (%d)", o.Port, ports["client"])
	}
	if o.TLSConfig == nil {
		fail("no tls block: clients would connect in the clear")
	}
	if len(o.Nkeys)+len(o.Users) == 0 || o.NoAuthUser != "" {
		fail("no users (or a no_auth_user): anyone who reaches the pod may do anything")
	}
	if !o.JetStream {
		fail("JetStream is off")
	}
	if !o.SyncAlways {
		fail("jetstream sync_interval is not always: an acknowledged write could be lost on power loss (Jepsen 2025)")
	}
	claim := ""
	for _, m := range np.c.VolumeMounts {
		for _, c := range np.set.Spec.VolumeClaimTemplates {
			if c.Name == m.Name {
				claim = filepath.Join(np.root, m.MountPath)
			}
		}
	}
	if o.StoreDir != claim || claim == "" {
		fail("store_dir %s, want the volume claim's mount %s", o.StoreDir, claim)
	}
	if o.HTTPHost != "127.0.0.1" || o.HTTPPort == 0 {
		fail("monitoring on %s:%d, want 127.0.0.1: it is unauthenticated", o.HTTPHost, o.HTTPPort)
	}
	for name, pr := range map[string]*corev1.Probe{"liveness": np.c.LivenessProbe, "readiness": np.c.ReadinessProbe, "startup": np.c.StartupProbe} {
		if pr == nil || pr.Exec == nil {
			fail("%s probe: want an exec probe of the loopback monitoring port", name)
			continue
		}
		asked := false
		for _, w := range pr.Exec.Command {
			if u, err := url.Parse(w); err == nil && u.Scheme == "http" {
				asked = true
				if u.Host != o.HTTPHost+":"+strconv.Itoa(o.HTTPPort) || u.Path != "/healthz" {
					fail("%s probe asks %s, want http://%s:%d/healthz", name, w, o.HTTPHost, o.HTTPPort)
				}
			}
		}
		if !asked {
			fail("%s probe %q asks no http:// URL", name, pr.Exec.Command)
		}
	}
	if o.Cluster.Name == "" || o.Cluster.Port != int(ports["nats-cluster"]) {
		fail("cluster %q on port %d, want a name and the container port nats-cluster (%d)", o.Cluster.Name, o.Cluster.Port, ports["nats-cluster"])
	}
	if o.Cluster.TLSConfig == nil || o.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		fail("cluster tls: want mutual TLS (verify: true) between the nodes")
	}
	var routes []string
	for _, r := range o.Routes {
		routes = append(routes, r.String())
	}
	var p problems
	checkRoutes(&p, "cluster routes", routes, np.set, ports["nats-cluster"])
	errs = append(errs, p...)
	grace := 30 * time.Second
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if o.LameDuckDuration+o.LameDuckGracePeriod >= grace {
		fail("lame duck %s + %s does not fit in the grace period %s", o.LameDuckDuration, o.LameDuckGracePeriod, grace)
	}
	pid := ""
	if l := np.c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Exec != nil {
		for _, w := range l.PreStop.Exec.Command {
			if v, ok := strings.CutPrefix(w, "--signal=ldm="); ok {
				pid = filepath.Join(np.root, v)
			}
		}
	}
	if pid == "" || o.PidFile != pid {
		fail("preStop signals lame duck mode through %q, the server writes its pid to %q", pid, o.PidFile)
	}
	return errs
}

// TestNATSConfig parses the external NATS cluster's nats.conf with
// nats-server's own parser and checks it against its pod.
func TestNATSConfig(t *testing.T) {
	v, _ := loadVariant(t, "k8s/external-nats")
	for _, err := range loadNATS(t, v).check() {
		t.Error(err)
	}
}

// TestNATSConfigChecks breaks nats.conf one way at a time: each break must
// be found.
func TestNATSConfigChecks(t *testing.T) {
	const dir = "k8s/external-nats"
	_, files := loadVariant(t, dir)
	const f = dir + "/nats.yaml"
	for _, tc := range []struct{ name, old, new, want string }{
		{"fsync", "      sync_interval: always\n", "", "sync_interval"},
		{"monitoring", "http: 127.0.0.1:8222", "http: 0.0.0.0:8222", "monitoring on 0.0.0.0"},
		{"probe port", "http://127.0.0.1:8222/healthz\n", "http://127.0.0.1:8223/healthz\n", "probe asks"},
		{"route", "        nats-route://nats-2.nats-headless:6222\n", "", "routes name"},
		{"route tls", "      tls {\n        cert_file: \"/etc/nats/tls/tls.crt\"\n        key_file: \"/etc/nats/tls/tls.key\"\n        ca_file: \"/etc/nats/tls/ca.crt\"\n        verify: true\n      }\n", "", "mutual TLS"},
		{"client tls", "    listen: 0.0.0.0:4222\n    http: 127.0.0.1:8222\n    tls {\n      cert_file: \"/etc/nats/tls/tls.crt\"\n      key_file: \"/etc/nats/tls/tls.key\"\n      ca_file: \"/etc/nats/tls/ca.crt\"\n    }\n",
			"    listen: 0.0.0.0:4222\n    http: 127.0.0.1:8222\n", "clients would connect in the clear"},
		{"users", "    include \"auth/auth.conf\"\n", "", "no users"},
		{"server name", "server_name: $POD_NAME", "server_name: nats", "server_name"},
		{"store", `store_dir: "/data"`, `store_dir: "/tmp"`, "store_dir"},
		{"lame duck", "lame_duck_duration: 30s", "lame_duck_duration: 60s", "grace period"},
		{"pid", "pid_file: \"/var/run/nats/nats.pid\"", "pid_file: \"/var/run/nats/n.pid\"", "pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ps problems
			for _, err := range loadNATS(t, breakVariant(t, dir, files, f, tc.old, tc.new)).check() {
				ps = append(ps, err)
			}
			expectProblem(t, ps, tc.want)
		})
	}
}
