package bench

// The cross-member hop: each command reply names the member that took the
// command from NATS and the member whose grain answered it
// (api.MemberHeader, api.OwnerHeader), so the scale scenario splits
// latencies by the path each command really took.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/cluster"
	"github.com/cairn-graph/cairn/internal/benchutil"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// scaleRoute is where one command ran, from its reply's headers.
type scaleRoute struct{ here, owner string }

// scaleSend sends env once and returns where it ran; a refusal is an
// error.
func scaleSend(ctx context.Context, nc *nats.Conn, env *cairnv1.CommandEnvelope, timeout time.Duration) (scaleRoute, error) {
	data, err := proto.Marshal(env)
	if err != nil {
		return scaleRoute{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	subject := api.CommandSubjectFor(env.GetGraphId())
	msg, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: data})
	if err != nil {
		return scaleRoute{}, fmt.Errorf("request on %s to %s: %w", subject, nc.ConnectedUrlRedacted(), err)
	}
	rep := &cairnv1.CommandReply{}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		return scaleRoute{}, fmt.Errorf("the reply on %s is not a CommandReply: %w", subject, err)
	}
	if err := aggregate.ErrorFromProto(rep.GetError()); err != nil {
		return scaleRoute{}, err
	}
	r := scaleRoute{here: msg.Header.Get(api.MemberHeader), owner: msg.Header.Get(api.OwnerHeader)}
	if r.here == "" || r.owner == "" {
		return r, fmt.Errorf("%w %s and %s on %s (an engine older than this bench?)", errNoRoute, api.MemberHeader, api.OwnerHeader, subject)
	}
	return r, nil
}

