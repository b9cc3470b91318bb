package bench

import (
	"fmt"
	"time"
)

// peerGoal is one goal the peer report prints beside its figures: met
// reads the engine's value, the peer's and their ratio.
type peerGoal struct {
	text string
	met  func(engine, peer, ratio float64) bool
}

func ratioAtMost(x float64, text string) *peerGoal {
	return &peerGoal{text: text, met: func(_, _, r float64) bool { return r <= x }}
}

// The peer scenario's goals (issue 11): point and neighbour queries p50
// within 1.3× of PostgreSQL's and p99 no worse; server CPU per point
// query within 1.5×; path p99 ahead; engine memory at most 3× PostgreSQL's
// on the same graph; load at 100,000 edges/s or more.
var (
	goalP50     = ratioAtMost(1.3, "≤ 1.3×")
	goalP99     = ratioAtMost(1, "≤ 1×")
	goalPathP99 = &peerGoal{text: "< 1× (ahead)", met: func(_, _, r float64) bool { return r < 1 }}
	goalCPU     = ratioAtMost(1.5, "≤ 1.5×")
	goalMemory  = ratioAtMost(3, "≤ 3×")
	goalLoad    = &peerGoal{text: "Cairn ≥ 100,000", met: func(e, _, _ float64) bool { return e >= 100_000 }}
)

// comparisons sets the two sides' figures side by side.
func (r *peerRun) comparisons(ops []OpSummary, loads [2]phaseCost, foot [2]footprint, edges int) []Comparison {
	var out []Comparison
	add := func(name, unit string, engine, peer float64, g *peerGoal, note string) {
		c := Comparison{Name: name, Unit: unit, Engine: engine, Peer: peer, Note: note}
		if peer != 0 {
			c.Ratio = engine / peer
		}
		if g != nil {
			c.Goal = g.text
			met := (peer != 0 || g == goalLoad) && g.met(engine, peer, c.Ratio)
			c.Met = &met
		}
		out = append(out, c)
	}
	cpuPer := func(op string) float64 { return cpuPerOp(r.cpu[op], r.count[op]) }
	type kindGoals struct{ p50, p99, cpu *peerGoal }
	for _, k := range []struct {
		kind string
		kindGoals
	}{
		{PeerPing, kindGoals{}},
		{PeerDegree, kindGoals{goalP50, goalP99, goalCPU}},
		{PeerNeighbors, kindGoals{goalP50, goalP99, nil}},
		{PeerTwoHop, kindGoals{}},
		{PeerPath, kindGoals{nil, goalPathP99, nil}},
		{PeerWrite, kindGoals{}},
		{PeerWriteDurable, kindGoals{}},
	} {
		c, p := find(ops, "cairn:"+k.kind), find(ops, "pg:"+k.kind)
		if c.Count == 0 && p.Count == 0 {
			continue
		}
		note := fmt.Sprintf("%d each", c.Count)
		switch k.kind {
		case PeerPing:
			note += "; the baseline under every query: a bare request/reply (Cairn: the micro service's PING, no engine code; PostgreSQL: SELECT 1)"
		case PeerWrite:
			note += "; Cairn acknowledged in the OS (JetStream default), PostgreSQL fsynced (its default)"
		case PeerWriteDurable:
			note += "; both fsynced before the answer: Cairn with --sync-always, PostgreSQL by default"
		}
		add(k.kind+" p50", "ms", c.P50MS, p.P50MS, k.p50, note)
		add(k.kind+" p99", "ms", c.P99MS, p.P99MS, k.p99, "")
		add(k.kind+" server CPU per op", "µs", cpuPer("cairn:"+k.kind), cpuPer("pg:"+k.kind), k.cpu, "")
	}
	rate := func(pc phaseCost) float64 {
		if pc.wall <= 0 {
			return 0
		}
		return float64(edges) / pc.wall.Seconds()
	}
	add("load time", "s", loads[0].wall.Seconds(), loads[1].wall.Seconds(), nil,
		"Cairn: every node and edge through the write path until the read model holds them; PostgreSQL: COPY, indexes, VACUUM ANALYZE")
	add("load rate", "edges/s", rate(loads[0]), rate(loads[1]), goalLoad, "edges ÷ load time (the nodes' time included)")
	add("load server CPU", "s", loads[0].cpu.Seconds(), loads[1].cpu.Seconds(), nil, "")
	add("data on disk", "MiB", mib(foot[0].disk), mib(foot[1].disk), nil,
		fmt.Sprintf("the data directories after the rounds; PostgreSQL's database alone (tables and indexes) %s", fmtMB(foot[1].db)))
	add("server memory", "MiB", mib(foot[0].mem.RSS), mib(foot[1].mem.PSS), goalMemory,
		fmt.Sprintf("after the rounds: Cairn's RSS (of which the Go runtime holds %s from the OS, %s of it heap in objects, garbage not yet collected included; %s freed with MADV_FREE, which the kernel takes back when it needs memory, LazyFree); PostgreSQL's PSS over its processes (their RSS summed: %s)",
			fmtMB(foot[0].goMem.GoBytes), fmtMB(foot[0].goMem.HeapBytes), fmtMB(foot[0].mem.LazyFree), fmtMB(foot[1].mem.RSS)))
	return out
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// cpuPerOp is d per op in µs.
func cpuPerOp(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}
