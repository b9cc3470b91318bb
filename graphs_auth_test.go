package cairn_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The catalogue and the finds across graphs over real NATS with users: a
// user limited to graph a never sees b, in a list or a find, whatever it
// asks for; users on every graph see both; a request from outside every
// user's inbox sees nothing.
func TestAuthGraphsSubject(t *testing.T) {
	a := openAuthEngine(t)
	ctx := context.Background()
	var last uint64
	for _, g := range []string{"a", "b"} {
		rep, err := a.eng.Execute(ctx, env(g, "add-x-"+g, cmdAdd("x", []string{"pkg"})))
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, rep.GetSeq())
	}
	list := func(ids ...string) *cairnv1.QueryRequest {
		return &cairnv1.QueryRequest{MinSeq: last, Query: &cairnv1.QueryRequest_ListGraphs{ListGraphs: &cairnv1.ListGraphs{GraphIds: ids}}}
	}
	find := func(ids ...string) *cairnv1.QueryRequest {
		return &cairnv1.QueryRequest{MinSeq: last, Query: &cairnv1.QueryRequest_FindAcross{FindAcross: &cairnv1.FindAcross{
			GraphIds: ids, AllGraphs: len(ids) == 0, By: &cairnv1.FindAcross_Category{Category: "pkg"}}}}
	}
	// seen is every graph an answer names.
	seen := func(rep *cairnv1.QueryReply) []string {
		if rep.GetError() != nil {
			t.Fatalf("error: %v", rep.GetError())
		}
		var out []string
		for _, g := range rep.GetGraphs().GetGraphs() {
			out = append(out, g.GetGraphId())
		}
		for _, g := range rep.GetGraphNodes().GetGraphs() {
			out = append(out, g.GetGraphId())
		}
		return out
	}
	for _, c := range []struct {
		user string
		want []string
	}{
		{"reader-a", []string{"a"}},
		{"writer-a", []string{"a"}},
		{"nkey-writer-a", []string{"a"}},
		{"reader", []string{"a", "b"}},
		{"writer", []string{"a", "b"}},
		{"admin", []string{"a", "b"}},
	} {
		cl := a.connect(t, c.user)
		for _, req := range []*cairnv1.QueryRequest{list(), find(), list("a", "b"), find("a", "b"), list("b"), find("b")} {
			got := seen(cl.query(t, api.GraphsSubject, req))
			want := c.want
			if ids := append(req.GetListGraphs().GetGraphIds(), req.GetFindAcross().GetGraphIds()...); len(ids) > 0 {
				want = slices.DeleteFunc(slices.Clone(want), func(g string) bool { return !slices.Contains(ids, g) })
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s asks %v: sees %v, want %v", c.user, req.GetQuery(), got, want)
			}
		}
	}
	// Nobody may answer the graphs subject.
	a.connect(t, "reader").denied(t, api.GraphsSubject, true)

	// The engine's own connection asks from an inbox that is no user's.
	data, err := proto.Marshal(list())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := a.eng.Conn().Request(api.GraphsSubject, data, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rep := &cairnv1.QueryReply{}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		t.Fatal(err)
	}
	if got := seen(rep); len(got) != 0 {
		t.Errorf("a request from outside every user's inbox sees %v, want nothing", got)
	}
}
