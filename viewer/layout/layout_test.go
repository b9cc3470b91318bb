package layout

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/cairn-graph/cairn/internal/testseed"
	"github.com/cairn-graph/cairn/viewer/scene"
)

// op is one Placer call (or Relax, FirstLayout, Pin, Unpin) of a script.
type op struct {
	kind    byte // 'n' add node, 'N' remove node, 'e' add edge, 'E' remove edge, 't' EndTx, 'r' Relax, 'f' FirstLayout, 'p' pin, 'u' unpin
	a, b, c uint32
}

func (o op) apply(l *Layout) {
	switch o.kind {
	case 'n':
		l.AddNode(o.a)
	case 'N':
		l.RemoveNode(o.a)
	case 'e':
		l.AddEdge(o.a, o.b, o.c)
	case 'E':
		l.RemoveEdge(o.a)
	case 't':
		l.EndTx()
	case 'r':
		l.Relax(int(o.a))
	case 'f':
		l.FirstLayout(int(o.a))
	case 'p':
		l.Pin(o.a)
	case 'u':
		l.Unpin(o.a)
	}
}

// script is a random history: a bulk first transaction of nodes nodes and
// about 2·nodes edges, a first layout, then txs transactions of a few
// random adds, removals (slots reused) and pins each.
func script(seed uint64, nodes, txs int) []op {
	r := rand.New(rand.NewPCG(seed, 11))
	var ops []op
	live := make([]bool, nodes)
	type edge struct{ f, t uint32 }
	var edges []edge
	var eliveN []bool
	var freeNodes []uint32
	var freeEdges []uint32
	addEdge := func(f, t uint32) {
		var s uint32
		if len(freeEdges) > 0 && r.IntN(2) == 0 {
			s = freeEdges[len(freeEdges)-1]
			freeEdges = freeEdges[:len(freeEdges)-1]
			edges[s], eliveN[s] = edge{f, t}, true
		} else {
			s = uint32(len(edges))
			edges = append(edges, edge{f, t})
			eliveN = append(eliveN, true)
		}
		ops = append(ops, op{kind: 'e', a: s, b: f, c: t})
	}
	liveNode := func() uint32 {
		for {
			if i := uint32(r.IntN(len(live))); live[i] {
				return i
			}
		}
	}
	for i := range nodes {
		live[i] = true
		ops = append(ops, op{kind: 'n', a: uint32(i)})
	}
	for range 2 * nodes {
		f := uint32(r.IntN(nodes))
		t := (f + 1 + uint32(r.IntN(16))) % uint32(nodes)
		if r.IntN(5) == 0 {
			t = uint32(r.IntN(nodes))
		}
		addEdge(f, t)
	}
	ops = append(ops, op{kind: 't'}, op{kind: 'f', a: 10})
	for range txs {
		for range 1 + r.IntN(4) {
			switch k := r.IntN(10); {
			case k < 4: // a node with a few edges
				var s uint32
				if len(freeNodes) > 0 && r.IntN(2) == 0 {
					s = freeNodes[len(freeNodes)-1]
					freeNodes = freeNodes[:len(freeNodes)-1]
				} else {
					s = uint32(len(live))
					live = append(live, false)
				}
				nb := make([]uint32, 0, 3)
				for range r.IntN(3) {
					nb = append(nb, liveNode())
				}
				live[s] = true
				ops = append(ops, op{kind: 'n', a: s})
				for _, j := range nb {
					addEdge(s, j)
				}
			case k < 6:
				addEdge(liveNode(), liveNode())
			case k < 7:
				s := liveNode()
				live[s] = false
				freeNodes = append(freeNodes, s)
				ops = append(ops, op{kind: 'N', a: s})
				for e := range edges {
					if eliveN[e] && (edges[e].f == s || edges[e].t == s) {
						eliveN[e] = false
						freeEdges = append(freeEdges, uint32(e))
					}
				}
			case k < 8:
				for e := range edges {
					if eliveN[e] {
						eliveN[e] = false
						freeEdges = append(freeEdges, uint32(e))
						ops = append(ops, op{kind: 'E', a: uint32(e)})
						break
					}
				}
			case k < 9:
				ops = append(ops, op{kind: 'p', a: liveNode()})
			default:
				ops = append(ops, op{kind: 'u', a: liveNode()})
			}
		}
		ops = append(ops, op{kind: 't'})
		if r.IntN(20) == 0 {
			ops = append(ops, op{kind: 'r', a: 2})
		}
	}
	return ops
}

