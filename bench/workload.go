package bench

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// A Workload describes a synthetic graph as a stream of commands: Generate
// emits an AddNode for every node, then a ConnectNodes for every edge.
//
//	w := bench.DefaultWorkload()
//	w.Nodes, w.Edges = 1_000_000, 3_000_000
//	err := w.Generate(1000, func(cmds []*cairnv1.Command) error {
//		return send(ctx, cmds) // cmds is the caller's to keep
//	})
//
// Everything is deterministic for a given Workload: the same fields give
// the same commands, command for command, whatever the batch size. The
// node attributes (components, categories), the edge endpoints and the
// edge types come from three separate PCG streams seeded from Seed, so
// EachEdge reports the same endpoints as Generate without building any
// protobuf, changing EdgeTypes or the component pool leaves the topology
// alone, and the nodes (ids, components, categories) are the same for
// every shape.
type Workload struct {
	// Shape is the topology; see the Shape constants.
	Shape Shape
	// Nodes is the number of nodes, ids NodeID(0)..NodeID(Nodes-1); at most
	// math.MaxInt32. Edges is the number of edges, ids EdgeID(0)..; at most
	// math.MaxInt32, and 0 unless there are at least 2 nodes. A tree has
	// exactly Nodes-1 edges: Edges must be Nodes-1, or 0 to mean Nodes-1.
	Nodes, Edges int
	// Types, Values and PerNode make the component pool: component types
	// "t0".."t<Types-1>", each with the values "v0".."v<Values-1>". Each
	// node holds PerNode components of distinct types (PerNode <= Types;
	// Values >= 1 unless PerNode is 0; Types and Values at most 2^24, as
	// each costs a float64 in a Zipf table).
	Types, Values, PerNode int
	// Skew is the Zipf exponent (>= 0) with which values and types are drawn
	// from the pool: 0 is uniform, 1 classic Zipf (rank k with probability
	// ∝ 1/(k+1)). "v0" is the most frequent value of every type, "t0" the
	// most frequent type. A node's types are drawn without replacement, so
	// the type shares flatten as PerNode approaches Types; the values are
	// drawn independently, so each value's share is the Zipf probability.
	Skew float64
	// Categories: each node gets one category of "c0".."c<Categories-1>",
	// uniformly; 0 means none. EdgeTypes: each edge gets a type of
	// "r0".."r<EdgeTypes-1>", uniformly; 0 means the empty type.
	Categories, EdgeTypes int
	// Seed seeds every random choice.
	Seed uint64
}

// Shape is a graph topology that Workload generates. Every shape is free of
// self-loops; the edge direction is noted with each.
type Shape string

const (
	// ShapeBA is Barabási–Albert preferential attachment: node i (i >= 1)
	// adds k_i edges to earlier nodes, each target drawn with probability
	// proportional to its degree so far (by drawing from the list of all
	// edge endpoints). k_i = floor(i·E/(N-1)) - floor((i-1)·E/(N-1)) spreads a
	// fractional m = E/(N-1) evenly, so the total is exactly Edges. A node's
	// targets are distinct unless k_i > i (the first few nodes, or a graph
	// denser than complete), where parallel edges are allowed. Node 1
	// attaches to node 0. With Edges < Nodes-1 some nodes get no edge and,
	// having degree 0, never attract one. The degree distribution has a
	// power-law tail with exponent 3. Edges point from the new node to the
	// earlier one, so the low ids are the hubs.
	ShapeBA Shape = "ba"
	// ShapeRMAT is R-MAT (Chakrabarti et al. 2004) with a, b, c, d = 0.57,
	// 0.19, 0.19, 0.05 on the next power of two ≥ Nodes: each edge descends
	// the adjacency matrix quadrant by quadrant, and is redrawn whole when
	// an endpoint is ≥ Nodes or when it is a self-loop. There is no
	// per-level noise. The matrix indices are then mapped to node ids by a
	// seeded random permutation, so the hubs are spread over the id space
	// rather than being the lowest ids. Parallel edges are allowed. Heavy
	// tailed in both out- and in-degree.
	ShapeRMAT Shape = "rmat"
	// ShapeUniform is Erdős–Rényi G(n, m)-like: each edge is an independent
	// uniform pair of distinct nodes, so degrees are binomial (about
	// Poisson). Parallel edges (and a pair in both directions) are allowed,
	// as in a G(n, m) drawn with replacement.
	ShapeUniform Shape = "uniform"
	// ShapeTree is a uniform random recursive tree: node i (i >= 1) gets one
	// edge to a parent drawn uniformly from 0..i-1, edge i-1 = (i → parent).
	// Exactly Nodes-1 edges, connected and acyclic; depth about ln(Nodes).
	ShapeTree Shape = "tree"
)

