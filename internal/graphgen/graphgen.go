// Package graphgen generates the power-law graphs that Cairn's read-side
// benchmarks load: Generate makes the event batches of a whole graph, Churn
// the small writes that keep coming afterwards, and Chain seals either into
// chained transactions as a graph grain stores them.
//
//	cfg := graphgen.Big() // 1,000,000 nodes, 3,000,000 edges
//	chain := graphgen.NewChain(cfg.Graph)
//	err := cfg.Generate(func(events []*cairnv1.Event) error {
//		tx, err := chain.Seal(events, time.Now().UnixNano())
//		...
//	})
//
// Everything is deterministic for a given Config: the same seed gives the
// same graph, event for event.
package graphgen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Config shapes a generated graph. Big documents the benchmark's values.
type Config struct {
	// Graph is the graph id.
	Graph string
	// Nodes and Edges are the graph's size.
	Nodes, Edges int
	// Types and Values make the component pool: component types "t0".."t<Types-1>",
	// each with the numeric values "0".."<Values-1>" (Types*Values distinct
	// components). Each node holds PerNode components of distinct types.
	Types, Values, PerNode int
	// Categories: each node holds one category of "c0".."c<Categories-1>".
	Categories int
	// EdgeTypes: each edge has a type of "r0".."r<EdgeTypes-1>".
	EdgeTypes int
	// TxEvents is the number of events per transaction.
	TxEvents int
	// Seed seeds the generator.
	Seed uint64
}

// Big is the issue-3 benchmark graph: 1,000,000 nodes and 3,000,000 edges,
// each node with 3 components from a pool of 1,000 (10 types × 100 values)
// and one of 5 categories, 4 edge types, 1,000 events per transaction.
func Big() Config {
	return Config{Graph: "big", Nodes: 1_000_000, Edges: 3_000_000, Types: 10, Values: 100, PerNode: 3,
		Categories: 5, EdgeTypes: 4, TxEvents: 1000, Seed: 1}
}

// Scaled returns c with nodes nodes and edges in the same proportion.
func (c Config) Scaled(nodes int) Config {
	c.Edges = int(int64(c.Edges) * int64(nodes) / int64(max(c.Nodes, 1)))
	c.Nodes = nodes
	return c
}

// Validate returns every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	if c.Graph == "" {
		errs = append(errs, errors.New("graph id is empty"))
	}
	if c.Nodes < 2 || c.Edges < 0 {
		errs = append(errs, fmt.Errorf("need at least 2 nodes and no negative edge count, not %d and %d", c.Nodes, c.Edges))
	}
	if c.Types < 1 || c.Values < 1 || c.PerNode < 0 || c.PerNode > c.Types {
		errs = append(errs, fmt.Errorf("component pool %d types × %d values with %d per node does not fit", c.Types, c.Values, c.PerNode))
	}
	if c.Categories < 1 || c.EdgeTypes < 1 || c.TxEvents < 1 {
		errs = append(errs, errors.New("categories, edge types and events per transaction must be at least 1"))
	}
	return errors.Join(errs...)
}

// Events is the number of events Generate makes: GraphCreated, the nodes
// and the edges.
func (c Config) Events() int { return 1 + c.Nodes + c.Edges }

// NodeID returns the id of generated node i; EdgeID that of edge i.
func NodeID(i int) string { return "n" + strconv.Itoa(i) }

// EdgeID returns the id of generated edge i.
func EdgeID(i int) string { return "e" + strconv.Itoa(i) }

// zipfS and zipfV shape the edge targets' Zipf distribution: a few nodes
// get most in-edges (power law), sources are uniform.
const (
	zipfS = 1.2
	zipfV = 10
)

