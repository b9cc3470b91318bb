package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

const diffUsage = `Usage:
  cairn diff <graph> --from X --to Y [client flags]

diff compares the graph at two points of its history and lists the nodes
and edges added, removed and changed between them (components set, changed
or removed with their values, categories added or removed; for edges also
type and endpoints), each group sorted by id, then a summary line:
  graph g: seq 3 (position 3, head bafy...) -> seq 9 (position 11, head bafy...)
  + node n3  components a="1"  categories x
  - node n1
  ~ node n2  a: "1" -> "2"  b: "3" -> (none)  categories added y
  + edge e1  n2 -> n3  type "uses"
  summary: nodes +1 -1 ~1, edges +1 -0 ~0
X and Y are points of the graph's history; X must not come after Y. 0 is
the empty graph, before its first transaction. diff works per transaction:
an event CID stands for the whole transaction that holds it (the state
after that transaction). States are rebuilt from the nearest aggregate
snapshot plus the transactions after it, across archive and stream.

` + pointUsage + `
--json prints one object:
  {"graph":..,"from":{"seq":..,"position":..,"head":..},"to":{..},
   "graph_change":"created"|"deleted"|"",
   "nodes":{"added":[{"id":..,"components":[{"type":..,"value":..}],"categories":[..]}],
            "removed":[..],"changed":[{"id":..,"components":[{"type":..,"from":..,"to":..}],
            "categories_added":[..],"categories_removed":[..]}]},
   "edges":{"added":[{"id":..,"source":..,"target":..,"type":..,"components":[..]}],
            "removed":[..],"changed":[{"id":..,"source":{"from":..,"to":..},..}]},
   "summary":..}
A component value that is not UTF-8 text is given as "value_base64" (and
"from_base64", "to_base64") instead.

Diff flags:
  --from X              the earlier point (required)
  --to Y                the later point (required)
`

// compJSON is one component.
type compJSON struct {
	Type   string `json:"type"`
	Value  string `json:"value"`
	Base64 string `json:"value_base64,omitempty"`
}

// compChange is one component type whose value differs; From or To is nil
// when the component was absent there.
type compChange struct {
	Type       string  `json:"type"`
	From       *string `json:"from,omitempty"`
	FromBase64 *string `json:"from_base64,omitempty"`
	To         *string `json:"to,omitempty"`
	ToBase64   *string `json:"to_base64,omitempty"`
}

// strChange is a string field that differs.
type strChange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type nodeJSON struct {
	ID         string     `json:"id"`
	Components []compJSON `json:"components,omitempty"`
	Categories []string   `json:"categories,omitempty"`
}

type nodeChange struct {
	ID                string       `json:"id"`
	Components        []compChange `json:"components,omitempty"`
	CategoriesAdded   []string     `json:"categories_added,omitempty"`
	CategoriesRemoved []string     `json:"categories_removed,omitempty"`
}

type edgeJSON struct {
	ID         string     `json:"id"`
	Source     string     `json:"source"`
	Target     string     `json:"target"`
	Type       string     `json:"type,omitempty"`
	Components []compJSON `json:"components,omitempty"`
}

type edgeChange struct {
	ID         string       `json:"id"`
	Source     *strChange   `json:"source,omitempty"`
	Target     *strChange   `json:"target,omitempty"`
	Type       *strChange   `json:"type,omitempty"`
	Components []compChange `json:"components,omitempty"`
}

// stateDiff is what changed from one state to another. Every list is
// sorted by id (components by type).
type stateDiff struct {
	// GraphChange is "created" or "deleted" when the graph's existence
	// differs, else "".
	GraphChange string `json:"graph_change"`
	Nodes       struct {
		Added   []nodeJSON   `json:"added"`
		Removed []nodeJSON   `json:"removed"`
		Changed []nodeChange `json:"changed"`
	} `json:"nodes"`
	Edges struct {
		Added   []edgeJSON   `json:"added"`
		Removed []edgeJSON   `json:"removed"`
		Changed []edgeChange `json:"changed"`
	} `json:"edges"`
}

// empty reports whether nothing changed.
func (d *stateDiff) empty() bool {
	return d.GraphChange == "" && len(d.Nodes.Added)+len(d.Nodes.Removed)+len(d.Nodes.Changed)+
		len(d.Edges.Added)+len(d.Edges.Removed)+len(d.Edges.Changed) == 0
}

