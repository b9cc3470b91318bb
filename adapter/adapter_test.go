package adapter

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/internal/enginetest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// env is an engine with NATS on a port and a client connection of its own.
type env struct {
	eng *cairn.Engine
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	eng := enginetest.Open(t, "127.0.0.1:0")
	return &env{eng: eng, nc: connect(t, eng), js: mustJS(t, connect(t, eng))}
}

func connect(t *testing.T, eng *cairn.Engine) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(eng.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func mustJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// testConfig is a config with short delays, for tests.
func testConfig(kind, from, graph string) Config {
	cfg := DefaultConfig(kind, from, graph)
	cfg.CreateGraph = true
	// An event naming an entity another adapter has not written yet is
	// retried every 20 ms doubling to 200 ms, for up to a minute: on a
	// loaded machine the other adapters may take seconds to catch up, and
	// a back-off growing to its default 30 s would outlast drained's wait.
	cfg.RetryDelay = 20 * time.Millisecond
	cfg.MaxRetryDelay = 200 * time.Millisecond
	cfg.MaxAttempts = 300
	cfg.AckWait = 500 * time.Millisecond
	cfg.ProgressEvery = 100 * time.Millisecond
	return cfg
}

// stream creates the stream for cfg, as the adapter would, so that events
// published before it starts are kept.
func (e *env) stream(t *testing.T, cfg Config) string {
	t.Helper()
	name, err := EnsureStream(context.Background(), e.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// ev builds a DomainEvent at t0 + minute minutes.
// e is one of the DomainEvent_* oneof wrappers.
func ev(id string, minute int, e any) *cairnv1.DomainEvent {
	d := &cairnv1.DomainEvent{Id: id, OccurredAt: timestamppb.New(t0.Add(time.Duration(minute) * time.Minute))}
	reflect.ValueOf(d).Elem().FieldByName("Event").Set(reflect.ValueOf(e))
	return d
}

func (e *env) publish(t *testing.T, subject string, f Format, events ...*cairnv1.DomainEvent) {
	t.Helper()
	for _, x := range events {
		var data []byte
		var err error
		if f == FormatJSON {
			data, err = protojson.Marshal(x)
		} else {
			data, err = proto.Marshal(x)
		}
		if err != nil {
			t.Fatal(err)
		}
		e.publishRaw(t, subject, data)
	}
}

func (e *env) publishRaw(t *testing.T, subject string, data []byte) {
	t.Helper()
	if _, err := e.js.Publish(context.Background(), subject, data); err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
}

// running is an adapter running in a goroutine.
type running struct {
	a      *Adapter
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, nc *nats.Conn, cfg Config) *running {
	t.Helper()
	a, err := New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startAdapter(t, a)
}

func startAdapter(t *testing.T, a *Adapter) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// stop ends the adapter and returns Run's error and the final stats.
func (r *running) stop(t *testing.T) Stats {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- nil // for Cleanup
		if err != nil {
			t.Fatalf("adapter %s: %v", r.a.cfg.Kind, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("adapter %s did not stop", r.a.cfg.Kind)
	}
	return r.a.Stats()
}

// drained waits until the consumer of cfg has every event of its stream
// acked: nothing pending, nothing awaiting an ack.
func (e *env) drained(t *testing.T, stream string, cfg Config, rs ...*running) {
	t.Helper()
	cfg = cfg.withDefaults()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := e.js.Consumer(context.Background(), stream, cfg.Durable)
		if err == nil {
			info, err := c.Info(context.Background())
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0 {
				return
			}
		}
		for _, r := range rs {
			select {
			case err := <-r.done:
				r.done <- err
				t.Fatalf("adapter %s stopped before draining %s: %v", r.a.cfg.Kind, stream, err)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s on %s did not drain within 60 s", cfg.Durable, stream)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) query(t *testing.T, graph string, minSeq uint64, q *cairnv1.QueryRequest) *cairnv1.QueryReply {
	t.Helper()
	q.GraphId, q.MinSeq = graph, minSeq
	rep, err := e.eng.Query(context.Background(), q)
	if err != nil && rep == nil {
		t.Fatalf("query: %v", err)
	}
	return rep
}

func (e *env) node(t *testing.T, graph string, seq uint64, id string) *cairnv1.NodeView {
	t.Helper()
	rep := e.query(t, graph, seq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: id}}})
	if rep.GetError() != nil {
		t.Fatalf("get node %s: %v", id, rep.GetError())
	}
	return rep.GetNode()
}

func (e *env) absent(t *testing.T, graph string, seq uint64, id string) {
	t.Helper()
	rep := e.query(t, graph, seq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: id}}})
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
		t.Fatalf("node %s: want NOT_FOUND, got %v (node %v)", id, rep.GetError(), rep.GetNode())
	}
}

