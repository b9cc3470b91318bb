// Package memlimit parses memory sizes, finds how much memory the process
// may use (its cgroup's limit, else the machine's memory) and reads a
// process's resident set size, for `cairn serve --memory-limit` and for
// the engine's and the harness's memory reports.
package memlimit

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// Min is the smallest limit Parse accepts: the engine with its embedded
// NATS server needs more than this to run at all.
const Min = 64 << 20

// DefaultFraction is the share of the available memory (see Available)
// that Default returns: room for what the Go runtime does not count
// (thread stacks outside the heap, the kernel's page cache for the event
// store's files is not the process's) and for a margin.
const DefaultFraction = 0.75

var units = []struct {
	name string
	mult float64
}{
	{"B", 1},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
}

// ErrSize is what Parse's errors wrap.
var ErrSize = errors.New("not a memory size")

// Parse reads a memory size: a number, maybe with a fraction, and a unit,
// B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of
// 1024), case-insensitive, spaces allowed between them; a bare number is
// bytes. "off" returns math.MaxInt64 (no limit). The size must be at least
// Min. Examples: "2GiB", "1500MB", "1.5 GiB", "3221225472".
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "off") {
		return math.MaxInt64, nil
	}
	if t == "" {
		return 0, fmt.Errorf("%w: empty (want a size like 2GiB or 1500MB, or off)", ErrSize)
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.' || t[i] == '-' || t[i] == '+') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	v, err := strconv.ParseFloat(num, 64)
	if num == "" || err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: %q does not start with a number (want a size like 2GiB or 1500MB, or off)", ErrSize, s)
	}
	mult := 0.0
	if unit == "" {
		mult = 1
	}
	for _, u := range units {
		if strings.EqualFold(unit, u.name) {
			mult = u.mult
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("%w: %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", ErrSize, s, unit)
	}
	if v <= 0 {
		return 0, fmt.Errorf("%w: %q: must be positive (off turns the limit off)", ErrSize, s)
	}
	b := v * mult
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%w: %q is too large", ErrSize, s)
	}
	if b < Min {
		return 0, fmt.Errorf("%w: %q is below the smallest limit, %s", ErrSize, s, Format(Min))
	}
	return int64(b), nil
}

// Format writes n bytes in binary units with up to one decimal ("1.5 GiB",
// "64 MiB", "512 B"); math.MaxInt64 (no limit) is "off".
func Format(n int64) string {
	if n == math.MaxInt64 {
		return "off"
	}
	f := float64(n)
	for _, u := range []struct {
		name string
		mult float64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if f >= u.mult {
			return strings.TrimSuffix(strconv.FormatFloat(f/u.mult, 'f', 1, 64), ".0") + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}

// cgroup files that hold a memory limit: v2, then v1.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// Available returns how much memory this process may use and where that
// comes from: its cgroup's memory limit when one is set (and below the
// machine's memory), else the machine's memory (MemTotal in /proc/meminfo).
// It returns 0 and "" where neither can be read (outside Linux).
func Available() (bytes int64, source string) {
	total := memTotal()
	for _, f := range cgroupFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v <= 0 { // "max": no limit
			continue
		}
		if total == 0 || v < total {
			return v, "the cgroup's memory limit (" + f + ")"
		}
	}
	if total > 0 {
		return total, "the machine's memory (/proc/meminfo)"
	}
	return 0, ""
}

// Default returns DefaultFraction of Available, at least Min, and its
// source; math.MaxInt64 (no limit) and "" where Available knows nothing.
func Default() (int64, string) {
	avail, src := Available()
	if avail == 0 {
		return math.MaxInt64, ""
	}
	return max(int64(float64(avail)*DefaultFraction), Min), fmt.Sprintf("%.0f%% of %s, %s", DefaultFraction*100, src, Format(avail))
}

// memTotal returns MemTotal from /proc/meminfo in bytes, 0 where unknown.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("MemTotal:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// RSS returns the resident set size of process pid (0: this process) from
// /proc/<pid>/statm, in bytes, or an error where that cannot be read (the
// process is gone, or not Linux).
func RSS(pid int) (uint64, error) {
	name := "/proc/self/statm"
	if pid != 0 {
		name = "/proc/" + strconv.Itoa(pid) + "/statm"
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, fmt.Errorf("%s: %q has no resident field", name, b)
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return pages * uint64(os.Getpagesize()), nil
}
