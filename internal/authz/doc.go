// Package authz holds what the engine and the CLI share about authorization
// graphs (graph type "authorization", messages/cairn/v1/authz.proto): the
// tuple text syntax and the namespace schema.
//
// Text forms, parsed and formatted only here:
//
//	object:  namespace:id                      doc:readme
//	subject: namespace:id[#relation]           user:alice, group:eng#member
//	tuple:   object#relation@subject           doc:readme#viewer@group:eng#member
//
//	t, err := authz.ParseTuple("doc:readme#viewer@user:alice")
//	s := t.String() // the canonical text, the tuple's edge id
//	schema, err := authz.CompileSchema(text) // protojson AuthorizationSchema, validated
//	rel := schema.Relation("doc", "viewer")  // nil when absent; rel.Direct: takes tuples
//
// A schema is refused with an error naming the namespace and relation at
// fault: an unknown computed or tupleset relation, an empty set operation,
// or a relation that rewrites itself through computed usersets alone (a
// cycle with no tuple hop).
package authz
