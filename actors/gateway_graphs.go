package actors

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/tracing"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// GraphsFunc answers a request about many graphs (list_graphs,
// find_across) for the client whose reply subject is reply (the engine
// learns who asked from it, api.IdentityOfReply); it always returns a
// reply, with the failure in its error.
type GraphsFunc func(ctx context.Context, reply string, req *cairnv1.QueryRequest) *cairnv1.QueryReply

// addGraphsEndpoint serves graphs on api.GraphsSubject, as a query.
func (g *Gateway) addGraphsEndpoint(svc micro.Service, graphs GraphsFunc) error {
	if graphs == nil {
		return nil
	}
	err := svc.AddEndpoint("graphs", micro.HandlerFunc(func(req micro.Request) { g.handleGraphs(req, graphs) }),
		micro.WithEndpointSubject(api.GraphsSubject),
		micro.WithEndpointMetadata(map[string]string{
			"request":  "cairn.v1.QueryRequest with list_graphs or find_across (protobuf)",
			"response": "cairn.v1.QueryReply (protobuf)",
		}))
	if err != nil {
		return fmt.Errorf("start gateway: add graphs endpoint: %w", err)
	}
	return nil
}

// handleGraphs is handleQuery for api.GraphsSubject.
func (g *Gateway) handleGraphs(req micro.Request, graphs GraphsFunc) {
	q := &cairnv1.QueryRequest{}
	if err := proto.Unmarshal(req.Data(), q); err != nil {
		g.respond(req, &cairnv1.QueryReply{Error: invalid("", "request is not a protobuf cairn.v1.QueryRequest: %v", err).Proto()})
		return
	}
	g.work(g.querySem, func() { g.respond(req, &cairnv1.QueryReply{Error: unavailable("cairn is shutting down").Proto()}) },
		func(ctx context.Context) {
			if g.propagate {
				ctx = tracing.Extract(ctx, req.Headers())
			}
			g.respondQuery(req, graphs(ctx, req.Reply(), q))
		})
}
