package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/memlimit"
)

// MemSampler returns the engine's memory now; the Meter places the sample
// in time (At). Drivers' Memory methods are samplers.
type MemSampler func(ctx context.Context) (MemSample, error)

// memSampleOf turns the engine's own report into a sample.
func memSampleOf(m api.MemoryHealth) MemSample {
	return MemSample{HeapBytes: m.HeapAllocBytes, RSSBytes: m.RSSBytes, GoBytes: m.GoBytes, GCCycles: m.GCCycles, LimitBytes: m.LimitBytes}
}

// ReadMem returns this process's memory now (actors.ReadMemory): the
// engine's when it runs in this process (the in-process driver), which
// the harness shares. It does not stop the world: cheap enough every
// second.
func ReadMem() MemSample { return memSampleOf(actors.ReadMemory()) }

// EngineMemory asks the engine behind nc for its own memory: the "cairn"
// micro service's stats, whose command endpoint carries the engine
// process's RSS, Go heap, GC count and memory limit (api.CommandStats).
// It fails when no engine answers within ctx, or when the engine's stats
// carry no memory (an engine from before the report).
func EngineMemory(ctx context.Context, nc *nats.Conn) (MemSample, error) {
	eps, err := api.EndpointStats(ctx, nc, "command")
	if err != nil {
		return MemSample{}, fmt.Errorf("the engine's stats: %w", err)
	}
	if data, ok := eps["command"]; ok {
		var cs struct {
			Memory *api.MemoryHealth `json:"memory"`
		}
		if err := json.Unmarshal(data, &cs); err != nil {
			return MemSample{}, fmt.Errorf("the engine's command endpoint stats: %w", err)
		}
		if cs.Memory != nil {
			return memSampleOf(*cs.Memory), nil
		}
	}
	return MemSample{}, errors.New("the engine's stats carry no memory report")
}

// childMemory samples a child `cairn serve` (the recovery scenario) that
// the harness restarts: its RSS from /proc/<pid>/statm, its Go heap, GC
// count and limit from its stats over a connection of the sampler's own.
// set names the current child; between two children (pid 0) there is
// nothing to sample.
type childMemory struct {
	mu  sync.Mutex
	pid int
	url string

	// sampling serialises sample (the Meter's ticks and SampleMem) and
	// guards the connection.
	sampling sync.Mutex
	nc       *nats.Conn
	ncURL    string
}

func (c *childMemory) set(pid int, url string) {
	c.mu.Lock()
	c.pid, c.url = pid, url
	c.mu.Unlock()
}

func (c *childMemory) sample(ctx context.Context) (MemSample, error) {
	c.sampling.Lock()
	defer c.sampling.Unlock()
	c.mu.Lock()
	pid, url := c.pid, c.url
	c.mu.Unlock()
	if pid == 0 {
		return MemSample{}, errors.New("no engine running")
	}
	rss, rssErr := memlimit.RSS(pid)
	if c.ncURL != url {
		c.closeConn()
		// No reconnects: a killed child's successor listens elsewhere.
		nc, err := nats.Connect(url, nats.Timeout(500*time.Millisecond), nats.Name("cairn-bench-memory"), nats.NoReconnect())
		if err == nil {
			c.nc, c.ncURL = nc, url
		}
	}
	var m MemSample
	var err error = errors.New("not connected")
	if c.nc != nil {
		m, err = EngineMemory(ctx, c.nc)
	}
	if rssErr == nil {
		m.RSSBytes = rss // the kernel's word, at this very moment
	}
	if err != nil && rssErr != nil {
		return MemSample{}, errors.Join(err, rssErr)
	}
	return m, nil
}

func (c *childMemory) close() {
	c.sampling.Lock()
	defer c.sampling.Unlock()
	c.closeConn()
}

func (c *childMemory) closeConn() {
	if c.nc != nil {
		c.nc.Close()
		c.nc, c.ncURL = nil, ""
	}
}

// memorySource says whose memory a driver's samples are, for the report.
func memorySource(d Driver) string {
	if d.Name() == "inprocess" {
		return "the engine's process (in-process driver: the harness runs in it too), from runtime/metrics and /proc/self/statm"
	}
	return "the engine's process, as it reports itself in the cairn service's stats"
}
