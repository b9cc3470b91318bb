package authz

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// TypeName is the graph type of authorization graphs; SchemaKey the
// CreateGraph metadata key holding their schema (protojson).
const (
	TypeName  = "authorization"
	SchemaKey = "authorization.schema"
)

// ErrSchema is the sentinel of every schema error.
var ErrSchema = errors.New("authz: bad schema")

// Schema is a validated AuthorizationSchema. It is immutable.
type Schema struct {
	Proto      *cairnv1.AuthorizationSchema
	namespaces map[string]*NamespaceDef
	order      []string
}

// NamespaceDef is one namespace of a schema.
type NamespaceDef struct {
	Name      string
	Relations map[string]*RelationDef
	Order     []string // relation names in schema order
}

// RelationDef is one relation: its rewrite (This when the schema gave
// none) and whether it takes tuples (its rewrite holds This).
type RelationDef struct {
	Namespace, Name string
	Rewrite         *cairnv1.Userset
	Direct          bool
}

// Namespaces returns the namespace names in schema order.
func (s *Schema) Namespaces() []string { return s.order }

// Namespace returns a namespace, nil when absent.
func (s *Schema) Namespace(name string) *NamespaceDef { return s.namespaces[name] }

// Relation returns namespace ns's relation rel, nil when absent.
func (s *Schema) Relation(ns, rel string) *RelationDef {
	if n := s.namespaces[ns]; n != nil {
		return n.Relations[rel]
	}
	return nil
}

// HasRelationAnywhere reports whether some namespace has relation rel.
func (s *Schema) HasRelationAnywhere(rel string) bool {
	for _, n := range s.namespaces {
		if n.Relations[rel] != nil {
			return true
		}
	}
	return false
}

var thisRewrite = &cairnv1.Userset{Kind: &cairnv1.Userset_This{This: &cairnv1.This{}}}

// ParseSchema decodes protojson and validates it (see CompileSchema).
func ParseSchema(text string) (*Schema, error) {
	var p cairnv1.AuthorizationSchema
	if err := protojson.Unmarshal([]byte(text), &p); err != nil {
		return nil, fmt.Errorf("schema is not a protojson AuthorizationSchema: %v: %w", err, ErrSchema)
	}
	return CompileSchema(&p)
}

// CompileSchema validates p: names well formed and unique, every computed
// and tupleset relation named exists in its namespace, a tuple_to_userset's
// computed relation exists in some namespace, set operations have operands,
// and no relation rewrites itself through computed usersets alone.
func CompileSchema(p *cairnv1.AuthorizationSchema) (*Schema, error) {
	s := &Schema{Proto: p, namespaces: map[string]*NamespaceDef{}}
	if len(p.GetNamespaces()) == 0 {
		return nil, fmt.Errorf("schema declares no namespace: %w", ErrSchema)
	}
	for _, n := range p.GetNamespaces() {
		if err := CheckName("namespace", n.GetName()); err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrSchema)
		}
		if s.namespaces[n.GetName()] != nil {
			return nil, fmt.Errorf("namespace %s is declared twice: %w", n.GetName(), ErrSchema)
		}
		nd := &NamespaceDef{Name: n.GetName(), Relations: map[string]*RelationDef{}}
		for _, r := range n.GetRelations() {
			if err := CheckName("relation", r.GetName()); err != nil {
				return nil, fmt.Errorf("namespace %s: %v: %w", n.GetName(), err, ErrSchema)
			}
			if nd.Relations[r.GetName()] != nil {
				return nil, fmt.Errorf("namespace %s: relation %s is declared twice: %w", n.GetName(), r.GetName(), ErrSchema)
			}
			rw := r.GetRewrite()
			if rw == nil {
				rw = thisRewrite
			}
			nd.Relations[r.GetName()] = &RelationDef{Namespace: n.GetName(), Name: r.GetName(), Rewrite: rw}
			nd.Order = append(nd.Order, r.GetName())
		}
		s.namespaces[n.GetName()] = nd
		s.order = append(s.order, n.GetName())
	}
	for _, ns := range s.order {
		nd := s.namespaces[ns]
		for _, rn := range nd.Order {
			rd := nd.Relations[rn]
			direct, err := s.check(nd, rd, rd.Rewrite, 0)
			if err != nil {
				return nil, fmt.Errorf("namespace %s, relation %s: %v: %w", ns, rn, err, ErrSchema)
			}
			rd.Direct = direct
		}
	}
	for _, ns := range s.order {
		nd := s.namespaces[ns]
		for _, rn := range nd.Order {
			if path := s.computedCycle(nd, rn); path != nil {
				return nil, fmt.Errorf("namespace %s, relation %s rewrites itself without a tuple hop (%v): %w", ns, rn, path, ErrSchema)
			}
		}
	}
	return s, nil
}

