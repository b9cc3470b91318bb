package deploy

import (
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// varRef is a $(VAR) reference, which Kubernetes expands in a container's
// command and args from the container's env, and nowhere else.
var varRef = regexp.MustCompile(`\$\(([^)]*)\)`)

// checkStatefulSet checks a StatefulSet and its pods: replicas, selector,
// headless Service, start-up policy, security context, volumes and each
// container.
func (v *variant) checkStatefulSet(p *problems, s *appsv1.StatefulSet, img image, readme string) {
	at := "StatefulSet " + s.Name
	spec := &s.Spec.Template.Spec
	if s.Spec.Replicas == nil || *s.Spec.Replicas != quorumReplicas {
		n := "unset"
		if s.Spec.Replicas != nil {
			n = strconv.Itoa(int(*s.Spec.Replicas))
		}
		p.add(at, "replicas %s, want %d", n, quorumReplicas)
		return
	}
	if sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(labels.Set(s.Spec.Template.Labels)) {
		p.add(at, "selector %v does not select its own pod template's labels %v (%v)", s.Spec.Selector, s.Spec.Template.Labels, err)
	}
	headless := v.service(s.Spec.ServiceName)
	switch {
	case headless == nil:
		p.add(at, "serviceName %q names no Service", s.Spec.ServiceName)
	case headless.Spec.ClusterIP != corev1.ClusterIPNone:
		p.add(at, "serviceName %q is not headless (clusterIP: None)", s.Spec.ServiceName)
	case !headless.Spec.PublishNotReadyAddresses:
		p.add(at, "headless Service %s must publish not-ready addresses: the NATS nodes find each other before they are ready", headless.Name)
	default:
		if sel := labels.SelectorFromSet(headless.Spec.Selector); len(headless.Spec.Selector) == 0 || !sel.Matches(labels.Set(s.Spec.Template.Labels)) {
			p.add(at, "headless Service %s does not select its pods", headless.Name)
		}
	}
	if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		p.add(at, "podManagementPolicy %q: want Parallel, a node's JetStream needs its peers up before it is ready", s.Spec.PodManagementPolicy)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		p.add(at, "automountServiceAccountToken must be false: the pods need no Kubernetes API")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		p.add(at, "pod securityContext.runAsNonRoot must be true")
	}
	uid, gid := img.uid, img.gid
	if !slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool { return isCairn(&c) }) {
		uid, gid = -1, -1 // another image: any user but root
	}
	if psc == nil || psc.RunAsUser == nil || psc.RunAsGroup == nil || *psc.RunAsUser == 0 || *psc.RunAsGroup == 0 ||
		uid >= 0 && (*psc.RunAsUser != uid || *psc.RunAsGroup != gid) {
		p.add(at, "pod securityContext must run as a numeric non-root user (the cairn image's %d:%d)", img.uid, img.gid)
	}
	if psc == nil || psc.FSGroup == nil || psc.RunAsGroup == nil || *psc.FSGroup != *psc.RunAsGroup {
		p.add(at, "pod securityContext.fsGroup must be the user's group, so that it can read the Secrets and write the volumes")
	}

	// Volumes: each named once, each mounted, Secrets known.
	volumes := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		vol := &spec.Volumes[i]
		if volumes[vol.Name] != nil {
			p.add(at, "volume %s defined twice", vol.Name)
		}
		volumes[vol.Name] = vol
		if sec := vol.Secret; sec != nil {
			v.checkSecretVolume(p, at+": volume "+vol.Name, sec, readme)
		}
		if cm := vol.ConfigMap; cm != nil {
			def, ok := v.configMap[cm.Name]
			if !ok {
				p.add(at, "volume %s: ConfigMap %s is not in the manifests", vol.Name, cm.Name)
			}
			for _, it := range cm.Items {
				if _, has := def.Data[it.Key]; ok && !has {
					p.add(at, "volume %s: ConfigMap %s has no key %s", vol.Name, cm.Name, it.Key)
				}
			}
		}
	}
	claims := map[string]bool{}
	for _, c := range s.Spec.VolumeClaimTemplates {
		claims[c.Name] = true
		if volumes[c.Name] != nil {
			p.add(at, "volume claim template %s has the name of a volume", c.Name)
		}
		if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.IsZero() {
			p.add(at, "volume claim template %s requests no storage", c.Name)
		}
	}
	mounted := map[string]bool{}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, m := range c.VolumeMounts {
			mounted[m.Name] = true
		}
	}
	for name := range volumes {
		if !mounted[name] {
			p.add(at, "volume %s is mounted by no container", name)
		}
	}
	for name := range claims {
		if !mounted[name] {
			p.add(at, "volume claim template %s is mounted by no container", name)
		}
	}
	if len(spec.Containers) == 0 {
		p.add(at, "no containers")
	}
	for i := range spec.Containers {
		v.checkContainer(p, s, &spec.Containers[i], volumes, claims, img)
		if c := &spec.Containers[i]; isCairn(c) {
			v.checkScrape(p, at, s, c)
		}
	}
}

