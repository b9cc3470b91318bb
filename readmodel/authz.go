package readmodel

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/cairn-graph/cairn/internal/authz"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Limits of one Check.
const (
	// MaxCheckDepth bounds the nesting of (object, relation) usersets that
	// one check follows.
	MaxCheckDepth = 100
	// MaxCheckLookups bounds the usersets one check evaluates.
	MaxCheckLookups = 1 << 20
)

// ErrNotAuthorization: Check or Expand on a graph whose type is not
// "authorization".
var ErrNotAuthorization = errors.New("readmodel: not an authorization graph")

// CheckResult answers Check: whether the subject is in the userset, and how
// many (object, relation) usersets the evaluation looked at.
type CheckResult struct {
	Allowed bool
	Lookups int
}

// The authorization index of a graph of type "authorization" (package
// comment of internal/authz): per (object node, relation) the direct
// subject nodes (a sorted slice, a roaring bitmap past smallMax) and the
// usersets (subject node, relation) of its tuples, sorted. Nodes are the
// read model's dense indices, relations small ids. A graph folded from its
// start has it from GraphCreated on, kept up to date by Apply; a snapshot
// does not hold it, so it is rebuilt from the edges (a tuple's edge gives
// its object, subject and relation) by BuildAuthzIndex, which the
// projections call when they load a snapshot, or else on the first Check
// or Expand (a time-travel view).
type authzIndex struct {
	schema  *authz.Schema
	err     error // the schema did not compile
	rels    names // relation name -> id
	nss     names // namespace name -> id
	rewrite [][]*cexpr
	nodeNS  []uint16 // node -> namespace id + 1 (0: not a known namespace)
	sets    map[uint64]*tupleSet
	tuples  int
}

// tupleSet is the subjects of one (object, relation).
type tupleSet struct {
	direct   u32set
	usersets []uint64 // subject node << 16 | relation id, sorted
}

func akey(u uint32, r uint32) uint64 { return uint64(u)<<16 | uint64(r) }

// compiled rewrite expressions.
const (
	opThis = iota
	opComputed
	opTTU
	opUnion
	opIntersection
	opExclusion
)

type cexpr struct {
	op      uint8
	rel, ts uint32 // computed relation; tupleset
	relName string
	tsName  string
	ch      []*cexpr
}

// authzIndex returns g's authorization index, building it on first use.
func (g *Graph) authzIndex() (*authzIndex, error) {
	if g.deleted {
		return nil, fmt.Errorf("graph %s was deleted: %w", g.id, ErrNotFound)
	}
	if g.typ != authz.TypeName {
		return nil, fmt.Errorf("graph %s has type %q: %w", g.id, g.typ, ErrNotAuthorization)
	}
	if g.authz == nil {
		g.authz = g.buildAuthzIndex()
	}
	if g.authz.err != nil {
		return nil, fmt.Errorf("graph %s: %v: %w", g.id, g.authz.err, ErrInvalidArgument)
	}
	return g.authz, nil
}

// BuildAuthzIndex builds the authorization index of a graph of type
// "authorization" when it is missing (a read model loaded from a snapshot),
// so that its first Check or Expand does not pay for it; Apply keeps it up
// to date after that. It does nothing on other graphs.
func (g *Graph) BuildAuthzIndex() {
	if g.typ == authz.TypeName && !g.deleted {
		_, _ = g.authzIndex() // a schema error is kept and answered by each query
	}
}

// authzApply keeps a built index up to date with an edge event.
func (g *Graph) authzApply(ev *cairnv1.Event) {
	if g.authz == nil {
		return
	}
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_EdgeAdded:
		u, ok1 := g.nodes.Lookup(k.EdgeAdded.GetSource())
		v, ok2 := g.nodes.Lookup(k.EdgeAdded.GetTarget())
		if ok1 && ok2 {
			g.authz.add(k.EdgeAdded.GetEdgeId(), u, v)
		}
	case *cairnv1.Event_EdgeRemoved:
		u, ok1 := g.nodes.Lookup(k.EdgeRemoved.GetSource())
		v, ok2 := g.nodes.Lookup(k.EdgeRemoved.GetTarget())
		if ok1 && ok2 {
			g.authz.remove(k.EdgeRemoved.GetEdgeId(), u, v)
		}
	}
}

