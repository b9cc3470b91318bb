package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cairn-graph/cairn/internal/pgserver"
)

// Peer query kinds; an op in the peer report is "<side>:<kind>", side
// "cairn" or "pg".
const (
	PeerPing         = "ping"          // a bare request/reply: the micro service's PING handler in cairn serve (no engine code), SELECT 1
	PeerDegree       = "degree"        // a node's out- and in-degree
	PeerNeighbors    = "neighbors"     // the first page of a node's edges, out then in
	PeerTwoHop       = "2hop"          // how many nodes lie within 2 hops along out-edges
	PeerPath         = "path"          // a shortest path's length, edges followed both ways
	PeerWrite        = "write"         // one new edge; each side at its default durability
	PeerWriteDurable = "write-durable" // one new edge, fsynced before the answer on both sides
)

// PeerConfig shapes the peer scenario: the same graph in `cairn serve`
// (a child process, Binary) and in a throwaway PostgreSQL, asked the same
// questions in rounds.
type PeerConfig struct {
	// Binary is the cairn executable that runs `serve`. Required.
	Binary string
	// ServeArgs are more `cairn serve` flags.
	ServeArgs []string
	Workload  Workload
	// Rounds of queries and writes. Default 20.
	Rounds int
	// Per round and side: Degree pings and as many degree queries,
	// Neighbors, TwoHop and Path queries and Writes single-edge writes (and
	// as many durable writes, per round of the durable phase). Defaults
	// 200, 200, 100, 20 and 50.
	Degree, Neighbors, TwoHop, Path, Writes int
	// PageSize is the neighbours page. Default 100.
	PageSize int
	// NoDurable skips the durable-write phase (the engine restarted with
	// --sync-always).
	NoDurable bool
	// Batch and InFlight load the engine (IngestConfig's). Defaults 1000, 4.
	Batch, InFlight int
	// Timeout bounds each start of either server. Default 2 minutes.
	Timeout time.Duration
	// PGBinDir holds PostgreSQL's initdb and postgres; empty to look for
	// them (pgserver.FindBinDir).
	PGBinDir string
}

func (c *PeerConfig) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Rounds, 20)
	def(&c.Degree, 200)
	def(&c.Neighbors, 200)
	def(&c.TwoHop, 100)
	def(&c.Path, 20)
	def(&c.Writes, 50)
	def(&c.PageSize, 100)
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
}

// Validate returns every problem with c, joined.
func (c PeerConfig) Validate() error {
	c.setDefaults()
	errs := []error{IngestConfig{Workload: c.Workload, Batch: c.Batch, InFlight: c.InFlight}.Validate()}
	if c.Binary == "" {
		errs = append(errs, errors.New("peer needs the cairn binary to run serve"))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"rounds", c.Rounds}, {"degree queries", c.Degree}, {"neighbour queries", c.Neighbors}, {"2-hop queries", c.TwoHop},
		{"path queries", c.Path}, {"writes", c.Writes}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("%s per round must be at least 1, not %d", f.name, f.v))
		}
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("page size must be 1-1000, not %d", c.PageSize))
	}
	if c.Workload.Nodes < 2 {
		errs = append(errs, fmt.Errorf("peer writes edges between nodes: it needs at least 2, not %d", c.Workload.Nodes))
	}
	return errors.Join(errs...)
}

// Answers, in both sides' terms: node i, edge i and edge type "r<k>" are
// the integers i, i and k (-1: no type).
type (
	degrees struct{ Out, In int }
	// peerEdge is an edge at a node: its id, the node at its other end,
	// its type.
	peerEdge  struct{ ID, Node, Type int }
	peerWrite struct{ ID, Src, Dst, Type int }
)

// noPath is the length of a path that does not exist.
const noPath = -1

