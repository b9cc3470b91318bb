package aggregate_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/testseed"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The reference model of the typed graphs' rules, written plainly: maps,
// the rules spelled out per type, a depth-first search for cycles. It
// answers each command with the refusal's code and rule name ("" when a
// base refusal names none) or applies it.

type refNode struct {
	cat   string // "" for none
	cats  []string
	comps map[string]string
}

type refEdge struct{ src, dst, typ string }

type typedRef struct {
	typ   string
	nodes map[string]*refNode
	edges map[string]refEdge
}

func newTypedRef(typ string) *typedRef {
	return &typedRef{typ: typ, nodes: map[string]*refNode{}, edges: map[string]refEdge{}}
}

func (m *typedRef) clone() *typedRef {
	c := newTypedRef(m.typ)
	for id, n := range m.nodes {
		c.nodes[id] = &refNode{cat: n.cat, cats: n.cats, comps: maps.Clone(n.comps)}
	}
	maps.Copy(c.edges, m.edges)
	return c
}

// refusal is a refused command: its code and, for a type rule, the rule.
type refusal struct {
	code cairnv1.ErrorCode
	rule string
}

func base(code cairnv1.ErrorCode) *refusal { return &refusal{code: code} }
func rule(name string) *refusal {
	return &refusal{code: cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, rule: name}
}

var (
	wfStates = []string{"pending", "ready", "running", "blocked", "failed", "done", "cancelled"}
	wfMoves  = map[string][]string{
		"pending": {"ready", "cancelled"}, "ready": {"running", "cancelled"},
		"running": {"done", "failed", "blocked", "cancelled"}, "blocked": {"running", "cancelled"},
		"failed": {"ready", "cancelled"},
	}
	// relationship edge types: joins (from, to), and the partner's type.
	relJoins = map[string][][2]string{
		"knows": {{"person", "person"}}, "works_for": {{"person", "organisation"}}, "employs": {{"organisation", "person"}},
		"manages": {{"person", "person"}}, "reports_to": {{"person", "person"}},
		"lives_in": {{"person", "location"}}, "home_of": {{"location", "person"}},
		"located_in": {{"organisation", "location"}}, "hosts": {{"location", "organisation"}},
		"part_of":  {{"organisation", "organisation"}, {"location", "location"}},
		"has_part": {{"organisation", "organisation"}, {"location", "location"}},
	}
	relPartner = map[string]string{"knows": "knows", "works_for": "employs", "employs": "works_for", "manages": "reports_to",
		"reports_to": "manages", "lives_in": "home_of", "home_of": "lives_in", "located_in": "hosts", "hosts": "located_in",
		"part_of": "has_part", "has_part": "part_of"}
)

func (m *typedRef) categories() []string {
	if m.typ == "workflow" {
		return []string{"start", "step", "end"}
	}
	return []string{"person", "organisation", "location"}
}

// reaches reports whether a path of edges leads from a to b (a DFS).
func (m *typedRef) reaches(a, b string) bool {
	seen := map[string]bool{}
	var dfs func(n string) bool
	dfs = func(n string) bool {
		if n == b {
			return true
		}
		if seen[n] {
			return false
		}
		seen[n] = true
		for _, e := range m.edges {
			if e.src == n && dfs(e.dst) {
				return true
			}
		}
		return false
	}
	return dfs(a)
}