// The pod annotations a Prometheus that discovers pods relabels by
// (deploy/prometheus/prometheus.yml's cairn-kubernetes job).
const (
	scrapeAnnotation = "prometheus.io/scrape"
	portAnnotation   = "prometheus.io/port"
	pathAnnotation   = "prometheus.io/path"
)

// checkScrape: the cairn pods say where their metrics are, in the
// annotations for pod discovery and as a port of a Service that lists
// not-ready pods too (for endpoint discovery: an unready member is the one
// whose cairn_ready 0 must be scraped).
func (v *variant) checkScrape(p *problems, at string, s *appsv1.StatefulSet, c *corev1.Container) {
	port := metricsPort(c)
	if port == 0 {
		p.add(at, "container %s has no port named %s (serve --metrics-listen)", c.Name, metricsPortName)
		return
	}
	ann := s.Spec.Template.Annotations
	for key, want := range map[string]string{scrapeAnnotation: "true", portAnnotation: strconv.Itoa(int(port)), pathAnnotation: "/metrics"} {
		if ann[key] != want {
			p.add(at, "pod annotation %s is %q, want %q", key, ann[key], want)
		}
	}
	found := false
	for _, svc := range v.services {
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)) {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if sp.TargetPort.String() != metricsPortName && sp.TargetPort.IntValue() != int(port) {
				continue
			}
			found = true
			if !svc.Spec.PublishNotReadyAddresses {
				p.add(at, "Service %s exposes the metrics port but lists ready pods only: an unready member would not be scraped", svc.Name)
			}
		}
	}
	if !found {
		p.add(at, "no Service exposes the %s port of its pods", metricsPortName)
	}
}