// peerSide is one system under test.
type peerSide interface {
	name() string
	// cpu is the server's CPU time so far.
	cpu() (time.Duration, error)
	// ping is a bare round trip to the server, the floor under every
	// query: its answer is not compared.
	ping(ctx context.Context) error
	degree(ctx context.Context, node int) (degrees, error)
	neighbors(ctx context.Context, node, limit int) ([]peerEdge, error)
	twoHop(ctx context.Context, node int) (int, error)
	path(ctx context.Context, from, to int) (int, error)
	connect(ctx context.Context, e peerWrite) error
}

// Peer runs the graph of cfg.Workload in Cairn and in PostgreSQL side by
// side. It starts a throwaway PostgreSQL on loopback (pgserver) and
// `cairn serve` as a child process, loads the graph into each (Cairn
// through its write path until the read model holds all of it; PostgreSQL
// with COPY, then its indexes and VACUUM ANALYZE), then runs cfg.Rounds
// rounds: per query kind the same inputs against each side in turn (which
// side goes first alternates), then the same single-edge writes. Then,
// unless NoDurable, it restarts the engine with --sync-always and runs
// durable writes against PostgreSQL's default (fsync at commit). One
// client, one request at a time, over loopback TCP on both sides.
//
// Every answer is compared: degrees, neighbour pages (as sets), 2-hop
// counts, path lengths, and the edge count after the writes. A
// disagreement is reported in the result (a figure and notes) and makes
// Peer return an error along with the result.
//
// Beside each side's latency the result gives its server CPU per
// operation (utime+stime from /proc: the engine process; PostgreSQL's
// postmaster and all its children), load time, disk size and server
// memory, with the ratios and the goals.
func Peer(ctx context.Context, cfg PeerConfig, live io.Writer) (_ *ScenarioResult, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	say := func(format string, a ...any) {
		if live != nil {
			fmt.Fprintf(live, "peer: "+format+"\n", a...)
		}
	}
	w := cfg.Workload
	res := &ScenarioResult{Scenario: "peer", Config: describeWorkload(w), Peer: "PostgreSQL"}
	for k, v := range map[string]any{"rounds": cfg.Rounds, "per_round": fmt.Sprintf("degree %d, neighbors %d, 2hop %d, path %d, writes %d",
		cfg.Degree, cfg.Neighbors, cfg.TwoHop, cfg.Path, cfg.Writes), "page_size": cfg.PageSize, "serve_args": fmt.Sprint(cfg.ServeArgs)} {
		res.Config[k] = v
	}

	// PostgreSQL.
	srv, err := pgserver.Start(ctx, pgserver.WithBinDir(cfg.PGBinDir), pgserver.WithTimeout(cfg.Timeout))
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = errors.Join(err, srv.Close(cctx))
	}()
	pg, err := connectPG(ctx, srv.URL(), srv.Pid())
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	defer pg.close(context.Background())
	var version string
	if err := pg.conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	res.Peer = "PostgreSQL " + strings.Fields(version)[0]
	res.Driver = "cairn serve (child process, NATS) vs " + res.Peer + " (pgx), one client each over loopback TCP"
	res.Config["postgres"] = version + ", default settings, port " + fmt.Sprint(srv.Port())
	res.Config["load_average_at_start"] = loadAverage()
	defer func() { res.Config["load_average_at_end"] = loadAverage() }()

	// Cairn.
	dir, err := os.MkdirTemp("", "cairn-bench-peer-")
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	defer os.RemoveAll(dir)
	p, err := startServe(cfg.Binary, cfg.ServeArgs, dir)
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	defer func() { p.kill() }()
	if err := p.waitReady(ctx, cfg.Timeout); err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	d, err := p.driver(ctx, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	ic := IngestConfig{Workload: w, Batch: cfg.Batch, InFlight: cfg.InFlight, Prefix: "peer"}
	ic.setDefaults()
	graphs, err := createGraphs(ctx, d, ic.Prefix, 1)
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	cairn := &cairnSide{d: d, nc: p.nc, graph: graphs[0], pid: p.cmd.Process.Pid}

	// Load, one side after the other.
	var loads [2]phaseCost
	say("loading %d nodes and %d edges into cairn serve (pid %d)", w.Nodes, w.EdgeCount(), cairn.pid)
	var acked time.Duration // from the load's start to the last command's answer
	loads[0], err = measure(cairn, func() error {
		t0 := time.Now()
		seqs, err := load(ctx, d, NewRecorder(), ic, graphs)
		if err != nil {
			return err
		}
		acked = time.Since(t0)
		cairn.minSeq = seqs[0]
		return checkGraphs(ctx, d, w, graphs, seqs)
	})
	if err != nil {
		return nil, fmt.Errorf("peer: load cairn: %w", err)
	}
	say("loading the same into %s (pid %d)", res.Peer, srv.Pid())
	loads[1], err = measure(pg, func() error { return pg.load(ctx, w) })
	if err != nil {
		return nil, fmt.Errorf("peer: load postgres: %w", err)
	}
	say("loaded: cairn %s, postgres %s", loads[0].wall.Round(time.Millisecond), loads[1].wall.Round(time.Millisecond))
	res.Notes = append(res.Notes, fmt.Sprintf("Cairn's load: %d events (%d nodes, then %d edges, in envelopes of %d, %d in flight) all acknowledged after %s (%.0f events/s, as cairn bench ingest counts), the read model holding them all %s later",
		w.Nodes+w.EdgeCount(), w.Nodes, w.EdgeCount(), ic.Batch, ic.InFlight, acked.Round(time.Millisecond),
		float64(w.Nodes+w.EdgeCount())/acked.Seconds(), (loads[0].wall-acked).Round(time.Millisecond)))

	// The rounds.
	run := &peerRun{cfg: cfg, sides: [2]peerSide{cairn, pg}, pg: pg, cpu: map[string]time.Duration{}, count: map[string]int{},
		rand: rand.New(rand.NewPCG(w.Seed, 0x70656572)), nextEdge: w.EdgeCount()}
	say("warming up")
	if err := run.round(ctx, nil, -1, false); err != nil {
		return nil, fmt.Errorf("peer: warm-up: %w", err)
	}
	res.Started = time.Now()
	m := StartMeter(live, "peer", nil) // the servers' memory is in the comparisons
	for r := range cfg.Rounds {
		if err = run.round(ctx, m.Recorder, r, true); err != nil {
			break
		}
	}
	if err == nil {
		err = run.checkEdges(ctx, cairn, pg)
	}
	var foot [2]footprint
	if err == nil {
		foot, err = footprints(ctx, cairn, dir, pg, srv.DataDir())
	}

	// Durable writes: the engine restarted with --sync-always.
	if err == nil && !cfg.NoDurable {
		say("restarting cairn serve with --sync-always")
		err = p.stop(cfg.Timeout)
		p.kill() // gone already: this only removes its stderr file
		if err == nil {
			p, err = startServe(cfg.Binary, append(slices.Clone(cfg.ServeArgs), "--sync-always"), dir)
		}
		if err == nil {
			err = p.waitReady(ctx, cfg.Timeout)
		}
		if err == nil {
			if cairn.d, err = p.driver(ctx, cfg.Timeout); err == nil {
				cairn.pid, cairn.nc, cairn.pingSubject = p.cmd.Process.Pid, p.nc, ""
				// Restored up to the last write before the first one.
				if _, err = stats(ctx, cairn.d, cairn.graph, cairn.minSeq); err == nil {
					err = run.durable(ctx, m.Recorder)
				}
			}
		}
		if err == nil {
			err = run.checkEdges(ctx, cairn, pg)
		}
	}
	ops := res.measured(m)
	// The meter samples the harness's own memory; the servers' is in the
	// comparisons.
	res.Memory = nil
	if err != nil {
		return res, fmt.Errorf("peer: %w", err)
	}
	res.Comparisons = run.comparisons(ops, loads, foot, w.EdgeCount())
	res.Figures = append(res.Figures,
		goalFigure("answers that disagree", float64(run.disagreements), "", "0", run.disagreements == 0,
			"degrees, neighbour pages (as sets), 2-hop counts, path lengths, edge counts after the writes"))
	res.Notes = append(res.Notes, run.notes...)
	res.Notes = append(res.Notes,
		"one client and one request at a time per side; the same inputs on both sides, the side that goes first alternating by round; latency seen by the client",
		"ping: the floor under every query, a bare request/reply; Cairn: the NATS micro service's PING ($SRV.PING.cairn, answered in cairn serve by the NATS client library, no engine code) through the embedded server; PostgreSQL: SELECT 1",
		"server CPU: utime+stime from /proc, of the cairn serve process, and of the postmaster with all its children (backends and background workers, exited ones included) for PostgreSQL",
		"server memory: cairn's RSS; PostgreSQL's PSS summed over its processes (shared buffers counted once); PostgreSQL also relies on the OS page cache, which neither figure counts",
		"degree: Cairn's GetNode (which also returns the node's components); PostgreSQL counts the node's rows in each edges index",
		"2-hop: out-edges; path: edges followed both ways, Cairn's bidirectional BFS against a bidirectional BFS in PL/pgSQL",
		"writes: Cairn acknowledges once JetStream has the transaction (not fsynced); PostgreSQL's default commit fsyncs the WAL. write-durable: Cairn with --sync-always",
		"the pause in the series before the durable writes is the engine's restart with --sync-always")
	if run.disagreements > 0 {
		return res, fmt.Errorf("peer: %d answers disagree between Cairn and %s (see the report's notes)", run.disagreements, res.Peer)
	}
	return res, nil
}