// Shapes returns every shape, in the order the docs list them.
func Shapes() []Shape { return []Shape{ShapeBA, ShapeRMAT, ShapeUniform, ShapeTree} }

// ParseShape returns the shape named s (as a CLI flag gives it). Its error
// names the valid shapes.
func ParseShape(s string) (Shape, error) {
	for _, sh := range Shapes() {
		if string(sh) == s {
			return sh, nil
		}
	}
	return "", fmt.Errorf("unknown graph shape %q: want one of %s", s, shapeList())
}

func shapeList() string {
	names := make([]string, 0, 4)
	for _, sh := range Shapes() {
		names = append(names, string(sh))
	}
	return strings.Join(names, ", ")
}

// FieldError is one problem with a Workload field (or Generate's batch).
// Validate joins them; find one with errors.As.
type FieldError struct {
	Field   string // the Go field name, "batch" for Generate's argument
	Problem string
}

func (e *FieldError) Error() string { return "workload " + e.Field + ": " + e.Problem }

// maxPool bounds Types and Values: their Zipf tables take 8 bytes a rank.
const maxPool = 1 << 24

// DefaultWorkload returns a BA graph of 10,000 nodes and 30,000 edges, 3
// components per node from 10 types × 100 values with skew 1, 5 categories,
// 4 edge types, seed 1.
func DefaultWorkload() Workload {
	return Workload{Shape: ShapeBA, Nodes: 10_000, Edges: 30_000, Types: 10, Values: 100, PerNode: 3,
		Skew: 1, Categories: 5, EdgeTypes: 4, Seed: 1}
}

// Validate returns every problem with w, each a *FieldError naming the
// field, joined with errors.Join; nil when w can be generated.
func (w Workload) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if _, err := ParseShape(string(w.Shape)); err != nil {
		bad("Shape", "%q is not a shape: want one of %s", w.Shape, shapeList())
	}
	switch {
	case w.Nodes < 1:
		bad("Nodes", "must be at least 1, not %d", w.Nodes)
	case w.Nodes > math.MaxInt32:
		bad("Nodes", "must be at most %d, not %d", math.MaxInt32, w.Nodes)
	}
	switch {
	case w.Edges < 0:
		bad("Edges", "must not be negative, not %d", w.Edges)
	case w.Edges > math.MaxInt32:
		bad("Edges", "must be at most %d, not %d", math.MaxInt32, w.Edges)
	case w.Shape == ShapeTree && w.Nodes >= 1 && w.Edges != 0 && w.Edges != w.Nodes-1:
		bad("Edges", "a tree of %d nodes has %d edges (or give 0), not %d", w.Nodes, w.Nodes-1, w.Edges)
	case w.Edges > 0 && w.Nodes == 1:
		bad("Edges", "%d edges need at least 2 nodes (no self-loops), not 1", w.Edges)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"Types", w.Types}, {"Values", w.Values}} {
		switch {
		case f.v < 0:
			bad(f.name, "must not be negative, not %d", f.v)
		case f.v > maxPool:
			bad(f.name, "must be at most %d, not %d", maxPool, f.v)
		}
	}
	switch {
	case w.PerNode < 0:
		bad("PerNode", "must not be negative, not %d", w.PerNode)
	case w.PerNode > w.Types && w.Types >= 0:
		bad("PerNode", "%d components of distinct types need at least as many Types, not %d", w.PerNode, w.Types)
	case w.PerNode > 0 && w.Values == 0:
		bad("Values", "%d components per node need at least 1 value per type, not 0", w.PerNode)
	}
	if w.Skew < 0 || math.IsNaN(w.Skew) || math.IsInf(w.Skew, 0) {
		bad("Skew", "must be a finite number >= 0, not %v", w.Skew)
	}
	if w.Categories < 0 {
		bad("Categories", "must not be negative, not %d", w.Categories)
	}
	if w.EdgeTypes < 0 {
		bad("EdgeTypes", "must not be negative, not %d", w.EdgeTypes)
	}
	return errors.Join(errs...)
}

// EdgeCount returns the number of edges Generate emits: Edges, or Nodes-1
// for a tree given 0.
func (w Workload) EdgeCount() int {
	if w.Shape == ShapeTree && w.Edges == 0 && w.Nodes > 0 {
		return w.Nodes - 1
	}
	return w.Edges
}

// Commands returns the number of commands Generate emits: Nodes + EdgeCount.
func (w Workload) Commands() int { return w.Nodes + w.EdgeCount() }

