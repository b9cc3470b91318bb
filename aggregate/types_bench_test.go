package aggregate_test

import (
	"fmt"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// BenchmarkDecideTyped decides and rolls back one ConnectNodes on graphs of
// 1,000 nodes: untyped, relationship (the partner edge added too) and
// workflow, where the edge goes from the start to the head of a chain of
// 1,000 steps, so that the acyclic check walks the whole chain (its worst
// case on this graph).
func BenchmarkDecideTyped(b *testing.B) {
	const n = 1000
	build := func(typ string) *aggregate.State {
		s := aggregate.NewState("g")
		cmds := []*cairnv1.Command{createTyped(typ)}
		switch typ {
		case "workflow":
			cmds = append(cmds, addCat("s", "start"))
			for i := range n {
				cmds = append(cmds, addCat(fmt.Sprint("n", i), "step"))
				if i > 0 {
					cmds = append(cmds, edge(fmt.Sprint("c", i), fmt.Sprint("n", i-1), fmt.Sprint("n", i), "next"))
				}
			}
		case "relationship":
			for i := range n {
				cmds = append(cmds, addCat(fmt.Sprint("n", i), "person"))
			}
		default:
			for i := range n {
				cmds = append(cmds, cmdtest.AddNode(fmt.Sprint("n", i)))
			}
		}
		for i := 0; i < len(cmds); i += 500 {
			cmdtest.MustDecide(b, s, cmdtest.Envelope("g", fmt.Sprint("build", i), cmds[i:min(i+500, len(cmds))]...))
		}
		return s
	}
	for _, bc := range []struct {
		typ string
		cmd *cairnv1.Command
	}{
		{"untyped", edge("x", "n1", "n2", "next")},
		{"relationship", edge("x", "n1", "n2", "knows")},
		{"workflow", edge("x", "s", "n0", "next")},
	} {
		b.Run(bc.typ, func(b *testing.B) {
			s := build(bc.typ)
			env := cmdtest.Envelope("g", "x", bc.cmd)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s.Begin()
				if _, err := aggregate.DecideEnvelope(s, env); err != nil {
					b.Fatal(err)
				}
				s.Rollback(0)
				s.Commit()
			}
		})
	}
}