// maxRewriteDepth bounds the nesting of one rewrite expression.
const maxRewriteDepth = 32

// check validates one rewrite expression and reports whether it holds This.
func (s *Schema) check(nd *NamespaceDef, rd *RelationDef, u *cairnv1.Userset, depth int) (direct bool, err error) {
	if depth > maxRewriteDepth {
		return false, fmt.Errorf("rewrite nested deeper than %d", maxRewriteDepth)
	}
	switch k := u.GetKind().(type) {
	case *cairnv1.Userset_This:
		return true, nil
	case *cairnv1.Userset_ComputedUserset:
		if nd.Relations[k.ComputedUserset.GetRelation()] == nil {
			return false, fmt.Errorf("computed_userset names relation %q, which namespace %s lacks", k.ComputedUserset.GetRelation(), nd.Name)
		}
	case *cairnv1.Userset_TupleToUserset:
		t := k.TupleToUserset
		if nd.Relations[t.GetTupleset()] == nil {
			return false, fmt.Errorf("tuple_to_userset's tupleset names relation %q, which namespace %s lacks", t.GetTupleset(), nd.Name)
		}
		if !s.HasRelationAnywhere(t.GetComputedRelation()) {
			return false, fmt.Errorf("tuple_to_userset's computed_relation %q is a relation of no namespace", t.GetComputedRelation())
		}
	case *cairnv1.Userset_Union, *cairnv1.Userset_Intersection:
		var ch []*cairnv1.Userset
		name := "union"
		if x, ok := k.(*cairnv1.Userset_Union); ok {
			ch = x.Union.GetChildren()
		} else {
			ch, name = k.(*cairnv1.Userset_Intersection).Intersection.GetChildren(), "intersection"
		}
		if len(ch) == 0 {
			return false, fmt.Errorf("%s has no children", name)
		}
		for _, c := range ch {
			d, err := s.check(nd, rd, c, depth+1)
			if err != nil {
				return false, err
			}
			direct = direct || d
		}
	case *cairnv1.Userset_Exclusion:
		x := k.Exclusion
		if x.GetBase() == nil || x.GetSubtract() == nil {
			return false, fmt.Errorf("exclusion needs a base and a subtract")
		}
		d1, err := s.check(nd, rd, x.GetBase(), depth+1)
		if err != nil {
			return false, err
		}
		d2, err := s.check(nd, rd, x.GetSubtract(), depth+1)
		return d1 || d2, err
	default:
		return false, fmt.Errorf("a userset has no kind")
	}
	return direct, nil
}

// computedCycle returns a cycle of computed usersets from relation start
// back to itself, nil when there is none.
func (s *Schema) computedCycle(nd *NamespaceDef, start string) []string {
	var path []string
	seen := map[string]bool{}
	var walk func(rel string) bool
	walk = func(rel string) bool {
		path = append(path, rel)
		for _, next := range computedOf(nd.Relations[rel].Rewrite, nil) {
			if next == start {
				path = append(path, next)
				return true
			}
			if !seen[next] {
				seen[next] = true
				if walk(next) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if walk(start) {
		return path
	}
	return nil
}

// computedOf appends the relations u names through computed_userset.
func computedOf(u *cairnv1.Userset, dst []string) []string {
	switch k := u.GetKind().(type) {
	case *cairnv1.Userset_ComputedUserset:
		dst = append(dst, k.ComputedUserset.GetRelation())
	case *cairnv1.Userset_Union:
		for _, c := range k.Union.GetChildren() {
			dst = computedOf(c, dst)
		}
	case *cairnv1.Userset_Intersection:
		for _, c := range k.Intersection.GetChildren() {
			dst = computedOf(c, dst)
		}
	case *cairnv1.Userset_Exclusion:
		dst = computedOf(k.Exclusion.GetBase(), dst)
		dst = computedOf(k.Exclusion.GetSubtract(), dst)
	}
	return dst
}

// Cache parses each distinct schema text once. It is safe for concurrent
// use; it holds at most a fixed number of schemas and forgets them all when
// full (schemas are few: one per authorization graph's creation).
type Cache struct {
	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	s   *Schema
	err error
}

const cacheMax = 256

// Get returns the schema of text, parsing it on first sight.
func (c *Cache) Get(text string) (*Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[text]; ok {
		return e.s, e.err
	}
	if c.m == nil || len(c.m) >= cacheMax {
		c.m = map[string]cached{}
	}
	s, err := ParseSchema(text)
	c.m[text] = cached{s, err}
	return s, err
}
