// Package auth is who may do what on an engine's embedded NATS server:
// the users file of "cairn serve --auth", and the NATS subject
// permissions each role gets.
//
// A users file is JSON:
//
//	{"users": [
//	  {"name": "ops",   "role": "admin",  "password": "$2a$11$..."},
//	  {"name": "app",   "role": "writer", "nkey": "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4",
//	   "graphs": ["orders", "stock"]},
//	  {"name": "board", "role": "reader", "password": "$2a$11$...", "graphs": ["orders"]},
//	  {"name": "hr",    "role": "adapter", "nkey": "U...", "graphs": ["org"], "sources": ["hr.people"]}
//	]}
//
// A user logs in with a password (the file keeps only its bcrypt hash:
// HashPassword) or an nkey (the file keeps the public key, the user keeps
// the seed: NewNkey), or either when both are set. The roles are Reader
// (queries), Writer (commands and queries) and Admin (every graph, plus
// the read-only JetStream access that log, verify, history and diff
// need). Adapter runs "cairn adapter run": a writer on its graphs (which it
// must name) that also consumes its Sources through its own Streams
// (default ADAPTER_<KIND>) and publishes its DeadLetters (default
// "<source>.dead"), and no other JetStream right: the engine creates its
// streams for it (User.CheckAdapterStream). Graphs, when given, limit a reader or writer to those graphs'
// per-graph subjects (api.CommandSubjectFor, api.QuerySubjectFor).
//
// No user may publish to the event subjects, change or purge a stream,
// delete a message, write the object store, or subscribe anywhere but its
// own inbox (api.InboxPrefix): only the engine's own identity, which
// persistence.StartServer makes at start and which only in-process
// connections can use, writes the store and answers the API subjects.
//
//	f, err := auth.Load("users.json")
//	users, nkeys := f.ServerUsers(auth.Streams{Events: "event-store", EventSubjects: "cairn.events", Objects: "object-store"})
package auth
