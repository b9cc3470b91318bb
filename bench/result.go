package bench

import "time"

// What a run measured, as report.json stores it. Durations in JSON are
// milliseconds (float) so that any tool can read them.

// OpSummary is one operation type's totals over a whole scenario.
type OpSummary struct {
	Op     string  `json:"op"`
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	Rate   float64 `json:"rate_per_s"` // successful ops per second of the measured phase
	// Items counts what the successful ops carried (events for a command,
	// for example); ItemRate is Items per second.
	Items    int64   `json:"items"`
	ItemRate float64 `json:"items_per_s"`
	MeanMS   float64 `json:"mean_ms"`
	P50MS    float64 `json:"p50_ms"`
	P90MS    float64 `json:"p90_ms"`
	P99MS    float64 `json:"p99_ms"`
	P999MS   float64 `json:"p999_ms"`
	MaxMS    float64 `json:"max_ms"`
	// Distribution is the latency at a fixed ladder of percentiles (50, 75,
	// 90, 95, 99, 99.9, 99.99, 100), for the distribution plot.
	Distribution []Percentile `json:"distribution"`
}

// Percentile is one point of a latency distribution.
type Percentile struct {
	Q  float64 `json:"q"` // 0-100
	MS float64 `json:"ms"`
}

// Interval is one second (or the last partial second) of a run.
type Interval struct {
	// At is the interval's end, from the start of the measured phase.
	At  time.Duration `json:"-"`
	AtS float64       `json:"at_s"`
	Ops []OpInterval  `json:"ops"`
}

// OpInterval is one operation type within an interval.
type OpInterval struct {
	Op       string  `json:"op"`
	Count    int64   `json:"count"`
	Errors   int64   `json:"errors"`
	Rate     float64 `json:"rate_per_s"`
	Items    int64   `json:"items"`
	ItemRate float64 `json:"items_per_s"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// MemSample is the engine process's memory at one moment, as the engine
// reports it (see MemSampler and ScenarioResult.MemorySource).
type MemSample struct {
	At         time.Duration `json:"-"`
	AtS        float64       `json:"at_s"`
	HeapBytes  uint64        `json:"heap_bytes"`            // Go heap in objects (runtime HeapAlloc)
	RSSBytes   uint64        `json:"rss_bytes"`             // resident set size, 0 where unknown
	GoBytes    uint64        `json:"go_bytes,omitempty"`    // all the Go runtime holds from the OS
	GCCycles   uint64        `json:"gc_cycles,omitempty"`   // garbage collections so far
	LimitBytes int64         `json:"limit_bytes,omitempty"` // the Go memory limit, 0 for none
}

// Baseline sets an engine rate beside raw JetStream doing the same amount
// of the same work in the same run.
type Baseline struct {
	Name       string  `json:"name"`
	Unit       string  `json:"unit"` // for example "events/s"
	Engine     float64 `json:"engine"`
	Raw        float64 `json:"raw"`
	Ratio      float64 `json:"ratio"` // Engine / Raw
	RawP50MS   float64 `json:"raw_p50_ms,omitempty"`
	RawP99MS   float64 `json:"raw_p99_ms,omitempty"`
	PayloadB   int     `json:"payload_bytes,omitempty"`
	Concurrent int     `json:"concurrency,omitempty"`
	Note       string  `json:"note,omitempty"`
}

// Figure is one headline number, with the goal it is read against.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Goal  string  `json:"goal,omitempty"` // for example "≥ 50000"
	Met   *bool   `json:"met,omitempty"`  // nil when there is no goal
	Note  string  `json:"note,omitempty"`
}

// Comparison sets one measure of the engine beside the same measure of a
// peer system (ScenarioResult.Peer) in the same run.
type Comparison struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Engine float64 `json:"engine"`
	Peer   float64 `json:"peer"`
	Ratio  float64 `json:"ratio"`          // Engine / Peer; 0 when Peer is 0
	Goal   string  `json:"goal,omitempty"` // for example "≤ 1.3×"
	Met    *bool   `json:"met,omitempty"`  // nil when there is no goal
	Note   string  `json:"note,omitempty"`
}

// ScenarioResult is what one scenario measured.
type ScenarioResult struct {
	Scenario  string         `json:"scenario"`
	Driver    string         `json:"driver"`
	Config    map[string]any `json:"config"`
	Started   time.Time      `json:"started"`
	Duration  time.Duration  `json:"-"`
	DurationS float64        `json:"duration_s"`
	Ops       []OpSummary    `json:"ops"`
	Series    []Interval     `json:"series"`
	Memory    []MemSample    `json:"memory"`
	// MemorySource says whose memory Memory is: always the engine's
	// process, and how it was read.
	MemorySource string     `json:"memory_source,omitempty"`
	Baselines    []Baseline `json:"baselines,omitempty"`
	Figures      []Figure   `json:"figures,omitempty"`
	// Peer names the system the engine ran beside ("PostgreSQL 15.14"),
	// and Comparisons set their figures side by side.
	Peer        string       `json:"peer,omitempty"`
	Comparisons []Comparison `json:"comparisons,omitempty"`
	Notes       []string     `json:"notes,omitempty"`
	// PerGraph gives figures of each graph (chaos).
	PerGraph []GraphFigure `json:"per_graph,omitempty"`
}

// GraphFigure is one graph's figures under a scenario's load: how many
// commands it took, their p99 (retries included) and its longest
// unavailability (one command's first try to its acknowledgement).
type GraphFigure struct {
	Graph    string  `json:"graph"`
	Commands int     `json:"commands"`
	P99MS    float64 `json:"p99_ms"`
	LongestS float64 `json:"longest_s"`
}

// measured stops m and takes what it measured into r; it returns the ops.
func (r *ScenarioResult) measured(m *Meter) []OpSummary {
	var elapsed time.Duration
	r.Ops, r.Series, r.Memory, elapsed = m.Stop()
	r.Duration, r.DurationS = elapsed, elapsed.Seconds()
	return r.Ops
}

// Machine describes where a report was measured.
type Machine struct {
	Hostname  string `json:"hostname"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	MemoryB   uint64 `json:"memory_bytes,omitempty"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit,omitempty"`
}

// Report is one `cairn bench` run: one scenario, or the standard suite.
type Report struct {
	Title     string           `json:"title"`
	Started   time.Time        `json:"started"`
	Machine   Machine          `json:"machine"`
	Scenarios []ScenarioResult `json:"scenarios"`
}
