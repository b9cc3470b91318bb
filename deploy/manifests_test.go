package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
				// A podSelector beside a namespaceSelector selects pods of
				// other namespaces (Prometheus): not the manifests'.
				if peer.PodSelector != nil && peer.NamespaceSelector == nil && len(v.selected(&p, at, peer.PodSelector)) == 0 {
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
	for _, np := range v.policies {
		checkMetricsIngress(&p, np, v.selected(&p, "NetworkPolicy "+np.Name, &np.Spec.PodSelector), readme)
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

// checkMetricsIngress: where a NetworkPolicy selects cairn pods, their
// metrics port (plain HTTP, no login) is admitted, and only from pods
// chosen by a labelled namespaceSelector (where Prometheus runs) that
// deploy/README.md documents, never from every pod.
func checkMetricsIngress(p *problems, np *networkingv1.NetworkPolicy, sets []*appsv1.StatefulSet, readme string) {
	at := "NetworkPolicy " + np.Name
	for _, s := range sets {
		for _, c := range s.Spec.Template.Spec.Containers {
			port := metricsPort(&c)
			if !isCairn(&c) || port == 0 {
				continue
			}
			admitted := false
			for i, rule := range np.Spec.Ingress {
				covers := len(rule.Ports) == 0
				for _, rp := range rule.Ports {
					covers = covers || rp.Port == nil || rp.Port.String() == metricsPortName || rp.Port.IntValue() == int(port)
				}
				if !covers {
					continue
				}
				if len(rule.From) == 0 {
					p.add(at, "ingress rule %d admits every pod to the metrics port %d of StatefulSet %s: want Prometheus's namespace only", i, port, s.Name)
					continue
				}
				prometheus := true
				for _, peer := range rule.From {
					ns := peer.NamespaceSelector
					if ns == nil || len(ns.MatchLabels) == 0 {
						prometheus = false
						continue
					}
					for k, val := range ns.MatchLabels {
						if !strings.Contains(readme, k+": "+val) {
							p.add(at, "ingress rule %d: namespaceSelector %s: %s is not documented in deploy/README.md", i, k, val)
						}
					}
				}
				admitted = admitted || prometheus
			}
			if !admitted {
				p.add(at, "no ingress rule admits Prometheus (a peer with a labelled namespaceSelector) to the metrics port %d of StatefulSet %s", port, s.Name)
			}
		}
	}
}
