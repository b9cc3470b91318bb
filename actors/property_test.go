package actors_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// refModel is the naive reference: plain maps and the rules written out
// once more, to predict what the grain accepts.
type refModel struct {
	created, deleted bool
	nodes            map[string]refNode
	edges            map[string]refEdge
	position         uint64 // events so far
}

type refNode struct {
	comps map[string]string
	cats  []string
}

type refEdge struct {
	source, target, typ string
	comps               map[string]string
}

func newRefModel() *refModel {
	return &refModel{nodes: map[string]refNode{}, edges: map[string]refEdge{}}
}

func (m *refModel) clone() *refModel {
	c := &refModel{created: m.created, deleted: m.deleted, position: m.position,
		nodes: make(map[string]refNode, len(m.nodes)), edges: make(map[string]refEdge, len(m.edges))}
	for id, n := range m.nodes {
		c.nodes[id] = refNode{comps: maps.Clone(n.comps), cats: n.cats}
	}
	for id, e := range m.edges {
		e.comps = maps.Clone(e.comps)
		c.edges[id] = e
	}
	return c
}

// outcome is what the model predicts for one envelope.
type outcome struct {
	code     cairnv1.ErrorCode // 0 when accepted
	field    string
	position uint64 // head position after it, when accepted
}

// genCmd is a generated command; when malformed, bad is the field a
// validator must name, relative to "commands[i]".
type genCmd struct {
	cmd       *cairnv1.Command
	malformed bool
	bad       string
}

// decide predicts env's outcome and, when accepted, applies it.
func (m *refModel) decide(graph string, env *cairnv1.CommandEnvelope, gen []genCmd, badEnvelope string) outcome {
	switch {
	case badEnvelope != "":
		return outcome{code: cmdtest.CodeInvalid, field: badEnvelope}
	case env.GetGraphId() != graph:
		return outcome{code: cmdtest.CodeInvalid, field: "graph_id"}
	}
	for i, g := range gen {
		if g.malformed {
			return outcome{code: cmdtest.CodeInvalid, field: fmt.Sprintf("commands[%d]%s", i, g.bad)}
		}
	}
	next := m.clone()
	for i, g := range gen {
		if code, field := next.apply(g.cmd); code != 0 {
			if field != "graph_id" {
				field = fmt.Sprintf("commands[%d]%s", i, field)
			}
			return outcome{code: code, field: field}
		}
	}
	*m = *next
	return outcome{position: m.position}
}

