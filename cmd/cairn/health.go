package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/cairn-graph/cairn/actors"
)

const healthUsage = `Usage:
  cairn health [client flags]

health asks the engine's "cairn" micro service for the health of its
projections (the query endpoint's stats, as 'nats micro stats cairn' shows
them) and prints
  projections: 2 shards, applied up to seq 57, 0 failures, cache 10 hits / 3 misses
then one line per graph whose projection stopped at a transaction it could
not apply (its queries answer INTERNAL until the engine restarts). It exits
0 when no projection stopped, 1 otherwise. --json prints the stats object:
  {"shards":..,"applied_seq":..,"cache_hits":..,"cache_misses":..,
   "projection_failures":..,"stopped_graphs":{"g":"..."}}
`

func runHealth(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("health")
	var c clientFlags
	c.register(fs, "health", 10*time.Second)
	if _, err := parseArgs(fs, "health", args); err != nil {
		return err
	}
	msg, err := c.requestRaw(ctx, "$SRV.STATS."+actors.ServiceName, "a stats request", nil, "")
	if err != nil {
		return err
	}
	var stats struct {
		Endpoints []struct {
			micro.EndpointStats
			Data *actors.ProjectionHealth `json:"data"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		return fmt.Errorf("the engine's stats are not JSON: %w", err)
	}
	var h *actors.ProjectionHealth
	for _, e := range stats.Endpoints {
		if e.Name == "query" && e.Data != nil {
			h = e.Data
		}
	}
	if h == nil {
		return errors.New("the engine serves no queries (its stats carry no projection health)")
	}
	if c.json {
		if err := writeJSON(stdout, h); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "projections: %d shards, applied up to seq %d, %d failures, cache %d hits / %d misses\n",
			h.Shards, h.AppliedSeq, h.Failures, h.CacheHits, h.CacheMisses)
		for _, g := range slices.Sorted(maps.Keys(h.Stopped)) {
			fmt.Fprintf(stdout, "  stopped: %s\n", h.Stopped[g])
		}
	}
	if len(h.Stopped) > 0 {
		return fmt.Errorf("%d graph projections stopped", len(h.Stopped))
	}
	return nil
}
