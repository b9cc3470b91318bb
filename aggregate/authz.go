package aggregate

import (
	"strings"

	"github.com/cairn-graph/cairn/internal/authz"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// SubjectRelationComponent is the component type that the edge of a tuple
// with a userset subject carries: the subject's relation.
const SubjectRelationComponent = "subject_relation"

func init() {
	RegisterType(&cairnv1.GraphType{Name: authz.TypeName,
		Description: "Zanzibar-style relation tuples with per-namespace rewrite rules; checked by the check and expand queries",
		Rules: []string{
			"the namespace schema (protojson AuthorizationSchema) is given at creation, in the metadata key " + authz.SchemaKey,
			"the graph changes only by write_tuple and delete_tuple (and delete_graph); node and edge commands are refused",
			"a tuple's namespace and relation exist in the schema and the relation is directly writable (its rewrite includes this)",
			"a tuple object#relation@subject is the edge with that id from node object to node subject, of type relation",
		}},
		&authzRules{})
}

// authzRules are the rules of authorization graphs: a schema at creation,
// tuples as the only writes. Each distinct schema text is parsed once.
type authzRules struct {
	schemas authz.Cache
}

var _ TypeRules = (*authzRules)(nil)

// ValidateCreate requires a valid AuthorizationSchema (protojson) in the
// metadata under authz.SchemaKey.
func (r *authzRules) ValidateCreate(field string, cg *cairnv1.CreateGraph) error {
	f := field + ".metadata[" + authz.SchemaKey + "]"
	text, ok := cg.GetMetadata()[authz.SchemaKey]
	if !ok {
		return failedPrecondition(f, "an authorization graph needs its namespace schema (protojson AuthorizationSchema) under the metadata key %s", authz.SchemaKey)
	}
	if _, err := r.schemas.Get(text); err != nil {
		return failedPrecondition(f, "%v", err)
	}
	return nil
}

// Decide turns WriteTuple and DeleteTuple into node and edge events and
// refuses the generic node and edge commands; DeleteGraph is as for any
// graph.
func (r *authzRules) Decide(s *State, prefix string, cmd *cairnv1.Command, base func() ([]*cairnv1.Event, error)) ([]*cairnv1.Event, error) {
	switch k := cmd.GetKind().(type) {
	case *cairnv1.Command_DeleteGraph:
		return base()
	case *cairnv1.Command_WriteTuple:
		return r.writeTuple(s, prefix+".write_tuple.tuple", k.WriteTuple.GetTuple())
	case *cairnv1.Command_DeleteTuple:
		return deleteTuple(s, prefix+".delete_tuple.tuple", k.DeleteTuple.GetTuple())
	}
	return nil, failedPrecondition(prefix, "graph %s is an authorization graph: authorization graphs change by write_tuple and delete_tuple", s.graph)
}

func (r *authzRules) writeTuple(s *State, f string, tp *cairnv1.Tuple) ([]*cairnv1.Event, error) {
	t, err := authz.FromProto(tp)
	if err != nil {
		return nil, invalid(f, "%v", err)
	}
	schema, err := r.schemas.Get(s.metadata[authz.SchemaKey])
	if err != nil { // ValidateCreate let it in: only a changed rule set gets here
		return nil, failedPrecondition(f, "graph %s: %v", s.graph, err)
	}
	ns := authz.Namespace(t.Object)
	if schema.Namespace(ns) == nil {
		return nil, failedPrecondition(f+".object", "namespace %s is not in graph %s's schema", ns, s.graph)
	}
	rel := schema.Relation(ns, t.Relation)
	if rel == nil {
		return nil, failedPrecondition(f+".relation", "namespace %s has no relation %s", ns, t.Relation)
	}
	if !rel.Direct {
		return nil, failedPrecondition(f+".relation", "relation %s#%s takes no tuples: its rewrite has no \"this\"", ns, t.Relation)
	}
	sns := authz.Namespace(t.Subject)
	if schema.Namespace(sns) == nil {
		return nil, failedPrecondition(f+".subject", "subject namespace %s is not in graph %s's schema", sns, s.graph)
	}
	if t.SubjectRelation != "" && schema.Relation(sns, t.SubjectRelation) == nil {
		return nil, failedPrecondition(f+".subject", "userset %s: namespace %s has no relation %s", authz.FormatSubject(t.Subject, t.SubjectRelation), sns, t.SubjectRelation)
	}
	id := t.String()
	if s.HasEdge(id) {
		return nil, alreadyExists(f, "tuple %s already exists", id)
	}
	var evs []*cairnv1.Event
	if !s.HasNode(t.Object) {
		evs = append(evs, objectAdded(t.Object))
	}
	if t.Subject != t.Object && !s.HasNode(t.Subject) {
		evs = append(evs, objectAdded(t.Subject))
	}
	ea := &cairnv1.EdgeAdded{EdgeId: id, Source: t.Object, Target: t.Subject, EdgeType: t.Relation}
	if t.SubjectRelation != "" {
		ea.Components = []*cairnv1.Component{{Type: SubjectRelationComponent, Value: []byte(t.SubjectRelation)}}
	}
	return append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: ea}}), nil
}

// objectAdded records an object node, its namespace as category.
func objectAdded(object string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: object, Categories: []string{authz.Namespace(object)}}}}
}

func deleteTuple(s *State, f string, tp *cairnv1.Tuple) ([]*cairnv1.Event, error) {
	t, err := authz.FromProto(tp)
	if err != nil {
		return nil, invalid(f, "%v", err)
	}
	id := t.String()
	e, ok := s.edges.Lookup(id)
	if !ok {
		return nil, notFound(f, "tuple %s does not exist", id)
	}
	return one(&cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{
		EdgeId: id, Source: s.nodes.String(s.src.Get(int(e))), Target: s.nodes.String(s.dst.Get(int(e))),
	}}}), nil
}

// tupleOnOtherGraph refuses a tuple command on a graph that is not an
// authorization graph.
func tupleOnOtherGraph(s *State, prefix string, cmd *cairnv1.Command) error {
	f := prefix + ".write_tuple"
	if cmd.GetDeleteTuple() != nil {
		f = prefix + ".delete_tuple"
	}
	typ := s.typ
	if typ == "" {
		typ = "untyped"
	}
	return failedPrecondition(f, "graph %s is not an authorization graph (its type is %s): tuples go to graphs created with type %s", s.graph, typ, authz.TypeName)
}

// validateTupleCommand checks a tuple command's syntax (no state needed).
func validateTupleCommand(c *cairnv1.Command) error {
	f, tp := "write_tuple.tuple", c.GetWriteTuple().GetTuple()
	if c.GetDeleteTuple() != nil {
		f, tp = "delete_tuple.tuple", c.GetDeleteTuple().GetTuple()
	}
	if tp == nil {
		return invalid(f, "tuple is missing")
	}
	t, err := authz.FromProto(tp)
	if err != nil {
		return invalid(f, "%s", strings.TrimSuffix(err.Error(), ": "+authz.ErrSyntax.Error()))
	}
	if n := len(t.String()); n > MaxIDLen {
		return invalid(f, "tuple %s is %d bytes long; the limit is %d", t, n, MaxIDLen)
	}
	return nil
}
