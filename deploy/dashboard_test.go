package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const dashboardPath = "grafana/cairn.json"

// dashboard is the part of a Grafana dashboard model the tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	GridPos    struct{ X, Y, W, H int }
	Targets    []struct {
		Expr         string `json:"expr"`
		RefID        string `json:"refId"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// query is a PromQL expression of the dashboard and its legend.
type query struct{ expr, legend string }

// dashboardQueries reads the dashboard, checks its shape (a datasource
// variable that every panel uses, unique panel ids, a 24-column grid, an
// expression in every query) and returns its queries by where they are:
// "panel TITLE" or "variable NAME".
func dashboardQueries(t *testing.T) map[string][]query {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("%s: uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion 36 or later", dashboardPath, d.UID, d.Title, d.SchemaVersion)
	}
	queries := map[string][]query{}
	dsVar := ""
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			dsVar = v.Name
		case "query":
			var q struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &q); err != nil {
				_ = json.Unmarshal(v.Query, &q.Query) // the older form: a string
			}
			queries["variable "+v.Name] = append(queries["variable "+v.Name], query{expr: q.Query})
		}
	}
	if dsVar == "" {
		t.Fatalf("%s: no datasource variable", dashboardPath)
	}
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q have the same id %d", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: gridPos x %d w %d is off the 24-column grid", p.Title, p.GridPos.X, p.GridPos.W)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if uid, _ := p.Datasource["uid"].(string); uid != "${"+dsVar+"}" {
				t.Errorf("panel %q: datasource uid %q, want ${%s}", p.Title, uid, dsVar)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q: query %s has no expr", p.Title, tg.RefID)
				}
				queries["panel "+p.Title] = append(queries["panel "+p.Title], query{tg.Expr, tg.LegendFormat})
			}
		}
	}
	walk(d.Panels)
	return queries
}

// grafanaToPromQL replaces Grafana's variables in a panel's query with
// values Prometheus accepts.
var grafanaToPromQL = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	`"$job"`, `"cairn"`, `"$instance"`, `".*"`)

// TestDashboardPromQL: every panel query of the dashboard is PromQL that
// Prometheus parses (promtool checks each as a recording rule), and every
// recording rule it uses is one of cairn-rules.yml's.
func TestDashboardPromQL(t *testing.T) {
	queries := dashboardQueries(t)
	records := map[string]bool{}
	for _, r := range readRules(t) {
		if r.Record != "" {
			records[r.Record] = true
		}
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for where, qs := range queries {
		for _, q := range qs {
			for _, name := range promqlMetrics(q.expr) {
				if strings.Contains(name, ":") && !records[name] {
					t.Errorf("%s: %s is no recording rule of %s", where, name, rulesPath)
				}
			}
			if strings.HasPrefix(where, "variable ") {
				continue
			}
			n++
			expr, _ := json.Marshal(grafanaToPromQL.Replace(q.expr))
			fmt.Fprintf(&b, "      - record: dashboard:query:%d # %s\n        expr: %s\n", n, where, expr)
		}
	}
	promtool := needProgram(t, "promtool", "prometheus")
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's %d queries: %v\n%s\n%s", n, err, out, b.String())
	}
}

// use is where a query names a metric, and the labels it uses of it.
type use struct {
	where  string
	labels []string
}

// dashboardMetrics are the metric names the dashboard's queries and the
// rules' expressions select, each with its uses; recording rules (names
// with a colon) and Prometheus's own up are left out.
func dashboardMetrics(t *testing.T) map[string][]use {
	t.Helper()
	used := map[string][]use{}
	add := func(where string, q query) {
		for _, name := range promqlMetrics(q.expr) {
			if !strings.Contains(name, ":") && name != "up" {
				used[name] = append(used[name], use{where, promqlLabels(q.expr, q.legend)})
			}
		}
	}
	for where, qs := range dashboardQueries(t) {
		for _, q := range qs {
			add(dashboardPath+" "+where, q)
		}
	}
	for _, r := range readRules(t) {
		add(rulesPath+" "+r.Alert+r.Record, query{expr: r.Expr})
	}
	return used
}

// TestDashboardMetrics runs cairn serve with its metrics on, sends it
// commands and queries (a time-travel one, a refused command) and an
// archive so that the labelled series appear, with snapshots every few
// events, and checks that every metric the dashboard and the rules name is
// on its /metrics, with the labels they use of it (when a query names
// several metrics, on one of them).
func TestDashboardMetrics(t *testing.T) {
	used := dashboardMetrics(t)
	if len(used) < 40 {
		t.Fatalf("the dashboard and rules name %d metrics; the parsing is broken", len(used))
	}
	e := startEngine(t, "--snapshot-every", "8", "--readmodel-snapshot-every", "8", "--snapshot-spacing", "0")
	e.workload(t, "dash", 20)
	x := e.scrape(t)
	var missing []string
	labelsAt := map[string]map[string]bool{} // where: labels the names there export
	for name, uses := range used {
		series := x.series(name)
		for _, u := range uses {
			if labelsAt[u.where] == nil {
				labelsAt[u.where] = map[string]bool{}
			}
			for l := range x.labels[series] {
				labelsAt[u.where][l] = true
			}
		}
		if series == "" {
			var where []string
			for _, u := range uses {
				if !slices.Contains(where, u.where) {
					where = append(where, u.where)
				}
			}
			sort.Strings(where)
			missing = append(missing, fmt.Sprintf("%s (used by %s)", name, strings.Join(where, "; ")))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("not on %s/metrics: %s", e.metrics, m)
	}
	var badLabels []string
	for _, uses := range used {
		for _, u := range uses {
			for _, l := range u.labels {
				if p := fmt.Sprintf("%s: label %s is on none of the metrics it names", u.where, l); !labelsAt[u.where][l] && !slices.Contains(badLabels, p) {
					badLabels = append(badLabels, p)
				}
			}
		}
	}
	sort.Strings(badLabels)
	for _, b := range badLabels {
		t.Error(b)
	}
	if len(missing)+len(badLabels) > 0 {
		var have []string
		for name := range x.labels {
			have = append(have, name)
		}
		sort.Strings(have)
		t.Logf("series exported: %s", strings.Join(have, " "))
	}
}
