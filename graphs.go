package cairn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/auth"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

// Requests about many graphs: the catalogue (ListGraphs) and the finds
// across graphs (FindAcross), on api.GraphsSubject.
//
// A single engine answers from its projections (actors.Projections.Across:
// every shard, merged). A cluster member gathers from every member of its
// view of the cluster, itself included, each answering from its own share
// of the graphs on api.MemberGraphsSubject, and merges the pages
// (actors.GatherAcross). A member that does not answer in time makes the
// whole reply UNAVAILABLE naming it: a page is never silently partial. A
// member that has not joined its cluster (or fenced itself) answers
// UNAVAILABLE too, since its own share is no longer known.
//
// With users configured (Config.Auth) the gateway answers only about the
// graphs the asking identity may read (graphsFor): the request is narrowed
// to them before it is gathered, so pages and cursors are the user's own.

// Graphs answers a request about many graphs (list_graphs or
// find_across) with every graph, as an admin would get it: the engine's
// in-process API. Errors as Query's: INVALID_ARGUMENT (limit, cursor,
// graph ids, an as_of that is not a seq), DEADLINE_EXCEEDED, and
// UNAVAILABLE when a cluster member did not answer.
func (e *Engine) Graphs(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	rep := e.gatherGraphs(ctx, req)
	return rep, aggregate.ErrorFromProto(rep.GetError())
}

// graphsFor answers req for the identity whose inbox reply is in
// (actors.GatewayConfig.Graphs).
func (e *Engine) graphsFor(ctx context.Context, reply string, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	if err := actors.ValidateAcross(req, readmodel.MaxLimit); err != nil {
		return &cairnv1.QueryReply{Error: err.Proto()}
	}
	all, graphs := readableGraphs(e.cfg.Auth, reply)
	if !all {
		var none bool
		if req, none = narrow(req, graphs); none {
			return emptyAcross(req)
		}
	}
	return e.gatherGraphs(ctx, req)
}

// readableGraphs returns the graphs the identity whose inbox reply is in
// may read: all, or a list. Without users every request reads all; with
// users, one from outside every user's inbox reads none.
func readableGraphs(users *auth.File, reply string) (all bool, graphs []string) {
	if users == nil {
		return true, nil
	}
	u, ok := userOf(users, reply)
	switch {
	case !ok:
		return false, nil
	case u.Role == auth.Admin || u.Role == auth.Member || u.AllGraphs():
		return true, nil
	}
	return false, u.Graphs
}

// userOf returns the user of users whose inbox the reply subject reply is
// in (api.IdentityOfReply: its name, or its nkey's public key).
func userOf(users *auth.File, reply string) (auth.User, bool) {
	id, ok := api.IdentityOfReply(reply)
	if !ok {
		return auth.User{}, false
	}
	for _, u := range users.Users {
		if u.Name == id || (u.Nkey != "" && u.Nkey == id) {
			return u, true
		}
	}
	return auth.User{}, false
}

// narrow returns req limited to graphs; none when that leaves no graph.
func narrow(req *cairnv1.QueryRequest, graphs []string) (_ *cairnv1.QueryRequest, none bool) {
	out := proto.CloneOf(req)
	keep := func(asked []string) []string {
		if len(asked) == 0 {
			return slices.Clone(graphs)
		}
		var kept []string
		for _, g := range asked {
			if slices.Contains(graphs, g) {
				kept = append(kept, g)
			}
		}
		return kept
	}
	if l := out.GetListGraphs(); l != nil {
		l.GraphIds = keep(l.GetGraphIds())
		return out, len(l.GraphIds) == 0
	}
	f := out.GetFindAcross()
	if f.GetAllGraphs() {
		f.GraphIds, f.AllGraphs = keep(nil), false
	} else {
		f.GraphIds = keep(f.GetGraphIds())
	}
	return out, len(f.GraphIds) == 0
}

// emptyAcross is the answer of a request that selects no graph.
func emptyAcross(req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	if req.GetListGraphs() != nil {
		return &cairnv1.QueryReply{Result: &cairnv1.QueryReply_Graphs{Graphs: &cairnv1.GraphPage{}}}
	}
	return &cairnv1.QueryReply{Result: &cairnv1.QueryReply_GraphNodes{GraphNodes: &cairnv1.GraphNodePage{}}}
}

// gatherGraphs answers req from this engine's projections, and in a
// cluster from every member's, bounded by the query timeout.
func (e *Engine) gatherGraphs(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	if err := actors.ValidateAcross(req, readmodel.MaxLimit); err != nil {
		return &cairnv1.QueryReply{Error: err.Proto()}
	}
	ctx, cancel := actors.QueryContext(ctx, req, e.cfg.Projections.QueryTimeout)
	defer cancel()
	start := time.Now()
	rep := e.gather(ctx, req)
	if m := e.cfg.Metrics; m != nil {
		m.Query(req, rep, time.Since(start))
	}
	return rep
}

