// Package jsleader moves a JetStream stream's leadership: the one
// step-down request that the engine (the event stream off the meta
// leader) and the cluster provider (the membership bucket off the event
// stream's leader) both make.
package jsleader

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StepDown asks the leader of stream, whose cluster info is info, to step
// down in favour of a current, online replica that avoid does not rule
// out (the first by name, so that every caller prefers the same one). It
// returns that replica, or "" and no error when there is none to prefer:
// the leader then stays.
func StepDown(ctx context.Context, nc *nats.Conn, stream string, info *jetstream.ClusterInfo, avoid func(name string) bool) (string, error) {
	var to []string
	for _, r := range info.Replicas {
		if r.Current && !r.Offline && (avoid == nil || !avoid(r.Name)) {
			to = append(to, r.Name)
		}
	}
	if len(to) == 0 {
		return "", nil
	}
	preferred := slices.Min(to)
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": preferred}})
	m, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req)
	if err != nil {
		return "", fmt.Errorf("step down the leader of %s: %w", stream, err)
	}
	var resp struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return "", fmt.Errorf("step down the leader of %s: %w", stream, err)
	}
	if resp.Error != nil {
		return "", fmt.Errorf("step down the leader of %s: %w", stream, resp.Error)
	}
	return preferred, nil
}
