package adapter

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The relationship vocabulary the adapters write with: node categories and
// edge types (the engine adds each edge's partner, "<edge id>/inverse").
const (
	CategoryPerson       = "person"
	CategoryOrganisation = "organisation"
	CategoryLocation     = "location"

	EdgeKnows     = "knows"
	EdgeWorksFor  = "works_for"
	EdgeManages   = "manages"
	EdgeLivesIn   = "lives_in"
	EdgeLocatedIn = "located_in"
	EdgePartOf    = "part_of"
)

// The components an adapter keeps on every node it upserts: the source
// event that last set it and when that event happened (RFC 3339, UTC, with
// nanoseconds). An upsert not newer than them is skipped.
const (
	ComponentSourceEvent = "source_event"
	ComponentSourceTime  = "source_time"
)

// MaxEntityIDLen bounds event ids and entity ids, so that every node id,
// edge id and command id derived from them stays within the engine's
// limits.
const MaxEntityIDLen = 100

// Format is how source events are encoded.
type Format string

// The formats: protojson (the JSON form of DomainEvent) or its protobuf
// encoding.
const (
	FormatJSON     Format = "json"
	FormatProtobuf Format = "protobuf"
)

// Decode parses one source event in format f. The error is an
// *UnmappableError naming what is wrong.
func Decode(f Format, data []byte) (*cairnv1.DomainEvent, error) {
	ev := &cairnv1.DomainEvent{}
	var err error
	switch f {
	case FormatJSON:
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, ev)
	case FormatProtobuf:
		err = proto.Unmarshal(data, ev)
	default:
		return nil, fmt.Errorf("adapter: unknown format %q", f)
	}
	if err != nil {
		return nil, &UnmappableError{Reason: ReasonUndecodable, Err: fmt.Errorf("not a %s DomainEvent: %w", f, err)}
	}
	return ev, nil
}

// actionKind is what an event does to the graph.
type actionKind int

const (
	actUpsert     actionKind = iota + 1 // AddNode, or SetNodeComponents when newer
	actRemove                           // RemoveNode; an absent node is a duplicate
	actConnect                          // ConnectNodes; an existing edge is a duplicate
	actDisconnect                       // DisconnectNodes; an absent edge is a duplicate
)

// action is one event's effect on the graph.
type action struct {
	kind       actionKind
	node       string // upsert, remove
	category   string // upsert
	components []*cairnv1.Component
	at         time.Time // upsert: the event's occurred_at
	eventID    string

	edgeID, source, target, edgeType string // connect, disconnect
}

// Kind is one adapter: its name and the event types it maps.
type Kind struct {
	// Name is "people", "organisations" or "locations".
	Name string
	// Events are the DomainEvent oneof field names it maps.
	Events []string
}

// Kinds are the adapters, by name.
var kinds = []Kind{
	{Name: "people", Events: []string{"person_upserted", "person_removed", "person_employed", "person_knows", "person_manages", "person_lives_in"}},
	{Name: "organisations", Events: []string{"organisation_upserted", "organisation_removed", "organisation_located_in", "organisation_part_of"}},
	{Name: "locations", Events: []string{"location_upserted", "location_removed", "location_part_of"}},
}

// Kinds returns the adapters and the event types each maps.
func Kinds() []Kind {
	out := make([]Kind, len(kinds))
	for i, k := range kinds {
		out[i] = Kind{Name: k.Name, Events: append([]string(nil), k.Events...)}
	}
	return out
}

