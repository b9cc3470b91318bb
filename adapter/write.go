package adapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/retry"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// engine is a client of the "cairn" service: commands and queries over
// NATS on the per-graph API subjects.
type engine struct {
	nc      *nats.Conn
	timeout time.Duration
	retry   retry.Policy
}

// errNoAnswer marks a request that got no answer.
var errNoAnswer = errors.New("no answer from the engine")

// execute sends env and returns the engine's verdict: nil when applied,
// the refusal as an *aggregate.CommandError, or an error wrapping
// errNoAnswer when the outcome stayed unknown through the retries (each
// one with the same command id, so that it is applied at most once).
func (e *engine) execute(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	var rep *cairnv1.CommandReply
	err := e.retry.Do(ctx, func(ctx context.Context, _ int) (bool, error) {
		rep = &cairnv1.CommandReply{}
		if err := e.request(ctx, api.CommandSubjectFor(env.GetGraphId()), env, rep); err != nil {
			return true, err
		}
		if err := aggregate.ErrorFromProto(rep.GetError()); err != nil {
			return retry.Retryable(rep.GetError().GetCode()), err
		}
		return false, nil
	})
	return rep, err
}

// query asks one question, with the same retries.
func (e *engine) query(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	var rep *cairnv1.QueryReply
	err := e.retry.Do(ctx, func(ctx context.Context, _ int) (bool, error) {
		rep = &cairnv1.QueryReply{}
		if err := e.request(ctx, api.QuerySubjectFor(req.GetGraphId()), req, rep); err != nil {
			return true, err
		}
		if err := aggregate.ErrorFromProto(rep.GetError()); err != nil {
			return retry.Retryable(rep.GetError().GetCode()), err
		}
		return false, nil
	})
	return rep, err
}

func (e *engine) request(ctx context.Context, subject string, req, rep proto.Message) error {
	data, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	msg, err := e.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("%w: no Cairn engine answers on %s", errNoAnswer, subject)
		}
		return fmt.Errorf("%w on %s: %w", errNoAnswer, subject, err)
	}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		return fmt.Errorf("the engine's reply on %s is not a %s: %w", subject, rep.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// isCode reports whether err is an engine refusal with code.
func isCode(err error, code cairnv1.ErrorCode) (*aggregate.CommandError, bool) {
	var ce *aggregate.CommandError
	if errors.As(err, &ce) && ce.Code == code {
		return ce, true
	}
	return nil, false
}

// classify turns a command's result into an outcome. A NOT_FOUND on a
// connect's source or target is a missing node (retried later); other
// final refusals are refused; no answer is unknown.
func classify(err error, dupCode cairnv1.ErrorCode) outcome {
	if err == nil {
		return applied
	}
	if _, ok := isCode(err, dupCode); ok && dupCode != cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
		return duplicate
	}
	if ce, ok := isCode(err, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND); ok &&
		(strings.HasSuffix(ce.Field, ".source") || strings.HasSuffix(ce.Field, ".target")) {
		return missing
	}
	var ce *aggregate.CommandError
	if errors.As(err, &ce) && !retry.Retryable(ce.Code) {
		return refused
	}
	return unknown
}

// commandID is the command id of event id's command; suffix tells the
// commands of one event apart ("" or "/set").
func (a *Adapter) commandID(eventID, suffix string) string {
	return commandIDPrefix + a.cfg.Kind + "/" + eventID + suffix
}

// send executes cmd for the adapter's graph under command id.
func (a *Adapter) send(ctx context.Context, id string, cmd *cairnv1.Command) error {
	env := &cairnv1.CommandEnvelope{
		GraphId: a.cfg.Graph, CommandId: id, Issuer: "adapter/" + a.cfg.Kind,
		Commands: []*cairnv1.Command{cmd},
	}
	rep, err := a.engine.execute(ctx, env)
	if err == nil {
		if rep.GetDuplicate() {
			return errDuplicate
		}
		a.noteSeq(rep.GetSeq())
	}
	return err
}

// errDuplicate: the engine had seen the command id; nothing was written.
var errDuplicate = errors.New("duplicate command id")

func (a *Adapter) noteSeq(s uint64) {
	for {
		old := a.seq.Load()
		if s <= old || a.seq.CompareAndSwap(old, s) {
			return
		}
	}
}

