package auth_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/auth"
	"github.com/cairn-graph/cairn/persistence"
)

func TestValidate(t *testing.T) {
	_, pub, err := auth.NewNkey()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := auth.HashPassword("long-enough")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		users []auth.User
		want  string // "" when valid
	}{
		{"password user", []auth.User{{Name: "a", Role: auth.Reader, Password: hash}}, ""},
		{"nkey user with graphs", []auth.User{{Name: "a", Role: auth.Writer, Nkey: pub, Graphs: []string{"g-1", "h_2"}}}, ""},
		{"both logins", []auth.User{{Name: "a", Role: auth.Admin, Nkey: pub, Password: hash}}, ""},
		{"no users", nil, "no users"},
		{"no login", []auth.User{{Name: "a", Role: auth.Reader}}, "neither a password nor an nkey"},
		{"plain password", []auth.User{{Name: "a", Role: auth.Reader, Password: "secret123"}}, "not a bcrypt hash"},
		{"bad nkey", []auth.User{{Name: "a", Role: auth.Reader, Nkey: "UNOTAKEY"}}, "not a public user nkey"},
		{"seed as nkey", []auth.User{{Name: "a", Role: auth.Reader, Nkey: "SU" + pub[1:]}}, "not a public user nkey"},
		{"bad role", []auth.User{{Name: "a", Role: "root", Password: hash}}, `role "root"`},
		{"no role", []auth.User{{Name: "a", Password: hash}}, `role ""`},
		{"dotted name", []auth.User{{Name: "a.b", Role: auth.Reader, Password: hash}}, "only letters"},
		{"wildcard name", []auth.User{{Name: "*", Role: auth.Reader, Password: hash}}, "only letters"},
		{"empty name", []auth.User{{Role: auth.Reader, Password: hash}}, "1-64"},
		{"dotted graph", []auth.User{{Name: "a", Role: auth.Reader, Password: hash, Graphs: []string{"x.>"}}}, "graphs[0]"},
		{"admin on graphs", []auth.User{{Name: "a", Role: auth.Admin, Password: hash, Graphs: []string{"g"}}}, "cannot be limited"},
		{"same name", []auth.User{{Name: "a", Role: auth.Reader, Password: hash}, {Name: "a", Role: auth.Writer, Nkey: pub}}, "users[0]'s too"},
		{"same nkey", []auth.User{{Name: "a", Role: auth.Reader, Nkey: pub}, {Name: "b", Role: auth.Writer, Nkey: pub}}, "nkey is users[0]'s"},
		{"adapter", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{"hr.people"}}}, ""},
		{"adapter, wildcard source", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{"hr.>"},
			DeadLetters: []string{"hr-dead"}, Streams: []string{"HR"}}}, ""},
		{"adapter without graphs", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Sources: []string{"hr.people"}}}, "names no graphs"},
		{"adapter without sources", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}}}, "names no sources"},
		{"adapter reading the engine", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{"cairn.events.org"}}}, "sources[0]"},
		{"adapter reading everything", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{">"}, DeadLetters: []string{"d"}}}, "starts with a wildcard"},
		{"adapter reading inboxes", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{"_INBOX.x"}}}, "_INBOX"},
		{"adapter reading JetStream", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{"$JS.API.x"}}}, "JetStream or system"},
		{"adapter, wildcard source, no dead letters", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{"hr.*"}}}, "dead_letters"},
		{"adapter, wildcard dead letter", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{"hr.p"}, DeadLetters: []string{"d.*"}}}, "dead_letters[0]"},
		{"adapter on a bucket", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{"hr.p"}, Streams: []string{"KV_object-store-index"}}}, "key-value"},
		{"adapter, dotted stream", []auth.User{{Name: "a", Role: auth.Adapter, Nkey: pub, Graphs: []string{"org"}, Sources: []string{"hr.p"}, Streams: []string{"A.B"}}}, "not a stream name"},
		{"writer with sources", []auth.User{{Name: "a", Role: auth.Writer, Nkey: pub, Sources: []string{"hr.p"}}}, "only an adapter"},
		{"name is a key", []auth.User{{Name: pub, Role: auth.Reader, Password: hash}, {Name: "b", Role: auth.Writer, Nkey: pub}}, "users[1]'s nkey"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := (&auth.File{Users: c.users}).Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("valid file refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, auth.ErrInvalid)):
				t.Fatalf("err = %v, want ErrInvalid with %q", err, c.want)
			}
		})
	}
}