// phaseCost is a phase's wall time and its server's CPU time.
type phaseCost struct{ wall, cpu time.Duration }

func measure(s peerSide, fn func() error) (phaseCost, error) {
	c0, err := s.cpu()
	if err != nil {
		return phaseCost{}, err
	}
	t0 := time.Now()
	if err := fn(); err != nil {
		return phaseCost{}, err
	}
	wall := time.Since(t0)
	c1, err := s.cpu()
	return phaseCost{wall: wall, cpu: c1 - c0}, err
}

// footprint is a side's server memory and data on disk.
type footprint struct {
	mem procMem
	// goMem is the engine's own report (Cairn's side only): its Go heap
	// and what the Go runtime holds from the OS.
	goMem MemSample
	disk  uint64
	// db is PostgreSQL's own database size (tables and indexes, without
	// the WAL and the catalogue of the cluster).
	db uint64
}

func footprints(ctx context.Context, c *cairnSide, cairnDir string, pg *pgSide, pgDir string) ([2]footprint, error) {
	var f [2]footprint
	var errs [6]error
	f[0].mem, errs[0] = processMem(c.pid, false)
	f[0].goMem, errs[5] = c.d.Memory(ctx)
	f[0].disk, errs[1] = dirSize(cairnDir)
	f[1].mem, errs[2] = processMem(pg.pid, true)
	f[1].disk, errs[3] = dirSize(pgDir)
	var db int64
	errs[4] = pg.conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&db)
	f[1].db = uint64(db)
	return f, errors.Join(errs[:]...)
}

