package actors_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// sizedQuerier answers every query with a k-hop result of n nodes whose ids
// are 100 bytes long, and reports fixed cache counters.
type sizedQuerier struct{ n int }

func (q sizedQuerier) Query(_ context.Context, _ *cairnv1.QueryRequest) *cairnv1.QueryReply {
	res := &cairnv1.KHopResult{}
	for i := range q.n {
		res.Nodes = append(res.Nodes, &cairnv1.ReachedNode{NodeId: fmt.Sprintf("%0100d", i), Distance: 1})
	}
	return &cairnv1.QueryReply{AsOfSeq: 7, Result: &cairnv1.QueryReply_KHop{KHop: res}}
}

func (sizedQuerier) Health() api.ProjectionHealth {
	return api.ProjectionHealth{Shards: 2, CacheHits: 3, CacheMisses: 4}
}

// An answer too big for one NATS message is refused as RESOURCE_EXHAUSTED
// instead of being lost; the query endpoint's stats carry the projections'
// health.
func TestGatewayQueryReplyLimits(t *testing.T) {
	srv, _ := newStore(t)
	// One connection for the gateways and the requests: srv.Conn opens a
	// new one each call, and a request on another connection could reach
	// the server before the closed gateway's unsubscribe does, and be
	// answered by it (UNAVAILABLE, as a closing gateway should).
	nc := srv.Conn()
	over := int(nc.MaxPayload())/100 + 100 // ids of 100 bytes
	for _, tt := range []struct {
		n    int
		code cairnv1.ErrorCode
	}{
		{10, cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED},
		{over, cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED},
	} {
		gw, err := actors.StartGateway(nc, nil, actors.GatewayConfig{Queries: sizedQuerier{tt.n}})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := proto.Marshal(&cairnv1.QueryRequest{GraphId: "g"})
		msg, err := nc.Request(api.QuerySubject, data, 5*time.Second)
		if err != nil {
			t.Fatalf("n=%d: request: %v", tt.n, err)
		}
		rep := &cairnv1.QueryReply{}
		if err := proto.Unmarshal(msg.Data, rep); err != nil {
			t.Fatal(err)
		}
		if got := rep.GetError().GetCode(); got != tt.code {
			t.Errorf("n=%d: code %v, want %v (%v; %d bytes)", tt.n, got, tt.code, rep.GetError(), len(msg.Data))
		}
		if tt.code != 0 && (rep.GetAsOfSeq() != 7 || !strings.Contains(rep.GetError().GetMessage(), "more than a NATS message holds")) {
			t.Errorf("n=%d: reply as_of_seq %d error %v, want as_of_seq 7 and a message naming the limit", tt.n, rep.GetAsOfSeq(), rep.GetError())
		}
		if tt.code == 0 && len(rep.GetKHop().GetNodes()) != tt.n {
			t.Errorf("n=%d: %d nodes came back", tt.n, len(rep.GetKHop().GetNodes()))
		}

		st, err := nc.Request("$SRV.STATS."+api.ServiceName, nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var stats struct {
			Endpoints []struct {
				Name string         `json:"name"`
				Data map[string]any `json:"data"`
			} `json:"endpoints"`
		}
		if err := json.Unmarshal(st.Data, &stats); err != nil {
			t.Fatalf("stats %s: %v", st.Data, err)
		}
		found := false
		for _, e := range stats.Endpoints {
			if e.Name == "query" {
				found = e.Data["cache_hits"] == 3.0 && e.Data["cache_misses"] == 4.0 && e.Data["shards"] == 2.0
			}
		}
		if !found {
			t.Errorf("stats %s: no query endpoint with cache_hits 3 and cache_misses 4", st.Data)
		}
		if err := gw.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
