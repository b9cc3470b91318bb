// Package madvfree re-executes a cairn process that runs an engine with
// madvdontneed=0 added to GODEBUG, as early as it can: importing it runs
// its init, which the Go specification orders before the init of every
// package whose path sorts after it or that depends on a package that does
// (protobuf, gRPC, NATS, protoactor): 13 ms into the process
// (GODEBUG=inittrace=1). The exec costs 20-80 ms at start all the same
// (cairn serve's ready line after 105-170 ms, against 82-89 ms without),
// most of it the new process image's fresh pages.
//
// With madvdontneed=0 the Go runtime hands freed heap back to the kernel
// with MADV_FREE instead of MADV_DONTNEED, so that reusing it takes no page
// fault unless the kernel reclaimed it meanwhile (under memory pressure). A
// page fault on released memory costs about 20 µs on the reference VM (its
// host backs guest memory lazily); with MADV_DONTNEED a 30 s mixed run on
// the 1M/3M graph took 156,000 faults, in bursts that stalled the whole
// process up to 590 ms, and 1,400 with MADV_FREE. The price is an RSS that
// counts freed pages until the kernel takes them back; after a burst,
// cairn serve has the kernel take them at once (internal/memtrim's
// DropLazyFree), and the heap regrows with faults that one time. The
// runtime reads the setting only at start, hence the exec.
package madvfree

import (
	"os"
	"strings"
	"syscall"
)

// Setting is what the engine's processes add to GODEBUG.
const Setting = "madvdontneed=0"

func init() {
	if len(os.Args) < 2 || (os.Args[1] != "serve" && os.Args[1] != "bench") {
		return
	}
	reexec()
}

// reexec re-executes the process (same PID, same arguments) with Setting
// added to GODEBUG. It does nothing when GODEBUG already sets madvdontneed
// (either way), and returns only if the exec failed, leaving the process
// as it was.
func reexec() {
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
	env := []string{"GODEBUG=" + godebug + Setting}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	_ = syscall.Exec(exe, os.Args, env) // returns only on failure
}
