package cairn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/auth"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Cross-graph links, the write side (docs/cross-graph.md). A client sends
// ConnectNodes{edge e, source a, target n, target_graph B} to graph A; the
// engine records it in both graphs as a small saga of single-command
// envelopes whose command ids derive from the client's:
//
//  1. B: ConnectNodes{e, a, n, source_graph A} (issuer aggregate.LinkIssuer):
//     B's Decide checks that n exists and adds reference node "A/a" → n;
//  2. A: the client's own envelope: A's Decide checks that a exists and e is
//     new, and adds a → reference node "B/n";
//  3. if A refuses, B's half is undone (DisconnectNodes, LinkIssuer).
//
// Before step 1 the engine reads A's read model (checkLinkSource) and
// refuses what A would refuse (no such source, a reference node as source,
// an edge id A holds), so that such a refusal writes nothing in B; the undo
// is left for races (A changed between the read and step 2).
//
// A retry of the client's command replays each step from the graphs'
// idempotency windows, so nothing is recorded twice. A DisconnectNodes of
// a link's half, sent alone to either graph, removes the other half first,
// then this one.

// executeLinked runs env through disp, as a saga when it is a link or the
// removal of one (the engine's dispatch calls it).
func (e *Engine) executeLinked(ctx context.Context, disp *actors.Dispatcher, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	if ctx.Value(linkStepKey{}) != nil {
		return disp.Execute(ctx, env) // the engine's own step (the linker's marks)
	}
	if strings.HasPrefix(env.GetIssuer(), aggregate.ReservedPrefix) {
		return aggregate.ErrorReply(env, aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "issuer",
			"issuer %q: issuers starting with %q are reserved for the engine", env.GetIssuer(), aggregate.ReservedPrefix))
	}
	cmds := env.GetCommands()
	if len(cmds) == 1 && aggregate.IsLinkCommand(cmds[0]) {
		return e.connectLinked(ctx, disp, env)
	}
	rep := disp.Execute(ctx, env)
	if len(cmds) != 1 || cmds[0].GetDisconnectNodes() == nil || rep.GetError().GetField() != "commands[0].disconnect_nodes.edge_id" {
		return rep
	}
	switch rep.GetError().GetCode() {
	case cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION: // a link's half
		return e.disconnectLinked(ctx, disp, env, rep)
	case cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND:
		// Perhaps a retry of a link's removal that went through: its last
		// step's answer is in the graph's window.
		if r := disp.Execute(ctx, unlinkStep(env, env.GetGraphId(), "unlink")); r.GetError() == nil && r.GetDuplicate() {
			r.CommandId = env.GetCommandId()
			return r
		}
	}
	return rep
}

// stepID derives the command id of one step of env's saga.
func stepID(env *cairnv1.CommandEnvelope, step string) string {
	h := sha256.Sum256([]byte(env.GetGraphId() + "\x00" + env.GetCommandId()))
	return "cairn.link." + step + "." + hex.EncodeToString(h[:20])
}

func unlinkStep(env *cairnv1.CommandEnvelope, graph, step string) *cairnv1.CommandEnvelope {
	return &cairnv1.CommandEnvelope{GraphId: graph, CommandId: stepID(env, step), CorrelationId: env.GetCorrelationId(),
		CausationId: env.GetCommandId(), Issuer: aggregate.LinkIssuer,
		Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{
			EdgeId: env.GetCommands()[0].GetDisconnectNodes().GetEdgeId()}}}}}
}

// asClient answers the client's command with a step's reply.
func asClient(env *cairnv1.CommandEnvelope, r *cairnv1.CommandReply, graph string) *cairnv1.CommandReply {
	r.CommandId = env.GetCommandId()
	if r.Error != nil && graph != env.GetGraphId() && !strings.Contains(r.Error.Message, graph) {
		r.Error.Message = "graph " + graph + ": " + r.Error.Message
	}
	return r
}

func (e *Engine) connectLinked(ctx context.Context, disp *actors.Dispatcher, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	if err := aggregate.ValidateEnvelope(env); err != nil {
		return aggregate.ErrorReply(env, aggregate.AsCommandError(err))
	}
	cn := env.GetCommands()[0].GetConnectNodes()
	if cn.GetSourceGraph() != "" {
		return aggregate.ErrorReply(env, aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "commands[0].connect_nodes.source_graph",
			"source_graph is set by the engine on a link's mirror half; send the link to graph %s with target_graph %s", cn.GetSourceGraph(), env.GetGraphId()))
	}
	b := cn.GetTargetGraph()
	if err := e.mayUse(ctx, b, true); err != nil {
		return aggregate.ErrorReply(env, err)
	}
	mirror := func(step string) *cairnv1.CommandEnvelope {
		return &cairnv1.CommandEnvelope{GraphId: b, CommandId: stepID(env, step), CorrelationId: env.GetCorrelationId(),
			CausationId: env.GetCommandId(), Issuer: aggregate.LinkIssuer,
			Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{
				EdgeId: cn.GetEdgeId(), Source: cn.GetSource(), Target: cn.GetTarget(), EdgeType: cn.GetEdgeType(),
				Components: cn.GetComponents(), SourceGraph: env.GetGraphId()}}}}}
	}
	if err := e.checkLinkSource(ctx, env.GetGraphId(), cn); err != nil {
		return aggregate.ErrorReply(env, err)
	}
	r1 := disp.Execute(ctx, mirror("link"))
	if r1.GetError() != nil {
		return asClient(env, r1, b)
	}
	r2 := disp.Execute(ctx, env)
	switch code := r2.GetError().GetCode(); {
	case r2.GetError() == nil:
		if r1.GetDuplicate() && !r2.GetDuplicate() {
			// A retry: B's half may have been undone after an earlier
			// refusal of A's; record it again (ALREADY_EXISTS: it is there).
			disp.Execute(ctx, mirror("relink"))
		}
	case code == cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE || code == cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED:
		// A's outcome is unknown: the client retries with the same id.
	default:
		undo := &cairnv1.CommandEnvelope{GraphId: b, CommandId: stepID(env, "undo"), CorrelationId: env.GetCorrelationId(),
			CausationId: env.GetCommandId(), Issuer: aggregate.LinkIssuer,
			Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: cn.GetEdgeId()}}}}}
		if u := disp.Execute(ctx, undo); u.GetError() != nil && u.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
			r2.Error.Message += fmt.Sprintf(" (and undoing the link's half in graph %s failed: %s; retry with the same command id)", b, u.GetError().GetMessage())
		}
	}
	return r2
}