// buildAuthzIndex builds g's index from its edges. A tuple's edge already
// gives its relation (the edge type) and its object and subject (the
// endpoints): only a userset's relation is read from the edge id, and each
// node's namespace from its id once. The map is presized and the sets and
// their first subjects come from slabs, so a build allocates little.
func (g *Graph) buildAuthzIndex() *authzIndex {
	ix := newAuthzIndex(g.metadata[authz.SchemaKey])
	if ix.schema == nil {
		return ix
	}
	relOf := make([]int32, g.types.len()) // edge type id -> relation id, -1: none
	for t := range relOf {
		relOf[t] = -1
		if r, ok := ix.rels.lookup(g.types.name(uint32(t))); ok {
			relOf[t] = int32(r)
		}
	}
	ix.sets = make(map[uint64]*tupleSet, g.nEdges)
	ix.nodeNS = make([]uint16, g.nodes.Cap())
	var (
		id, node []byte
		sets     []tupleSet
		firsts   []uint32
	)
	nodeNS := func(u uint32) {
		if ix.nodeNS[u] != 0 {
			return
		}
		node = g.nodes.AppendString(node[:0], u)
		if i := bytes.IndexByte(node, ':'); i >= 0 {
			if ns, ok := ix.nss.lookup(string(node[:i])); ok {
				ix.nodeNS[u] = uint16(ns + 1)
			}
		}
	}
	for e := range uint32(g.edges.Cap()) {
		if !g.edges.Has(e) {
			continue
		}
		t := g.etype.Get(int(e))
		if int(t) >= len(relOf) || relOf[t] < 0 {
			continue
		}
		id = g.edges.AppendString(id[:0], e)
		at := bytes.LastIndexByte(id, '@')
		if at < 0 {
			continue
		}
		var srel uint32
		userset := false
		if h := bytes.IndexByte(id[at+1:], '#'); h >= 0 {
			r, ok := ix.rels.lookup(string(id[at+1+h+1:]))
			if !ok {
				continue
			}
			srel, userset = r, true
		}
		u, v := g.src.Get(int(e)), g.dst.Get(int(e))
		if int(max(u, v)) >= len(ix.nodeNS) {
			continue // not an edge of this graph's nodes
		}
		nodeNS(u)
		nodeNS(v)
		k := akey(u, uint32(relOf[t]))
		s := ix.sets[k]
		if s == nil {
			if len(sets) == 0 {
				sets = make([]tupleSet, 4096)
			}
			s, sets = &sets[0], sets[1:]
			ix.sets[k] = s
		}
		if !userset && s.direct.small == nil && s.direct.big == nil {
			if len(firsts) == 0 {
				firsts = make([]uint32, 4096)
			}
			firsts[0] = v
			s.direct.small, firsts = firsts[:1:1], firsts[1:]
			ix.tuples++
			continue
		}
		ix.insert(s, v, srel, userset)
	}
	return ix
}

func newAuthzIndex(schemaText string) *authzIndex {
	ix := &authzIndex{sets: map[uint64]*tupleSet{}}
	s, err := authz.ParseSchema(schemaText)
	if err != nil {
		ix.err = err
		return ix
	}
	ix.schema = s
	for _, ns := range s.Namespaces() {
		for _, r := range s.Namespace(ns).Order {
			ix.rels.intern(r)
		}
	}
	for _, ns := range s.Namespaces() {
		ix.nss.intern(ns)
		row := make([]*cexpr, ix.rels.len())
		nd := s.Namespace(ns)
		for _, r := range nd.Order {
			id, _ := ix.rels.lookup(r)
			row[id] = ix.compile(nd.Relations[r].Rewrite)
		}
		ix.rewrite = append(ix.rewrite, row)
	}
	return ix
}

