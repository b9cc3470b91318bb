package readmodel_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/authz"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

// The differential test of Check and Expand: random schemas of one family
// (users, nested groups, folders in folders, documents in folders, with
// union, intersection, exclusion, computed usersets and tuple-to-userset),
// random tuple writes and deletes decided by the real aggregate and folded
// by the read model, against refModel: a plain recursive evaluator over a
// tuple set with no index and no memo.

func this() *cairnv1.Userset {
	return &cairnv1.Userset{Kind: &cairnv1.Userset_This{This: &cairnv1.This{}}}
}
func computed(r string) *cairnv1.Userset {
	return &cairnv1.Userset{Kind: &cairnv1.Userset_ComputedUserset{ComputedUserset: &cairnv1.ComputedUserset{Relation: r}}}
}
func ttu(ts, cr string) *cairnv1.Userset {
	return &cairnv1.Userset{Kind: &cairnv1.Userset_TupleToUserset{TupleToUserset: &cairnv1.TupleToUserset{Tupleset: ts, ComputedRelation: cr}}}
}
func union(c ...*cairnv1.Userset) *cairnv1.Userset {
	return &cairnv1.Userset{Kind: &cairnv1.Userset_Union{Union: &cairnv1.SetOperation{Children: c}}}
}
func intersection(c ...*cairnv1.Userset) *cairnv1.Userset {
	return &cairnv1.Userset{Kind: &cairnv1.Userset_Intersection{Intersection: &cairnv1.SetOperation{Children: c}}}
}
func exclusion(b, s *cairnv1.Userset) *cairnv1.Userset {
	return &cairnv1.Userset{Kind: &cairnv1.Userset_Exclusion{Exclusion: &cairnv1.Exclusion{Base: b, Subtract: s}}}
}
func rel(name string, rw *cairnv1.Userset) *cairnv1.Relation {
	return &cairnv1.Relation{Name: name, Rewrite: rw}
}

// randomSchema draws a schema of the family. Exclusions subtract "banned",
// a relation of direct tuples: the family's cycles (nested groups, folders
// in folders) go through unions and intersections only.
func randomSchema(r *rand.Rand) *cairnv1.AuthorizationSchema {
	pick := func(opts ...func() *cairnv1.Userset) *cairnv1.Userset { return opts[r.IntN(len(opts))]() }
	member := pick(this, func() *cairnv1.Userset { return union(this(), computed("admin")) })
	// viewer expressions over this, owner, editor, parent's viewer, banned.
	viewerExpr := func(withEditor bool) *cairnv1.Userset {
		leaves := []func() *cairnv1.Userset{this, func() *cairnv1.Userset { return computed("owner") },
			func() *cairnv1.Userset { return ttu("parent", "viewer") }}
		if withEditor {
			leaves = append(leaves, func() *cairnv1.Userset { return computed("editor") })
		}
		leaf := func() *cairnv1.Userset { return leaves[r.IntN(len(leaves))]() }
		switch r.IntN(5) {
		case 0:
			return union(this(), leaf(), leaf())
		case 1:
			return intersection(union(this(), leaf()), leaf())
		case 2:
			return exclusion(union(this(), leaf(), leaf()), computed("banned"))
		case 3:
			return union(intersection(leaf(), leaf()), exclusion(leaf(), computed("banned")))
		}
		return union(this(), computed("owner"), ttu("parent", "viewer"))
	}
	editor := pick(this, func() *cairnv1.Userset { return union(this(), computed("owner")) },
		func() *cairnv1.Userset { return exclusion(union(this(), ttu("parent", "viewer")), computed("banned")) })
	return &cairnv1.AuthorizationSchema{Namespaces: []*cairnv1.Namespace{
		{Name: "user"},
		{Name: "group", Relations: []*cairnv1.Relation{rel("admin", nil), rel("member", member)}},
		{Name: "folder", Relations: []*cairnv1.Relation{rel("owner", nil), rel("parent", nil), rel("banned", nil), rel("viewer", viewerExpr(false))}},
		{Name: "doc", Relations: []*cairnv1.Relation{rel("owner", nil), rel("parent", nil), rel("banned", nil), rel("editor", editor), rel("viewer", viewerExpr(true))}},
	}}
}

// randomTuple draws a tuple that the schema takes (a relation with this).
func randomTuple(r *rand.Rand, s *authz.Schema, n int) authz.Tuple {
	obj := func(ns string) string { return fmt.Sprintf("%s:%d", ns, r.IntN(n)) }
	userOrSet := func() (string, string) {
		if r.IntN(3) == 0 {
			return obj("group"), "member"
		}
		return obj("user"), ""
	}
	for {
		ns := []string{"group", "folder", "doc"}[r.IntN(3)]
		nd := s.Namespace(ns)
		rn := nd.Order[r.IntN(len(nd.Order))]
		if !nd.Relations[rn].Direct {
			continue
		}
		t := authz.Tuple{Object: obj(ns), Relation: rn}
		if rn == "parent" {
			t.Subject = obj("folder")
		} else {
			t.Subject, t.SubjectRelation = userOrSet()
		}
		return t
	}
}

