package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/bench"
	"github.com/cairn-graph/cairn/internal/testbin"
)

// TestBenchScaleShort is the short scale run of make test: three members
// (each a Cairn member and a NATS node, replicas 3), a closed loop of
// single-event commands, the hop probe through one member's node and the
// raw publish baseline. Every command must be acknowledged, every reply
// must name where it ran, with owners as cluster.OwnerOf places them, and
// the report must carry each member's CPU and the hop's figures.
func TestBenchScaleShort(t *testing.T) {
	bin := testbin.Cairn(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "scale", "--members", "3", "--duration", "3s", "--concurrency", "8",
		"--graphs", "12", "--probe", "60", "--binary", bin, "--out", out, "--quiet"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench scale: %v\nstderr:\n%s", err, stderr.String())
	}
	rep, figs := readFigures(t, out)
	s := rep.Scenarios[0]
	t.Logf("%v", figs)
	if figs["commands/s"] <= 0 || figs["engine CPU per command"] <= 0 {
		t.Errorf("commands/s %v, CPU per command %v: want both above 0", figs["commands/s"], figs["engine CPU per command"])
	}
	if _, ok := figs["commands retried"]; !ok {
		t.Error("no figure of the commands retried")
	}
	for _, name := range []string{"commands not acknowledged", "probe: owners unlike placement"} {
		if v, ok := figs[name]; !ok || v != 0 {
			t.Errorf("%s: %v (present %v), want 0", name, v, ok)
		}
	}
	for _, name := range []string{"m0 CPU", "m1 CPU", "m2 CPU", "m0 RSS", "m1 RSS", "m2 RSS"} {
		if figs[name] <= 0 {
			t.Errorf("%s: %v, want above 0", name, figs[name])
		}
	}
	// With three members a third of the commands, at random, reach their
	// graph's owner first: both kinds must be there, under load and in
	// the probe.
	for _, phase := range []string{"load", "probe"} {
		if f := figs[phase+": commands forwarded"]; f <= 0 || f >= 100 {
			t.Errorf("%s: %v%% of the commands forwarded: want some, not all", phase, f)
		}
		for _, name := range []string{"local command p50", "forwarded command p50", "forwarded command p99"} {
			if figs[phase+": "+name] <= 0 {
				t.Errorf("%s: %s %v, want above 0", phase, name, figs[phase+": "+name])
			}
		}
		if _, ok := figs[phase+": hop p50"]; !ok {
			t.Errorf("%s: no hop p50", phase)
		}
	}
	if len(s.Baselines) != 1 || s.Baselines[0].Raw <= 0 {
		t.Errorf("baselines %+v: want the raw publish rate", s.Baselines)
	}
	ops := s.Ops
	if len(ops) != 1 || ops[0].Op != bench.OpScaleCommand || ops[0].Errors != 0 || ops[0].Count == 0 {
		t.Errorf("ops %+v: want %s, counted, without errors", ops, bench.OpScaleCommand)
	}

	// Flags, each refusal naming its flag.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "scale", "--concurrency", "0"}, "--concurrency"},
		{[]string{"bench", "scale", "--graphs", "4", "--concurrency", "8"}, "--concurrency"},
		{[]string{"bench", "scale", "--members", "3", "--replicas", "4"}, "--replicas"},
		{[]string{"bench", "scale", "--members", "0"}, "--members"},
		{[]string{"bench", "scale", "--probe", "0"}, "--probe"},
		{[]string{"bench", "scale", "--duration", "100ms"}, "--duration"},
		{[]string{"bench", "scale", "--kill-every", "1s"}, "--kill-every"},
		{[]string{"bench", "scale", "--rate", "100"}, "--rate"},
		{[]string{"bench", "ingest", "--concurrency", "4"}, "scale"},
		{[]string{"bench", "ingest", "--members", "3"}, "--members"},
		{[]string{"bench", "scale", "--driver", "remote"}, "scale"},
	} {
		err := run(context.Background(), c.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.args, err, c.want)
		}
	}
}