func (ix *authzIndex) compile(u *cairnv1.Userset) *cexpr {
	switch k := u.GetKind().(type) {
	case *cairnv1.Userset_ComputedUserset:
		id, _ := ix.rels.lookup(k.ComputedUserset.GetRelation())
		return &cexpr{op: opComputed, rel: id, relName: k.ComputedUserset.GetRelation()}
	case *cairnv1.Userset_TupleToUserset:
		ts, _ := ix.rels.lookup(k.TupleToUserset.GetTupleset())
		cr, _ := ix.rels.lookup(k.TupleToUserset.GetComputedRelation())
		return &cexpr{op: opTTU, ts: ts, rel: cr, tsName: k.TupleToUserset.GetTupleset(), relName: k.TupleToUserset.GetComputedRelation()}
	case *cairnv1.Userset_Union:
		e := &cexpr{op: opUnion}
		for _, c := range k.Union.GetChildren() {
			e.ch = append(e.ch, ix.compile(c))
		}
		return e
	case *cairnv1.Userset_Intersection:
		e := &cexpr{op: opIntersection}
		for _, c := range k.Intersection.GetChildren() {
			e.ch = append(e.ch, ix.compile(c))
		}
		return e
	case *cairnv1.Userset_Exclusion:
		return &cexpr{op: opExclusion, ch: []*cexpr{ix.compile(k.Exclusion.GetBase()), ix.compile(k.Exclusion.GetSubtract())}}
	}
	return &cexpr{op: opThis}
}

// noteNS records node u's namespace.
func (ix *authzIndex) noteNS(u uint32, object string) {
	for uint32(len(ix.nodeNS)) <= u {
		ix.nodeNS = append(ix.nodeNS, 0)
	}
	if ix.nodeNS[u] == 0 {
		if id, ok := ix.nss.lookup(authz.Namespace(object)); ok {
			ix.nodeNS[u] = uint16(id + 1)
		}
	}
}

// rewriteOf returns the rewrite of node u's relation r, nil when u's
// namespace has no such relation.
func (ix *authzIndex) rewriteOf(u, r uint32) *cexpr {
	if u >= uint32(len(ix.nodeNS)) || ix.nodeNS[u] == 0 {
		return nil
	}
	return ix.rewrite[ix.nodeNS[u]-1][r]
}

// parse reads a tuple edge id; ok is false for an edge that is not a tuple
// of the schema (the index leaves it out).
func (ix *authzIndex) parse(id string) (t authz.Tuple, rel, srel uint32, ok bool) {
	if ix.schema == nil {
		return t, 0, 0, false
	}
	t, err := authz.ParseTuple(id)
	if err != nil {
		return t, 0, 0, false
	}
	if rel, ok = ix.rels.lookup(t.Relation); !ok {
		return t, 0, 0, false
	}
	if t.SubjectRelation != "" {
		if srel, ok = ix.rels.lookup(t.SubjectRelation); !ok {
			return t, 0, 0, false
		}
	}
	return t, rel, srel, true
}

func (ix *authzIndex) add(id string, u, v uint32) {
	t, rel, srel, ok := ix.parse(id)
	if !ok {
		return
	}
	ix.noteNS(u, t.Object)
	ix.noteNS(v, t.Subject)
	k := akey(u, rel)
	s := ix.sets[k]
	if s == nil {
		s = &tupleSet{}
		ix.sets[k] = s
	}
	ix.insert(s, v, srel, t.SubjectRelation != "")
}

// insert adds subject v (the userset v#srel when userset) to s.
func (ix *authzIndex) insert(s *tupleSet, v, srel uint32, userset bool) {
	if !userset {
		s.direct.add(v)
	} else {
		us := akey(v, srel)
		if i, found := slices.BinarySearch(s.usersets, us); !found {
			s.usersets = slices.Insert(s.usersets, i, us)
		}
	}
	ix.tuples++
}

