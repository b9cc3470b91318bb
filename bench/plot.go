package bench

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot size: 8 × 4 inches, 768 × 384 pixels at the PNG renderer's 96 dpi.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 4 * vg.Inch
)

// plotFile is one plot of a scenario: drawn into File, or not drawn
// because Skipped says why, or failed with Err.
type plotFile struct {
	Title   string // "throughput", "latency", ...
	File    string // base name in the report directory
	Skipped string
	Err     error
}

// writePlots draws s's four plots into dir as base-<kind>.png.
func writePlots(dir, base string, s *ScenarioResult) ([]plotFile, error) {
	kinds := []struct {
		title, suffix string
		build         func(*ScenarioResult) (*plot.Plot, string, error)
	}{
		{"throughput", "throughput", throughputPlot},
		{"latency over time", "latency", latencyPlot},
		{"latency distribution", "latency-dist", latencyDistPlot},
		{"engine memory", "memory", memoryPlot},
	}
	if len(s.PerGraph) > 0 {
		kinds = append(kinds, struct {
			title, suffix string
			build         func(*ScenarioResult) (*plot.Plot, string, error)
		}{"per-graph unavailability", "per-graph", perGraphPlot})
	}
	var errs []error
	out := make([]plotFile, 0, len(kinds))
	for _, k := range kinds {
		pf := plotFile{Title: k.title, File: base + "-" + k.suffix + ".png"}
		path := filepath.Join(dir, pf.File)
		data, skipped, err := renderPNG(s, k.build)
		switch {
		case err != nil:
			pf.Err = err
			errs = append(errs, fmt.Errorf("plot %s: %w", pf.File, err))
		case skipped != "":
			pf.Skipped = skipped
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove stale plot: %w", err))
			}
		default:
			if err := writeFileAtomic(path, data); err != nil {
				pf.Err = err
				errs = append(errs, fmt.Errorf("plot %s: %w", pf.File, err))
			}
		}
		out = append(out, pf)
	}
	return out, errors.Join(errs...)
}

// renderPNG builds a plot and renders it to PNG bytes. gonum/plot panics
// on some inputs (values ≤ 0 on a log axis); a panic becomes an error.
func renderPNG(s *ScenarioResult, build func(*ScenarioResult) (*plot.Plot, string, error)) (data []byte, skipped string, err error) {
	defer func() {
		if v := recover(); v != nil {
			data, skipped, err = nil, "", fmt.Errorf("gonum/plot panicked: %v", v)
		}
	}()
	p, skipped, err := build(s)
	if err != nil || p == nil {
		return nil, skipped, err
	}
	w, err := p.WriterTo(plotWidth, plotHeight, "png")
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "", nil
}

// opNames returns the op names of a series in order of first appearance.
func opNames(series []Interval) []string {
	var names []string
	seen := make(map[string]bool)
	for _, iv := range series {
		for _, o := range iv.Ops {
			if !seen[o.Op] {
				seen[o.Op] = true
				names = append(names, o.Op)
			}
		}
	}
	return names
}

// seriesXY collects, for op, the points (AtS, f(o)) of the intervals where
// keep(o) holds.
func seriesXY(series []Interval, op string, keep func(OpInterval) bool, f func(OpInterval) float64) plotter.XYs {
	var xy plotter.XYs
	for _, iv := range series {
		for _, o := range iv.Ops {
			if o.Op == op && keep(o) {
				xy = append(xy, plotter.XY{X: iv.AtS, Y: f(o)})
			}
		}
	}
	return xy
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// addLine adds xy as a line with points in colour i and dash pattern d.
func addLine(p *plot.Plot, name string, xy plotter.XYs, i, d int) error {
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	c := plotutil.Color(i)
	l.Color = c
	l.Dashes = plotutil.Dashes(d)
	p.Add(l)
	if len(xy) > maxMarked {
		p.Legend.Add(name, l)
		return nil
	}
	pts, err := plotter.NewScatter(xy)
	if err != nil {
		return err
	}
	pts.Color = c
	pts.Shape = plotutil.Shape(d)
	pts.Radius = vg.Points(1.5)
	p.Add(pts)
	p.Legend.Add(name, l, pts)
	return nil
}

// maxMarked is the most points a line has its points marked; longer lines
// are drawn plain.
const maxMarked = 60

// readableTicks relabels another ticker's labelled ticks with fmtRate:
// "45,000" rather than "45000.00".
type readableTicks struct{ plot.Ticker }

func (t readableTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := t.Ticker.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = fmtRate(ticks[i].Value)
		}
	}
	return ticks
}

