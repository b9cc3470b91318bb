package cairn_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/auth"
	"github.com/cairn-graph/cairn/internal/enginetest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// authEngine is an engine whose embedded NATS listens on loopback with
// users of every role; the password of each is "pw-" + its name.
type authEngine struct {
	eng   *cairn.Engine
	url   string
	seeds map[string][]byte // nkey users' seeds by name
	pubs  map[string]string // and their public keys
}

func openAuthEngine(t testing.TB) *authEngine {
	t.Helper()
	// The lowest bcrypt cost: each login hashes once.
	hash := func(name string) string {
		h, err := bcrypt.GenerateFromPassword([]byte("pw-"+name), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	f := &auth.File{}
	for _, u := range []auth.User{
		{Name: "admin", Role: auth.Admin},
		{Name: "writer", Role: auth.Writer},
		{Name: "reader", Role: auth.Reader},
		{Name: "writer-a", Role: auth.Writer, Graphs: []string{"a"}},
		{Name: "reader-a", Role: auth.Reader, Graphs: []string{"a"}},
	} {
		u.Password = hash(u.Name)
		f.Put(u)
	}
	seeds := map[string][]byte{}
	seed, pub, err := auth.NewNkey()
	if err != nil {
		t.Fatal(err)
	}
	seeds["nkey-writer-a"] = seed
	pubs := map[string]string{"nkey-writer-a": pub}
	f.Put(auth.User{Name: "nkey-writer-a", Role: auth.Writer, Nkey: pub, Graphs: []string{"a"}})

	eng := openEngineWith(t, t.TempDir(), func(cfg *cairn.Config) {
		cfg.NATSListen = "127.0.0.1:0"
		cfg.Auth = f
	})
	ctx := context.Background()
	create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}
	for _, g := range []string{"a", "b"} {
		if _, err := eng.Execute(ctx, env(g, "create-"+g, create)); err != nil {
			t.Fatalf("create %s: %v", g, err)
		}
	}
	return &authEngine{eng: eng, url: eng.ClientURL(), seeds: seeds, pubs: pubs}
}

// client is a TCP connection as one user; errs gets the server's
// asynchronous errors (permission violations).
type client struct {
	nc   *nats.Conn
	errs chan error
}

func (a *authEngine) connect(t testing.TB, name string) *client {
	t.Helper()
	c := &client{errs: make(chan error, 64)}
	opts := []nats.Option{
		nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}),
	}
	if seed, ok := a.seeds[name]; ok {
		path := filepath.Join(t.TempDir(), "seed")
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, o, nats.CustomInboxPrefix(api.InboxPrefix(a.pubs[name])))
	} else {
		opts = append(opts, nats.UserInfo(name, "pw-"+name), nats.CustomInboxPrefix(api.InboxPrefix(name)))
	}
	nc, err := nats.Connect(a.url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	return c
}

// denied publishes to subject (or subscribes, when sub) and waits for the
// server's permission violation for it.
func (c *client) denied(t *testing.T, subject string, sub bool) {
	t.Helper()
	var err error
	if sub {
		_, err = c.nc.QueueSubscribe(subject, "q", func(*nats.Msg) { t.Errorf("a message reached a refused subscription to %s", subject) })
	} else {
		err = c.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: c.nc.NewRespInbox(), Data: []byte("attack")})
	}
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-timeout:
			t.Fatalf("no permission violation for %s %s", map[bool]string{true: "subscribing to", false: "publishing to"}[sub], subject)
		}
	}
}

func (c *client) command(t *testing.T, subject string, e *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	t.Helper()
	rep := &cairnv1.CommandReply{}
	c.request(t, subject, e, rep)
	return rep
}

func (c *client) query(t testing.TB, subject string, q *cairnv1.QueryRequest) *cairnv1.QueryReply {
	t.Helper()
	rep := &cairnv1.QueryReply{}
	c.request(t, subject, q, rep)
	return rep
}

func (c *client) request(t testing.TB, subject string, req, rep proto.Message) {
	t.Helper()
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.nc.Request(subject, data, 10*time.Second)
	if err != nil {
		t.Fatalf("request on %s: %v", subject, err)
	}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		t.Fatal(err)
	}
}

func addNode(graph, node string) *cairnv1.CommandEnvelope {
	return env(graph, "add-"+graph+"-"+node, &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: node}}})
}

