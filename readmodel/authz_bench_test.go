package readmodel_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-graph/cairn/internal/authz"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

var authzBenchTuples = flag.Int("authz.tuples", 100_000, "tuples of BenchmarkAuthzIndexBuild's graph")

// authzBenchGraph is the snapshot of an authorization graph of n tuples in
// BenchmarkAuthzCheck's shape (authz_bench_test.go at the root): half the
// tuples group memberships, 5% of them a subgroup in a tree of groups;
// folders in a tree, each viewed by a group; documents in folders with an
// owner and a direct viewer each. Built once.
func authzBenchGraph(b *testing.B) ([]byte, error) {
	authzBench.Lock()
	defer authzBench.Unlock()
	if authzBench.data == nil {
		authzBench.data, authzBench.err = buildAuthzBench(b)
	}
	return authzBench.data, authzBench.err
}

var authzBench struct {
	sync.Mutex
	data []byte
	err  error
}

func buildAuthzBench(b *testing.B) ([]byte, error) {
	text, err := os.ReadFile("../docs/examples/authorization-schema.json")
	if err != nil {
		return nil, err
	}
	sp := &cairnv1.AuthorizationSchema{}
	if err := protojson.Unmarshal(text, sp); err != nil {
		return nil, err
	}
	var fail error
	f := newAuthzFixture(b, sp)
	n := *authzBenchTuples
	users, groups, folders := max(n/20, 10), max(n/100, 4), max(n/100, 2)
	docs := (n - n/2 - 2*folders) / 3
	r := rand.New(rand.NewPCG(16, 2))
	var batch []*cairnv1.Command
	flush := func() {
		if len(batch) > 0 && fail == nil {
			fail = f.do(batch...)
		}
		batch = batch[:0]
	}
	add := func(s string) {
		t, err := authz.ParseTuple(s)
		if err != nil {
			fail = err
			return
		}
		if batch = append(batch, tupleCmd(t, true)); len(batch) == 1000 {
			flush()
		}
	}
	seen := map[string]bool{}
	for len(seen) < n/2 {
		g := r.IntN(groups)
		s := fmt.Sprintf("group:%d#member@user:%d", g, r.IntN(users))
		if c := g*8 + 1 + r.IntN(8); r.IntN(20) == 0 && c < groups {
			s = fmt.Sprintf("group:%d#member@group:%d#member", g, c)
		}
		if !seen[s] {
			seen[s] = true
			add(s)
		}
	}
	for fo := range folders {
		if fo > 0 {
			add(fmt.Sprintf("folder:%d#parent@folder:%d", fo, (fo-1)/8))
		}
		add(fmt.Sprintf("folder:%d#viewer@group:%d#member", fo, r.IntN(groups)))
	}
	for d := range docs {
		add(fmt.Sprintf("doc:%d#parent@folder:%d", d, r.IntN(folders)))
		add(fmt.Sprintf("doc:%d#owner@user:%d", d, r.IntN(users)))
		add(fmt.Sprintf("doc:%d#viewer@user:%d", d, r.IntN(users)))
	}
	flush()
	if fail != nil {
		return nil, fail
	}
	return f.g.AppendSnapshot(nil), nil
}

// loadAuthzBench loads the benchmark graph's snapshot, the timer stopped.
func loadAuthzBench(b *testing.B) *readmodel.Graph {
	b.StopTimer()
	defer b.StartTimer()
	data, err := authzBenchGraph(b)
	if err != nil {
		b.Fatal(err)
	}
	g, err := readmodel.LoadSnapshot(data, readmodel.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkAuthzIndexBuild times what an authorization graph of
// authz.tuples tuples (default 100K) pays once after its read model is
// loaded from a snapshot: build-index is BuildAuthzIndex alone (the
// projections call it when they restore or adopt the graph, before it
// serves queries), first-check-cold the first check on a graph loaded
// without it (a time-travel view), first-check-built the first check after
// it.
//
//	go test -run '^$' -bench AuthzIndexBuild -benchtime 3x ./readmodel -authz.tuples 1000000
func BenchmarkAuthzIndexBuild(b *testing.B) {
	check := func(b *testing.B, g *readmodel.Graph) {
		res, err := g.Check("doc:0", "viewer", "user:0")
		if err != nil {
			b.Fatal(err)
		}
		_ = res
	}
	b.Run("build-index", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			g := loadAuthzBench(b)
			g.BuildAuthzIndex()
		}
	})
	b.Run("first-check-cold", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			check(b, loadAuthzBench(b))
		}
	})
	b.Run("first-check-built", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			g := loadAuthzBench(b)
			b.StopTimer()
			g.BuildAuthzIndex()
			b.StartTimer()
			check(b, g)
		}
	})
}