// summary counts the changes in one line.
func (d *stateDiff) summary() string {
	s := fmt.Sprintf("nodes +%d -%d ~%d, edges +%d -%d ~%d",
		len(d.Nodes.Added), len(d.Nodes.Removed), len(d.Nodes.Changed),
		len(d.Edges.Added), len(d.Edges.Removed), len(d.Edges.Changed))
	if d.GraphChange != "" {
		s = "graph " + d.GraphChange + ", " + s
	}
	return s
}

// diffStates lists what changed from a to b; nil stands for a graph with no
// events. Neither state is changed.
func diffStates(a, b *aggregate.State) *stateDiff {
	d := &stateDiff{}
	// Empty lists, not null, in JSON.
	d.Nodes.Added, d.Nodes.Removed, d.Nodes.Changed = []nodeJSON{}, []nodeJSON{}, []nodeChange{}
	d.Edges.Added, d.Edges.Removed, d.Edges.Changed = []edgeJSON{}, []edgeJSON{}, []edgeChange{}
	if a == nil {
		a = aggregate.NewState("")
	}
	if b == nil {
		b = aggregate.NewState("")
	}
	switch {
	case !a.Exists() && b.Exists():
		d.GraphChange = "created"
	case a.Exists() && !b.Exists():
		d.GraphChange = "deleted"
	}
	aNodes, bNodes := a.NodeIDs(), b.NodeIDs()
	for _, id := range bNodes {
		bc, bcat, _ := b.Node(id)
		ac, acat, ok := a.Node(id)
		if !ok {
			d.Nodes.Added = append(d.Nodes.Added, nodeJSON{ID: id, Components: compList(bc), Categories: sortedCopy(bcat)})
			continue
		}
		ch := nodeChange{ID: id, Components: compChanges(ac, bc)}
		ch.CategoriesAdded, ch.CategoriesRemoved = setDiff(acat, bcat), setDiff(bcat, acat)
		if len(ch.Components)+len(ch.CategoriesAdded)+len(ch.CategoriesRemoved) > 0 {
			d.Nodes.Changed = append(d.Nodes.Changed, ch)
		}
	}
	for _, id := range aNodes {
		if !b.HasNode(id) {
			ac, acat, _ := a.Node(id)
			d.Nodes.Removed = append(d.Nodes.Removed, nodeJSON{ID: id, Components: compList(ac), Categories: sortedCopy(acat)})
		}
	}
	for _, id := range b.EdgeIDs() {
		bs, bt, btyp, bc, _ := b.Edge(id)
		as, at, atyp, ac, ok := a.Edge(id)
		if !ok {
			d.Edges.Added = append(d.Edges.Added, edgeJSON{ID: id, Source: bs, Target: bt, Type: btyp, Components: compList(bc)})
			continue
		}
		ch := edgeChange{ID: id, Source: strDiff(as, bs), Target: strDiff(at, bt), Type: strDiff(atyp, btyp), Components: compChanges(ac, bc)}
		if ch.Source != nil || ch.Target != nil || ch.Type != nil || len(ch.Components) > 0 {
			d.Edges.Changed = append(d.Edges.Changed, ch)
		}
	}
	for _, id := range a.EdgeIDs() {
		if !b.HasEdge(id) {
			as, at, atyp, ac, _ := a.Edge(id)
			d.Edges.Removed = append(d.Edges.Removed, edgeJSON{ID: id, Source: as, Target: at, Type: atyp, Components: compList(ac)})
		}
	}
	return d
}

func strDiff(a, b string) *strChange {
	if a == b {
		return nil
	}
	return &strChange{From: a, To: b}
}

