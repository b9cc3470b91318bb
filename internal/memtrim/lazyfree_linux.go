package memtrim

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// madvPageout is Linux's MADV_PAGEOUT (5.4 on): reclaim the range's pages
// now, as memory pressure would.
const madvPageout = 21

// DropLazyFree makes the kernel take back at once the pages this process
// freed with MADV_FREE (GODEBUG=madvdontneed=0, internal/madvfree), which
// otherwise stay in its RSS until the machine runs short of memory. It
// asks MADV_PAGEOUT of every private, writable, anonymous mapping: a
// lazily freed page is clean and is dropped without I/O; a page in use is
// left where it is, since there is no swap to put it in. With swap it
// does nothing (a page in use would be swapped out) and returns false, as
// it does where the runtime frees with MADV_DONTNEED (nothing lazily
// freed to drop) or the kernel refuses MADV_PAGEOUT. It returns the
// first error other than a mapping that went away meanwhile.
func DropLazyFree() (bool, error) {
	if !strings.Contains(os.Getenv("GODEBUG"), "madvdontneed=0") {
		return false, nil
	}
	if swap, err := hasSwap(); err != nil || swap {
		return false, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return false, err
	}
	for _, r := range anonWritable(maps) {
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, r[0], r[1]-r[0], madvPageout)
		switch errno {
		case 0, syscall.ENOMEM: // ENOMEM: unmapped since the read
		case syscall.EINVAL: // no MADV_PAGEOUT here (before 5.4), or a locked mapping
			return false, nil
		default:
			return false, errno
		}
	}
	return true, nil
}

// anonWritable returns the [start, end) address ranges of the private,
// writable mappings without a file in a /proc/PID/maps text: unnamed, or
// named with PR_SET_VMA_ANON_NAME ("[anon:...]", as the Go runtime names
// its heap where the kernel allows), not [heap] or [stack].
func anonWritable(maps []byte) [][2]uintptr {
	var out [][2]uintptr
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode [path]
		f := strings.Fields(sc.Text())
		if len(f) < 5 || len(f[1]) != 4 || !strings.HasPrefix(f[1], "rw") || f[1][3] != 'p' || f[4] != "0" ||
			(len(f) > 5 && !strings.HasPrefix(f[5], "[anon:")) {
			continue
		}
		start, end, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		s, err1 := strconv.ParseUint(start, 16, 64)
		e, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil || e <= s {
			continue
		}
		out = append(out, [2]uintptr{uintptr(s), uintptr(e)})
	}
	return out
}

// hasSwap reports whether the machine has swap space (/proc/meminfo's
// SwapTotal above 0).
func hasSwap() (bool, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "SwapTotal:"); ok {
			f := strings.Fields(rest)
			return len(f) == 0 || f[0] != "0", nil
		}
	}
	return false, errors.New("/proc/meminfo: no SwapTotal line")
}