// refModel is the reference: a tuple set and a recursive evaluator that
// cuts a cycle where it re-enters an (object, relation) on its path.
type refModel struct {
	s      *authz.Schema
	tuples map[authz.Tuple]bool
}

func (m *refModel) subjects(object, relation string) []authz.Tuple {
	var out []authz.Tuple
	for t := range m.tuples {
		if t.Object == object && t.Relation == relation {
			out = append(out, t)
		}
	}
	return out
}

func (m *refModel) check(object, relation, subj, subjRel string, path map[string]bool) bool {
	key := object + "#" + relation
	rd := m.s.Relation(authz.Namespace(object), relation)
	if rd == nil || path[key] {
		return false
	}
	path[key] = true
	defer delete(path, key)
	return m.eval(object, relation, rd.Rewrite, subj, subjRel, path)
}

func (m *refModel) eval(object, relation string, u *cairnv1.Userset, subj, subjRel string, path map[string]bool) bool {
	switch k := u.GetKind().(type) {
	case *cairnv1.Userset_This:
		for _, t := range m.subjects(object, relation) {
			if t.Subject == subj && t.SubjectRelation == subjRel {
				return true
			}
		}
		for _, t := range m.subjects(object, relation) {
			if t.SubjectRelation != "" && m.check(t.Subject, t.SubjectRelation, subj, subjRel, path) {
				return true
			}
		}
		return false
	case *cairnv1.Userset_ComputedUserset:
		return m.check(object, k.ComputedUserset.GetRelation(), subj, subjRel, path)
	case *cairnv1.Userset_TupleToUserset:
		for _, t := range m.subjects(object, k.TupleToUserset.GetTupleset()) {
			if t.SubjectRelation == "" && m.check(t.Subject, k.TupleToUserset.GetComputedRelation(), subj, subjRel, path) {
				return true
			}
		}
		return false
	case *cairnv1.Userset_Union:
		for _, c := range k.Union.GetChildren() {
			if m.eval(object, relation, c, subj, subjRel, path) {
				return true
			}
		}
		return false
	case *cairnv1.Userset_Intersection:
		for _, c := range k.Intersection.GetChildren() {
			if !m.eval(object, relation, c, subj, subjRel, path) {
				return false
			}
		}
		return true
	case *cairnv1.Userset_Exclusion:
		return m.eval(object, relation, k.Exclusion.GetBase(), subj, subjRel, path) &&
			!m.eval(object, relation, k.Exclusion.GetSubtract(), subj, subjRel, path)
	}
	return false
}

// expand builds the tree Expand documents, from the tuple set.
func (m *refModel) expand(object, relation string) *cairnv1.UsersetTree {
	t := m.expandExpr(object, relation, m.s.Relation(authz.Namespace(object), relation).Rewrite)
	t.Object, t.Relation = object, relation
	return t
}

func (m *refModel) expandExpr(object, relation string, u *cairnv1.Userset) *cairnv1.UsersetTree {
	leaf := func(s []string) *cairnv1.UsersetTree {
		slices.Sort(s)
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Leaf{Leaf: &cairnv1.UsersetLeaf{Subjects: s}}}
	}
	kids := func(cs []*cairnv1.Userset) *cairnv1.UsersetChildren {
		out := &cairnv1.UsersetChildren{}
		for _, c := range cs {
			out.Children = append(out.Children, m.expandExpr(object, relation, c))
		}
		return out
	}
	switch k := u.GetKind().(type) {
	case *cairnv1.Userset_ComputedUserset:
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Computed{Computed: m.expand(object, k.ComputedUserset.GetRelation())}}
	case *cairnv1.Userset_TupleToUserset:
		var s []string
		for _, t := range m.subjects(object, k.TupleToUserset.GetTupleset()) {
			if t.SubjectRelation == "" && m.s.Relation(authz.Namespace(t.Subject), k.TupleToUserset.GetComputedRelation()) != nil {
				s = append(s, t.Subject+"#"+k.TupleToUserset.GetComputedRelation())
			}
		}
		return leaf(s)
	case *cairnv1.Userset_Union:
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Union{Union: kids(k.Union.GetChildren())}}
	case *cairnv1.Userset_Intersection:
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Intersection{Intersection: kids(k.Intersection.GetChildren())}}
	case *cairnv1.Userset_Exclusion:
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Exclusion{Exclusion: kids([]*cairnv1.Userset{k.Exclusion.GetBase(), k.Exclusion.GetSubtract()})}}
	}
	var s []string
	for _, t := range m.subjects(object, relation) {
		s = append(s, authz.FormatSubject(t.Subject, t.SubjectRelation))
	}
	return leaf(s)
}

