package aggregate_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

var propNodeIDs = []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "libstdc++6", "user:42/alice", "Zürich", "python3.11"}

// gen draws commands over a small id space, so that they collide often:
// duplicates, missing nodes, edges of removed nodes, self-loops.
type gen struct{ r *rand.Rand }

func (g gen) node() string { return propNodeIDs[g.r.IntN(len(propNodeIDs))] }
func (g gen) edge() string { return "e" + strconv.Itoa(g.r.IntN(16)) }

func (g gen) comps(max int) []*cairnv1.Component {
	types := []string{"color", "size", "weight", "v"}
	var cs []*cairnv1.Component
	for _, i := range g.r.Perm(len(types))[:g.r.IntN(max+1)] {
		cs = append(cs, cmdtest.Comp(types[i], []string{"red", "blue", "", "1", "a\x00b"}[g.r.IntN(5)]))
	}
	return cs
}

func (g gen) command() *cairnv1.Command {
	if g.r.IntN(400) == 0 {
		return cmdtest.DeleteGraph() // rare: everything after it is refused
	}
	switch g.r.IntN(20) {
	case 0, 1:
		return cmdtest.CreateGraph()
	case 2, 3, 4:
		c := cmdtest.AddNode(g.node(), g.comps(3)...)
		if g.r.IntN(3) == 0 {
			c.GetAddNode().Categories = []string{"lib", "app", "k"}[:1+g.r.IntN(3)]
		}
		return c
	case 5, 6:
		return cmdtest.SetComps(g.node(), g.comps(2)...)
	case 7:
		return cmdtest.RemoveComps(g.node(), []string{"color", "size", "weight"}[g.r.IntN(3)])
	case 8, 9:
		return cmdtest.RemoveNode(g.node())
	case 10, 11, 12, 13:
		c := cmdtest.Connect(g.edge(), g.node(), g.node(), g.comps(2)...)
		c.GetConnectNodes().EdgeType = []string{"", "dep", "uses"}[g.r.IntN(3)]
		c.GetConnectNodes().CreateMissing = g.r.IntN(3) == 0
		return c
	default:
		return cmdtest.Disconnect(g.edge())
	}
}

// oracleSnapshot is cmdtest.TakeSnapshot of the oracle.
func oracleSnapshot(s *oracleState) cmdtest.Snapshot {
	sn := cmdtest.Snapshot{Exists: s.Exists(), Deleted: s.Deleted(), Nodes: map[string]cmdtest.NodeSnap{}, Edges: map[string]cmdtest.EdgeSnap{},
		Distinct: s.DistinctComponents(), Refs: map[string]int{}}
	for k, e := range s.comps.m {
		sn.Refs[k.typ+"="+k.value] = e.refs
	}
	for _, id := range s.NodeIDs() {
		cs, cats, _ := s.Node(id)
		var cl []string
		if len(cats) > 0 {
			cl = append(cl, cats...)
		}
		sn.Nodes[id] = cmdtest.NodeSnap{Comps: cmdtest.CompMap(cs), Cats: cl}
	}
	for _, id := range s.EdgeIDs() {
		src, dst, typ, cs, _ := s.Edge(id)
		sn.Edges[id] = cmdtest.EdgeSnap{Source: src, Target: dst, Type: typ, Comps: cmdtest.CompMap(cs)}
	}
	return sn
}

// sameDecision fails t unless the two decisions of env are the same: the
// same refusal (code, field and message), or byte-identical events, and so
// byte-identical CIDs.
func sameDecision(t *testing.T, step string, env *cairnv1.CommandEnvelope, got []*cairnv1.Event, gotErr error, want []*cairnv1.Event, wantErr error) {
	t.Helper()
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%s: %v: error %v, oracle %v", step, env.GetCommands(), gotErr, wantErr)
	}
	if gotErr != nil {
		g, w := aggregate.AsCommandError(gotErr), aggregate.AsCommandError(wantErr)
		if g.Code != w.Code || g.Field != w.Field || g.Message != w.Message {
			t.Fatalf("%s: %v: refused with %v, oracle %v", step, env.GetCommands(), gotErr, wantErr)
		}
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, oracle %d", step, len(got), len(want))
	}
	mo := proto.MarshalOptions{Deterministic: true}
	for i := range got {
		a, _ := mo.Marshal(got[i])
		b, _ := mo.Marshal(want[i])
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: event %d is %v, oracle %v", step, i, got[i], want[i])
		}
	}
	if len(got) == 0 {
		return
	}
	ra, _, err := persistence.Seal("g", "tx", 1, persistence.Head{}, got)
	if err != nil {
		t.Fatalf("%s: seal: %v", step, err)
	}
	rb, _, _ := persistence.Seal("g", "tx", 1, persistence.Head{}, want)
	for i := range ra {
		if !bytes.Equal(ra[i].GetCid(), rb[i].GetCid()) {
			t.Fatalf("%s: event %d has another CID than the oracle's", step, i)
		}
	}
}

