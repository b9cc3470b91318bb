package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/persistence"
)

// Replay op names.
const (
	OpReplayAggregate  = "replay:aggregate"  // fold a graph's transactions into its aggregate state
	OpReplayProjection = "replay:projection" // catch a fresh projection (read model) up to the head
	OpReadRaw          = "read:raw"          // read the same messages from JetStream, no decoding
)

// ReplayConfig shapes the replay scenario: one graph of Workload is loaded,
// then replayed Rounds times each way, with no snapshots.
type ReplayConfig struct {
	Workload Workload
	// Rounds of each replay; the report gives the median. Default 3.
	Rounds          int
	Batch, InFlight int
	Prefix          string
}

func (c *ReplayConfig) setDefaults() {
	if c.Rounds == 0 {
		c.Rounds = 3
	}
}

// Validate returns every problem with c, joined.
func (c ReplayConfig) Validate() error {
	c.setDefaults()
	errs := []error{IngestConfig{Workload: c.Workload, Batch: c.Batch, InFlight: c.InFlight, Prefix: c.Prefix}.Validate()}
	if c.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds must be at least 1, not %d", c.Rounds))
	}
	return errors.Join(errs...)
}

// Replay loads a graph, then measures catch-up speed: the aggregate folded
// from the stream (what a grain activation without a snapshot does), a
// fresh projection caught up from the stream (a read model rebuilt), and
// as the baseline JetStream delivering the same messages undecoded. It
// reads the event store through d's JetStream, so it works against a
// remote engine too; the replays run in this process.
func Replay(ctx context.Context, d Driver, cfg ReplayConfig, live io.Writer) (*ScenarioResult, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	js := d.JetStream()
	res := &ScenarioResult{Scenario: "replay", Driver: d.Name(), Config: describeWorkload(cfg.Workload)}
	res.Config["rounds"] = cfg.Rounds
	ic := IngestConfig{Workload: cfg.Workload, Batch: cfg.Batch, InFlight: cfg.InFlight, Prefix: cfg.Prefix}
	ic.setDefaults()
	graphs, err := createGraphs(ctx, d, ic.Prefix, 1)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	graph := graphs[0]
	if live != nil {
		fmt.Fprintf(live, "replay: loading %s (%d nodes, %d edges)\n", graph, cfg.Workload.Nodes, cfg.Workload.Edges)
	}
	seqs, err := load(ctx, d, NewRecorder(), ic, graphs)
	if err == nil {
		err = checkGraphs(ctx, d, cfg.Workload, graphs, seqs)
	}
	if err != nil {
		return nil, fmt.Errorf("replay: load: %w", err)
	}
	last := seqs[0]
	events := int(1 + cfg.Workload.Commands()) // CreateGraph, then one event per command
	// The readers check signatures as the engine's own do (in-process:
	// its keyring; remote: none is known here).
	var trust *persistence.Keyring
	if t, ok := d.(interface{ Trust() *persistence.Keyring }); ok {
		trust = t.Trust()
	}
	res.Config["signatures_checked"] = trust != nil
	store, err := persistence.LookupStore(ctx, js, persistence.DefaultStoreConfig(), persistence.WithSigning(nil, trust))
	if err != nil {
		return nil, fmt.Errorf("replay: event store: %w", err)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	defer system.Shutdown()

	res.Started = time.Now()
	res.MemorySource = memorySource(d)
	m := StartMeter(live, "replay", d.Memory)
	var msgs int
	for range cfg.Rounds {
		t := time.Now()
		msgs, err = readRaw(ctx, js, subjectOf(graph), last)
		m.Record(OpReadRaw, events, time.Since(t), err)
		if err != nil {
			break
		}
		t = time.Now()
		var st *aggregate.State
		st, _, _, err = actors.StateAt(ctx, store, nil, graph, 0)
		m.Record(OpReplayAggregate, events, time.Since(t), err)
		if err != nil {
			break
		}
		if st.NodeCount() != cfg.Workload.Nodes {
			err = fmt.Errorf("replayed aggregate of %s has %d nodes, want %d", graph, st.NodeCount(), cfg.Workload.Nodes)
			break
		}
		t = time.Now()
		err = catchUp(ctx, system, store, trust, graph, last)
		m.Record(OpReplayProjection, events, time.Since(t), err)
		if err != nil {
			break
		}
	}
	ops := res.measured(m)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	raw := find(ops, OpReadRaw)
	rate := func(o OpSummary) float64 { return float64(events) / (o.P50MS / 1000) } // median round
	for _, op := range []string{OpReplayAggregate, OpReplayProjection} {
		o := find(ops, op)
		res.Baselines = append(res.Baselines, Baseline{
			Name: op + " vs raw JetStream read", Unit: "events/s", Engine: rate(o), Raw: rate(raw), Ratio: rate(o) / rate(raw),
			Note: fmt.Sprintf("median of %d rounds; %d events in %d messages", cfg.Rounds, events, msgs),
		})
	}
	res.Figures = append(res.Figures,
		Figure{Name: "aggregate replay", Value: rate(find(ops, OpReplayAggregate)), Unit: "events/s", Note: "median round"},
		Figure{Name: "projection catch-up", Value: rate(find(ops, OpReplayProjection)), Unit: "events/s", Note: "median round"},
	)
	return res, nil
}

// readRaw reads subject's messages from the event stream up to sequence
// last with an ordered consumer, touching nothing, and returns how many.
func readRaw(ctx context.Context, js jetstream.JetStream, subject string, last uint64) (int, error) {
	cons, err := js.OrderedConsumer(ctx, persistence.DefaultStoreConfig().Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return 0, fmt.Errorf("raw read: %w", err)
	}
	// Pull what the store pulls: room for its largest message.
	it, err := cons.Messages(jetstream.PullMaxBytes(max(16<<20, int(js.Conn().MaxPayload())+64<<10)))
	if err != nil {
		return 0, fmt.Errorf("raw read: %w", err)
	}
	defer it.Stop()
	n := 0
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return n, fmt.Errorf("raw read: %w", err)
		}
		n++
		meta, err := msg.Metadata()
		if err != nil {
			return n, fmt.Errorf("raw read: %w", err)
		}
		if meta.Sequence.Stream >= last {
			return n, nil
		}
	}
}

// catchUp builds fresh projections over store (no snapshots) and waits
// until graph's read model applied last. They read the whole stream: on an
// engine with other graphs, their transactions are applied too.
func catchUp(ctx context.Context, system *actor.ActorSystem, store *persistence.Store, trust *persistence.Keyring, graph string, last uint64) error {
	cfg := actors.DefaultProjectionConfig()
	cfg.Trust = trust
	p, err := actors.NewProjections(system, store, cfg)
	if err != nil {
		return err
	}
	p.Start()
	_, err = p.WaitFor(ctx, graph, last)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return errors.Join(err, p.Close(cctx))
}