func (m *typedRef) decide(cmd *cairnv1.Command) *refusal {
	switch k := cmd.GetKind().(type) {
	case *cairnv1.Command_AddNode:
		an := k.AddNode
		if m.nodes[an.GetNodeId()] != nil {
			return base(cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS)
		}
		if len(an.GetCategories()) != 1 {
			return rule("one category")
		}
		cat := an.GetCategories()[0]
		if !slices.Contains(m.categories(), cat) {
			return rule("declared categories")
		}
		comps := cmdtest.CompMap(an.GetComponents())
		if m.typ == "workflow" {
			if (cat == "start") != (len(m.nodes) == 0) {
				return rule("one start")
			}
			if cat == "step" {
				if st, ok := comps["state"]; ok && st != "pending" {
					return rule("initial state")
				}
				comps["state"] = "pending"
			}
		}
		m.nodes[an.GetNodeId()] = &refNode{cat: cat, cats: an.GetCategories(), comps: comps}
	case *cairnv1.Command_SetNodeComponents:
		n := m.nodes[k.SetNodeComponents.GetNodeId()]
		if n == nil {
			return base(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
		}
		set := cmdtest.CompMap(k.SetNodeComponents.GetComponents())
		if st, ok := set["state"]; ok && m.typ == "workflow" && n.cat == "step" {
			if !slices.Contains(wfStates, st) {
				return rule("declared states")
			}
			if st != n.comps["state"] && !slices.Contains(wfMoves[n.comps["state"]], st) {
				return rule("transitions")
			}
		}
		maps.Copy(n.comps, set)
	case *cairnv1.Command_RemoveNodeComponents:
		n := m.nodes[k.RemoveNodeComponents.GetNodeId()]
		if n == nil {
			return base(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
		}
		for _, t := range k.RemoveNodeComponents.GetTypes() {
			if _, ok := n.comps[t]; !ok {
				return base(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
			}
		}
		for _, t := range k.RemoveNodeComponents.GetTypes() {
			if m.typ == "workflow" && n.cat == "step" && t == "state" {
				return rule("required components")
			}
		}
		for _, t := range k.RemoveNodeComponents.GetTypes() {
			delete(n.comps, t)
		}
	case *cairnv1.Command_RemoveNode:
		id := k.RemoveNode.GetNodeId()
		n := m.nodes[id]
		if n == nil {
			return base(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
		}
		if m.typ == "workflow" && n.cat == "start" && len(m.nodes) > 1 {
			return rule("one start")
		}
		for eid, e := range m.edges {
			if e.src == id || e.dst == id {
				delete(m.edges, eid)
			}
		}
		delete(m.nodes, id)
	case *cairnv1.Command_ConnectNodes:
		cn := k.ConnectNodes
		id, src, dst, typ := cn.GetEdgeId(), cn.GetSource(), cn.GetTarget(), cn.GetEdgeType()
		if m.typ == "relationship" && strings.HasSuffix(id, "/inverse") {
			return rule("partner edges")
		}
		if _, ok := m.edges[id]; ok {
			return base(cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS)
		}
		if m.nodes[src] == nil || m.nodes[dst] == nil {
			if !cn.GetCreateMissing() {
				return base(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
			}
			return rule("declared categories")
		}
		from, to := m.nodes[src].cat, m.nodes[dst].cat
		if m.typ == "workflow" {
			if typ != "next" {
				return rule("declared edge types")
			}
			if to != "step" && to != "end" {
				return rule("edge joins")
			}
			if m.reaches(dst, src) {
				return rule("acyclic")
			}
			m.edges[id] = refEdge{src, dst, typ}
			return nil
		}
		joins, ok := relJoins[typ]
		if !ok {
			return rule("declared edge types")
		}
		if !slices.Contains(joins, [2]string{from, to}) {
			return rule("edge joins")
		}
		m.edges[id] = refEdge{src, dst, typ}
		m.edges[id+"/inverse"] = refEdge{dst, src, relPartner[typ]}
	case *cairnv1.Command_DisconnectNodes:
		id := k.DisconnectNodes.GetEdgeId()
		if _, ok := m.edges[id]; !ok {
			return base(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND)
		}
		delete(m.edges, id)
		if m.typ == "relationship" {
			delete(m.edges, strings.TrimSuffix(id, "/inverse"))
			delete(m.edges, id+"/inverse")
		}
	default:
		panic("reference: unexpected command")
	}
	return nil
}

// decideEnvelope decides cmds in order, all or nothing; it returns the
// first refusal and the index of its command.
func (m *typedRef) decideEnvelope(cmds []*cairnv1.Command) (*typedRef, *refusal, int) {
	next := m.clone()
	for i, c := range cmds {
		if r := next.decide(c); r != nil {
			return m, r, i
		}
	}
	return next, nil, -1
}

func (m *typedRef) snapshot() cmdtest.Snapshot {
	sn := cmdtest.Snapshot{Exists: true, Nodes: map[string]cmdtest.NodeSnap{}, Edges: map[string]cmdtest.EdgeSnap{}, Refs: map[string]int{}}
	for id, n := range m.nodes {
		sn.Nodes[id] = cmdtest.NodeSnap{Comps: maps.Clone(n.comps), Cats: n.cats}
		for t, v := range n.comps {
			sn.Refs[t+"="+v]++
		}
	}
	for id, e := range m.edges {
		sn.Edges[id] = cmdtest.EdgeSnap{Source: e.src, Target: e.dst, Type: e.typ, Comps: map[string]string{}}
	}
	sn.Distinct = len(sn.Refs)
	return sn
}

// typedGen draws commands over small pools of ids, so that they collide.
type typedGen struct {
	r   *rand.Rand
	typ string
}

func (g typedGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g typedGen) node() string             { return fmt.Sprint("n", g.r.IntN(12)) }

func (g typedGen) command() *cairnv1.Command {
	var cats, etypes, values []string
	if g.typ == "workflow" {
		cats = []string{"start", "step", "step", "step", "end", "task"}
		etypes = []string{"next", "next", "next", "next", "", "dep"}
		values = append([]string{"paused"}, wfStates...)
	} else {
		cats = []string{"person", "person", "organisation", "location", "pet"}
		etypes = append(slices.Sorted(maps.Keys(relJoins)), "likes", "")
		values = []string{"Ann", "Bob"}
	}
	switch n := g.r.IntN(40); {
	case n < 10:
		an := &cairnv1.AddNode{NodeId: g.node(), Categories: []string{g.pick(cats...)}}
		switch g.r.IntN(10) {
		case 0:
			an.Categories = nil
		case 1:
			an.Categories = append(an.Categories, g.pick(cats...))
		}
		if g.r.IntN(4) == 0 {
			an.Components = []*cairnv1.Component{cmdtest.Comp(g.pick("state", "name"), g.pick(values...))}
		}
		return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: an}}
	case n < 17:
		return cmdtest.SetComps(g.node(), cmdtest.Comp(g.pick("state", "state", "name"), g.pick(values...)))
	case n < 19:
		return cmdtest.RemoveComps(g.node(), g.pick("state", "name"))
	case n < 20:
		return cmdtest.RemoveNode(g.node())
	case n < 35:
		id := fmt.Sprint("e", g.r.IntN(24))
		if g.r.IntN(10) == 0 {
			id += "/inverse"
		}
		return &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{
			EdgeId: id, Source: g.node(), Target: g.node(), EdgeType: g.pick(etypes...), CreateMissing: g.r.IntN(8) == 0}}}
	default:
		id := fmt.Sprint("e", g.r.IntN(24))
		if g.r.IntN(3) == 0 {
			id += "/inverse"
		}
		return cmdtest.Disconnect(id)
	}
}

var ruleName = regexp.MustCompile(`^(workflow|relationship) rule "([^"]+)": `)

// sameRefusal fails t unless err is the refusal the reference decided, of
// command index i.
func sameRefusal(t *testing.T, step string, err error, want *refusal, i int) {
	t.Helper()
	var ce *aggregate.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: accepted or not a command error (%v); the reference refuses command %d: %+v", step, err, i, *want)
	}
	gotRule := ""
	if m := ruleName.FindStringSubmatch(ce.Message); m != nil {
		gotRule = m[2]
	}
	if ce.Code != want.code || gotRule != want.rule || !strings.HasPrefix(ce.Field, fmt.Sprintf("commands[%d]", i)) {
		t.Fatalf("%s: refused %v; the reference refuses command %d with %v rule %q", step, err, i, want.code, want.rule)
	}
}

