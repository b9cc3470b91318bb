// Package bench is Cairn's load-test harness: workload generators,
// drivers, scenarios, measurement (HDR histograms, open-loop pacing,
// memory sampling, a live line per second) and reports (Markdown, JSON and
// PNG plots). `cairn bench` is its command line; `make bench` runs the
// standard suite with it.
//
// Workloads are seeded graphs: Barabási–Albert and R-MAT (power law),
// uniform random, and random trees, with components drawn from a pool of
// configurable size and Zipf skew. Workload.Generate streams a graph's
// commands (every AddNode, then every ConnectNodes) in batches.
//
// A Driver reaches an engine: InProcess calls an embedded *cairn.Engine
// directly (the least overhead); Remote sends protobuf requests to the
// "cairn" NATS micro service of any running `cairn serve`. Each also
// samples the engine process's memory (Driver.Memory): in-process from
// runtime/metrics (the harness shares the engine's process), remote from
// the engine's own report in the service's stats (EngineMemory); the
// recovery scenario reads its child's /proc/PID/statm and stats.
//
// Scenarios measure one thing each and return a ScenarioResult:
//
//   - Ingest builds graphs concurrently, closed loop (peak throughput) or
//     open loop at a fixed rate, beside raw JetStream publishes with
//     per-subject optimistic concurrency of the same size and concurrency.
//   - Mixed runs a query mix while writes go in at a fixed rate.
//   - Recovery kills a child `cairn serve` with SIGKILL and times its
//     restart until a query sees every acknowledged write.
//   - Replay times the aggregate folded from the stream and a projection
//     caught up, beside raw JetStream reading the same messages.
//   - Peer sets a child `cairn serve` beside a throwaway PostgreSQL
//     (internal/pgserver) on the same graph: the same reads and writes in
//     rounds, every answer compared, each side's latency, server CPU per
//     operation, load time, disk and memory, with the ratios and goals
//     (ScenarioResult.Comparisons).
//   - Scale starts cluster members as child `cairn serve` processes (as
//     Chaos does, killing none) under a closed loop of single-event
//     commands: throughput, each member's CPU and RSS, CPU per command,
//     and the cross-member hop, split by the route each reply names
//     (api.MemberHeader, api.OwnerHeader), beside raw publishes to a
//     stream of the same replicas.
//
// Open-loop latency is measured from each request's scheduled start
// (Pacer), so a stall counts against every request it delays: no
// coordinated omission. Several ScenarioResults make a Report, which
// Report.Write turns into report.md, report.json and plots.
//
//	eng, _ := cairn.Open(ctx, cfg)
//	w := bench.DefaultWorkload()
//	res, err := bench.Ingest(ctx, bench.InProcess(eng), bench.IngestConfig{Workload: w, Baseline: true}, os.Stderr)
//	rep := &bench.Report{Title: "ingest", Started: res.Started, Machine: bench.CurrentMachine(), Scenarios: []bench.ScenarioResult{*res}}
//	err = rep.Write("bench-report")
package bench