// setDiff returns the strings of b not in a, sorted.
func setDiff(a, b []string) []string {
	var out []string
	for _, s := range b {
		if !slices.Contains(a, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func sortedCopy(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// jsonValue gives v as JSON text, or base64 when it is not UTF-8.
func jsonValue(v []byte) (text string, b64 *string) {
	if utf8.Valid(v) {
		return string(v), nil
	}
	s := base64.StdEncoding.EncodeToString(v)
	return "", &s
}

// compList lists components sorted by type.
func compList(cs []*cairnv1.Component) []compJSON {
	if len(cs) == 0 {
		return nil
	}
	out := make([]compJSON, 0, len(cs))
	for _, c := range cs {
		text, b64 := jsonValue(c.GetValue())
		cj := compJSON{Type: c.GetType(), Value: text}
		if b64 != nil {
			cj.Base64 = *b64
		}
		out = append(out, cj)
	}
	slices.SortFunc(out, func(x, y compJSON) int { return strings.Compare(x.Type, y.Type) })
	return out
}

// compChanges lists the component types whose value differs from a to b,
// sorted by type.
func compChanges(a, b []*cairnv1.Component) []compChange {
	byType := func(cs []*cairnv1.Component) map[string][]byte {
		m := make(map[string][]byte, len(cs))
		for _, c := range cs {
			m[c.GetType()] = c.GetValue()
		}
		return m
	}
	am, bm := byType(a), byType(b)
	var out []compChange
	set := func(ch *compChange, v []byte, from bool) {
		text, b64 := jsonValue(v)
		switch {
		case from && b64 != nil:
			ch.FromBase64 = b64
		case from:
			ch.From = &text
		case b64 != nil:
			ch.ToBase64 = b64
		default:
			ch.To = &text
		}
	}
	for t, bv := range bm {
		av, ok := am[t]
		if ok && bytes.Equal(av, bv) {
			continue
		}
		ch := compChange{Type: t}
		if ok {
			set(&ch, av, true)
		}
		set(&ch, bv, false)
		out = append(out, ch)
	}
	for t, av := range am {
		if _, ok := bm[t]; !ok {
			ch := compChange{Type: t}
			set(&ch, av, true)
			out = append(out, ch)
		}
	}
	slices.SortFunc(out, func(x, y compChange) int { return strings.Compare(x.Type, y.Type) })
	return out
}

// pointJSON is a resolved point as diff prints it.
type pointJSON struct {
	Seq      uint64 `json:"seq"`
	Position uint64 `json:"position"`
	Head     string `json:"head"`
}

type diffJSON struct {
	Graph string    `json:"graph"`
	From  pointJSON `json:"from"`
	To    pointJSON `json:"to"`
	*stateDiff
	Summary string `json:"summary"`
}

func runDiff(ctx context.Context, args []string, stdout, _ io.Writer) error {
	var fromText, toText string
	r, ctx, done, err := openGraphReader(ctx, "diff", args, func(fs *flag.FlagSet) {
		fs.StringVar(&fromText, "from", "", "the earlier `point`: seq, RFC 3339 time or event CID")
		fs.StringVar(&toText, "to", "", "the later `point`: seq, RFC 3339 time or event CID")
		trustFlags(fs)
	})
	if err != nil {
		return err
	}
	defer done()
	usage := func(err error) error { return &usageError{topic: "diff", err: fmt.Errorf("diff: %w", err)} }
	if fromText == "" || toText == "" {
		return usage(fmt.Errorf("give both --from and --to"))
	}
	from, err := parsePoint("--from", fromText)
	if err != nil {
		return usage(err)
	}
	to, err := parsePoint("--to", toText)
	if err != nil {
		return usage(err)
	}
	graph := r.graph
	rv := &resolver{store: r.store, graph: graph}
	rf, err := rv.resolve(ctx, from)
	if err != nil {
		return fmt.Errorf("diff --from %s: %w", fromText, r.timedOut(err))
	}
	rt, err := rv.resolve(ctx, to)
	if err != nil {
		return fmt.Errorf("diff --to %s: %w", toText, r.timedOut(err))
	}
	if rf.Seq > rt.Seq {
		return usage(fmt.Errorf("--from %s (seq %d) comes after --to %s (seq %d)", fromText, rf.Seq, toText, rt.Seq))
	}
	a, ap, err := r.stateAt(ctx, rf.Seq)
	if err != nil {
		return err
	}
	b, bp := a, ap
	if rt.Seq != rf.Seq {
		if b, bp, err = r.stateAt(ctx, rt.Seq); err != nil {
			return err
		}
	}
	d := diffStates(a, b)
	if r.json {
		return writeJSON(stdout, diffJSON{Graph: graph, From: ap, To: bp, stateDiff: d, Summary: d.summary()})
	}
	return writeDiffText(stdout, graph, ap, bp, d)
}

// stateAt rebuilds the graph's aggregate state after stream sequence seq
// (0: the empty graph) from the nearest trusted snapshot plus replay.
func (r *graphReader) stateAt(ctx context.Context, seq uint64) (*aggregate.State, pointJSON, error) {
	if seq == 0 {
		return aggregate.NewState(r.graph), pointJSON{}, nil
	}
	st, head, _, err := actors.StateAt(ctx, r.store, r.snaps, r.graph, seq)
	if err != nil {
		return nil, pointJSON{}, fmt.Errorf("state of graph %s at seq %d: %w", r.graph, seq, r.timedOut(err))
	}
	p := pointJSON{Seq: seq, Position: head.N}
	if head.CID.Defined() {
		p.Head = head.CID.String()
	}
	return st, p, nil
}

func describePoint(p pointJSON) string {
	if p.Position == 0 {
		return fmt.Sprintf("seq %d (empty)", p.Seq)
	}
	return fmt.Sprintf("seq %d (position %d, head %s)", p.Seq, p.Position, p.Head)
}

func writeDiffText(w io.Writer, graph string, from, to pointJSON, d *stateDiff) error {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s: %s -> %s\n", graph, describePoint(from), describePoint(to))
	if d.GraphChange != "" {
		fmt.Fprintf(&b, "%s graph %s\n", map[string]string{"created": "+", "deleted": "-"}[d.GraphChange], d.GraphChange)
	}
	comps := func(cs []compJSON) {
		if len(cs) == 0 {
			return
		}
		b.WriteString("  components")
		for _, c := range cs {
			v := fmt.Sprintf("%q", c.Value)
			if c.Base64 != "" {
				v = "base64:" + c.Base64
			}
			b.WriteString(" " + c.Type + "=" + v)
		}
	}
	cats := func(label string, cs []string) {
		if len(cs) > 0 {
			b.WriteString("  " + label + " " + strings.Join(cs, " "))
		}
	}
	changes := func(cs []compChange) {
		show := func(text, b64 *string) string {
			switch {
			case b64 != nil:
				return "base64:" + *b64
			case text != nil:
				return fmt.Sprintf("%q", *text)
			}
			return "(none)"
		}
		for _, c := range cs {
			fmt.Fprintf(&b, "  %s: %s -> %s", c.Type, show(c.From, c.FromBase64), show(c.To, c.ToBase64))
		}
	}
	for _, n := range d.Nodes.Added {
		fmt.Fprintf(&b, "+ node %s", n.ID)
		comps(n.Components)
		cats("categories", n.Categories)
		b.WriteString("\n")
	}
	for _, n := range d.Nodes.Removed {
		fmt.Fprintf(&b, "- node %s", n.ID)
		comps(n.Components)
		cats("categories", n.Categories)
		b.WriteString("\n")
	}
	for _, n := range d.Nodes.Changed {
		fmt.Fprintf(&b, "~ node %s", n.ID)
		changes(n.Components)
		cats("categories added", n.CategoriesAdded)
		cats("categories removed", n.CategoriesRemoved)
		b.WriteString("\n")
	}
	edge := func(sign string, e edgeJSON) {
		fmt.Fprintf(&b, "%s edge %s  %s -> %s", sign, e.ID, e.Source, e.Target)
		if e.Type != "" {
			fmt.Fprintf(&b, "  type %q", e.Type)
		}
		comps(e.Components)
		b.WriteString("\n")
	}
	for _, e := range d.Edges.Added {
		edge("+", e)
	}
	for _, e := range d.Edges.Removed {
		edge("-", e)
	}
	for _, e := range d.Edges.Changed {
		fmt.Fprintf(&b, "~ edge %s", e.ID)
		for _, f := range []struct {
			name string
			ch   *strChange
		}{{"source", e.Source}, {"target", e.Target}, {"type", e.Type}} {
			if f.ch != nil {
				fmt.Fprintf(&b, "  %s %q -> %q", f.name, f.ch.From, f.ch.To)
			}
		}
		changes(e.Components)
		b.WriteString("\n")
	}
	if d.empty() {
		b.WriteString("no changes\n")
	}
	fmt.Fprintf(&b, "summary: %s\n", d.summary())
	_, err := io.WriteString(w, b.String())
	return err
}
