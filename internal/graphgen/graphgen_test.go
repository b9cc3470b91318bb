package graphgen_test

import (
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/graphgen"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

// TestGenerate: a small graph and its churn seal into a chain that checks,
// and the read model applies every transaction and counts what was made.
func TestGenerate(t *testing.T) {
	cfg := graphgen.Big().Scaled(2000)
	cfg.TxEvents = 100
	g, err := readmodel.New(cfg.Graph, readmodel.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	chain, check := graphgen.NewChain(cfg.Graph), persistence.NewChain(cfg.Graph)
	seq, events := uint64(0), 0
	apply := func(evs []*cairnv1.Event) error {
		tx, err := chain.Seal(evs, time.Now().UnixNano())
		if err != nil {
			return err
		}
		seq++
		decoded, err := check.Check(seq, tx)
		if err != nil {
			return err
		}
		out := make([]*cairnv1.Event, len(decoded))
		for i, d := range decoded {
			out[i] = d.Event
		}
		events += len(out)
		return g.ApplyTx(seq, out)
	}
	if err := cfg.Generate(apply); err != nil {
		t.Fatal(err)
	}
	if events != cfg.Events() || seq != uint64((cfg.Events()+cfg.TxEvents-1)/cfg.TxEvents) {
		t.Fatalf("%d events in %d transactions, want %d in batches of %d", events, seq, cfg.Events(), cfg.TxEvents)
	}
	churn := cfg.Churn(7)
	for range 200 {
		if err := apply(churn.Next(10)); err != nil {
			t.Fatal(err)
		}
	}
	nodes, edges := churn.Added()
	if nodes == 0 || edges == 0 {
		t.Fatalf("churn added %d nodes and %d edges", nodes, edges)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Nodes != cfg.Nodes+nodes || st.Edges != cfg.Edges+edges {
		t.Fatalf("read model holds %d nodes and %d edges, want %d and %d", st.Nodes, st.Edges, cfg.Nodes+nodes, cfg.Edges+edges)
	}
	if st.DistinctComponents > cfg.Types*cfg.Values {
		t.Fatalf("%d distinct components, pool is %d", st.DistinctComponents, cfg.Types*cfg.Values)
	}
	if chain.Head() != check.Head() {
		t.Fatalf("chain head %v, checked head %v", chain.Head(), check.Head())
	}
}

// TestGenerateDeterministic: the same config makes the same events.
func TestGenerateDeterministic(t *testing.T) {
	cfg := graphgen.Big().Scaled(500)
	collect := func() []*cairnv1.Event {
		var out []*cairnv1.Event
		if err := cfg.Generate(func(evs []*cairnv1.Event) error { out = append(out, evs...); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := collect(), collect()
	if len(a) != cfg.Events() || len(b) != len(a) {
		t.Fatalf("%d and %d events, want %d", len(a), len(b), cfg.Events())
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			t.Fatalf("event %d differs: %v and %v", i, a[i], b[i])
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*graphgen.Config)
	}{
		{"no graph", func(c *graphgen.Config) { c.Graph = "" }},
		{"one node", func(c *graphgen.Config) { c.Nodes = 1 }},
		{"more per node than types", func(c *graphgen.Config) { c.PerNode = c.Types + 1 }},
		{"no events per transaction", func(c *graphgen.Config) { c.TxEvents = 0 }},
	} {
		cfg := graphgen.Big()
		tc.edit(&cfg)
		if err := cfg.Generate(func([]*cairnv1.Event) error { return nil }); err == nil {
			t.Errorf("%s: Generate accepted %+v", tc.name, cfg)
		}
	}
}
