package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// requiredAlerts are the alerts issue 15 asks for.
var requiredAlerts = []string{
	"CairnDown", "CairnNotReady", "CairnProjectionLag", "CairnCommandErrors", "CairnSnapshotFailures",
	"CairnChainCheckFailed", "CairnGraphStopped", "CairnStreamLost", "CairnDiskNearFull",
	"CairnMemoryNearLimit", "CairnActivationFailures", "CairnCommandLatencyAnomaly",
}

const operationsDoc = "../docs/operations.md"

// runbookAnchor is the section of docs/operations.md an alert's
// runbook_url names: the alert's name in lower case, as GitHub makes the
// anchor of a heading "### CairnProjectionLag".
func runbookAnchor(alert string) string { return strings.ToLower(alert) }

// TestAlertRules checks deploy/prometheus: every alert has a for:, a
// severity, a summary, a description and a runbook_url into
// docs/operations.md, and a unit test that shows it firing and one that
// shows it quiet; promtool accepts the rules and the example config, and
// the unit tests pass; and once docs/operations.md exists, every runbook
// anchor is one of its sections.
func TestAlertRules(t *testing.T) {
	rules := readRules(t)
	alerts := map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" {
			if !strings.HasPrefix(r.Record, "cairn:") || strings.Count(r.Record, ":") != 2 {
				t.Errorf("recording rule %q: want cairn:METRIC:OPERATIONS", r.Record)
			}
			continue
		}
		alerts[r.Alert] = true
		if !strings.HasPrefix(r.Alert, "Cairn") {
			t.Errorf("alert %s: name it Cairn...", r.Alert)
		}
		if r.For == "" {
			t.Errorf("alert %s has no for:", r.Alert)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
		}
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("alert %s has no %s annotation", r.Alert, a)
			}
		}
		if want := "docs/operations.md#" + runbookAnchor(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("alert %s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
	}
	// Every aggregation keeps job and instance, so that an alert names
	// the engine.
	for _, r := range rules {
		for _, m := range aggregation.FindAllStringSubmatch(r.Expr, -1) {
			by := strings.Split(strings.ReplaceAll(m[2], " ", ""), ",")
			if !slices.Contains(by, "job") || !slices.Contains(by, "instance") {
				t.Errorf("%s%s: %q aggregates away job or instance: write %s by (job, instance, ...)", r.Alert, r.Record, m[0], m[1])
			}
		}
	}
	for _, a := range requiredAlerts {
		if !alerts[a] {
			t.Errorf("no alert %s in %s", a, rulesPath)
		}
	}

	t.Run("tests", func(t *testing.T) { checkRuleTests(t, alerts) })

	t.Run("promtool", func(t *testing.T) {
		promtool := needProgram(t, "promtool", "prometheus")
		config := "prometheus.yml"
		if !promtoolKnowsKubernetes(t, promtool) {
			config = configWithoutKubernetes(t)
			t.Logf("this promtool has no Kubernetes discovery (Debian builds it without): it checks %s without its kubernetes_sd_configs jobs; TestScrapeKubernetes checks their relabelling", promConfigPath)
		}
		for _, args := range [][]string{
			{"check", "rules", "cairn-rules.yml"},
			{"check", "config", config},
			{"test", "rules", "cairn-rules_test.yml"},
		} {
			cmd := exec.Command(promtool, args...)
			cmd.Dir = "prometheus"
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})

	t.Run("runbooks", func(t *testing.T) {
		var names []string
		for a := range alerts {
			names = append(names, a)
		}
		sort.Strings(names)
		data, err := os.ReadFile(operationsDoc)
		if os.IsNotExist(err) {
			var want []string
			for _, a := range names {
				want = append(want, "#"+runbookAnchor(a))
			}
			t.Skipf("%s is not written yet; it will need a section for each alert: %s", operationsDoc, strings.Join(want, " "))
		}
		if err != nil {
			t.Fatal(err)
		}
		anchors := markdownAnchors(string(data))
		for _, a := range names {
			if !anchors[runbookAnchor(a)] {
				t.Errorf("%s has no section #%s (a heading %q) for alert %s", operationsDoc, runbookAnchor(a), a, a)
			}
		}
	})
}

// ruleTests is the part of a promtool unit test file this test reads.
type ruleTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name          string `json:"name"`
		AlertRuleTest []struct {
			EvalTime  string           `json:"eval_time"`
			Alertname string           `json:"alertname"`
			ExpAlerts []map[string]any `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// checkRuleTests: the unit tests load the rules, and show every alert
// firing at some time and quiet at another.
func checkRuleTests(t *testing.T, alerts map[string]bool) {
	data, err := os.ReadFile("prometheus/cairn-rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f ruleTests
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.RuleFiles, []string{"cairn-rules.yml"}) {
		t.Errorf("rule_files %q, want [cairn-rules.yml]", f.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if !alerts[a.Alertname] {
				t.Errorf("test %s: alertname %s is no alert of the rules", tc.Name, a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for a := range alerts {
		if !fires[a] {
			t.Errorf("alert %s: no unit test shows it firing", a)
		}
		if !quiet[a] {
			t.Errorf("alert %s: no unit test shows it quiet (exp_alerts: [])", a)
		}
	}
}

var (
	aggregation = regexp.MustCompile(`\b(sum|min|max|avg|count|group|stddev|stdvar)\s*(?:by\s*\(([^)]*)\))?\s*\(`)
	mdHeading   = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
	mdAnchor    = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
	notAnchor   = regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
)

// markdownAnchors are a Markdown file's section anchors as GitHub makes
// them (the heading in lower case, punctuation dropped, spaces as '-'),
// and its explicit <a name="..."> or <a id="...">. Headings inside code
// blocks do not count.
func markdownAnchors(md string) map[string]bool {
	var text []string
	fenced := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			text = append(text, l)
		}
	}
	body := strings.Join(text, "\n")
	anchors := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(body, -1) {
		h := strings.ToLower(strings.ReplaceAll(m[1], "`", ""))
		h = notAnchor.ReplaceAllString(h, "")
		anchors[strings.ReplaceAll(h, " ", "-")] = true
	}
	for _, m := range mdAnchor.FindAllStringSubmatch(body, -1) {
		anchors[m[1]] = true
	}
	return anchors
}

