// Package bench will hold the load-test harness: workload generators,
// drivers, HDR histograms and reports.
//
// Today the write-path benchmarks live beside the code they measure, as Go
// benchmarks (`make bench`): persistence (CID encoding) and actors (commands
// end to end, each beside raw JetStream publish with per-subject optimistic
// concurrency).
package bench