func (ix *authzIndex) remove(id string, u, v uint32) {
	t, rel, srel, ok := ix.parse(id)
	if !ok {
		return
	}
	k := akey(u, rel)
	s := ix.sets[k]
	if s == nil {
		return
	}
	if t.SubjectRelation == "" {
		s.direct.remove(v)
	} else if i, found := slices.BinarySearch(s.usersets, akey(v, srel)); found {
		s.usersets = slices.Delete(s.usersets, i, i+1)
	}
	if s.direct.len() == 0 && len(s.usersets) == 0 {
		delete(ix.sets, k)
	}
	ix.tuples--
}

// Check reports whether subject ("namespace:id" or a userset
// "namespace:id#relation") is in the userset object#relation, evaluating
// the relation's rewrite over the graph's tuples. Results of sub-checks are
// memoised within the check; a cycle of usersets is cut where it re-enters
// an (object, relation) being evaluated (that path contributes no
// subject). Errors: ErrNotAuthorization, ErrNotFound (graph deleted),
// ErrInvalidArgument (syntax; a namespace or relation the schema lacks),
// ErrLimitExceeded (past MaxCheckDepth or MaxCheckLookups).
func (g *Graph) Check(object, relation, subject string) (CheckResult, error) {
	ix, err := g.authzIndex()
	if err != nil {
		return CheckResult{}, err
	}
	r, err := ix.relationOf(object, relation)
	if err != nil {
		return CheckResult{}, err
	}
	so, sr, err := authz.ParseSubject(subject)
	if err != nil {
		return CheckResult{}, fmt.Errorf("subject: %v: %w", err, ErrInvalidArgument)
	}
	c := checker{ix: ix}
	if sr != "" {
		id, err := ix.relationOf(so, sr)
		if err != nil {
			return CheckResult{}, fmt.Errorf("subject: %w", err)
		}
		c.subjRel = true
		c.subjRelID = id
	} else if ix.schema.Namespace(authz.Namespace(so)) == nil {
		return CheckResult{}, fmt.Errorf("subject %s: namespace %s is not in the schema: %w", so, authz.Namespace(so), ErrInvalidArgument)
	}
	u, ok := g.nodes.Lookup(object)
	v, ok2 := g.nodes.Lookup(so)
	if !ok || !ok2 {
		return CheckResult{}, nil // no tuple names them: no set holds the subject
	}
	c.subj = v
	c.subjKey = akey(v, c.subjRelID)
	allowed, _, err := c.rel(u, r)
	return CheckResult{Allowed: allowed, Lookups: c.lookups}, err
}

// relationOf checks that object's namespace has relation and returns its id.
func (ix *authzIndex) relationOf(object, relation string) (uint32, error) {
	if err := authz.CheckObject(object); err != nil {
		return 0, fmt.Errorf("%v: %w", err, ErrInvalidArgument)
	}
	ns := authz.Namespace(object)
	if ix.schema.Namespace(ns) == nil {
		return 0, fmt.Errorf("namespace %s is not in the schema: %w", ns, ErrInvalidArgument)
	}
	if ix.schema.Relation(ns, relation) == nil {
		return 0, fmt.Errorf("namespace %s has no relation %q: %w", ns, relation, ErrInvalidArgument)
	}
	id, _ := ix.rels.lookup(relation)
	return id, nil
}

// checker is one Check's evaluation.
type checker struct {
	ix        *authzIndex
	subj      uint32
	subjRel   bool // the subject is a userset
	subjRelID uint32
	subjKey   uint64
	memo      map[uint64]int32 // (object, relation) -> memoTrue, memoFalse or the stack depth evaluating it
	depth     int32
	lookups   int
}

const (
	memoTrue  = -1
	memoFalse = -2
	noLow     = math.MaxInt32
)

