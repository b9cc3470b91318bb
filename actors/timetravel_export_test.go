package actors

import (
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

// RunQuery answers req on g the way a projection shard does, with the
// default configuration: the time-travel tests compare views with a
// reference read model through it.
func RunQuery(g *readmodel.Graph, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	p := &Projections{cfg: DefaultProjectionConfig()}
	return p.run(g, req.GetGraphId(), req)
}
