package deploy

import (
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

const promConfigPath = "prometheus/prometheus.yml"

// promScrapeConfig is the part of a Prometheus scrape config the tests
// read (Prometheus itself, through promtool, checks the rest).
type promScrapeConfig struct {
	JobName             string `json:"job_name"`
	MetricsPath         string `json:"metrics_path"`
	KubernetesSDConfigs []struct {
		Role       string `json:"role"`
		Namespaces struct {
			Names []string `json:"names"`
		} `json:"namespaces"`
	} `json:"kubernetes_sd_configs"`
	RelabelConfigs []relabelConfig `json:"relabel_configs"`
}

// relabelConfig is one relabel_configs entry; nil fields take
// Prometheus's defaults.
type relabelConfig struct {
	SourceLabels []string `json:"source_labels"`
	Separator    *string  `json:"separator"`
	Regex        *string  `json:"regex"`
	TargetLabel  string   `json:"target_label"`
	Replacement  *string  `json:"replacement"`
	Action       string   `json:"action"`
}

func readPromConfig(t *testing.T) []promScrapeConfig {
	t.Helper()
	b, err := os.ReadFile(promConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ScrapeConfigs []promScrapeConfig `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", promConfigPath, err)
	}
	return c.ScrapeConfigs
}

// relabel applies cfgs to lbls as Prometheus's relabel.Process does for
// the actions keep, drop and replace (the regex anchored at both ends, RE2
// like Prometheus's), and reports whether the target is kept.
func relabel(lbls map[string]string, cfgs []relabelConfig) (map[string]string, bool, error) {
	out := maps.Clone(lbls)
	for i, c := range cfgs {
		sep, re, repl, action := ";", "(.*)", "$1", "replace"
		if c.Separator != nil {
			sep = *c.Separator
		}
		if c.Regex != nil {
			re = *c.Regex
		}
		if c.Replacement != nil {
			repl = *c.Replacement
		}
		if c.Action != "" {
			action = c.Action
		}
		rx, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			return nil, false, fmt.Errorf("relabel_configs[%d]: regex %q: %w", i, re, err)
		}
		vals := make([]string, len(c.SourceLabels))
		for j, l := range c.SourceLabels {
			vals[j] = out[l]
		}
		val := strings.Join(vals, sep)
		switch action {
		case "keep":
			if !rx.MatchString(val) {
				return nil, false, nil
			}
		case "drop":
			if rx.MatchString(val) {
				return nil, false, nil
			}
		case "replace":
			m := rx.FindStringSubmatchIndex(val)
			if m == nil {
				continue
			}
			res := string(rx.ExpandString(nil, repl, val, m))
			if res == "" {
				delete(out, c.TargetLabel)
			} else {
				out[c.TargetLabel] = res
			}
		default:
			return nil, false, fmt.Errorf("relabel_configs[%d]: action %q: the test simulates keep, drop and replace only", i, action)
		}
	}
	return out, true, nil
}

var invalidLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// podTargets are the targets Prometheus's Kubernetes discovery (role pod)
// makes of the pods of s in namespace ns, pod i at ips[i]: one per
// container port, with the pod's labels and annotations as meta labels,
// and the defaults Prometheus adds before relabelling.
func podTargets(s *appsv1.StatefulSet, ns string, ips []string, job, metricsPath string) []map[string]string {
	if metricsPath == "" {
		metricsPath = "/metrics"
	}
	var out []map[string]string
	tmpl := s.Spec.Template
	for i, ip := range ips {
		pod := map[string]string{
			"job": job, "__metrics_path__": metricsPath, "__scheme__": "http",
			"__meta_kubernetes_namespace": ns,
			"__meta_kubernetes_pod_name":  fmt.Sprintf("%s-%d", s.Name, i),
			"__meta_kubernetes_pod_ip":    ip,
		}
		for k, v := range tmpl.Labels {
			pod["__meta_kubernetes_pod_label_"+invalidLabelChars.ReplaceAllString(k, "_")] = v
		}
		for k, v := range tmpl.Annotations {
			pod["__meta_kubernetes_pod_annotation_"+invalidLabelChars.ReplaceAllString(k, "_")] = v
		}
		for _, c := range tmpl.Spec.Containers {
			for _, p := range c.Ports {
				t := maps.Clone(pod)
				t["__address__"] = net.JoinHostPort(ip, strconv.Itoa(int(p.ContainerPort)))
				t["__meta_kubernetes_pod_container_name"] = c.Name
				t["__meta_kubernetes_pod_container_port_name"] = p.Name
				t["__meta_kubernetes_pod_container_port_number"] = strconv.Itoa(int(p.ContainerPort))
				t["__meta_kubernetes_pod_container_port_protocol"] = string(p.Protocol)
				out = append(out, t)
			}
		}
	}
	return out
}

// scrapeTargets runs the job's relabelling on every target and returns
// the distinct targets kept, without their __meta_ labels (Prometheus
// merges targets whose labels are the same), as "address path job
// namespace pod" lines, sorted.
func scrapeTargets(job promScrapeConfig, targets []map[string]string) ([]string, error) {
	seen := map[string]bool{}
	for _, t := range targets {
		l, keep, err := relabel(t, job.RelabelConfigs)
		if err != nil {
			return nil, err
		}
		if !keep {
			continue
		}
		seen[fmt.Sprintf("%s %s job=%s namespace=%s pod=%s", l["__address__"], l["__metrics_path__"], l["job"], l["namespace"], l["pod"])] = true
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// kubernetesJob returns prometheus.yml's job that discovers pods.
func kubernetesJob(t *testing.T) promScrapeConfig {
	t.Helper()
	for _, j := range readPromConfig(t) {
		for _, sd := range j.KubernetesSDConfigs {
			if sd.Role == "pod" {
				return j
			}
		}
	}
	t.Fatalf("%s has no job with kubernetes_sd_configs role pod", promConfigPath)
	return promScrapeConfig{}
}

// TestScrapeKubernetes runs the relabelling of prometheus.yml's Kubernetes
// job on the targets its pod discovery would find in each variant of k8s/
// (in the namespace it names, IPv4 and IPv6 pod addresses): each cairn pod
// is scraped once, at its metrics port and the annotated path, as job
// "cairn" (the rules' and the dashboard's), with namespace and pod labels;
// other pods (NATS) not at all. Debian's promtool has no Kubernetes
// discovery, so this is what checks the job's relabelling.
func TestScrapeKubernetes(t *testing.T) {
	job := kubernetesJob(t)
	if len(job.KubernetesSDConfigs[0].Namespaces.Names) != 1 {
		t.Fatalf("job %s: want one namespace named, as deploy/README.md's NS", job.JobName)
	}
	ns := job.KubernetesSDConfigs[0].Namespaces.Names[0]
	for _, dir := range variants(t) {
		v, _ := loadVariant(t, dir)
		for _, family := range []func(i int) string{
			func(i int) string { return fmt.Sprintf("10.1.0.%d", i+10) },
			func(i int) string { return fmt.Sprintf("fd00::%x", i+10) },
		} {
			for _, s := range v.sets {
				ips := make([]string, *s.Spec.Replicas)
				for i := range ips {
					ips[i] = family(i)
				}
				got, err := scrapeTargets(job, podTargets(s, ns, ips, job.JobName, job.MetricsPath))
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, c := range s.Spec.Template.Spec.Containers {
					if port := metricsPort(&c); isCairn(&c) && port != 0 {
						for i, ip := range ips {
							want = append(want, fmt.Sprintf("%s /metrics job=cairn namespace=%s pod=%s-%d", net.JoinHostPort(ip, strconv.Itoa(int(port))), ns, s.Name, i))
						}
					}
				}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: StatefulSet %s: job %s scrapes\n%s\nwant\n%s", dir, s.Name, job.JobName, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
		}
	}
}

// TestScrapeKubernetesChecks: what TestScrapeKubernetes must notice.
func TestScrapeKubernetesChecks(t *testing.T) {
	job := kubernetesJob(t)
	v, _ := loadVariant(t, "k8s/embedded")
	s := v.sets[0]
	for _, tc := range []struct {
		name   string
		mutate func(s *appsv1.StatefulSet, job *promScrapeConfig)
		want   string // the one target, or "" for none
		ip     string // default 10.1.0.1
	}{
		{"as is", func(*appsv1.StatefulSet, *promScrapeConfig) {}, "10.1.0.1:9464 /metrics job=cairn namespace=cairn pod=cairn-0", ""},
		{"not annotated", func(s *appsv1.StatefulSet, _ *promScrapeConfig) {
			delete(s.Spec.Template.Annotations, scrapeAnnotation)
		}, "", ""},
		{"annotated false", func(s *appsv1.StatefulSet, _ *promScrapeConfig) {
			s.Spec.Template.Annotations[scrapeAnnotation] = "false"
		}, "", ""},
		{"other path", func(s *appsv1.StatefulSet, _ *promScrapeConfig) { s.Spec.Template.Annotations[pathAnnotation] = "/m" }, "10.1.0.1:9464 /m job=cairn namespace=cairn pod=cairn-0", ""},
		{"other port", func(s *appsv1.StatefulSet, _ *promScrapeConfig) { s.Spec.Template.Annotations[portAnnotation] = "4222" }, "10.1.0.1:4222 /metrics job=cairn namespace=cairn pod=cairn-0", ""},
		{"other port, IPv6", func(s *appsv1.StatefulSet, _ *promScrapeConfig) { s.Spec.Template.Annotations[portAnnotation] = "4222" },
			"[fd00::1]:4222 /metrics job=cairn namespace=cairn pod=cairn-0", "fd00::1"},
		{"no job relabel", func(_ *appsv1.StatefulSet, j *promScrapeConfig) {
			j.RelabelConfigs = slices.DeleteFunc(slices.Clone(j.RelabelConfigs), func(c relabelConfig) bool { return c.TargetLabel == "job" })
		}, "10.1.0.1:9464 /metrics job=cairn-kubernetes namespace=cairn pod=cairn-0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := s.DeepCopy()
			j := job
			tc.mutate(s, &j)
			ip := tc.ip
			if ip == "" {
				ip = "10.1.0.1"
			}
			got, err := scrapeTargets(j, podTargets(s, "cairn", []string{ip}, j.JobName, j.MetricsPath))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			if tc.want != "" {
				want = []string{tc.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("targets %q, want %q", got, want)
			}
		})
	}
}