// TestAuthRoles: a reader queries but cannot command, a writer commands,
// and nobody but the engine writes the event stream, purges or deletes it
// or its messages, or writes the object store.
func TestAuthRoles(t *testing.T) {
	a := openAuthEngine(t)
	reader, writer, admin := a.connect(t, "reader"), a.connect(t, "writer"), a.connect(t, "admin")

	rep := writer.command(t, api.CommandSubjectFor("a"), addNode("a", "n1"))
	if rep.GetError() != nil || rep.GetSeq() == 0 {
		t.Fatalf("writer's command: %v", rep)
	}
	q := reader.query(t, api.QuerySubjectFor("a"), getNode("a", "n1", rep.GetSeq()))
	if q.GetError() != nil || q.GetNode().GetNodeId() != "n1" {
		t.Fatalf("reader's query: %v", q)
	}
	reader.denied(t, api.CommandSubjectFor("a"), false)
	reader.denied(t, api.CommandSubject, false)
	// The deprecated subjects still answer a user on every graph.
	if rep := writer.command(t, api.CommandSubject, addNode("a", "n2")); rep.GetError() != nil {
		t.Fatalf("writer's command on %s: %v", api.CommandSubject, rep)
	}
	if q := reader.query(t, api.QuerySubject, getNode("a", "n1", 0)); q.GetError() != nil {
		t.Fatalf("reader's query on %s: %v", api.QuerySubject, q)
	}

	stream := persistence.DefaultStoreConfig().Stream
	objects := "OBJ_" + persistence.DefaultObjectBucket
	for _, c := range []*client{reader, writer, admin} {
		for _, subj := range []string{
			"cairn.events.a", "cairn.events.new",
			"$JS.API.STREAM.PURGE." + stream, "$JS.API.STREAM.DELETE." + stream,
			"$JS.API.STREAM.MSG.DELETE." + stream, "$JS.API.STREAM.UPDATE." + stream,
			"$JS.API.STREAM.PURGE." + objects, "$JS.API.STREAM.DELETE." + objects,
			"$O." + persistence.DefaultObjectBucket + ".C.forged", "$O." + persistence.DefaultObjectBucket + ".M.forged",
			"$JS.API.STREAM.CREATE.rogue",
		} {
			c.denied(t, subj, false)
		}
	}

	// The admin reads the stream and the object store, as verify does.
	js, err := jetstream.New(admin.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := persistence.LookupStore(ctx, js, persistence.DefaultStoreConfig())
	if err != nil {
		t.Fatalf("admin looks up the store: %v", err)
	}
	res, err := st.Verify(ctx, "a")
	if err != nil || res.Transactions != 3 {
		t.Fatalf("admin verifies graph a: %+v, %v", res, err)
	}
	if _, err := persistence.LookupSnapshots(ctx, js, persistence.DefaultSnapshotConfig()); err != nil && !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("admin looks up the object store: %v", err)
	}
	// ... but purging through the API client is refused, and the graph stays.
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := s.Purge(pctx, jetstream.WithPurgeSubject("cairn.events.a")); err == nil {
		t.Fatal("the admin purged graph a")
	}
	if res, err := a.eng.Store().Verify(ctx, "a"); err != nil || res.Transactions != 3 {
		t.Fatalf("graph a after the refused purge: %+v, %v", res, err)
	}
	// A reader cannot read the stream directly.
	rjs, err := jetstream.New(reader.nc)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer rcancel()
	if _, err := rjs.Stream(rctx, stream); err == nil {
		t.Fatal("a reader read the stream's info")
	}
}

