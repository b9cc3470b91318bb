package api

import "strings"

// GraphsSubject takes the requests that are about many graphs, not one
// (a protobuf QueryRequest with list_graphs or find_across, graph_id
// empty) and answers a protobuf QueryReply: the catalogue (cairn graph
// list) and the finds across graphs (cairn query find --all-graphs). The
// engine gathers the answer from every projection shard of every cluster
// member.
//
// With users configured, the engine answers only about the graphs the
// asking identity may read, which it learns from the request's reply
// subject (InboxPrefix: each user may subscribe under its own prefix
// only, so a reply subject names its user). A request whose reply subject
// is under no user's prefix gets an empty answer. A single graph's entry
// (cairn graph show) is a describe_graph query on QuerySubjectFor(graph).
const GraphsSubject = "cairn.graphs"

// MemberGraphsSubject returns the subject on which the cluster member id
// answers a request about many graphs from its own share of them (the
// member that took the request from GraphsSubject gathers every member's
// share). Only engines may use it.
func MemberGraphsSubject(id string) string { return MemberQueryPrefix + id + ".graphs" }

// IdentityOfReply returns the identity whose inbox a reply subject is in
// (InboxPrefix(identity) + "." + anything), false for a subject outside
// every inbox.
func IdentityOfReply(reply string) (string, bool) {
	rest, ok := strings.CutPrefix(reply, InboxRoot+".")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ".")
	return id, ok && id != ""
}
