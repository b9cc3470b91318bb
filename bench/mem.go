package bench

import (
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"
)

// heapMetric is runtime.MemStats.HeapAlloc as runtime/metrics names it;
// reading it does not stop the world.
const heapMetric = "/memory/classes/heap/objects:bytes"

// ReadMem returns the process's memory now: HeapBytes is the Go heap in
// live and not yet swept objects (runtime.MemStats.HeapAlloc), RSSBytes the
// resident set size from /proc/self/statm, 0 where that file is missing.
// At is zero; the caller places the sample in time. It is cheap enough to
// call every second during a run.
func ReadMem() MemSample {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	var m MemSample
	if s[0].Value.Kind() == metrics.KindUint64 {
		m.HeapBytes = s[0].Value.Uint64()
	}
	m.RSSBytes = readRSS()
	return m
}

// readRSS returns the resident set size from /proc/self/statm (its second
// field, in pages), or 0 where it cannot be read.
func readRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