// apply writes one action and says what became of it, with the engine's
// refusal when there was one.
func (a *Adapter) apply(ctx context.Context, act action) (outcome, error) {
	var (
		err  error
		dupC cairnv1.ErrorCode
	)
	switch act.kind {
	case actUpsert:
		return a.upsert(ctx, act)
	case actRemove:
		dupC = cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND // gone already
		err = a.send(ctx, a.commandID(act.eventID, ""), &cairnv1.Command{Kind: &cairnv1.Command_RemoveNode{
			RemoveNode: &cairnv1.RemoveNode{NodeId: act.node}}})
	case actConnect:
		dupC = cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS // one edge however often told
		err = a.send(ctx, a.commandID(act.eventID, ""), &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{
			ConnectNodes: &cairnv1.ConnectNodes{EdgeId: act.edgeID, Source: act.source, Target: act.target, EdgeType: act.edgeType, Components: act.components}}})
	case actDisconnect:
		dupC = cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND
		err = a.send(ctx, a.commandID(act.eventID, ""), &cairnv1.Command{Kind: &cairnv1.Command_DisconnectNodes{
			DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: act.edgeID}}})
	}
	if errors.Is(err, errDuplicate) {
		return duplicate, nil
	}
	return classify(err, dupC), err
}

// upsert asks the engine for the node (reading the adapter's own writes):
// absent, it adds it; present and older than the event, it sets the
// event's components (SetNodeComponents: attributes the event leaves out
// stay); present and not older, the event is a duplicate.
func (a *Adapter) upsert(ctx context.Context, act action) (outcome, error) {
	rep, err := a.engine.query(ctx, &cairnv1.QueryRequest{
		GraphId: a.cfg.Graph, MinSeq: a.seq.Load(),
		Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: act.node}},
	})
	var ce *aggregate.CommandError
	switch {
	case err == nil:
		if !newer(act.at, act.eventID, rep.GetNode().GetComponents()) {
			return duplicate, nil
		}
		err = a.send(ctx, a.commandID(act.eventID, "/set"), &cairnv1.Command{Kind: &cairnv1.Command_SetNodeComponents{
			SetNodeComponents: &cairnv1.SetNodeComponents{NodeId: act.node, Components: act.components}}})
		if errors.Is(err, errDuplicate) {
			return duplicate, nil
		}
		return classify(err, cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED), err
	case errors.As(err, &ce) && ce.Code == cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND && !strings.HasPrefix(ce.Field, "graph_id"):
		err = a.send(ctx, a.commandID(act.eventID, ""), &cairnv1.Command{Kind: &cairnv1.Command_AddNode{
			AddNode: &cairnv1.AddNode{NodeId: act.node, Components: act.components, Categories: []string{act.category}}}})
		if errors.Is(err, errDuplicate) {
			return duplicate, nil
		}
		if _, ok := isCode(err, cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS); ok {
			// The read model lagged behind a write that is not ours
			// to wait for: look again on the next delivery.
			return unknown, err
		}
		return classify(err, cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED), err
	}
	return classify(err, cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED), err
}

// ensureGraph checks that the graph exists, creating it (type
// "relationship") with Config.CreateGraph.
func (a *Adapter) ensureGraph(ctx context.Context) error {
	_, err := a.engine.query(ctx, &cairnv1.QueryRequest{GraphId: a.cfg.Graph,
		Query: &cairnv1.QueryRequest_GetStats{GetStats: &cairnv1.GetStats{}}})
	if err == nil {
		return nil
	}
	if _, ok := isCode(err, cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND); !ok {
		return fmt.Errorf("ask the engine for graph %s: %w", a.cfg.Graph, err)
	}
	if !a.cfg.CreateGraph {
		return fmt.Errorf("%w: %s", ErrNoGraph, a.cfg.Graph)
	}
	err = a.send(ctx, "adapter/create-graph/"+a.cfg.Graph, &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{
		CreateGraph: &cairnv1.CreateGraph{GraphId: a.cfg.Graph, GraphType: graphTypeRelation}}})
	if _, ok := isCode(err, cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS); ok || errors.Is(err, errDuplicate) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create graph %s: %w", a.cfg.Graph, err)
	}
	return nil
}
