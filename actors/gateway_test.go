package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Commands reach the grains as protobuf over NATS; malformed requests are
// answered INVALID_ARGUMENT and the service goes on serving.
func TestGatewayOverNATS(t *testing.T) {
	srv, store := newStore(t)
	m := startMember(t, store, quickGrains())
	gw, err := actors.StartGateway(srv.Conn(), m.disp, actors.GatewayConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = gw.Close(context.Background())
		}
	})
	client := srv.Conn()
	send := func(data []byte) *cairnv1.CommandReply {
		t.Helper()
		msg, err := client.Request(api.CommandSubject, data, 5*time.Second)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		rep := &cairnv1.CommandReply{}
		if err := proto.Unmarshal(msg.Data, rep); err != nil {
			t.Fatalf("reply is not a CommandReply: %v", err)
		}
		return rep
	}
	sendEnv := func(env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
		t.Helper()
		data, err := proto.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return send(data)
	}

	// Bytes that are no protobuf at all.
	for _, junk := range [][]byte{{0xff, 0xff, 0xff}, []byte("{\"graph_id\":\"g\"}"), {0x0a, 0x05, 'g'}} {
		rep := send(junk)
		if rep.GetError().GetCode() != cmdtest.CodeInvalid {
			t.Fatalf("junk %q: reply %v, want INVALID_ARGUMENT", junk, rep)
		}
	}
	// An empty request decodes to an empty envelope.
	wantRefused(t, send(nil), cmdtest.CodeInvalid, "graph_id")
	// A well-formed protobuf that breaks the rules.
	wantRefused(t, sendEnv(cmdtest.Envelope("a.b", "c1", cmdtest.CreateGraph())), cmdtest.CodeInvalid, "graph_id")
	wantRefused(t, sendEnv(cmdtest.Envelope("g", "c1", cmdtest.AddNode("a\x00"))), cmdtest.CodeInvalid, "commands[0].add_node.node_id")

	// The service still serves.
	created := sendEnv(cmdtest.Envelope("g", "c1", cmdtest.CreateGraph()))
	if created.GetError() != nil || created.GetSeq() == 0 || created.GetPosition() != 1 {
		t.Fatalf("create over NATS: %v", created)
	}
	added := sendEnv(cmdtest.Envelope("g", "c2", cmdtest.AddNode("libstdc++6"), cmdtest.AddNode("Zürich"), cmdtest.Connect("e", "libstdc++6", "Zürich")))
	if added.GetError() != nil || added.GetPosition() != 4 {
		t.Fatalf("add over NATS: %v", added)
	}
	wantRefused(t, sendEnv(cmdtest.Envelope("g", "c3", cmdtest.AddNode("Zürich"))), cmdtest.CodeExists, "commands[0].add_node.node_id")
	wantRefused(t, sendEnv(cmdtest.Envelope("g", "c2", cmdtest.AddNode("x"))), cmdtest.CodePrecondition, "command_id")
	if res, err := store.Verify(context.Background(), "g"); err != nil || res.Head.CID.String() != added.GetHeadCid() {
		t.Fatalf("verify: %+v %v", res, err)
	}
	// The reply says where the command ran: on one member, its own grain.
	data, err := proto.Marshal(cmdtest.Envelope("g", "c4", cmdtest.AddNode("route")))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := client.Request(api.CommandSubjectFor("g"), data, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if here, owner := msg.Header.Get(api.MemberHeader), msg.Header.Get(api.OwnerHeader); here == "" || owner != here {
		t.Fatalf("reply headers %v: want %s and %s, the same member", msg.Header, api.MemberHeader, api.OwnerHeader)
	}
	if again := sendEnv(cmdtest.Envelope("g", "c2", cmdtest.AddNode("libstdc++6"), cmdtest.AddNode("Zürich"), cmdtest.Connect("e", "libstdc++6", "Zürich"))); !again.GetDuplicate() || again.GetSeq() != added.GetSeq() {
		t.Fatalf("retry over NATS: %v, want a duplicate of %v", again, added)
	}

	// The micro service is discoverable and lists its endpoint.
	subj, err := micro.ControlSubject(micro.InfoVerb, api.ServiceName, "")
	if err != nil {
		t.Fatal(err)
	}
	if msg, err = client.Request(subj, nil, 5*time.Second); err != nil {
		t.Fatalf("%s: %v", subj, err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.Name != api.ServiceName || info.Version != api.ServiceVersion {
		t.Fatalf("info: %+v", info)
	}
	for name, subject := range map[string]string{"command": api.CommandSubjects, "command-deprecated": api.CommandSubject} {
		i := slices.IndexFunc(info.Endpoints, func(e micro.EndpointInfo) bool { return e.Name == name })
		if i < 0 || info.Endpoints[i].Subject != subject {
			t.Fatalf("endpoints %+v lack %s on %s", info.Endpoints, name, subject)
		}
	}
	subj, _ = micro.ControlSubject(micro.StatsVerb, api.ServiceName, "")
	if msg, err = client.Request(subj, nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	var stats micro.Stats
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatal(err)
	}
	if len(stats.Endpoints) != 2 || stats.Endpoints[0].Name != "command" || stats.Endpoints[1].Name != "command-deprecated" {
		t.Fatalf("stats list endpoints %+v, want command and command-deprecated", stats.Endpoints)
	}
	// This test sends on the deprecated subject.
	if n := stats.Endpoints[1].NumRequests; n != 11 {
		t.Fatalf("stats count %d requests on the deprecated subject, want 11", n)
	}
	// The command endpoint's data is the process's memory (this gateway
	// has no grains), read in the engine's process: here, the test's.
	var cs api.CommandStats
	if err := json.Unmarshal(stats.Endpoints[0].Data, &cs); err != nil {
		t.Fatalf("command stats %s: %v", stats.Endpoints[0].Data, err)
	}
	mem, lim := cs.Memory, debug.SetMemoryLimit(-1)
	gogc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gogc)
	if cs.GrainHealth != nil {
		t.Errorf("grain counters %+v from a gateway without grains", cs.GrainHealth)
	}
	if mem.HeapAllocBytes == 0 || mem.HeapInUseBytes < mem.HeapAllocBytes || mem.GoBytes < mem.HeapInUseBytes || mem.RSSBytes == 0 {
		t.Errorf("memory %+v: want heap alloc <= in use <= Go total, and an RSS", mem)
	}
	if lim == math.MaxInt64 {
		lim = 0
	}
	if mem.LimitBytes != lim || mem.GOGC != int64(gogc) {
		t.Errorf("memory %+v: want the limit %d and GOGC %d of this process", mem, lim, gogc)
	}
	if now := actors.ReadMemory(); now.GCCycles < mem.GCCycles {
		t.Errorf("GC cycles went back from %d to %d", mem.GCCycles, now.GCCycles)
	}

	// After Close no command is taken: a late request finds no responder,
	// or, while the subscription drains, is refused UNAVAILABLE.
	if err := gw.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed = true
	data, _ = proto.Marshal(cmdtest.Envelope("g", "late", cmdtest.AddNode("late")))
	for range 20 {
		msg, err := client.Request(api.CommandSubject, data, 5*time.Second)
		if errors.Is(err, nats.ErrNoResponders) {
			break
		}
		if err != nil {
			t.Fatalf("request after close: %v", err)
		}
		rep := &cairnv1.CommandReply{}
		if err := proto.Unmarshal(msg.Data, rep); err != nil || rep.GetError().GetCode() != cmdtest.CodeUnavailable {
			t.Fatalf("request after close answered %v (%v), want no responders or UNAVAILABLE", rep, err)
		}
	}
	if _, ok := commandSeqs(readGraph(t, store, "g"))["late"]; ok {
		t.Fatal("a command sent after Close was stored")
	}
}
