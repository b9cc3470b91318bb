package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/memlimit"
)

const healthUsage = `Usage:
  cairn health [client flags]

health asks the engine's "cairn" micro service for the health of its
projections (the query endpoint's stats, as 'nats micro stats cairn' shows
them) and prints
  projections: 2 shards, applied up to seq 57, 0 failures, cache 10 hits / 3 misses
  snapshots: restored seq 40 (2 graphs, 3.1 ms), 0 fallbacks; 4 rounds, 0 failed, last seq 57 (5120 bytes, 1 graphs, 2.5 ms, blocked up to 0.3 ms)
  time travel: 3 queries, 1 view hits, 2 builds (1 from snapshot, 0 from view), 0 bad snapshots, 2 cached views, last build 1.2 ms, 0 refused (no build room)
preceded by whether the engine is ready (what serve's /readyz says: NATS
connected, the projections restored, the cluster member started), the
graph grains' counters and the engine process's memory (the command
endpoint's stats):
  ready: serving commands and queries
  grains: 1 active, 2 activations (1 from a snapshot, 0 snapshot fallbacks), 3 snapshots written (0 failed, 2048 bytes, blocked up to 0.2 ms), replayed 4 transactions, 0 append conflicts, 0 activations waited their turn (up to 1 at once)
  memory: rss 310.5 MiB, Go heap 120.2 MiB (in use 131 MiB, the Go runtime 180.4 MiB), 12 GCs, limit 1.5 GiB, GOGC 100
(restored seq 0: the projections rebuilt from the stream start), for a
member of a cluster the read models it holds (its graphs') and the
adoptions that brought them there:
  partition: 7 read models held, 9 adoptions (7 from a snapshot, 0 failed, 2 waited their turn, 0 refolded), last 3.1 ms, longest 36.0 ms, 1 dropped, manifests projections/<member id>
then one line on the audit of the event stream (rounds, the last one's duration, the
graphs quarantined for data loss), then one line per graph whose projection
stopped at a transaction it could not apply or check (DATA_LOSS: its stored
history failed a check, see cairn repair; otherwise a read-model failure,
INTERNAL, until the engine restarts) and per graph whose grain refused its
history. It exits 0 when none stopped, 1 otherwise. --json prints the stats
object:
  {"ready":true,"not_ready":["..",..],
   "shards":..,"applied_seq":..,"cache_hits":..,"cache_misses":..,
   "cache_evictions":..,"chain_check_failures":..,"projection_failures":..,"stopped_graphs":{"g":"..."},"data_loss_graphs":..,
   "stream_lost":"..","audits":..,"last_audit_ms":..,
   "snapshots":{"restored_seq":..,"restored_graphs":..,"restore_ms":..,"fallbacks":..,
                "rounds":..,"failures":..,"last_seq":..,"last_time":..,"last_bytes":..,
                "last_graphs_written":..,"last_round_ms":..,"last_block_ms":..,"max_block_ms":..},
   "time_travel":{"queries":..,"view_hits":..,"builds":..,"from_snapshot":..,"from_view":..,
                  "bad_snapshots":..,"cached_views":..,"last_build_ms":..,"base_ms":..,"replay_ms":..,..},
   "partition":{"graphs":..,"adoptions":..,"adopted_from_snapshot":..,"adoption_failures":..,
                "adoption_waits":..,"last_adoption_ms":..,"max_adoption_ms":..,"dropped":..,"adoption_refolds":..,
                "manifest_series":".."},  (cluster members only)
   "grains":{"active":..,"activations":..,"snapshot_loads":..,"snapshot_fallbacks":..,
             "snapshots_written":..,"snapshot_write_errors":..,"snapshot_bytes":..,
             "snapshot_block_ms_total":..,"snapshot_block_ms_max":..,
             "replayed_transactions":..,"replayed_events":..,"append_conflicts":..,
             "activation_waits":..,"activations_at_once_max":..,
             "quarantined_graphs":{"g":".."},
             "warm_start":{"decoded":..,"failed":..,"hits":..,"misses":..,"decode_ms":..,
                           "copies_saved":..,"copy_save_errors":..}},
   "memory":{"rss_bytes":..,"heap_alloc_bytes":..,"heap_in_use_bytes":..,"go_bytes":..,
             "gc_cycles":..,"limit_bytes":..,"gogc":..}}
(append conflicts: appends the event store refused because another
activation of the graph, on this member or another, had written first; the
grain reloaded what it wrote and decided again. Above 0, two activations of
a graph lived at once for a while, as cluster churn can cause.)
(memory: the engine's resident set size, its Go heap in live objects and in
spans in use, all the memory its Go runtime holds, completed garbage
collections, the memory limit (0: none; see cairn help serve) and GOGC, -1
for off.)
`

