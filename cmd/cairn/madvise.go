package main

import (
	"os"
	"strings"
	"syscall"
)

// madvFree is the GODEBUG setting the engine's processes run with: the Go
// runtime hands freed heap back to the kernel with MADV_FREE instead of
// MADV_DONTNEED, so that reusing it takes no page fault unless the kernel
// reclaimed it meanwhile (under memory pressure). A page fault on released
// memory costs about 20 µs on the reference VM (its host backs guest memory
// lazily); with MADV_DONTNEED a 30 s mixed run on the 1M/3M graph took
// 156,000 faults, in bursts that stalled the whole process up to 590 ms,
// and 1,400 with MADV_FREE. The price is an RSS that counts freed pages
// until the kernel takes them back.
const madvFree = "madvdontneed=0"

// reexecForMemory re-executes the process (same PID, same arguments) with
// madvFree added to GODEBUG, for the commands that run an engine (serve,
// bench): the runtime reads that setting only at start. It does nothing
// when GODEBUG already sets madvdontneed (either way), and returns only if
// the exec failed, leaving the process as it was.
func reexecForMemory(args []string) {
	if len(args) == 0 || (args[0] != "serve" && args[0] != "bench") {
		return
	}
	godebug := os.Getenv("GODEBUG")
	if strings.Contains(godebug, "madvdontneed=") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if godebug != "" {
		godebug += ","
	}
	env := []string{"GODEBUG=" + godebug + madvFree}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	_ = syscall.Exec(exe, os.Args, env) // returns only on failure
}
