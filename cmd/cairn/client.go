package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/tracing"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// defaultServer is where client commands look for the engine, and where
// "cairn serve" listens by default.
const defaultServer = "nats://127.0.0.1:4222"

// authFlags are the NATS credentials and TLS files, for client commands and
// for "cairn serve --nats".
type authFlags struct {
	creds, user, password, nkey, tlsCert, tlsKey, tlsCA string
}

func (a *authFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.creds, "creds", "", "NATS credentials `file` (JWT and NKey seed)")
	fs.StringVar(&a.user, "user", "", "NATS user `name`")
	fs.StringVar(&a.password, "password", "", "NATS `password`")
	fs.StringVar(&a.nkey, "nkey", "", "NATS nkey seed `file` (cairn auth nkey)")
	fs.StringVar(&a.tlsCert, "tls-cert", "", "TLS client certificate `file` (with --tls-key)")
	fs.StringVar(&a.tlsKey, "tls-key", "", "TLS client key `file` (with --tls-cert)")
	fs.StringVar(&a.tlsCA, "tls-ca", "", "TLS root CA `file` to trust the server by")
}

// set reports whether any credential or TLS flag was given.
func (a *authFlags) set() bool {
	return a.credentials() || a.tlsCert != "" || a.tlsKey != "" || a.tlsCA != ""
}

// credentials reports whether a credential flag was given.
func (a *authFlags) credentials() bool {
	return a.creds != "" || a.user != "" || a.password != "" || a.nkey != ""
}

// options returns the nats.Connect options for the flags, or a usage error
// for an incomplete pair. A user or nkey login takes replies under its own
// inbox prefix (api.InboxPrefix), the only one an engine with users lets
// it read.
func (a *authFlags) options(topic string) ([]nats.Option, error) {
	var opts []nats.Option
	if a.creds != "" {
		opts = append(opts, nats.UserCredentials(a.creds))
	}
	if a.nkey != "" && (a.user != "" || a.password != "" || a.creds != "") {
		return nil, &usageError{topic: topic, err: errors.New("--nkey logs in by itself: give it without --user, --password or --creds")}
	}
	if a.user != "" || a.password != "" {
		if a.user == "" {
			return nil, &usageError{topic: topic, err: errors.New("--password needs --user")}
		}
		opts = append(opts, nats.UserInfo(a.user, a.password))
		if aggregate.ValidateGraphID("user", a.user) == nil { // one subject token
			opts = append(opts, nats.CustomInboxPrefix(api.InboxPrefix(a.user)))
		}
	}
	if a.nkey != "" {
		o, pub, err := nkeyOption(a.nkey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o, nats.CustomInboxPrefix(api.InboxPrefix(pub)))
	}
	if (a.tlsCert == "") != (a.tlsKey == "") {
		return nil, &usageError{topic: topic, err: errors.New("--tls-cert and --tls-key go together")}
	}
	if a.tlsCert != "" {
		opts = append(opts, nats.ClientCert(a.tlsCert, a.tlsKey))
	}
	if a.tlsCA != "" {
		opts = append(opts, nats.RootCAs(a.tlsCA))
	}
	return opts, nil
}

// nkeyOption reads a user nkey seed file and returns the option that logs
// in with it, and its public key.
func nkeyOption(file string) (nats.Option, string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("--nkey: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return nil, "", fmt.Errorf("--nkey %s: not an nkey seed: %w", file, err)
	}
	pub, err := kp.PublicKey()
	if err == nil && !nkeys.IsValidPublicUserKey(pub) {
		err = errors.New("not a user nkey ('SU...' seed)")
	}
	if err != nil {
		return nil, "", fmt.Errorf("--nkey %s: %w", file, err)
	}
	return nats.Nkey(pub, kp.Sign), pub, nil
}

// clientFlags are the flags of every command that talks to a running engine.
type clientFlags struct {
	topic   string
	server  string
	auth    authFlags
	timeout time.Duration
	json    bool
	// trust, when set, is the keyring openStore's store and snapshots
	// check signatures against; signer signs the archives it writes.
	trust  *persistence.Keyring
	signer *persistence.Signer
	// refused gets the server's permission violations on the connection
	// (connect), so that a request the user may not make fails at once.
	refused chan error
	// header, when set, goes with requestRaw's request (a traceparent).
	header nats.Header
}