// NodeID returns the id of generated node i: "n<i>".
func NodeID(i int) string { return "n" + strconv.Itoa(i) }

// EdgeID returns the id of generated edge i: "e<i>".
func EdgeID(i int) string { return "e" + strconv.Itoa(i) }

// Stream identifiers of the PCG generators: one per purpose, and one per
// shape for the topology, so that each is independent of the others.
const (
	streamNodes     = 0x6e6f646573 // "nodes"
	streamEdgeTypes = 0x7479706573 // "types"
	streamTopology  = 0x746f706f00 // "topo", plus the shape's index
)

func (w Workload) rand(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(w.Seed, stream))
}

func (w Workload) topologyRand() *rand.Rand {
	for i, sh := range Shapes() {
		if sh == w.Shape {
			return w.rand(streamTopology + uint64(i))
		}
	}
	return w.rand(streamTopology) // unreachable after Validate
}

// Generate calls fn with the graph's commands: an AddNode for every node,
// in id order, then a ConnectNodes for every edge, in id order (the order
// EachEdge reports). Each call gets at most batch commands in a fresh slice
// that fn may keep; a batch holds nodes or edges, never both, so once the
// first ConnectNodes arrives every node has been emitted (only the last
// batch of each kind may be short). Generate builds each batch's protobuf
// when it emits it: beside the batch it holds the topology's state, at
// most 4 bytes per node plus 8 per edge (BA's endpoint list).
//
// It returns a *FieldError for a batch < 1, Validate's error for an
// invalid w, and otherwise fn's first error, unwrapped, which stops it.
func (w Workload) Generate(batch int, fn func(cmds []*cairnv1.Command) error) error {
	var errs []error
	if batch < 1 {
		errs = append(errs, &FieldError{Field: "batch", Problem: fmt.Sprintf("must be at least 1, not %d", batch)})
	}
	if err := w.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var cmds []*cairnv1.Command
	flush := func() error {
		if len(cmds) == 0 {
			return nil
		}
		out := cmds
		cmds = nil
		return fn(out)
	}
	add := func(c *cairnv1.Command) error {
		if cmds == nil {
			cmds = make([]*cairnv1.Command, 0, min(batch, w.Commands()))
		}
		cmds = append(cmds, c)
		if len(cmds) == batch {
			return flush()
		}
		return nil
	}

	nodes, err := w.nodeMaker()
	if err != nil {
		return err
	}
	for i := range w.Nodes {
		if err := add(nodes.next(i)); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}

	types := w.rand(streamEdgeTypes)
	err = w.edges(func(i, src, dst int) error {
		cn := &cairnv1.ConnectNodes{EdgeId: EdgeID(i), Source: NodeID(src), Target: NodeID(dst)}
		if w.EdgeTypes > 0 {
			cn.EdgeType = "r" + strconv.Itoa(types.IntN(w.EdgeTypes))
		}
		return add(&cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: cn}})
	})
	if err != nil {
		return err
	}
	return flush()
}

// EachEdge calls fn with every edge, index, source node and target node,
// in the order and with the endpoints that Generate emits, without
// building protobuf. It returns Validate's error. (It cannot be called
// Edges: that is the field.)
func (w Workload) EachEdge(fn func(i, src, dst int)) error {
	if err := w.Validate(); err != nil {
		return err
	}
	return w.edges(func(i, src, dst int) error {
		fn(i, src, dst)
		return nil
	})
}

// nodeMaker builds AddNode commands: components and categories from the
// node stream.
type nodeMaker struct {
	w      Workload
	r      *rand.Rand
	types  *Zipf // nil when PerNode is 0
	values *Zipf
	picked []int // this node's types, in draw order
	mark   []int // mark[t] == node+1: type t is taken by node
}

func (w Workload) nodeMaker() (*nodeMaker, error) {
	m := &nodeMaker{w: w, r: w.rand(streamNodes)}
	if w.PerNode == 0 {
		return m, nil
	}
	var err error
	if m.types, err = NewZipf(w.Types, w.Skew); err != nil {
		return nil, err
	}
	if m.values, err = NewZipf(w.Values, w.Skew); err != nil {
		return nil, err
	}
	m.picked = make([]int, 0, w.PerNode)
	m.mark = make([]int, w.Types)
	return m, nil
}

// typeTries bounds the rejection sampling of a node's distinct types before
// it falls back to a weighted pick among the types still free.
const typeTries = 32

