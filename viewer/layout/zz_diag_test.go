package layout

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZDiag(t *testing.T) {
	key, err := os.ReadFile("/tmp/key100k.bin")
	if err != nil {
		_, key = bench100K()
		os.WriteFile("/tmp/key100k.bin", key, 0o644)
	}
	l, _ := Unmarshal(key)
	var tr tree
	ids := make([]int32, 100000)
	for i := range ids {
		ids[i] = int32(i)
	}
	m := l.masses()
	for range 3 {
		c0, t0 := cpuNow(), time.Now()
		tr.build(ids, l.x, l.y, m)
		c1, t1 := cpuNow(), time.Now()
		for _, i := range ids {
			tr.repel(i, l.x[i], l.y[i], m[i], 2, 1.44, 0, 0)
		}
		t.Logf("build cpu %v wall %v; repel cpu %v wall %v", c1-c0, t1.Sub(t0), cpuNow()-c1, time.Since(t1))
	}
}

func TestZZRelax(t *testing.T) {
	key, _ := os.ReadFile("/tmp/key100k.bin")
	for range 3 {
		l, _ := Unmarshal(key)
		c0, t0 := cpuNow(), time.Now()
		l.Relax(1)
		t.Logf("relax1 cpu %v wall %v", cpuNow()-c0, time.Since(t0))
	}
}