// smallParams make the multilevel path and several workers' blocks run on
// a test-sized graph.
func smallParams() Params {
	p := DefaultParams()
	p.MultilevelAbove = 500
	p.Coarsest = 50
	p.HotCap = 600
	return p
}

func run(t testing.TB, p Params, seed uint64, ops []op, opts ...Option) *Layout {
	t.Helper()
	l, err := New(p, seed, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		o.apply(l)
	}
	return l
}

func TestDeterminismAcrossWorkersAndGOMAXPROCS(t *testing.T) {
	seed := testseed.Seed(t, 1)
	ops := script(seed, 1500, 40)
	// A hub joined to 700 nodes makes one transaction's hot set span
	// several workers' blocks.
	ops = append(ops, op{kind: 'n', a: 100_000})
	for i := range uint32(700) {
		ops = append(ops, op{kind: 'e', a: 100_000 + i, b: 100_000, c: i})
	}
	ops = append(ops, op{kind: 't'})
	want := run(t, smallParams(), seed, ops, WithWorkers(1)).Hash()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 4, 8} {
		runtime.GOMAXPROCS(procs)
		for _, workers := range []int{0, 1, 2, 3, 8} {
			var opts []Option
			if workers > 0 {
				opts = append(opts, WithWorkers(workers))
			}
			if got := run(t, smallParams(), seed, ops, opts...).Hash(); got != want {
				t.Fatalf("GOMAXPROCS %d, workers %d: hash %x, want %x (with 1 worker)", procs, workers, got, want)
			}
		}
	}
	if other := run(t, smallParams(), seed+1, ops).Hash(); other == want {
		t.Fatalf("seeds %d and %d give the same hash %x: the seed is not used", seed, seed+1, want)
	}
}

func TestStabilityAddingOneNode(t *testing.T) {
	seed := testseed.Seed(t, 2)
	g := genGraph(seed, 2000, 4000)
	settled := newLayout(t, seed)
	g.load(settled)
	settled.FirstLayout(30)
	settled.Relax(100)
	var edgeLen []float64
	for e := range g.from {
		ax, ay := settled.Position(g.from[e])
		bx, by := settled.Position(g.to[e])
		edgeLen = append(edgeLen, math.Hypot(ax-bx, ay-by))
	}
	median := medianOf(edgeLen)
	key, err := settled.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := settled.Params()
	var near17 uint32
	for e := range g.from {
		if g.from[e] == 17 && g.to[e] != 17 {
			near17 = g.to[e]
			break
		}
	}
	for _, tc := range []struct {
		name     string
		nbrs     []uint32
		maxShare float64 // of the median edge length, for nodes within 2 hops
	}{
		{"local", []uint32{17, near17}, 0.5},
		{"spanning", []uint32{17, 1234}, math.Inf(1)}, // a long new edge pulls hard: only the step bounds hold
	} {
		l, err := Unmarshal(key)
		if err != nil {
			t.Fatal(err)
		}
		const s = 2000
		l.AddNode(s)
		for k, j := range tc.nbrs {
			l.AddEdge(uint32(4000+k), s, j)
		}
		l.EndTx()
		// A step is at most MaxStep × the transaction's scale, damped by
		// HopDamp per hop: the bound on how far each ring can move.
		if l.scale <= 1 || l.scale > 2*median {
			t.Fatalf("%s: transaction scale %.3g, want the order of the median edge %.3g", tc.name, l.scale, median)
		}
		bound := [3]float64{}
		for r := range bound {
			bound[r] = float64(p.Ticks) * p.MaxStep * l.scale * math.Pow(p.HopDamp, float64(r))
		}

		one := hops(g, tc.nbrs, 0)
		two := hops(g, tc.nbrs, 1)
		far, near, maxNear := 0, 0, 0.0
		for i := range uint32(g.nodes) {
			bx, by := settled.Position(i)
			d := math.Hypot(l.x[i]-bx, l.y[i]-by)
			ring := 2
			switch {
			case one[i]:
				ring = 1
			case !two[i]:
				far++
				if d != 0 {
					t.Fatalf("%s: node %d, more than 2 hops from the new node, moved %g", tc.name, i, d)
				}
				continue
			}
			near++
			maxNear = max(maxNear, d)
			if d > bound[ring] {
				t.Fatalf("%s: node %d, %d hops from the new node, moved %.3g, more than Ticks·MaxStep·scale·HopDamp^%d = %.3g", tc.name, i, ring, d, ring, bound[ring])
			}
		}
		t.Logf("%s: median edge %.3g; %d nodes within 2 hops moved at most %.3g; %d farther stayed put", tc.name, median, near, maxNear, far)
		if maxNear == 0 {
			t.Fatalf("%s: no node within 2 hops moved: the new node's neighbourhood did not run hot", tc.name)
		}
		if maxNear > tc.maxShare*median {
			t.Fatalf("%s: a node within 2 hops moved %.3g, more than %.2g of the median edge length %.3g", tc.name, maxNear, tc.maxShare, median)
		}
		var bx, by float64
		for _, j := range tc.nbrs {
			x, y := settled.Position(j)
			bx += x / float64(len(tc.nbrs))
			by += y / float64(len(tc.nbrs))
		}
		if lim := bound[0] + p.Jitter*l.scale; math.Hypot(l.x[s]-bx, l.y[s]-by) > lim {
			t.Fatalf("%s: the new node ended %.3g from its neighbours' barycentre, more than its offset and step bound %.3g", tc.name, math.Hypot(l.x[s]-bx, l.y[s]-by), lim)
		}
	}
}