// TestTypeRulesMatchReference decides random command streams on typed
// graphs with the aggregate and with the reference model: every decision
// and every state must agree (partner edges included), and the state must
// hold together and survive its snapshot encoding with its rules.
func TestTypeRulesMatchReference(t *testing.T) {
	seed := testseed.Seed(t, 16)
	for run, typ := range []string{"workflow", "relationship", "workflow", "relationship"} {
		r := rand.New(rand.NewPCG(seed, uint64(run)))
		g := typedGen{r, typ}
		s, m := aggregate.NewState("g"), newTypedRef(typ)
		cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "create", createTyped(typ)))
		accepted, refused := map[string]int{}, map[string]int{}
		for step := range 2500 {
			name := fmt.Sprintf("%s run %d step %d", typ, run, step)
			cmds := make([]*cairnv1.Command, 1+r.IntN(3)/2)
			for i := range cmds {
				cmds[i] = g.command()
			}
			_, err := aggregate.DecideEnvelope(s, cmdtest.Envelope("g", fmt.Sprint("c", step), cmds...))
			next, want, i := m.decideEnvelope(cmds)
			if want == nil {
				if err != nil {
					t.Fatalf("%s: refused %v; the reference accepts %v", name, err, cmds)
				}
				for _, c := range cmds {
					accepted[fmt.Sprintf("%T", c.GetKind())]++
				}
			} else {
				sameRefusal(t, name, err, want, i)
				refused[want.rule]++
			}
			m = next
			if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), m.snapshot()); d != "" {
				t.Fatalf("%s: state differs from the reference: %s", name, d)
			}
			if r.IntN(100) == 0 {
				s = roundTrip(t, s)
				if s.Rules() == nil {
					t.Fatalf("%s: a decoded %s graph has no rules", name, typ)
				}
			}
		}
		t.Logf("%s run %d: accepted %v; refused by rule %v; %d nodes, %d edges at the end", typ, run, accepted, refused, s.NodeCount(), s.EdgeCount())
		// Every rule of the type was exercised, and commands were accepted.
		wantRules := []string{"one category", "declared categories", "declared edge types", "edge joins"}
		if typ == "workflow" {
			wantRules = append(wantRules, "one start", "acyclic", "initial state", "declared states", "transitions", "required components")
		} else {
			wantRules = append(wantRules, "partner edges")
		}
		for _, rl := range wantRules {
			if refused[rl] == 0 {
				t.Errorf("%s run %d: rule %q never refused a command", typ, run, rl)
			}
		}
		if accepted["*cairnv1.Command_ConnectNodes"] == 0 || accepted["*cairnv1.Command_DisconnectNodes"] == 0 {
			t.Errorf("%s run %d: no edge was added or removed: %v", typ, run, accepted)
		}
	}
}

