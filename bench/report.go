package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report files, inside the directory given to Report.Write.
const (
	reportJSON = "report.json"
	reportMD   = "report.md"
)

// Write writes the report into dir, creating it when needed:
//
//   - report.json, the report itself, indented (ReadReport reads it back);
//   - per scenario, the PNG plots <scenario>-throughput.png (ops/s and
//     items/s per op over time), <scenario>-latency.png (p50 and p99 per op
//     over time), <scenario>-latency-dist.png (latency by percentile, the
//     HDR percentile plot) and <scenario>-memory.png (the engine process's
//     Go heap and RSS over time); a plot with nothing to show is not drawn (and an old one of
//     that name is removed), and report.md says so;
//   - report.md, the same for people: the machine, and per scenario its
//     config, figures, baselines, operations, notes and plots.
//
// Each file is written to a temporary file in dir and renamed into place,
// so a failure never leaves a half-written file. Scenario names are made
// safe for file names ("a/b c" becomes "a-b-c"); repeated names get a
// suffix. Durations without their seconds field (Interval.AtS and the
// like) get it filled in, and floats that JSON cannot carry (NaN, ±Inf)
// are written as 0; r itself is not changed.
//
// The error reports what could not be written. report.json is written
// first: when only a plot fails, report.json and report.md are still
// written (report.md names the failed plot) and the error says which
// plot failed.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	rep := r.normalized()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("write report: encode %s: %w", reportJSON, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, reportJSON), append(b, '\n')); err != nil {
		return fmt.Errorf("write report: %w", err)
	}

	var plotErrs []error
	plots := make([][]plotFile, len(rep.Scenarios))
	used := make(map[string]bool)
	for i := range rep.Scenarios {
		s := &rep.Scenarios[i]
		base := uniqueName(fileName(s.Scenario), used)
		ps, err := writePlots(dir, base, s)
		plots[i] = ps
		if err != nil {
			plotErrs = append(plotErrs, err)
		}
	}

	md := renderMarkdown(rep, plots)
	if err := writeFileAtomic(filepath.Join(dir, reportMD), []byte(md)); err != nil {
		return fmt.Errorf("write report: %w", errors.Join(append([]error{err}, plotErrs...)...))
	}
	if len(plotErrs) > 0 {
		return fmt.Errorf("write report: %w", errors.Join(plotErrs...))
	}
	return nil
}

// ReadReport reads a report.json written by Report.Write. The Duration and
// At fields, which JSON carries in seconds, are filled in from them.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		s.Duration = secondsToDuration(s.DurationS)
		for j := range s.Series {
			s.Series[j].At = secondsToDuration(s.Series[j].AtS)
		}
		for j := range s.Memory {
			s.Memory[j].At = secondsToDuration(s.Memory[j].AtS)
		}
	}
	return &r, nil
}

func secondsToDuration(s float64) time.Duration {
	return time.Duration(math.Round(s * float64(time.Second)))
}

