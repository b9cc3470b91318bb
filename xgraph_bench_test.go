package cairn_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
)

// BenchmarkCrossGraphPath: shortest paths that follow links across 3
// graphs of 10K nodes (random, 3 out-edges a node) joined by 300 links,
// in-process (Engine.Query), reporting p50 and p99, then as many other
// paths over NATS (nats-p50-ms, nats-p99-ms).
func BenchmarkCrossGraphPath(b *testing.B) {
	eng := openEngineWith(b, b.TempDir(), func(cfg *cairn.Config) { cfg.NATSListen = "127.0.0.1:0" })
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 10_000
	graphs := []string{"x0", "x1", "x2"}
	for _, g := range graphs {
		mustExec(b, eng, env(g, "c-"+g, cmdCreate()))
		for chunk := 0; chunk < n; chunk += 1000 {
			var cmds []*cairnv1.Command
			for i := chunk; i < chunk+1000; i++ {
				cmds = append(cmds, cmdAdd(fmt.Sprintf("n%d", i), nil))
			}
			mustExec(b, eng, env(g, fmt.Sprintf("n-%s-%d", g, chunk), cmds...))
		}
		for chunk := 0; chunk < 3*n; chunk += 1000 {
			var cmds []*cairnv1.Command
			for i := chunk; i < chunk+1000; i++ {
				cmds = append(cmds, cmdConnect(fmt.Sprintf("e%d", i), fmt.Sprintf("n%d", rng.IntN(n)), fmt.Sprintf("n%d", rng.IntN(n)), ""))
			}
			mustExec(b, eng, env(g, fmt.Sprintf("e-%s-%d", g, chunk), cmds...))
		}
	}
	for i := range 300 {
		a, c := graphs[i%3], graphs[(i+1)%3]
		mustExec(b, eng, env(a, fmt.Sprintf("l%d", i), cmdLink(fmt.Sprintf("x%d", i), fmt.Sprintf("n%d", rng.IntN(n)), c, fmt.Sprintf("n%d", rng.IntN(n)), "")))
	}
	last, _ := eng.Store().StreamLastSeq(context.Background())
	pathReq := func(i int) *cairnv1.QueryRequest {
		r := rand.New(rand.NewPCG(3, uint64(i)))
		return &cairnv1.QueryRequest{GraphId: "x0", MinSeq: last, Query: &cairnv1.QueryRequest_ShortestPath{ShortestPath: &cairnv1.ShortestPath{
			FromNodeId: fmt.Sprintf("n%d", r.IntN(n)), ToNodeId: fmt.Sprintf("n%d", r.IntN(n)), ToGraphId: "x2", FollowLinks: true}}}
	}
	var lat []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := pathReq(i)
		start := time.Now()
		if _, err := eng.Query(context.Background(), req); err != nil && !errors.Is(err, aggregate.ErrNotFound) {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	// As many other paths over NATS (cairn.query.x0 request/reply), after
	// the timed loop (the same ones would come from the query cache).
	nc, err := nats.Connect(eng.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	var natsLat []time.Duration
	for i := 0; i < b.N; i++ {
		data, _ := proto.Marshal(pathReq(b.N + i))
		start := time.Now()
		msg, err := nc.Request(api.QuerySubjectFor("x0"), data, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		natsLat = append(natsLat, time.Since(start))
		rep := &cairnv1.QueryReply{}
		if err := proto.Unmarshal(msg.Data, rep); err != nil {
			b.Fatal(err)
		}
		if e := rep.GetError(); e != nil && e.GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
			b.Fatal(e)
		}
	}
	for _, l := range []struct {
		prefix string
		lat    []time.Duration
	}{{"", lat}, {"nats-", natsLat}} {
		slices.Sort(l.lat)
		b.ReportMetric(float64(l.lat[len(l.lat)/2].Microseconds())/1000, l.prefix+"p50-ms")
		b.ReportMetric(float64(l.lat[len(l.lat)*99/100].Microseconds())/1000, l.prefix+"p99-ms")
	}
}
