// Package api is what a client of a running engine needs besides the
// protobuf messages and package aggregate's limits and errors: the name and
// subjects of the "cairn" NATS micro service (per graph:
// CommandSubjectFor, QuerySubjectFor; about many graphs: GraphsSubject),
// the inbox prefix a user logs in with (InboxPrefix), and the JSON its stats
// endpoint reports (grains, projections, memory). It imports nothing of the
// engine, so that client programs (cairn's client commands, the harness's
// remote driver) link neither the actor system nor NATS's server.
//
//	rep, err := nc.Request(api.CommandSubjectFor(env.GraphId), envelopeBytes, time.Second)
package api
