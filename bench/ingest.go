package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nuid"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/benchutil"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// IngestConfig shapes the ingest scenario: Graphs graphs, each generated
// from Workload (graph i with seed Workload.Seed+i), built concurrently.
type IngestConfig struct {
	Workload Workload
	// Graphs is how many graphs are built at once. Default 1.
	Graphs int
	// Batch is the commands per envelope, 1 to aggregate.MaxCommands.
	// Default 1000.
	Batch int
	// InFlight is how many envelopes each graph has in flight (closed
	// loop); the grain commits the ones queued behind an append together.
	// Default 4.
	InFlight int
	// Rate, when not 0, offers the load open loop at this many events per
	// second (envelopes of Batch commands at Rate/Batch per second, round
	// robin over the graphs), each command's latency measured from its
	// scheduled start. 0: closed loop, as fast as the engine goes.
	Rate float64
	// Baseline measures raw JetStream publishes with per-subject
	// optimistic concurrency after the engine: as many messages, of the
	// average size the engine stored, on as many subjects as graphs, with
	// as many in flight.
	Baseline bool
	// Prefix starts the graph ids; a random run id follows. Default "bench".
	Prefix string
}

func (c *IngestConfig) setDefaults() {
	if c.Graphs == 0 {
		c.Graphs = 1
	}
	if c.Batch == 0 {
		c.Batch = 1000
	}
	if c.InFlight == 0 {
		c.InFlight = 4
	}
	if c.Prefix == "" {
		c.Prefix = "bench"
	}
}

