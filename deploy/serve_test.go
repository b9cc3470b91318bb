package deploy

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var flagName = regexp.MustCompile(`^--[a-z0-9][a-z0-9-]*$`)

// cliFlags parses a cairn command line written as the manifests write it:
// a subcommand, then only --name=value or --name (a bool flag). The flags'
// existence is checked against the cairn CLI itself by cmd/cairn's
// TestDeployFlags.
func cliFlags(args []string, words int) (map[string]string, error) {
	if len(args) < words {
		return nil, fmt.Errorf("%q: want a subcommand", args)
	}
	flags := map[string]string{}
	for _, a := range args[words:] {
		name, val, hasVal := strings.Cut(a, "=")
		if !flagName.MatchString(name) {
			return nil, fmt.Errorf("%q: write every flag as --name=value (or --name alone for a bool flag), one list item each", a)
		}
		if !hasVal {
			val = "true"
		}
		if _, dup := flags[name[2:]]; dup {
			return nil, fmt.Errorf("%s given twice", name)
		}
		flags[name[2:]] = val
	}
	return flags, nil
}

// listenPort is the port of a host:port flag value, 0 when it is none.
func listenPort(v string) (int32, error) {
	if v == "none" {
		return 0, nil
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(port, 10, 32)
	return int32(n), err
}

// checkServe checks the cairn serve command line against the rest of the
// pod: the ports it listens on, its NATS (embedded: data volume, routes,
// users and TLS; external: the NATS Service, the login), its cluster
// address, and the durability the deployment needs.
func (v *variant) checkServe(p *problems, at string, s *appsv1.StatefulSet, c *corev1.Container,
	ports map[string]int32, mounts map[string]corev1.VolumeMount, claims map[string]bool, img image) {
	if len(c.Command) > 0 && !slices.Equal(c.Command, []string{img.binary}) {
		p.add(at, "command %q: leave it to the image's ENTRYPOINT %s", c.Command, img.binary)
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		p.add(at, "args %q: want serve ...", c.Args)
		return
	}
	flags, err := cliFlags(c.Args, 1)
	if err != nil {
		p.add(at, "%v", err)
		return
	}
	for _, cp := range c.Ports {
		if !slices.Contains(img.ports, cp.ContainerPort) {
			p.add(at, "port %s %d is not one the image EXPOSEs (%v)", cp.Name, cp.ContainerPort, img.ports)
		}
	}
	// Every port declared is listened on, and every listen flag's port is
	// declared under its name.
	listens := map[string]string{"nats-listen": "client", "nats-cluster-listen": "nats-cluster", "cluster-listen": "remote", "metrics-listen": metricsPortName}
	used := map[string]bool{}
	for flag, portName := range listens {
		val, ok := flags[flag]
		if !ok {
			continue
		}
		n, err := listenPort(val)
		if err != nil || n == 0 || ports[portName] != n {
			p.add(at, "--%s=%s: want the container port named %s (%d) (err %v)", flag, val, portName, ports[portName], err)
		}
		used[portName] = true
	}
	for name := range ports {
		if !used[name] {
			p.add(at, "port %s is declared, but no serve flag listens on it", name)
		}
	}
	// The probes and Prometheus reach the metrics listener on the pod's
	// IP: not on its loopback.
	if ml, ok := flags["metrics-listen"]; !ok {
		p.add(at, "no --metrics-listen: the probes and Prometheus ask it")
	} else if host, _, err := net.SplitHostPort(ml); err != nil || host == "localhost" || net.ParseIP(host).IsLoopback() {
		p.add(at, "--metrics-listen=%s: want an address the kubelet and Prometheus reach (0.0.0.0:PORT), not the pod's loopback (err %v)", ml, err)
	}
	if _, off := flags["insecure"]; off {
		p.add(at, "--insecure: the deployment takes users and TLS")
	}
	if _, off := flags["no-signing"]; off {
		p.add(at, "--no-signing: the members sign and check every transaction")
	}
	if flags["signing-key"] == "" {
		p.add(at, "no --signing-key: every member signs with the one key the others check")
	}
	// Durability: 3 replicas on 3 NATS nodes.
	if flags["replicas"] != strconv.Itoa(quorumReplicas) {
		p.add(at, "--replicas=%s, want %d", flags["replicas"], quorumReplicas)
	}
	podName := ""
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			podName = "$(" + e.Name + ")"
		}
	}
	if _, external := flags["nats"]; external {
		v.checkExternalNATS(p, at, flags)
	} else {
		v.checkEmbeddedNATS(p, at, s, flags, podName, ports, mounts, claims, img)
	}
	// The member's remote: dialled by the pod's stable name.
	if flags["cluster"] == "" {
		p.add(at, "no --cluster: the pods would not join one cluster")
	}
	if want := fmt.Sprintf("%s.%s:%d", podName, s.Spec.ServiceName, ports["remote"]); flags["cluster-advertise"] != want {
		p.add(at, "--cluster-advertise=%s, want %s: the pod's name through its headless Service", flags["cluster-advertise"], want)
	}
	// The drain fits in the grace period.
	drain := 30 * time.Second // serve's default
	if d, ok := flags["drain-timeout"]; ok {
		if drain, err = time.ParseDuration(d); err != nil {
			p.add(at, "--drain-timeout=%s: %v", d, err)
		}
	}
	grace := 30 * time.Second // Kubernetes' default
	if g := s.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= drain {
		p.add(at, "terminationGracePeriodSeconds %s: want more than the drain timeout %s", grace, drain)
	}
}

