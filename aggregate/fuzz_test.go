package aggregate_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// seedEnvelopes are the fuzzers' starting points: valid envelopes of every
// kind and the malformed ones of the table tests.
func seedEnvelopes() []*cairnv1.CommandEnvelope {
	return []*cairnv1.CommandEnvelope{
		cmdtest.Envelope("g", "c1", cmdtest.CreateGraph()),
		cmdtest.Envelope("g", "c2", cmdtest.AddNode("x", cmdtest.Comp("color", "red")), cmdtest.AddNodeCats("y", "lib"), cmdtest.Connect("xy", "x", "y", cmdtest.Comp("w", "1"))),
		cmdtest.Envelope("g", "c3", cmdtest.SetComps("a", cmdtest.Comp("color", "blue"), cmdtest.Comp("size", "2")), cmdtest.RemoveComps("a", "size")),
		cmdtest.Envelope("g", "c4", cmdtest.RemoveNode("a"), cmdtest.Disconnect("self"), cmdtest.DeleteGraph()),
		cmdtest.Envelope("g", "c5", cmdtest.Connect("ab", "a", "b"), cmdtest.Connect("e", "zz", "a"), cmdtest.RemoveComps("a", "nope")),
		cmdtest.Envelope("g", "c6", cmdtest.AddNode("libstdc++6"), cmdtest.AddNode("user:42/alice"), cmdtest.AddNode("Zürich"), cmdtest.AddNode("python3.11")),
		{GraphId: "g", CommandId: "c7", CorrelationId: "corr", CausationId: "cause", Issuer: "me", Commands: []*cairnv1.Command{cmdtest.RemoveNode("c")}},
		cmdtest.Envelope("a.b", "c1", cmdtest.CreateGraph()),
		cmdtest.Envelope("g", "", cmdtest.CreateGraph()),
		cmdtest.Envelope("g", "c1"),
		cmdtest.Envelope("g", "c1", &cairnv1.Command{}),
		cmdtest.Envelope("g", "c1", cmdtest.AddNode("a\x00")),
		cmdtest.Envelope("g", "c1", cmdtest.AddNode("a", cmdtest.Comp("t", "1"), cmdtest.Comp("t", "2"))),
		cmdtest.Envelope("g", "c1", &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphId: "h"}}}),
		cmdtest.Envelope("g", "c1", cmdtest.SetComps("a", cmdtest.Comp("blob", strings.Repeat("x", aggregate.MaxComponentValueLen+1)))),
	}
}

// fuzzState is the state envelopes are decided on: graph id with nodes a, b,
// c, edges ab and a self-loop, some components.
func fuzzState(t *testing.T, graph string) (*aggregate.State, []*cairnv1.Event) {
	s := aggregate.NewState(graph)
	evs, err := aggregate.DecideEnvelope(s, cmdtest.Envelope(graph, "setup", cmdtest.CreateGraph(),
		cmdtest.AddNode("a", cmdtest.Comp("color", "red"), cmdtest.Comp("size", "1")), cmdtest.AddNode("b", cmdtest.Comp("color", "red")), cmdtest.AddNode("c"),
		cmdtest.Connect("ab", "a", "b"), cmdtest.Connect("self", "c", "c", cmdtest.Comp("w", "1"))))
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	return s, evs
}

// FuzzValidateEnvelope decodes arbitrary bytes as an envelope. Validation
// never panics and refuses only with INVALID_ARGUMENT; a valid envelope is
// decided without panicking, and either refused with the state untouched or
// accepted with events that fold, seal and check to the same state.
func FuzzValidateEnvelope(f *testing.F) {
	for _, env := range seedEnvelopes() {
		data, err := proto.Marshal(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		env := &cairnv1.CommandEnvelope{}
		if proto.Unmarshal(data, env) != nil {
			return
		}
		if err := aggregate.ValidateEnvelope(env); err != nil {
			var ce *aggregate.CommandError
			if !errors.As(err, &ce) || ce.Code != cmdtest.CodeInvalid || !errors.Is(err, aggregate.ErrInvalidArgument) {
				t.Fatalf("ValidateEnvelope = %v, want INVALID_ARGUMENT", err)
			}
			return
		}
		graph := env.GetGraphId()
		s, setup := fuzzState(t, graph)
		before := cmdtest.TakeSnapshot(s)
		evs, err := aggregate.DecideEnvelope(s, env)
		if err != nil {
			var ce *aggregate.CommandError
			if !errors.As(err, &ce) || ce.Code == cmdtest.CodeInternal || ce.Code == 0 {
				t.Fatalf("DecideEnvelope = %v, want a state error", err)
			}
			if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), before); d != "" {
				t.Fatalf("refused envelope changed the state: %s", d)
			}
			return
		}
		all := append(setup, evs...)
		recs, _, err := persistence.Seal(graph, "tx", 1, persistence.Head{}, all)
		if err != nil {
			t.Fatalf("seal: %v", err)
		}
		decoded, err := persistence.NewChain(graph).Check(1, &cairnv1.Transaction{GraphId: graph, TxId: "tx", TimestampUnixNano: 1,
			Events: recs, Commands: []*cairnv1.CommandRecord{{CommandId: "all", EventCount: uint32(len(all))}}})
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		replayed := aggregate.NewState(graph)
		for i, d := range decoded {
			if err := aggregate.Apply(replayed, d.Event); err != nil {
				t.Fatalf("apply event %d: %v", i, err)
			}
		}
		if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(replayed), cmdtest.TakeSnapshot(s)); d != "" {
			t.Fatalf("replayed state differs: %s", d)
		}
	})
}

