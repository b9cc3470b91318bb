package cairn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/enginetest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// BenchmarkQueryOverNATS is a point query (GetNode) as a client of the
// engine's embedded NATS server sends it, one at a time over TCP, beside
// the floor under it measured on the same engine: a bare request/reply
// to the "cairn" micro service's PING endpoint, which the NATS client
// library answers without the engine's code; get_node_spread asks many
// nodes in turn, as the peer scenario does. cpu-µs/op is the whole
// process's CPU (client and engine) per round trip.
func BenchmarkQueryOverNATS(b *testing.B) {
	eng := enginetest.Open(b, "127.0.0.1:0")
	ctx := context.Background()
	create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}
	if _, err := eng.Execute(ctx, env("a", "create-a", create)); err != nil {
		b.Fatal(err)
	}
	rep, err := eng.Execute(ctx, addNode("a", "n1"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.Query(ctx, getNode("a", "n1", rep.GetSeq())); err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect(eng.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	c := &client{nc: nc}
	// The engine runs the service twice (queries, commands): ping one.
	var info struct {
		ID string `json:"id"`
	}
	msg, err := nc.Request("$SRV.PING."+api.ServiceName, nil, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil || info.ID == "" {
		b.Fatalf("ping answer %q: %v", msg.Data, err)
	}
	ping := "$SRV.PING." + api.ServiceName + "." + info.ID
	q := getNode("a", "n1", rep.GetSeq())
	measure := func(b *testing.B, op func()) {
		b.ReportAllocs()
		c0 := processCPU(b)
		for b.Loop() {
			op()
		}
		b.ReportMetric(float64((processCPU(b)-c0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("ping", func(b *testing.B) {
		measure(b, func() {
			if _, err := nc.Request(ping, nil, 10*time.Second); err != nil {
				b.Fatal(err)
			}
		})
	})
	// Spread over spreadNodes nodes, as the peer scenario asks random
	// nodes: the query cache misses more, and the lookups leave the CPU's
	// caches.
	const spreadNodes = 50_000
	seq := rep.GetSeq()
	for i := 0; i < spreadNodes; i += 1000 {
		var cmds []*cairnv1.Command
		for j := i; j < i+1000; j++ {
			cmds = append(cmds, cmdAdd(fmt.Sprintf("s%d", j), nil))
		}
		r, err := eng.Execute(ctx, env("a", fmt.Sprintf("spread-%d", i), cmds...))
		if err != nil || r.GetError() != nil {
			b.Fatal(err, r.GetError())
		}
		seq = r.GetSeq()
	}
	b.Run("get_node_spread", func(b *testing.B) {
		i := 0
		measure(b, func() {
			q := getNode("a", fmt.Sprintf("s%d", (i*7919)%spreadNodes), seq)
			i++
			if rep := c.query(b, api.QuerySubjectFor("a"), q); rep.GetError() != nil || rep.GetNode() == nil {
				b.Fatal(rep.GetError())
			}
		})
	})
	b.Run("get_node", func(b *testing.B) {
		measure(b, func() {
			if rep := c.query(b, api.QuerySubjectFor("a"), q); rep.GetError() != nil || rep.GetNode() == nil {
				b.Fatal(rep.GetError())
			}
		})
	})
}

// processCPU is this process's user and system CPU time so far.
func processCPU(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
