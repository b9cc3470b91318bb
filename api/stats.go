package api

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// EngineMetadata is the service metadata key whose value names one
// engine. An engine serves the "cairn" service as two instances, each on
// a NATS connection of its own (the "command" endpoint on one, the "query"
// endpoint on the other, so that a flood of queries cannot delay or drop
// commands); both carry the engine's value. An engine from before the
// split serves both endpoints from one instance without it.
const EngineMetadata = "engine"

// EndpointStats asks every instance of the "cairn" service for its stats
// and returns the stats data (micro.EndpointStats.Data) of one engine's
// endpoints by endpoint name: the first engine whose instances have
// answered for every endpoint in want. When ctx ends first it returns what
// the first engine to answer gave, if anything, with no error; the caller
// checks for the endpoints it needs. Errors: nats.ErrNoResponders when no
// engine runs, ctx's error when none answered, a decoding error.
func EndpointStats(ctx context.Context, nc *nats.Conn, want ...string) (map[string]json.RawMessage, error) {
	subject, err := micro.ControlSubject(micro.StatsVerb, ServiceName, "")
	if err != nil {
		return nil, err
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", ServiceName, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, fmt.Errorf("stats of %s: %w", ServiceName, err)
	}
	engines := map[string]map[string]json.RawMessage{}
	first := ""
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if first != "" && ctx.Err() != nil {
				return engines[first], nil
			}
			return nil, fmt.Errorf("stats of %s: %w", ServiceName, err)
		}
		if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
			return nil, fmt.Errorf("stats of %s: %w", ServiceName, nats.ErrNoResponders)
		}
		var st micro.Stats
		if err := json.Unmarshal(msg.Data, &st); err != nil {
			return nil, fmt.Errorf("the engine's stats are not JSON: %w", err)
		}
		key := st.Metadata[EngineMetadata]
		if key == "" {
			key = "instance " + st.ID
		}
		if first == "" {
			first = key
		}
		eps := engines[key]
		if eps == nil {
			eps = map[string]json.RawMessage{}
			engines[key] = eps
		}
		for _, e := range st.Endpoints {
			if e != nil {
				eps[e.Name] = e.Data
			}
		}
		complete := true
		for _, w := range want {
			if _, ok := eps[w]; !ok {
				complete = false
			}
		}
		if complete {
			return eps, nil
		}
	}
}
