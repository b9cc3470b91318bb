package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The Cairn side of the peer scenario: the engine's own queries and
// commands, through the remote driver (protobuf over NATS) to a child
// `cairn serve`.

// cairnSide asks the engine through the remote driver; every query waits
// for the engine's last acknowledged write (min_seq): read-your-writes.
type cairnSide struct {
	d  Driver
	nc *nats.Conn // the driver's connection, for ping
	// pingSubject is one service instance's PING subject; empty until
	// the first ping.
	pingSubject string
	graph       string
	pid         int
	minSeq      uint64
}

func (c *cairnSide) name() string { return "cairn" }

func (c *cairnSide) cpu() (time.Duration, error) { return processCPU(c.pid, false) }

// ping asks the "cairn" micro service's PING endpoint, which the NATS
// client library answers in cairn serve: a request/reply through the
// embedded server without the engine's own code.
// The engine runs two instances of the service (queries and commands on
// separate connections), so the first ping finds one's id and the others
// ask that one alone.
func (c *cairnSide) ping(ctx context.Context) error {
	if c.pingSubject == "" {
		msg, err := c.nc.RequestWithContext(ctx, "$SRV.PING."+api.ServiceName, nil)
		if err != nil {
			return err
		}
		var info struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(msg.Data, &info); err != nil || info.ID == "" {
			return fmt.Errorf("ping: no service id in %q (%v)", msg.Data, err)
		}
		c.pingSubject = "$SRV.PING." + api.ServiceName + "." + info.ID
	}
	_, err := c.nc.RequestWithContext(ctx, c.pingSubject, nil)
	return err
}

func (c *cairnSide) query(ctx context.Context, req *cairnv1.QueryRequest) (*cairnv1.QueryReply, error) {
	req.GraphId, req.MinSeq = c.graph, c.minSeq
	return c.d.Query(ctx, req)
}

func (c *cairnSide) degree(ctx context.Context, node int) (degrees, error) {
	rep, err := c.query(ctx, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: NodeID(node)}}})
	if err = queryErr(rep, err); err != nil {
		return degrees{}, err
	}
	return degrees{Out: int(rep.GetNode().GetOutDegree()), In: int(rep.GetNode().GetInDegree())}, nil
}

func (c *cairnSide) neighbors(ctx context.Context, node, limit int) ([]peerEdge, error) {
	rep, err := c.query(ctx, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ListNeighbors{ListNeighbors: &cairnv1.ListNeighbors{
		NodeId: NodeID(node), Direction: cairnv1.Direction_DIRECTION_BOTH, Limit: uint32(limit)}}})
	if err = queryErr(rep, err); err != nil {
		return nil, err
	}
	nbs := rep.GetNeighbors().GetNeighbors()
	out := make([]peerEdge, len(nbs))
	for i, nb := range nbs {
		id, err1 := numericID(nb.GetEdgeId(), "e")
		other, err2 := numericID(nb.GetNodeId(), "n")
		typ, err3 := edgeTypeNum(nb.GetEdgeType())
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, err
		}
		out[i] = peerEdge{ID: id, Node: other, Type: typ}
	}
	return out, nil
}

func (c *cairnSide) twoHop(ctx context.Context, node int) (int, error) {
	rep, err := c.query(ctx, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_KHop{KHop: &cairnv1.KHop{
		NodeId: NodeID(node), Direction: cairnv1.Direction_DIRECTION_OUT, Depth: 2}}})
	if err = queryErr(rep, err); err != nil {
		return 0, err
	}
	return len(rep.GetKHop().GetNodes()), nil
}

func (c *cairnSide) path(ctx context.Context, from, to int) (int, error) {
	rep, err := c.query(ctx, &cairnv1.QueryRequest{Query: &cairnv1.QueryRequest_ShortestPath{ShortestPath: &cairnv1.ShortestPath{
		FromNodeId: NodeID(from), ToNodeId: NodeID(to), Direction: cairnv1.Direction_DIRECTION_BOTH}}})
	err = queryErr(rep, err)
	var ce *aggregate.CommandError
	if errors.As(err, &ce) && ce.Code == cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND {
		return noPath, nil // both nodes exist: no path between them
	}
	if err != nil {
		return 0, err
	}
	return len(rep.GetPath().GetEdgeIds()), nil
}

func (c *cairnSide) connect(ctx context.Context, e peerWrite) error {
	id := EdgeID(e.ID)
	rep, err := c.d.Execute(ctx, &cairnv1.CommandEnvelope{GraphId: c.graph, CommandId: c.graph + "-" + id, Issuer: "cairn-bench",
		Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{
			EdgeId: id, Source: NodeID(e.Src), Target: NodeID(e.Dst), EdgeType: edgeTypeName(e.Type)}}}}})
	if err = replyErr(rep, err); err != nil {
		return err
	}
	c.minSeq = max(c.minSeq, rep.GetSeq())
	return nil
}