func TestMarkdownAnchors(t *testing.T) {
	md := "# Operations\n\n## Alerts\n\n### CairnProjectionLag\n\n### `CairnDown`: the engine is gone\n\n" +
		"```sh\n# CairnNotInCode\n```\n<a name=\"cairnstreamlost\"></a>\n#### Disk & memory ##\n"
	got := markdownAnchors(md)
	for _, want := range []string{"operations", "alerts", "cairnprojectionlag", "cairndown-the-engine-is-gone", "cairnstreamlost", "disk--memory"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	if got["cairnnotincode"] {
		t.Errorf("a comment in a code block made an anchor: %v", got)
	}
}

// promtoolKnowsKubernetes reports whether promtool accepts a
// kubernetes_sd_configs job: Debian's prometheus package is built without
// Kubernetes discovery, and rejects the field as unknown.
func promtoolKnowsKubernetes(t *testing.T, promtool string) bool {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "k8s.yml")
	if err := os.WriteFile(conf, []byte("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "config", conf).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "field kubernetes_sd_configs not found") {
		t.Fatalf("promtool check config of a kubernetes_sd_configs job: %v\n%s", err, out)
	}
	return err == nil
}

// configWithoutKubernetes writes prometheus.yml less its jobs that have
// kubernetes_sd_configs (and every other line as it is) to a temporary
// file beside cairn-rules.yml, which it loads, and returns its absolute
// path.
func configWithoutKubernetes(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(promConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	jobs, _ := c["scrape_configs"].([]any)
	kept := jobs[:0:0]
	for _, j := range jobs {
		if m, ok := j.(map[string]any); !ok || m["kubernetes_sd_configs"] == nil {
			kept = append(kept, j)
		}
	}
	if len(kept) == len(jobs) {
		t.Fatalf("%s has no kubernetes_sd_configs job", promConfigPath)
	}
	c["scrape_configs"] = kept
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"prometheus.yml": out, "cairn-rules.yml": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "prometheus.yml")
}