// TestAuthGraphs: a user limited to graph a reaches a, neither b nor the
// deprecated un-graphed subjects; a request whose subject names another
// graph than its body is refused.
func TestAuthGraphs(t *testing.T) {
	a := openAuthEngine(t)
	for _, name := range []string{"writer-a", "nkey-writer-a"} {
		c := a.connect(t, name)
		rep := c.command(t, api.CommandSubjectFor("a"), addNode("a", name))
		if rep.GetError() != nil {
			t.Fatalf("%s: command on a: %v", name, rep)
		}
		if q := c.query(t, api.QuerySubjectFor("a"), getNode("a", name, rep.GetSeq())); q.GetError() != nil {
			t.Fatalf("%s: query on a: %v", name, q)
		}
		for _, subj := range []string{api.CommandSubjectFor("b"), api.QuerySubjectFor("b"), api.CommandSubject, api.QuerySubject} {
			c.denied(t, subj, false)
		}
	}
	ra := a.connect(t, "reader-a")
	ra.denied(t, api.QuerySubjectFor("b"), false)
	ra.denied(t, api.CommandSubjectFor("a"), false)

	// The subject's graph is the one permissions allowed: a body naming
	// another graph is refused, for commands and queries.
	w := a.connect(t, "writer")
	rep := w.command(t, api.CommandSubjectFor("a"), addNode("b", "smuggled"))
	if err := aggregate.ErrorFromProto(rep.GetError()); !errors.Is(err, aggregate.ErrInvalidArgument) || rep.GetError().GetField() != "graph_id" {
		t.Fatalf("command for b on a's subject: %v", rep)
	}
	q := w.query(t, api.QuerySubjectFor("a"), getNode("b", "n", 0))
	if err := aggregate.ErrorFromProto(q.GetError()); !errors.Is(err, aggregate.ErrInvalidArgument) {
		t.Fatalf("query for b on a's subject: %v", q)
	}
	if _, err := a.eng.Query(context.Background(), getNode("b", "smuggled", 0)); !errors.Is(err, aggregate.ErrNotFound) {
		t.Fatalf("smuggled node in b: %v", err)
	}
}

// TestAuthRogueResponder: no user can subscribe to the command or query
// subjects or join their queue group, so every command is answered by the
// engine; nor can one read another user's replies.
func TestAuthRogueResponder(t *testing.T) {
	a := openAuthEngine(t)
	for _, name := range []string{"writer", "admin"} {
		rogue := a.connect(t, name)
		for _, subj := range []string{api.CommandSubject, api.CommandSubjects, api.CommandSubjectFor("a"), "cairn.command.>",
			api.QuerySubject, api.QuerySubjects, "cairn.>", ">", "$SRV.>", "_INBOX.>", api.InboxPrefix("reader") + ".>"} {
			rogue.denied(t, subj, true)
		}
	}
	w := a.connect(t, "writer")
	for i := range 10 {
		node := "n" + string(rune('0'+i))
		rep := w.command(t, api.CommandSubjectFor("a"), addNode("a", node))
		if rep.GetError() != nil {
			t.Fatalf("command %d: %v", i, rep)
		}
		if _, err := a.eng.Query(context.Background(), getNode("a", node, rep.GetSeq())); err != nil {
			t.Fatalf("command %d was acknowledged (seq %d) but node %s is not there: %v", i, rep.GetSeq(), node, err)
		}
	}
}

// TestAuthLogin: no login, a wrong password or an unknown user get no
// connection.
func TestAuthLogin(t *testing.T) {
	a := openAuthEngine(t)
	for name, opts := range map[string][]nats.Option{
		"no credentials": nil,
		"wrong password": {nats.UserInfo("writer", "pw-reader")},
		"unknown user":   {nats.UserInfo("cairn-engine", "")},
	} {
		nc, err := nats.Connect(a.url, append(opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: %v, want an authorization error", name, err)
		}
	}
}

// BenchmarkAuthQuery is one query round trip over TCP as a reader on an
// engine with users (the server checks the publish against the reader's
// permissions, the reply goes to its own inbox prefix), against the same
// on an engine without users, in the same run.
func BenchmarkAuthQuery(b *testing.B) {
	run := func(b *testing.B, c *client) {
		q := getNode("a", "n1", 0)
		for b.Loop() {
			if rep := c.query(b, api.QuerySubjectFor("a"), q); rep.GetError() != nil {
				b.Fatal(rep.GetError())
			}
		}
	}
	seed := func(b *testing.B, eng *cairn.Engine) {
		rep, err := eng.Execute(context.Background(), addNode("a", "n1"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := eng.Query(context.Background(), getNode("a", "n1", rep.GetSeq())); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("open", func(b *testing.B) {
		eng := enginetest.Open(b, "127.0.0.1:0")
		create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}
		if _, err := eng.Execute(context.Background(), env("a", "create-a", create)); err != nil {
			b.Fatal(err)
		}
		seed(b, eng)
		nc, err := nats.Connect(eng.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		run(b, &client{nc: nc})
	})
	b.Run("auth", func(b *testing.B) {
		a := openAuthEngine(b)
		seed(b, a.eng)
		run(b, a.connect(b, "reader"))
	})
}
