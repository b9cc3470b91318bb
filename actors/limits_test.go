package actors_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// smallStore is an event store on an embedded server whose max_payload is
// 1 MiB, so that the transaction limit is cheap to reach.
func smallStore(t *testing.T) *persistence.Store {
	t.Helper()
	return natstest.StartConfig(t, persistence.ServerConfig{MaxPayload: 1 << 20}).Store()
}

// A node removal whose transaction the store cannot take is refused up
// front as RESOURCE_EXHAUSTED, naming both sizes, and changes nothing; the
// node can then be removed in smaller steps.
func TestRemoveNodePastTheLimit(t *testing.T) {
	store := smallStore(t)
	m := startMember(t, store, quickGrains())
	mustOK(t, m.exec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph(), cmdtest.AddNode("hub"))))
	const edges = 8000 // about 1.7 MB of EdgeRemoved events
	for k := 0; k < edges; k += 1000 {
		var cmds []*cairnv1.Command
		for i := k; i < k+1000; i++ {
			c := cmdtest.Connect(fmt.Sprint("e", i), "hub", fmt.Sprint("leaf", i))
			c.GetConnectNodes().CreateMissing = true
			cmds = append(cmds, c)
		}
		mustOK(t, m.exec(cmdtest.Envelope("g", fmt.Sprint("add", k), cmds...)))
	}
	rep := m.exec(cmdtest.Envelope("g", "rm", cmdtest.RemoveNode("hub")))
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED {
		t.Fatalf("removing a node of %d edges past a 1 MiB limit: %v, want RESOURCE_EXHAUSTED", edges, rep)
	}
	limit := store.MaxTransactionBytes()
	if msg := rep.GetError().GetMessage(); !strings.Contains(msg, "bytes") || !strings.Contains(msg, fmt.Sprint(limit-4<<10)) {
		t.Fatalf("refusal %q does not name the limit (%d bytes)", msg, limit)
	}
	// Nothing changed: a retry is refused the same way, and the edges can
	// go in smaller steps, then the node.
	if again := m.exec(cmdtest.Envelope("g", "rm", cmdtest.RemoveNode("hub"))); again.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED || again.GetDuplicate() {
		t.Fatalf("retry: %v", again)
	}
	for k := 0; k < edges; k += 1000 {
		var cmds []*cairnv1.Command
		for i := k; i < k+1000; i++ {
			cmds = append(cmds, cmdtest.Disconnect(fmt.Sprint("e", i)))
		}
		mustOK(t, m.exec(cmdtest.Envelope("g", fmt.Sprint("cut", k), cmds...)))
	}
	mustOK(t, m.exec(cmdtest.Envelope("g", "rm2", cmdtest.RemoveNode("hub"))))
}

// Concurrent envelopes that each fit the limit never make a group-commit
// batch too big: the batches are budgeted in bytes, so every one is stored.
func TestGroupCommitBudgetsBytes(t *testing.T) {
	store := smallStore(t)
	m := startMember(t, store, quickGrains())
	mustOK(t, m.exec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph())))
	value := strings.Repeat("v", 60<<10)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 6 {
				id := fmt.Sprintf("c%d-%d", c, k)
				var comps []*cairnv1.Component
				for j := range 4 { // about 240 KB an envelope
					comps = append(comps, cmdtest.Comp(fmt.Sprint("blob", j), value))
				}
				if rep := m.exec(cmdtest.Envelope("g", id, cmdtest.AddNode(id, comps...))); rep.GetError() != nil {
					errs <- fmt.Sprintf("%s: %v", id, rep.GetError())
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	var last uint64
	if _, err := store.Read(context.Background(), "g", 1, func(r persistence.Record) error {
		last = r.Seq
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if last == 0 {
		t.Fatal("nothing stored")
	}
}

func mustOK(t *testing.T, rep *cairnv1.CommandReply) {
	t.Helper()
	if rep.GetError() != nil {
		t.Fatalf("%s: %v", rep.GetCommandId(), rep.GetError())
	}
}

var _ actors.TransactionLimiter = (*persistence.Store)(nil)

// slowReads delays every transaction a read delivers (a store that is slow
// but makes progress), or, with stall, delays only the first by stall.
type slowReads struct {
	*persistence.Store
	each, stall time.Duration
}

func (s slowReads) Read(ctx context.Context, graph string, fromSeq uint64, fn func(persistence.Record) error) (uint64, error) {
	first := true
	return s.Store.Read(ctx, graph, fromSeq, func(r persistence.Record) error {
		d := s.each
		if first && s.stall > 0 {
			d = s.stall
		}
		first = false
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		return fn(r)
	})
}

// An activation's replay has no limit on its whole length, only on
// progress: a history that takes many times AppendTimeout to read, a
// transaction at a time, activates; a store that delivers nothing for
// AppendTimeout fails the activation, saying so.
func TestActivationDeadlineIsProgress(t *testing.T) {
	_, store := newStore(t)
	writer := startMember(t, store, quickGrains())
	mustOK(t, writer.exec(cmdtest.Envelope("g", "create", cmdtest.CreateGraph())))
	const txs = 24
	for i := range txs {
		mustOK(t, writer.exec(cmdtest.Envelope("g", fmt.Sprint("c", i), cmdtest.AddNode(fmt.Sprint("n", i)))))
	}
	writer.stop()

	cfg := quickGrains()
	cfg.AppendTimeout = 250 * time.Millisecond // the whole read takes about 25 × 50 ms
	slow := startMember(t, slowReads{Store: store, each: 50 * time.Millisecond}, cfg)
	mustOK(t, slow.exec(cmdtest.Envelope("g", "after", cmdtest.AddNode("last"))))
	slow.stop()

	stalled := startMember(t, slowReads{Store: store, stall: time.Second}, cfg)
	rep := stalled.exec(cmdtest.Envelope("g", "stalled", cmdtest.AddNode("never")))
	if rep.GetError().GetCode() != cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE || !strings.Contains(rep.GetError().GetMessage(), "no transaction read") {
		t.Fatalf("activation over a stalled store: %v, want UNAVAILABLE naming the stall", rep)
	}
}
