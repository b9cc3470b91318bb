package memtrim

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// childEnv marks the re-executed test binary that runs
// TestDropLazyFree's body under GODEBUG=madvdontneed=0, which the runtime
// reads only at start.
const childEnv = "MEMTRIM_LAZYFREE_CHILD=1"

// rollup returns /proc/self/smaps_rollup's Rss and LazyFree in bytes.
func rollup(t *testing.T) (rss, lazy uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Skipf("no smaps_rollup: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			rss = n << 10
		case "LazyFree:":
			lazy = n << 10
		}
	}
	return rss, lazy
}

// Under madvdontneed=0, the heap debug.FreeOSMemory hands back stays in
// the RSS as LazyFree; DropLazyFree takes it out of the RSS at once and
// leaves the heap in use as it was.
func TestDropLazyFree(t *testing.T) {
	if swap, err := hasSwap(); err != nil || swap {
		t.Skipf("swap on this machine (%v): DropLazyFree does nothing", err)
	}
	if os.Getenv(strings.Split(childEnv, "=")[0]) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDropLazyFree$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv, "GODEBUG=madvdontneed=0")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestDropLazyFree")) || bytes.Contains(out, []byte("--- SKIP")) {
			t.Fatalf("child under madvdontneed=0: %v\n%s", err, out)
		}
		t.Logf("child:\n%s", out)
		return
	}

	// A heap in use, with a pattern to check after the drop.
	keep := make([]byte, 32<<20)
	for i := range keep {
		keep[i] = byte(i * 7)
	}
	dropBig()
	debug.FreeOSMemory()
	rss0, lazy0 := rollup(t)
	if lazy0 < 128<<20 {
		t.Fatalf("after FreeOSMemory under madvdontneed=0: LazyFree %d MiB, want at least 128 (RSS %d MiB)", lazy0>>20, rss0>>20)
	}
	t0 := time.Now()
	dropped, err := DropLazyFree()
	t.Logf("DropLazyFree took %v", time.Since(t0))
	if err != nil || !dropped {
		t.Fatalf("DropLazyFree: %v, %v", dropped, err)
	}
	rss1, lazy1 := rollup(t)
	t.Logf("RSS %d → %d MiB, LazyFree %d → %d MiB", rss0>>20, rss1>>20, lazy0>>20, lazy1>>20)
	if lazy1 > lazy0/8 || rss1 > rss0 || rss0-rss1 < (lazy0-lazy1)/8*7 || rss0-rss1 < 128<<20 {
		t.Fatalf("after DropLazyFree: RSS %d → %d MiB, LazyFree %d → %d MiB; want the LazyFree out of the RSS", rss0>>20, rss1>>20, lazy0>>20, lazy1>>20)
	}
	for i := range keep {
		if keep[i] != byte(i*7) {
			t.Fatalf("heap in use changed at byte %d", i)
		}
	}
	runtime.KeepAlive(keep)
}

// Without madvdontneed=0 the runtime frees with MADV_DONTNEED: nothing
// lazily freed, DropLazyFree does nothing.
func TestDropLazyFreeOffWithoutMadvFree(t *testing.T) {
	t.Setenv("GODEBUG", "madvdontneed=1")
	if dropped, err := DropLazyFree(); dropped || err != nil {
		t.Fatalf("DropLazyFree without madvdontneed=0: %v, %v", dropped, err)
	}
}

func TestAnonWritable(t *testing.T) {
	maps := []byte(`00400000-0317d000 r-xp 00000000 fd:01 123 /usr/bin/cairn
0317d000-051f1000 rw-p 00000000 00:00 0 
3d2ea000-3d30b000 rw-p 00000000 00:00 0                                  [heap]
1feb00000000-1feb02400000 ---p 00000000 00:00 0 
1feb02400000-1feb03c00000 rw-p 00000000 00:00 0 
1feb04000000-1feb08000000 rw-p 00000000 00:00 0                          [anon: Go: heap]
7ff7417fb000-7ff7417fc000 rw-s 00000000 00:05 77 /dev/zero (deleted)
7ffd1000-7ffd2000 rw-p 00000000 00:00 0                                  [stack]
7ff7417fc000-7ff741ffc000 rw-p 00001000 fd:01 124 /usr/lib/libc.so
`)
	got := anonWritable(maps)
	want := [][2]uintptr{{0x0317d000, 0x051f1000}, {0x1feb02400000, 0x1feb03c00000}, {0x1feb04000000, 0x1feb08000000}}
	if !slices.Equal(got, want) {
		t.Fatalf("anonWritable = %x, want %x", got, want)
	}
}