// TestStateMatchesOracle decides seeded random command streams with the
// compact State and with the model it replaced, in group-commit batches
// that are committed or rolled back at random, and round-trips the state
// through its snapshot encoding at random points. Every decision, event
// and CID must be the same; the states must agree, and hold together.
func TestStateMatchesOracle(t *testing.T) {
	seed := testseed.Seed(t, 0)
	for run := range 8 {
		r := rand.New(rand.NewPCG(seed, uint64(run)))
		g := gen{r}
		s, o := aggregate.NewState("g"), newOracle("g")
		var captures []capture
		cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
		if _, err := oracleDecideEnvelope(o, cmdtest.Envelope("g", "create", cmdtest.CreateGraph())); err != nil {
			t.Fatal(err)
		}
		for step := range 1500 {
			name := fmt.Sprintf("run %d step %d", run, step)
			if s.Deleted() && r.IntN(20) == 0 { // start over on a fresh graph
				s, o = aggregate.NewState("g"), newOracle("g")
			}
			// A batch of envelopes, as a grain's group commit decides them.
			s.Begin()
			o.begin()
			for k := range 1 + r.IntN(4) {
				cmds := make([]*cairnv1.Command, 1+r.IntN(3))
				for i := range cmds {
					cmds[i] = g.command()
				}
				env := cmdtest.Envelope("g", fmt.Sprintf("c%d-%d", step, k), cmds...)
				got, gotErr := aggregate.DecideEnvelope(s, env)
				want, wantErr := oracleDecideEnvelope(o, env)
				sameDecision(t, name, env, got, gotErr, want, wantErr)
			}
			if r.IntN(4) == 0 { // the append failed
				s.Rollback(0)
				o.rollback(0)
			}
			s.Commit()
			o.commit()
			if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), oracleSnapshot(o)); d != "" {
				t.Fatalf("%s: state differs from the oracle: %s", name, d)
			}
			if msg := s.Check(); msg != "" {
				t.Fatalf("%s: state does not hold together: %s", name, msg)
			}
			if r.IntN(50) == 0 {
				s = roundTrip(t, s)
			}
			// A frozen state encodes what the state was when frozen, however
			// the state changed since (pages are copied before writes).
			for _, c := range captures {
				if c.due == step {
					checkCapture(t, name, c)
				}
			}
			if r.IntN(10) == 0 {
				f, err := s.Freeze()
				if err != nil {
					t.Fatal(err)
				}
				captures = append(captures, capture{f: f, want: aggregate.Export(s, nil), due: step + 1 + r.IntN(30)})
			}
		}
	}
}

type capture struct {
	f    *aggregate.Frozen
	want *cairnv1.GraphSnapshot
	due  int
}

func checkCapture(t *testing.T, step string, c capture) {
	t.Helper()
	data, err := c.f.Marshal(nil)
	if err != nil {
		t.Fatalf("%s: marshal a capture: %v", step, err)
	}
	got, _, err := aggregate.Unmarshal(data)
	if err != nil {
		t.Fatalf("%s: a capture does not decode: %v", step, err)
	}
	if !proto.Equal(aggregate.Export(got, nil), c.want) {
		t.Fatalf("%s: a capture changed after it was frozen", step)
	}
}

// roundTrip encodes and decodes s, checks the copy answers alike, and
// returns the copy.
func roundTrip(t testing.TB, s *aggregate.State) *aggregate.State {
	t.Helper()
	data, err := aggregate.Marshal(s, nil)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	c, _, err := aggregate.Unmarshal(data)
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !proto.Equal(aggregate.Export(c, nil), aggregate.Export(s, nil)) {
		t.Fatal("the decoded state differs from the encoded one")
	}
	again, err := aggregate.Marshal(c, nil)
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-encoding the decoded state gives other bytes (err %v)", err)
	}
	// The paced encoding is the same bytes, with steps between its pieces.
	f, err := s.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	paced, err := f.MarshalPaced(nil, func() { steps++ })
	if err != nil || !bytes.Equal(paced, data) {
		t.Fatalf("MarshalPaced gives other bytes than Marshal (err %v)", err)
	}
	if steps < 10 {
		t.Fatalf("MarshalPaced took %d steps, want one per array at least", steps)
	}
	return c
}