// kindOf returns the adapter named name.
func kindOf(name string) (Kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// EventType is the event's type: the name of the DomainEvent oneof field
// it sets ("person_upserted"), empty when none is set.
func EventType(ev *cairnv1.DomainEvent) string {
	od := ev.ProtoReflect().Descriptor().Oneofs().ByName("event")
	fd := ev.ProtoReflect().WhichOneof(od)
	if fd == nil {
		return ""
	}
	return string(fd.Name())
}

// NodeID is the node an entity of category becomes: "person:alice".
func NodeID(category, id string) string { return category + ":" + id }

// EdgeID is the id of the edge of type t from node source to node target:
// "works_for:person:alice:organisation:acme".
func EdgeID(t, source, target string) string { return t + ":" + source + ":" + target }

// mapEvent turns ev into its action for the adapter kind. A malformed
// event is an *UnmappableError; an event of another adapter's domain is
// one too, with ReasonOtherDomain.
func mapEvent(k Kind, ev *cairnv1.DomainEvent) (action, error) {
	t := EventType(ev)
	if t == "" {
		return action{}, unmappable(ReasonUnknownType, "the event sets no known type (an empty or newer DomainEvent)")
	}
	mine := false
	for _, e := range k.Events {
		mine = mine || e == t
	}
	if !mine {
		return action{}, unmappable(ReasonOtherDomain, "%s is not a %s event", t, k.Name)
	}
	if err := checkID("id", ev.GetId()); err != nil {
		return action{}, err
	}
	if ev.GetOccurredAt() == nil {
		return action{}, unmappable(ReasonInvalid, "occurred_at is missing")
	}
	if err := ev.GetOccurredAt().CheckValid(); err != nil {
		return action{}, unmappable(ReasonInvalid, "occurred_at: %v", err)
	}
	a := action{eventID: ev.GetId(), at: ev.GetOccurredAt().AsTime()}
	var err error
	switch e := ev.GetEvent().(type) {
	case *cairnv1.DomainEvent_PersonUpserted:
		p := e.PersonUpserted
		err = a.upsert(CategoryPerson, "person_upserted.person_id", p.GetPersonId(), p.GetName(), p.GetAttributes(), "email", p.GetEmail())
	case *cairnv1.DomainEvent_PersonRemoved:
		err = a.remove(CategoryPerson, "person_removed.person_id", e.PersonRemoved.GetPersonId())
	case *cairnv1.DomainEvent_PersonEmployed:
		p := e.PersonEmployed
		err = a.relate(p.GetEnded(), EdgeWorksFor,
			end{CategoryPerson, "person_employed.person_id", p.GetPersonId()},
			end{CategoryOrganisation, "person_employed.organisation_id", p.GetOrganisationId()})
		if err == nil && p.GetRole() != "" && !p.GetEnded() {
			a.components = []*cairnv1.Component{{Type: "role", Value: []byte(p.GetRole())}}
		}
	case *cairnv1.DomainEvent_PersonKnows:
		p := e.PersonKnows
		from := end{CategoryPerson, "person_knows.person_id", p.GetPersonId()}
		to := end{CategoryPerson, "person_knows.other_person_id", p.GetOtherPersonId()}
		if to.id < from.id { // symmetric: one edge whichever way it is told
			from, to = to, from
		}
		err = a.relate(p.GetEnded(), EdgeKnows, from, to)
	case *cairnv1.DomainEvent_PersonManages:
		p := e.PersonManages
		err = a.relate(p.GetEnded(), EdgeManages,
			end{CategoryPerson, "person_manages.manager_id", p.GetManagerId()},
			end{CategoryPerson, "person_manages.report_id", p.GetReportId()})
	case *cairnv1.DomainEvent_PersonLivesIn:
		p := e.PersonLivesIn
		err = a.relate(p.GetEnded(), EdgeLivesIn,
			end{CategoryPerson, "person_lives_in.person_id", p.GetPersonId()},
			end{CategoryLocation, "person_lives_in.location_id", p.GetLocationId()})
	case *cairnv1.DomainEvent_OrganisationUpserted:
		o := e.OrganisationUpserted
		err = a.upsert(CategoryOrganisation, "organisation_upserted.organisation_id", o.GetOrganisationId(), o.GetName(), o.GetAttributes())
	case *cairnv1.DomainEvent_OrganisationRemoved:
		err = a.remove(CategoryOrganisation, "organisation_removed.organisation_id", e.OrganisationRemoved.GetOrganisationId())
	case *cairnv1.DomainEvent_OrganisationLocatedIn:
		o := e.OrganisationLocatedIn
		err = a.relate(o.GetEnded(), EdgeLocatedIn,
			end{CategoryOrganisation, "organisation_located_in.organisation_id", o.GetOrganisationId()},
			end{CategoryLocation, "organisation_located_in.location_id", o.GetLocationId()})
	case *cairnv1.DomainEvent_OrganisationPartOf:
		o := e.OrganisationPartOf
		err = a.relate(o.GetEnded(), EdgePartOf,
			end{CategoryOrganisation, "organisation_part_of.organisation_id", o.GetOrganisationId()},
			end{CategoryOrganisation, "organisation_part_of.parent_id", o.GetParentId()})
	case *cairnv1.DomainEvent_LocationUpserted:
		l := e.LocationUpserted
		err = a.upsert(CategoryLocation, "location_upserted.location_id", l.GetLocationId(), l.GetName(), l.GetAttributes(), "kind", l.GetKind())
	case *cairnv1.DomainEvent_LocationRemoved:
		err = a.remove(CategoryLocation, "location_removed.location_id", e.LocationRemoved.GetLocationId())
	case *cairnv1.DomainEvent_LocationPartOf:
		l := e.LocationPartOf
		err = a.relate(l.GetEnded(), EdgePartOf,
			end{CategoryLocation, "location_part_of.location_id", l.GetLocationId()},
			end{CategoryLocation, "location_part_of.parent_id", l.GetParentId()})
	default:
		return action{}, unmappable(ReasonUnknownType, "event type %s has no mapping", t)
	}
	return a, err
}

// end is one end of a relation: its category, the field naming it and the
// entity id.
type end struct{ category, field, id string }

func (a *action) relate(ended bool, edgeType string, from, to end) error {
	for _, e := range [...]end{from, to} {
		if err := checkID(e.field, e.id); err != nil {
			return err
		}
	}
	a.kind = actConnect
	if ended {
		a.kind = actDisconnect
	}
	a.edgeType = edgeType
	a.source, a.target = NodeID(from.category, from.id), NodeID(to.category, to.id)
	a.edgeID = EdgeID(edgeType, a.source, a.target)
	return nil
}

func (a *action) remove(category, field, id string) error {
	if err := checkID(field, id); err != nil {
		return err
	}
	a.kind, a.node = actRemove, NodeID(category, id)
	return nil
}

// reserved component types, which attributes may not name.
var reserved = map[string]bool{"name": true, "email": true, "kind": true, ComponentSourceEvent: true, ComponentSourceTime: true}

// upsert maps an upsert: name is required; extra holds optional (type,
// value) pairs, set when the value is not empty.
func (a *action) upsert(category, field, id, name string, attrs map[string]string, extra ...string) error {
	if err := checkID(field, id); err != nil {
		return err
	}
	prefix, _, _ := strings.Cut(field, ".")
	if name == "" {
		return unmappable(ReasonInvalid, "%s.name is missing", prefix)
	}
	a.kind, a.node, a.category = actUpsert, NodeID(category, id), category
	a.components = []*cairnv1.Component{{Type: "name", Value: []byte(name)}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] != "" {
			a.components = append(a.components, &cairnv1.Component{Type: extra[i], Value: []byte(extra[i+1])})
		}
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a deterministic envelope: its content hash is the retry's
	for _, k := range keys {
		if !validAttr(k) {
			return unmappable(ReasonInvalid, "%s.attributes key %q: want 1-64 bytes of letters, digits, '-', '_' or '.'", prefix, k)
		}
		if reserved[k] {
			return unmappable(ReasonInvalid, "%s.attributes key %q is reserved", prefix, k)
		}
		a.components = append(a.components, &cairnv1.Component{Type: k, Value: []byte(attrs[k])})
	}
	a.components = append(a.components,
		&cairnv1.Component{Type: ComponentSourceEvent, Value: []byte(a.eventID)},
		&cairnv1.Component{Type: ComponentSourceTime, Value: []byte(a.at.UTC().Format(time.RFC3339Nano))})
	return nil
}

// checkID checks an event or entity id: 1-MaxEntityIDLen bytes of letters,
// digits and "-_.:@+".
func checkID(field, id string) error {
	if id == "" {
		return unmappable(ReasonInvalid, "%s is missing", field)
	}
	if len(id) > MaxEntityIDLen {
		return unmappable(ReasonInvalid, "%s is %d bytes long; the limit is %d", field, len(id), MaxEntityIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:@+", c) >= 0) {
			return unmappable(ReasonInvalid, "%s %q has %q at byte %d; only letters, digits and \"-_.:@+\" are allowed", field, id, rune(c), i)
		}
	}
	return nil
}

func validAttr(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// newer reports whether an upsert at (at, id) is newer than the version a
// node holds in its components; a node with no version is older than any.
func newer(at time.Time, id string, comps []*cairnv1.Component) bool {
	var hasT bool
	var t time.Time
	var e string
	for _, c := range comps {
		switch c.GetType() {
		case ComponentSourceTime:
			p, err := time.Parse(time.RFC3339Nano, string(c.GetValue()))
			t, hasT = p, err == nil
		case ComponentSourceEvent:
			e = string(c.GetValue())
		}
	}
	if !hasT {
		return true
	}
	if !at.Equal(t) {
		return at.After(t)
	}
	return id > e
}