// normalized returns a copy of r ready for JSON: seconds filled in from
// durations where missing, and non-finite floats replaced by 0.
func (r *Report) normalized() *Report {
	out := *r
	out.Scenarios = slices.Clone(r.Scenarios)
	for i := range out.Scenarios {
		s := &out.Scenarios[i]
		fillSeconds(&s.DurationS, s.Duration)
		if s.Config != nil {
			cfg := make(map[string]any, len(s.Config))
			for k, v := range s.Config {
				if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
					v = strconv.FormatFloat(f, 'g', -1, 64)
				}
				cfg[k] = v
			}
			s.Config = cfg
		}
		s.Ops = slices.Clone(s.Ops)
		for j := range s.Ops {
			o := &s.Ops[j]
			finites(&o.Rate, &o.ItemRate, &o.MeanMS, &o.P50MS, &o.P90MS, &o.P99MS, &o.P999MS, &o.MaxMS)
			o.Distribution = slices.Clone(o.Distribution)
			for k := range o.Distribution {
				finites(&o.Distribution[k].Q, &o.Distribution[k].MS)
			}
		}
		s.Series = slices.Clone(s.Series)
		for j := range s.Series {
			iv := &s.Series[j]
			fillSeconds(&iv.AtS, iv.At)
			iv.Ops = slices.Clone(iv.Ops)
			for k := range iv.Ops {
				o := &iv.Ops[k]
				finites(&o.Rate, &o.ItemRate, &o.P50MS, &o.P99MS, &o.MaxMS)
			}
		}
		s.Memory = slices.Clone(s.Memory)
		for j := range s.Memory {
			fillSeconds(&s.Memory[j].AtS, s.Memory[j].At)
		}
		s.Baselines = slices.Clone(s.Baselines)
		for j := range s.Baselines {
			b := &s.Baselines[j]
			finites(&b.Engine, &b.Raw, &b.Ratio, &b.RawP50MS, &b.RawP99MS)
		}
		s.Comparisons = slices.Clone(s.Comparisons)
		for j := range s.Comparisons {
			c := &s.Comparisons[j]
			finites(&c.Engine, &c.Peer, &c.Ratio)
		}
		s.Figures = slices.Clone(s.Figures)
		for j := range s.Figures {
			finites(&s.Figures[j].Value)
		}
	}
	return &out
}

