package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cairn-graph/cairn/bench"
)

// checkScale validates the scale scenario's flags, naming each, and sets
// the scenario's defaults for --graphs and --duration; for another
// scenario it refuses the flags that are scale's only.
func (f *benchFlags) checkScale(scenario string, given map[string]bool) error {
	if scenario != "scale" {
		if given["replicas"] || given["concurrency"] || given["probe"] || given["no-sync-always"] {
			return errors.New("--replicas, --concurrency, --probe and --no-sync-always are for scale")
		}
		return nil
	}
	if !given["graphs"] {
		f.graphs = 100
	}
	if !given["duration"] {
		f.duration = 20 * time.Second
	}
	var errs []error
	if given["rate"] {
		errs = append(errs, errors.New("--rate: scale is a closed loop (--concurrency callers, each one command at a time)"))
	}
	if f.members < 1 {
		errs = append(errs, fmt.Errorf("--members %d: at least 1", f.members))
	}
	if given["replicas"] && (f.scale.Replicas < 1 || f.scale.Replicas > f.members || f.scale.Replicas > 5) {
		errs = append(errs, fmt.Errorf("--replicas %d: want 1 to --members (%d), at most 5", f.scale.Replicas, f.members))
	}
	if f.graphs < 1 {
		errs = append(errs, fmt.Errorf("--graphs %d: at least 1", f.graphs))
	}
	if f.scale.Concurrency < 1 || f.scale.Concurrency > f.graphs {
		errs = append(errs, fmt.Errorf("--concurrency %d: want 1 to --graphs (%d), one command in flight per graph", f.scale.Concurrency, f.graphs))
	}
	if f.scale.Probe == 0 || f.scale.Probe < -1 {
		errs = append(errs, fmt.Errorf("--probe %d: want a positive count, or -1 for no probe", f.scale.Probe))
	}
	if f.duration < time.Second {
		errs = append(errs, fmt.Errorf("--duration %s: at least 1s", f.duration))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return f.scaleConfig("cairn").Validate()
}

// scaleConfig is the scale scenario's config from the flags.
func (f *benchFlags) scaleConfig(exe string) bench.ScaleConfig {
	c := f.scale
	args := f.serveArgs()
	if f.clusterTTL > 0 {
		args = append(args, "--cluster-ttl", f.clusterTTL.String())
	}
	c.Binary, c.DataDir, c.Members, c.Duration, c.Graphs, c.NoBaseline, c.ServeArgs = exe, f.data, f.members, f.duration, f.graphs, f.noBaseline, args
	return c
}

// scaleRun is the scale scenario's run.
func (f *benchFlags) scaleRun() benchRun {
	return benchRun{"scale", func(ctx context.Context, _ bench.Driver, live io.Writer) (*bench.ScenarioResult, error) {
		exe, err := f.executable()
		if err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
		return bench.Scale(ctx, f.scaleConfig(exe), live)
	}}
}
