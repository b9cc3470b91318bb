package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/cairn-graph/cairn"
)

// CurrentMachine describes the machine and build this process runs on:
// host name, OS, architecture, CPU count and model, total memory, Go
// version and, when the binary was built with VCS stamping, the commit
// (with "-dirty" when the tree had local changes). Whatever cannot be
// found (the CPU model and memory outside Linux, for example) is left zero.
func CurrentMachine() Machine {
	m := Machine{
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		CPUs:      runtime.NumCPU(),
		GoVersion: runtime.Version(),
	}
	if h, err := os.Hostname(); err == nil {
		m.Hostname = h
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(b, "model name")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryB = parseMemTotal(procField(b, "MemTotal"))
	}
	m.Commit = cairn.Revision()
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file with the given key, or "".
func procField(b []byte, key string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// parseMemTotal turns /proc/meminfo's "16318612 kB" into bytes, 0 when it
// cannot.
func parseMemTotal(v string) uint64 {
	num, unit, _ := strings.Cut(v, " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0
	}
	if strings.TrimSpace(unit) == "kB" {
		n *= 1024
	}
	return n
}