// rel evaluates whether the subject is in u#r. low is the shallowest stack
// depth of an in-progress userset the answer depended on (a cut cycle),
// noLow when none: only answers that depend on nothing in progress above
// them are memoised.
func (c *checker) rel(u, r uint32) (ok bool, low int32, err error) {
	k := akey(u, r)
	if v, seen := c.memo[k]; seen {
		switch v {
		case memoTrue:
			return true, noLow, nil
		case memoFalse:
			return false, noLow, nil
		}
		return false, v, nil // in progress: the cycle is cut here
	}
	e := c.ix.rewriteOf(u, r)
	if e == nil {
		return false, noLow, nil
	}
	if c.depth >= MaxCheckDepth {
		return false, 0, fmt.Errorf("check passed the depth bound of %d nested usersets: %w", MaxCheckDepth, ErrLimitExceeded)
	}
	if c.lookups >= MaxCheckLookups {
		return false, 0, fmt.Errorf("check passed the bound of %d userset lookups: %w", MaxCheckLookups, ErrLimitExceeded)
	}
	if c.memo == nil {
		c.memo = make(map[uint64]int32, 8)
	}
	pos := c.depth
	c.memo[k] = pos
	c.depth++
	c.lookups++
	ok, low, err = c.expr(u, r, e)
	c.depth--
	if err != nil {
		return false, 0, err
	}
	if low >= pos {
		if ok {
			c.memo[k] = memoTrue
		} else {
			c.memo[k] = memoFalse
		}
		return ok, noLow, nil
	}
	delete(c.memo, k)
	return ok, low, nil
}

func (c *checker) expr(u, r uint32, e *cexpr) (bool, int32, error) {
	low := int32(noLow)
	switch e.op {
	case opThis:
		s := c.ix.sets[akey(u, r)]
		if s == nil {
			return false, low, nil
		}
		if c.subjRel {
			if _, found := slices.BinarySearch(s.usersets, c.subjKey); found {
				return true, low, nil
			}
		} else if s.direct.contains(c.subj) {
			return true, low, nil
		}
		for _, us := range s.usersets {
			ok, l, err := c.rel(uint32(us>>16), uint32(us&0xffff))
			low = min(low, l)
			if ok || err != nil {
				return ok, low, err
			}
		}
		return false, low, nil
	case opComputed:
		return c.rel(u, e.rel)
	case opTTU:
		s := c.ix.sets[akey(u, e.ts)]
		if s == nil {
			return false, low, nil
		}
		found := false
		var ferr error
		s.direct.each(func(v uint32) bool {
			ok, l, err := c.rel(v, e.rel)
			low = min(low, l)
			if ok || err != nil {
				found, ferr = ok, err
				return false
			}
			return true
		})
		return found, low, ferr
	case opUnion:
		for _, ch := range e.ch {
			ok, l, err := c.expr(u, r, ch)
			low = min(low, l)
			if ok || err != nil {
				return ok, low, err
			}
		}
		return false, low, nil
	case opIntersection:
		for _, ch := range e.ch {
			ok, l, err := c.expr(u, r, ch)
			low = min(low, l)
			if !ok || err != nil {
				return false, low, err
			}
		}
		return true, low, nil
	case opExclusion:
		ok, l, err := c.expr(u, r, e.ch[0])
		low = min(low, l)
		if !ok || err != nil {
			return false, low, err
		}
		ok, l, err = c.expr(u, r, e.ch[1])
		return !ok && err == nil, min(low, l), err
	}
	return false, low, nil
}

// Expand returns the userset tree of object#relation: the relation's
// rewrite, with computed usersets of the same object expanded in place and
// at the leaves the direct subjects of "this" and the usersets a
// tuple_to_userset leads to, each sorted. Errors as Check's.
func (g *Graph) Expand(object, relation string) (*cairnv1.UsersetTree, error) {
	ix, err := g.authzIndex()
	if err != nil {
		return nil, err
	}
	r, err := ix.relationOf(object, relation)
	if err != nil {
		return nil, err
	}
	u, ok := g.nodes.Lookup(object)
	if !ok {
		u = math.MaxUint32 // no tuples: empty leaves
	}
	ns, _ := ix.nss.lookup(authz.Namespace(object))
	return g.expandRel(ix, u, ns, object, r), nil
}

