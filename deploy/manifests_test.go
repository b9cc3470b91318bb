package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kinds are the API types the manifests may hold, by apiVersion/kind.
var kinds = map[string]func() any{
	"v1/Service":                         func() any { return new(corev1.Service) },
	"v1/Secret":                          func() any { return new(corev1.Secret) },
	"v1/ConfigMap":                       func() any { return new(corev1.ConfigMap) },
	"apps/v1/StatefulSet":                func() any { return new(appsv1.StatefulSet) },
	"policy/v1/PodDisruptionBudget":      func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return new(networkingv1.NetworkPolicy) },
}

// object is one decoded manifest document.
type object struct {
	where string // file#document
	kind  string // Kind
	name  string
	obj   any
}

// decodeDocuments decodes every YAML document of data strictly into its
// API type: an unknown or misspelt field, a field given twice, a value of
// the wrong type (a quantity that does not parse) or an unknown kind is an
// error.
func decodeDocuments(file string, data []byte) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, n, err)
		}
		where := fmt.Sprintf("%s#%d", file, n)
		if j, err := yaml.YAMLToJSON(doc); err == nil && string(bytes.TrimSpace(j)) == "null" {
			continue // comments only
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: apiVersion %q kind %q is not one the tests know", where, tm.APIVersion, tm.Kind)
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, tm.Kind, err)
		}
		meta := obj.(metav1.Object)
		out = append(out, object{where: where, kind: tm.Kind, name: meta.GetName(), obj: obj})
	}
}

// variant is one directory of k8s/, applied as a whole
// (kubectl apply -f deploy/k8s/NAME/).
type variant struct {
	dir       string
	objects   []object
	services  []*corev1.Service
	sets      []*appsv1.StatefulSet
	pdbs      []*policyv1.PodDisruptionBudget
	policies  []*networkingv1.NetworkPolicy
	secrets   map[string]*corev1.Secret
	configMap map[string]*corev1.ConfigMap
}

// readVariant reads the *.yaml files of dir, by their slash-separated
// paths.
func readVariant(dir string) (map[string][]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.yaml", dir)
	}
	out := map[string][]byte{}
	for _, f := range files {
		if out[filepath.ToSlash(f)], err = os.ReadFile(f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeVariant decodes the files of one variant.
func decodeVariant(dir string, files map[string][]byte) (*variant, error) {
	v := &variant{dir: dir, secrets: map[string]*corev1.Secret{}, configMap: map[string]*corev1.ConfigMap{}}
	names := slices.Sorted(maps.Keys(files))
	for _, f := range names {
		objs, err := decodeDocuments(f, files[f])
		if err != nil {
			return nil, err
		}
		v.objects = append(v.objects, objs...)
	}
	for _, o := range v.objects {
		switch x := o.obj.(type) {
		case *corev1.Service:
			v.services = append(v.services, x)
		case *appsv1.StatefulSet:
			v.sets = append(v.sets, x)
		case *policyv1.PodDisruptionBudget:
			v.pdbs = append(v.pdbs, x)
		case *networkingv1.NetworkPolicy:
			v.policies = append(v.policies, x)
		case *corev1.Secret:
			v.secrets[x.Name] = x
		case *corev1.ConfigMap:
			v.configMap[x.Name] = x
		}
	}
	return v, nil
}

// problems collects what check finds, each prefixed with where it is.
type problems []error

func (p *problems) add(where, format string, a ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, a...)))
}

// quorumReplicas is the number of cairn members and NATS nodes the
// manifests run: the event store keeps 3 replicas.
const quorumReplicas = 3

// check returns every broken reference and every rule the manifests
// break. img is what the Dockerfile builds; readme is deploy/README.md,
// which documents the Secrets the manifests do not create.
func (v *variant) check(img image, readme string) problems {
	var p problems
	seen := map[string]string{}
	for _, o := range v.objects {
		meta := o.obj.(metav1.Object)
		at := o.where + ": " + o.kind + " " + o.name
		if prev, dup := seen[o.kind+"/"+o.name]; dup {
			p.add(at, "defined twice (also %s)", prev)
		}
		seen[o.kind+"/"+o.name] = o.where
		if meta.GetNamespace() != "" {
			p.add(at, "sets namespace %q: leave it to kubectl apply -n", meta.GetNamespace())
		}
		msgs := validation.IsDNS1123Subdomain(o.name)
		if o.kind == "Service" {
			msgs = validation.IsDNS1035Label(o.name)
		}
		for _, m := range msgs {
			p.add(at, "name: %s", m)
		}
	}
	if len(v.sets) == 0 {
		p.add(v.dir, "no StatefulSet")
	}
	for _, s := range v.sets {
		v.checkStatefulSet(&p, s, img, readme)
	}
	for _, s := range v.services {
		v.checkService(&p, s)
	}
	for _, b := range v.pdbs {
		at := "PodDisruptionBudget " + b.Name
		sets := v.selected(&p, at, b.Spec.Selector)
		if len(sets) != 1 {
			p.add(at, "selects the pods of %d StatefulSets, want 1", len(sets))
			continue
		}
		n := int(*sets[0].Spec.Replicas)
		quorum := n/2 + 1
		switch {
		case b.Spec.MaxUnavailable != nil && b.Spec.MinAvailable == nil:
			if b.Spec.MaxUnavailable.Type != intstr.Int || n-b.Spec.MaxUnavailable.IntValue() < quorum {
				p.add(at, "maxUnavailable %s leaves fewer than a quorum of %d of %d", b.Spec.MaxUnavailable.String(), quorum, n)
			}
		case b.Spec.MinAvailable != nil && b.Spec.MaxUnavailable == nil:
			if b.Spec.MinAvailable.Type != intstr.Int || b.Spec.MinAvailable.IntValue() < quorum {
				p.add(at, "minAvailable %s is less than a quorum of %d of %d", b.Spec.MinAvailable.String(), quorum, n)
			}
		default:
			p.add(at, "want one of maxUnavailable and minAvailable")
		}
	}
	for _, np := range v.policies {
		at := "NetworkPolicy " + np.Name
		sets := v.selected(&p, at, &np.Spec.PodSelector)
		if len(sets) == 0 {
			p.add(at, "selects no pods")
		}
		for _, rule := range np.Spec.Ingress {
			for _, peer := range rule.From {
				if peer.PodSelector != nil && len(v.selected(&p, at, peer.PodSelector)) == 0 {
					p.add(at, "ingress from pods %v, which no StatefulSet runs", peer.PodSelector.MatchLabels)
				}
			}
			for _, port := range rule.Ports {
				for _, s := range sets {
					if port.Port == nil || !hasPort(s.Spec.Template.Spec.Containers, *port.Port) {
						p.add(at, "ingress port %v is not a port of StatefulSet %s's containers", port.Port, s.Name)
					}
				}
			}
		}
	}
	for _, s := range v.sets {
		covered := false
		for _, b := range v.pdbs {
			sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			covered = covered || err == nil && sel.Matches(labels.Set(s.Spec.Template.Labels))
		}
		if !covered {
			p.add("StatefulSet "+s.Name, "no PodDisruptionBudget covers its pods")
		}
	}
	return p
}