// TestRefusalLeavesNoTrace: an envelope of 10 commands whose 5th breaks a
// type rule (the 4 before it accepted) leaves the state as it was: its
// exported view, its snapshot encoding (byte for byte that of a base
// refusal at the same place; the rule-breaking command alone changes no
// byte) and the decisions that follow are those of a copy taken before
// the envelope.
func TestRefusalLeavesNoTrace(t *testing.T) {
	seed := testseed.Seed(t, 1616)
	for run, typ := range []string{"workflow", "relationship"} {
		r := rand.New(rand.NewPCG(seed, uint64(run)))
		g := typedGen{r, typ}
		s, m := aggregate.NewState("g"), newTypedRef(typ)
		cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "create", createTyped(typ)))
		checked := 0
		for step := range 400 {
			name := fmt.Sprintf("%s run %d step %d", typ, run, step)
			// Grow the graph a little with accepted commands.
			for range 5 {
				c := g.command()
				if next, ref, _ := m.decideEnvelope([]*cairnv1.Command{c}); ref == nil {
					cmdtest.MustDecide(t, s, cmdtest.Envelope("g", fmt.Sprint("grow", step), c))
					m = next
				}
			}
			// 4 accepted commands, a 5th that breaks a rule, 5 more.
			cmds := make([]*cairnv1.Command, 0, 10)
			trial := m.clone()
			for tries := 0; len(cmds) < 5 && tries < 2000; tries++ {
				c := g.command()
				probe := trial.clone()
				ref := probe.decide(c)
				if len(cmds) < 4 && ref == nil {
					cmds, trial = append(cmds, c), probe
				} else if alone := m.clone().decide(c); len(cmds) == 4 && ref != nil && ref.rule != "" && alone != nil && alone.rule != "" {
					cmds = append(cmds, c) // refused after the 4, and alone
				}
			}
			if len(cmds) < 5 {
				continue
			}
			for len(cmds) < 10 {
				cmds = append(cmds, g.command())
			}
			before := aggregate.Export(s, nil)
			beforeBytes, err := aggregate.Marshal(s, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The 5th command alone: refused before anything is applied, it
			// leaves the encoding as it was, byte for byte.
			if _, err := aggregate.DecideEnvelope(s, cmdtest.Envelope("g", fmt.Sprint("alone", step), cmds[4])); err == nil {
				t.Fatalf("%s: the rule-breaking command %v was accepted alone", name, cmds[4])
			}
			if b, err := aggregate.Marshal(s, nil); err != nil || !bytes.Equal(b, beforeBytes) {
				t.Fatalf("%s: a refused command changed the snapshot encoding (err %v)", name, err)
			}
			_, err = aggregate.DecideEnvelope(s, cmdtest.Envelope("g", fmt.Sprint("c", step), cmds...))
			_, want, i := m.decideEnvelope(cmds)
			sameRefusal(t, name, err, want, i)
			if i != 4 {
				t.Fatalf("%s: the reference refused command %d, want the 5th", name, i)
			}
			if !proto.Equal(aggregate.Export(s, nil), before) {
				t.Fatalf("%s: the refused envelope changed the exported state", name)
			}
			// The 4 commands before it were applied and rolled back: the
			// encoding keeps what any rollback keeps (indices freed for reuse,
			// interned names), so it is compared with a copy from before on
			// which the same 4 commands were rolled back by a refusal of the
			// untyped base (an edge that does not exist).
			afterBytes, err := aggregate.Marshal(s, nil)
			if err != nil {
				t.Fatal(err)
			}
			control, _, err := aggregate.Unmarshal(beforeBytes)
			if err != nil {
				t.Fatal(err)
			}
			_, cerr := aggregate.DecideEnvelope(control, cmdtest.Envelope("g", fmt.Sprint("c", step), append(slices.Clip(cmds[:4]), cmdtest.Disconnect("no-such-edge"))...))
			if !errors.Is(cerr, aggregate.ErrNotFound) {
				t.Fatalf("%s: the control envelope: %v", name, cerr)
			}
			if cb, err := aggregate.Marshal(control, nil); err != nil || !bytes.Equal(cb, afterBytes) {
				t.Fatalf("%s: the rule's refusal left another encoding than a base refusal at the same place (err %v)", name, err)
			}
			decoded, _, err := aggregate.Unmarshal(afterBytes)
			if err != nil || !proto.Equal(aggregate.Export(decoded, nil), before) {
				t.Fatalf("%s: the encoding after the refusal decodes to another state (err %v)", name, err)
			}
			copyBefore, _, err := aggregate.Unmarshal(beforeBytes)
			if err != nil {
				t.Fatal(err)
			}
			for k := range 3 { // the next decisions are those of the copy
				env := cmdtest.Envelope("g", fmt.Sprintf("n%d-%d", step, k), g.command(), g.command())
				got, gotErr := aggregate.DecideEnvelope(s, env)
				want, wantErr := aggregate.DecideEnvelope(copyBefore, env)
				if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || len(got) != len(want) {
					t.Fatalf("%s: after the refusal %v (%d events); the copy from before %v (%d events)", name, gotErr, len(got), wantErr, len(want))
				}
				for j := range got {
					if !proto.Equal(got[j], want[j]) {
						t.Fatalf("%s: event %d differs after the refusal: %v, the copy %v", name, j, got[j], want[j])
					}
				}
				if gotErr == nil {
					m, _, _ = m.decideEnvelope(env.GetCommands())
				}
			}
			checked++
		}
		t.Logf("%s: %d refused envelopes checked", typ, checked)
		if checked < 100 {
			t.Errorf("%s: only %d refused envelopes checked", typ, checked)
		}
	}
}

