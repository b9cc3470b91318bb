package bench

import (
	"crypto/sha256"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// wlCollect runs Generate and checks what every stream must satisfy: batch
// sizes, nodes before edges and never in one batch, ids in order, existing
// endpoints, no self-loops, the component pool, categories and edge types.
// It returns the commands and the edges.
func wlCollect(t *testing.T, w Workload, batch int) (cmds []*cairnv1.Command, edges [][2]int) {
	t.Helper()
	nodes := 0
	err := w.Generate(batch, func(b []*cairnv1.Command) error {
		if len(b) == 0 || len(b) > batch {
			t.Fatalf("batch of %d commands, want 1..%d", len(b), batch)
		}
		_, first := b[0].GetKind().(*cairnv1.Command_AddNode)
		for _, c := range b {
			if _, ok := c.GetKind().(*cairnv1.Command_AddNode); ok != first {
				t.Fatalf("batch mixes AddNode and ConnectNodes")
			}
		}
		cmds = append(cmds, b...)
		return nil
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(cmds) != w.Commands() {
		t.Fatalf("%d commands, want Commands() = %d", len(cmds), w.Commands())
	}
	for i, c := range cmds {
		switch k := c.GetKind().(type) {
		case *cairnv1.Command_AddNode:
			if i != nodes {
				t.Fatalf("command %d: AddNode after a ConnectNodes", i)
			}
			wlCheckNode(t, w, i, k.AddNode)
			nodes++
		case *cairnv1.Command_ConnectNodes:
			cn := k.ConnectNodes
			j := i - w.Nodes
			if cn.GetEdgeId() != EdgeID(j) {
				t.Fatalf("command %d: edge id %q, want %q", i, cn.GetEdgeId(), EdgeID(j))
			}
			src, dst := wlParseID(t, "n", cn.GetSource(), w.Nodes), wlParseID(t, "n", cn.GetTarget(), w.Nodes)
			if src == dst {
				t.Fatalf("edge %d is a self-loop on %d", j, src)
			}
			if w.EdgeTypes == 0 && cn.GetEdgeType() != "" {
				t.Fatalf("edge %d has type %q, want none", j, cn.GetEdgeType())
			} else if w.EdgeTypes > 0 {
				wlParseID(t, "r", cn.GetEdgeType(), w.EdgeTypes)
			}
			edges = append(edges, [2]int{src, dst})
		default:
			t.Fatalf("command %d is a %T", i, k)
		}
	}
	if nodes != w.Nodes || len(edges) != w.EdgeCount() {
		t.Fatalf("%d nodes and %d edges, want %d and %d", nodes, len(edges), w.Nodes, w.EdgeCount())
	}
	// EachEdge reports the same edges.
	var again [][2]int
	if err := w.EachEdge(func(i, src, dst int) {
		if i != len(again) {
			t.Fatalf("EachEdge: edge %d out of order", i)
		}
		again = append(again, [2]int{src, dst})
	}); err != nil {
		t.Fatalf("EachEdge: %v", err)
	}
	if !slices.Equal(edges, again) {
		t.Fatalf("EachEdge differs from Generate's edges")
	}
	return cmds, edges
}

func wlCheckNode(t *testing.T, w Workload, i int, an *cairnv1.AddNode) {
	t.Helper()
	if an.GetNodeId() != NodeID(i) {
		t.Fatalf("node %d has id %q", i, an.GetNodeId())
	}
	if len(an.GetComponents()) != w.PerNode {
		t.Fatalf("node %d has %d components, want %d", i, len(an.GetComponents()), w.PerNode)
	}
	seen := map[string]bool{}
	for _, c := range an.GetComponents() {
		if seen[c.GetType()] {
			t.Fatalf("node %d has type %s twice", i, c.GetType())
		}
		seen[c.GetType()] = true
		wlParseID(t, "t", c.GetType(), w.Types)
		wlParseID(t, "v", string(c.GetValue()), w.Values)
	}
	switch cats := an.GetCategories(); {
	case w.Categories == 0 && len(cats) != 0:
		t.Fatalf("node %d has categories %q, want none", i, cats)
	case w.Categories > 0 && len(cats) != 1:
		t.Fatalf("node %d has categories %q, want one", i, cats)
	case w.Categories > 0:
		wlParseID(t, "c", cats[0], w.Categories)
	}
}

// wlParseID returns n of "<prefix><n>", failing unless 0 <= n < limit.
func wlParseID(t *testing.T, prefix, s string, limit int) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(s, prefix))
	if !strings.HasPrefix(s, prefix) || err != nil || n < 0 || n >= limit {
		t.Fatalf("%q is not %s0..%s%d", s, prefix, prefix, limit-1)
	}
	return n
}

func wlSmall(shape Shape) Workload {
	w := DefaultWorkload()
	w.Shape, w.Nodes, w.Edges = shape, 2000, 6000
	if shape == ShapeTree {
		w.Edges = 0
	}
	return w
}

func TestWorkloadSizes(t *testing.T) {
	for _, sh := range Shapes() {
		t.Run(string(sh), func(t *testing.T) {
			wlCollect(t, wlSmall(sh), 97)
		})
	}
	edge := map[string]Workload{
		"one node":              {Shape: ShapeUniform, Nodes: 1},
		"tree of one":           {Shape: ShapeTree, Nodes: 1},
		"two nodes rmat":        {Shape: ShapeRMAT, Nodes: 2, Edges: 50, EdgeTypes: 1},
		"two nodes ba":          {Shape: ShapeBA, Nodes: 2, Edges: 5},
		"ba denser than K_n":    {Shape: ShapeBA, Nodes: 5, Edges: 40},
		"ba sparse, m < 1":      {Shape: ShapeBA, Nodes: 1000, Edges: 300, Categories: 1},
		"rmat n = 2^k + 1":      {Shape: ShapeRMAT, Nodes: 1025, Edges: 5000},
		"tree explicit edges":   {Shape: ShapeTree, Nodes: 300, Edges: 299},
		"all types, steep skew": {Shape: ShapeUniform, Nodes: 500, Edges: 10, Types: 12, Values: 3, PerNode: 12, Skew: 4},
		"no pool":               {Shape: ShapeBA, Nodes: 100, Edges: 300, Types: 5},
	}
	for name, w := range edge {
		t.Run(name, func(t *testing.T) {
			wlCollect(t, w, 7)
		})
	}
}

// wlDigest hashes every command's deterministic encoding.
func wlDigest(t *testing.T, w Workload, batch int) [32]byte {
	t.Helper()
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	if err := w.Generate(batch, func(cmds []*cairnv1.Command) error {
		for _, c := range cmds {
			b, err := opts.Marshal(c)
			if err != nil {
				return err
			}
			h.Write(strconv.AppendInt(nil, int64(len(b)), 10))
			h.Write(b)
		}
		return nil
	}); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return [32]byte(h.Sum(nil))
}

func TestWorkloadDeterminism(t *testing.T) {
	seen := map[[32]byte]string{}
	for _, sh := range Shapes() {
		w := wlSmall(sh)
		a, b, c := wlDigest(t, w, 100), wlDigest(t, w, 100), wlDigest(t, w, 33)
		if a != b || a != c {
			t.Errorf("%s: the same workload gave different commands (batch 100 twice, then 33)", sh)
		}
		w.Seed++
		d := wlDigest(t, w, 100)
		if d == a {
			t.Errorf("%s: seeds %d and %d gave the same commands", sh, w.Seed-1, w.Seed)
		}
		for _, x := range []struct {
			d    [32]byte
			name string
		}{{a, string(sh) + " seed 1"}, {d, string(sh) + " seed 2"}} {
			if other, ok := seen[x.d]; ok {
				t.Errorf("%s and %s gave the same commands", x.name, other)
			}
			seen[x.d] = x.name
		}
	}
}

// wlDegrees returns every node's total degree (in + out).
func wlDegrees(t *testing.T, w Workload) []int {
	t.Helper()
	deg := make([]int, w.Nodes)
	if err := w.EachEdge(func(_, src, dst int) { deg[src]++; deg[dst]++ }); err != nil {
		t.Fatalf("EachEdge: %v", err)
	}
	return deg
}

type wlDegreeStats struct {
	mean, variance float64
	max            int
	top1           float64 // share of endpoints held by the top 1% of nodes
}

func wlStats(deg []int) wlDegreeStats {
	var s wlDegreeStats
	sum := 0
	for _, d := range deg {
		sum += d
		s.max = max(s.max, d)
	}
	s.mean = float64(sum) / float64(len(deg))
	for _, d := range deg {
		s.variance += (float64(d) - s.mean) * (float64(d) - s.mean)
	}
	s.variance /= float64(len(deg) - 1)
	sorted := slices.Clone(deg)
	slices.Sort(sorted)
	slices.Reverse(sorted)
	top := 0
	for _, d := range sorted[:max(1, len(deg)/100)] {
		top += d
	}
	s.top1 = float64(top) / float64(sum)
	return s
}

// wlHurwitzZeta returns ζ(a, q) = Σ_{k>=0} (q+k)^-a for a > 1, q >= 1: a
// direct sum of the first terms and the Euler–Maclaurin tail (error far
// below 1e-10 for these arguments).
func wlHurwitzZeta(a, q float64) float64 {
	const terms = 50
	s := 0.0
	for k := range terms {
		s += math.Pow(q+float64(k), -a)
	}
	x := q + terms
	return s + math.Pow(x, 1-a)/(a-1) + math.Pow(x, -a)/2 + a*math.Pow(x, -a-1)/12 -
		a*(a+1)*(a+2)*math.Pow(x, -a-3)/720
}

// wlPowerLawMLE fits the discrete power law p(x) = x^-α / ζ(α, xmin) to the
// values >= xmin by maximum likelihood (Clauset, Shalizi, Newman 2009,
// eq. 3.5), by golden-section search over α in (1, 6). It also returns the
// sample size.
func wlPowerLawMLE(xs []int, xmin int) (alpha float64, n int) {
	sumLog := 0.0
	for _, x := range xs {
		if x >= xmin {
			sumLog += math.Log(float64(x))
			n++
		}
	}
	negLL := func(a float64) float64 {
		return float64(n)*math.Log(wlHurwitzZeta(a, float64(xmin))) + a*sumLog
	}
	lo, hi := 1.01, 6.0
	g := (math.Sqrt(5) - 1) / 2
	for hi-lo > 1e-6 {
		m1, m2 := hi-g*(hi-lo), lo+g*(hi-lo)
		if negLL(m1) < negLL(m2) {
			hi = m2
		} else {
			lo = m1
		}
	}
	return (lo + hi) / 2, n
}

func TestWorkloadBADegrees(t *testing.T) {
	w := DefaultWorkload()
	w.Nodes, w.Edges = 20_000, 60_000 // m = 3
	deg := wlDegrees(t, w)
	s := wlStats(deg)
	for _, xmin := range []int{6, 10} { // 2m, and further into the tail
		alpha, n := wlPowerLawMLE(deg, xmin)
		t.Logf("BA: tail exponent α = %.3f by discrete MLE over %d nodes with degree >= %d", alpha, n, xmin)
		if alpha < 2.5 || alpha > 3.5 {
			t.Errorf("BA: α = %.3f (x_min %d), want 2.5..3.5 (theory 3)", alpha, xmin)
		}
	}
	t.Logf("BA: mean degree %.2f, max %d, top 1%% hold %.1f%% of endpoints", s.mean, s.max, 100*s.top1)
	if float64(s.max) < 20*s.mean {
		t.Errorf("BA: max degree %d, want > 20 × mean %.2f", s.max, s.mean)
	}
	if m := slices.Min(deg); m < 3 {
		t.Errorf("BA: a node has degree %d, want >= m = 3", m)
	}
}

func TestWorkloadRMATAndUniformDegrees(t *testing.T) {
	w := DefaultWorkload()
	w.Nodes, w.Edges = 20_000, 100_000 // mean degree 10
	w.Shape = ShapeRMAT
	r := wlStats(wlDegrees(t, w))
	t.Logf("R-MAT: mean degree %.2f, max %d (%.0f × mean), top 1%% hold %.1f%% of endpoints, variance/mean %.1f",
		r.mean, r.max, float64(r.max)/r.mean, 100*r.top1, r.variance/r.mean)
	if float64(r.max) <= 20*r.mean {
		t.Errorf("R-MAT: max degree %d, want > 20 × mean %.2f", r.max, r.mean)
	}
	if r.top1 <= 0.10 {
		t.Errorf("R-MAT: top 1%% hold %.1f%% of endpoints, want > 10%%", 100*r.top1)
	}

	w.Shape = ShapeUniform
	u := wlStats(wlDegrees(t, w))
	dispersion := u.variance / u.mean
	limit := u.mean + 8*math.Sqrt(u.mean)
	t.Logf("uniform: mean degree %.2f, max %d (limit %.1f), top 1%% hold %.1f%%, variance/mean %.3f",
		u.mean, u.max, limit, 100*u.top1, dispersion)
	if dispersion < 0.8 || dispersion > 1.25 {
		t.Errorf("uniform: index of dispersion %.3f, want 0.8..1.25 (binomial ≈ 1)", dispersion)
	}
	if float64(u.max) >= limit {
		t.Errorf("uniform: max degree %d, want < mean + 8·sqrt(mean) = %.1f", u.max, limit)
	}
}

func TestWorkloadRMATSpreadsHubs(t *testing.T) {
	// The permutation puts the hubs anywhere: the 10 busiest nodes are not
	// the 10 lowest ids (without it they would all be among them).
	w := DefaultWorkload()
	w.Shape, w.Nodes, w.Edges = ShapeRMAT, 4096, 20_000
	deg := wlDegrees(t, w)
	ids := make([]int, len(deg))
	for i := range ids {
		ids[i] = i
	}
	slices.SortStableFunc(ids, func(a, b int) int { return deg[b] - deg[a] })
	if slices.Max(ids[:10]) < 64 {
		t.Errorf("R-MAT: the 10 busiest nodes %v all have low ids", ids[:10])
	}
}

func TestWorkloadTree(t *testing.T) {
	for _, edges := range []int{0, 4999} {
		w := DefaultWorkload()
		w.Shape, w.Nodes, w.Edges = ShapeTree, 5000, edges
		_, es := wlCollect(t, w, 512)
		if len(es) != w.Nodes-1 {
			t.Fatalf("tree: %d edges, want %d", len(es), w.Nodes-1)
		}
		parent := make([]int, w.Nodes)
		for i := range parent {
			parent[i] = i
		}
		find := func(x int) int {
			for parent[x] != x {
				parent[x] = parent[parent[x]]
				x = parent[x]
			}
			return x
		}
		components := w.Nodes
		for i, e := range es {
			a, b := find(e[0]), find(e[1])
			if a == b {
				t.Fatalf("tree: edge %d (%d→%d) closes a cycle", i, e[0], e[1])
			}
			parent[a] = b
			components--
		}
		if components != 1 {
			t.Fatalf("tree: %d components, want 1", components)
		}
	}
}

// wlChiSquare returns Pearson's statistic of counts against probabilities.
func wlChiSquare(counts []int, probs []float64) float64 {
	n := 0
	for _, c := range counts {
		n += c
	}
	x2 := 0.0
	for i, c := range counts {
		e := float64(n) * probs[i]
		x2 += (float64(c) - e) * (float64(c) - e) / e
	}
	return x2
}

// wlChiSquareCritical returns the chi-square quantile for df degrees of
// freedom at p = 0.001 (z = 3.0902), by the Wilson–Hilferty approximation
// (within 1% for df >= 3). Every seed here is fixed, so the tests are
// deterministic; the 0.1% level says how unlikely a pass by chance would be
// for a wrong distribution.
func wlChiSquareCritical(df int) float64 {
	k := float64(df)
	c := 1 - 2/(9*k) + 3.0902*math.Sqrt(2/(9*k))
	return k * c * c * c
}

func wlUniformProbs(n int) []float64 {
	p := make([]float64, n)
	for i := range p {
		p[i] = 1 / float64(n)
	}
	return p
}

func TestWorkloadComponentSkew(t *testing.T) {
	for _, skew := range []float64{0, 1} {
		w := DefaultWorkload()
		w.Shape, w.Nodes, w.Edges, w.Skew = ShapeUniform, 20_000, 20_000, skew
		cmds, _ := wlCollect(t, w, 1000)
		values := make([]int, w.Values)
		types := make([]int, w.Types)
		cats := make([]int, w.Categories)
		etypes := make([]int, w.EdgeTypes)
		for _, c := range cmds {
			if an := c.GetAddNode(); an != nil {
				for _, comp := range an.GetComponents() {
					values[wlParseID(t, "v", string(comp.GetValue()), w.Values)]++
					types[wlParseID(t, "t", comp.GetType(), w.Types)]++
				}
				cats[wlParseID(t, "c", an.GetCategories()[0], w.Categories)]++
			} else {
				etypes[wlParseID(t, "r", c.GetConnectNodes().GetEdgeType(), w.EdgeTypes)]++
			}
		}
		draws := w.Nodes * w.PerNode
		z, err := NewZipf(w.Values, skew)
		if err != nil {
			t.Fatal(err)
		}
		probs := make([]float64, w.Values)
		for k := range probs {
			probs[k] = z.Prob(k)
		}
		// The top value's share: binomial, so 5 standard deviations of a
		// proportion over the draws (±0.0081 for skew 1, 60,000 draws).
		share, want := float64(values[0])/float64(draws), probs[0]
		tol := 5 * math.Sqrt(want*(1-want)/float64(draws))
		x2, crit := wlChiSquare(values, probs), wlChiSquareCritical(w.Values-1)
		t.Logf("skew %g: v0 share %.4f, expected %.4f ± %.4f; values χ² = %.1f (df %d, 0.1%% critical %.1f)",
			skew, share, want, tol, x2, w.Values-1, crit)
		if math.Abs(share-want) > tol {
			t.Errorf("skew %g: v0 share %.4f, want %.4f ± %.4f", skew, share, want, tol)
		}
		if x2 > crit {
			t.Errorf("skew %g: values χ² = %.1f > %.1f: not the Zipf(%g) distribution", skew, x2, crit, skew)
		}
		if skew == 0 {
			// Without replacement from a uniform pool each type is still
			// equally likely.
			x2, crit := wlChiSquare(types, wlUniformProbs(w.Types)), wlChiSquareCritical(w.Types-1)
			t.Logf("skew 0: types χ² = %.1f (df %d, critical %.1f)", x2, w.Types-1, crit)
			if x2 > crit {
				t.Errorf("skew 0: types χ² = %.1f > %.1f: not uniform", x2, crit)
			}
		} else if types[0] <= types[w.Types-1] {
			t.Errorf("skew %g: t0 drawn %d times, t9 %d: want t0 the more frequent", skew, types[0], types[w.Types-1])
		}
		for _, u := range []struct {
			name   string
			counts []int
		}{{"categories", cats}, {"edge types", etypes}} {
			x2, crit := wlChiSquare(u.counts, wlUniformProbs(len(u.counts))), wlChiSquareCritical(len(u.counts)-1)
			if x2 > crit {
				t.Errorf("skew %g: %s χ² = %.1f > %.1f: not uniform", skew, u.name, x2, crit)
			}
		}
	}
}

func TestZipf(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, s := range []float64{0, 0.5, 1, 1.5, 3} {
		const n, draws = 40, 200_000
		z, err := NewZipf(n, s)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		probs := make([]float64, n)
		for k := range probs {
			probs[k] = z.Prob(k)
			sum += probs[k]
			if k > 0 && probs[k] > probs[k-1]+1e-15 {
				t.Fatalf("s %g: Prob(%d) = %g > Prob(%d) = %g", s, k, probs[k], k-1, probs[k-1])
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Fatalf("s %g: probabilities sum to %g", s, sum)
		}
		if want := math.Pow(2, -s); math.Abs(probs[1]/probs[0]-want) > 1e-9 {
			t.Fatalf("s %g: Prob(1)/Prob(0) = %g, want %g", s, probs[1]/probs[0], want)
		}
		counts := make([]int, n)
		for range draws {
			counts[z.Draw(r)]++
		}
		// Pool the cells expected below 5 draws into the last one kept.
		kept := n
		for kept > 1 && probs[kept-1]*draws < 5 {
			kept--
		}
		pc, pp := slices.Clone(counts[:kept]), slices.Clone(probs[:kept])
		for k := kept; k < n; k++ {
			pc[kept-1] += counts[k]
			pp[kept-1] += probs[k]
		}
		x2, crit := wlChiSquare(pc, pp), wlChiSquareCritical(kept-1)
		t.Logf("Zipf(n %d, s %g): %d draws, χ² = %.1f (df %d, critical %.1f)", n, s, draws, x2, kept-1, crit)
		if x2 > crit {
			t.Errorf("Zipf(n %d, s %g): χ² = %.1f > %.1f", n, s, x2, crit)
		}
	}
	one, err := NewZipf(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if k := one.Draw(r); k != 0 {
			t.Fatalf("Zipf over one rank drew %d", k)
		}
	}
	for _, bad := range []struct {
		n int
		s float64
	}{{0, 1}, {-1, 1}, {5, -0.5}, {5, math.NaN()}, {5, math.Inf(1)}} {
		var fe *FieldError
		if _, err := NewZipf(bad.n, bad.s); !errors.As(err, &fe) {
			t.Errorf("NewZipf(%d, %g) = %v, want a *FieldError", bad.n, bad.s, err)
		}
	}
}

func TestParseShape(t *testing.T) {
	for _, sh := range Shapes() {
		if got, err := ParseShape(string(sh)); err != nil || got != sh {
			t.Errorf("ParseShape(%q) = %q, %v", sh, got, err)
		}
	}
	_, err := ParseShape("BA")
	if err == nil {
		t.Fatal("ParseShape(\"BA\") succeeded")
	}
	for _, sh := range Shapes() {
		if !strings.Contains(err.Error(), string(sh)) {
			t.Errorf("ParseShape error %q does not name %q", err, sh)
		}
	}
}

func TestWorkloadValidate(t *testing.T) {
	ok := DefaultWorkload()
	mod := func(f func(w *Workload)) Workload {
		w := ok
		f(&w)
		return w
	}
	tests := []struct {
		name   string
		w      Workload
		fields []string // the FieldErrors expected, in order; none: valid
	}{
		{"default", ok, nil},
		{"every shape", mod(func(w *Workload) { w.Shape = ShapeRMAT }), nil},
		{"tree, 0 edges", mod(func(w *Workload) { w.Shape, w.Edges = ShapeTree, 0 }), nil},
		{"tree, n-1 edges", mod(func(w *Workload) { w.Shape, w.Edges = ShapeTree, w.Nodes-1 }), nil},
		{"no components", mod(func(w *Workload) { w.Types, w.Values, w.PerNode = 0, 0, 0 }), nil},
		{"zero categories and edge types", mod(func(w *Workload) { w.Categories, w.EdgeTypes = 0, 0 }), nil},
		{"one node, no edges", mod(func(w *Workload) { w.Nodes, w.Edges = 1, 0 }), nil},
		{"skew 0 and 2.5", mod(func(w *Workload) { w.Skew = 2.5 }), nil},
		{"bad shape", mod(func(w *Workload) { w.Shape = "star" }), []string{"Shape"}},
		{"empty shape", mod(func(w *Workload) { w.Shape = "" }), []string{"Shape"}},
		{"no nodes", mod(func(w *Workload) { w.Nodes, w.Edges = 0, 0 }), []string{"Nodes"}},
		{"negative nodes", mod(func(w *Workload) { w.Nodes = -5 }), []string{"Nodes"}},
		{"too many nodes", mod(func(w *Workload) { w.Nodes = math.MaxInt32 + 1 }), []string{"Nodes"}},
		{"negative edges", mod(func(w *Workload) { w.Edges = -1 }), []string{"Edges"}},
		{"edges on one node", mod(func(w *Workload) { w.Nodes, w.Edges = 1, 3 }), []string{"Edges"}},
		{"tree, wrong edges", mod(func(w *Workload) { w.Shape = ShapeTree }), []string{"Edges"}},
		{"tree, n edges", mod(func(w *Workload) { w.Shape, w.Edges = ShapeTree, w.Nodes }), []string{"Edges"}},
		{"per node > types", mod(func(w *Workload) { w.PerNode = w.Types + 1 }), []string{"PerNode"}},
		{"negative pool", mod(func(w *Workload) { w.Types, w.Values, w.PerNode = -1, -1, -1 }),
			[]string{"Types", "Values", "PerNode"}},
		{"pool too big", mod(func(w *Workload) { w.Types, w.Values = maxPool+1, maxPool+1 }), []string{"Types", "Values"}},
		{"components without values", mod(func(w *Workload) { w.Values = 0 }), []string{"Values"}},
		{"negative skew", mod(func(w *Workload) { w.Skew = -1 }), []string{"Skew"}},
		{"NaN skew", mod(func(w *Workload) { w.Skew = math.NaN() }), []string{"Skew"}},
		{"infinite skew", mod(func(w *Workload) { w.Skew = math.Inf(1) }), []string{"Skew"}},
		{"negative categories", mod(func(w *Workload) { w.Categories = -1 }), []string{"Categories"}},
		{"negative edge types", mod(func(w *Workload) { w.EdgeTypes = -2 }), []string{"EdgeTypes"}},
		{"everything", Workload{Shape: "x", Nodes: -1, Edges: -1, Types: 1, Values: 1, PerNode: 2, Skew: -1,
			Categories: -1, EdgeTypes: -1}, []string{"Shape", "Nodes", "Edges", "PerNode", "Skew", "Categories", "EdgeTypes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.w.Validate()
			got := wlFieldsOf(err)
			if !slices.Equal(got, tt.fields) {
				t.Fatalf("Validate() = %v: fields %q, want %q", err, got, tt.fields)
			}
			if err != nil {
				for _, f := range tt.fields {
					if !strings.Contains(err.Error(), f) {
						t.Errorf("error %q does not name %s", err, f)
					}
				}
				if gerr := tt.w.Generate(10, func([]*cairnv1.Command) error { return nil }); gerr == nil {
					t.Errorf("Generate accepted an invalid workload")
				}
				if eerr := tt.w.EachEdge(func(int, int, int) {}); eerr == nil {
					t.Errorf("EachEdge accepted an invalid workload")
				}
			}
		})
	}
}

// FuzzWorkload checks that Validate never panics, and that every valid
// workload small enough to generate here obeys wlCollect's checks.
func FuzzWorkload(f *testing.F) {
	f.Add("ba", 100, 300, 10, 100, 3, 1.0, 5, 4, uint64(1), 7)
	f.Add("rmat", 2, 9, 1, 1, 1, 0.0, 0, 0, uint64(2), 1)
	f.Add("tree", 50, 0, 3, 2, 3, 5.0, 1, 1, uint64(3), 4)
	f.Add("uniform", 30, 100, 0, 0, 0, 0.5, 2, 0, uint64(4), 1000)
	f.Add("tree", 5, 5, -1, 0, 2, -1.0, -1, -1, uint64(5), 0)
	f.Add("star", -1, -1, 1, 1, 2, math.NaN(), 0, 0, uint64(6), -1)
	f.Fuzz(func(t *testing.T, shape string, nodes, edges, types, values, perNode int, skew float64,
		categories, edgeTypes int, seed uint64, batch int) {
		w := Workload{Shape: Shape(shape), Nodes: nodes, Edges: edges, Types: types, Values: values,
			PerNode: perNode, Skew: skew, Categories: categories, EdgeTypes: edgeTypes, Seed: seed}
		if err := w.Validate(); err != nil {
			if len(wlFieldsOf(err)) == 0 {
				t.Fatalf("Validate() = %v: no *FieldError", err)
			}
			return
		}
		if w.Commands() > 2000 || w.Types > 1000 || w.Values > 1000 || w.Categories > 1000 ||
			w.EdgeTypes > 1000 || batch < 1 || batch > 5000 {
			return
		}
		wlCollect(t, w, batch)
	})
}

// wlFieldsOf lists the Field of every *FieldError joined in err.
func wlFieldsOf(err error) []string {
	if err == nil {
		return nil
	}
	var fields []string
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*FieldError); ok {
			fields = append(fields, fe.Field)
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return fields
}

func TestGenerateBatchAndCallbackErrors(t *testing.T) {
	w := wlSmall(ShapeBA)
	for _, batch := range []int{0, -1} {
		called := false
		err := w.Generate(batch, func([]*cairnv1.Command) error { called = true; return nil })
		if got := wlFieldsOf(err); !slices.Equal(got, []string{"batch"}) || called {
			t.Errorf("Generate(%d) = %v (fields %q, fn called %v), want a batch FieldError", batch, err, got, called)
		}
	}
	stop := errors.New("stop")
	nodeBatches, edgeBatches := (w.Nodes+99)/100, (w.EdgeCount()+99)/100
	// At a node batch, the first edge batch, the last batch.
	for _, at := range []int{1, nodeBatches + 1, nodeBatches + edgeBatches} {
		calls := 0
		err := w.Generate(100, func([]*cairnv1.Command) error {
			if calls++; calls == at {
				return stop
			}
			return nil
		})
		if err != stop || calls != at {
			t.Errorf("fn failing at call %d: Generate = %v after %d calls, want %v after %d", at, err, calls, stop, at)
		}
	}
	// Each batch is a fresh slice: keeping them keeps the commands.
	var kept [][]*cairnv1.Command
	_ = w.Generate(64, func(b []*cairnv1.Command) error { kept = append(kept, b); return nil })
	if got := kept[0][0].GetAddNode().GetNodeId(); got != NodeID(0) {
		t.Errorf("the first kept batch starts with %q, want %q", got, NodeID(0))
	}
}

func TestWorkloadDefaults(t *testing.T) {
	w := DefaultWorkload()
	want := Workload{Shape: ShapeBA, Nodes: 10_000, Edges: 30_000, Types: 10, Values: 100, PerNode: 3,
		Skew: 1, Categories: 5, EdgeTypes: 4, Seed: 1}
	if w != want {
		t.Errorf("DefaultWorkload() = %+v, want %+v", w, want)
	}
	if w.Commands() != 40_000 {
		t.Errorf("Commands() = %d, want 40,000", w.Commands())
	}
	tree := Workload{Shape: ShapeTree, Nodes: 10}
	if tree.EdgeCount() != 9 || tree.Commands() != 19 {
		t.Errorf("tree of 10 nodes: EdgeCount %d, Commands %d, want 9 and 19", tree.EdgeCount(), tree.Commands())
	}
	if NodeID(42) != "n42" || EdgeID(7) != "e7" {
		t.Errorf("NodeID(42), EdgeID(7) = %q, %q", NodeID(42), EdgeID(7))
	}
}

// BenchmarkGenerate measures BA generation, protobuf included, at 100,000
// nodes and 300,000 edges (the 1M/3M graph's proportions).
func BenchmarkGenerate(b *testing.B) {
	w := DefaultWorkload()
	w.Nodes, w.Edges = 100_000, 300_000
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Generate(1000, func([]*cairnv1.Command) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.Commands())*float64(b.N)/b.Elapsed().Seconds(), "commands/s")
}