func (m *nodeMaker) next(i int) *cairnv1.Command {
	an := &cairnv1.AddNode{NodeId: NodeID(i)}
	if m.w.PerNode > 0 {
		m.picked = m.picked[:0]
		for range m.w.PerNode {
			t := -1
			for range typeTries {
				if c := m.types.Draw(m.r); m.mark[c] != i+1 {
					t = c
					break
				}
			}
			if t < 0 {
				t = m.freeType(i)
			}
			m.mark[t] = i + 1
			m.picked = append(m.picked, t)
		}
		an.Components = make([]*cairnv1.Component, len(m.picked))
		for j, t := range m.picked {
			an.Components[j] = &cairnv1.Component{Type: "t" + strconv.Itoa(t),
				Value: []byte("v" + strconv.Itoa(m.values.Draw(m.r)))}
		}
	}
	if m.w.Categories > 0 {
		an.Categories = []string{"c" + strconv.Itoa(m.r.IntN(m.w.Categories))}
	}
	return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: an}}
}

// freeType draws one of the types node i has not taken yet, with
// probability proportional to its Zipf weight.
func (m *nodeMaker) freeType(i int) int {
	total := 0.0
	last := -1
	for t := range m.w.Types {
		if m.mark[t] != i+1 {
			total += m.types.Prob(t)
			last = t
		}
	}
	u := m.r.Float64() * total
	for t := range m.w.Types {
		if m.mark[t] != i+1 {
			if u -= m.types.Prob(t); u < 0 {
				return t
			}
		}
	}
	return last // rounding left u at or just above 0
}

// edges generates w's topology (w valid) and calls fn with each edge.
func (w Workload) edges(fn func(i, src, dst int) error) error {
	r := w.topologyRand()
	n, e := w.Nodes, w.EdgeCount()
	if e == 0 {
		return nil
	}
	switch w.Shape {
	case ShapeBA:
		return barabasiAlbert(r, n, e, fn)
	case ShapeRMAT:
		return rmat(r, n, e, fn)
	case ShapeUniform:
		for i := range e {
			src, dst := r.IntN(n), r.IntN(n-1)
			if dst >= src {
				dst++
			}
			if err := fn(i, src, dst); err != nil {
				return err
			}
		}
		return nil
	case ShapeTree:
		for c := 1; c < n; c++ {
			if err := fn(c-1, c, r.IntN(c)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("workload: no generator for shape %q", w.Shape) // unreachable after Validate
}

// baTries bounds the degree-proportional draws for one distinct target
// before BA falls back to a uniform pick among the earlier nodes not yet
// chosen (needed when fewer than k earlier nodes have any degree).
const baTries = 64

func barabasiAlbert(r *rand.Rand, n, e int, fn func(i, src, dst int) error) error {
	ends := make([]int32, 0, 2*e) // both endpoints of every edge so far
	mark := make([]int32, n)      // mark[t] == i: node i already chose t
	for t := range mark {
		mark[t] = -1
	}
	edge := 0
	for i := 1; i < n; i++ {
		k := int(int64(i)*int64(e)/int64(n-1) - int64(i-1)*int64(e)/int64(n-1))
		distinct := k <= i
		from := len(ends)
		for j := 0; j < k; j++ {
			t := -1
			for range baTries {
				var c int
				if from == 0 {
					c = r.IntN(i)
				} else {
					c = int(ends[r.IntN(from)])
				}
				if !distinct || mark[c] != int32(i) {
					t = c
					break
				}
			}
			for t < 0 { // terminates: fewer than k <= i targets are taken
				if c := r.IntN(i); mark[c] != int32(i) {
					t = c
				}
			}
			mark[t] = int32(i)
			ends = append(ends, int32(i), int32(t))
			if err := fn(edge, i, t); err != nil {
				return err
			}
			edge++
		}
	}
	return nil
}

// R-MAT quadrant probabilities (Chakrabarti, Zhan, Faloutsos 2004); d is
// the rest, 0.05.
const (
	rmatA = 0.57
	rmatB = 0.19
	rmatC = 0.19
)

func rmat(r *rand.Rand, n, e int, fn func(i, src, dst int) error) error {
	scale := bits.Len(uint(n - 1)) // 2^scale >= n
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	r.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	for i := 0; i < e; {
		src, dst := 0, 0
		for range scale {
			u := r.Float64()
			src, dst = src<<1, dst<<1
			switch {
			case u < rmatA:
			case u < rmatA+rmatB:
				dst |= 1
			case u < rmatA+rmatB+rmatC:
				src |= 1
			default:
				src, dst = src|1, dst|1
			}
		}
		if src >= n || dst >= n || src == dst {
			continue
		}
		if err := fn(i, int(perm[src]), int(perm[dst])); err != nil {
			return err
		}
		i++
	}
	return nil
}