func medianOf(v []float64) float64 {
	c := append([]float64(nil), v...)
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j] < c[j-1]; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
	return c[len(c)/2]
}

// hops marks the nodes of g within k hops of from.
func hops(g testGraph, from []uint32, k int) []bool {
	adj := make([][]uint32, g.nodes)
	for e := range g.from {
		adj[g.from[e]] = append(adj[g.from[e]], g.to[e])
		adj[g.to[e]] = append(adj[g.to[e]], g.from[e])
	}
	in := make([]bool, g.nodes)
	ring := from
	for _, s := range from {
		in[s] = true
	}
	for range k {
		var next []uint32
		for _, s := range ring {
			for _, j := range adj[s] {
				if !in[j] {
					in[j] = true
					next = append(next, j)
				}
			}
		}
		ring = next
	}
	return in
}

func TestKeyframeResumeEqualsUninterruptedRun(t *testing.T) {
	seed := testseed.Seed(t, 3)
	ops := script(seed, 800, 60)
	var ends []int // ops index after each EndTx
	for k, o := range ops {
		if o.kind == 't' {
			ends = append(ends, k+1)
		}
	}
	for _, cut := range []int{ends[0], ends[1], ends[len(ends)/2], ends[len(ends)-3]} {
		whole, err := New(smallParams(), seed)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range ops[:cut] {
			o.apply(whole)
		}
		key, err := whole.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		resumed, err := Unmarshal(key, WithWorkers(3))
		if err != nil {
			t.Fatal(err)
		}
		resumed0 := *resumed // the state as decoded
		if resumed.Hash() != whole.Hash() {
			t.Fatalf("cut at op %d: resumed hash %x, want %x", cut, resumed.Hash(), whole.Hash())
		}
		txs := 0
		for _, o := range ops[cut:] {
			o.apply(whole)
			o.apply(resumed)
			if o.kind == 't' {
				txs++
				if resumed.Hash() != whole.Hash() {
					t.Fatalf("cut at op %d: %d transactions later the resumed hash %x differs from %x", cut, txs, resumed.Hash(), whole.Hash())
				}
			}
		}
		a, b := whole.Positions(), resumed.Positions()
		if len(a) != len(b) {
			t.Fatalf("cut at op %d: %d positions, want %d", cut, len(b), len(a))
		}
		for i, ok := range whole.live {
			if ok && (a[2*i] != b[2*i] || a[2*i+1] != b[2*i+1]) {
				t.Fatalf("cut at op %d: slot %d at %v,%v, want %v,%v", cut, i, b[2*i], b[2*i+1], a[2*i], a[2*i+1])
			}
		}
		t.Logf("cut at op %d: %d-byte keyframe (cold tree kept %v, %d stale nodes), %d transactions after it agree", cut, len(key), resumed0.coldOK, len(resumed0.stale), txs)
		if cut == ends[len(ends)-3] && (!resumed0.coldOK || len(resumed0.stale) == 0) {
			t.Fatal("the last cut has no cold tree with stale nodes: the test does not show that a keyframe rebuilds it")
		}
	}
}