func (e *Engine) gather(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	if e.route == nil {
		return e.proj.Across(ctx, req)
	}
	m := e.startedMember()
	if m == nil || m.Lookup().Fenced() {
		return &cairnv1.QueryReply{Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE,
			Message: "this member is not in its cluster now, so it cannot gather every member's graphs; ask another member"}).Proto()}
	}
	sources := []actors.AcrossSource{e.share}
	for _, id := range m.Lookup().Members() {
		if id != m.ID() {
			sources = append(sources, func(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
				return e.forwardGraphs(ctx, id, req)
			})
		}
	}
	if len(sources) == 1 {
		return e.share(ctx, req)
	}
	return actors.GatherAcross(ctx, req, sources)
}

// shareWait is the part of a request's time that a member's share waits
// for adoptions in; the rest is left for the answer to reach the member
// that gathers.
const shareWait = 3 / 4.0

// share answers req from this member's own graphs (its projections). A
// graph the member is adopting (its read model is being loaded after a
// membership change) is not in its read models yet: share waits for the
// adoptions of the graphs the page could hold, for shareWait of the
// request's time at most, and answers then with the ones still being
// adopted named as pending (GraphPage.pending, GraphNodePage.pending).
// While the member has not yet started to adopt the graphs of a
// membership change (router.rebalancing), it cannot tell which graphs it
// misses: after the same wait that is UNAVAILABLE.
func (e *Engine) share(ctx context.Context, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	ctx, cancel := actors.QueryContext(ctx, req, e.cfg.Projections.QueryTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	timer := time.NewTimer(time.Duration(float64(time.Until(dl)) * shareWait))
	defer timer.Stop()
	for {
		changed := e.proj.AdoptionsChanged()
		stale := e.route.rebalancing()
		var rep *cairnv1.QueryReply
		if !stale {
			rep = e.proj.Across(ctx, req)
			if rep.GetError() != nil || len(rep.GetGraphs().GetPending())+len(rep.GetGraphNodes().GetPending()) == 0 {
				return rep
			}
		}
		select {
		case <-changed:
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		if stale {
			return &cairnv1.QueryReply{Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE,
				Message: "this member has not yet started to adopt the graphs of the last membership change, so its share is not known; ask again"}).Proto()}
		}
		return rep
	}
}

// forwardGraphs asks member id for its share of req.
func (e *Engine) forwardGraphs(ctx context.Context, id string, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	unavailable := func(format string, a ...any) *cairnv1.QueryReply {
		return &cairnv1.QueryReply{Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE,
			Message: fmt.Sprintf("cluster member %s: ", id) + fmt.Sprintf(format, a...)}).Proto()}
	}
	dl, _ := ctx.Deadline()
	left := time.Until(dl)
	if left <= 0 {
		return unavailable("no time left to ask it")
	}
	fwd := proto.CloneOf(req)
	if ms := uint32(min(left.Milliseconds(), 1<<31)); fwd.GetTimeoutMs() == 0 || ms < fwd.GetTimeoutMs() {
		fwd.TimeoutMs = max(ms, 1)
	}
	data, err := proto.Marshal(fwd)
	if err != nil {
		return unavailable("encode the request: %v", err)
	}
	msg, err := e.nc.RequestWithContext(ctx, api.MemberGraphsSubject(id), data)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return unavailable("did not answer in time, so the answer would miss its graphs")
	case err != nil:
		return unavailable("did not answer (%v), so the answer would miss its graphs", err)
	}
	rep := &cairnv1.QueryReply{}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		return unavailable("answered no QueryReply: %v", err)
	}
	return rep
}

// answerGraphsRouted answers another member's request for this member's
// share of a request about many graphs.
func (e *Engine) answerGraphsRouted(msg *nats.Msg) {
	e.route.serve(func() {
		req := &cairnv1.QueryRequest{}
		var rep *cairnv1.QueryReply
		if err := proto.Unmarshal(msg.Data, req); err != nil {
			rep = &cairnv1.QueryReply{Error: (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT,
				Message: fmt.Sprintf("routed graphs request is not a protobuf cairn.v1.QueryRequest: %v", err)}).Proto()}
		} else {
			rep = e.share(context.Background(), req)
		}
		data, err := actors.MarshalQueryReply(rep, e.nc.MaxPayload())
		if err == nil {
			err = msg.Respond(data)
		}
		if err != nil {
			e.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "answering a routed graphs request failed", slog.String("err", err.Error()))
		}
	})
}