// checkSecretVolume: the Secret is defined in the manifests or documented
// in deploy/README.md, its files are listed as items (so that the paths
// the commands read can be checked), and they are not world-readable.
func (v *variant) checkSecretVolume(p *problems, at string, sec *corev1.SecretVolumeSource, readme string) {
	if len(sec.Items) == 0 {
		p.add(at, "Secret %s: list its keys as items, so that the files the commands read are checked", sec.SecretName)
	}
	if sec.DefaultMode == nil || *sec.DefaultMode&0o007 != 0 {
		p.add(at, "Secret %s: defaultMode must leave others no access (0440 with fsGroup)", sec.SecretName)
	}
	for _, it := range sec.Items {
		if it.Mode != nil && *it.Mode&0o007 != 0 {
			p.add(at, "Secret %s: item %s is readable by others", sec.SecretName, it.Key)
		}
	}
	if def, ok := v.secrets[sec.SecretName]; ok {
		for _, it := range sec.Items {
			_, inData := def.Data[it.Key]
			_, inString := def.StringData[it.Key]
			if !inData && !inString {
				p.add(at, "Secret %s has no key %s", sec.SecretName, it.Key)
			}
		}
		return
	}
	if !strings.Contains(readme, "`"+sec.SecretName+"`") {
		p.add(at, "Secret %s is neither in the manifests nor documented (as `%s`) in deploy/README.md", sec.SecretName, sec.SecretName)
	}
	for _, it := range sec.Items {
		if !strings.Contains(readme, it.Key) {
			p.add(at, "Secret %s: key %s is not documented in deploy/README.md", sec.SecretName, it.Key)
		}
	}
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// isCairn reports whether the container runs the image the Dockerfile
// builds.
func isCairn(c *corev1.Container) bool {
	ref := c.Image
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return path.Base(ref) == "cairn"
}

// checkContainer checks one container: security context, resources,
// ports, mounts, env and $(VAR) references, the files its command, args
// and probes read, its probes, and for the cairn image its serve command
// line.
func (v *variant) checkContainer(p *problems, s *appsv1.StatefulSet, c *corev1.Container, volumes map[string]*corev1.Volume, claims map[string]bool, img image) {
	at := "StatefulSet " + s.Name + ": container " + c.Name
	sc := c.SecurityContext
	switch {
	case sc == nil:
		p.add(at, "no securityContext")
	default:
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			p.add(at, "securityContext.allowPrivilegeEscalation must be false")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p.add(at, "securityContext.readOnlyRootFilesystem must be true")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			p.add(at, "securityContext.capabilities must drop ALL and add none")
		}
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			p.add(at, "securityContext.runAsNonRoot must be true")
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			p.add(at, "securityContext.runAsUser is root")
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[r]
		lim, hasLim := c.Resources.Limits[r]
		switch {
		case !hasReq || !hasLim:
			p.add(at, "resources: want both a request and a limit of %s", r)
		case req.Cmp(lim) > 0:
			p.add(at, "resources: %s request %s is above its limit %s", r, req.String(), lim.String())
		}
	}

	// Ports: named, each listened on (below), each exposed by the image.
	ports := map[string]int32{}
	for _, cp := range c.Ports {
		for _, m := range validation.IsValidPortName(cp.Name) {
			p.add(at, "port name %q: %s", cp.Name, m)
		}
		if _, dup := ports[cp.Name]; dup {
			p.add(at, "port name %s used twice", cp.Name)
		}
		ports[cp.Name] = cp.ContainerPort
	}

	// Mounts: each names a volume or claim; Secrets read-only.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		vol, isVol := volumes[m.Name]
		switch {
		case !isVol && !claims[m.Name]:
			p.add(at, "mount %s at %s names no volume or volume claim template", m.Name, m.MountPath)
		case isVol && vol.Secret != nil && !m.ReadOnly:
			p.add(at, "mount %s: Secrets are mounted readOnly", m.Name)
		}
		if !path.IsAbs(m.MountPath) {
			p.add(at, "mount %s: path %q is not absolute", m.Name, m.MountPath)
		}
		if _, dup := mounts[m.MountPath]; dup {
			p.add(at, "two mounts at %s", m.MountPath)
		}
		mounts[m.MountPath] = m
	}
	// resolve checks that an absolute path a command reads exists in the
	// pod: a file of a Secret's or ConfigMap's items, a path on another
	// volume, or (in the cairn image) its binary.
	resolve := func(where, file string) {
		best := ""
		for mp := range mounts {
			if (file == mp || strings.HasPrefix(file, mp+"/")) && len(mp) > len(best) {
				best = mp
			}
		}
		if best == "" {
			// Only the cairn image's files are known: its binary. In another
			// image, a file beside the mounts is a misspelt mount path.
			beside := false
			for mp := range mounts {
				beside = beside || path.Dir(mp) == path.Dir(file)
			}
			if isCairn(c) && file != img.binary || !isCairn(c) && beside {
				p.add(at, "%s: %s is on no volume, and the image has nothing there", where, file)
			}
			return
		}
		m := mounts[best]
		vol := volumes[m.Name]
		var items []corev1.KeyToPath
		var what string
		switch {
		case vol == nil:
			return
		case vol.Secret != nil:
			items, what = vol.Secret.Items, "Secret "+vol.Secret.SecretName
		case vol.ConfigMap != nil:
			items, what = vol.ConfigMap.Items, "ConfigMap "+vol.ConfigMap.Name
		default:
			return
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(file, best), "/")
		if m.SubPath != "" {
			rel = strings.TrimSuffix(path.Join(m.SubPath, rel), "/")
		}
		for _, it := range items {
			if it.Path == rel {
				return
			}
		}
		p.add(at, "%s: %s: %s mounted at %s has no item with path %q", where, file, what, best, rel)
	}
	paths := func(where string, words []string) {
		for _, w := range words {
			if _, val, ok := strings.Cut(w, "="); ok && strings.HasPrefix(w, "--") {
				w = val
			}
			if path.IsAbs(w) {
				resolve(where, w)
			}
		}
	}

	env := map[string]bool{}
	for _, e := range c.Env {
		for _, m := range validation.IsEnvVarName(e.Name) {
			p.add(at, "env %s: %s", e.Name, m)
		}
		env[e.Name] = true
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			if _, ok := v.secrets[e.ValueFrom.SecretKeyRef.Name]; !ok {
				p.add(at, "env %s reads Secret %s, which the manifests do not define", e.Name, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, w := range append(slices.Clone(c.Command), c.Args...) {
		for _, m := range varRef.FindAllStringSubmatch(w, -1) {
			if !env[m[1]] {
				p.add(at, "%q refers to $(%s), which the container's env does not define (Kubernetes would pass it as it is)", w, m[1])
			}
		}
	}
	paths("args", c.Args)
	paths("command", c.Command)
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Exec != nil {
		paths("preStop", l.PreStop.Exec.Command)
	}

	probes := map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe}
	for _, name := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		pr := probes[name]
		if pr == nil {
			if name != "startupProbe" || isCairn(c) {
				p.add(at, "no %s", name)
			}
			continue
		}
		var port *intstr.IntOrString
		switch {
		case pr.TCPSocket != nil:
			port = &pr.TCPSocket.Port
		case pr.HTTPGet != nil:
			port = &pr.HTTPGet.Port
		case pr.GRPC != nil:
			port = ptr(intstr.FromInt32(pr.GRPC.Port))
		}
		if port != nil && !hasPort([]corev1.Container{*c}, *port) {
			p.add(at, "%s: port %s is not one of the container's", name, port.String())
		}
		if pr.Exec == nil {
			continue
		}
		cmd := pr.Exec.Command
		for _, w := range cmd {
			if varRef.MatchString(w) {
				p.add(at, "%s: %q: Kubernetes does not expand $(VAR) in probe commands", name, w)
			}
		}
		paths(name, cmd)
	}
	if isCairn(c) {
		checkCairnProbes(p, at, c)
		v.checkServe(p, at, s, c, ports, mounts, claims, img)
	}
}