func (m *refModel) apply(cmd *cairnv1.Command) (cairnv1.ErrorCode, string) {
	if _, ok := cmd.GetKind().(*cairnv1.Command_CreateGraph); ok {
		if m.created {
			return cmdtest.CodeExists, ".create_graph.graph_id"
		}
		m.created = true
		m.position++
		return 0, ""
	}
	if !m.created {
		return cmdtest.CodeNotFound, "graph_id"
	}
	if m.deleted {
		return cmdtest.CodePrecondition, "graph_id"
	}
	switch k := cmd.GetKind().(type) {
	case *cairnv1.Command_AddNode:
		id := k.AddNode.GetNodeId()
		if _, ok := m.nodes[id]; ok {
			return cmdtest.CodeExists, ".add_node.node_id"
		}
		var cats []string
		if len(k.AddNode.GetCategories()) > 0 {
			cats = slices.Clone(k.AddNode.GetCategories())
		}
		m.nodes[id] = refNode{comps: cmdtest.CompMap(k.AddNode.GetComponents()), cats: cats}
		m.position++
	case *cairnv1.Command_SetNodeComponents:
		n, ok := m.nodes[k.SetNodeComponents.GetNodeId()]
		if !ok {
			return cmdtest.CodeNotFound, ".set_node_components.node_id"
		}
		maps.Copy(n.comps, cmdtest.CompMap(k.SetNodeComponents.GetComponents()))
		m.position++
	case *cairnv1.Command_RemoveNodeComponents:
		n, ok := m.nodes[k.RemoveNodeComponents.GetNodeId()]
		if !ok {
			return cmdtest.CodeNotFound, ".remove_node_components.node_id"
		}
		for i, typ := range k.RemoveNodeComponents.GetTypes() {
			if _, ok := n.comps[typ]; !ok {
				return cmdtest.CodeNotFound, fmt.Sprintf(".remove_node_components.types[%d]", i)
			}
		}
		for _, typ := range k.RemoveNodeComponents.GetTypes() {
			delete(n.comps, typ)
		}
		m.position++
	case *cairnv1.Command_RemoveNode:
		id := k.RemoveNode.GetNodeId()
		if _, ok := m.nodes[id]; !ok {
			return cmdtest.CodeNotFound, ".remove_node.node_id"
		}
		for eid, e := range m.edges {
			if e.source == id || e.target == id {
				delete(m.edges, eid)
				m.position++
			}
		}
		delete(m.nodes, id)
		m.position++
	case *cairnv1.Command_ConnectNodes:
		cn := k.ConnectNodes
		if _, ok := m.edges[cn.GetEdgeId()]; ok {
			return cmdtest.CodeExists, ".connect_nodes.edge_id"
		}
		if _, ok := m.nodes[cn.GetSource()]; !ok {
			return cmdtest.CodeNotFound, ".connect_nodes.source"
		}
		if _, ok := m.nodes[cn.GetTarget()]; !ok {
			return cmdtest.CodeNotFound, ".connect_nodes.target"
		}
		m.edges[cn.GetEdgeId()] = refEdge{source: cn.GetSource(), target: cn.GetTarget(), typ: cn.GetEdgeType(), comps: cmdtest.CompMap(cn.GetComponents())}
		m.position++
	case *cairnv1.Command_DisconnectNodes:
		if _, ok := m.edges[k.DisconnectNodes.GetEdgeId()]; !ok {
			return cmdtest.CodeNotFound, ".disconnect_nodes.edge_id"
		}
		delete(m.edges, k.DisconnectNodes.GetEdgeId())
		m.position++
	case *cairnv1.Command_DeleteGraph:
		m.deleted = true
		m.position++
	}
	return 0, ""
}

// snapshot renders the model the way cmdtest.TakeSnapshot renders a State.
func (m *refModel) snapshot() cmdtest.Snapshot {
	sn := cmdtest.Snapshot{Exists: m.created && !m.deleted, Deleted: m.deleted, Nodes: map[string]cmdtest.NodeSnap{}, Edges: map[string]cmdtest.EdgeSnap{}, Refs: map[string]int{}}
	count := func(cs map[string]string) {
		for typ, v := range cs {
			sn.Refs[typ+"="+v]++
		}
	}
	for id, n := range m.nodes {
		sn.Nodes[id] = cmdtest.NodeSnap{Comps: maps.Clone(n.comps), Cats: n.cats}
		count(n.comps)
	}
	for id, e := range m.edges {
		sn.Edges[id] = cmdtest.EdgeSnap{Source: e.source, Target: e.target, Type: e.typ, Comps: maps.Clone(e.comps)}
		count(e.comps)
	}
	sn.Distinct = len(sn.Refs)
	return sn
}

// generator makes random command envelopes over a small id space, so that
// commands collide often; some are malformed.
type generator struct {
	r *rand.Rand
}

var propNodeIDs = []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "libstdc++6", "user:42/alice", "Zürich", "python3.11"}

func (g generator) pick(ss []string) string { return ss[g.r.IntN(len(ss))] }
func (g generator) node() string            { return g.pick(propNodeIDs) }
func (g generator) edge() string            { return "e" + strconv.Itoa(g.r.IntN(14)) }

func (g generator) comps(max int) []*cairnv1.Component {
	types := []string{"color", "size", "owner"}
	g.r.Shuffle(len(types), func(i, j int) { types[i], types[j] = types[j], types[i] })
	out := make([]*cairnv1.Component, g.r.IntN(max+1))
	for i := range out {
		out[i] = cmdtest.Comp(types[i], g.pick([]string{"red", "blue", "", "0"}))
	}
	return out
}