func tupleCmd(t authz.Tuple, write bool) *cairnv1.Command {
	if write {
		return &cairnv1.Command{Kind: &cairnv1.Command_WriteTuple{WriteTuple: &cairnv1.WriteTuple{Tuple: t.Proto()}}}
	}
	return &cairnv1.Command{Kind: &cairnv1.Command_DeleteTuple{DeleteTuple: &cairnv1.DeleteTuple{Tuple: t.Proto()}}}
}

// authzFixture decides envelopes with the real aggregate and folds their
// events into a read model, one transaction per envelope.
type authzFixture struct {
	t   testing.TB
	st  *aggregate.State
	g   *readmodel.Graph
	seq uint64
}

func newAuthzFixture(t testing.TB, schema *cairnv1.AuthorizationSchema) *authzFixture {
	text, err := protojson.Marshal(schema)
	if err != nil {
		t.Fatal(err)
	}
	g, err := readmodel.New("az", readmodel.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := &authzFixture{t: t, st: aggregate.NewState("az"), g: g}
	if err := f.do(&cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{
		GraphType: authz.TypeName, Metadata: map[string]string{authz.SchemaKey: string(text)}}}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *authzFixture) do(cmds ...*cairnv1.Command) error {
	env := &cairnv1.CommandEnvelope{GraphId: "az", CommandId: fmt.Sprint("c", f.seq), Commands: cmds}
	if err := aggregate.ValidateEnvelope(env); err != nil {
		return err
	}
	evs, err := aggregate.DecideEnvelope(f.st, env)
	if err != nil {
		return err
	}
	f.seq++
	if err := f.g.ApplyTx(f.seq, evs); err != nil {
		f.t.Fatalf("apply: %v", err)
	}
	return nil
}

func TestAuthzCheckExpandDifferential(t *testing.T) {
	const schemas, objects, steps, checksPerRound = 40, 4, 60, 40
	total := 0
	for seed := uint64(1); seed <= schemas; seed++ {
		r := rand.New(rand.NewPCG(seed, 16))
		sp := randomSchema(r)
		s, err := authz.CompileSchema(sp)
		if err != nil {
			t.Fatalf("seed %d: schema: %v", seed, err)
		}
		f := newAuthzFixture(t, sp)
		ref := &refModel{s: s, tuples: map[authz.Tuple]bool{}}
		var live []authz.Tuple
		for step := range steps {
			// Mostly writes, some deletes, now and then an envelope of several.
			n := 1 + r.IntN(3)
			var cmds []*cairnv1.Command
			var adds, dels []authz.Tuple
			for range n {
				if len(live) > 0 && r.IntN(4) == 0 {
					i := r.IntN(len(live))
					if slices.Contains(dels, live[i]) {
						continue
					}
					dels = append(dels, live[i])
					cmds = append(cmds, tupleCmd(live[i], false))
					continue
				}
				tp := randomTuple(r, s, objects)
				if ref.tuples[tp] || slices.Contains(adds, tp) {
					continue
				}
				adds = append(adds, tp)
				cmds = append(cmds, tupleCmd(tp, true))
			}
			if len(cmds) == 0 {
				continue
			}
			if err := f.do(cmds...); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			for _, tp := range adds {
				ref.tuples[tp] = true
				live = append(live, tp)
			}
			for _, tp := range dels {
				delete(ref.tuples, tp)
				live = slices.DeleteFunc(live, func(x authz.Tuple) bool { return x == tp })
			}
			if step%10 != 9 {
				continue
			}
			graphs := []*readmodel.Graph{f.g}
			if step == steps-1 { // and a read model loaded from a snapshot: its index is rebuilt
				g2, err := readmodel.LoadSnapshot(f.g.AppendSnapshot(nil), readmodel.DefaultConfig())
				if err != nil {
					t.Fatal(err)
				}
				graphs = append(graphs, g2)
			}
			for _, g := range graphs {
				for range checksPerRound {
					ns := []string{"group", "folder", "doc"}[r.IntN(3)]
					nd := s.Namespace(ns)
					rn := nd.Order[r.IntN(len(nd.Order))]
					object := fmt.Sprintf("%s:%d", ns, r.IntN(objects))
					subj, subjRel := fmt.Sprintf("user:%d", r.IntN(objects)), ""
					if r.IntN(4) == 0 {
						subj, subjRel = fmt.Sprintf("group:%d", r.IntN(objects)), "member"
					}
					want := ref.check(object, rn, subj, subjRel, map[string]bool{})
					got, err := g.Check(object, rn, authz.FormatSubject(subj, subjRel))
					if err != nil {
						t.Fatalf("seed %d step %d: check %s#%s@%s: %v", seed, step, object, rn, authz.FormatSubject(subj, subjRel), err)
					}
					if got.Allowed != want {
						t.Fatalf("seed %d step %d: check %s#%s@%s = %v, reference %v\nschema %v\ntuples %v", seed, step, object, rn,
							authz.FormatSubject(subj, subjRel), got.Allowed, want, protojson.Format(sp), live)
					}
					total++
					tree, err := g.Expand(object, rn)
					if err != nil {
						t.Fatalf("seed %d: expand: %v", seed, err)
					}
					if w := ref.expand(object, rn); !proto.Equal(tree, w) {
						t.Fatalf("seed %d step %d: expand %s#%s = %v, reference %v", seed, step, object, rn, tree, w)
					}
				}
			}
		}
	}
	t.Logf("%d checks and expands agreed with the reference", total)
}

// A userset evaluated while a cycle through it is cut must not be memoised
// as false: group b is reached first inside a's evaluation (a → b → a, cut),
// then asked again by the intersection's second operand.
func TestAuthzCheckCycleNotMemoisedFalse(t *testing.T) {
	schema := &cairnv1.AuthorizationSchema{Namespaces: []*cairnv1.Namespace{
		{Name: "user"},
		{Name: "group", Relations: []*cairnv1.Relation{rel("member", nil)}},
		{Name: "doc", Relations: []*cairnv1.Relation{rel("v1", nil), rel("v2", nil),
			rel("viewer", intersection(computed("v1"), computed("v2")))}},
	}}
	f := newAuthzFixture(t, schema)
	for _, s := range []string{
		"group:b#member@group:a#member", // b before c: b gets the lower node index
		"group:a#member@group:b#member",
		"group:a#member@group:c#member",
		"group:c#member@user:x",
		"doc:d#v1@group:a#member",
		"doc:d#v2@group:b#member",
	} {
		tp, err := authz.ParseTuple(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.do(tupleCmd(tp, true)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.g.Check("doc:d", "viewer", "user:x")
	if err != nil || !res.Allowed {
		t.Fatalf("check doc:d#viewer@user:x = %+v, %v; want allowed (x is in c, in a, in b)", res, err)
	}
}

// TestAuthzIndexBeforeFirstCheck: an authorization graph folded from its
// start has its index from GraphCreated on, and one loaded from a snapshot
// has it after BuildAuthzIndex (what the projections call when they
// restore or adopt a graph): its first check allocates as little as any
// check, rather than the index build's megabytes; a snapshot loaded
// without it still answers, building the index on that check.
func TestAuthzIndexBeforeFirstCheck(t *testing.T) {
	text, err := os.ReadFile("../docs/examples/authorization-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	sp := &cairnv1.AuthorizationSchema{}
	if err := protojson.Unmarshal(text, sp); err != nil {
		t.Fatal(err)
	}
	f := newAuthzFixture(t, sp)
	var cmds []*cairnv1.Command
	for d := range 5000 {
		for _, s := range []string{"doc:%d#parent@folder:%d", "doc:%d#viewer@user:%d", "doc:%d#owner@group:%d#member"} {
			tp, err := authz.ParseTuple(fmt.Sprintf(s, d, d%97))
			if err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, tupleCmd(tp, true))
		}
		if len(cmds) >= 999 {
			if err := f.do(cmds...); err != nil {
				t.Fatal(err)
			}
			cmds = nil
		}
	}
	if err := f.do(cmds...); err != nil {
		t.Fatal(err)
	}
	allocated := func(g *readmodel.Graph) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res, err := g.Check("doc:4999", "viewer", "user:4999")
		runtime.ReadMemStats(&after)
		if err != nil || res.Allowed {
			t.Fatalf("check: %+v %v, want denied", res, err)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	// A check allocates a few KB; the build of 15,000 tuples about 1.7 MB.
	// TotalAlloc counts the whole process: other tests and the runtime add
	// up to about 130 KB on a loaded machine, hence the margin.
	const warm = 512 << 10
	if n := allocated(f.g); n > warm {
		t.Errorf("first check on a graph folded from its start allocated %d bytes, want at most %d: no index since GraphCreated?", n, warm)
	}
	snap := f.g.AppendSnapshot(nil)
	g, err := readmodel.LoadSnapshot(snap, readmodel.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	g.BuildAuthzIndex()
	if n := allocated(g); n > warm {
		t.Errorf("first check after BuildAuthzIndex allocated %d bytes, want at most %d", n, warm)
	}
	cold, err := readmodel.LoadSnapshot(snap, readmodel.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if n := allocated(cold); n <= warm {
		t.Errorf("first check on a snapshot loaded without BuildAuthzIndex allocated %d bytes: the test no longer tells a build", n)
	}
}