func (g *Graph) expandRel(ix *authzIndex, u, ns uint32, object string, r uint32) *cairnv1.UsersetTree {
	t := g.expandExpr(ix, u, ns, object, r, ix.rewrite[ns][r])
	t.Object, t.Relation = object, ix.rels.name(r)
	return t
}

func (g *Graph) expandExpr(ix *authzIndex, u, ns uint32, object string, r uint32, e *cexpr) *cairnv1.UsersetTree {
	children := func() *cairnv1.UsersetChildren {
		out := &cairnv1.UsersetChildren{}
		for _, ch := range e.ch {
			out.Children = append(out.Children, g.expandExpr(ix, u, ns, object, r, ch))
		}
		return out
	}
	switch e.op {
	case opComputed:
		// The schema has no cycle of computed usersets: this ends.
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Computed{Computed: g.expandRel(ix, u, ns, object, e.rel)}}
	case opTTU:
		var subjects []string
		if s := ix.sets[akey(u, e.ts)]; s != nil {
			s.direct.each(func(v uint32) bool {
				if ix.rewriteOf(v, e.rel) != nil {
					subjects = append(subjects, g.nodes.String(v)+"#"+e.relName)
				}
				return true
			})
		}
		slices.Sort(subjects)
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Leaf{Leaf: &cairnv1.UsersetLeaf{Subjects: subjects}}}
	case opUnion:
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Union{Union: children()}}
	case opIntersection:
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Intersection{Intersection: children()}}
	case opExclusion:
		return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Exclusion{Exclusion: children()}}
	}
	var subjects []string
	if s := ix.sets[akey(u, r)]; s != nil {
		s.direct.each(func(v uint32) bool { subjects = append(subjects, g.nodes.String(v)); return true })
		for _, us := range s.usersets {
			subjects = append(subjects, g.nodes.String(uint32(us>>16))+"#"+ix.rels.name(uint32(us&0xffff)))
		}
	}
	slices.Sort(subjects)
	return &cairnv1.UsersetTree{Node: &cairnv1.UsersetTree_Leaf{Leaf: &cairnv1.UsersetLeaf{Subjects: subjects}}}
}

// u32set is a set of node indices: a sorted slice while small, a roaring
// bitmap beyond smallMax.
type u32set struct {
	small []uint32
	big   *roaring.Bitmap
}

const smallMax = 64

func (s *u32set) add(x uint32) {
	if s.big != nil {
		s.big.Add(x)
		return
	}
	i, found := slices.BinarySearch(s.small, x)
	if found {
		return
	}
	if len(s.small) >= smallMax {
		s.big = roaring.BitmapOf(s.small...)
		s.big.Add(x)
		s.small = nil
		return
	}
	s.small = slices.Insert(s.small, i, x)
}

func (s *u32set) remove(x uint32) {
	if s.big != nil {
		s.big.Remove(x)
		return
	}
	if i, found := slices.BinarySearch(s.small, x); found {
		s.small = slices.Delete(s.small, i, i+1)
	}
}

func (s *u32set) contains(x uint32) bool {
	if s.big != nil {
		return s.big.Contains(x)
	}
	_, found := slices.BinarySearch(s.small, x)
	return found
}

func (s *u32set) len() int {
	if s.big != nil {
		return int(s.big.GetCardinality())
	}
	return len(s.small)
}

// each calls f on every member in order until f returns false.
func (s *u32set) each(f func(uint32) bool) {
	if s.big != nil {
		it := s.big.Iterator()
		for it.HasNext() {
			if !f(it.Next()) {
				return
			}
		}
		return
	}
	for _, x := range s.small {
		if !f(x) {
			return
		}
	}
}
