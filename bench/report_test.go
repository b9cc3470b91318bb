package bench

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testReport is a report with a full scenario, one with summaries but no
// series or memory, and an empty one.
func testReport() *Report {
	r := NewRecorder()
	for i := range 2000 {
		r.Record("append", 5, time.Duration(50+i*i%40000)*time.Microsecond, nil)
		if i%3 == 0 {
			r.Record("query", 1, time.Duration(200+i)*time.Microsecond, nil)
		}
	}
	r.Stop()
	ops := r.Summaries()

	var series []Interval
	var mem []MemSample
	for s := 1; s <= 20; s++ {
		at := time.Duration(s) * time.Second
		iv := Interval{At: at, AtS: at.Seconds()}
		iv.Ops = append(iv.Ops, OpInterval{Op: "append", Count: 1000, Rate: 1000 + 50*float64(s%4), Items: 5000, ItemRate: 5000, P50MS: 1.2, P99MS: 8 + float64(s), MaxMS: 30})
		q := OpInterval{Op: "query", Count: 300, Errors: 300} // all failed: no latency point
		if s > 2 {
			q = OpInterval{Op: "query", Count: 300, Errors: 1, Rate: 299, Items: 299, ItemRate: 299, P50MS: 0.4, P99MS: 2.5, MaxMS: 9}
		}
		iv.Ops = append(iv.Ops, q)
		series = append(series, iv)
		mem = append(mem, MemSample{At: at, AtS: at.Seconds(), HeapBytes: uint64(100+s) << 20, RSSBytes: uint64(300+s) << 20, LimitBytes: 2 << 30})
	}
	yes, no := true, false
	started := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	return &Report{
		Title:   "Cairn bench: test",
		Started: started,
		Machine: CurrentMachine(),
		Scenarios: []ScenarioResult{
			{
				Scenario:     "ingest",
				Driver:       "engine",
				Config:       map[string]any{"nodes": 100000, "shape": "ba", "rate": 2500.5, "note": "a|b", "batch": 64},
				Started:      started,
				Duration:     20 * time.Second,
				Ops:          ops,
				Series:       series,
				Memory:       mem,
				MemorySource: "the engine's process",
				Baselines: []Baseline{
					{Name: "append", Unit: "events/s", Engine: 41000, Raw: 52000, Ratio: 41000.0 / 52000, RawP50MS: 0.8, RawP99MS: 3.1, PayloadB: 256, Concurrent: 64},
					{Name: "broken", Unit: "events/s", Engine: 10, Raw: 0, Ratio: math.Inf(1)},
				},
				Figures: []Figure{
					{Name: "throughput", Value: 45210.4, Unit: "events/s", Goal: "≥ 40000", Met: &yes},
					{Name: "p99", Value: 12.345, Unit: "ms", Goal: "≤ 10", Met: &no, Note: "GC"},
					{Name: "heap", Value: 120, Unit: "MiB"},
				},
				Notes: []string{"first note", "second\nnote"},
			},
			{Scenario: "summary only", Driver: "engine", Ops: ops, Duration: time.Second},
			{Scenario: "empty"},
		},
	}
}

func TestReportWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out") // Write creates it
	rep := testReport()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}

	// report.json round-trips.
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadReport(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if string(again)+"\n" != string(raw) {
		t.Errorf("report.json does not round-trip:\n%s\nvs\n%s", raw, again)
	}
	s := got.Scenarios[0]
	if s.Duration != 20*time.Second || s.DurationS != 20 {
		t.Errorf("duration %v (%v s), want 20 s", s.Duration, s.DurationS)
	}
	if s.Series[3].At != 4*time.Second || s.Memory[3].At != 4*time.Second {
		t.Errorf("At not restored: %v, %v", s.Series[3].At, s.Memory[3].At)
	}
	if len(s.Ops) != 2 || s.Ops[0].Count != rep.Scenarios[0].Ops[0].Count || len(s.Ops[0].Distribution) != 8 {
		t.Errorf("ops did not survive: %+v", s.Ops)
	}
	if s.Figures[0].Met == nil || !*s.Figures[0].Met || s.Figures[2].Met != nil {
		t.Errorf("Met did not survive: %+v", s.Figures)
	}
	if s.Baselines[1].Ratio != 0 {
		t.Errorf("infinite ratio written as %v, want 0", s.Baselines[1].Ratio)
	}
	if !math.IsInf(rep.Scenarios[0].Baselines[1].Ratio, 1) || rep.Scenarios[1].DurationS != 0 {
		t.Error("Write changed the report it was given")
	}

	// report.md has the tables, the plots and the skipped plots.
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Cairn bench: test",
		"2026-11-27 23:00:00 UTC",
		"| Machine | |",
		"| Key | Value |",
		"| batch | 64 |\n| nodes | 100000 |\n| note | a\\|b |\n| rate | 2500.5 |\n| shape | ba |",
		"| Figure | Value | Unit | Goal | Met | Note |",
		"| throughput | 45,210 | events/s | ≥ 40000 | ✓ |",
		"| p99 | 12.3 | ms | ≤ 10 | ✗ | GC |",
		"| heap | 120 | MiB |  | – |",
		"| Baseline | Engine | Raw | Unit | Ratio | Note |",
		"| append | 41,000 | 52,000 | events/s | 0.788× | raw p50 0.800 ms, p99 3.10 ms; 256 B payload; concurrency 64 |",
		"| broken | 10.0 | 0 | events/s | – |",
		"| Op | Count | Errors | ops/s | items/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |",
		"| append | 2,000 | 0 |",
		"- first note\n- second note\n",
		"![](ingest-throughput.png)",
		"![](ingest-latency.png)",
		"![](ingest-latency-dist.png)",
		"![](ingest-memory.png)",
		"## summary only",
		"![](summary-only-latency-dist.png)",
		"No throughput plot: no intervals recorded.",
		"No engine memory plot: no memory samples recorded.",
		"### Engine memory\n\nGo heap peak 120 MiB, RSS peak 320 MiB, memory limit 2,048 MiB (20 samples). Measured in the engine's process.",
		"## empty",
		"No latency distribution plot: no latency distribution recorded.",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("report.md:\n%s", md)
	}

	// The plots that have data exist and decode; the others do not exist.
	for _, name := range []string{"ingest-throughput", "ingest-latency", "ingest-latency-dist", "ingest-memory", "summary-only-latency-dist"} {
		f, err := os.Open(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s.png: %v", name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
			t.Errorf("%s.png is %v, want at least 400×200", name, b)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 7 { // report.json, report.md, five plots
		t.Errorf("report directory holds %v, want report.json, report.md and five plots", names)
	}
}

func TestReportWriteEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := (&Report{Title: "nothing"}).Write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadReport(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "nothing" || len(got.Scenarios) != 0 {
		t.Errorf("read back %+v", got)
	}
}

func TestReportWriteRemovesStalePlots(t *testing.T) {
	dir := t.TempDir()
	rep := testReport()
	rep.Scenarios = rep.Scenarios[:1]
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	rep.Scenarios[0].Series = nil
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ingest-throughput.png")); !os.IsNotExist(err) {
		t.Errorf("stale throughput plot left behind: %v", err)
	}
}

func TestReadReportErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadReport(filepath.Join(dir, "missing.json")); !os.IsNotExist(err) && err == nil {
		t.Error("no error for a missing file")
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadReport(bad); err == nil {
		t.Error("no error for malformed JSON")
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{fmtInt(0), "0"},
		{fmtInt(999), "999"},
		{fmtInt(1000), "1,000"},
		{fmtInt(-1234567), "-1,234,567"},
		{fmtRate(45210.4), "45,210"},
		{fmtRate(12.345), "12.3"},
		{fmtRate(0), "0"},
		{fmtMS(1.2149), "1.21"},
		{fmtMS(8.03), "8.03"},
		{fmtMS(0.0123), "0.0123"},
		{fmtMS(123.4), "123"},
		{fmtMS(12345.6), "12,346"},
		{fmtMB(120 << 20), "120 MiB"},
		{fileName("a/b c"), "a-b-c"},
		{fileName("../x"), "x"},
		{fileName("///"), "scenario"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestCurrentMachine(t *testing.T) {
	m := CurrentMachine()
	if m.OS == "" || m.Arch == "" || m.CPUs <= 0 || m.GoVersion == "" {
		t.Errorf("incomplete machine: %+v", m)
	}
	if m.OS == "linux" && (m.MemoryB == 0 || m.Hostname == "") {
		t.Errorf("linux machine without memory or host name: %+v", m)
	}
}

// TestReportWriteSparse draws plots from a single point and skips those
// with nothing in them, without errors.
func TestReportWriteSparse(t *testing.T) {
	dir := t.TempDir()
	one := Interval{At: time.Second, AtS: 1, Ops: []OpInterval{{Op: "x", Count: 1, Rate: 1, P50MS: 2, P99MS: 2, MaxMS: 2}}}
	rep := &Report{Scenarios: []ScenarioResult{
		{Scenario: "one", Series: []Interval{one}, Memory: []MemSample{{At: time.Second, AtS: 1, HeapBytes: 1 << 20}}},
		{Scenario: "idle", Series: []Interval{{At: time.Second, AtS: 1}, {At: 2 * time.Second, AtS: 2}}},
	}}
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one-throughput.png", "one-latency.png", "one-memory.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "No throughput plot: no ops in any interval.") {
		t.Errorf("report.md does not say why idle has no throughput plot:\n%s", md)
	}
}