// out lists the edges out of id as "edge_id type -> node", sorted; the
// relationship type's partner edges (<edge>/inverse) included.
func (e *env) out(t *testing.T, graph string, seq uint64, id string) []string {
	t.Helper()
	rep := e.query(t, graph, seq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ListNeighbors{ListNeighbors: &cairnv1.ListNeighbors{NodeId: id, Direction: cairnv1.Direction_DIRECTION_OUT, Limit: 1000}}})
	if rep.GetError() != nil {
		t.Fatalf("neighbours of %s: %v", id, rep.GetError())
	}
	var s []string
	for _, n := range rep.GetNeighbors().GetNeighbors() {
		s = append(s, n.GetEdgeId()+" "+n.GetEdgeType()+" -> "+n.GetNodeId())
	}
	slices.Sort(s)
	return s
}

func (e *env) stats(t *testing.T, graph string, seq uint64) *cairnv1.GraphStats {
	t.Helper()
	rep := e.query(t, graph, seq, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
	if rep.GetError() != nil {
		t.Fatalf("stats of %s: %v", graph, rep.GetError())
	}
	return rep.GetStats()
}

func comps(n *cairnv1.NodeView) map[string]string {
	m := map[string]string{}
	for _, c := range n.GetComponents() {
		m[c.GetType()] = string(c.GetValue())
	}
	return m
}

// hr are the source events of a small company, by domain.
func hr() (locations, organisations, people []*cairnv1.DomainEvent) {
	locations = []*cairnv1.DomainEvent{
		ev("loc-1", 0, &cairnv1.DomainEvent_LocationUpserted{LocationUpserted: &cairnv1.LocationUpserted{LocationId: "uk", Name: "United Kingdom", Kind: "country"}}),
		ev("loc-2", 1, &cairnv1.DomainEvent_LocationUpserted{LocationUpserted: &cairnv1.LocationUpserted{LocationId: "oxford", Name: "Oxford", Kind: "city", Attributes: map[string]string{"population": "162100"}}}),
		ev("loc-3", 2, &cairnv1.DomainEvent_LocationPartOf{LocationPartOf: &cairnv1.LocationPartOf{LocationId: "oxford", ParentId: "uk"}}),
	}
	organisations = []*cairnv1.DomainEvent{
		ev("org-1", 0, &cairnv1.DomainEvent_OrganisationUpserted{OrganisationUpserted: &cairnv1.OrganisationUpserted{OrganisationId: "acme", Name: "Acme Ltd"}}),
		ev("org-2", 1, &cairnv1.DomainEvent_OrganisationUpserted{OrganisationUpserted: &cairnv1.OrganisationUpserted{OrganisationId: "acme-labs", Name: "Acme Labs"}}),
		ev("org-3", 2, &cairnv1.DomainEvent_OrganisationPartOf{OrganisationPartOf: &cairnv1.OrganisationPartOf{OrganisationId: "acme-labs", ParentId: "acme"}}),
		ev("org-4", 3, &cairnv1.DomainEvent_OrganisationLocatedIn{OrganisationLocatedIn: &cairnv1.OrganisationLocatedIn{OrganisationId: "acme", LocationId: "oxford"}}),
	}
	people = []*cairnv1.DomainEvent{
		ev("hr-1", 0, &cairnv1.DomainEvent_PersonUpserted{PersonUpserted: &cairnv1.PersonUpserted{PersonId: "alice", Name: "Alice", Email: "alice@acme.example", Attributes: map[string]string{"team": "graph"}}}),
		ev("hr-2", 1, &cairnv1.DomainEvent_PersonUpserted{PersonUpserted: &cairnv1.PersonUpserted{PersonId: "bob", Name: "Bob"}}),
		ev("hr-3", 2, &cairnv1.DomainEvent_PersonUpserted{PersonUpserted: &cairnv1.PersonUpserted{PersonId: "carol", Name: "Carol"}}),
		ev("hr-4", 3, &cairnv1.DomainEvent_PersonEmployed{PersonEmployed: &cairnv1.PersonEmployed{PersonId: "alice", OrganisationId: "acme", Role: "engineer"}}),
		ev("hr-5", 4, &cairnv1.DomainEvent_PersonEmployed{PersonEmployed: &cairnv1.PersonEmployed{PersonId: "bob", OrganisationId: "acme-labs"}}),
		// told twice, both ways round: one edge
		ev("hr-6", 5, &cairnv1.DomainEvent_PersonKnows{PersonKnows: &cairnv1.PersonKnows{PersonId: "bob", OtherPersonId: "alice"}}),
		ev("hr-7", 6, &cairnv1.DomainEvent_PersonKnows{PersonKnows: &cairnv1.PersonKnows{PersonId: "alice", OtherPersonId: "bob"}}),
		ev("hr-8", 7, &cairnv1.DomainEvent_PersonManages{PersonManages: &cairnv1.PersonManages{ManagerId: "alice", ReportId: "bob"}}),
		ev("hr-9", 8, &cairnv1.DomainEvent_PersonLivesIn{PersonLivesIn: &cairnv1.PersonLivesIn{PersonId: "alice", LocationId: "oxford"}}),
		// an update, then a stale one (older occurred_at) that must not win
		ev("hr-10", 9, &cairnv1.DomainEvent_PersonUpserted{PersonUpserted: &cairnv1.PersonUpserted{PersonId: "alice", Name: "Alice Liddell", Attributes: map[string]string{"team": "engine"}}}),
		ev("hr-11", 5, &cairnv1.DomainEvent_PersonUpserted{PersonUpserted: &cairnv1.PersonUpserted{PersonId: "alice", Name: "Alice (stale)"}}),
		// carol lives in oxford, then moves out; then leaves altogether
		ev("hr-12", 10, &cairnv1.DomainEvent_PersonLivesIn{PersonLivesIn: &cairnv1.PersonLivesIn{PersonId: "carol", LocationId: "oxford"}}),
		ev("hr-13", 11, &cairnv1.DomainEvent_PersonLivesIn{PersonLivesIn: &cairnv1.PersonLivesIn{PersonId: "carol", LocationId: "oxford", Ended: true}}),
		ev("hr-14", 12, &cairnv1.DomainEvent_PersonRemoved{PersonRemoved: &cairnv1.PersonRemoved{PersonId: "carol"}}),
	}
	return
}

// TestAdaptersWriteTheGraph runs the three adapters side by side on their
// subjects (locations in JSON, organisations in protobuf, people in JSON;
// people's relations name organisations and locations that other adapters
// write, so some wait for them) and checks the graph by queries.
func TestAdaptersWriteTheGraph(t *testing.T) {
	e := newEnv(t)
	const g = "company"
	locs, orgs, people := hr()
	cfgs := map[string]Config{
		"locations":     testConfig("locations", "src.locations", g),
		"organisations": testConfig("organisations", "src.organisations", g),
		"people":        testConfig("people", "src.people", g),
	}
	po := cfgs["organisations"]
	po.Format = FormatProtobuf
	cfgs["organisations"] = po
	streams := map[string]string{}
	for k, c := range cfgs {
		streams[k] = e.stream(t, c)
	}
	if streams["people"] != "ADAPTER_PEOPLE" {
		t.Fatalf("people's stream is %q, want ADAPTER_PEOPLE", streams["people"])
	}
	// People first, and started first: their relations wait for the
	// other adapters.
	e.publish(t, "src.people", FormatJSON, people...)
	rp := start(t, e.nc, cfgs["people"])
	e.publish(t, "src.organisations", FormatProtobuf, orgs...)
	e.publish(t, "src.locations", FormatJSON, locs...)
	ro := start(t, connect(t, e.eng), cfgs["organisations"])
	rl := start(t, connect(t, e.eng), cfgs["locations"])
	for k, c := range cfgs {
		e.drained(t, streams[k], c)
	}
	sp, so, sl := rp.stop(t), ro.stop(t), rl.stop(t)
	seq := max(sp.Seq, so.Seq, sl.Seq)

	alice := e.node(t, g, seq, "person:alice")
	if got := alice.GetCategories(); !slices.Equal(got, []string{"person"}) {
		t.Errorf("alice's categories: %v", got)
	}
	want := map[string]string{"name": "Alice Liddell", "email": "alice@acme.example", "team": "engine", "source_event": "hr-10", "source_time": "2025-03-01T09:09:00Z"}
	if got := comps(alice); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alice's components:\n got %v\nwant %v", got, want)
	}
	oxford := e.node(t, g, seq, "location:oxford")
	if got := comps(oxford); got["kind"] != "city" || got["population"] != "162100" || !slices.Equal(oxford.GetCategories(), []string{"location"}) {
		t.Errorf("oxford: %v %v", got, oxford.GetCategories())
	}
	if got := e.node(t, g, seq, "organisation:acme").GetCategories(); !slices.Equal(got, []string{"organisation"}) {
		t.Errorf("acme's categories: %v", got)
	}
	e.absent(t, g, seq, "person:carol")

	for node, want := range map[string][]string{
		"person:alice": {
			"knows:person:alice:person:bob knows -> person:bob",
			"lives_in:person:alice:location:oxford lives_in -> location:oxford",
			"manages:person:alice:person:bob manages -> person:bob",
			"works_for:person:alice:organisation:acme works_for -> organisation:acme",
		},
		// The relationship type's partners, kept by the engine.
		"person:bob": {
			"knows:person:alice:person:bob/inverse knows -> person:alice",
			"manages:person:alice:person:bob/inverse reports_to -> person:alice",
			"works_for:person:bob:organisation:acme-labs works_for -> organisation:acme-labs",
		},
		"organisation:acme-labs": {
			"part_of:organisation:acme-labs:organisation:acme part_of -> organisation:acme",
			"works_for:person:bob:organisation:acme-labs/inverse employs -> person:bob",
		},
		"organisation:acme": {
			"located_in:organisation:acme:location:oxford located_in -> location:oxford",
			"part_of:organisation:acme-labs:organisation:acme/inverse has_part -> organisation:acme-labs",
			"works_for:person:alice:organisation:acme/inverse employs -> person:alice",
		},
		"location:oxford": {
			"lives_in:person:alice:location:oxford/inverse home_of -> person:alice",
			"located_in:organisation:acme:location:oxford/inverse hosts -> organisation:acme",
			"part_of:location:oxford:location:uk part_of -> location:uk",
		},
	} {
		if got := e.out(t, g, seq, node); !slices.Equal(got, want) {
			t.Errorf("edges out of %s:\n got %q\nwant %q", node, got, want)
		}
	}
	if sp.Read < int64(len(people)) || sp.DeadLettered != 0 || so.DeadLettered != 0 || sl.DeadLettered != 0 {
		t.Errorf("stats: people %+v organisations %+v locations %+v", sp, so, sl)
	}
	// duplicates: hr-7 (the same knows edge), hr-11 (stale)
	if sp.Duplicates != 2 {
		t.Errorf("people duplicates = %d, want 2 (hr-7 and hr-11): %+v", sp.Duplicates, sp)
	}
	if sp.Written != int64(len(people))-2 || so.Written != int64(len(orgs)) || sl.Written != int64(len(locs)) {
		t.Errorf("written: people %d organisations %d locations %d", sp.Written, so.Written, sl.Written)
	}

	// Replay: a new consumer reads every source again, and a copy of the
	// people events is published anew: nothing is added.
	before := e.stats(t, g, seq)
	last := lastSeq(t, e)
	e.publish(t, "src.people", FormatJSON, people...)
	for k, c := range cfgs {
		c.Durable = "replay_" + k
		r := start(t, connect(t, e.eng), c)
		e.drained(t, streams[k], c)
		s := r.stop(t)
		if s.Written != 0 || s.DeadLettered != 0 || s.Duplicates == 0 {
			t.Errorf("replay of %s: %+v, want only duplicates", k, s)
		}
	}
	after := e.stats(t, g, 0)
	if after.GetVersion() != before.GetVersion() || after.GetNodes() != before.GetNodes() || after.GetEdges() != before.GetEdges() {
		t.Errorf("replay changed the graph: version/nodes/edges %d/%d/%d -> %d/%d/%d",
			before.GetVersion(), before.GetNodes(), before.GetEdges(), after.GetVersion(), after.GetNodes(), after.GetEdges())
	}
	if got := lastSeq(t, e); got != last {
		t.Errorf("the event stream's last seq went from %d to %d on replay", last, got)
	}
}