// peerRun is the rounds' state: inputs drawn from one seeded stream, and
// per op the server CPU spent and the number of ops.
type peerRun struct {
	cfg           PeerConfig
	sides         [2]peerSide // cairn, pg
	pg            *pgSide     // sides[1], for checks outside the timed questions
	rand          *rand.Rand
	nextEdge      int
	cpu           map[string]time.Duration
	count         map[string]int
	disagreements int
	notes         []string
}

// maxDisagreementNotes bounds the disagreements listed one by one.
const maxDisagreementNotes = 20

// round runs one round: every query kind, then (with writes) the writes.
// A nil rec is the unmeasured warm-up: a tenth of the queries, no writes.
func (r *peerRun) round(ctx context.Context, rec *Recorder, n int, writes bool) error {
	scale := func(k int) int {
		if rec == nil {
			return max(1, k/10)
		}
		return k
	}
	nodes := func(k int) []int {
		out := make([]int, k)
		for i := range out {
			out[i] = r.rand.IntN(r.cfg.Workload.Nodes)
		}
		return out
	}
	order := r.sides
	if n%2 == 1 {
		order[0], order[1] = order[1], order[0]
	}
	pings := scale(r.cfg.Degree)
	if err := r.ask(ctx, rec, order, PeerPing, pings, func(s peerSide, i int) (any, error) { return nil, s.ping(ctx) }, nil); err != nil {
		return err
	}
	deg := nodes(scale(r.cfg.Degree))
	if err := r.ask(ctx, rec, order, PeerDegree, len(deg), func(s peerSide, i int) (any, error) { return s.degree(ctx, deg[i]) }, nil); err != nil {
		return err
	}
	nb := nodes(scale(r.cfg.Neighbors))
	cairnPages := make([][]peerEdge, len(nb))
	if err := r.ask(ctx, rec, order, PeerNeighbors, len(nb), func(s peerSide, i int) (any, error) {
		es, err := s.neighbors(ctx, nb[i], r.cfg.PageSize)
		if s.name() == "cairn" {
			cairnPages[i] = es
		}
		return edgeSet(es), err
	}, func(i int) (bool, error) {
		// Neither side promises an order within out- or in-edges: a node
		// with more edges than a page has many right first pages.
		// Cairn's must hold only the node's edges, out-edges first.
		out, in, err := r.pg.allNeighbors(ctx, nb[i])
		return validPage(cairnPages[i], out, in, r.cfg.PageSize), err
	}); err != nil {
		return err
	}
	hop := nodes(scale(r.cfg.TwoHop))
	if err := r.ask(ctx, rec, order, PeerTwoHop, len(hop), func(s peerSide, i int) (any, error) { return s.twoHop(ctx, hop[i]) }, nil); err != nil {
		return err
	}
	from, to := nodes(scale(r.cfg.Path)), nodes(scale(r.cfg.Path))
	if err := r.ask(ctx, rec, order, PeerPath, len(from), func(s peerSide, i int) (any, error) { return s.path(ctx, from[i], to[i]) }, nil); err != nil {
		return err
	}
	if !writes {
		return nil
	}
	return r.write(ctx, rec, order, PeerWrite, r.cfg.Writes)
}