func (g generator) command(late bool) genCmd {
	types := []string{"color", "size", "owner"}
	bad := func(cmd *cairnv1.Command, field string) genCmd { return genCmd{cmd: cmd, malformed: true, bad: field} }
	switch n := g.r.IntN(200); {
	case n < 60:
		cmd := cmdtest.AddNode(g.node(), g.comps(3)...)
		if g.r.IntN(4) == 0 {
			cmd.GetAddNode().Categories = []string{"lib", "app", "person"}[:1+g.r.IntN(3)]
		}
		return genCmd{cmd: cmd}
	case n < 80:
		cs := g.comps(2)
		if len(cs) == 0 {
			cs = []*cairnv1.Component{cmdtest.Comp("color", g.pick([]string{"red", "blue"}))}
		}
		return genCmd{cmd: cmdtest.SetComps(g.node(), cs...)}
	case n < 92:
		return genCmd{cmd: cmdtest.RemoveComps(g.node(), types[:1+g.r.IntN(2)]...)}
	case n < 110:
		return genCmd{cmd: cmdtest.RemoveNode(g.node())}
	case n < 160:
		return genCmd{cmd: cmdtest.Connect(g.edge(), g.node(), g.node(), g.comps(1)...)}
	case n < 178:
		return genCmd{cmd: cmdtest.Disconnect(g.edge())}
	case n < 180:
		return genCmd{cmd: cmdtest.CreateGraph()}
	case n < 182 && late:
		return genCmd{cmd: cmdtest.DeleteGraph()}
	case n < 184:
		return bad(cmdtest.AddNode("bad\nid"), ".add_node.node_id")
	case n < 186:
		return bad(cmdtest.Connect(g.edge(), g.node(), ""), ".connect_nodes.target")
	case n < 188:
		return bad(cmdtest.AddNode(g.node(), cmdtest.Comp("color", "red"), cmdtest.Comp("color", "blue")), ".add_node.components[1].type")
	case n < 189:
		return bad(cmdtest.SetComps(g.node(), cmdtest.Comp("blob", strings.Repeat("x", aggregate.MaxComponentValueLen+1))), ".set_node_components.components[0].value")
	case n < 190:
		return bad(&cairnv1.Command{}, "")
	}
	return genCmd{cmd: cmdtest.AddNode(g.node())}
}

// sent is one envelope of the property test and what became of it.
type sent struct {
	env         *cairnv1.CommandEnvelope
	gen         []genCmd
	badEnvelope string // the field when the envelope itself is malformed
	want        outcome
	dup         *cairnv1.CommandReply // the original answer, when this is a retry of an accepted command
	fut         *actor.Future
}

