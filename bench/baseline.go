package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/internal/benchutil"
	"github.com/cairn-graph/cairn/persistence"
)

// describeWorkload is a workload as a report's config table shows it.
func describeWorkload(w Workload) map[string]any {
	return map[string]any{
		"shape": string(w.Shape), "nodes": w.Nodes, "edges": w.Edges,
		"component_types": w.Types, "component_values": w.Values, "components_per_node": w.PerNode,
		"skew": w.Skew, "categories": w.Categories, "edge_types": w.EdgeTypes, "seed": w.Seed,
	}
}

type streamSize struct{ msgs, bytes uint64 }

// streamState reads the event store stream's message count and size.
func streamState(ctx context.Context, d Driver) (streamSize, error) {
	s, err := persistenceStream(ctx, d.JetStream())
	if err != nil {
		return streamSize{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return streamSize{}, fmt.Errorf("event stream %s: %w", persistence.DefaultStoreConfig().Stream, err)
	}
	return streamSize{msgs: info.State.Msgs, bytes: info.State.Bytes}, nil
}

// rawOCC publishes msgs messages of payload bytes with per-subject
// optimistic concurrency (and a message id, as an append has) on subjects
// subjects from callers goroutines, one publish in flight per subject, and
// returns the rate in messages per second with the publish latency. The
// baseline stream is deleted afterwards.
func rawOCC(ctx context.Context, d Driver, msgs, payload, subjects, callers int) (Baseline, error) {
	js := d.JetStream()
	raw, err := benchutil.NewRawOCC(ctx, js, subjects, make([]byte, payload), true)
	if err != nil {
		return Baseline{}, err
	}
	defer deleteRawStream(js)
	lat := benchutil.NewLatency()
	run, err := benchutil.ClosedLoop(msgs, min(callers, subjects), lat, func(_, i int) error { return raw.Publish(ctx, i) })
	if err != nil {
		return Baseline{}, err
	}
	return Baseline{
		Raw: run.Rate(msgs), RawP50MS: msOf(lat.Quantile(50)), RawP99MS: msOf(lat.Quantile(99)),
		PayloadB: payload, Concurrent: min(callers, subjects),
	}, nil
}

// rawOCCOpenLoop publishes n messages of payload bytes at rate per second
// with per-subject optimistic concurrency, latency from each publish's
// scheduled start, and returns the latency.
func rawOCCOpenLoop(ctx context.Context, d Driver, n int, rate float64, payload, subjects int) (*benchutil.Latency, error) {
	js := d.JetStream()
	raw, err := benchutil.NewRawOCC(ctx, js, subjects, make([]byte, payload), true)
	if err != nil {
		return nil, err
	}
	defer deleteRawStream(js)
	lat := benchutil.NewLatency()
	_, err = benchutil.OpenLoop(n, rate, lat, func(i int) error { return raw.Publish(ctx, i) })
	return lat, err
}

func deleteRawStream(js jetstream.JetStream) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, benchutil.RawStream) // best effort: the next run reuses it
}

func persistenceStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	name := persistence.DefaultStoreConfig().Stream
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("event stream %s: %w", name, err)
	}
	return s, nil
}

// subjectOf is a graph's subject in the event stream (persistence.Store.Subject).
func subjectOf(graph string) string {
	return persistence.DefaultStoreConfig().SubjectPrefix + "." + graph
}