// durable runs the durable-write rounds.
func (r *peerRun) durable(ctx context.Context, rec *Recorder) error {
	// One unmeasured write each: the engine's graph grain activates on the
	// first command after the restart.
	if err := r.write(ctx, nil, r.sides, PeerWriteDurable, 1); err != nil {
		return err
	}
	for n := range r.cfg.Rounds {
		order := r.sides
		if n%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		if err := r.write(ctx, rec, order, PeerWriteDurable, r.cfg.Writes); err != nil {
			return err
		}
	}
	return nil
}

func (r *peerRun) write(ctx context.Context, rec *Recorder, order [2]peerSide, kind string, k int) error {
	ws := make([]peerWrite, k)
	for i := range ws {
		src := r.rand.IntN(r.cfg.Workload.Nodes)
		dst := r.rand.IntN(r.cfg.Workload.Nodes - 1)
		if dst >= src {
			dst++
		}
		typ := -1
		if r.cfg.Workload.EdgeTypes > 0 {
			typ = r.rand.IntN(r.cfg.Workload.EdgeTypes)
		}
		ws[i] = peerWrite{ID: r.nextEdge, Src: src, Dst: dst, Type: typ}
		r.nextEdge++
	}
	return r.ask(ctx, rec, order, kind, k, func(s peerSide, i int) (any, error) { return nil, s.connect(ctx, ws[i]) }, nil)
}

