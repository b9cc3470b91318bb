package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Driver is how the harness reaches an engine. Execute and Query return an
// error only when the request did not get an answer (a transport failure,
// a timeout); an engine that refuses a command or a query answers with the
// reply's Error set, which callers check (see replyErr).
type Driver interface {
	// Name is "inprocess" or "remote".
	Name() string
	Execute(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error)
	Query(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error)
	// JetStream is the JetStream of the engine's NATS server, for the raw
	// baselines and the replay scenario; never nil.
	JetStream() jetstream.JetStream
	// Memory is the engine process's memory now, as the engine reports
	// it (a MemSampler).
	Memory(ctx context.Context) (MemSample, error)
}

// InProcess drives an embedded engine directly: commands go through
// Engine.Execute (the dispatcher and the Proto.Actor cluster request to
// the graph grain), queries through Engine.Query, with no NATS hop between
// the harness and the engine. It adds the least overhead of any driver.
func InProcess(e *cairn.Engine) Driver { return inProcess{e: e} }

type inProcess struct{ e *cairn.Engine }

func (d inProcess) Name() string { return "inprocess" }

// Trust is the engine's keyring (nil when it checks no signatures): the
// replay scenario's readers check what the engine's would.
func (d inProcess) Trust() *persistence.Keyring { return d.e.Trust() }

func (d inProcess) Execute(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	rep, err := d.e.Execute(ctx, env)
	if rep == nil && err != nil {
		return nil, err
	}
	return rep, nil
}

func (d inProcess) Query(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	rep, err := d.e.Query(ctx, req)
	if rep == nil && err != nil {
		return nil, err
	}
	return rep, nil
}

// Memory reads this process's memory: the engine runs in it.
func (d inProcess) Memory(context.Context) (MemSample, error) { return ReadMem(), nil }

func (d inProcess) JetStream() jetstream.JetStream {
	js, _ := jetstream.New(d.e.Conn()) // fails only for a nil connection
	return js
}

// Remote drives any running engine through the "cairn" NATS micro service
// (each graph's api.CommandSubjectFor and api.QuerySubjectFor), as a
// cluster member or another program would: a protobuf request and reply
// per command or query, over nc. timeout bounds each request. It is also
// the importer.Executor of `cairn import`.
func Remote(nc *nats.Conn, timeout time.Duration) (Driver, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &remote{nc: nc, js: js, timeout: timeout}, nil
}

type remote struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	timeout time.Duration
}

func (d *remote) Name() string { return "remote" }

func (d *remote) Execute(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	rep := &cairnv1.CommandReply{}
	return rep, d.request(ctx, api.CommandSubjectFor(env.GetGraphId()), env, rep)
}

func (d *remote) Query(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	rep := &cairnv1.QueryReply{}
	return rep, d.request(ctx, api.QuerySubjectFor(req.GetGraphId()), req, rep)
}

func (d *remote) JetStream() jetstream.JetStream { return d.js }

// Memory asks the engine for its own memory (EngineMemory); with several
// engines on one NATS, the first to answer.
func (d *remote) Memory(ctx context.Context) (MemSample, error) { return EngineMemory(ctx, d.nc) }

func (d *remote) request(ctx context.Context, subject string, req, rep proto.Message) error {
	data, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	msg, err := d.nc.RequestWithContext(ctx, subject, data)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("no Cairn engine answers on %s at %s (is 'cairn serve' running?)", subject, d.nc.ConnectedUrlRedacted())
	}
	if err != nil {
		return fmt.Errorf("request on %s to %s: %w", subject, d.nc.ConnectedUrlRedacted(), err)
	}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		return fmt.Errorf("the engine's reply on %s is not a %s: %w", subject, rep.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// replyErr returns a command reply's refusal as an error, nil when the
// command was applied.
func replyErr(rep *cairnv1.CommandReply, err error) error {
	if err != nil {
		return err
	}
	return aggregate.ErrorFromProto(rep.GetError())
}

// queryErr is replyErr for queries.
func queryErr(rep *cairnv1.QueryReply, err error) error {
	if err != nil {
		return err
	}
	return aggregate.ErrorFromProto(rep.GetError())
}