func (c *clientFlags) register(fs *flag.FlagSet, topic string, timeout time.Duration) {
	c.topic = topic
	fs.StringVar(&c.server, "server", defaultServer, "NATS `URL` of the engine")
	c.auth.register(fs)
	fs.DurationVar(&c.timeout, "timeout", timeout, "give up after this `duration`")
	fs.BoolVar(&c.json, "json", false, "print JSON")
}

// connect opens a NATS connection to the engine.
func (c *clientFlags) connect() (*nats.Conn, error) {
	if c.timeout <= 0 {
		return nil, &usageError{topic: c.topic, err: fmt.Errorf("--timeout must be positive, not %s", c.timeout)}
	}
	opts, err := c.auth.options(c.topic)
	if err != nil {
		return nil, err
	}
	// One request per process: on a lost connection fail at once (the
	// command may be retried with its id) rather than buffer and wait.
	opts = append(opts, nats.Name("cairn-cli"), nats.Timeout(min(c.timeout, 5*time.Second)), nats.NoReconnect())
	c.refused = make(chan error, 1)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			select {
			case c.refused <- err:
			default:
			}
		}
	}))
	nc, err := nats.Connect(c.server, opts...)
	switch {
	case errors.Is(err, nats.ErrNoServers):
		return nil, fmt.Errorf("cannot reach NATS at %s: %w (is 'cairn serve' running?)", c.server, err)
	case err != nil:
		return nil, fmt.Errorf("connect to NATS at %s: %w", c.server, err)
	}
	return nc, nil
}

// graphReader is a read command ("cairn log", "cairn verify", ...) on one
// graph.
type graphReader struct {
	clientFlags
	graph string
	store *persistence.Store     // reads across archive and stream
	snaps *persistence.Snapshots // snapshots and archives
}

// openGraphReader parses "<graph> [client flags]" for topic, bounds ctx by
// --timeout and opens the event store. The caller calls done when finished.
// extra, when not nil, registers the command's own flags.
func openGraphReader(ctx context.Context, topic string, args []string, extra ...func(*flag.FlagSet)) (_ *graphReader, _ context.Context, done func(), _ error) {
	r := &graphReader{}
	fs := newFlagSet(topic)
	r.register(fs, topic, time.Minute)
	for _, f := range extra {
		f(fs)
	}
	pos, err := parseArgs(fs, topic, args, "graph")
	if err != nil {
		return nil, nil, nil, err
	}
	r.graph = pos[0]
	// A graph id is one subject token: no '.', '*' or '>' may widen the read.
	if err := aggregate.ValidateGraphID("graph", r.graph); err != nil {
		return nil, nil, nil, err
	}
	// A command that registered --signing-key (archive) signs what it
	// writes, and trusts the key.
	if f := fs.Lookup("signing-key"); f != nil && f.Value.String() != "" {
		if r.signer, err = persistence.LoadSigner(f.Value.String()); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: --signing-key: %w", topic, err)
		}
	}
	// A command that registered --trust (verify, archive) checks
	// signatures.
	if f := fs.Lookup("trust"); f != nil && f.Value.String() != "" {
		if r.trust, err = persistence.LoadKeyring(f.Value.String()); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: --trust: %w", topic, err)
		}
		if f := fs.Lookup("trust-unsigned-through"); f != nil {
			n, err := strconv.ParseUint(f.Value.String(), 10, 64)
			if err != nil {
				return nil, nil, nil, &usageError{topic: topic, err: fmt.Errorf("--trust-unsigned-through %q is not a sequence", f.Value.String())}
			}
			r.trust.AllowUnsignedThrough(n)
		}
	}
	if r.signer != nil {
		r.trust = r.trust.Clone()
		if err := r.trust.Add(r.signer.KeyID()); err != nil {
			return nil, nil, nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	store, snaps, closeConn, err := r.openStore(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	r.store, r.snaps = store, snaps
	return r, ctx, func() { closeConn(); cancel() }, nil
}

// guard returns ctx, cancelled when the server refuses this login
// something on the connection (a permission violation: the server drops
// the message and says so on the side, so a request would wait for its
// timeout), and a function that stops watching and returns the refusal,
// nil when there was none.
func (c *clientFlags) guard(ctx context.Context) (context.Context, func() error) {
	ctx, cancel := context.WithCancel(ctx)
	var denied error
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case denied = <-c.refused:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() error {
		cancel()
		<-watched
		return denied
	}
}

// timedOut adds the --timeout to an error that ran out of time.
func (c *clientFlags) timedOut(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (not done within --timeout %s)", err, c.timeout)
	}
	return err
}

// openStore connects and opens the event store for reading, with the
// snapshot bucket, so that reads go across archive and stream. It refuses
// to create the event-store stream on a NATS server that has none.
func (c *clientFlags) openStore(ctx context.Context) (*persistence.Store, *persistence.Snapshots, func(), error) {
	nc, err := c.connect()
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("jetstream on %s: %w", c.server, err)
	}
	cfg := persistence.DefaultStoreConfig()
	// LookupStore never creates or changes the stream. Reading it takes
	// an admin login on an engine with users.
	gctx, refused := c.guard(ctx)
	_, err = persistence.LookupStore(gctx, js, cfg)
	if denied := refused(); denied != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("read stream %s on %s: refused, this login may not (reading the event store takes the admin role): %w", cfg.Stream, c.server, denied)
	}
	if err != nil {
		nc.Close()
		if errors.Is(err, persistence.ErrNotFound) {
			return nil, nil, nil, fmt.Errorf("no Cairn event store on %s (stream %s not found)", c.server, cfg.Stream)
		}
		return nil, nil, nil, fmt.Errorf("look up stream %s on %s: %w", cfg.Stream, c.server, err)
	}
	scfg := persistence.DefaultSnapshotConfig()
	scfg.Trust = c.trust
	// Bind the bucket as it is: creating or updating it would need stream
	// rights and could reset its replicas. Only an engine that never wrote
	// a snapshot has none; then an empty one is made.
	snaps, err := persistence.LookupSnapshots(ctx, js, scfg)
	if errors.Is(err, persistence.ErrNotFound) {
		snaps, err = persistence.OpenSnapshots(ctx, js, scfg)
	}
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("open object store %s on %s: %w", scfg.Bucket, c.server, err)
	}
	st, err := persistence.LookupStore(ctx, js, cfg, persistence.WithObjects(snaps.Objects()), persistence.WithSigning(c.signer, c.trust))
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("look up stream %s on %s: %w", cfg.Stream, c.server, err)
	}
	return st, snaps, nc.Close, nil
}