// selected returns the StatefulSets whose pods sel selects.
func (v *variant) selected(p *problems, at string, sel *metav1.LabelSelector) []*appsv1.StatefulSet {
	if sel == nil || len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		p.add(at, "empty selector: it selects every pod")
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		p.add(at, "selector: %v", err)
		return nil
	}
	var out []*appsv1.StatefulSet
	for _, set := range v.sets {
		if s.Matches(labels.Set(set.Spec.Template.Labels)) {
			out = append(out, set)
		}
	}
	return out
}

func (v *variant) service(name string) *corev1.Service {
	for _, s := range v.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (v *variant) checkService(p *problems, s *corev1.Service) {
	at := "Service " + s.Name
	sets := v.selected(p, at, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
	if len(s.Spec.Selector) > 0 && len(sets) != 1 {
		p.add(at, "selector %v selects the pods of %d StatefulSets, want 1", s.Spec.Selector, len(sets))
	}
	if len(s.Spec.Ports) == 0 {
		p.add(at, "no ports")
	}
	for _, port := range s.Spec.Ports {
		for _, m := range validation.IsValidPortName(port.Name) {
			p.add(at, "port name %q: %s", port.Name, m)
		}
		target := port.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(port.Port)
		}
		for _, set := range sets {
			if !hasPort(set.Spec.Template.Spec.Containers, target) {
				p.add(at, "port %s: target port %s is not a port of StatefulSet %s's containers", port.Name, target.String(), set.Name)
			}
		}
	}
}

// hasPort reports whether a container has the port, by name or number.
func hasPort(cs []corev1.Container, port intstr.IntOrString) bool {
	for _, c := range cs {
		for _, cp := range c.Ports {
			if port.Type == intstr.String && cp.Name == port.StrVal || port.Type == intstr.Int && cp.ContainerPort == port.IntVal {
				return true
			}
		}
	}
	return false
}

var (
	varRef   = regexp.MustCompile(`\$\(([^)]*)\)`)
	flagName = regexp.MustCompile(`^--[a-z0-9][a-z0-9-]*$`)
)

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
		if isCairn(c) {
			v.checkCairnProbe(p, at+": "+name, pr, ports, img)
		}
	}
	if isCairn(c) {
		v.checkServe(p, at, s, c, ports, mounts, claims, img)
	}
}

// checkCairnProbe: the probe runs the image's cairn as a client of this
// pod's own NATS node, within the probe's timeout.
func (v *variant) checkCairnProbe(p *problems, at string, pr *corev1.Probe, ports map[string]int32, img image) {
	cmd := pr.Exec.Command
	if len(cmd) < 3 || cmd[0] != img.binary {
		p.add(at, "%q: want %s SUBCOMMAND... (the image's binary)", cmd, img.binary)
		return
	}
	flags, err := cliFlags(cmd[1:], 2)
	if err != nil {
		p.add(at, "%v", err)
		return
	}
	u, err := url.Parse(flags["server"])
	if err != nil || u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1" || u.Port() != strconv.Itoa(int(ports["client"])) {
		p.add(at, "--server %q: want this pod's own NATS node, localhost:%d (err %v)", flags["server"], ports["client"], err)
	}
	d, err := time.ParseDuration(flags["timeout"])
	if err != nil || pr.TimeoutSeconds == 0 || d >= time.Duration(pr.TimeoutSeconds)*time.Second {
		p.add(at, "--timeout %q must be shorter than the probe's timeoutSeconds %d (err %v)", flags["timeout"], pr.TimeoutSeconds, err)
	}
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
	listens := map[string]string{"nats-listen": "client", "nats-cluster-listen": "nats-cluster", "cluster-listen": "remote"}
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