// Generate calls fn with the events of each transaction in order:
// GraphCreated, then every node, then every edge, TxEvents per transaction
// (the last one may be shorter). fn must not keep the slice, which is
// reused; the events themselves are new. An error from fn stops Generate and
// is returned as is.
func (c Config) Generate(fn func(events []*cairnv1.Event) error) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("graphgen: %w", err)
	}
	r := rand.New(rand.NewPCG(c.Seed, c.Seed))
	tx := make([]*cairnv1.Event, 0, c.TxEvents)
	emit := func(ev *cairnv1.Event) error {
		tx = append(tx, ev)
		if len(tx) < c.TxEvents {
			return nil
		}
		err := fn(tx)
		tx = tx[:0]
		return err
	}
	if err := emit(&cairnv1.Event{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{GraphId: c.Graph}}}); err != nil {
		return err
	}
	for i := range c.Nodes {
		if err := emit(c.node(r, NodeID(i))); err != nil {
			return err
		}
	}
	zipf := rand.NewZipf(r, zipfS, zipfV, uint64(c.Nodes-1))
	for i := range c.Edges {
		src, dst := NodeID(r.IntN(c.Nodes)), NodeID(int(zipf.Uint64()))
		if err := emit(edge(EdgeID(i), src, dst, "r"+strconv.Itoa(r.IntN(c.EdgeTypes)))); err != nil {
			return err
		}
	}
	if len(tx) > 0 {
		return fn(tx)
	}
	return nil
}

// node makes a NodeAdded with PerNode components of distinct types and one
// category.
func (c Config) node(r *rand.Rand, id string) *cairnv1.Event {
	types := r.Perm(c.Types)[:c.PerNode]
	cs := make([]*cairnv1.Component, len(types))
	for j, t := range types {
		cs[j] = c.component(t, r.IntN(c.Values))
	}
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{
		NodeId: id, Components: cs, Categories: []string{"c" + strconv.Itoa(r.IntN(c.Categories))}}}}
}

func (c Config) component(typ, val int) *cairnv1.Component {
	return &cairnv1.Component{Type: "t" + strconv.Itoa(typ), Value: []byte(strconv.Itoa(val))}
}

func edge(id, src, dst, typ string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{
		EdgeId: id, Source: src, Target: dst, EdgeType: typ}}}
}

// Churn makes the writes that follow a generated graph: new nodes, new edges
// between any nodes (targets Zipf-distributed, as in Generate) and component
// changes on existing nodes. It never removes anything, so each of its
// events applies to the graph that Generate and the earlier churn built.
type Churn struct {
	c          Config
	r          *rand.Rand
	zipf       *rand.Zipf
	base       int // the generated graph's nodes
	nodesAdded int
	edgesAdded int
}

// Churn starts the writes after c's graph, from seed.
func (c Config) Churn(seed uint64) *Churn {
	r := rand.New(rand.NewPCG(seed, ^seed))
	return &Churn{c: c, r: r, zipf: rand.NewZipf(r, zipfS, zipfV, uint64(c.Nodes-1)), base: c.Nodes}
}

// Added returns how many nodes and edges the churn added so far.
func (ch *Churn) Added() (nodes, edges int) { return ch.nodesAdded, ch.edgesAdded }

// Next returns n new events: about 20 % new nodes, 60 % new edges and 20 %
// component changes (one component set to a new value, and one type removed
// half the time).
func (ch *Churn) Next(n int) []*cairnv1.Event {
	out := make([]*cairnv1.Event, 0, n)
	for range n {
		switch k := ch.r.IntN(10); {
		case k < 2:
			id := "x" + strconv.Itoa(ch.nodesAdded)
			ch.nodesAdded++
			out = append(out, ch.c.node(ch.r, id))
		case k < 8:
			id := "y" + strconv.Itoa(ch.edgesAdded)
			ch.edgesAdded++
			out = append(out, edge(id, ch.node(ch.r.IntN(ch.base+ch.nodesAdded)), NodeID(int(ch.zipf.Uint64())),
				"r"+strconv.Itoa(ch.r.IntN(ch.c.EdgeTypes))))
		default:
			nc := &cairnv1.NodeComponentsChanged{NodeId: NodeID(ch.r.IntN(ch.c.Nodes)),
				Set: []*cairnv1.Component{ch.c.component(ch.r.IntN(ch.c.Types), ch.r.IntN(ch.c.Values))}}
			if ch.r.IntN(2) == 0 {
				if t := "t" + strconv.Itoa(ch.r.IntN(ch.c.Types)); t != nc.Set[0].Type {
					nc.RemovedTypes = []string{t}
				}
			}
			out = append(out, &cairnv1.Event{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: nc}})
		}
	}
	return out
}

// node returns the id of node i: generated ones first, then the churn's.
func (ch *Churn) node(i int) string {
	if i < ch.base {
		return NodeID(i)
	}
	return "x" + strconv.Itoa(i-ch.base)
}
