package aggregate

import (
	"fmt"
	"slices"
	"strings"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// PartnerSuffix ends the id of the partner edge a symmetric or inverse-paired
// edge type keeps: edge e's partner is e + PartnerSuffix. Client edge ids
// with the suffix are refused in graphs of such types.
const PartnerSuffix = "/inverse"

// ReservedCategoryPrefix starts the categories of nodes the engine itself
// creates (cross-graph reference nodes, "cairn.ref"): a type's declared
// rules let such nodes be, and let edges join them.
const ReservedCategoryPrefix = "cairn."

// DeclaredRules returns the TypeRules that enforce t's declaration:
//   - when t declares categories, a node carries exactly one of them, with
//     the category's required components, none of which can be removed;
//     ConnectNodes.create_missing cannot create nodes (they would have no
//     category);
//   - when t declares edge types, an edge has one of them (or the inverse
//     of one), joining categories the type allows;
//   - an edge of a symmetric or inverse-paired type is added with its
//     partner (id + PartnerSuffix, target to source, the partner type, the
//     same components) and removed with it, whichever of the two is named;
//   - t.workflow's rules: one start node, added first and removed last; the
//     graph stays acyclic; a state category's nodes start in the initial
//     state and change state only by a declared transition.
//
// Refusals are FAILED_PRECONDITION *CommandError values whose message names
// the rule: `workflow rule "acyclic": ...`, `relationship rule "edge
// joins": ...`. DeclaredRules panics on a declaration that does not hold
// together (an unknown category in a join, an undeclared initial state),
// which is a programming error of the type's author.
func DeclaredRules(t *cairnv1.GraphType) TypeRules {
	d := &declared{name: t.GetName(), cats: map[string]*cairnv1.NodeCategory{}, edges: map[string]*edgeRule{}}
	for _, c := range t.GetCategories() {
		d.cats[c.GetName()] = c
		d.catNames = append(d.catNames, c.GetName())
	}
	known := func(c string) {
		if _, ok := d.cats[c]; c != "" && !ok {
			panic(fmt.Sprintf("graph type %s: category %q is not declared", d.name, c))
		}
	}
	for _, et := range t.GetEdgeTypes() {
		r := &edgeRule{name: et.GetName()}
		for _, j := range et.GetJoins() {
			known(j.GetFrom())
			known(j.GetTo())
			r.joins = append(r.joins, [2]string{j.GetFrom(), j.GetTo()})
		}
		d.add(r)
		d.edgeNames = append(d.edgeNames, et.GetName())
		switch {
		case et.GetSymmetric():
			r.partner = r.name
		case et.GetInverse() != "":
			r.partner = et.GetInverse()
			inv := &edgeRule{name: et.GetInverse(), partner: r.name}
			for _, j := range r.joins {
				inv.joins = append(inv.joins, [2]string{j[1], j[0]})
			}
			d.add(inv)
			d.edgeNames = append(d.edgeNames, inv.name)
		}
		if r.partner != "" {
			d.partnered = true
		}
	}
	if w := t.GetWorkflow(); w != nil {
		d.wf = compileWorkflow(d.name, w, known)
	}
	return d
}

// declared is DeclaredRules' TypeRules.
type declared struct {
	name      string
	cats      map[string]*cairnv1.NodeCategory
	catNames  []string // in declaration order, for messages
	edges     map[string]*edgeRule
	edgeNames []string
	partnered bool // some edge type keeps partner edges
	wf        *workflowRules
}

type edgeRule struct {
	name    string
	joins   [][2]string // (from, to) category pairs; "" is any
	partner string      // the partner edge's type, "" for none
}

func (d *declared) add(r *edgeRule) {
	if _, ok := d.edges[r.name]; ok {
		panic(fmt.Sprintf("graph type %s: edge type %q is declared twice", d.name, r.name))
	}
	d.edges[r.name] = r
}

// refuse returns a FAILED_PRECONDITION naming the rule.
func (d *declared) refuse(field, rule, format string, a ...any) error {
	return failedPrecondition(field, "%s rule %q: %s", d.name, rule, fmt.Sprintf(format, a...))
}

// ValidateCreate accepts any metadata: the declared types need none.
func (d *declared) ValidateCreate(string, *cairnv1.CreateGraph) error { return nil }

// Decide runs base and checks or extends its events.
func (d *declared) Decide(s *State, prefix string, cmd *cairnv1.Command, base func() ([]*cairnv1.Event, error)) ([]*cairnv1.Event, error) {
	if cn := cmd.GetConnectNodes(); cn != nil && d.partnered {
		switch id := cn.GetEdgeId(); {
		case strings.HasSuffix(id, PartnerSuffix):
			return nil, d.refuse(prefix+".connect_nodes.edge_id", "partner edges",
				"edge ids ending in %q are kept for partner edges; edge %q cannot be added", PartnerSuffix, id)
		case len(id)+len(PartnerSuffix) > MaxIDLen:
			return nil, d.refuse(prefix+".connect_nodes.edge_id", "partner edges",
				"edge id of %d bytes leaves no room for its partner's suffix %q (ids are at most %d bytes)", len(id), PartnerSuffix, MaxIDLen)
		}
	}
	evs, err := base()
	if err != nil {
		return nil, err
	}
	switch k := cmd.GetKind().(type) {
	case *cairnv1.Command_AddNode:
		err = d.checkNodeAdded(s, prefix+".add_node", evs[0].GetNodeAdded())
	case *cairnv1.Command_SetNodeComponents:
		err = d.checkStateChange(s, prefix+".set_node_components", k.SetNodeComponents)
	case *cairnv1.Command_RemoveNodeComponents:
		err = d.checkRemoveComponents(s, prefix+".remove_node_components", k.RemoveNodeComponents)
	case *cairnv1.Command_RemoveNode:
		err = d.checkRemoveNode(s, prefix+".remove_node.node_id", k.RemoveNode.GetNodeId())
	case *cairnv1.Command_ConnectNodes:
		evs, err = d.checkConnect(s, prefix+".connect_nodes", k.ConnectNodes, evs)
	case *cairnv1.Command_DisconnectNodes:
		evs = d.withPartnerRemoved(s, evs)
	}
	if err != nil {
		return nil, err
	}
	return evs, nil
}

// engineNode reports whether cats mark a node the engine created.
func engineNode(cats []string) bool {
	for _, c := range cats {
		if strings.HasPrefix(c, ReservedCategoryPrefix) {
			return true
		}
	}
	return false
}

// checkNodeAdded checks a node's category and required components, and
// gives a state category's node its initial state.
func (d *declared) checkNodeAdded(s *State, f string, na *cairnv1.NodeAdded) error {
	if len(d.cats) == 0 || engineNode(na.GetCategories()) {
		return nil
	}
	id, cats := na.GetNodeId(), na.GetCategories()
	if len(cats) != 1 {
		return d.refuse(f+".categories", "one category", "node %q carries %d categories; a %s graph's nodes carry exactly one of %s",
			id, len(cats), d.name, strings.Join(d.catNames, ", "))
	}
	cat, ok := d.cats[cats[0]]
	if !ok {
		return d.refuse(f+".categories[0]", "declared categories", "node %q has category %q; a %s graph's categories are %s",
			id, cats[0], d.name, strings.Join(d.catNames, ", "))
	}
	if d.wf != nil {
		if err := d.wf.checkAdded(d, s, f, na, cat.GetName()); err != nil {
			return err
		}
	}
	for _, req := range cat.GetRequiredComponents() {
		if !hasType(na.GetComponents(), req) {
			return d.refuse(f+".components", "required components", "a %s node carries a %q component; node %q has none", cat.GetName(), req, id)
		}
	}
	return nil
}

// nodeCategory returns node u's first category ("" for none).
func (s *State) nodeCategory(u uint32) string {
	var buf [32]uint32
	if _, cats := s.nodeAttrs(u, buf[:0]); len(cats) > 0 {
		return s.cats.name(cats[0])
	}
	return ""
}

func (d *declared) checkRemoveComponents(s *State, f string, rc *cairnv1.RemoveNodeComponents) error {
	u, _ := s.nodes.Lookup(rc.GetNodeId()) // base found it
	cat, ok := d.cats[s.nodeCategory(u)]
	if !ok {
		return nil
	}
	for i, t := range rc.GetTypes() {
		if slices.Contains(cat.GetRequiredComponents(), t) {
			return d.refuse(fmt.Sprintf("%s.types[%d]", f, i), "required components", "a %s node carries a %q component; it cannot be removed from node %q",
				cat.GetName(), t, rc.GetNodeId())
		}
	}
	return nil
}

func (d *declared) checkStateChange(s *State, f string, sc *cairnv1.SetNodeComponents) error {
	if d.wf == nil {
		return nil
	}
	return d.wf.checkChange(d, s, f, sc)
}

func (d *declared) checkRemoveNode(s *State, f, id string) error {
	if d.wf == nil {
		return nil
	}
	u, _ := s.nodes.Lookup(id) // base found it
	if s.nodeCategory(u) == d.wf.start && s.NodeCount() > 1 {
		return d.refuse(f, "one start", "the start node %q cannot be removed while %d other nodes exist", id, s.NodeCount()-1)
	}
	return nil
}

// checkConnect checks the edge base decided and adds its partner.
func (d *declared) checkConnect(s *State, f string, cn *cairnv1.ConnectNodes, evs []*cairnv1.Event) ([]*cairnv1.Event, error) {
	var ea *cairnv1.EdgeAdded
	for _, ev := range evs {
		switch k := ev.GetKind().(type) {
		case *cairnv1.Event_NodeAdded:
			if len(d.cats) > 0 && !engineNode(k.NodeAdded.GetCategories()) {
				return nil, d.refuse(f+".create_missing", "declared categories",
					"create_missing cannot create node %q: a %s graph's nodes carry one of %s; add it with AddNode first",
					k.NodeAdded.GetNodeId(), d.name, strings.Join(d.catNames, ", "))
			}
		case *cairnv1.Event_EdgeAdded:
			ea = k.EdgeAdded
		}
	}
	if ea == nil || len(d.edges) == 0 {
		return evs, nil
	}
	r, ok := d.edges[ea.GetEdgeType()]
	if !ok {
		what := fmt.Sprintf("has type %q", ea.GetEdgeType())
		if ea.GetEdgeType() == "" {
			what = "has no type"
		}
		return nil, d.refuse(f+".edge_type", "declared edge types", "edge %q %s; a %s graph's edge types are %s",
			ea.GetEdgeId(), what, d.name, strings.Join(d.edgeNames, ", "))
	}
	from, to := endpointCategory(s, evs, ea.GetSource()), endpointCategory(s, evs, ea.GetTarget())
	if len(d.cats) > 0 && !r.allows(from, to) {
		return nil, d.refuse(f+".edge_type", "edge joins", "a %s edge joins %s; edge %q would join %s → %s",
			r.name, r.describeJoins(), ea.GetEdgeId(), from, to)
	}
	if d.wf != nil && d.wf.acyclic {
		if cycle := s.cycleThrough(ea.GetSource(), ea.GetTarget()); cycle != nil {
			return nil, d.refuse(f+".target", "acyclic", "edge %s from %s to %s would close the cycle %s",
				ea.GetEdgeId(), ea.GetSource(), ea.GetTarget(), describePath(cycle))
		}
	}
	if r.partner != "" {
		evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{
			EdgeId: ea.GetEdgeId() + PartnerSuffix, Source: ea.GetTarget(), Target: ea.GetSource(),
			EdgeType: r.partner, Components: ea.GetComponents(),
		}}})
	}
	return evs, nil
}