// legendRoom raises a linear y axis's maximum so that the legend, at the
// top, does not hide the highest points.
func legendRoom(p *plot.Plot, lines int) {
	p.Y.Min = 0
	p.Y.Max *= 1 + 0.08*float64(lines)
	p.Y.Tick.Marker = readableTicks{plot.DefaultTicks{}}
}

// throughputPlot draws ops/s per op over time and, for ops that carry
// other than one item per op, items/s.
func throughputPlot(s *ScenarioResult) (*plot.Plot, string, error) {
	if len(s.Series) == 0 {
		return nil, "no intervals recorded", nil
	}
	names := opNames(s.Series)
	if len(names) == 0 {
		return nil, "no ops in any interval", nil
	}
	p := newPlot(s.Scenario+": throughput", "time (s)", "per second")
	all := func(OpInterval) bool { return true }
	lines := 0
	for i, op := range names {
		lines++
		if err := addLine(p, op+" ops/s", seriesXY(s.Series, op, all, func(o OpInterval) float64 { return o.Rate }), i, 0); err != nil {
			return nil, "", err
		}
		// An items/s line only for ops whose items are not simply one per op.
		distinct := seriesXY(s.Series, op, func(o OpInterval) bool { return o.Items != o.Count-o.Errors }, func(o OpInterval) float64 { return o.ItemRate })
		if len(distinct) > 0 {
			if err := addLine(p, op+" items/s", seriesXY(s.Series, op, all, func(o OpInterval) float64 { return o.ItemRate }), i, 1); err != nil {
				return nil, "", err
			}
			lines++
		}
	}
	legendRoom(p, lines)
	return p, "", nil
}

// latencyPlot draws p50 and p99 per op over time (p99 alone for more than
// three ops), on a log scale; intervals without successful ops have no
// point.
func latencyPlot(s *ScenarioResult) (*plot.Plot, string, error) {
	if len(s.Series) == 0 {
		return nil, "no intervals recorded", nil
	}
	p := newPlot(s.Scenario+": latency", "time (s)", "latency (ms)")
	ok := func(o OpInterval) bool { return o.Count > o.Errors }
	lo, hi := math.Inf(1), math.Inf(-1)
	lines := 0
	type quantile struct {
		name string
		f    func(OpInterval) float64
	}
	qs := []quantile{
		{"p50", func(o OpInterval) float64 { return o.P50MS }},
		{"p99", func(o OpInterval) float64 { return o.P99MS }},
	}
	ops := opNames(s.Series)
	if len(ops) > 3 {
		qs = qs[1:] // many ops: p99 alone keeps the legend readable
	}
	for i, op := range ops {
		for d, q := range qs {
			xy := seriesXY(s.Series, op, func(o OpInterval) bool { return ok(o) && q.f(o) > 0 }, q.f)
			if len(xy) == 0 {
				continue
			}
			for _, pt := range xy {
				lo, hi = math.Min(lo, pt.Y), math.Max(hi, pt.Y)
			}
			if err := addLine(p, op+" "+q.name, xy, i, d); err != nil {
				return nil, "", err
			}
			lines++
		}
	}
	if math.IsInf(lo, 1) {
		return nil, "no successful ops in any interval", nil
	}
	logAxis(&p.Y, lo, hi)
	// Room for the legend at the top: its lines take a share f of the
	// height, so the decades shown grow by 1/(1-f).
	f := math.Min(0.045*float64(lines), 0.6)
	p.Y.Max = p.Y.Min * math.Pow(10, math.Log10(p.Y.Max/p.Y.Min)/(1-f))
	return p, "", nil
}

// latencyDistPlot draws latency by percentile: x is 1/(1-q) on a log
// scale, labelled 50%, 90%, 99%...; the maximum sits one decade past the
// last finite percentile.
func latencyDistPlot(s *ScenarioResult) (*plot.Plot, string, error) {
	p := newPlot(s.Scenario+": latency by percentile", "percentile", "latency (ms)")
	lo, hi := math.Inf(1), math.Inf(-1)
	maxX := 0.0
	n := 0
	for i, o := range s.Ops {
		var xy plotter.XYs
		var lastX float64
		for _, pc := range o.Distribution {
			if pc.MS <= 0 || pc.Q < 0 {
				continue
			}
			x := 0.0
			if pc.Q < 100 {
				x = 1 / (1 - pc.Q/100)
				lastX = x
			} else {
				x = math.Max(lastX*10, 10)
			}
			xy = append(xy, plotter.XY{X: x, Y: pc.MS})
			lo, hi = math.Min(lo, pc.MS), math.Max(hi, pc.MS)
			maxX = math.Max(maxX, x)
		}
		if len(xy) == 0 {
			continue
		}
		if err := addLine(p, o.Op, xy, i, 0); err != nil {
			return nil, "", err
		}
		n++
	}
	if n == 0 {
		return nil, "no latency distribution recorded", nil
	}
	p.Legend.Left = true
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = percentileTicks{maxX: maxX}
	p.X.Min, p.X.Max = 1.6, maxX*1.25
	logAxis(&p.Y, lo, hi)
	return p, "", nil
}

