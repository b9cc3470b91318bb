package actors

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

// fuzzGraph is a small read model: a chain p0 -> ... -> p5 with a hub and
// weighted nodes, enough for every query kind to have something to find.
func fuzzGraph(tb testing.TB) *readmodel.Graph {
	g, err := readmodel.New("fz", readmodel.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	evs := []*cairnv1.Event{{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{}}}}
	for i, id := range []string{"p0", "p1", "p2", "p3", "p4", "p5", "hub"} {
		evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: id,
			Categories: []string{"c"}, Components: []*cairnv1.Component{{Type: "w", Value: []byte{byte('1' + i)}}}}}})
	}
	for i, e := range [][2]string{{"p0", "p1"}, {"p1", "p2"}, {"p2", "p3"}, {"p3", "p4"}, {"p4", "p5"}, {"hub", "p0"}, {"hub", "p3"}, {"p5", "hub"}} {
		evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{
			EdgeId: "e" + string(rune('a'+i)), Source: e[0], Target: e[1], EdgeType: "t"}}})
	}
	if err := g.ApplyTx(1, evs); err != nil {
		tb.Fatal(err)
	}
	return g
}

// Any bytes a client sends to the query endpoint are either refused by
// validation or answered, with a result or a typed error that has a code
// and a message; nothing panics (run answers a panic as INTERNAL, which
// this test counts as a failure).
func FuzzQueryRequest(f *testing.F) {
	seeds := []*cairnv1.QueryRequest{
		{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "p0"}}},
		{Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Category{Category: "c"}, Limit: 2, Cursor: "ZgIB"}}},
		{Query: &cairnv1.QueryRequest_FindNodes{FindNodes: &cairnv1.FindNodes{By: &cairnv1.FindNodes_Component{Component: &cairnv1.Component{Type: "w", Value: []byte("1")}}}}},
		{Query: &cairnv1.QueryRequest_ListNeighbors{ListNeighbors: &cairnv1.ListNeighbors{NodeId: "hub", Direction: cairnv1.Direction_DIRECTION_BOTH, Limit: 1, Cursor: "bgYDAAAAAQAB"}}},
		{Query: &cairnv1.QueryRequest_KHop{KHop: &cairnv1.KHop{NodeId: "p0", Depth: 6, Limits: &cairnv1.TraverseLimits{MaxFrontier: 1}}}},
		{Query: &cairnv1.QueryRequest_ShortestPath{ShortestPath: &cairnv1.ShortestPath{FromNodeId: "p0", ToNodeId: "p5", Weight: "w"}}},
		{Query: &cairnv1.QueryRequest_GetComponent{GetComponent: &cairnv1.GetComponent{NodeId: "p2", Limit: 3, Cursor: "YwIE"}}},
		{Query: &cairnv1.QueryRequest_CountComponents{CountComponents: &cairnv1.CountComponents{}}},
		{Query: &cairnv1.QueryRequest_TopDegree{TopDegree: &cairnv1.TopDegree{K: 3, Kind: cairnv1.DegreeKind_DEGREE_KIND_IN}}},
		{Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}},
	}
	for _, s := range seeds {
		s.GraphId = "fz"
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0x01})
	p := &Projections{cfg: DefaultProjectionConfig()}
	p.cfg.Traverse = readmodel.TraverseLimits{MaxFrontier: 50, MaxResults: 50}
	g := fuzzGraph(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := &cairnv1.QueryRequest{}
		if proto.Unmarshal(data, req) != nil {
			return
		}
		if err := p.validateQuery(req); err != nil {
			if err.Code == cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED || err.Message == "" {
				t.Fatalf("validation error without code or message: %+v", err)
			}
			return
		}
		rep := p.run(g, "fz", req)
		e := rep.GetError()
		switch {
		case e == nil && rep.GetResult() == nil:
			t.Fatalf("%v: neither result nor error", req)
		case e != nil && (e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED || e.GetMessage() == "" || rep.GetResult() != nil):
			t.Fatalf("%v: bad error reply %v", req, rep)
		case e != nil && strings.Contains(e.GetMessage(), "panicked"):
			t.Fatalf("%v: %s", req, e.GetMessage())
		}
	})
}
