package importer_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/importer"
	"github.com/cairn-graph/cairn/internal/enginetest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

var (
	benchEdges    = flag.Int("importer.edges", 500_000, "edges in BenchmarkImportEdgeList's file")
	benchInFlight = flag.Int("importer.inflight", 0, "BenchmarkImportEdgeList's in-flight window (0: the default)")
	benchBatch    = flag.Int("importer.batch", 0, "BenchmarkImportEdgeList's commands per envelope (0: the default)")
	benchNoSnap   = flag.Bool("importer.nosnapshots", false, "BenchmarkImportEdgeList's engine takes no snapshots (as 'cairn serve --no-snapshots')")
)

// BenchmarkImportEdgeList imports a generated edge list (-importer.edges
// edges, see writeBenchEdges; every node is made on the fly) into an
// in-process engine with the default configuration, one graph per
// iteration, and reports edges/s.
func BenchmarkImportEdgeList(b *testing.B) {
	n := *benchEdges
	path := writeBenchEdges(b, n)
	var eng *cairn.Engine
	if *benchNoSnap {
		ecfg := cairn.DefaultConfig(b.TempDir())
		ecfg.NATSListen = persistence.ListenNone
		ecfg.DisableSnapshots = true
		var err error
		if eng, err = cairn.Open(context.Background(), ecfg); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := eng.Close(context.Background()); err != nil {
				b.Errorf("close engine: %v", err)
			}
		})
	} else {
		eng = enginetest.Open(b, persistence.ListenNone)
	}
	benchImport(b, eng, path, n)
}

// BenchmarkImportEdgeListParse is BenchmarkImportEdgeList with an engine
// that answers every envelope at once and writes nothing: the importer's
// own cost, reading, parsing, validating and batching.
func BenchmarkImportEdgeListParse(b *testing.B) {
	n := *benchEdges
	benchImport(b, nullEngine{}, writeBenchEdges(b, n), n)
}

type nullEngine struct{}

func (nullEngine) Execute(_ context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	return &cairnv1.CommandReply{CommandId: env.GetCommandId(), Seq: 1}, nil
}

// writeBenchEdges writes n distinct edges between n/4 sources, each with
// about four targets, and n/4 targets.
func writeBenchEdges(b *testing.B, n int) string {
	path := filepath.Join(b.TempDir(), "edges.txt")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	nodes := max(n/4, 2)
	for i := range n {
		// Distinct pairs: each source has about four targets.
		s, r := i%nodes, i/nodes
		fmt.Fprintf(w, "lib%d.so\tpkg%d\n", s, (s*7919+r+1)%nodes)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchImport(b *testing.B, eng importer.Executor, path string, n int) {
	cfg := importer.DefaultConfig()
	cfg.Create = true
	if *benchBatch > 0 {
		cfg.BatchSize = *benchBatch
	}
	if *benchInFlight > 0 {
		cfg.InFlight = *benchInFlight
	}
	b.ReportAllocs()
	b.ResetTimer()
	var edges int64
	for i := range b.N {
		cfg.Checkpoint = filepath.Join(b.TempDir(), "ckpt")
		res, err := importer.Run(context.Background(), eng, fmt.Sprintf("bench%d", i), path, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if res.Edges != int64(n) {
			b.Fatalf("imported %d edges, want %d", res.Edges, n)
		}
		edges += res.Edges
	}
	b.ReportMetric(float64(edges)/b.Elapsed().Seconds(), "edges/s")
}
