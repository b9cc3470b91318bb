package auth

import (
	"slices"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cairn-graph/cairn/api"
)

// Streams names what an engine keeps in JetStream: the admin role reads
// them, nobody but the engine writes them.
type Streams struct {
	// Events is the event-store stream's name ("event-store").
	Events string
	// EventSubjects is its subject prefix ("cairn.events").
	EventSubjects string
	// Objects is the object-store bucket's name ("object-store"); its
	// stream is "OBJ_" + Objects, and its snapshot index's (a key-value
	// bucket, persistence.SnapshotIndexBucket) "KV_" + Objects + "-index".
	Objects string
}

// ServerUsers returns f's users as nats-server users (password logins)
// and nkey users, each with its role's permissions (Permissions).
func (f *File) ServerUsers(s Streams) ([]*server.User, []*server.NkeyUser) {
	var users []*server.User
	var nkeyUsers []*server.NkeyUser
	for _, u := range f.Users {
		if u.Password != "" {
			users = append(users, &server.User{Username: u.Name, Password: u.Password, Permissions: u.Permissions(u.Name, s)})
		}
		if u.Nkey != "" {
			nkeyUsers = append(nkeyUsers, &server.NkeyUser{Nkey: u.Nkey, Permissions: u.Permissions(u.Nkey, s)})
		}
	}
	return users, nkeyUsers
}

// Permissions returns what u, logged in as identity (its name, or its
// nkey's public key), may publish and subscribe to:
//
//   - every role: requests to the micro service's $SRV subjects (ping,
//     info, stats) and to api.KeysSubject (the engine's public signing
//     keys), to api.GraphsSubject (the catalogue and finds across
//     graphs, which the engine answers about the user's own graphs only,
//     known from its inbox), and subscriptions under its own inbox prefix
//     (api.InboxPrefix(identity)) only, so it can neither answer an API
//     subject nor read another user's replies;
//
//   - reader: api.QuerySubjectFor of its graphs, or every graph's and
//     the deprecated api.QuerySubject when on every graph;
//
//   - writer: as reader, plus the command subjects the same way;
//
//   - member: every right, as the engine's own identity (another engine
//     of the cluster, over --nats);
//
//   - admin: as writer on every graph, plus api.RepairSubject and
//     api.ArchiveSubject (cairn repair and archive, which the engine
//     carries out) and the JetStream API requests
//     that read the event stream, the object store and its snapshot
//     index: stream info,
//     message get (direct and not), consumers (create, info, next, delete)
//     and stream snapshots (cairn backup; restoring creates streams, which
//     no role may).
//
//   - adapter: as writer on its graphs, plus what "cairn adapter run"
//     does in JetStream and nothing more (adapterAllow): look up stream
//     names, look up its own streams (User.AdapterStreams) and ask the
//     engine to create them (api.AdapterStreamSubject, which checks the
//     subjects they capture: User.CheckAdapterStream),
//     create, read and ack its durable consumers on them
//     ("adapter_<kind>_<graph>" of its graphs, filtered on its sources
//     only), and publish to its dead-letter subjects and its sources
//     (what it publishes there can only become writes to its graphs).
//
// Denied to all, whatever the allow list says: publishing to the event
// subjects or the object store's subjects, creating, changing, purging or
// deleting a stream (a stream's subjects travel in the request body,
// which permissions do not see: a client could capture the engine's
// subjects), deleting a message, and subscribing to the API subjects or
// the event subjects.
func (u User) Permissions(identity string, s Streams) *server.Permissions {
	if u.Role == Member {
		// An engine of the cluster: what the engine's own identity may do.
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{">"}},
		}
	}
	pub := []string{"$SRV.>", api.KeysSubject, api.GraphsSubject}
	add := func(prefix, legacy string) {
		if u.AllGraphs() || u.Role == Admin {
			pub = append(pub, prefix+"*", legacy)
			return
		}
		for _, g := range u.Graphs {
			pub = append(pub, prefix+g)
		}
	}
	add(api.QuerySubjectPrefix, api.QuerySubject)
	if u.Role == Writer || u.Role == Admin || u.Role == Adapter {
		add(api.CommandSubjectPrefix, api.CommandSubject)
	}
	if u.Role == Admin {
		pub = append(pub, api.RepairSubject, api.ArchiveSubject, "$JS.API.INFO")
		for _, st := range []string{s.Events, "OBJ_" + s.Objects, "KV_" + s.Objects + "-index"} {
			pub = append(pub,
				"$JS.API.STREAM.INFO."+st,
				"$JS.API.STREAM.MSG.GET."+st,
				"$JS.API.DIRECT.GET."+st, "$JS.API.DIRECT.GET."+st+".>",
				"$JS.API.CONSUMER.CREATE."+st, "$JS.API.CONSUMER.CREATE."+st+".>",
				"$JS.API.CONSUMER.INFO."+st+".*",
				"$JS.API.CONSUMER.MSG.NEXT."+st+".*",
				"$JS.API.CONSUMER.DELETE."+st+".*",
				// cairn backup: a stream snapshot, delivered to the
				// admin's inbox, and its flow-control acks.
				"$JS.API.STREAM.SNAPSHOT."+st,
				"$JS.SNAPSHOT.ACK."+st+".>",
			)
		}
	}
	deny := []string{
		s.EventSubjects + ".>", "$O.>", "$KV.>",
		"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>",
		"$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.MSG.DELETE.>",
		"$JS.API.CONSUMER.DURABLE.>",
	}
	if u.Role == Adapter {
		pub = append(pub, u.adapterAllow(s)...)
		// Its own streams' consumers, none of the engine's.
		for _, st := range s.engineStreams() {
			deny = append(deny,
				"$JS.API.CONSUMER.CREATE."+st, "$JS.API.CONSUMER.CREATE."+st+".>",
				"$JS.API.CONSUMER.MSG.NEXT."+st+".>", "$JS.ACK."+st+".>")
		}
	}
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: pub,
			Deny:  deny,
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{api.InboxPrefix(identity) + ".>"},
			Deny: []string{
				api.CommandSubject, api.CommandSubjectPrefix + ">",
				api.QuerySubject, api.QuerySubjectPrefix + ">",
				api.KeysSubject, api.RepairSubject, api.ArchiveSubject, api.GraphsSubject, api.AdapterStreamSubject,
				s.EventSubjects + ".>", "$SRV.>",
			},
		},
	}
}

