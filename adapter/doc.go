// Package adapter turns other systems' events about people, organisations
// and locations into commands on a Cairn relationship graph. It is a client
// of a running engine: it reads the source events from NATS JetStream and
// sends commands and queries to the "cairn" service's per-graph subjects
// (package api), never to the actor system. "cairn adapter run" runs one.
//
// # Events in
//
// A source event is a cairn.v1.DomainEvent (messages/cairn/v1/adapters.proto),
// as protobuf or as its protojson form (Config.Format): an id, occurred_at
// and one of PersonUpserted, PersonRemoved, PersonEmployed, PersonKnows,
// PersonManages, PersonLivesIn (the "people" adapter), OrganisationUpserted,
// OrganisationRemoved, OrganisationLocatedIn, OrganisationPartOf
// ("organisations"), LocationUpserted, LocationRemoved, LocationPartOf
// ("locations").
//
//	{"id":"hr-1","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"alice","name":"Alice"}}
//
// # Commands out
//
// An upsert becomes node "<category>:<id>" ("person:alice") with category
// person, organisation or location and components name (and email, kind,
// the attributes) plus source_event and source_time, the version of the
// entity. A relation becomes one edge, "<type>:<source node>:<target node>"
// ("works_for:person:alice:organisation:acme"), of type knows, works_for,
// manages, lives_in, located_in or part_of; a relationship graph adds the
// inverse partner itself. "ended": true removes it; a Removed event removes
// the node and its edges.
//
// # Idempotence
//
// Each event's command id is "adapter/<kind>/<event id>" (an update of an
// existing node: ".../set"), so a replay inside the engine's idempotency
// window is answered as a duplicate. Beyond it, writes are idempotent by
// themselves: an edge that exists (ALREADY_EXISTS) and a removal of what is
// gone (NOT_FOUND) are duplicates, and an upsert first reads the node
// (GetNode, with min_seq of the adapter's last write): absent, AddNode;
// present with a version (source_time, then source_event) not older than
// the event's, nothing; else SetNodeComponents of the event's components.
//
// # Checkpoint, retries and dead letters
//
// The adapter reads through a durable JetStream consumer
// (Config.Durable, default "adapter_<kind>_<graph>") on the stream that
// captures Config.From (EnsureStream creates "ADAPTER_<KIND>" when none
// does). An event is acked only once the engine answered its command, or it
// was dead-lettered: the consumer's position is the checkpoint, and after a
// crash the unacknowledged events come back. An event that names a node not
// in the graph yet is handed back with a growing delay (Config.RetryDelay)
// and dead-lettered at its Config.MaxAttempts-th delivery; one the engine
// could not be asked about is handed back without limit. Unmappable events
// (undecodable, unknown type, missing or malformed fields) and events the
// engine refuses for good are published at once to Config.DeadLetter
// (default "<from>.dead") with their original bytes and the Cairn-Dead-*
// headers (HeaderReason and the rest), then acked.
//
// # Example
//
//	cfg := adapter.DefaultConfig("people", "hr.people", "org")
//	cfg.CreateGraph = true
//	a, err := adapter.New(nc, cfg)
//	if err != nil { ... }
//	err = a.Run(ctx) // until ctx ends
//	fmt.Println(a.Stats().Written, "commands written")
package adapter
