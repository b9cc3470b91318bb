package aggregate

import (
	"fmt"
	"slices"
	"strings"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Workflow is the declaration of the "workflow" graph type: a DAG of steps
// from one start node, whose steps move through declared states.
//
// Categories: start (exactly one; the first node added, the last removed),
// step (carries a "state" component, "pending" when added without one),
// end. Edge type: next, from any node to a step or an end (never into the
// start). States and transitions:
//
//	pending → ready → running → done
//	                  running → failed → ready (a retry)
//	                  running ⇄ blocked
//	pending, ready, running, blocked, failed → cancelled
//
// done and cancelled are final.
func Workflow() *cairnv1.GraphType {
	tr := func(from, to string) *cairnv1.WorkflowTransition {
		return &cairnv1.WorkflowTransition{From: from, To: to}
	}
	transitions := []*cairnv1.WorkflowTransition{
		tr("pending", "ready"), tr("ready", "running"), tr("running", "done"), tr("running", "failed"),
		tr("running", "blocked"), tr("blocked", "running"), tr("failed", "ready"),
	}
	for _, s := range []string{"pending", "ready", "running", "blocked", "failed"} {
		transitions = append(transitions, tr(s, "cancelled"))
	}
	return &cairnv1.GraphType{
		Name:        "workflow",
		Description: "a DAG of steps from one start node; steps move through declared states",
		Categories: []*cairnv1.NodeCategory{
			{Name: "start", Description: "where the workflow begins: exactly one, added first, removed last"},
			{Name: "step", Description: "a unit of work with a state", RequiredComponents: []string{"state"}},
			{Name: "end", Description: "where the workflow may finish"},
		},
		EdgeTypes: []*cairnv1.EdgeType{{
			Name: "next", Description: "what follows a node: any node to a step or an end",
			Joins: []*cairnv1.EdgeJoin{{To: "step"}, {To: "end"}},
		}},
		Workflow: &cairnv1.WorkflowRules{
			StartCategory:   "start",
			StateComponent:  "state",
			StateCategories: []string{"step"},
			States: []*cairnv1.WorkflowState{
				{Name: "pending"}, {Name: "ready"}, {Name: "running"}, {Name: "blocked"},
				{Name: "failed"}, {Name: "done", Final: true}, {Name: "cancelled", Final: true},
			},
			InitialState: "pending",
			Transitions:  transitions,
			Acyclic:      true,
		},
		Rules: []string{
			`"one start": the first node is the start node; a second is refused; it is removed last`,
			`"acyclic": an edge that would close a cycle is refused`,
			`"initial state": a step starts in state pending (set when added without one)`,
			`"declared states", "transitions": a step's state changes only by a declared transition`,
		},
	}
}

func init() {
	t := Workflow()
	RegisterType(t, DeclaredRules(t))
}

// workflowRules is a compiled WorkflowRules.
type workflowRules struct {
	start, stateComp, initial string
	stateCats                 []string
	states                    []string // declared, in order
	next                      map[string][]string
	acyclic                   bool
}

func compileWorkflow(typ string, w *cairnv1.WorkflowRules, known func(string)) *workflowRules {
	wf := &workflowRules{start: w.GetStartCategory(), stateComp: w.GetStateComponent(), initial: w.GetInitialState(),
		stateCats: w.GetStateCategories(), next: map[string][]string{}, acyclic: w.GetAcyclic()}
	known(wf.start)
	for _, c := range wf.stateCats {
		known(c)
	}
	for _, st := range w.GetStates() {
		wf.states = append(wf.states, st.GetName())
	}
	state := func(s string) {
		if !slices.Contains(wf.states, s) {
			panic(fmt.Sprintf("graph type %s: state %q is not declared", typ, s))
		}
	}
	if len(wf.stateCats) > 0 {
		state(wf.initial)
	}
	for _, t := range w.GetTransitions() {
		state(t.GetFrom())
		state(t.GetTo())
		wf.next[t.GetFrom()] = append(wf.next[t.GetFrom()], t.GetTo())
	}
	return wf
}

// checkAdded applies the start rule to a node of category cat, and gives a
// state category's node its initial state (replacing na's components with
// a copy that has it).
func (wf *workflowRules) checkAdded(d *declared, s *State, f string, na *cairnv1.NodeAdded, cat string) error {
	id := na.GetNodeId()
	// The first node is the start and it is removed last, so a graph with
	// nodes has its start.
	switch {
	case cat == wf.start && s.NodeCount() > 0:
		return d.refuse(f+".categories[0]", "one start", "node %q would be a second %s node", id, wf.start)
	case cat != wf.start && s.NodeCount() == 0:
		return d.refuse(f+".categories[0]", "one start", "the first node of a %s is its %s node; node %q is a %s", d.name, wf.start, id, cat)
	}
	if !slices.Contains(wf.stateCats, cat) {
		return nil
	}
	for i, c := range na.GetComponents() {
		if c.GetType() != wf.stateComp {
			continue
		}
		v := string(c.GetValue())
		if v != wf.initial {
			return d.refuse(fmt.Sprintf("%s.components[%d]", f, i), "initial state", "a %s starts in state %q; node %q would start in %q", cat, wf.initial, id, v)
		}
		return nil
	}
	na.Components = append(slices.Clip(na.GetComponents()), &cairnv1.Component{Type: wf.stateComp, Value: []byte(wf.initial)})
	return nil
}

// checkChange checks a state change of a state category's node.
func (wf *workflowRules) checkChange(d *declared, s *State, f string, sc *cairnv1.SetNodeComponents) error {
	id := sc.GetNodeId()
	for i, c := range sc.GetComponents() {
		if c.GetType() != wf.stateComp {
			continue
		}
		comps, cats, _ := s.Node(id) // base found it
		if len(cats) == 0 || !slices.Contains(wf.stateCats, cats[0]) {
			return nil
		}
		field := fmt.Sprintf("%s.components[%d]", f, i)
		to := string(c.GetValue())
		if !slices.Contains(wf.states, to) {
			return d.refuse(field, "declared states", "state %q of node %q is not a declared state (%s)", to, id, strings.Join(wf.states, ", "))
		}
		var from string
		for _, cc := range comps {
			if cc.GetType() == wf.stateComp {
				from = string(cc.GetValue())
			}
		}
		if from == to || slices.Contains(wf.next[from], to) {
			return nil
		}
		allowed := "nowhere: it is final"
		if n := wf.next[from]; len(n) > 0 {
			allowed = strings.Join(n, ", ")
		}
		return d.refuse(field, "transitions", "node %q cannot move from %q to %q; from %q it moves to %s", id, from, to, from, allowed)
	}
	return nil
}
