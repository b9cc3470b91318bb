package cairn_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/authz"
	"github.com/cairn-graph/cairn/internal/benchutil"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

var (
	authzTuples = flag.Int("authz.tuples", 100_000, "tuples of BenchmarkAuthzCheck's graph")
	authzChecks = flag.Int("authz.checks", 5000, "checks BenchmarkAuthzCheck times, in-process and over NATS each")
	authzRate   = flag.Int("authz.write-rate", 1000, "tuples/s BenchmarkAuthzCheck writes while it checks")
)

// BenchmarkAuthzCheck is issue 16's check benchmark: an authorization
// graph of authz.tuples tuples with the schema of
// docs/examples/authorization-schema.json, in a realistic shape: users in
// groups (5% of the memberships nest a subgroup, in a tree of groups), folders in a tree of
// folders whose viewers are groups, documents in folders with a direct
// viewer each and an owner. While a writer adds authz.write-rate new
// tuples a second (envelopes of 10, every 10 ms), one caller times
// authz.checks checks of a random document's viewer for a random user
// (mostly denied, the
// costlier answer: the whole rewrite is walked; allowed-share says how many), through Engine.Query (inproc-) and over NATS
// request/reply (nats-), and reports p50, p99 and p999 in ms. The load
// (load-s, load-tuples/s) is reported too.
//
//	go test -run '^$' -bench AuthzCheck -benchtime 1x .
//	go test -run '^$' -bench AuthzCheck -benchtime 1x -timeout 30m . -authz.tuples 1000000
func BenchmarkAuthzCheck(b *testing.B) {
	schema, err := os.ReadFile("docs/examples/authorization-schema.json")
	if err != nil {
		b.Fatal(err)
	}
	cfg := cairn.DefaultConfig(b.TempDir())
	cfg.NATSListen = "127.0.0.1:0"
	eng, err := cairn.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = eng.Close(ctx)
	}()
	ctx := context.Background()
	const graph = "authz"
	var cmdN atomic.Int64
	exec := func(cmds ...*cairnv1.Command) uint64 {
		rep, err := eng.Execute(ctx, &cairnv1.CommandEnvelope{GraphId: graph, CommandId: fmt.Sprint("c", cmdN.Add(1)), Commands: cmds})
		if err == nil && rep.GetError() != nil {
			err = fmt.Errorf("%v", rep.GetError())
		}
		if err != nil {
			b.Fatalf("execute: %v", err)
		}
		return rep.GetSeq()
	}
	exec(&cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{
		GraphType: authz.TypeName, Metadata: map[string]string{authz.SchemaKey: string(schema)}}}})
	w := func(s string) *cairnv1.Command {
		t, err := authz.ParseTuple(s)
		if err != nil {
			b.Fatal(err)
		}
		return &cairnv1.Command{Kind: &cairnv1.Command_WriteTuple{WriteTuple: &cairnv1.WriteTuple{Tuple: t.Proto()}}}
	}
	// The shape: per 100 tuples, 50 group memberships, 1 folder (parent
	// and a viewer group), 16 documents (parent, owner, a direct viewer).
	n := *authzTuples
	users, groups, folders := max(n/20, 10), max(n/100, 4), max(n/100, 2)
	docs := (n - n/2 - 2*folders) / 3
	r := rand.New(rand.NewPCG(16, 2))
	var batch []*cairnv1.Command
	var seq uint64
	flush := func() {
		if len(batch) > 0 {
			seq = exec(batch...)
			batch = batch[:0]
		}
	}
	add := func(s string) {
		if batch = append(batch, w(s)); len(batch) == 1000 {
			flush()
		}
	}
	start := time.Now()
	written := 0
	seen := map[string]bool{}
	for len(seen) < n/2 {
		g := r.IntN(groups)
		s := fmt.Sprintf("group:%d#member@user:%d", g, r.IntN(users))
		if c := g*8 + 1 + r.IntN(8); r.IntN(20) == 0 && c < groups { // nested groups: a tree
			s = fmt.Sprintf("group:%d#member@group:%d#member", g, c)
		}
		if !seen[s] {
			seen[s] = true
			add(s)
		}
	}
	written += len(seen)
	for f := range folders {
		if f > 0 {
			add(fmt.Sprintf("folder:%d#parent@folder:%d", f, (f-1)/8))
		}
		add(fmt.Sprintf("folder:%d#viewer@group:%d#member", f, r.IntN(groups)))
		written += 2
	}
	for d := range docs {
		add(fmt.Sprintf("doc:%d#parent@folder:%d", d, r.IntN(folders)))
		add(fmt.Sprintf("doc:%d#owner@user:%d", d, r.IntN(users)))
		add(fmt.Sprintf("doc:%d#viewer@user:%d", d, r.IntN(users)))
		written += 3
	}
	flush()
	load := time.Since(start)
	// Wait for the projection, and build the index (first check).
	if rep, err := eng.Query(ctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: seq, TimeoutMs: 120_000,
		Query: &cairnv1.QueryRequest_Check{Check: &cairnv1.Check{Object: "doc:0", Relation: "viewer", Subject: "user:0"}}}); err != nil || rep.GetError() != nil {
		b.Fatalf("first check: %v %v", err, rep.GetError())
	}

	// The writer: authz.write-rate new tuples a second, envelopes of 10.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(*authzRate/100, 1)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			cmds := make([]*cairnv1.Command, per)
			for j := range cmds {
				cmds[j] = w(fmt.Sprintf("doc:%d#viewer@user:w%d-%d", r.IntN(docs), i, j))
			}
			exec(cmds...)
			writes.Add(int64(per))
		}
	}()
	nc, err := nats.Connect(eng.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	cr := rand.New(rand.NewPCG(7, 7))
	req := func() *cairnv1.QueryRequest {
		return &cairnv1.QueryRequest{GraphId: graph, Query: &cairnv1.QueryRequest_Check{Check: &cairnv1.Check{
			Object: fmt.Sprintf("doc:%d", cr.IntN(docs)), Relation: "viewer", Subject: fmt.Sprintf("user:%d", cr.IntN(users))}}}
	}
	var allowed, total atomic.Int64
	note := func(rep *cairnv1.QueryReply) {
		if rep.GetError() != nil {
			b.Fatalf("check: %v", rep.GetError())
		}
		total.Add(1)
		if rep.GetCheck().GetAllowed() {
			allowed.Add(1)
		}
	}
	writeStart := time.Now()
	b.ResetTimer()
	for range b.N {
		inproc, overNATS := benchutil.NewLatency(), benchutil.NewLatency()
		for range *authzChecks {
			q := req()
			t0 := time.Now()
			rep, err := eng.Query(ctx, q)
			inproc.Record(time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			note(rep)
		}
		for range *authzChecks {
			data, _ := proto.Marshal(req())
			t0 := time.Now()
			msg, err := nc.Request(api.QuerySubjectFor(graph), data, 10*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			rep := &cairnv1.QueryReply{}
			if err := proto.Unmarshal(msg.Data, rep); err != nil {
				b.Fatal(err)
			}
			overNATS.Record(time.Since(t0))
			note(rep)
		}
		report := func(l *benchutil.Latency, prefix string) {
			b.ReportMetric(ms(l.Quantile(50)), prefix+"p50-ms")
			b.ReportMetric(ms(l.Quantile(99)), prefix+"p99-ms")
			b.ReportMetric(ms(l.Quantile(99.9)), prefix+"p999-ms")
		}
		report(inproc, "inproc-")
		report(overNATS, "nats-")
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(writes.Load())/time.Since(writeStart).Seconds(), "writes/s")
	b.ReportMetric(float64(allowed.Load())/float64(max(total.Load(), 1)), "allowed-share")
	// After the timer's reset, which drops metrics reported before it.
	b.ReportMetric(float64(written), "tuples")
	b.ReportMetric(load.Seconds(), "load-s")
	b.ReportMetric(float64(written)/load.Seconds(), "load-tuples/s")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
