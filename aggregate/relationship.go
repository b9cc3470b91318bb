package aggregate

import cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"

// Relationship is the declaration of the "relationship" graph type: people,
// organisations and locations, joined by symmetric or inverse-paired edge
// types kept consistent in the same transaction.
//
// A ConnectNodes of knows a→b (id e) also adds knows b→a (id e/inverse); of
// works_for p→o also employs o→p; of the inverse name (employs o→p) also
// works_for p→o. A DisconnectNodes of either edge removes both. Nodes may
// carry whatever components they like.
func Relationship() *cairnv1.GraphType {
	j := func(from, to string) *cairnv1.EdgeJoin { return &cairnv1.EdgeJoin{From: from, To: to} }
	return &cairnv1.GraphType{
		Name:        "relationship",
		Description: "people, organisations and locations; every edge is kept with its symmetric or inverse partner",
		Categories: []*cairnv1.NodeCategory{
			{Name: "person"}, {Name: "organisation"}, {Name: "location"},
		},
		EdgeTypes: []*cairnv1.EdgeType{
			{Name: "knows", Joins: []*cairnv1.EdgeJoin{j("person", "person")}, Symmetric: true},
			{Name: "works_for", Joins: []*cairnv1.EdgeJoin{j("person", "organisation")}, Inverse: "employs"},
			{Name: "manages", Joins: []*cairnv1.EdgeJoin{j("person", "person")}, Inverse: "reports_to"},
			{Name: "lives_in", Joins: []*cairnv1.EdgeJoin{j("person", "location")}, Inverse: "home_of"},
			{Name: "located_in", Joins: []*cairnv1.EdgeJoin{j("organisation", "location")}, Inverse: "hosts"},
			{Name: "part_of", Joins: []*cairnv1.EdgeJoin{j("organisation", "organisation"), j("location", "location")}, Inverse: "has_part"},
		},
		Rules: []string{
			`"partner edges": an edge e is added and removed with its partner e/inverse (target to source, the symmetric or inverse type); ids ending in /inverse are reserved`,
		},
	}
}

func init() {
	t := Relationship()
	RegisterType(t, DeclaredRules(t))
}