func TestPinnedNodesDoNotMove(t *testing.T) {
	seed := testseed.Seed(t, 4)
	g := genGraph(seed, 1200, 2400)
	l, err := New(smallParams(), seed)
	if err != nil {
		t.Fatal(err)
	}
	g.load(l)
	l.Relax(5)
	pins := []uint32{0, 1, 5, 600, 1199}
	type xy struct{ x, y float64 }
	at := map[uint32]xy{}
	for _, s := range pins {
		l.Pin(s)
		at[s] = xy{l.x[s], l.y[s]}
	}
	l.AddNode(1200)
	l.AddEdge(2400, 1200, 0)
	l.AddEdge(2401, 1200, 600)
	l.EndTx()
	l.Relax(3)
	l.FirstLayout(3) // multilevel: 1201 live nodes > 500
	moved := 0
	for _, s := range pins {
		if !l.Pinned(s) {
			t.Fatalf("slot %d is no longer pinned", s)
		}
		if got := (xy{l.x[s], l.y[s]}); got != at[s] {
			t.Fatalf("pinned slot %d moved from %v to %v", s, at[s], got)
		}
	}
	for i := range uint32(20) {
		if _, ok := at[i]; !ok && l.x[i] != 0 {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no unpinned node moved: the test shows nothing")
	}
	l.Unpin(0)
	x0 := l.x[0]
	l.Relax(2)
	if l.x[0] == x0 {
		t.Fatal("slot 0 did not move after Unpin and Relax")
	}
}

func TestRemovalAndSlotReuse(t *testing.T) {
	p := DefaultParams()
	p.Ticks = 0 // placement alone
	l, err := New(p, SeedFor("reuse"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint32(4) {
		l.AddNode(i)
	}
	l.AddEdge(0, 0, 1)
	l.AddEdge(1, 1, 2)
	l.AddEdge(2, 2, 3)
	l.EndTx()
	l.setPos(0, 100, 0)
	l.setPos(2, 0, 100)
	l.setPos(3, -50, -50)

	l.RemoveNode(1) // takes edges 0 and 1 with it
	l.EndTx()
	if len(l.adj[0]) != 0 || len(l.adj[2]) != 1 {
		t.Fatalf("after removing node 1: degrees %d, %d, want 0, 1", len(l.adj[0]), len(l.adj[2]))
	}
	if l.Pinned(1) || l.isLive(1) {
		t.Fatal("removed slot 1 is still live or pinned")
	}
	l.RemoveEdge(0) // already gone with the node: a no-op
	l.RemoveEdge(99)
	l.RemoveNode(99)

	// Slot 1 comes back joined to 0 and 2; edge slots 0 and 1 are reused.
	l.AddNode(1)
	l.AddEdge(1, 1, 0)
	l.AddEdge(0, 2, 1)
	l.AddEdge(7, 1, 55) // 55 is not a node: ignored
	l.EndTx()
	x, y := l.Position(1)
	// The scale is the mean length of the older hot nodes' edges: 2–3 only
	// (seen from 2, one hop from the new node, and from 3, two hops).
	if want := math.Hypot(50, 150); math.Abs(l.scale-want) > 1e-9 {
		t.Fatalf("transaction scale %v, want %v", l.scale, want)
	}
	if d := math.Hypot(x-50, y-50); d > p.Jitter*l.scale || d == 0 {
		t.Fatalf("reused slot 1 placed at %v,%v: %.3g from its neighbours' barycentre 50,50, want 0 < d ≤ %v", x, y, d, p.Jitter*l.scale)
	}
	if len(l.adj[1]) != 2 || len(l.elive) > 7 {
		t.Fatalf("slot 1 has %d edges (want 2); edge slot 7 (to a missing node) recorded: %v", len(l.adj[1]), len(l.elive) > 7)
	}

	// A node with no placed neighbours lands near the origin.
	l.AddNode(9)
	l.EndTx()
	if l.scale != 1 {
		t.Fatalf("a transaction with no older hot node has scale %v, want 1", l.scale)
	}
	if x, y := l.Position(9); math.Hypot(x, y) > p.Jitter {
		t.Fatalf("isolated slot 9 placed at %v,%v, farther than %v from the origin", x, y, p.Jitter)
	}
	if l.Len() != 10 || len(l.Positions()) != 20 {
		t.Fatalf("Len %d, %d positions; want 10, 20", l.Len(), len(l.Positions()))
	}
}

func TestRandomOpsKeepInvariants(t *testing.T) {
	seed := testseed.Seed(t, 0)
	ops := script(seed, 300, 150)
	l, err := New(smallParams(), seed)
	if err != nil {
		t.Fatal(err)
	}
	var last []float32
	var ranges []scene.Range
	for k, o := range ops {
		o.apply(l)
		if o.kind != 't' && o.kind != 'r' && o.kind != 'f' {
			continue
		}
		pos := l.Positions()
		if len(pos) != 2*l.Len() {
			t.Fatalf("op %d: %d positions for %d slots", k, len(pos), l.Len())
		}
		for i, ok := range l.live {
			x, y := l.x[i], l.y[i]
			if ok && (!isFinite(x) || !isFinite(y) || math.Abs(x) > 1e7 || math.Abs(y) > 1e7) {
				t.Fatalf("op %d (%c): slot %d at %v,%v", k, o.kind, i, x, y)
			}
			if ok && l.mass[i] != float64(len(l.adj[i])+1) {
				t.Fatalf("op %d (%c): slot %d has mass %v and %d edges", k, o.kind, i, l.mass[i], len(l.adj[i]))
			}
		}
		ranges = l.TakeMoved(ranges[:0])
		in := make([]bool, l.Len())
		prev := uint32(0)
		for _, r := range ranges {
			if r.Lo >= r.Hi || r.Lo < prev || int(r.Hi) > l.Len() {
				t.Fatalf("op %d: bad moved ranges %v", k, ranges)
			}
			prev = r.Hi + 1 // ranges are coalesced: never adjacent
			for s := r.Lo; s < r.Hi; s++ {
				in[s] = true
			}
		}
		for i := range l.Len() {
			old := [2]float32{}
			if 2*i < len(last) {
				old = [2]float32{last[2*i], last[2*i+1]}
			}
			if [2]float32{pos[2*i], pos[2*i+1]} != old && !in[i] {
				t.Fatalf("op %d: slot %d moved from %v to %v,%v but is in no moved range %v", k, i, old, pos[2*i], pos[2*i+1], ranges)
			}
		}
		last = append(last[:0], pos...)
	}
	if got := l.TakeMoved(nil); len(got) != 0 {
		t.Fatalf("TakeMoved right after TakeMoved: %v", got)
	}
}

func TestSeedFor(t *testing.T) {
	a, b := SeedFor("orders"), SeedFor("orders-2")
	if a == b {
		t.Fatalf("SeedFor gives %x for two graphs", a)
	}
	if a != SeedFor("orders") {
		t.Fatal("SeedFor is not a function of the id")
	}
	// The seed is part of every picture: it must never change.
	if want := uint64(0x48252e7f585bad26); a != want {
		t.Fatalf("SeedFor(orders) = %#x, want %#x", a, want)
	}
}

func TestParamsValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Params)
	}{
		{"Theta", func(p *Params) { p.Theta = 0 }},
		{"Repulsion", func(p *Params) { p.Repulsion = math.NaN() }},
		{"Gravity", func(p *Params) { p.Gravity = -1 }},
		{"Tolerance", func(p *Params) { p.Tolerance = math.Inf(1) }},
		{"MaxStep", func(p *Params) { p.MaxStep = 0 }},
		{"Jitter", func(p *Params) { p.Jitter = -0.1 }},
		{"HopDamp", func(p *Params) { p.HopDamp = 2 }},
		{"Ticks", func(p *Params) { p.Ticks = -1 }},
		{"HotCap", func(p *Params) { p.HotCap = 0 }},
		{"MultilevelAbove", func(p *Params) { p.MultilevelAbove = -5 }},
		{"Coarsest", func(p *Params) { p.Coarsest = 1 }},
	} {
		p := DefaultParams()
		tc.edit(&p)
		err := p.Validate()
		if !errors.Is(err, ErrParams) {
			t.Fatalf("%s: Validate = %v, want ErrParams", tc.name, err)
		}
		if _, err := New(p, 1); !errors.Is(err, ErrParams) {
			t.Fatalf("%s: New = %v, want ErrParams", tc.name, err)
		}
	}
	p := DefaultParams()
	p.Theta, p.Ticks = -1, -1
	if err := p.Validate(); err == nil || len(err.(interface{ Unwrap() []error }).Unwrap()) != 2 {
		t.Fatalf("two problems: Validate = %v, want both joined", err)
	}
}

