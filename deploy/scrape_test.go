package deploy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/testbin"
)

// promServer is a real Prometheus server (Debian's prometheus) as a child
// process, listening on loopback.
type promServer struct {
	url string // http://127.0.0.1:PORT
}

// startPrometheus starts prometheus scraping target (host:port) as job
// "cairn" every second, evaluating cairn-rules.yml every second, with its
// storage in a temporary directory, and waits until it is ready. t's
// cleanup kills it (and logs its output when t failed).
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin := needProgram(t, "prometheus", "prometheus")
	rules, err := filepath.Abs(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: cairn
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testbin.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	exited := startChild(t, "prometheus", cmd)
	p := &promServer{url: "http://" + addr}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready (%v)", err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready on %s within 15s: %v", addr, err)
		}
	}
}

// apiGet GETs a path of Prometheus's HTTP API into data.
func (p *promServer) apiGet(path string, data any) error {
	resp, err := http.Get(p.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, r.Status, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string
	Value  float64
}

// query runs an instant query and returns its vector.
func (p *promServer) query(q string) ([]sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := p.apiGet("/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %s, want vector", q, data.ResultType)
	}
	var out []sample
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %v: %w", q, r.Value, err)
		}
		out = append(out, sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// waitValue polls the instant query q, which must give one sample, until
// ok accepts its value, for up to 15s; it fails t with what it last saw.
func (p *promServer) waitValue(t *testing.T, q, want string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for {
		got, err := p.query(q)
		switch {
		case err != nil:
			last = err.Error()
		case len(got) != 1:
			last = fmt.Sprintf("%d samples: %v", len(got), got)
		case ok(got[0].Value):
			return got[0].Value
		default:
			last = fmt.Sprintf("%v %g", got[0].Metric, got[0].Value)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: want %s within 15s, last saw %s", q, want, last)
		}
		time.Sleep(200 * time.Millisecond) // the poll's period, not a wait for an event
	}
}

// TestPrometheusScrape is a real scrape: cairn serve with its metrics on,
// and Debian's prometheus scraping it on loopback every second with the
// rules loaded. Through Prometheus's HTTP API: the target is up, the
// command counter goes up by exactly the commands sent, the queries are
// counted, the projections catch up (lag 0), the process collector is
// there, a recording rule computes, and the rules load without error.
func TestPrometheusScrape(t *testing.T) {
	needProgram(t, "prometheus", "prometheus")
	e := startEngine(t)
	// Before Prometheus starts: the graph and its first node, so that the
	// series of add_node commands exists when the count starts.
	e.mustCommand(t, cmdtest.Envelope("scrape", "scrape-create", cmdtest.CreateGraph()))
	e.mustCommand(t, cmdtest.Envelope("scrape", "scrape-first", cmdtest.AddNode("first")))
	u, err := url.Parse(e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	p := startPrometheus(t, u.Host)
	is := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

	p.waitValue(t, `up{job="cairn"}`, "1", is(1))
	p.waitValue(t, `sum(cairn_commands_total{job="cairn"})`, "2", is(2))
	queries0, err := p.query(`sum(cairn_query_duration_seconds_count{job="cairn"})`)
	if err != nil {
		t.Fatal(err)
	}

	// Then exactly n commands and 2 queries.
	const n = 37
	var seq uint64
	for i := range n {
		seq = e.mustCommand(t, cmdtest.Envelope("scrape", fmt.Sprintf("scrape-add-%d", i), cmdtest.AddNode(fmt.Sprintf("n%d", i)))).Seq
	}
	e.query(t, statsQuery("scrape", seq))
	e.query(t, statsQuery("scrape", seq))
	p.waitValue(t, `sum(cairn_commands_total{job="cairn"})`, fmt.Sprint(2+n), is(2+n))
	p.waitValue(t, `sum(cairn_commands_total{job="cairn",kind="add_node",code="ok"})`, fmt.Sprint(1+n), is(1+n))
	p.waitValue(t, `sum(cairn_queries_total{job="cairn"})`, "2", is(2))
	moved := 0.0
	if len(queries0) == 1 {
		moved = queries0[0].Value
	}
	p.waitValue(t, `sum(cairn_query_duration_seconds_count{job="cairn"})`, fmt.Sprintf("more than %g", moved), func(v float64) bool { return v > moved })
	p.waitValue(t, `max(cairn_stream_head_seq{job="cairn"})`, fmt.Sprintf("at least %d", seq), func(v float64) bool { return v >= float64(seq) })
	p.waitValue(t, `max(cairn_projection_lag_sequences{job="cairn"})`, "0", is(0))
	p.waitValue(t, `max(cairn_projection_lag_seconds{job="cairn"})`, "0", is(0))
	p.waitValue(t, `process_resident_memory_bytes{job="cairn"}`, "above 0", func(v float64) bool { return v > 0 })
	p.waitValue(t, `cairn_ready{job="cairn"}`, "1", is(1))
	p.waitValue(t, `cairn:commands:rate5m{job="cairn"}`, "above 0 (the recording rule)", func(v float64) bool { return v > 0 })
	p.waitValue(t, `count(cairn:command_duration_seconds:p99_5m{job="cairn"} > 0)`, "1 (the recording rule)", is(1))

	// The rules: both groups loaded, every rule evaluated without error.
	deadline := time.Now().Add(15 * time.Second)
	for {
		problems, err := p.ruleProblems()
		if err == nil && len(problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rules within 15s: %v %s", err, strings.Join(problems, "; "))
		}
		time.Sleep(200 * time.Millisecond) // the poll's period
	}
	// Nothing fires on a healthy engine.
	if firing, err := p.query(`ALERTS{alertstate="firing"}`); err != nil || len(firing) > 0 {
		t.Errorf("alerts firing on a healthy engine: %v %v", firing, err)
	}
}

// ruleProblems lists what is wrong with the rules Prometheus loaded:
// a group of cairn-rules.yml missing, a rule not evaluated yet or in error.
func (p *promServer) ruleProblems() ([]string, error) {
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.apiGet("/api/v1/rules", &data); err != nil {
		return nil, err
	}
	var problems []string
	groups := map[string]int{}
	for _, g := range data.Groups {
		groups[g.Name] = len(g.Rules)
		for _, r := range g.Rules {
			if r.Health != "ok" {
				problems = append(problems, fmt.Sprintf("%s/%s: health %q %s", g.Name, r.Name, r.Health, r.LastError))
			}
		}
	}
	for _, g := range []string{"cairn.records", "cairn.alerts"} {
		if groups[g] == 0 {
			problems = append(problems, fmt.Sprintf("group %s not loaded (loaded: %v)", g, groups))
		}
	}
	return problems, nil
}