// checkEmbeddedNATS: each pod's embedded server is one node of the NATS
// cluster, routed to every pod, keeping its files on a claim, fsyncing
// every write, with users and TLS.
func (v *variant) checkEmbeddedNATS(p *problems, at string, s *appsv1.StatefulSet, flags map[string]string, podName string,
	ports map[string]int32, mounts map[string]corev1.VolumeMount, claims map[string]bool, img image) {
	data, ok := flags["data"]
	if !ok || !slices.Contains(img.volumes, data) {
		p.add(at, "--data=%s: want the image's VOLUME %v", data, img.volumes)
	} else if m, ok := mounts[data]; !ok || !claims[m.Name] {
		p.add(at, "--data=%s is not mounted from a volume claim template: the event store would not outlive the pod", data)
	}
	if host, _, err := net.SplitHostPort(flags["nats-listen"]); err != nil || host != "127.0.0.1" && host != "localhost" {
		for _, f := range []string{"auth", "tls-cert", "tls-key", "tls-ca"} {
			if flags[f] == "" {
				p.add(at, "--nats-listen=%s reaches beyond the pod: give --%s", flags["nats-listen"], f)
			}
		}
	}
	if flags["sync-always"] != "true" {
		p.add(at, "no --sync-always: a replicated store fsyncs each write before it is acknowledged (see --sync-always in cairn help serve)")
	}
	if flags["name"] != podName || podName == "" {
		p.add(at, "--name=%s: want the pod's name, $(VAR) of an env var from metadata.name", flags["name"])
	}
	checkRoutes(p, at+": --nats-routes", strings.Split(flags["nats-routes"], ","), s, ports["nats-cluster"])
}

// checkRoutes: the NATS routes name every pod of s through its headless
// Service, at the route port.
func checkRoutes(p *problems, at string, routes []string, s *appsv1.StatefulSet, port int32) {
	var hosts []string
	for _, r := range routes {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil || u.Scheme != "nats-route" || u.Port() != strconv.Itoa(int(port)) {
			p.add(at, "%q: want nats-route://HOST:%d (err %v)", r, port, err)
			continue
		}
		hosts = append(hosts, u.Hostname())
	}
	var want []string
	for i := range int(*s.Spec.Replicas) {
		want = append(want, fmt.Sprintf("%s-%d.%s", s.Name, i, s.Spec.ServiceName))
	}
	if !slices.Equal(hosts, want) {
		p.add(at, "routes name %v, want every pod of StatefulSet %s through its headless Service: %v", hosts, s.Name, want)
	}
}

// checkExternalNATS: serve uses the NATS cluster the manifests run, over
// TLS, with a login, and none of the embedded server's flags (serve
// refuses them with --nats).
func (v *variant) checkExternalNATS(p *problems, at string, flags map[string]string) {
	u, err := url.Parse(flags["nats"])
	if err != nil || u.Scheme != "tls" {
		p.add(at, "--nats=%s: want tls://SERVICE:PORT (err %v)", flags["nats"], err)
		return
	}
	svc := v.service(u.Hostname())
	switch {
	case svc == nil:
		p.add(at, "--nats=%s: no Service %s in the manifests", flags["nats"], u.Hostname())
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		p.add(at, "--nats=%s: Service %s is headless", flags["nats"], svc.Name)
	default:
		found := false
		for _, sp := range svc.Spec.Ports {
			found = found || strconv.Itoa(int(sp.Port)) == u.Port()
		}
		if !found {
			p.add(at, "--nats=%s: Service %s has no port %s", flags["nats"], svc.Name, u.Port())
		}
		if sets := v.selected(p, "Service "+svc.Name, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}); len(sets) != 1 || sets[0].Spec.Template.Spec.Containers[0].Name != "nats" {
			p.add(at, "--nats=%s: Service %s does not select the NATS StatefulSet", flags["nats"], svc.Name)
		}
	}
	if flags["nkey"] == "" && flags["creds"] == "" && flags["user"] == "" {
		p.add(at, "--nats without a login (--nkey, --creds or --user)")
	}
	if flags["tls-ca"] == "" {
		p.add(at, "--nats over TLS needs --tls-ca, the CA to trust the servers by")
	}
	for _, f := range []string{"data", "nats-listen", "sync-always", "auth", "tls-verify", "insecure", "name", "nats-cluster-listen", "nats-routes", "nats-cluster-name"} {
		if _, ok := flags[f]; ok {
			p.add(at, "--%s configures the embedded server: serve refuses it with --nats", f)
		}
	}
}
