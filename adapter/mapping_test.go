package adapter

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

func TestMapEvent(t *testing.T) {
	people, _ := kindOf("people")
	orgs, _ := kindOf("organisations")
	cases := []struct {
		name   string
		kind   Kind
		json   string
		reason string // "" when it maps
		want   string // action summary
	}{
		{"upsert", people, `{"id":"e1","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"alice","name":"Alice","attributes":{"b":"2","a":"1"}}}`, "",
			"upsert person:alice person [name=Alice a=1 b=2 source_event=e1 source_time=2025-03-01T09:00:00Z]"},
		{"knows ordered", people, `{"id":"e2","occurredAt":"2025-03-01T09:00:00Z","personKnows":{"personId":"bob","otherPersonId":"alice"}}`, "",
			"connect knows:person:alice:person:bob person:alice->person:bob knows []"},
		{"employed with role", people, `{"id":"e3","occurredAt":"2025-03-01T09:00:00Z","personEmployed":{"personId":"a","organisationId":"o","role":"cto"}}`, "",
			"connect works_for:person:a:organisation:o person:a->organisation:o works_for [role=cto]"},
		{"employment ended", people, `{"id":"e4","occurredAt":"2025-03-01T09:00:00Z","personEmployed":{"personId":"a","organisationId":"o","role":"cto","ended":true}}`, "",
			"disconnect works_for:person:a:organisation:o person:a->organisation:o works_for []"},
		{"org part of", orgs, `{"id":"e5","occurredAt":"2025-03-01T09:00:00Z","organisationPartOf":{"organisationId":"lab","parentId":"acme"}}`, "",
			"connect part_of:organisation:lab:organisation:acme organisation:lab->organisation:acme part_of []"},
		{"removed", orgs, `{"id":"e6","occurredAt":"2025-03-01T09:00:00Z","organisationRemoved":{"organisationId":"acme"}}`, "", "remove organisation:acme"},
		{"other domain", people, `{"id":"e7","occurredAt":"2025-03-01T09:00:00Z","organisationRemoved":{"organisationId":"acme"}}`, ReasonOtherDomain, ""},
		{"no type", people, `{"id":"e8","occurredAt":"2025-03-01T09:00:00Z"}`, ReasonUnknownType, ""},
		{"no id", people, `{"occurredAt":"2025-03-01T09:00:00Z","personRemoved":{"personId":"a"}}`, ReasonInvalid, ""},
		{"long id", people, `{"id":"` + strings.Repeat("x", 101) + `","occurredAt":"2025-03-01T09:00:00Z","personRemoved":{"personId":"a"}}`, ReasonInvalid, ""},
		{"slash in id", people, `{"id":"e9","occurredAt":"2025-03-01T09:00:00Z","personRemoved":{"personId":"a/inverse"}}`, ReasonInvalid, ""},
		{"no time", people, `{"id":"e10","personRemoved":{"personId":"a"}}`, ReasonInvalid, ""},
		{"no name", people, `{"id":"e11","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"a"}}`, ReasonInvalid, ""},
		{"reserved attribute", people, `{"id":"e12","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"a","name":"A","attributes":{"source_time":"x"}}}`, ReasonInvalid, ""},
		{"bad attribute", people, `{"id":"e13","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"a","name":"A","attributes":{"a b":"x"}}}`, ReasonInvalid, ""},
		{"no target", people, `{"id":"e14","occurredAt":"2025-03-01T09:00:00Z","personManages":{"managerId":"a"}}`, ReasonInvalid, ""},
		{"bad json", people, `{"id":`, ReasonUndecodable, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := Decode(FormatJSON, []byte(c.json))
			var a action
			if err == nil {
				a, err = mapEvent(c.kind, ev)
			}
			var ue *UnmappableError
			if c.reason != "" {
				if !errors.As(err, &ue) || ue.Reason != c.reason {
					t.Fatalf("err %v, want reason %s", err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(a); got != c.want {
				t.Errorf("\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func summary(a action) string {
	var cs []string
	for _, c := range a.components {
		cs = append(cs, c.GetType()+"="+string(c.GetValue()))
	}
	comps := "[" + strings.Join(cs, " ") + "]"
	switch a.kind {
	case actUpsert:
		return "upsert " + a.node + " " + a.category + " " + comps
	case actRemove:
		return "remove " + a.node
	case actConnect:
		return "connect " + a.edgeID + " " + a.source + "->" + a.target + " " + a.edgeType + " " + comps
	case actDisconnect:
		return "disconnect " + a.edgeID + " " + a.source + "->" + a.target + " " + a.edgeType + " " + comps
	}
	return "?"
}

// TestJSONIsProtobuf: the JSON form and the protobuf encoding of one event
// map to the same action.
func TestJSONIsProtobuf(t *testing.T) {
	people, _ := kindOf("people")
	j := `{"id":"e1","occurredAt":"2025-03-01T09:00:00.5Z","personUpserted":{"personId":"alice","name":"Alice","email":"a@x"}}`
	ev, err := Decode(FormatJSON, []byte(j))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(ev)
	ev2, err := Decode(FormatProtobuf, b)
	if err != nil {
		t.Fatal(err)
	}
	a1, err1 := mapEvent(people, ev)
	a2, err2 := mapEvent(people, ev2)
	if err1 != nil || err2 != nil || summary(a1) != summary(a2) {
		t.Fatalf("json %s (%v), protobuf %s (%v)", summary(a1), err1, summary(a2), err2)
	}
}

func TestNewer(t *testing.T) {
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	held := []*cairnv1.Component{{Type: ComponentSourceTime, Value: []byte("2025-03-01T09:00:00Z")}, {Type: ComponentSourceEvent, Value: []byte("e5")}}
	for _, c := range []struct {
		at   time.Time
		id   string
		want bool
	}{
		{at.Add(time.Nanosecond), "e1", true},
		{at.Add(-time.Second), "e9", false},
		{at, "e5", false}, // the same event again
		{at, "e6", true},  // a tie broken by id
		{at, "e4", false},
	} {
		if got := newer(c.at, c.id, held); got != c.want {
			t.Errorf("newer(%s, %s) = %v, want %v", c.at, c.id, got, c.want)
		}
	}
	if !newer(at, "e1", nil) {
		t.Error("a node without a version is older than any event")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig("people", "hr.people", "g")
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if d := ok.withDefaults(); d.DeadLetter != "hr.people.dead" || d.Durable != "adapter_people_g" {
		t.Errorf("defaults: %q %q", d.DeadLetter, d.Durable)
	}
	for _, c := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"kind", func(c *Config) { c.Kind = "pets" }, `adapter "pets"`},
		{"from", func(c *Config) { c.From = "a..b" }, "not a NATS subject"},
		{"wildcard needs dead letter", func(c *Config) { c.From = "hr.>" }, "--dead-letter"},
		{"dead letter read back", func(c *Config) { c.From = "hr.>"; c.DeadLetter = "hr.dead" }, "would come back"},
		{"graph", func(c *Config) { c.Graph = "a.b" }, "graph id"},
		{"format", func(c *Config) { c.Format = "xml" }, "format"},
		{"attempts", func(c *Config) { c.MaxAttempts = 0 }, "max attempts"},
		{"batch", func(c *Config) { c.Batch = 0 }, "batch"},
		{"durable", func(c *Config) { c.Durable = "a.b" }, "durable"},
	} {
		cfg := ok
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}
}

// FuzzDecodeMap: any bytes decode and map without a panic, and whatever
// maps gives ids and a command id the engine accepts.
func FuzzDecodeMap(f *testing.F) {
	for _, s := range []string{
		`{"id":"e1","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"alice","name":"Alice","attributes":{"a":"1"}}}`,
		`{"id":"e2","occurredAt":"2025-03-01T09:00:00Z","personKnows":{"personId":"b","otherPersonId":"a"}}`,
		`{"id":"e3","occurredAt":"2025-03-01T09:00:00Z","personLivesIn":{"personId":"b","locationId":"x","ended":true}}`,
		`{"id":`,
	} {
		f.Add([]byte(s), false)
		ev, _ := Decode(FormatJSON, []byte(s))
		b, _ := proto.Marshal(ev)
		f.Add(b, true)
	}
	people, _ := kindOf("people")
	a := &Adapter{cfg: Config{Kind: "people"}}
	f.Fuzz(func(t *testing.T, data []byte, pb bool) {
		format := FormatJSON
		if pb {
			format = FormatProtobuf
		}
		ev, err := Decode(format, data)
		if err != nil {
			return
		}
		act, err := mapEvent(people, ev)
		if err != nil {
			var ue *UnmappableError
			if !errors.As(err, &ue) {
				t.Fatalf("not an UnmappableError: %v", err)
			}
			return
		}
		for _, id := range []string{act.node, act.edgeID, act.source, act.target} {
			if id != "" {
				if err := aggregate.ValidateID("id", "id", id); err != nil {
					t.Fatalf("%s: %v (event %s)", id, err, protojson.Format(ev))
				}
			}
		}
		if id := a.commandID(act.eventID, "/set"); len(id) > aggregate.MaxCommandIDLen {
			t.Fatalf("command id %d bytes long", len(id))
		}
	})
}