// checkLinkSource refuses, before anything is written, a link that the
// source graph's read model (at the graph's last transaction) shows its
// Decide would refuse after B's half is written: no such source node, a
// reference node as source, or an edge id the graph holds already. The
// undo would net to no change but leave two events in B. An edge with that
// id that is this very link's half (same source, target and type) is let
// through: it is what a retry of the link finds, and the saga answers it
// from the graphs' idempotency windows. A's Decide stays the authority
// (and the undo stays for races); this saves the round trip and the trace.
func (e *Engine) checkLinkSource(ctx context.Context, graph string, cn *cairnv1.ConnectNodes) *aggregate.CommandError {
	const field = "commands[0].connect_nodes."
	source := cn.GetSource()
	last, err := e.store.LastSeq(ctx, graph)
	if err != nil {
		return nil
	}
	qr := e.ask(ctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: last, Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: source}}})
	switch {
	case qr.GetError().GetCode() == cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND && qr.GetError().GetField() == "get_node.node_id":
		return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND, field+"source", "graph %s has no node %q", graph, source)
	case slices.Contains(qr.GetNode().GetCategories(), aggregate.RefCategory):
		return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION, field+"source", "node %q is a reference node (category %s): link the node itself", source, aggregate.RefCategory)
	}
	qr = e.ask(ctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: last, Query: &cairnv1.QueryRequest_GetEdge{GetEdge: &cairnv1.GetEdge{EdgeId: cn.GetEdgeId()}}})
	if ed := qr.GetEdge(); ed != nil && (ed.GetSource() != source || ed.GetTarget() != aggregate.RefNodeID(cn.GetTargetGraph(), cn.GetTarget()) || ed.GetEdgeType() != cn.GetEdgeType()) {
		return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, field+"edge_id", "edge %q already exists in graph %s", cn.GetEdgeId(), graph)
	}
	return nil
}

// disconnectLinked removes both halves of the link whose removal graph
// refused (a client may not remove one half alone): the other graph's
// first, then this one's.
func (e *Engine) disconnectLinked(ctx context.Context, disp *actors.Dispatcher, env *cairnv1.CommandEnvelope, refused *cairnv1.CommandReply) *cairnv1.CommandReply {
	graph, edge := env.GetGraphId(), env.GetCommands()[0].GetDisconnectNodes().GetEdgeId()
	// The refusal saw the edge: the link index has it once the graph's
	// shard has applied the graph's last transaction.
	last, err := e.store.LastSeq(ctx, graph)
	if err != nil {
		return refused
	}
	qr := e.ask(ctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: last,
		Query: &cairnv1.QueryRequest_ListLinks{ListLinks: &cairnv1.ListLinks{EdgeId: edge, Limit: 1}}})
	links := qr.GetLinks().GetLinks()
	if qr.GetError() != nil || len(links) == 0 {
		return refused
	}
	other := links[0].GetOtherGraph()
	if err := e.mayUse(ctx, other, true); err != nil {
		return aggregate.ErrorReply(env, err)
	}
	if r := disp.Execute(ctx, unlinkStep(env, other, "unlink-mirror")); r.GetError() != nil &&
		r.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND && r.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_FAILED_PRECONDITION {
		return asClient(env, r, other)
	}
	return asClient(env, disp.Execute(ctx, unlinkStep(env, graph, "unlink")), graph)
}

// mayUse checks that whoever sent the request ctx carries (actors.Caller:
// its reply subject, "_INBOX.<identity>.…") may write (or read) graph,
// when the engine has users (Config.Auth). A Go program calling the
// engine directly is the engine's own identity.
func (e *Engine) mayUse(ctx context.Context, graph string, write bool) *aggregate.CommandError {
	if e.cfg.Auth == nil {
		return nil
	}
	caller := actors.Caller(ctx)
	if caller == "" {
		return nil
	}
	verb := "read"
	if write {
		verb = "write"
	}
	if u, ok := userOf(e.cfg.Auth, caller); ok {
		switch {
		case u.Role == auth.Member || u.Role == auth.Admin:
			return nil
		case write && u.Role != auth.Writer:
		case u.AllGraphs() || slices.Contains(u.Graphs, graph):
			return nil
		}
		why := "a traversal that follows links needs the right to read every graph it enters"
		if write {
			why = "a cross-graph link needs the right to write both graphs"
		}
		return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "graph_id", "user %s (role %s, graphs %s) may not %s graph %s: %s",
			u.Name, u.Role, graphList(u.Graphs), verb, graph, why)
	}
	return aggregate.Errorf(cairnv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "graph_id", "reply subject %q names no known user: cannot %s graph %s across graphs", caller, verb, graph)
}

// linkStepKey marks a context under which the engine dispatches its own
// link steps (issuer aggregate.LinkIssuer), which clients may not send.
type linkStepKey struct{}

func graphList(gs []string) string {
	if len(gs) == 0 {
		return "all"
	}
	return strings.Join(gs, ",")
}