// writeFlags are the flags of every command that changes a graph.
type writeFlags struct {
	clientFlags
	commandID, issuer, correlationID, causationID string
	// trace: send the command with a fresh, sampled traceparent and
	// print its trace id.
	trace bool
}

func newWriteFlags(fs *flag.FlagSet, topic string) *writeFlags {
	w := &writeFlags{}
	w.register(fs, topic, 10*time.Second)
	fs.StringVar(&w.commandID, "command-id", "", "idempotency `key`; a retry with the same key gets the original result (default: a fresh random id)")
	fs.StringVar(&w.issuer, "issuer", "cli", "`name` recorded as the command's issuer")
	fs.StringVar(&w.correlationID, "correlation-id", "", "correlation `id` recorded with the command")
	fs.StringVar(&w.causationID, "causation-id", "", "causation `id` recorded with the command")
	fs.BoolVar(&w.trace, "trace", false, "send a sampled W3C traceparent and print the trace id")
	return w
}

// execute sends cmds for graph as one envelope to the engine and prints the
// reply. A refused command is returned as its *aggregate.CommandError.
// With --trace it prints "trace <trace id>" on stderr first (and the id as
// "trace_id" in --json output).
func (w *writeFlags) execute(ctx context.Context, stdout, stderr io.Writer, graph string, cmds ...*cairnv1.Command) error {
	env := &cairnv1.CommandEnvelope{
		GraphId: graph, CommandId: w.commandID, Issuer: w.issuer,
		CorrelationId: w.correlationID, CausationId: w.causationID, Commands: cmds,
	}
	if env.CommandId == "" {
		env.CommandId = nuid.Next()
	}
	var traceID string
	if w.trace {
		var parent string
		parent, traceID = tracing.NewParent()
		w.header = nats.Header{tracing.ParentHeader: {parent}}
		fmt.Fprintf(stderr, "trace %s\n", traceID)
	}
	rep, err := w.send(ctx, env)
	if err != nil {
		return err
	}
	if w.json {
		out := newReplyJSON(rep)
		out.TraceID = traceID
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else if rep.GetError() == nil {
		dup := ""
		if rep.GetDuplicate() {
			dup = " (duplicate)"
		}
		fmt.Fprintf(stdout, "ok seq=%d position=%d head=%s tx=%s command=%s%s\n",
			rep.GetSeq(), rep.GetPosition(), rep.GetHeadCid(), rep.GetTxId(), rep.GetCommandId(), dup)
	}
	return aggregate.ErrorFromProto(rep.GetError())
}

// send makes one command request to the "cairn" micro service.
func (w *writeFlags) send(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	// The graph is a subject token: refuse a graph id that cannot be one
	// here, as the engine would.
	if err := aggregate.ValidateGraphID("graph_id", env.GetGraphId()); err != nil {
		var ce *aggregate.CommandError
		if errors.As(err, &ce) {
			return aggregate.ErrorReply(env, ce), nil
		}
		return nil, err
	}
	rep := &cairnv1.CommandReply{}
	hint := "; the command may still be applied: retry with --command-id " + env.GetCommandId()
	if err := w.request(ctx, api.CommandSubjectFor(env.GetGraphId()), "command", env, rep, hint); err != nil {
		return nil, err
	}
	return rep, nil
}

// request sends req on subject to the "cairn" micro service and decodes the
// answer into rep. what names the request in errors; hint follows the errors
// that leave the outcome unknown.
func (c *clientFlags) request(ctx context.Context, subject, what string, req, rep proto.Message, hint string) error {
	data, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	msg, err := c.requestRaw(ctx, subject, what, data, hint)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		return fmt.Errorf("the engine's reply is not a %s: %w", rep.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// requestRaw sends data on subject and returns the reply, with the failure
// named for a person.
func (c *clientFlags) requestRaw(ctx context.Context, subject, what string, data []byte, hint string) (*nats.Msg, error) {
	nc, err := c.connect()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	rctx, refused := c.guard(rctx)
	msg, err := nc.RequestMsgWithContext(rctx, &nats.Msg{Subject: subject, Data: data, Header: c.header})
	if denied := refused(); err != nil && denied != nil {
		return nil, fmt.Errorf("send %s to %s: refused, this login may not: %w", what, c.server, denied)
	}
	if err != nil {
		return nil, c.requestError(ctx, err, what, hint)
	}
	return msg, nil
}

// requestError explains why a request (what) to the engine failed; hint
// is appended where the engine may have acted on it all the same.
func (c *clientFlags) requestError(ctx context.Context, err error, what, hint string) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("no Cairn engine answers on %s (is 'cairn serve' running?)", c.server)
	case errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("lost the connection to %s before the engine answered%s", c.server, hint)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted before the engine answered%s", hint)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("no answer from the Cairn engine on %s within %s%s", c.server, c.timeout, hint)
	}
	return fmt.Errorf("send %s to %s: %w", what, c.server, err)
}

// endpointStats is api.EndpointStats with requestRaw's connection,
// timeout and messages.
func (c *clientFlags) endpointStats(ctx context.Context, want ...string) (map[string]json.RawMessage, error) {
	nc, err := c.connect()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	eps, err := api.EndpointStats(rctx, nc, want...)
	if err != nil {
		return nil, c.requestError(ctx, err, "a stats request", "")
	}
	return eps, nil
}

// replyJSON is a CommandReply as "--json" prints it.
type replyJSON struct {
	CommandID string     `json:"command_id"`
	Seq       uint64     `json:"seq"`
	Position  uint64     `json:"position"`
	HeadCID   string     `json:"head_cid"`
	TxID      string     `json:"tx_id"`
	Duplicate bool       `json:"duplicate"`
	Error     *errorJSON `json:"error,omitempty"`
	// TraceID is the trace the command was sent in (--trace).
	TraceID string `json:"trace_id,omitempty"`
}

type errorJSON struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func newReplyJSON(r *cairnv1.CommandReply) replyJSON {
	out := replyJSON{
		CommandID: r.GetCommandId(), Seq: r.GetSeq(), Position: r.GetPosition(),
		HeadCID: r.GetHeadCid(), TxID: r.GetTxId(), Duplicate: r.GetDuplicate(),
	}
	if e := r.GetError(); e != nil {
		out.Error = &errorJSON{
			Code:  strings.TrimPrefix(e.GetCode().String(), "ERROR_CODE_"),
			Field: e.GetField(), Message: e.GetMessage(),
		}
	}
	return out
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