// ask asks both sides, in order, the k questions of kind (ask(side, i) is
// question i's answer, comparable with ==), recording each latency in rec
// as "<side>:<kind>" and each side's server CPU over its k questions,
// then compares the answers: two that differ disagree unless agree(i)
// (nil: never), called after the timed questions, accepts both. An error
// that is not an answer (a transport failure) stops the run; a nil rec
// records nothing.
func (r *peerRun) ask(ctx context.Context, rec *Recorder, order [2]peerSide, kind string, k int, ask func(peerSide, int) (any, error), agree func(i int) (bool, error)) error {
	answers := map[string][]any{}
	for _, s := range order {
		op := s.name() + ":" + kind
		got := make([]any, k)
		c0, err := s.cpu()
		if err != nil {
			return err
		}
		for i := range k {
			t0 := time.Now()
			a, err := ask(s, i)
			took := time.Since(t0)
			if rec != nil {
				rec.Record(op, 1, took, err)
			}
			if err != nil {
				return fmt.Errorf("%s #%d: %w", op, i, err)
			}
			got[i] = a
		}
		c1, err := s.cpu()
		if err != nil {
			return err
		}
		if rec != nil {
			r.cpu[op] += c1 - c0
			r.count[op] += k
		}
		answers[s.name()] = got
	}
	for i := range k {
		a, b := answers["cairn"][i], answers["pg"][i]
		if a == b {
			continue
		}
		if agree != nil {
			ok, err := agree(i)
			if err != nil {
				return fmt.Errorf("%s #%d: %w", kind, i, err)
			}
			if ok {
				continue
			}
		}
		r.disagree("%s #%d: cairn %v, pg %v", kind, i, a, b)
	}
	return nil
}

func (r *peerRun) disagree(format string, a ...any) {
	r.disagreements++
	if r.disagreements <= maxDisagreementNotes {
		r.notes = append(r.notes, "DISAGREEMENT "+fmt.Sprintf(format, a...))
	}
}

// checkEdges compares both sides' edge counts.
func (r *peerRun) checkEdges(ctx context.Context, c *cairnSide, pg *pgSide) error {
	st, err := stats(ctx, c.d, c.graph, c.minSeq)
	if err != nil {
		return err
	}
	var n uint64
	if err := pg.conn.QueryRow(ctx, "SELECT count(*) FROM edges").Scan(&n); err != nil {
		return err
	}
	if st.GetEdges() != n || n != uint64(r.nextEdge) {
		r.disagree("edge count: cairn %d, pg %d, written %d", st.GetEdges(), n, r.nextEdge)
	}
	return nil
}

// edgeSet is a neighbour page as a set: its edges sorted by id, as a
// string, so that two pages compare with ==.
func edgeSet(es []peerEdge) string {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b peerEdge) int { return a.ID - b.ID })
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range es {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "e%d→n%d", e.ID, e.Node)
		if e.Type >= 0 {
			fmt.Fprintf(&b, "/r%d", e.Type)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// validPage reports whether page is a right first page of at most limit
// edges at a node whose out- and in-edges are out and in (any order; a
// self-loop, in both, is listed once): distinct edges of the node, its
// out-edges first, as many as the node has up to limit.
func validPage(page, out, in []peerEdge, limit int) bool {
	outs := make(map[peerEdge]bool, len(out))
	for _, e := range out {
		outs[e] = true
	}
	ins := make(map[peerEdge]bool, len(in))
	for _, e := range in {
		if !outs[peerEdge{ID: e.ID, Node: e.Node, Type: e.Type}] {
			ins[e] = true
		}
	}
	if len(page) != min(limit, len(outs)+len(ins)) {
		return false
	}
	nOut := min(limit, len(outs))
	seen := make(map[int]bool, len(page))
	for i, e := range page {
		if seen[e.ID] || (i < nOut && !outs[e]) || (i >= nOut && !ins[e]) {
			return false
		}
		seen[e.ID] = true
	}
	return true
}