// lastSeq is the engine's event stream's last sequence.
func lastSeq(t *testing.T, e *env) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), cairn.DefaultConfig("").Store.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// TestDeadLetters: unmappable events go to the dead-letter subject at
// once, with their bytes and the reason; an event naming a node that never
// comes is dead-lettered after MaxAttempts deliveries; one the engine
// refuses, with its code. The good events around them are written.
func TestDeadLetters(t *testing.T) {
	e := newEnv(t)
	const g = "dl"
	cfg := testConfig("people", "src.people", g)
	cfg.MaxAttempts = 3
	stream := e.stream(t, cfg)
	dead, err := e.nc.SubscribeSync("src.people.dead")
	if err != nil {
		t.Fatal(err)
	}
	raw := map[string][]byte{
		"garbage":  []byte("{not json"),
		"no-type":  []byte(`{"id":"x-1","occurredAt":"2025-03-01T09:00:00Z"}`),
		"no-name":  []byte(`{"id":"x-2","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"zed"}}`),
		"bad-id":   []byte(`{"id":"x-3","occurredAt":"2025-03-01T09:00:00Z","personRemoved":{"personId":"a b"}}`),
		"no-time":  []byte(`{"id":"x-4","personRemoved":{"personId":"ann"}}`),
		"missing":  []byte(`{"id":"x-5","occurredAt":"2025-03-01T09:00:00Z","personEmployed":{"personId":"ann","organisationId":"nowhere"}}`),
		"too-big":  []byte(`{"id":"x-6","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"big","name":"` + strings.Repeat("x", 70<<10) + `"}}`),
		"other":    []byte(`{"id":"x-7","occurredAt":"2025-03-01T09:00:00Z","locationRemoved":{"locationId":"uk"}}`),
		"good-ann": []byte(`{"id":"x-8","occurredAt":"2025-03-01T09:00:00Z","personUpserted":{"personId":"ann","name":"Ann"}}`),
	}
	order := []string{"good-ann", "garbage", "no-type", "no-name", "bad-id", "no-time", "missing", "too-big", "other"}
	for _, k := range order {
		e.publishRaw(t, "src.people", raw[k])
	}
	r := start(t, e.nc, cfg)
	e.drained(t, stream, cfg, r)
	s := r.stop(t)

	wantReason := map[string]string{
		"garbage": ReasonUndecodable, "no-type": ReasonUnknownType, "no-name": ReasonInvalid,
		"bad-id": ReasonInvalid, "no-time": ReasonInvalid, "missing": ReasonMissingEntity, "too-big": ReasonRefused,
	}
	got := map[string]*nats.Msg{}
	for range wantReason {
		m, err := dead.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("dead letters: got %d of %d: %v", len(got), len(wantReason), err)
		}
		for k, b := range raw {
			if string(b) == string(m.Data) {
				got[k] = m
			}
		}
	}
	for k, reason := range wantReason {
		m := got[k]
		if m == nil {
			t.Errorf("%s: no dead letter with its bytes", k)
			continue
		}
		if m.Header.Get(HeaderReason) != reason || m.Header.Get(HeaderAdapter) != "people" || m.Header.Get(HeaderGraph) != g || m.Header.Get(HeaderDetail) == "" {
			t.Errorf("%s: headers %v, want reason %s", k, m.Header, reason)
		}
	}
	if m := got["missing"]; m != nil && (m.Header.Get(HeaderErrorCode) != "NOT_FOUND" || m.Header.Get(HeaderEventID) != "x-5" || m.Header.Get(HeaderDeliveries) != "3") {
		t.Errorf("missing entity: headers %v", m.Header)
	}
	if m := got["too-big"]; m != nil && m.Header.Get(HeaderErrorCode) != "INVALID_ARGUMENT" {
		t.Errorf("refused: headers %v", m.Header)
	}
	if s.DeadLettered != int64(len(wantReason)) || s.Skipped != 1 || s.Written != 1 || s.Retried != 2 {
		t.Errorf("stats %+v: want 7 dead-lettered, 1 skipped, 1 written, 2 retried", s)
	}
	e.node(t, g, s.Seq, "person:ann")
}