// perGraphPlot draws each graph's longest unavailability and p99, the
// graphs ranked by their longest unavailability, on a log scale.
func perGraphPlot(s *ScenarioResult) (*plot.Plot, string, error) {
	gs := slices.Clone(s.PerGraph)
	slices.SortFunc(gs, func(a, b GraphFigure) int { return cmp.Compare(a.LongestS, b.LongestS) })
	var longest, p99 plotter.XYs
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, g := range gs {
		for _, v := range []float64{g.LongestS, g.P99MS / 1000} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		if g.LongestS > 0 {
			longest = append(longest, plotter.XY{X: float64(i + 1), Y: g.LongestS})
		}
		if g.P99MS > 0 {
			p99 = append(p99, plotter.XY{X: float64(i + 1), Y: g.P99MS / 1000})
		}
	}
	if len(longest) == 0 {
		return nil, "no graph took a command", nil
	}
	p := newPlot(s.Scenario+": per graph, ranked by longest unavailability", "graph (rank)", "seconds")
	if err := addLine(p, "longest unavailability", longest, 0, 0); err != nil {
		return nil, "", err
	}
	if len(p99) > 0 {
		if err := addLine(p, "command p99", p99, 1, 1); err != nil {
			return nil, "", err
		}
	}
	p.Legend.Left = true
	logAxis(&p.Y, lo, hi)
	return p, "", nil
}

// memoryPlot draws the engine process's Go heap and RSS over time.
func memoryPlot(s *ScenarioResult) (*plot.Plot, string, error) {
	if len(s.Memory) == 0 {
		return nil, "no memory samples recorded", nil
	}
	p := newPlot(s.Scenario+": engine memory", "time (s)", "MiB")
	var heap, rss plotter.XYs
	for _, m := range s.Memory {
		if m.HeapBytes > 0 { // 0: an RSS-only sample (an engine still starting)
			heap = append(heap, plotter.XY{X: m.AtS, Y: float64(m.HeapBytes) / (1 << 20)})
		}
		if m.RSSBytes > 0 {
			rss = append(rss, plotter.XY{X: m.AtS, Y: float64(m.RSSBytes) / (1 << 20)})
		}
	}
	lines := 0
	if len(heap) > 0 {
		if err := addLine(p, "engine Go heap", heap, 0, 0); err != nil {
			return nil, "", err
		}
		lines++
	}
	if len(rss) > 0 {
		if err := addLine(p, "engine RSS", rss, 1, 1); err != nil {
			return nil, "", err
		}
		lines++
	}
	legendRoom(p, lines)
	return p, "", nil
}

// logAxis puts a on a log scale spanning lo..hi (both > 0) with some room.
func logAxis(a *plot.Axis, lo, hi float64) {
	a.Scale = plot.LogScale{}
	a.Min, a.Max = lo/1.5, hi*1.5
	a.Tick.Marker = logTicks{}
}

// logTicks marks 1, 2 and 5 times each power of ten within the range,
// labelled with three significant digits, and at least the range's ends.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	if lo <= 0 || hi <= 0 {
		return ticks
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v, Label: fmtSig(v)})
			}
		}
	}
	if len(ticks) < 2 {
		ticks = []plot.Tick{{Value: lo, Label: fmtSig(lo)}, {Value: hi, Label: fmtSig(hi)}}
	}
	return ticks
}

// percentileTicks labels the x axis of the percentile plot: 1/(1-q) for
// q = 50%, 90%, 99%, ..., and "max" at maxX.
type percentileTicks struct{ maxX float64 }

func (t percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	labels := []string{"50%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"}
	for i, l := range labels {
		x := 2.0
		if i > 0 {
			x = math.Pow(10, float64(i))
		}
		if x >= t.maxX {
			break
		}
		if x >= lo && x <= hi {
			ticks = append(ticks, plot.Tick{Value: x, Label: l})
		}
	}
	if t.maxX >= lo && t.maxX <= hi {
		ticks = append(ticks, plot.Tick{Value: t.maxX, Label: "max"})
	}
	return ticks
}