// Random valid and invalid envelopes, sent in bursts through a real grain
// (so that group commit batches them), are answered as the reference model
// predicts; the stream folds to the model's state and to the last reply's
// head.
func TestGrainMatchesReferenceModel(t *testing.T) {
	seed := testseed.Seed(t, 0)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	gen := generator{r: r}
	_, store := newStore(t)
	m := startMember(t, store, quickGrains())
	const graph = "prop"
	model := newRefModel()
	accepted := map[string]*cairnv1.CommandReply{} // command id -> first answer
	var history []*sent                            // every envelope sent, in order
	var lastOK *cairnv1.CommandReply
	const envelopes = 400
	for len(history) < envelopes {
		burst := 1 + r.IntN(8)
		inBurst := map[string]bool{}
		var batch []*sent
		for range burst {
			k := len(history)
			late := k > envelopes*9/10
			s := &sent{}
			// Retry an earlier command id now and then, never one of this
			// burst (whether it joins the pending one is timing).
			if k > 0 && r.IntN(12) == 0 {
				prev := history[r.IntN(len(history))]
				if id := prev.env.GetCommandId(); id != "" && !inBurst[id] {
					s.env, s.gen, s.badEnvelope = prev.env, prev.gen, prev.badEnvelope
					s.dup = accepted[id]
				}
			}
			if s.env == nil {
				s.env = &cairnv1.CommandEnvelope{GraphId: graph, CommandId: fmt.Sprint("cmd-", k)}
				switch {
				case k == 0: // before the graph exists
					s.gen = []genCmd{{cmd: cmdtest.AddNode(gen.node())}}
				case k == 1 || k == 4:
					s.gen = []genCmd{{cmd: cmdtest.CreateGraph()}}
				case r.IntN(60) == 0:
					s.badEnvelope = "commands" // no commands
				case r.IntN(60) == 0:
					s.env.CommandId, s.badEnvelope = "", "command_id"
					s.gen = []genCmd{{cmd: cmdtest.AddNode(gen.node())}}
				case r.IntN(60) == 0:
					s.env.GraphId = "other" // reaches the wrong grain
					s.gen = []genCmd{{cmd: cmdtest.AddNode(gen.node())}}
				default:
					n := 1
					if r.IntN(3) == 0 {
						n = 2 + r.IntN(3)
					}
					for range n {
						s.gen = append(s.gen, gen.command(late))
					}
				}
				for _, c := range s.gen {
					s.env.Commands = append(s.env.Commands, c.cmd)
				}
			}
			if s.dup == nil {
				s.want = model.decide(graph, s.env, s.gen, s.badEnvelope)
			}
			inBurst[s.env.GetCommandId()] = true
			batch = append(batch, s)
			history = append(history, s)
		}
		for _, s := range batch {
			s.fut = m.send(graph, s.env)
		}
		var batchSeq uint64
		for _, s := range batch {
			rep := m.answer(s.fut)
			if s.dup != nil {
				if !rep.GetDuplicate() || rep.GetError() != nil || rep.GetSeq() != s.dup.GetSeq() || rep.GetHeadCid() != s.dup.GetHeadCid() ||
					rep.GetPosition() != s.dup.GetPosition() {
					t.Fatalf("seed %d: retry of %s = %v, want a duplicate of %v", seed, s.env.GetCommandId(), rep, s.dup)
				}
				continue
			}
			if rep.GetDuplicate() {
				t.Fatalf("seed %d: %s answered as a duplicate: %v", seed, s.env.GetCommandId(), rep)
			}
			if s.want.code != 0 {
				if rep.GetError().GetCode() != s.want.code || rep.GetError().GetField() != s.want.field {
					t.Fatalf("seed %d: %s %v: got %v, want %v at %q", seed, s.env.GetCommandId(), s.env.GetCommands(),
						aggregate.ErrorFromProto(rep.GetError()), s.want.code, s.want.field)
				}
				continue
			}
			if rep.GetError() != nil || rep.GetPosition() != s.want.position {
				t.Fatalf("seed %d: %s %v: got %v, want accepted at position %d", seed, s.env.GetCommandId(), s.env.GetCommands(), rep, s.want.position)
			}
			if rep.GetSeq() < batchSeq || (lastOK != nil && rep.GetSeq() < lastOK.GetSeq()) {
				t.Fatalf("seed %d: %s: seq %d went backwards", seed, s.env.GetCommandId(), rep.GetSeq())
			}
			batchSeq = rep.GetSeq()
			accepted[s.env.GetCommandId()] = rep
			lastOK = rep
		}
	}
	if lastOK == nil {
		t.Fatalf("seed %d: nothing was accepted", seed)
	}

	// A fresh replay from the stream gives the model's state and the last
	// reply's head.
	got, head, recs := fold(t, store, graph)
	if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(got), model.snapshot()); d != "" {
		t.Fatalf("seed %d: replayed state differs from the reference model: %s", seed, d)
	}
	if head.CID.String() != lastOK.GetHeadCid() || head.N != lastOK.GetPosition() || head.N != model.position {
		t.Fatalf("seed %d: replayed head %d %s, last reply %v, model position %d", seed, head.N, head.CID, lastOK, model.position)
	}
	if _, err := store.Verify(context.Background(), graph); err != nil {
		t.Fatalf("seed %d: verify: %v", seed, err)
	}
	stored := commandSeqs(recs)
	for id, rep := range accepted {
		if seqs := stored[id]; len(seqs) != 1 || seqs[0] != rep.GetSeq() {
			t.Fatalf("seed %d: accepted %s stored at %v, want once at %d", seed, id, seqs, rep.GetSeq())
		}
	}
	if len(stored) != len(accepted) {
		t.Fatalf("seed %d: %d commands stored, %d accepted", seed, len(stored), len(accepted))
	}
	t.Logf("%d envelopes, %d accepted, %d transactions, %d events; %d nodes, %d edges",
		len(history), len(accepted), len(recs), head.N, got.NodeCount(), got.EdgeCount())
}
