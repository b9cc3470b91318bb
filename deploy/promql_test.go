package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// ruleFile is a Prometheus rule file (deploy/prometheus/cairn-rules.yml).
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Record      string            `json:"record"`
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

const rulesPath = "prometheus/cairn-rules.yml"

func readRules(t *testing.T) []rule {
	t.Helper()
	data, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", rulesPath)
	}
	return rules
}

var (
	grafanaVar = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	stringLit  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	matchers   = regexp.MustCompile(`\{[^}]*\}`)
	brackets   = regexp.MustCompile(`\[[^\]]*\]`)
	labelList  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	token      = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*|[0-9.]+(?:[eE][+-]?[0-9]+)?[a-zA-Z]*`)
	labelVals  = regexp.MustCompile(`^\s*label_values\(\s*(?:([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{,])?`)
	queryRes   = regexp.MustCompile(`^\s*query_result\((.*)\)\s*$`)
)

// promqlWords are PromQL's keywords and literals, which are not metrics.
var promqlWords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
	"atan2": true,
}

// promqlMetrics returns the metric (and recording rule) names a PromQL
// expression selects, in order of appearance, once each: every
// identifier that is not a function, a keyword, a label name or a
// literal. Grafana's variables ($job, ${x}, $__rate_interval) are dropped,
// and Grafana's label_values(metric, label) and query_result(expr) are
// understood.
func promqlMetrics(expr string) []string {
	if m := labelVals.FindStringSubmatch(expr); m != nil {
		if m[1] == "" {
			return nil
		}
		return []string{m[1]}
	}
	if m := queryRes.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	s := stringLit.ReplaceAllString(expr, `""`)
	s = grafanaVar.ReplaceAllString(s, "")
	s = matchers.ReplaceAllString(s, " ")
	s = brackets.ReplaceAllString(s, " ")
	s = labelList.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range token.FindAllStringIndex(s, -1) {
		w := s[loc[0]:loc[1]]
		if w[0] >= '0' && w[0] <= '9' || w[0] == '.' || promqlWords[strings.ToLower(w)] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if !slices.Contains(names, w) {
			names = append(names, w)
		}
	}
	return names
}

var (
	groupLabels   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	matcherLabels = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*["'` + "`" + `]`)
	legendLabels  = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
)

// promqlLabels returns the label names a PromQL expression and its
// Grafana legend use (matchers, by/without/on/ignoring/group_ lists, and
// {{label}} in the legend), once each, leaving out what Prometheus adds
// or computes: job, instance, __name__ and le.
func promqlLabels(expr, legend string) []string {
	var names []string
	add := func(n string) {
		n = strings.TrimSpace(n)
		switch n {
		case "", "job", "instance", "__name__", "le":
			return
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, m := range matchers.FindAllString(stringLit.ReplaceAllStringFunc(expr, func(s string) string { return strings.NewReplacer("{", "", "}", "").Replace(s) }), -1) {
		for _, l := range matcherLabels.FindAllStringSubmatch(m, -1) {
			add(l[1])
		}
	}
	for _, m := range groupLabels.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			add(l)
		}
	}
	for _, m := range legendLabels.FindAllStringSubmatch(legend, -1) {
		add(m[1])
	}
	return names
}

func TestPromQLLabels(t *testing.T) {
	for _, c := range []struct {
		expr, legend string
		want         []string
	}{
		{`sum by (kind, code) (rate(x{job="$job",instance=~"$instance"}[5m]))`, "{{kind}} {{ code }} {{instance}}", []string{"kind", "code"}},
		{`x{outcome="error",code!~"ok|a{1}"} / on (job, instance) group_left(version) y`, "", []string{"outcome", "code", "version"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))`, "p99", nil},
		{`go_gc_duration_seconds{quantile="1"}`, "{{shard}}", []string{"quantile", "shard"}},
	} {
		if got := promqlLabels(c.expr, c.legend); !slices.Equal(got, c.want) {
			t.Errorf("promqlLabels(%q, %q) = %q, want %q", c.expr, c.legend, got, c.want)
		}
	}
}

func TestPromQLMetrics(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (kind, code) (rate(cairn_commands_total{job="$job",instance=~"$instance"}[$__rate_interval]))`, []string{"cairn_commands_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(cairn_command_duration_seconds_bucket{code!~"ok|not_found"}[5m])))`, []string{"cairn_command_duration_seconds_bucket"}},
		{`cairn:x:p99_5m > 3 * avg_over_time(cairn:x:p99_5m[3h] offset 15m) and cairn:x:p99_5m > 0.05`, []string{"cairn:x:p99_5m"}},
		{`a / on (job, instance) group_left(version) (b > 0) > 1e9`, []string{"a", "b"}},
		{`sum(x) without (shard) or max(y) by (instance) unless z offset 1h`, []string{"x", "y", "z"}},
		{`rate(process_cpu_seconds_total{job=~"a{1,2}"}[${__interval}])`, []string{"process_cpu_seconds_total"}},
		{`{__name__="foo"}`, nil},
		{`time() - (last_ts > 0)`, []string{"last_ts"}},
		{`max_over_time(x[1h:5m]) > bool 2`, []string{"x"}},
		{`label_values(cairn_build_info{job="$job"}, instance)`, []string{"cairn_build_info"}},
		{`label_values(job)`, nil},
		{`query_result(topk(3, cairn_grains_active))`, []string{"cairn_grains_active"}},
	} {
		if got := promqlMetrics(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("promqlMetrics(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}
