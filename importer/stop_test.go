package importer_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/bench"
	"github.com/cairn-graph/cairn/importer"
	"github.com/cairn-graph/cairn/internal/enginetest"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// stopAt is the engine, except that its n-th call cancels the import's
// context (a Ctrl-C while envelopes are in flight) and that call then
// never reaches the engine: with hang it waits until its request is
// abandoned (an engine that stopped answering), else it is answered
// UNAVAILABLE, as a store that is down answers, so that the importer
// would back off and retry.
type stopAt struct {
	eng    *cairn.Engine
	n      int64
	hang   bool
	cancel context.CancelFunc
	calls  atomic.Int64
}

func (s *stopAt) Execute(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	if s.calls.Add(1) != s.n {
		return s.eng.Execute(ctx, env)
	}
	s.cancel()
	if s.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &cairnv1.CommandReply{CommandId: env.GetCommandId(), Error: &cairnv1.Error{
		Code: cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE, Message: "event store unavailable"}}, nil
}

// TestImportStopsPromptly: once its context ends, an import sends no new
// envelope and makes no retry, abandons what is still unanswered after
// StopGrace, checkpoints what was acknowledged and says where it stopped;
// the same import then resumes and completes, every edge applied once.
func TestImportStopsPromptly(t *testing.T) {
	for _, tc := range []struct {
		name string
		hang bool
	}{
		{"engine stops answering", true},
		{"store unavailable, retry pending", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := enginetest.Open(t, persistence.ListenNone)
			edges := genEdges(4, 3000)
			path := writeEdgeList(t, t.TempDir(), edges)
			cfg := config(t)
			cfg.BatchSize = 100 // 30 envelopes
			cfg.InFlight = 4
			cfg.StopGrace = 100 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			x := &stopAt{eng: eng, n: 10, hang: tc.hang, cancel: cancel}
			res, err := importer.Run(ctx, x, "g", path, cfg)
			if !errors.Is(err, importer.ErrInterrupted) {
				t.Fatalf("err = %v, want ErrInterrupted", err)
			}
			// The envelopes in flight when ctx ended (at most InFlight, the
			// n-th among them) were all that was sent: no new envelope and
			// no retry after it.
			if calls := x.calls.Load(); calls > x.n+int64(cfg.InFlight)-1 {
				t.Errorf("%d envelopes sent; at most %d may be, %d in flight when the import was stopped at the %d-th", calls, x.n+int64(cfg.InFlight)-1, cfg.InFlight, x.n)
			}
			msg := err.Error()
			if !strings.Contains(msg, "stopped after line") || !strings.Contains(msg, path) || !strings.Contains(msg, "resume") {
				t.Errorf("error %q does not say where the import stopped and how to resume", msg)
			}
			// The envelopes answered are in the checkpoint: all but the
			// ones launched with or after the n-th call (the first call
			// creates the graph).
			if least := (x.n - 1 - int64(cfg.InFlight)) * int64(cfg.BatchSize); res.Edges < least || res.Edges >= int64(len(edges)) || res.Edges%int64(cfg.BatchSize) != 0 {
				t.Errorf("interrupted import: %d edges acknowledged, want whole envelopes, at least %d, fewer than %d", res.Edges, least, len(edges))
			}
			if _, err := os.Stat(cfg.Checkpoint); err != nil {
				t.Fatalf("no checkpoint after the interruption: %v", err)
			}

			res, err = importer.Run(context.Background(), eng, "g", path, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.ResumedAt == 0 {
				t.Error("the second run did not resume")
			}
			if res.Edges != int64(len(edges)) || res.Existing != 0 || res.Bad != 0 {
				t.Errorf("resumed import: %+v, want %d edges and no existing ones", res.Counts, len(edges))
			}
			w := want(edges)
			checkGraph(t, readGraph(t, eng, "g", res.LastSeq, w.nodes), w)
		})
	}
}

// TestImportGivesUp: an envelope that gets no answer is sent Retries + 1
// times in all, then the import stops with an error naming the last
// failure and the number of tries.
func TestImportGivesUp(t *testing.T) {
	srv := natstest.Start(t) // NATS without an engine: nobody answers
	x, err := bench.Remote(srv.Conn(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, t.TempDir(), "e.txt", "a b\n")
	cfg := config(t)
	cfg.Retries = 2
	_, err = importer.Run(context.Background(), x, "g", path, cfg)
	if err == nil || errors.Is(err, importer.ErrInterrupted) {
		t.Fatalf("err = %v, want a failure", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "after 3 tries") || !strings.Contains(msg, "no Cairn engine answers") {
		t.Errorf("error %q names neither the tries nor the last failure", msg)
	}
}
