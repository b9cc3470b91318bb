package persistence_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cairn-graph/cairn/persistence"
)

// BenchmarkSnapshots puts and gets one snapshot that looks like a read
// model (readModelLike, seed 1) through an embedded server: 100 MB (a 1M-node
// read model) and 12.5 MB (what time travel fetches on a 100K-node graph).
// One op is one Put or one Get of the whole snapshot. Reported: the
// compression ratio, raw MB/s and ms per op. Put compresses the frames on
// all cores; Get reads the object and decompresses them on all cores. The
// kind picks the level: read models SpeedFastest, aggregates the default.
func BenchmarkSnapshots(b *testing.B) {
	for _, bc := range []struct {
		name string
		kind persistence.SnapshotKind
		size int
	}{
		{"readmodel-100MB", persistence.KindReadModel, 100 << 20},
		{"readmodel-12.5MB", persistence.KindReadModel, 25 << 19},
		{"aggregate-100MB", persistence.KindAggregate, 100 << 20},
		{"aggregate-12.5MB", persistence.KindAggregate, 25 << 19},
	} {
		b.Run(bc.name, func(b *testing.B) { benchSnapshots(b, bc.kind, bc.size) })
	}
}

func benchSnapshots(b *testing.B, kind persistence.SnapshotKind, size int) {
	data := readModelLike(rand.New(rand.NewPCG(1, 2)), size)
	ss, _ := openSnapshots(b)
	ctx := context.Background()
	in := persistence.SnapshotInfo{Kind: kind, Graph: "big", Seq: 1_000_000, Position: 1_000_000, Format: 1}
	var info persistence.SnapshotInfo
	report := func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportMetric(float64(info.Size)/float64(info.Stored), "ratio")
		b.ReportMetric(float64(info.Stored)/(1<<20), "stored-MiB")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	}

	b.Run("put", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var err error
			if info, err = ss.Put(ctx, in, data); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	if info.Name == "" {
		var err error
		if info, err = ss.Put(ctx, in, data); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		var got []byte
		for range b.N {
			var err error
			if got, err = ss.Get(ctx, info); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if !bytes.Equal(got, data) {
			b.Fatal("get returned other bytes")
		}
		report(b)
	})
}

// BenchmarkSnapshotsList lists snapshots in a bucket holding three small
// snapshots for each of 1,000 graphs. "graph" lists one graph's, as a graph
// grain does on every activation; "all" lists every graph's, as a
// projection does on restart. One op is one List.
func BenchmarkSnapshotsList(b *testing.B) {
	const graphs, keep = 1000, 3
	ss, _ := openSnapshots(b)
	ctx := context.Background()
	payload := bytes.Repeat([]byte("state "), 100)
	for g := range graphs {
		for k := range keep {
			info := persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: fmt.Sprintf("g%04d", g), Seq: uint64(1 + k*1000 + g), Position: 1}
			if _, err := ss.Put(ctx, info, payload); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, bc := range []struct {
		name  string
		graph func(i int) string
		want  int
	}{
		{"graph", func(i int) string { return fmt.Sprintf("g%04d", i%graphs) }, keep},
		{"all", func(int) string { return "" }, graphs * keep},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				list, err := ss.List(ctx, persistence.KindAggregate, bc.graph(i))
				if err != nil || len(list) != bc.want {
					b.Fatalf("list: %d snapshots, %v", len(list), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(graphs*keep, "objects")
		})
	}
}