// byteSource is a rand.Source reading the fuzzer's bytes, 2 at a time,
// spread over 64 bits (a constant stream would make rand's rejection
// sampling loop), so that the fuzzer steers typedGen.
type byteSource struct {
	data []byte
	n    uint64
}

func (b *byteSource) Uint64() uint64 {
	b.n++
	v := b.n * 0x9e3779b97f4a7c15
	for i := 0; i < 2 && len(b.data) > 0; i++ {
		v, b.data = v^uint64(b.data[0])<<(56-8*i), b.data[1:]
	}
	return v
}

// FuzzTypeRules decides commands the fuzzer's bytes choose on a workflow
// and a relationship graph, against the reference model: the same
// decisions (code and rule), the same states.
func FuzzTypeRules(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(bytes.Repeat([]byte{0x10, 0x80, 0x33, 0xf0, 0x07}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range []string{"workflow", "relationship"} {
			src := &byteSource{data: data}
			g := typedGen{rand.New(src), typ}
			s, m := aggregate.NewState("g"), newTypedRef(typ)
			cmdtest.MustDecide(t, s, cmdtest.Envelope("g", "create", createTyped(typ)))
			for step := 0; len(src.data) > 0 && step < 300; step++ {
				cmds := []*cairnv1.Command{g.command()}
				_, err := aggregate.DecideEnvelope(s, cmdtest.Envelope("g", fmt.Sprint("c", step), cmds...))
				next, want, i := m.decideEnvelope(cmds)
				name := fmt.Sprintf("%s step %d %v", typ, step, cmds)
				if want == nil && err != nil {
					t.Fatalf("%s: refused %v; the reference accepts", name, err)
				}
				if want != nil {
					sameRefusal(t, name, err, want, i)
				}
				m = next
				if d := cmdtest.DiffSnapshots(cmdtest.TakeSnapshot(s), m.snapshot()); d != "" {
					t.Fatalf("%s: state differs from the reference: %s", name, d)
				}
			}
		}
	})
}