// TestResumesAfterCrash: the adapter's connection dies after its 9th
// command was applied and before that event was acked (a crash); a new
// adapter on the same durable consumer resumes from the checkpoint, and
// the graph ends as a control graph fed without a crash: every event
// applied exactly once in effect.
func TestResumesAfterCrash(t *testing.T) {
	e := newEnv(t)
	const n = 30
	var events []*cairnv1.DomainEvent
	for i := range n {
		events = append(events, ev(fmt.Sprintf("p-%d", i), i, &cairnv1.DomainEvent_PersonUpserted{PersonUpserted: &cairnv1.PersonUpserted{PersonId: fmt.Sprintf("p%d", i), Name: fmt.Sprintf("Person %d", i)}}))
		if i > 0 {
			events = append(events, ev(fmt.Sprintf("k-%d", i), i, &cairnv1.DomainEvent_PersonKnows{PersonKnows: &cairnv1.PersonKnows{PersonId: fmt.Sprintf("p%d", i), OtherPersonId: fmt.Sprintf("p%d", i-1)}}))
		}
	}
	cfg := testConfig("people", "src.people", "crashed")
	cfg.Batch = 4
	stream := e.stream(t, cfg)
	e.publish(t, "src.people", FormatJSON, events...)

	crashNC := connect(t, e.eng)
	a, err := New(crashNC, cfg)
	if err != nil {
		t.Fatal(err)
	}
	applied := 0
	a.afterApply = func() {
		applied++
		if applied == 9 {
			crashNC.Close() // dies before the ack
		}
	}
	r := startAdapter(t, a)
	select {
	case err := <-r.done:
		r.done <- nil
		if err == nil {
			t.Fatal("the crashed adapter's Run returned nil")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the crashed adapter kept running")
	}
	first := a.Stats()
	if first.Written != 9 {
		t.Fatalf("before the crash: %+v, want 9 written", first)
	}

	resumed := start(t, connect(t, e.eng), cfg)
	e.drained(t, stream, cfg)
	second := resumed.stop(t)
	if second.Duplicates < 1 {
		t.Errorf("resumed: %+v, want the crashed event again as a duplicate", second)
	}

	control := testConfig("people", "src.people", "control")
	rc := start(t, connect(t, e.eng), control)
	e.drained(t, stream, control)
	sc := rc.stop(t)
	if first.Written+second.Written != sc.Written {
		t.Errorf("written: %d before the crash + %d after = %d, want %d as without a crash", first.Written, second.Written, first.Written+second.Written, sc.Written)
	}
	got, want := e.stats(t, "crashed", second.Seq), e.stats(t, "control", sc.Seq)
	if got.GetVersion() != want.GetVersion() || got.GetNodes() != want.GetNodes() || got.GetEdges() != want.GetEdges() {
		t.Errorf("crashed graph version/nodes/edges %d/%d/%d, control %d/%d/%d",
			got.GetVersion(), got.GetNodes(), got.GetEdges(), want.GetVersion(), want.GetNodes(), want.GetEdges())
	}
	if got.GetNodes() != n {
		t.Errorf("nodes %d, want %d", got.GetNodes(), n)
	}
}

// TestNoGraph: without CreateGraph, Run refuses a graph that does not
// exist.
func TestNoGraph(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig("people", "src.people", "absent")
	cfg.CreateGraph = false
	a, err := New(e.nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); !errors.Is(err, ErrNoGraph) {
		t.Fatalf("Run: %v, want ErrNoGraph", err)
	}
}

// TestAskEngineOpen: an engine without users answers an adapter that asks
// it for its stream that it creates it itself, and the adapter does.
func TestAskEngineOpen(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig("people", "hr.people", "org")
	cfg.AskEngine = true
	var lines []string
	cfg.OnSetup = func(l string) { lines = append(lines, l) }
	name, err := EnsureStream(context.Background(), e.js, cfg)
	if err != nil || name != "ADAPTER_PEOPLE" {
		t.Fatalf("EnsureStream: %s, %v", name, err)
	}
	st, err := e.js.Stream(context.Background(), name)
	if err != nil || !strings.Contains(st.CachedInfo().Config.Description, "people adapter") {
		t.Fatalf("stream %s: %v", name, err)
	}
	if len(lines) != 2 || !strings.Contains(lines[1], "the engine has no users: creating stream ADAPTER_PEOPLE") {
		t.Errorf("set-up lines %q", lines)
	}
	// It exists now: nothing is asked.
	lines = nil
	if _, err := EnsureStream(context.Background(), e.js, cfg); err != nil || len(lines) != 0 {
		t.Errorf("EnsureStream again: %v, %q", err, lines)
	}
}