// Validate returns every problem with c, joined.
func (c IngestConfig) Validate() error {
	c.setDefaults()
	errs := []error{c.Workload.Validate()}
	if c.Graphs < 1 {
		errs = append(errs, fmt.Errorf("graphs must be at least 1, not %d", c.Graphs))
	}
	if c.Batch < 1 || c.Batch > aggregate.MaxCommands {
		errs = append(errs, fmt.Errorf("batch must be 1-%d commands, not %d", aggregate.MaxCommands, c.Batch))
	}
	if c.InFlight < 1 {
		errs = append(errs, fmt.Errorf("in-flight must be at least 1, not %d", c.InFlight))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate must not be negative, not %g", c.Rate))
	}
	if err := aggregate.ValidateGraphID("prefix", c.Prefix+"-x"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c IngestConfig) describe() map[string]any {
	m := describeWorkload(c.Workload)
	m["graphs"] = c.Graphs
	m["batch"] = c.Batch
	m["in_flight"] = c.InFlight
	if c.Rate > 0 {
		m["mode"] = "open loop"
		m["rate_events_per_s"] = c.Rate
	} else {
		m["mode"] = "closed loop"
	}
	return m
}

// OpCommand is the op name of one command envelope in the reports.
const OpCommand = "command"

// Ingest builds cfg.Graphs graphs of cfg.Workload through d and measures
// it: command latency and events per second, memory, and (with Baseline)
// raw JetStream beside it. Every graph is checked afterwards: its read
// model must hold exactly the generated nodes and edges.
func Ingest(ctx context.Context, d Driver, cfg IngestConfig, live io.Writer) (*ScenarioResult, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	res := &ScenarioResult{Scenario: "ingest", Driver: d.Name(), Config: cfg.describe(), Started: time.Now()}
	before, statErr := streamState(ctx, d)
	graphs, err := createGraphs(ctx, d, cfg.Prefix, cfg.Graphs)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	res.MemorySource = memorySource(d)
	m := StartMeter(live, "ingest", d.Memory)
	lastSeqs, err := load(ctx, d, m.Recorder, cfg, graphs)
	ops := res.measured(m)
	if err != nil {
		return res, fmt.Errorf("ingest: %w", err)
	}
	if err := checkGraphs(ctx, d, cfg.Workload, graphs, lastSeqs); err != nil {
		return res, fmt.Errorf("ingest: %w", err)
	}
	res.Notes = append(res.Notes, fmt.Sprintf("every graph checked after the run: %d nodes and %d edges each in its read model", cfg.Workload.Nodes, cfg.Workload.Edges))
	cmd := find(ops, OpCommand)
	rate := cmd.ItemRate
	res.Figures = append(res.Figures,
		goalFigure("events/s, end to end", rate, "events/s", "≥ 50,000", rate >= 50_000, ""),
		Figure{Name: "command envelope p99", Value: cmd.P99MS, Unit: "ms"},
	)
	if !cfg.Baseline {
		return res, nil
	}
	if statErr != nil {
		res.Notes = append(res.Notes, "no raw baseline: "+statErr.Error())
		return res, nil
	}
	after, err := streamState(ctx, d)
	if err != nil || after.msgs <= before.msgs {
		res.Notes = append(res.Notes, fmt.Sprintf("no raw baseline: cannot read the event stream's size (%v)", err))
		return res, nil
	}
	msgs := int(after.msgs - before.msgs)
	payload := int((after.bytes - before.bytes) / (after.msgs - before.msgs))
	events := cmd.Items + int64(cfg.Graphs) // the CreateGraph events too
	b, err := rawOCC(ctx, d, msgs, payload, cfg.Graphs, cfg.Graphs*cfg.InFlight)
	if err != nil {
		return res, fmt.Errorf("ingest baseline: %w", err)
	}
	perMsg := float64(events) / float64(msgs)
	b.Name = "ingest events/s vs raw JetStream OCC publish"
	b.Unit = "events/s"
	b.Engine = rate
	b.Raw *= perMsg
	b.Ratio = b.Engine / b.Raw
	b.Note = fmt.Sprintf("%d messages of %d B (the engine's average stored transaction, %.0f events each), %d subjects", msgs, payload, perMsg, cfg.Graphs)
	res.Baselines = append(res.Baselines, b)
	return res, nil
}

// createGraphs creates n graphs named prefix-<run id>-<i>.
func createGraphs(ctx context.Context, d Driver, prefix string, n int) ([]string, error) {
	run := nuid.Next()[16:]
	graphs := make([]string, n)
	for i := range graphs {
		graphs[i] = prefix + "-" + run + "-" + strconv.Itoa(i)
		env := &cairnv1.CommandEnvelope{GraphId: graphs[i], CommandId: graphs[i] + "-create", Issuer: "cairn-bench",
			Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "bench"}}}}}
		if err := replyErr(d.Execute(ctx, env)); err != nil {
			return nil, fmt.Errorf("create graph %s: %w", graphs[i], err)
		}
	}
	return graphs, nil
}

// feedItem is one envelope of a workload. Workload.Generate sends every
// node before the first edge, and a batch holds nodes or edges, never
// both: an envelope of edges waits until every envelope of nodes was
// applied.
type feedItem struct {
	env   *cairnv1.CommandEnvelope
	edges bool
}

// graphFeed is one graph's envelopes on their way out; nodes counts its
// envelopes of nodes in flight.
type graphFeed struct {
	graph   string
	items   chan feedItem
	nodes   sync.WaitGroup
	lastSeq uint64
	mu      sync.Mutex
}

