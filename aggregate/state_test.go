package aggregate_test

import (
	"fmt"
	"maps"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func TestFlyweightComponents(t *testing.T) {
	s := aggregate.NewState("g")
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "create", cmdtest.CreateGraph()))
	cmds := make([]*cairnv1.Command, 1000)
	for i := range cmds {
		cmds[i] = cmdtest.AddNode(fmt.Sprint("n", i), cmdtest.Comp("color", "red"))
	}
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "add", cmds...))
	if got := s.DistinctComponents(); got != 1 {
		t.Fatalf("DistinctComponents = %d with 1,000 nodes of one component, want 1", got)
	}
	wantRefs(t, s, map[string]int{"color=red": 1000})
	if _, ok := s.ComponentHandle("color", []byte("red")); !ok {
		t.Fatal("color=red is not stored")
	}
	for i := range 1000 {
		cs, _, _ := s.Node(fmt.Sprint("n", i))
		if len(cs) != 1 || cs[0].GetType() != "color" || string(cs[0].GetValue()) != "red" {
			t.Fatalf("node n%d holds %v, want color=red", i, cs)
		}
	}
	// The stored copy is not the command's: changing the command changes nothing.
	cmds[0].GetAddNode().Components[0].Value[0] = 'X'
	if cs, _, _ := s.Node("n0"); string(cs[0].GetValue()) != "red" {
		t.Fatal("the stored component aliases the command's bytes")
	}

	// Changing half of them to blue: two distinct components, counted right.
	var change []*cairnv1.Command
	for i := 0; i < 1000; i += 2 {
		change = append(change, cmdtest.SetComps(fmt.Sprint("n", i), cmdtest.Comp("color", "blue")))
	}
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "blue", change...))
	wantRefs(t, s, map[string]int{"color=red": 500, "color=blue": 500})

	// Setting the same value again holds it once, not twice.
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "same", cmdtest.SetComps("n0", cmdtest.Comp("color", "blue"), cmdtest.Comp("size", "1"))))
	wantRefs(t, s, map[string]int{"color=red": 500, "color=blue": 500, "size=1": 1})
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "drop", cmdtest.RemoveComps("n0", "size")))
	wantRefs(t, s, map[string]int{"color=red": 500, "color=blue": 500})

	// Edges share the same table.
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "edge", cmdtest.Connect("e", "n0", "n1", cmdtest.Comp("color", "red"))))
	wantRefs(t, s, map[string]int{"color=red": 501, "color=blue": 500})
	if _, _, _, cs, _ := s.Edge("e"); len(cs) != 1 || string(cs[0].GetValue()) != "red" {
		t.Fatalf("the edge holds %v, want color=red", cs)
	}

	// Removing every node (and so the edge) frees everything.
	var rm []*cairnv1.Command
	for i := range 1000 {
		rm = append(rm, cmdtest.RemoveNode(fmt.Sprint("n", i)))
	}
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "rm", rm...))
	if got := s.DistinctComponents(); got != 0 {
		t.Fatalf("DistinctComponents = %d after removing every node, want 0", got)
	}
	wantRefs(t, s, map[string]int{})
}

func wantRefs(t *testing.T, s *aggregate.State, want map[string]int) {
	t.Helper()
	if got := s.ComponentRefs(); !maps.Equal(got, want) {
		t.Fatalf("component references = %v, want %v", got, want)
	}
	if s.DistinctComponents() != len(want) {
		t.Fatalf("DistinctComponents = %d, want %d", s.DistinctComponents(), len(want))
	}
}

// A grain decides a group-commit batch speculatively and rolls it back when
// the append fails: every change, reference counts included, is undone, and
// the state holds together.
func TestRollbackRestoresComponents(t *testing.T) {
	s := aggregate.NewState("g")
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "setup", cmdtest.CreateGraph(),
		cmdtest.AddNode("a", cmdtest.Comp("color", "red"), cmdtest.Comp("only-a", "1")), cmdtest.AddNode("b", cmdtest.Comp("color", "red")),
		cmdtest.AddNode("c", cmdtest.Comp("solo", "x")), cmdtest.Connect("ab", "a", "b", cmdtest.Comp("w", "5")), cmdtest.Connect("cc", "c", "c", cmdtest.Comp("w", "5"))))
	before := cmdtest.TakeSnapshot(s)

	s.Begin()
	m := s.Mark()
	for i, cmds := range [][]*cairnv1.Command{
		{cmdtest.SetComps("a", cmdtest.Comp("color", "blue"))},                                // red 2 -> 1
		{cmdtest.RemoveComps("a", "only-a")},                                                  // only-a freed
		{cmdtest.RemoveNode("c")},                                                             // solo freed, a self-loop with it
		{cmdtest.Disconnect("ab")},                                                            // w freed
		{cmdtest.AddNode("d", cmdtest.Comp("color", "red"), cmdtest.Comp("solo", "x"))},       // solo back, a new copy
		{cmdtest.RemoveNode("b"), cmdtest.SetComps("d", cmdtest.Comp("color", "blue"))},       // red freed
		{cmdtest.Connect("da", "d", "a", cmdtest.Comp("w", "5")), cmdtest.AddNode("e")},       // w back
		{cmdtest.AddNode("a")},                                                                // refused alone
		{cmdtest.SetComps("a", cmdtest.Comp("color", "green")), cmdtest.RemoveNode("nobody")}, // refused alone
	} {
		_, _ = aggregate.DecideEnvelope(s, cmdtest.Envelope("g", fmt.Sprint("b", i), cmds...))
	}
	if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), before); d == "" {
		t.Fatal("the batch changed nothing; the test proves nothing")
	}
	s.Rollback(m)
	s.Commit()
	if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), before); d != "" {
		t.Fatalf("after rollback: %s", d)
	}
	if msg := s.Check(); msg != "" {
		t.Fatalf("after rollback the state does not hold together: %s", msg)
	}
	// And the state keeps working: removing everything frees everything.
	cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "rm", cmdtest.RemoveNode("a"), cmdtest.RemoveNode("b"), cmdtest.RemoveNode("c")))
	wantRefs(t, s, map[string]int{})
}

// A rollback to a mark inside a batch undoes only what came after the mark,
// the way a refused envelope in a group commit is undone.
func TestRollbackToMark(t *testing.T) {
	s := baseState(t)
	s.Begin()
	mustDecideRaw(t, s, cmdtest.Envelope("g", "first", cmdtest.AddNode("x", cmdtest.Comp("color", "red")), cmdtest.RemoveNode("a")))
	afterFirst := cmdtest.TakeSnapshot(s)
	m := s.Mark()
	mustDecideRaw(t, s, cmdtest.Envelope("g", "second", cmdtest.SetComps("x", cmdtest.Comp("color", "blue")), cmdtest.Connect("xb", "x", "b")))
	s.Rollback(m)
	if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), afterFirst); d != "" {
		t.Fatalf("rollback to the mark: %s", d)
	}
	s.Commit()
	if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), afterFirst); d != "" {
		t.Fatalf("commit after rollback: %s", d)
	}
}

// mustDecideRaw is cmdtest.MustDecide without validation, for envelopes decided
// inside a batch.
func mustDecideRaw(t *testing.T, s *aggregate.State, env *cairnv1.CommandEnvelope) {
	t.Helper()
	if _, err := aggregate.DecideEnvelope(s, env); err != nil {
		t.Fatalf("decide %s: %v", env.GetCommandId(), err)
	}
}