func runHealth(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("health")
	var c clientFlags
	c.register(fs, "health", 10*time.Second)
	if _, err := parseArgs(fs, "health", args); err != nil {
		return err
	}
	endpoints, err := c.endpointStats(ctx, "query", "command")
	if err != nil {
		return err
	}
	var h *api.ProjectionHealth
	var grains *api.GrainHealth
	var mem *api.MemoryHealth
	var ready *api.ReadyHealth
	for name, data := range endpoints {
		if len(data) == 0 || string(data) == "null" {
			continue
		}
		var err error
		switch name {
		case "query":
			h = &api.ProjectionHealth{}
			err = json.Unmarshal(data, h)
		case "command":
			var cs struct {
				*api.GrainHealth
				// Pointers: an engine from before the memory (readiness)
				// report has none.
				Memory *api.MemoryHealth `json:"memory"`
				Ready  *api.ReadyHealth  `json:"ready"`
			}
			err = json.Unmarshal(data, &cs)
			grains, mem, ready = cs.GrainHealth, cs.Memory, cs.Ready
		}
		if err != nil {
			return fmt.Errorf("the engine's %s endpoint stats: %w", name, err)
		}
	}
	if h == nil {
		return errors.New("the engine serves no queries (its stats carry no projection health)")
	}
	if c.json {
		out := struct {
			*api.ProjectionHealth
			Grains *api.GrainHealth  `json:"grains,omitempty"`
			Memory *api.MemoryHealth `json:"memory,omitempty"`
			*api.ReadyHealth
		}{h, grains, mem, ready}
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else {
		if r := ready; r != nil {
			if r.Ready {
				fmt.Fprintln(stdout, "ready: serving commands and queries")
			} else {
				fmt.Fprintf(stdout, "not ready: %s\n", strings.Join(r.NotReady, "; "))
			}
		}
		if g := grains; g != nil {
			fmt.Fprintf(stdout, "grains: %d active, %d activations (%d from a snapshot, %d snapshot fallbacks), %d snapshots written (%d failed, %d bytes, blocked up to %.1f ms), replayed %d transactions, %d append conflicts, %d activations waited their turn (up to %d at once)\n",
				g.Active, g.Activations, g.SnapshotLoads, g.SnapshotFallbacks, g.SnapshotsWritten, g.SnapshotWriteErrors, g.SnapshotBytes, g.SnapshotBlockMsMax, g.ReplayedTransactions, g.AppendConflicts,
				g.ActivationWaits, g.ActivationsAtOnce)
			if w := g.Warm; w != nil {
				fmt.Fprintf(stdout, "warm start: %d local snapshot copies decoded in %.0f ms (%d failed), %d taken, %d not of the snapshot loaded; %d copies written since (%d failed)\n",
					w.Decoded, w.DecodeMs, w.Failed, w.Hits, w.Misses, w.Saved, w.SaveErrors)
			}
		}
		if m := mem; m != nil {
			lim := "none"
			if m.LimitBytes > 0 {
				lim = memlimit.Format(m.LimitBytes)
			}
			gogc := strconv.FormatInt(m.GOGC, 10)
			if m.GOGC < 0 {
				gogc = "off"
			}
			fmt.Fprintf(stdout, "memory: rss %s, Go heap %s (in use %s, the Go runtime %s), %d GCs, limit %s, GOGC %s\n",
				memlimit.Format(int64(m.RSSBytes)), memlimit.Format(int64(m.HeapAllocBytes)), memlimit.Format(int64(m.HeapInUseBytes)),
				memlimit.Format(int64(m.GoBytes)), m.GCCycles, lim, gogc)
		}
		fmt.Fprintf(stdout, "projections: %d shards, applied up to seq %d, %d failures, cache %d hits / %d misses\n",
			h.Shards, h.AppliedSeq, h.Failures, h.CacheHits, h.CacheMisses)
		s, tt := h.Snapshots, h.TimeTravel
		fmt.Fprintf(stdout, "snapshots: restored seq %d (%d graphs, %.1f ms), %d fallbacks; %d rounds, %d failed, last seq %d (%d bytes, %d graphs, %.1f ms, blocked up to %.1f ms)\n",
			s.RestoredSeq, s.RestoredGraphs, s.RestoreMs, s.Fallbacks, s.Rounds, s.Failures, s.LastSeq, s.LastBytes, s.LastGraphs, s.LastRoundMs, s.MaxBlockMs)
		fmt.Fprintf(stdout, "time travel: %d queries, %d view hits, %d builds (%d from snapshot, %d from view), %d bad snapshots, %d cached views, last build %.1f ms, %d refused (no build room)\n",
			tt.Queries, tt.ViewHits, tt.Builds, tt.FromSnapshot, tt.FromView, tt.BadSnapshots, tt.Cached, tt.LastBuildMs, tt.Refused)
		if p := h.Partition; p != nil {
			fmt.Fprintf(stdout, "partition: %d read models held, %d adoptions (%d from a snapshot, %d failed, %d waited their turn, %d refolded), last %.1f ms, longest %.1f ms, %d dropped, manifests %s\n",
				p.Graphs, p.Adoptions, p.FromSnapshot, p.Failures, p.Waits, p.Refolds, p.LastAdoptMs, p.MaxAdoptMs, p.Dropped, p.Series)
		}
		fmt.Fprintf(stdout, "audit: %d rounds, last %.1f ms, %d graphs quarantined for data loss\n", h.Audits, h.LastAuditMs, h.DataLoss)
		if h.StreamLost != "" {
			fmt.Fprintf(stdout, "  DATA LOSS: %s\n", h.StreamLost)
		}
		for _, g := range slices.Sorted(maps.Keys(h.Stopped)) {
			fmt.Fprintf(stdout, "  stopped: %s\n", h.Stopped[g])
		}
		if g := grains; g != nil {
			for _, id := range slices.Sorted(maps.Keys(g.Quarantined)) {
				fmt.Fprintf(stdout, "  quarantined grain %s: %s\n", id, g.Quarantined[id])
			}
		}
	}
	switch {
	case h.StreamLost != "":
		return fmt.Errorf("the event stream is gone: %s", h.StreamLost)
	case len(h.Stopped) > 0:
		return fmt.Errorf("%d graph projections stopped (%d for data loss)", len(h.Stopped), h.DataLoss)
	case grains != nil && len(grains.Quarantined) > 0:
		return fmt.Errorf("%d graphs quarantined by their grains", len(grains.Quarantined))
	}
	return nil
}
