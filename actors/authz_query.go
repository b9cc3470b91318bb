package actors

import (
	"errors"
	"fmt"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/authz"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

// validateAuthzQuery checks the syntax of a Check or Expand.
func validateAuthzQuery(req *cairnv1.QueryRequest) *aggregate.CommandError {
	if c := req.GetCheck(); c != nil {
		if err := authz.CheckObject(c.GetObject()); err != nil {
			return invalid("check.object", "%v", err)
		}
		if err := authz.CheckName("relation", c.GetRelation()); err != nil {
			return invalid("check.relation", "%v", err)
		}
		if _, _, err := authz.ParseSubject(c.GetSubject()); err != nil {
			return invalid("check.subject", "%v", err)
		}
		return nil
	}
	e := req.GetExpand()
	if err := authz.CheckObject(e.GetObject()); err != nil {
		return invalid("expand.object", "%v", err)
	}
	if err := authz.CheckName("relation", e.GetRelation()); err != nil {
		return invalid("expand.relation", "%v", err)
	}
	return nil
}

// runAuthz answers a Check or Expand on g. A graph that is not an
// authorization graph is FAILED_PRECONDITION; a depth or lookup bound
// passed is RESOURCE_EXHAUSTED naming the bound.
func runAuthz(g *readmodel.Graph, graph string, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	rep := &cairnv1.QueryReply{}
	var err error
	field := "check"
	if c := req.GetCheck(); c != nil {
		var res readmodel.CheckResult
		if res, err = g.Check(c.GetObject(), c.GetRelation(), c.GetSubject()); err == nil {
			rep.Result = &cairnv1.QueryReply_Check{Check: &cairnv1.CheckResult{Allowed: res.Allowed, Lookups: uint32(res.Lookups)}}
		}
	} else {
		field = "expand"
		e := req.GetExpand()
		var t *cairnv1.UsersetTree
		if t, err = g.Expand(e.GetObject(), e.GetRelation()); err == nil {
			rep.Result = &cairnv1.QueryReply_Expand{Expand: &cairnv1.ExpandResult{Tree: t}}
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, readmodel.ErrNotAuthorization):
		rep.Error = failedPrecondition("graph_id", "graph %s: %v: check and expand answer on graphs of type %s", graph, err, authz.TypeName).Proto()
	case errors.Is(err, readmodel.ErrLimitExceeded):
		rep.Error = (&aggregate.CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED, Field: field,
			Message: fmt.Sprintf("graph %s: %v", graph, err)}).Proto()
	default:
		rep.Error = queryError(graph, req, err).Proto()
	}
	return rep
}