// endpointCategory returns the category of node id, added by evs or held
// by s.
func endpointCategory(s *State, evs []*cairnv1.Event, id string) string {
	for _, ev := range evs {
		if na := ev.GetNodeAdded(); na != nil && na.GetNodeId() == id {
			if len(na.GetCategories()) > 0 {
				return na.GetCategories()[0]
			}
			return ""
		}
	}
	u, ok := s.nodes.Lookup(id)
	if !ok {
		return ""
	}
	return s.nodeCategory(u)
}

// allows reports whether the edge type may join categories from and to; an
// engine node's category matches any side.
func (r *edgeRule) allows(from, to string) bool {
	fromEngine, toEngine := strings.HasPrefix(from, ReservedCategoryPrefix), strings.HasPrefix(to, ReservedCategoryPrefix)
	for _, j := range r.joins {
		if (j[0] == "" || j[0] == from || fromEngine) && (j[1] == "" || j[1] == to || toEngine) {
			return true
		}
	}
	return false
}

func (r *edgeRule) describeJoins() string {
	name := func(c string) string {
		if c == "" {
			return "any"
		}
		return c
	}
	parts := make([]string, len(r.joins))
	for i, j := range r.joins {
		parts[i] = name(j[0]) + " → " + name(j[1])
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " or ")
}

// withPartnerRemoved adds the removal of the partner of the edge evs
// remove, when its type keeps one.
func (d *declared) withPartnerRemoved(s *State, evs []*cairnv1.Event) []*cairnv1.Event {
	er := evs[0].GetEdgeRemoved()
	if !d.partnered || er == nil {
		return evs
	}
	_, _, typ, _, _ := s.Edge(er.GetEdgeId())
	if r, ok := d.edges[typ]; !ok || r.partner == "" {
		return evs
	}
	other := er.GetEdgeId() + PartnerSuffix
	if p, ok := strings.CutSuffix(er.GetEdgeId(), PartnerSuffix); ok {
		other = p
	}
	e, ok := s.edges.Lookup(other)
	if !ok {
		return evs
	}
	return append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{
		EdgeId: other, Source: s.nodes.String(s.src.Get(int(e))), Target: s.nodes.String(s.dst.Get(int(e))),
	}}})
}

// describePath writes a path of node ids as "a → b → c", eliding the
// middle of a long one.
func describePath(p []string) string {
	if len(p) > 12 {
		p = append(append(slices.Clip(p[:6]), "…"), p[len(p)-5:]...)
	}
	return strings.Join(p, " → ")
}