// goldenHash pins the exact positions of one fixed history. Every machine
// and Go version must give it: a change means pictures (and keyframes)
// differ from before. Change it only with a deliberate change of the
// algorithm, and say so in the commit.
const goldenHash = 0xbb9bdd01af1346f6

func TestGoldenHash(t *testing.T) {
	l := run(t, smallParams(), SeedFor("golden"), script(42, 700, 30))
	if got := l.Hash(); got != goldenHash {
		t.Fatalf("hash of the fixed history %#x, want %#x: positions differ from every earlier run", got, uint64(goldenHash))
	}
}

func TestHotSetIsCapped(t *testing.T) {
	p := DefaultParams()
	p.HotCap = 100
	l, err := New(p, SeedFor("hub"))
	if err != nil {
		t.Fatal(err)
	}
	// A hub with 3000 leaves, laid out.
	for i := range uint32(3001) {
		l.AddNode(i)
	}
	for i := range uint32(3000) {
		l.AddEdge(i, 3000, i)
	}
	l.EndTx()
	l.Relax(20)
	l.TakeMoved(nil)
	before := append([]float32(nil), l.Positions()...)

	l.AddNode(3001) // joined to the hub: the hub's 3000 leaves are 2 hops away
	l.AddEdge(3000, 3001, 3000)
	l.EndTx()
	moved := 0
	for i := range 3001 {
		if l.pos[2*i] != before[2*i] || l.pos[2*i+1] != before[2*i+1] {
			moved++
		}
	}
	if moved == 0 || moved+1 > p.HotCap {
		t.Fatalf("%d older nodes moved (and the new one), want 1 ≤ n and n+1 ≤ HotCap %d", moved, p.HotCap)
	}
	var rs []scene.Range
	n := 0
	for _, r := range l.TakeMoved(rs) {
		n += int(r.Hi - r.Lo)
	}
	if n != moved+1 {
		t.Fatalf("TakeMoved covers %d slots, want the %d that moved", n, moved+1)
	}
}