// engineStreams are the streams the engine keeps: the event stream, the
// object store's, its snapshot index's and the linker's bucket's.
func (s Streams) engineStreams() []string {
	return []string{s.Events, "OBJ_" + s.Objects, "KV_" + s.Objects + "-index", "KV_" + s.Events + "-linker"}
}

// adapterAllow is what an adapter user may publish to in JetStream and for
// its dead letters.
func (u User) adapterAllow(s Streams) []string {
	pub := []string{
		"$JS.API.STREAM.NAMES",   // which stream captures --from, and the dead-letter subject
		api.AdapterStreamSubject, // the engine creates its streams, once it checked their subjects
	}
	pub = append(pub, u.AdapterDeadLetters()...)
	// Its sources too ("cairn adapter publish" with its login): what it
	// publishes there becomes writes to its own graphs.
	pub = append(pub, u.Sources...)
	var durables []string
	for _, g := range u.Graphs {
		for _, k := range AdapterKinds {
			durables = append(durables, "adapter_"+k+"_"+g)
		}
	}
	for _, st := range u.AdapterStreams() {
		if slices.Contains(s.engineStreams(), st) {
			continue
		}
		pub = append(pub, "$JS.API.STREAM.INFO."+st)
		for _, d := range durables {
			for _, src := range u.Sources {
				pub = append(pub, "$JS.API.CONSUMER.CREATE."+st+"."+d+"."+src)
			}
			pub = append(pub,
				"$JS.API.CONSUMER.INFO."+st+"."+d,
				"$JS.API.CONSUMER.MSG.NEXT."+st+"."+d,
				// acks and naks: $JS.ACK.<stream>.<durable>.…, or with
				// a domain and an account hash first.
				"$JS.ACK."+st+"."+d+".>", "$JS.ACK.*.*."+st+"."+d+".>")
		}
	}
	return pub
}