// scaleRetry sends env until it is acknowledged, retrying with the same
// command id (never applied twice) on UNAVAILABLE and on no answer, for at
// most timeout. It returns where the acknowledged try ran and what each
// refused try answered ("UNAVAILABLE", "no answer"); any other refusal
// is returned at once.
func scaleRetry(ctx context.Context, nc *nats.Conn, env *cairnv1.CommandEnvelope, timeout time.Duration) (scaleRoute, []string, error) {
	deadline := time.Now().Add(timeout)
	var refused []string
	for {
		r, err := scaleSend(ctx, nc, env, min(10*time.Second, max(time.Until(deadline), time.Millisecond)))
		if err == nil || errors.Is(err, errNoRoute) {
			return r, refused, err
		}
		what := "no answer"
		var ce *aggregate.CommandError
		if errors.As(err, &ce) {
			if ce.Code != cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE {
				return r, refused, err
			}
			what = ce.Code.String()
		}
		refused = append(refused, what)
		if time.Now().After(deadline) || ctx.Err() != nil {
			return r, refused, fmt.Errorf("not acknowledged within %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond) // back off before the same command goes again
	}
}

// errNoRoute: a reply without the route headers, from an engine that does
// not send them.
var errNoRoute = errors.New("the reply lacks the route headers")

// scaleSplit holds command latencies by where the command ran.
type scaleSplit struct {
	local, forwarded *benchutil.Latency
	mu               sync.Mutex
	handled          map[string]int64 // member address that took the command → commands
}

func newScaleSplit() *scaleSplit {
	return &scaleSplit{local: benchutil.NewLatency(), forwarded: benchutil.NewLatency(), handled: map[string]int64{}}
}

func (s *scaleSplit) record(r scaleRoute, took time.Duration) {
	if r.here == r.owner {
		s.local.Record(took)
	} else {
		s.forwarded.Record(took)
	}
	s.mu.Lock()
	s.handled[r.here]++
	s.mu.Unlock()
}

// figures gives the split's latencies; with several members, the
// forwarded share and the differences too.
func (s *scaleSplit) figures(phase string, several bool) []Figure {
	nl, nf := s.local.Count(), s.forwarded.Count()
	figs := []Figure{
		{Name: phase + ": local command p50", Value: msOf(s.local.Quantile(50)), Unit: "ms", Note: fmt.Sprintf("%d commands taken by their graph's owner", nl)},
		{Name: phase + ": local command p99", Value: msOf(s.local.Quantile(99)), Unit: "ms"},
	}
	if !several {
		return figs
	}
	share := 0.0
	if nl+nf > 0 {
		share = 100 * float64(nf) / float64(nl+nf)
	}
	return append(figs,
		Figure{Name: phase + ": forwarded command p50", Value: msOf(s.forwarded.Quantile(50)), Unit: "ms", Note: fmt.Sprintf("%d commands taken by another member and forwarded to the owner over the Proto.Actor remote", nf)},
		Figure{Name: phase + ": forwarded command p99", Value: msOf(s.forwarded.Quantile(99)), Unit: "ms"},
		Figure{Name: phase + ": hop p50", Value: msOf(s.forwarded.Quantile(50) - s.local.Quantile(50)), Unit: "ms", Note: "forwarded p50 − local p50"},
		Figure{Name: phase + ": hop p99", Value: msOf(s.forwarded.Quantile(99) - s.local.Quantile(99)), Unit: "ms", Note: "forwarded p99 − local p99 (of a few hundred commands a tail is noisy: it may come out below 0)"},
		Figure{Name: phase + ": commands forwarded", Value: share, Unit: "%"},
	)
}

// handlers says how many commands each member took from NATS.
func (s *scaleSplit) handlers(byRemote map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for addr, n := range s.handled {
		name := byRemote[addr]
		if name == "" {
			name = addr
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, n))
	}
	slices.Sort(parts)
	return "commands taken from NATS, by member: " + strings.Join(parts, ", ")
}

// scaleProbe sends cfg.Probe commands one at a time through a connection
// to m's NATS node alone, on the graphs in turn, and splits their latency
// by where they ran. It also counts how many m itself took (NATS gives a
// request from a client to any member of the service's queue group, local
// or across a route, at random) and checks each reply's owner against
// cluster.OwnerOf over the live members.
func scaleProbe(ctx context.Context, cfg ScaleConfig, m *scaleMember, clusterName string, graphs []string, next []int, byRemote map[string]string) ([]Figure, []string, error) {
	nc, err := nats.Connect("nats://"+m.client, nats.Name("cairn-bench-scale-probe"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", m.name, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	live, err := cluster.Members(cctx, js, clusterName)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	owner := map[string]string{} // graph → owner's address, as placement computes it
	for _, g := range graphs {
		if o, ok := cluster.OwnerOf(actors.GraphKind, g, live); ok {
			owner[g] = o.Address()
		}
	}
	split := newScaleSplit()
	mismatches, taken, retried := 0, 0, 0
	for i := range cfg.Probe {
		gi := i % len(graphs)
		g := graphs[gi]
		node := "p" + strconv.Itoa(next[gi])
		next[gi]++
		env := &cairnv1.CommandEnvelope{GraphId: g, CommandId: g + "-" + node, Issuer: "cairn-bench",
			Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: node}}}}}
		start := time.Now()
		r, refused, err := scaleRetry(ctx, nc, env, 30*time.Second)
		took := time.Since(start)
		if err != nil {
			return nil, nil, fmt.Errorf("graph %s: %w", g, err)
		}
		if len(refused) > 0 {
			retried++ // its latency is the retries', not the path's
		} else {
			split.record(r, took)
		}
		if r.owner != owner[g] {
			mismatches++
		}
		if r.here == m.remote {
			taken++
		}
	}
	figs := split.figures("probe", cfg.Members > 1)
	figs = append(figs,
		goalFigure("probe: owners unlike placement", float64(mismatches), "", "0", mismatches == 0,
			"replies whose owner is not cluster.OwnerOf over the membership bucket's members"),
		Figure{Name: "probe: taken by the connected member", Value: 100 * float64(taken) / float64(cfg.Probe), Unit: "%",
			Note: fmt.Sprintf("of %d commands sent through %s's node; %.0f%% if NATS picks a queue member at random", cfg.Probe, m.name, 100/float64(cfg.Members))})
	notes := []string{fmt.Sprintf("probe: %d commands one at a time through %s's node (%d retried, left out of the latencies); ", cfg.Probe, m.name, retried) + split.handlers(byRemote)}
	if mismatches > 0 {
		return figs, notes, fmt.Errorf("%d of %d replies name an owner other than placement's", mismatches, cfg.Probe)
	}
	return figs, notes, nil
}