// FuzzDecide reads bytes as a stream of commands over a small id space and
// decides them envelope by envelope, against the oracle (the model the
// compact State replaced): the same envelopes are accepted and refused (with
// the same field and message), the events are byte-identical, the states
// agree, and the accepted events replay to the same state.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0x80 | 1, 1, 0, 5, 1, 2, 0x80 | 2, 1, 3})
	f.Add([]byte{0, 0, 0, 1, 0, 1, 1, 1, 2, 0x80 | 5, 0, 1, 4, 0, 0, 0x80 | 3, 3, 3, 6, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 1, 1, 1, 2, 2, 5, 1, 2, 5, 2, 1, 5, 2, 2, 0x80 | 4, 2, 0, 7, 0, 0, 1, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		const graph = "fuzz"
		s, replayed, o := aggregate.NewState(graph), aggregate.NewState(graph), newOracle(graph)
		var gen []*cairnv1.Command
		n := 0
		flush := func() {
			if len(gen) == 0 {
				return
			}
			env := cmdtest.Envelope(graph, fmt.Sprint("c", n), gen...)
			n++
			want, wantErr := oracleDecideEnvelope(o, env)
			evs, err := aggregate.DecideEnvelope(s, env)
			sameDecision(t, fmt.Sprint("envelope ", n), env, evs, err, want, wantErr)
			for _, ev := range evs {
				if err := aggregate.Apply(replayed, ev); err != nil {
					t.Fatalf("envelope %d: replay: %v", n, err)
				}
			}
			if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), oracleSnapshot(o)); d != "" {
				t.Fatalf("after envelope %d %v: state differs from the oracle: %s", n, env.GetCommands(), d)
			}
			if msg := s.Check(); msg != "" {
				t.Fatalf("after envelope %d: %s", n, msg)
			}
			if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(replayed), cmdtest.TakeSnapshot(s)); d != "" {
				t.Fatalf("after envelope %d: replayed events differ: %s", n, d)
			}
			gen = gen[:0]
		}
		for i := 0; i+2 < len(data) && n < 200; i += 3 {
			op, x, y := data[i], int(data[i+1]), int(data[i+2])
			node := func(v int) string { return propNodeIDs[v%len(propNodeIDs)] }
			edge := "e" + fmt.Sprint(y%6)
			c := cmdtest.Comp([]string{"color", "size"}[y%2], []string{"red", "blue", ""}[x%3])
			var cmd *cairnv1.Command
			switch op & 0x0f % 9 {
			case 0:
				cmd = cmdtest.CreateGraph()
			case 1:
				cmd = cmdtest.AddNode(node(x), c)
			case 2:
				cmd = cmdtest.SetComps(node(x), c)
			case 3:
				cmd = cmdtest.RemoveComps(node(x), c.GetType())
			case 4:
				cmd = cmdtest.RemoveNode(node(x))
			case 5:
				cmd = cmdtest.Connect(edge, node(x), node(x+y/6))
			case 6:
				cmd = cmdtest.Disconnect(edge)
			case 7:
				cmd = cmdtest.AddNodeCats(node(x), "k")
			default:
				cmd = cmdtest.DeleteGraph()
			}
			gen = append(gen, cmd)
			if op&0x80 != 0 || len(gen) == 8 {
				flush()
			}
		}
		flush()
	})
}

var graphIDRule = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FuzzValidateGraphID: exactly the ids of the documented rule pass.
func FuzzValidateGraphID(f *testing.F) {
	for _, s := range []string{"g", "deps-2024_Q1", "a.b", "a b", "a*", "a>", "", strings.Repeat("a", 65), "Zürich"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := aggregate.ValidateGraphID("graph_id", id)
		if want := graphIDRule.MatchString(id); (err == nil) != want {
			t.Fatalf("ValidateGraphID(%q) = %v, rule says valid = %v", id, err, want)
		}
		if err != nil && !errors.Is(err, aggregate.ErrInvalidArgument) {
			t.Fatalf("ValidateGraphID(%q) = %v, want INVALID_ARGUMENT", id, err)
		}
	})
}

// FuzzValidateID: exactly 1-256 bytes of printable UTF-8 pass.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"libstdc++6", "user:42/alice", "Zürich", "python3.11", "", strings.Repeat("a", 257),
		"a\xffb", "a\x00b", "a\nb", "a\u200bb", "a\uFFFDb", strings.Repeat("ü", 128)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := aggregate.ValidateID("f", "node id", id)
		want := len(id) >= 1 && len(id) <= aggregate.MaxIDLen && utf8.ValidString(id) && !strings.ContainsFunc(id, func(r rune) bool { return !unicode.IsPrint(r) })
		if (err == nil) != want {
			t.Fatalf("ValidateID(%q) = %v, rule says valid = %v", id, err, want)
		}
		if err != nil && !errors.Is(err, aggregate.ErrInvalidArgument) {
			t.Fatalf("ValidateID(%q) = %v, want INVALID_ARGUMENT", id, err)
		}
	})
}