// TestColdTreeAgreesWithAFreshTree runs each transaction on a layout whose
// cold tree is kept across transactions (with the stale nodes' corrections)
// and on a copy without one, which builds its cold tree afresh from the
// current state: with nearly exact Barnes–Hut sums, positions must agree to
// 0.1 % of the transaction's scale.
func TestColdTreeAgreesWithAFreshTree(t *testing.T) {
	seed := testseed.Seed(t, 5)
	ops := script(seed, 1500, 60)
	var groups [][]op // one transaction each, ending with EndTx
	start := 0
	for k, o := range ops {
		if o.kind == 't' {
			groups = append(groups, ops[start:k+1])
			start = k + 1
		}
	}
	p := smallParams()
	// Nearly exact sums: at θ = 1.2 the two trees' approximation errors
	// differ, and 12 adaptive ticks amplify that to a few % of the scale.
	p.Theta = 0.05
	kept, err := New(p, seed)
	if err != nil {
		t.Fatal(err)
	}
	worst, compared := 0.0, 0
	for g, tx := range groups {
		global := false
		for _, o := range tx {
			global = global || o.kind == 'r' || o.kind == 'f'
		}
		key, _ := kept.MarshalBinary()
		fresh, _ := Unmarshal(key)
		fresh.dropCold()
		useCold := kept.coldOK && len(kept.stale) > 0 && !global
		for _, o := range tx {
			o.apply(kept)
			o.apply(fresh)
		}
		if !useCold || g == 0 {
			continue
		}
		compared++
		d := 0.0
		for i, ok := range kept.live {
			if ok {
				d = max(d, math.Hypot(kept.x[i]-fresh.x[i], kept.y[i]-fresh.y[i]))
			}
		}
		worst = max(worst, d/kept.scale)
		if d > 1e-3*kept.scale {
			t.Fatalf("transaction %d: kept and fresh cold trees moved a node %.3g apart, more than 0.1 %% of the scale %.3g", g, d, kept.scale)
		}
	}
	t.Logf("%d transactions compared; largest difference %.3g of the scale", compared, worst)
	if compared < 20 || worst == 0 {
		t.Fatalf("%d transactions compared, largest difference %v: the kept cold tree was not exercised", compared, worst)
	}
}
