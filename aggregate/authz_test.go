package aggregate_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

const docsSchema = `{"namespaces":[
 {"name":"user"},
 {"name":"group","relations":[{"name":"member"}]},
 {"name":"doc","relations":[{"name":"owner"},{"name":"viewer","rewrite":{"union":{"children":[{"this":{}},{"computedUserset":{"relation":"owner"}}]}}},
   {"name":"can_view","rewrite":{"computedUserset":{"relation":"viewer"}}}]}]}`

func createAuthz(schema string) *cairnv1.Command {
	md := map[string]string{}
	if schema != "" {
		md["authorization.schema"] = schema
	}
	return &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "authorization", Metadata: md}}}
}

func writeTuple(o, r, s string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_WriteTuple{WriteTuple: &cairnv1.WriteTuple{Tuple: &cairnv1.Tuple{Object: o, Relation: r, Subject: s}}}}
}

func deleteTuple(o, r, s string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_DeleteTuple{DeleteTuple: &cairnv1.DeleteTuple{Tuple: &cairnv1.Tuple{Object: o, Relation: r, Subject: s}}}}
}

func decide(s *aggregate.State, id string, cmds ...*cairnv1.Command) ([]*cairnv1.Event, error) {
	env := cmdtest.Envelope(s.Graph(), id, cmds...)
	if err := aggregate.ValidateEnvelope(env); err != nil {
		return nil, err
	}
	return aggregate.DecideEnvelope(s, env)
}

func TestAuthzWriteTupleEvents(t *testing.T) {
	s := aggregate.NewState("az")
	if _, err := decide(s, "c", createAuthz(docsSchema)); err != nil {
		t.Fatal(err)
	}
	evs, err := decide(s, "w1", writeTuple("doc:readme", "viewer", "group:eng#member"))
	if err != nil {
		t.Fatal(err)
	}
	want := []*cairnv1.Event{
		{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: "doc:readme", Categories: []string{"doc"}}}},
		{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: "group:eng", Categories: []string{"group"}}}},
		{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: "doc:readme#viewer@group:eng#member", Source: "doc:readme",
			Target: "group:eng", EdgeType: "viewer", Components: []*cairnv1.Component{{Type: "subject_relation", Value: []byte("member")}}}}},
	}
	if len(evs) != len(want) {
		t.Fatalf("events %v, want %v", evs, want)
	}
	for i := range want {
		if !proto.Equal(evs[i], want[i]) {
			t.Fatalf("event %d is %v, want %v", i, evs[i], want[i])
		}
	}
	// The object exists now: only the subject node and the edge.
	evs, err = decide(s, "w2", writeTuple("doc:readme", "owner", "user:alice"))
	if err != nil || len(evs) != 2 || evs[1].GetEdgeAdded().GetEdgeId() != "doc:readme#owner@user:alice" {
		t.Fatalf("second write: %v, %v", evs, err)
	}
	evs, err = decide(s, "d1", deleteTuple("doc:readme", "owner", "user:alice"))
	if err != nil || len(evs) != 1 || evs[0].GetEdgeRemoved().GetEdgeId() != "doc:readme#owner@user:alice" {
		t.Fatalf("delete: %v, %v", evs, err)
	}
	if _, err := decide(s, "del", cmdtest.DeleteGraph()); err != nil {
		t.Fatalf("delete graph: %v", err)
	}
}

