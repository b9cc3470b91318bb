package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Dispatcher sends command envelopes to their graph's grain wherever the
// cluster placed it.
type Dispatcher struct {
	cluster *cluster.Cluster
	timeout time.Duration
}

// NewDispatcher returns a dispatcher over c; timeout bounds a request when
// the caller's ctx has no earlier deadline.
func NewDispatcher(c *cluster.Cluster, timeout time.Duration) *Dispatcher {
	return &Dispatcher{cluster: c, timeout: timeout}
}

// Execute validates env, sends it to its graph's grain and returns the reply.
// Failures are in the reply's error: INVALID_ARGUMENT for a malformed
// envelope, UNAVAILABLE when the grain did not answer in time (retry with the
// same command id: it is never applied twice).
func (d *Dispatcher) Execute(ctx context.Context, env *cairnv1.CommandEnvelope) *cairnv1.CommandReply {
	if err := ValidateEnvelope(env); err != nil {
		return errorReply(env, AsCommandError(err))
	}
	timeout := d.timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout {
			timeout = left
		}
	}
	if timeout <= 0 {
		return errorReply(env, unavailable("deadline passed before the command was sent"))
	}
	res, err := d.cluster.Request(env.GetGraphId(), GraphKind, env, cluster.WithTimeout(timeout))
	if err != nil {
		return errorReply(env, unavailable("graph %s did not answer: %v", env.GetGraphId(), err))
	}
	rep, ok := res.(*cairnv1.CommandReply)
	if !ok {
		return errorReply(env, &CommandError{Code: cairnv1.ErrorCode_ERROR_CODE_INTERNAL, Message: "grain answered with an unexpected message"})
	}
	return rep
}