func TestSaveLoad(t *testing.T) {
	hash, err := auth.HashPassword("long-enough")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.HashPassword("short"); err == nil {
		t.Fatal("a 5-byte password was hashed")
	}
	path := filepath.Join(t.TempDir(), "users.json")
	f := &auth.File{}
	if f.Put(auth.User{Name: "a", Role: auth.Reader, Password: hash, Graphs: []string{"g"}}) {
		t.Fatal("Put of a new user replaced one")
	}
	if !f.Put(auth.User{Name: "a", Role: auth.Writer, Password: hash}) {
		t.Fatal("Put of the same name added one")
	}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Users) != 1 || got.Users[0].Role != auth.Writer || !got.Users[0].AllGraphs() {
		t.Fatalf("loaded %+v", got.Users)
	}
	if err := os.WriteFile(path, []byte(`{"users":[{"name":"a","role":"reader","password":"`+hash+`","extra":1}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Load(path); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("unknown field: %v", err)
	}
	if err := (&auth.File{}).Save(path); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("Save of an invalid file: %v", err)
	}
}

// TestPermissions: what each role may publish; the event stream, stream
// purges and deletions and the object store are denied to all, the
// creation of any stream too (an adapter asks the engine for its own),
// and every identity subscribes under its own inbox only.
func TestPermissions(t *testing.T) {
	s := auth.Streams{Events: "event-store", EventSubjects: "cairn.events", Objects: "object-store"}
	for _, c := range []struct {
		user      auth.User
		allow, no []string
	}{
		{auth.User{Role: auth.Reader, Graphs: []string{"a"}}, []string{"cairn.query.a", "$SRV.>", "cairn.keys", "cairn.graphs"},
			[]string{"cairn.query.*", "cairn.query", "cairn.command.a", "$JS.API.INFO", "cairn.admin.repair", "cairn.admin.adapter-stream"}},
		{auth.User{Role: auth.Reader}, []string{"cairn.query.*", "cairn.query"}, []string{"cairn.command.*", "cairn.command"}},
		{auth.User{Role: auth.Writer, Graphs: []string{"a", "b"}}, []string{"cairn.query.a", "cairn.command.b", "cairn.graphs"},
			[]string{"cairn.command.*", "cairn.command", "$JS.API.STREAM.INFO.event-store", "cairn.admin.adapter-stream"}},
		{auth.User{Role: auth.Admin}, []string{"cairn.command.*", "cairn.command", "$JS.API.STREAM.INFO.event-store",
			"$JS.API.DIRECT.GET.OBJ_object-store.>", "cairn.admin.repair", "cairn.keys", "cairn.graphs",
			// The snapshot index the read-only tools look snapshots up in.
			"$JS.API.STREAM.INFO.KV_" + persistence.SnapshotIndexBucket("object-store"),
			"$JS.API.DIRECT.GET.KV_" + persistence.SnapshotIndexBucket("object-store") + ".>"},
			[]string{"$JS.API.>", "$JS.API.STREAM.PURGE.event-store"}},
		{auth.User{Role: auth.Adapter, Graphs: []string{"org"}, Sources: []string{"hr.people"}},
			[]string{"cairn.command.org", "cairn.query.org", "$JS.API.STREAM.NAMES", "hr.people.dead", "hr.people",
				"cairn.admin.adapter-stream", "$JS.API.STREAM.INFO.ADAPTER_LOCATIONS",
				"$JS.API.CONSUMER.CREATE.ADAPTER_PEOPLE.adapter_people_org.hr.people",
				"$JS.API.CONSUMER.MSG.NEXT.ADAPTER_PEOPLE.adapter_people_org", "$JS.ACK.ADAPTER_PEOPLE.adapter_people_org.>"},
			[]string{"cairn.command.*", "cairn.command", "$JS.API.INFO", "$JS.API.STREAM.INFO.event-store", "hr.>",
				"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.CREATE.ADAPTER_PEOPLE", "$JS.API.STREAM.UPDATE.ADAPTER_PEOPLE",
				"$JS.API.CONSUMER.CREATE.ADAPTER_PEOPLE.>"}},
		// An adapter given the engine's streams gets none of them.
		{auth.User{Role: auth.Adapter, Graphs: []string{"org"}, Sources: []string{"hr.people"}, Streams: []string{"event-store", "HR"}},
			[]string{"$JS.API.STREAM.INFO.HR", "$JS.API.CONSUMER.MSG.NEXT.HR.adapter_organisations_org"},
			[]string{"$JS.API.STREAM.CREATE.HR", "$JS.API.STREAM.CREATE.event-store", "$JS.API.STREAM.INFO.event-store",
				"$JS.API.CONSUMER.MSG.NEXT.event-store.adapter_people_org", "$JS.API.STREAM.CREATE.ADAPTER_PEOPLE"}},
	} {
		p := c.user.Permissions("me", s)
		for _, a := range c.allow {
			if !slices.Contains(p.Publish.Allow, a) {
				t.Errorf("%s %v: %s not allowed", c.user.Role, c.user.Graphs, a)
			}
		}
		for _, a := range c.no {
			if slices.Contains(p.Publish.Allow, a) {
				t.Errorf("%s %v: %s allowed", c.user.Role, c.user.Graphs, a)
			}
		}
		// The engine's streams stay out of reach: no role may create any
		// stream (its subjects are in the body, which permissions do not
		// see), and an adapter may not consume the engine's, whatever its
		// allow list says.
		deny := []string{"$JS.API.STREAM.CREATE.>"}
		if c.user.Role == auth.Adapter {
			deny = append(deny, "$JS.API.CONSUMER.CREATE.event-store.>", "$JS.API.CONSUMER.MSG.NEXT.event-store.>")
		}
		for _, d := range append(deny, "cairn.events.>", "$O.>", "$KV.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.PURGE.>",
			"$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.MSG.DELETE.>", "$JS.API.CONSUMER.DURABLE.>") {
			if !slices.Contains(p.Publish.Deny, d) {
				t.Errorf("%s: publishing to %s not denied", c.user.Role, d)
			}
		}
		for _, d := range []string{"cairn.graphs", "cairn.admin.adapter-stream"} {
			if !slices.Contains(p.Subscribe.Deny, d) {
				t.Errorf("%s: subscribing to %s (answering it) not denied", c.user.Role, d)
			}
		}
		if !slices.Equal(p.Subscribe.Allow, []string{"_INBOX.me.>"}) {
			t.Errorf("%s: subscribe allow %v", c.user.Role, p.Subscribe.Allow)
		}
	}
}

// TestCheckAdapterStream: the engine creates an adapter's stream only
// under its own name and within its own sources, never capturing the
// engine's, JetStream's or the inboxes' subjects.
func TestCheckAdapterStream(t *testing.T) {
	s := auth.Streams{Events: "event-store", EventSubjects: "cairn.events", Objects: "object-store"}
	hr := auth.User{Name: "hr", Role: auth.Adapter, Graphs: []string{"org"}, Sources: []string{"hr.people", "hr.sites.*", "hr.feeds.>"},
		Streams: []string{"HR", "event-store"}}
	events := auth.User{Name: "ev", Role: auth.Adapter, Graphs: []string{"org"}, Sources: []string{"ev.x"}}
	for _, c := range []struct {
		user     auth.User
		stream   string
		subjects []string
		want     error
	}{
		{hr, "HR", []string{"hr.people"}, nil},
		{hr, "HR", []string{"hr.people", "hr.sites.london", "hr.sites.*", "hr.feeds.a.b", "hr.feeds.*", "hr.feeds.>"}, nil},
		{events, "ADAPTER_PEOPLE", []string{"ev.x"}, nil}, // the default streams
		{hr, "HR", []string{"hr.sites.>"}, auth.ErrDenied},
		{hr, "HR", []string{"hr.sites"}, auth.ErrDenied},
		{hr, "HR", []string{"hr.feeds"}, auth.ErrDenied},
		{hr, "HR", []string{"hr.people.x"}, auth.ErrDenied},
		{hr, "HR", []string{"hr.people", "crm.people"}, auth.ErrDenied},
		{hr, "ADAPTER_PEOPLE", []string{"hr.people"}, auth.ErrDenied}, // not in its list
		{hr, "event-store", []string{"hr.people"}, auth.ErrDenied},    // the engine's
		{hr, "HR", []string{"cairn.command.*"}, auth.ErrBadSubject},
		{hr, "HR", []string{"cairn.events.org"}, auth.ErrBadSubject},
		{hr, "HR", []string{"$KV.x.y"}, auth.ErrBadSubject},
		{hr, "HR", []string{"_INBOX.hr.x"}, auth.ErrBadSubject},
		{hr, "HR", []string{">"}, auth.ErrBadSubject},
		{hr, "HR", []string{"*.people"}, auth.ErrBadSubject},
		{hr, "HR", []string{"hr..people"}, auth.ErrBadSubject},
		{hr, "HR", nil, auth.ErrBadSubject},
		{auth.User{Name: "w", Role: auth.Writer}, "HR", []string{"hr.people"}, auth.ErrDenied},
		{auth.User{Name: "a", Role: auth.Admin}, "HR", []string{"hr.people"}, auth.ErrDenied},
	} {
		err := c.user.CheckAdapterStream(c.stream, c.subjects, s)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s asks for %s capturing %v: %v, want %v", c.user.Name, c.stream, c.subjects, err, c.want)
		}
	}
}