// load sends every graph's workload through d, recording each envelope in
// rec, and returns each graph's last transaction sequence.
func load(ctx context.Context, d Driver, rec *Recorder, cfg IngestConfig, graphs []string) ([]uint64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	feeds := make([]*graphFeed, len(graphs))
	var gens sync.WaitGroup
	for i, g := range graphs {
		f := &graphFeed{graph: g, items: make(chan feedItem, 2*cfg.InFlight)}
		feeds[i] = f
		w := cfg.Workload
		w.Seed += uint64(i)
		gens.Go(func() {
			defer close(f.items)
			n := 0
			err := w.Generate(cfg.Batch, func(cmds []*cairnv1.Command) error {
				env := &cairnv1.CommandEnvelope{GraphId: g, CommandId: g + "-" + strconv.Itoa(n), Issuer: "cairn-bench", Commands: cmds}
				n++
				select {
				case f.items <- feedItem{env: env, edges: cmds[0].GetConnectNodes() != nil}:
					return nil
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			})
			if err != nil {
				cancel(fmt.Errorf("generate %s: %w", g, err))
			}
		})
	}
	var sends sync.WaitGroup
	var fails benchutil.Failures
	send := func(f *graphFeed, it feedItem, from time.Time, release func()) {
		defer sends.Done()
		defer release()
		if it.edges {
			f.nodes.Wait()
		} else {
			defer f.nodes.Done()
		}
		if from.IsZero() {
			from = time.Now()
		}
		rep, err := d.Execute(ctx, it.env)
		err = replyErr(rep, err)
		rec.Record(OpCommand, len(it.env.GetCommands()), time.Since(from), err)
		if err != nil {
			fails.Add(fmt.Errorf("%s: %w", it.env.GetCommandId(), err))
			return
		}
		f.mu.Lock()
		f.lastSeq = max(f.lastSeq, rep.GetSeq())
		f.mu.Unlock()
	}
	start := func(f *graphFeed, it feedItem) {
		sends.Add(1)
		if !it.edges {
			f.nodes.Add(1)
		}
	}
	if cfg.Rate <= 0 {
		var feeders sync.WaitGroup
		for _, f := range feeds {
			feeders.Go(func() {
				sem := make(chan struct{}, cfg.InFlight)
				for it := range f.items {
					select {
					case sem <- struct{}{}:
					case <-ctx.Done():
						continue // drain: the generator stops on ctx
					}
					start(f, it)
					go send(f, it, time.Time{}, func() { <-sem })
				}
			})
		}
		feeders.Wait()
	} else {
		pacer := NewPacer(cfg.Rate / float64(cfg.Batch))
		open := append([]*graphFeed(nil), feeds...)
		for k := 0; len(open) > 0; k++ {
			f := open[k%len(open)]
			it, ok := <-f.items
			if !ok {
				open = append(open[:k%len(open)], open[k%len(open)+1:]...)
				k--
				continue
			}
			intended, err := pacer.Wait(ctx)
			if err != nil {
				for _, f := range open {
					for range f.items {
					}
				}
				break
			}
			start(f, it)
			go send(f, it, intended, func() {})
		}
	}
	sends.Wait()
	gens.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if err := fails.Err(); err != nil {
		return nil, err
	}
	seqs := make([]uint64, len(feeds))
	for i, f := range feeds {
		seqs[i] = f.lastSeq
	}
	return seqs, nil
}

// checkGraphs asks each graph's stats once its read model has applied
// seqs[i] and compares them with the workload.
func checkGraphs(ctx context.Context, d Driver, w Workload, graphs []string, seqs []uint64) error {
	for i, g := range graphs {
		st, err := stats(ctx, d, g, seqs[i])
		if err != nil {
			return err
		}
		if st.GetNodes() != uint64(w.Nodes) || st.GetEdges() != uint64(w.Edges) {
			return fmt.Errorf("graph %s holds %d nodes and %d edges after the run, want %d and %d", g, st.GetNodes(), st.GetEdges(), w.Nodes, w.Edges)
		}
	}
	return nil
}

// stats asks a graph's stats once its read model applied minSeq, waiting
// up to a minute for it.
func stats(ctx context.Context, d Driver, graph string, minSeq uint64) (*cairnv1.GraphStats, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		rep, err := d.Query(ctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: minSeq, Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
		err = queryErr(rep, err)
		if err == nil {
			return rep.GetStats(), nil
		}
		if !errors.Is(err, aggregate.ErrDeadlineExceeded) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("stats of %s at seq %d: %w", graph, minSeq, err)
		}
	}
}

func find(ops []OpSummary, op string) OpSummary {
	for _, o := range ops {
		if o.Op == op {
			return o
		}
	}
	return OpSummary{Op: op}
}

func goalFigure(name string, v float64, unit, goal string, met bool, note string) Figure {
	return Figure{Name: name, Value: v, Unit: unit, Goal: goal, Met: &met, Note: note}
}
