package cairn_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/benchutil"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

var acrossGraphs = flag.Int("across.graphs", 1000, "graphs of BenchmarkGraphsAcross")

// BenchmarkGraphsAcross: an engine holding across.graphs graphs (10 nodes
// each, one of them in category pkg, every one with a component "lang")
// answers the catalogue and finds across every graph, walked to the end in
// pages of 100: list (ListGraphs), find-sparse (category pkg: one node a
// graph, so a page spans 100 graphs) and find-dense (component type lang:
// ten a graph), in-process (Engine.Graphs) and over NATS (a client on
// api.GraphsSubject, over TCP loopback). One op is one whole walk;
// p50-ms and p99-ms are per page.
//
//	go test -run '^$' -bench GraphsAcross -benchtime 20x .
func BenchmarkGraphsAcross(b *testing.B) {
	eng := openEngineWith(b, b.TempDir(), func(cfg *cairn.Config) { cfg.NATSListen = "127.0.0.1:0" })
	n := *acrossGraphs
	run, err := benchutil.ClosedLoop(n, 32, nil, func(_, i int) error {
		g := fmt.Sprintf("g%05d", i)
		cmds := []*cairnv1.Command{{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "deps"}}}}
		for j := range 10 {
			var cats []string
			if j == 0 {
				cats = []string{"pkg"}
			}
			cmds = append(cmds, cmdAdd(fmt.Sprint("n", j), cats, &cairnv1.Component{Type: "lang", Value: []byte("go")}))
		}
		_, err := eng.Execute(context.Background(), env(g, "setup", cmds...))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d graphs created in %v", n, run.Wall)
	nc, err := nats.Connect(eng.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	inProcess := func(req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
		return eng.Graphs(context.Background(), req)
	}
	overNATS := func(req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
		data, err := proto.Marshal(req)
		if err != nil {
			return nil, err
		}
		msg, err := nc.Request(api.GraphsSubject, data, 10*time.Second)
		if err != nil {
			return nil, err
		}
		rep := &cairnv1.QueryReply{}
		if err := proto.Unmarshal(msg.Data, rep); err != nil {
			return nil, err
		}
		if rep.GetError() != nil {
			return nil, fmt.Errorf("%v", rep.GetError())
		}
		return rep, nil
	}
	// Every graph applied before timing: one transaction each.
	if _, err := eng.Graphs(context.Background(), &cairnv1.QueryRequest{MinSeq: uint64(n), Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{}}}); err != nil {
		b.Fatal(err)
	}
	queries := []struct {
		name  string
		query func(cursor string) *cairnv1.QueryRequest
		want  int
	}{
		{"list", func(c string) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{Cursor: c, Limit: 100}}}
		}, n},
		{"find-sparse", func(c string) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{AllGraphs: true,
				By: &cairnv1.FindAcross_Category{Category: "pkg"}, Cursor: c, Limit: 100}}}
		}, n},
		{"find-dense", func(c string) *cairnv1.QueryRequest {
			return &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{AllGraphs: true,
				By: &cairnv1.FindAcross_ComponentType{ComponentType: "lang"}, Cursor: c, Limit: 100}}}
		}, 10 * n},
	}
	for _, via := range []struct {
		name string
		ask  func(*cairnv1.QueryRequest) (*cairnv1.QueryReply, error)
	}{{"in-process", inProcess}, {"nats", overNATS}} {
		for _, q := range queries {
			b.Run(via.name+"/"+q.name, func(b *testing.B) {
				b.ReportAllocs()
				lat := benchutil.NewLatency()
				for b.Loop() {
					cursor, got := "", 0
					for {
						start := time.Now()
						rep, err := via.ask(q.query(cursor))
						lat.Record(time.Since(start))
						if err != nil {
							b.Fatal(err)
						}
						got += len(rep.GetGraphs().GetGraphs())
						for _, g := range rep.GetGraphNodes().GetGraphs() {
							got += len(g.GetNodeIds())
						}
						if cursor = rep.GetGraphs().GetNextCursor() + rep.GetGraphNodes().GetNextCursor(); cursor == "" {
							break
						}
					}
					if got != q.want {
						b.Fatalf("walked %d entries, want %d", got, q.want)
					}
				}
				lat.Report(b, "")
				b.ReportMetric(float64(lat.Count())/float64(b.N), "pages/op")
			})
		}
	}
	// As of a stream sequence half-way: half the graphs existed then. Each
	// walk asks at another seq (n/2, n/2+1, ...), so that the views of the
	// graphs not yet created then are not cached from the walk before;
	// the graphs created by then resolve to their one transaction's view,
	// cached after the first walk. in-process only (NATS adds the same
	// per page as above).
	asOf := []struct {
		name string
		list bool
	}{{"list-as-of-half", true}, {"find-sparse-as-of-half", false}}
	for _, q := range asOf {
		b.Run("in-process/"+q.name, func(b *testing.B) {
			b.ReportAllocs()
			lat := benchutil.NewLatency()
			walk := 0
			for b.Loop() {
				seq := uint64(n/2 + walk%(n/2))
				walk++
				cursor, got := "", 0
				for {
					req := &cairnv1.QueryRequest{AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: seq}}}
					if q.list {
						req.Query = &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{Cursor: cursor, Limit: 100}}
					} else {
						req.Query = &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{AllGraphs: true,
							By: &cairnv1.FindAcross_Category{Category: "pkg"}, Cursor: cursor, Limit: 100}}
					}
					start := time.Now()
					rep, err := inProcess(req)
					lat.Record(time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					got += len(rep.GetGraphs().GetGraphs())
					for _, g := range rep.GetGraphNodes().GetGraphs() {
						got += len(g.GetNodeIds())
					}
					if cursor = rep.GetGraphs().GetNextCursor() + rep.GetGraphNodes().GetNextCursor(); cursor == "" {
						break
					}
				}
				if got != int(seq) {
					b.Fatalf("as of seq %d walked %d entries, want %d", seq, got, seq)
				}
			}
			lat.Report(b, "")
			b.ReportMetric(float64(lat.Count())/float64(b.N), "pages/op")
		})
	}
}