// fillSeconds sets *secs to d in seconds when it is unset, and to 0 when
// it is not finite.
func fillSeconds(secs *float64, d time.Duration) {
	if *secs == 0 {
		*secs = d.Seconds()
	}
	*secs = finite(*secs)
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func finites(xs ...*float64) {
	for _, x := range xs {
		*x = finite(*x)
	}
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it to path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort; the write already failed
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// fileName makes a scenario name safe as part of a file name.
func fileName(name string) string {
	var b strings.Builder
	dash := false
	for _, c := range name {
		ok := c == '.' || c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		switch {
		case ok:
			b.WriteRune(c)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-.")
	if s == "" {
		s = "scenario"
	}
	return s
}

// uniqueName returns name, or name-2, name-3... when already used, and
// marks the result used.
func uniqueName(name string, used map[string]bool) string {
	n := name
	for i := 2; used[n]; i++ {
		n = fmt.Sprintf("%s-%d", name, i)
	}
	used[n] = true
	return n
}

// renderMarkdown renders rep as report.md; plots[i] are scenario i's plots.
func renderMarkdown(rep *Report, plots [][]plotFile) string {
	var b strings.Builder
	title := rep.Title
	if title == "" {
		title = "Cairn bench"
	}
	fmt.Fprintf(&b, "# %s\n\n", mdText(title))
	if !rep.Started.IsZero() {
		fmt.Fprintf(&b, "%s\n\n", rep.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	}

	m := rep.Machine
	b.WriteString("| Machine | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, mdCell(v))
		}
	}
	row("Host", m.Hostname)
	row("OS / arch", strings.Trim(m.OS+"/"+m.Arch, "/"))
	if m.CPUs > 0 {
		row("CPUs", strconv.Itoa(m.CPUs))
	}
	row("CPU", m.CPUModel)
	if m.MemoryB > 0 {
		row("Memory", fmt.Sprintf("%.1f GiB", float64(m.MemoryB)/(1<<30)))
	}
	row("Go", m.GoVersion)
	row("Commit", m.Commit)
	b.WriteString("\n")

	for i := range rep.Scenarios {
		var ps []plotFile
		if i < len(plots) {
			ps = plots[i]
		}
		renderScenario(&b, &rep.Scenarios[i], ps)
	}
	return b.String()
}

func renderScenario(b *strings.Builder, s *ScenarioResult, plots []plotFile) {
	fmt.Fprintf(b, "## %s\n\n", mdText(s.Scenario))
	var meta []string
	if s.Driver != "" {
		meta = append(meta, "driver `"+mdText(s.Driver)+"`")
	}
	if !s.Started.IsZero() {
		meta = append(meta, "started "+s.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if s.DurationS > 0 {
		meta = append(meta, "measured "+fmtSig(s.DurationS)+" s")
	}
	if len(meta) > 0 {
		fmt.Fprintf(b, "%s.\n\n", capitalize(strings.Join(meta, ", ")))
	}

	var rows [][]string
	keys := make([]string, 0, len(s.Config))
	for k := range s.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		rows = append(rows, []string{mdCell(k), mdCell(configValue(s.Config[k]))})
	}
	mdSection(b, "Config", "No config recorded.", "| Key | Value |\n|---|---|", rows)

	rows = nil
	for _, f := range s.Figures {
		rows = append(rows, []string{mdCell(f.Name), fmtNum(f.Value), mdCell(f.Unit), mdCell(f.Goal), metMark(f.Met), mdCell(f.Note)})
	}
	mdSection(b, "Figures", "No figures.", "| Figure | Value | Unit | Goal | Met | Note |\n|---|---:|---|---|:-:|---|", rows)

	if len(s.Comparisons) > 0 {
		peer := s.Peer
		if peer == "" {
			peer = "peer"
		}
		rows = nil
		for _, c := range s.Comparisons {
			ratio := "–"
			if c.Peer != 0 {
				ratio = fmtSig(c.Ratio) + "×"
			}
			rows = append(rows, []string{mdCell(c.Name), fmtNum(c.Engine), fmtNum(c.Peer), mdCell(c.Unit), ratio, mdCell(c.Goal), metMark(c.Met), mdCell(c.Note)})
		}
		mdSection(b, "Side by side with "+mdText(peer), "",
			"| Measure | Cairn | "+mdCell(peer)+" | Unit | Ratio | Goal | Met | Note |\n|---|---:|---:|---|---:|---|:-:|---|", rows)
	}

	rows = nil
	for _, bl := range s.Baselines {
		ratio := "–"
		if bl.Raw != 0 {
			ratio = fmtSig(bl.Ratio) + "×"
		}
		var note []string
		if bl.RawP50MS > 0 || bl.RawP99MS > 0 {
			note = append(note, fmt.Sprintf("raw p50 %s ms, p99 %s ms", fmtMS(bl.RawP50MS), fmtMS(bl.RawP99MS)))
		}
		if bl.PayloadB > 0 {
			note = append(note, fmtInt(int64(bl.PayloadB))+" B payload")
		}
		if bl.Concurrent > 0 {
			note = append(note, "concurrency "+fmtInt(int64(bl.Concurrent)))
		}
		if bl.Note != "" {
			note = append(note, bl.Note)
		}
		rows = append(rows, []string{mdCell(bl.Name), fmtNum(bl.Engine), fmtNum(bl.Raw), mdCell(bl.Unit), ratio, mdCell(strings.Join(note, "; "))})
	}
	mdSection(b, "Baselines", "No baselines.", "| Baseline | Engine | Raw | Unit | Ratio | Note |\n|---|---:|---:|---|---:|---|", rows)

	rows = nil
	for _, o := range s.Ops {
		rows = append(rows, []string{mdCell(o.Op), fmtInt(o.Count), fmtInt(o.Errors), fmtRate(o.Rate), fmtRate(o.ItemRate),
			fmtMS(o.P50MS), fmtMS(o.P90MS), fmtMS(o.P99MS), fmtMS(o.P999MS), fmtMS(o.MaxMS)})
	}
	mdSection(b, "Operations", "No operations recorded.",
		"| Op | Count | Errors | ops/s | items/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", rows)

	renderMemory(b, s)

	if len(s.Notes) > 0 {
		b.WriteString("### Notes\n\n")
		for _, n := range s.Notes {
			fmt.Fprintf(b, "- %s\n", mdText(n))
		}
		b.WriteString("\n")
	}

	if len(plots) > 0 {
		b.WriteString("### Plots\n\n")
		for _, p := range plots {
			switch {
			case p.Err != nil:
				fmt.Fprintf(b, "No %s plot: drawing it failed (%s).\n\n", p.Title, mdText(p.Err.Error()))
			case p.Skipped != "":
				fmt.Fprintf(b, "No %s plot: %s.\n\n", p.Title, p.Skipped)
			default:
				fmt.Fprintf(b, "**%s**\n\n![](%s)\n\n", capitalize(p.Title), p.File)
			}
		}
	}
}

// metMark is ✓ for a goal met, ✗ for one missed, – for no goal.
func metMark(met *bool) string {
	switch {
	case met == nil:
		return "–"
	case *met:
		return "✓"
	}
	return "✗"
}

// renderMemory writes the engine's memory section: peaks over the run and
// whose memory it is.
func renderMemory(b *strings.Builder, s *ScenarioResult) {
	if len(s.Memory) == 0 {
		return
	}
	var heap, rss, goB uint64
	var limit int64
	for _, m := range s.Memory {
		heap, rss, goB = max(heap, m.HeapBytes), max(rss, m.RSSBytes), max(goB, m.GoBytes)
		limit = max(limit, m.LimitBytes)
	}
	b.WriteString("### Engine memory\n\n")
	var parts []string
	if heap > 0 {
		parts = append(parts, "Go heap peak "+fmtMB(heap))
	}
	if goB > 0 {
		parts = append(parts, "Go runtime peak "+fmtMB(goB))
	}
	if rss > 0 {
		parts = append(parts, "RSS peak "+fmtMB(rss))
	}
	if limit > 0 {
		parts = append(parts, "memory limit "+fmtMB(uint64(limit)))
	}
	fmt.Fprintf(b, "%s (%d samples).", capitalize(strings.Join(parts, ", ")), len(s.Memory))
	if s.MemorySource != "" {
		fmt.Fprintf(b, " Measured in %s.", mdText(s.MemorySource))
	}
	b.WriteString("\n\n")
}

// mdSection writes a "### title" section holding a table of rows, whose
// cells are ready for Markdown, under header (the header and alignment
// lines), or the line empty when there are no rows.
func mdSection(b *strings.Builder, title, empty, header string, rows [][]string) {
	fmt.Fprintf(b, "### %s\n\n", title)
	if len(rows) == 0 {
		fmt.Fprintf(b, "%s\n\n", empty)
		return
	}
	b.WriteString(header + "\n")
	for _, r := range rows {
		fmt.Fprintf(b, "| %s |\n", strings.Join(r, " | "))
	}
	b.WriteString("\n")
}

// configValue formats one config value: numbers exactly, strings as they
// are, anything else as compact JSON.
func configValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, bool:
		return fmt.Sprint(v)
	case time.Duration:
		return v.String()
	case fmt.Stringer:
		return v.String()
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

// mdCell makes s safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return mdText(s)
}

// mdText puts s on one line.
func mdText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// fmtInt formats n with thousands separators: 1234567 is "1,234,567".
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtRate formats a rate: whole numbers with thousands separators from 100
// up, three significant digits below.
func fmtRate(v float64) string {
	if math.Abs(v) >= 100 && math.Abs(v) < 1e18 {
		return fmtInt(int64(math.Round(v)))
	}
	return fmtSig(v)
}

// fmtNum formats a headline number the way fmtRate does.
func fmtNum(v float64) string { return fmtRate(v) }

// fmtMS formats milliseconds to three significant digits, with thousands
// separators from 1,000 up.
func fmtMS(v float64) string {
	if math.Abs(v) >= 1000 && math.Abs(v) < 1e18 {
		return fmtInt(int64(math.Round(v)))
	}
	return fmtSig(v)
}

// fmtSig formats v with three significant digits and no exponent.
func fmtSig(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	d := 2 - int(math.Floor(math.Log10(math.Abs(v))))
	d = max(d, 0)
	return strconv.FormatFloat(v, 'f', d, 64)
}

// fmtMB formats a byte count in MiB.
func fmtMB(n uint64) string {
	return fmtInt(int64(math.Round(float64(n)/(1<<20)))) + " MiB"
}