// cairnProbes are the probes of a cairn container: serve's own HTTP ones
// (--metrics-listen). Start-up and readiness ask /readyz (NATS connected,
// projections restored, cluster member started and not fenced), liveness
// /healthz (the process answers): a member that is unready for the
// seconds of an election must not be restarted for it.
var cairnProbes = []struct{ name, path string }{
	{"startupProbe", "/readyz"},
	{"readinessProbe", "/readyz"},
	{"livenessProbe", "/healthz"},
}

// The probes' budgets: a start after a crash replays the store's tail, and
// liveness outlasts a JetStream leader election or a member's failover.
const (
	minStartupBudget  = 10 * time.Minute
	minLivenessBudget = time.Minute
)

// checkCairnProbes: each probe of a cairn container is an HTTP GET of its
// path on the metrics port (which checkServe ties to --metrics-listen), on
// the pod's IP, within the budgets above.
func checkCairnProbes(p *problems, at string, c *corev1.Container) {
	probes := map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe}
	for _, want := range cairnProbes {
		pr := probes[want.name]
		if pr == nil {
			continue // reported above
		}
		g := pr.HTTPGet
		if g == nil {
			p.add(at, "%s: want httpGet %s on port %s (serve --metrics-listen)", want.name, want.path, metricsPortName)
			continue
		}
		if g.Path != want.path {
			p.add(at, "%s: path %q, want %s", want.name, g.Path, want.path)
		}
		if g.Port.String() != metricsPortName && g.Port.IntValue() != int(metricsPort(c)) || metricsPort(c) == 0 {
			p.add(at, "%s: port %s, want the container port %s", want.name, g.Port.String(), metricsPortName)
		}
		if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			p.add(at, "%s: scheme %s: serve's metrics listener is plain HTTP", want.name, g.Scheme)
		}
		if g.Host != "" {
			p.add(at, "%s: host %q: leave it empty, the kubelet asks the pod's IP", want.name, g.Host)
		}
		if pr.TimeoutSeconds == 0 || pr.PeriodSeconds == 0 || pr.FailureThreshold == 0 {
			p.add(at, "%s: set periodSeconds, timeoutSeconds and failureThreshold", want.name)
			continue
		}
		budget := time.Duration(pr.PeriodSeconds*pr.FailureThreshold) * time.Second
		switch {
		case want.name == "startupProbe" && budget < minStartupBudget:
			p.add(at, "startupProbe: %s of failures before a restart, want at least %s: a start after a crash replays the store's tail", budget, minStartupBudget)
		case want.name == "livenessProbe" && budget < minLivenessBudget:
			p.add(at, "livenessProbe: %s of failures before a restart, want at least %s: elections and failovers take seconds", budget, minLivenessBudget)
		}
	}
}

// metricsPortName is the name of the cairn container's port of serve
// --metrics-listen, which the probes and Prometheus use.
const metricsPortName = "metrics"

// metricsPort is the container's port named metrics, 0 if none.
func metricsPort(c *corev1.Container) int32 {
	for _, cp := range c.Ports {
		if cp.Name == metricsPortName {
			return cp.ContainerPort
		}
	}
	return 0
}
