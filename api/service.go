package api

import "strings"

// Service identity on NATS: the "cairn" micro service that every engine
// member runs.
const (
	ServiceName    = "cairn"
	ServiceVersion = "0.1.0"
	// CommandSubjectPrefix followed by a graph id is where that graph's
	// commands go (CommandSubjectFor): a protobuf CommandEnvelope in, a
	// protobuf CommandReply out. The graph in the subject must be the
	// envelope's graph_id, so that NATS subject permissions can limit a
	// user to some graphs.
	CommandSubjectPrefix = "cairn.command."
	// QuerySubjectPrefix followed by a graph id is where that graph's
	// queries go (QuerySubjectFor): a protobuf QueryRequest in, a protobuf
	// QueryReply out; the subject's graph must be the request's graph_id.
	QuerySubjectPrefix = "cairn.query."
	// CommandSubjects and QuerySubjects are the wildcards the engine
	// answers the per-graph subjects on.
	CommandSubjects = CommandSubjectPrefix + "*"
	QuerySubjects   = QuerySubjectPrefix + "*"
	// CommandSubject takes a protobuf CommandEnvelope for any graph and
	// answers a protobuf CommandReply.
	//
	// Deprecated: send to CommandSubjectFor(graph). The engine answers on
	// it for one more release; only users allowed on every graph may use
	// it.
	CommandSubject = "cairn.command"
	// QuerySubject takes a protobuf QueryRequest for any graph and answers
	// a protobuf QueryReply.
	//
	// Deprecated: send to QuerySubjectFor(graph), as for CommandSubject.
	QuerySubject = "cairn.query"
	// InboxRoot is the root of every reply subject (NATS's default).
	InboxRoot = "_INBOX"
	// MemberHeader, on a command's reply, is the remote address of the
	// cluster member that took the command from NATS; OwnerHeader is the
	// address of the member whose grain answered it. They differ when the
	// command was forwarded to its graph's owner over the Proto.Actor
	// remote (a cross-member hop). Absent from replies that no grain was
	// asked for (a malformed request, a refusal before dispatch).
	MemberHeader = "Cairn-Member"
	OwnerHeader  = "Cairn-Owner"
)

// CommandSubjectFor returns the subject that takes graph's commands.
func CommandSubjectFor(graph string) string { return CommandSubjectPrefix + graph }

// QuerySubjectFor returns the subject that takes graph's queries.
func QuerySubjectFor(graph string) string { return QuerySubjectPrefix + graph }

// MemberQueryPrefix starts the subject on which one cluster member takes
// the queries other members route to it (MemberQuerySubject). Only
// engines may use it: clients send queries to QuerySubjectFor.
const MemberQueryPrefix = "cairn.member."

// MemberQuerySubject returns the subject on which the cluster member id
// answers queries routed to it by the other members (a protobuf
// QueryRequest in, a QueryReply out).
func MemberQuerySubject(id string) string { return MemberQueryPrefix + id + ".query" }

// MemberRepairSubject returns the subject on which the cluster member id
// runs the repairs other members route to it (a JSON RepairRequest in, a
// RepairReply out): a graph's quarantine is its owner's.
func MemberRepairSubject(id string) string { return MemberQueryPrefix + id + ".repair" }

// GraphOfSubject returns the graph named by a per-graph command or query
// subject ("cairn.command.g" gives "g"), and false for any other subject
// (the deprecated un-graphed ones included).
func GraphOfSubject(subject string) (string, bool) {
	for _, p := range [...]string{CommandSubjectPrefix, QuerySubjectPrefix} {
		if g, ok := strings.CutPrefix(subject, p); ok && g != "" && !strings.Contains(g, ".") {
			return g, true
		}
	}
	return "", false
}

// InboxPrefix is the reply-subject prefix of a client that logs in as
// identity (a user name, or the public key of an nkey) on an engine
// started with users: each identity may subscribe only under its own
// prefix, so that nobody reads another's replies. Give it to nats.go as
// nats.CustomInboxPrefix (the nats CLI: --inbox-prefix).
func InboxPrefix(identity string) string { return InboxRoot + "." + identity }
