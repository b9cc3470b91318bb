package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// What the peer scenario reads about server processes from /proc: the CPU
// time they used and their memory. Linux only; elsewhere these fail.

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const userHZ = 100

// procStat is what peer reads from one /proc/<pid>/stat line.
type procStat struct {
	ppid int
	// cpu is utime+stime; children adds cutime+cstime, the CPU time of its
	// children that exited and were waited for.
	cpu, children time.Duration
}

// parseProcStat parses a /proc/<pid>/stat line. The command name, field 2,
// is in parentheses and may hold spaces and parentheses itself: the fields
// that follow are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14-17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	var n [5]int64
	for j, k := range []int{1, 11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("field %d: %w", k+3, err)
		}
		n[j] = v
	}
	tick := time.Second / userHZ
	return procStat{ppid: int(n[0]), cpu: time.Duration(n[1]+n[2]) * tick, children: time.Duration(n[3]+n[4]) * tick}, nil
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	st, err := parseProcStat(b)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// childPids returns the live children of pid.
func childPids(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		st, err := readProcStat(p)
		if err == nil && st.ppid == pid {
			kids = append(kids, p)
		}
	}
	return kids, nil
}

// processCPU returns the CPU time (user plus system) used so far by the
// process pid and, with tree, by its children too, live or exited: a
// server made of a postmaster and its backends (PostgreSQL) counts whole,
// including backends that came and went.
func processCPU(pid int, tree bool) (time.Duration, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, fmt.Errorf("cpu of process %d: %w", pid, err)
	}
	if !tree {
		return st.cpu, nil
	}
	total := st.cpu + st.children
	kids, err := childPids(pid)
	if err != nil {
		return 0, fmt.Errorf("children of process %d: %w", pid, err)
	}
	for _, k := range kids {
		if ks, err := readProcStat(k); err == nil { // a child may exit meanwhile
			total += ks.cpu
		}
	}
	return total, nil
}

// procMem is a process's (or a process tree's) memory.
type procMem struct {
	// RSS is the resident set; PSS the proportional set size, which shares
	// each shared page among the processes mapping it, so that a tree's
	// PSS adds up to what it holds (PostgreSQL's shared buffers counted
	// once, not once per backend).
	RSS, PSS uint64
	// LazyFree is the part of RSS freed with MADV_FREE (the engine's Go
	// runtime hands heap back so: internal/madvfree) that the kernel has
	// not taken back yet; it does when it needs the memory, without I/O.
	LazyFree uint64
}

// parseSmapsRollup reads the Rss, Pss and LazyFree (0 when absent) lines
// of /proc/<pid>/smaps_rollup.
func parseSmapsRollup(b []byte) (procMem, error) {
	var m procMem
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "Rss" && k != "Pss" && k != "LazyFree") {
			continue
		}
		num, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		kb, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return procMem{}, fmt.Errorf("%s: %w", k, err)
		}
		switch k {
		case "Rss":
			m.RSS = kb * 1024
			seen++
		case "Pss":
			m.PSS = kb * 1024
			seen++
		default:
			m.LazyFree = kb * 1024
		}
	}
	if seen < 2 {
		return procMem{}, errors.New("no Rss and Pss lines")
	}
	return m, nil
}

// processMem returns the memory of pid and, with tree, of its live
// children added.
func processMem(pid int, tree bool) (procMem, error) {
	read := func(p int) (procMem, error) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/smaps_rollup")
		if err != nil {
			return procMem{}, err
		}
		return parseSmapsRollup(b)
	}
	m, err := read(pid)
	if err != nil {
		return procMem{}, fmt.Errorf("memory of process %d: %w", pid, err)
	}
	if !tree {
		return m, nil
	}
	kids, err := childPids(pid)
	if err != nil {
		return procMem{}, fmt.Errorf("children of process %d: %w", pid, err)
	}
	for _, k := range kids {
		if km, err := read(k); err == nil {
			m.RSS += km.RSS
			m.PSS += km.PSS
		}
	}
	return m, nil
}

// dirSize returns the total size of the regular files under dir.
func dirSize(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walk (a temporary file)
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += uint64(fi.Size())
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return n, nil
}

// loadAverage is the machine's 1, 5 and 15 minute load averages, as
// /proc/loadavg gives them ("" where it cannot be read): on a shared
// machine it says how much the figures were disturbed.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