func TestAuthzRefusals(t *testing.T) {
	cases := []struct {
		name   string
		setup  []*cairnv1.Command // on a fresh state; nil: an authorization graph
		cmd    *cairnv1.Command
		code   error
		field  string
		inText string
	}{
		{"no schema", []*cairnv1.Command{}, createAuthz(""), aggregate.ErrFailedPrecondition, "commands[0].create_graph.metadata[authorization.schema]", "needs its namespace schema"},
		{"schema not json", []*cairnv1.Command{}, createAuthz("{"), aggregate.ErrFailedPrecondition, "commands[0].create_graph.metadata[authorization.schema]", "protojson"},
		{"unknown computed", []*cairnv1.Command{}, createAuthz(`{"namespaces":[{"name":"doc","relations":[{"name":"v","rewrite":{"computedUserset":{"relation":"nope"}}}]}]}`),
			aggregate.ErrFailedPrecondition, "", "namespace doc, relation v: computed_userset names relation \"nope\""},
		{"self rewrite", []*cairnv1.Command{}, createAuthz(`{"namespaces":[{"name":"doc","relations":[
			{"name":"a","rewrite":{"union":{"children":[{"this":{}},{"computedUserset":{"relation":"b"}}]}}},
			{"name":"b","rewrite":{"computedUserset":{"relation":"a"}}}]}]}`),
			aggregate.ErrFailedPrecondition, "", "namespace doc, relation a rewrites itself without a tuple hop"},
		{"unknown tupleset", []*cairnv1.Command{}, createAuthz(`{"namespaces":[{"name":"doc","relations":[{"name":"v","rewrite":{"tupleToUserset":{"tupleset":"parent","computedRelation":"v"}}}]}]}`),
			aggregate.ErrFailedPrecondition, "", "tupleset names relation \"parent\""},
		{"tuple on untyped graph", []*cairnv1.Command{cmdtest.CreateGraph()}, writeTuple("doc:a", "viewer", "user:b"),
			aggregate.ErrFailedPrecondition, "commands[0].write_tuple", "is not an authorization graph"},
		{"delete tuple on untyped graph", []*cairnv1.Command{cmdtest.CreateGraph()}, deleteTuple("doc:a", "viewer", "user:b"),
			aggregate.ErrFailedPrecondition, "commands[0].delete_tuple", "is not an authorization graph"},
		{"add node", nil, cmdtest.AddNode("x"), aggregate.ErrFailedPrecondition, "commands[0]", "authorization graphs change by write_tuple and delete_tuple"},
		{"connect", nil, cmdtest.Connect("e", "a", "b"), aggregate.ErrFailedPrecondition, "commands[0]", "authorization graphs change by write_tuple and delete_tuple"},
		{"unknown namespace", nil, writeTuple("folder:a", "viewer", "user:b"), aggregate.ErrFailedPrecondition, "commands[0].write_tuple.tuple.object", "namespace folder is not in"},
		{"unknown relation", nil, writeTuple("doc:a", "editor", "user:b"), aggregate.ErrFailedPrecondition, "commands[0].write_tuple.tuple.relation", "namespace doc has no relation editor"},
		{"not writable", nil, writeTuple("doc:a", "can_view", "user:b"), aggregate.ErrFailedPrecondition, "commands[0].write_tuple.tuple.relation", "takes no tuples"},
		{"unknown subject namespace", nil, writeTuple("doc:a", "viewer", "robot:b"), aggregate.ErrFailedPrecondition, "commands[0].write_tuple.tuple.subject", "subject namespace robot"},
		{"unknown userset", nil, writeTuple("doc:a", "viewer", "group:eng#admin"), aggregate.ErrFailedPrecondition, "commands[0].write_tuple.tuple.subject", "namespace group has no relation admin"},
		{"bad syntax", nil, writeTuple("doc", "viewer", "user:b"), aggregate.ErrInvalidArgument, "commands[0].write_tuple.tuple", "not namespace:id"},
		{"missing tuple", nil, &cairnv1.Command{Kind: &cairnv1.Command_WriteTuple{WriteTuple: &cairnv1.WriteTuple{}}}, aggregate.ErrInvalidArgument, "commands[0].write_tuple.tuple", "missing"},
		{"exists", []*cairnv1.Command{createAuthz(docsSchema), writeTuple("doc:a", "viewer", "user:b")}, writeTuple("doc:a", "viewer", "user:b"),
			aggregate.ErrAlreadyExists, "commands[0].write_tuple.tuple", "tuple doc:a#viewer@user:b already exists"},
		{"delete missing", nil, deleteTuple("doc:a", "viewer", "user:b"), aggregate.ErrNotFound, "commands[0].delete_tuple.tuple", "tuple doc:a#viewer@user:b does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := aggregate.NewState("az")
			setup := c.setup
			if setup == nil {
				setup = []*cairnv1.Command{createAuthz(docsSchema)}
			}
			for i, cmd := range setup {
				if _, err := decide(s, fmt.Sprint("s", i), cmd); err != nil {
					t.Fatalf("setup %d: %v", i, err)
				}
			}
			_, err := decide(s, "x", c.cmd)
			var ce *aggregate.CommandError
			if !errors.Is(err, c.code) || !errors.As(err, &ce) {
				t.Fatalf("error %v, want %v", err, c.code)
			}
			if c.field != "" && ce.Field != c.field {
				t.Errorf("field %q, want %q", ce.Field, c.field)
			}
			if !strings.Contains(ce.Message, c.inText) {
				t.Errorf("message %q does not say %q", ce.Message, c.inText)
			}
		})
	}
}

// TestAuthzRefusedLeavesNoTrace: random envelopes of tuple commands (some
// valid, some not: unknown relations, duplicates, deletes of missing
// tuples, generic commands) on an authorization graph; a refused envelope
// leaves the state exactly as it was; an accepted one records events.
func TestAuthzRefusedLeavesNoTrace(t *testing.T) {
	seed := testseed.Seed(t, 0)
	r := rand.New(rand.NewPCG(seed, 16))
	s := aggregate.NewState("az")
	if _, err := decide(s, "c", createAuthz(docsSchema)); err != nil {
		t.Fatal(err)
	}
	obj := func() string { return fmt.Sprintf("doc:%d", r.IntN(4)) }
	subj := func() string {
		switch r.IntN(5) {
		case 0:
			return fmt.Sprintf("group:%d#member", r.IntN(3))
		case 1:
			return fmt.Sprintf("group:%d#nope", r.IntN(3))
		}
		return fmt.Sprintf("user:%d", r.IntN(4))
	}
	refused, accepted := 0, 0
	for step := range 3000 {
		cmds := make([]*cairnv1.Command, 1+r.IntN(3))
		for i := range cmds {
			rel := []string{"owner", "viewer", "can_view", "editor"}[r.IntN(4)]
			switch r.IntN(10) {
			case 0:
				cmds[i] = cmdtest.AddNode(obj())
			case 1, 2, 3:
				cmds[i] = deleteTuple(obj(), rel, subj())
			default:
				cmds[i] = writeTuple(obj(), rel, subj())
			}
		}
		before := aggregate.Export(s, nil)
		evs, err := decide(s, fmt.Sprint("e", step), cmds...)
		after := aggregate.Export(s, nil)
		if err != nil {
			refused++
			if !proto.Equal(before, after) {
				t.Fatalf("seed %d step %d: refused envelope (%v) changed the state", seed, step, err)
			}
			continue
		}
		accepted++
		if len(evs) == 0 { // (a write and a delete of one tuple may leave the state as it was)
			t.Fatalf("seed %d step %d: accepted envelope recorded no event", seed, step)
		}
	}
	if refused < 100 || accepted < 100 {
		t.Fatalf("seed %d: %d refused, %d accepted: the stream does not exercise both", seed, refused, accepted)
	}
}
