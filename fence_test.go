package cairn_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/enginetest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// TestTwoActivationsOfAGraph forces what cluster churn can cause: two live
// activations of one graph at once, on two engines (members) over one
// JetStream, both taking commands. The store's per-subject expected
// sequence must make every append won by exactly one of them; the loser
// reloads and decides again (so a node both add exists once, the other
// answered ALREADY_EXISTS), the chain stays linear, every acknowledged
// command is stored exactly once and nothing unacknowledged is, both
// engines' read models agree with the stream, and the conflicts are
// counted in the grains' health.
func TestTwoActivationsOfAGraph(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seed, err := persistence.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := persistence.NewSigner(seed) // the members share a key
	if err != nil {
		t.Fatal(err)
	}
	cfgA := cairn.DefaultConfig(t.TempDir())
	cfgA.NATSListen, cfgA.Signer = "127.0.0.1:0", signer
	a := enginetest.OpenConfig(t, cfgA)
	cfgB := cairn.DefaultConfig(t.TempDir())
	cfgB.NATSURL, cfgB.Signer = a.ClientURL(), signer
	b := enginetest.OpenConfig(t, cfgB)
	engines := []*cairn.Engine{a, b}

	add := func(node string) *cairnv1.Command {
		return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: node}}}
	}
	create := &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}
	if _, err := a.Execute(ctx, env("g", "create", create)); err != nil {
		t.Fatal(err)
	}
	// b activates the graph and writes; a's activation still expects the
	// sequence of its own last write, so its next append conflicts, and it
	// must fold b's write before it decides again.
	if _, err := b.Execute(ctx, env("g", "b-first", add("first"))); err != nil {
		t.Fatal(err)
	}
	_, err = a.Execute(ctx, env("g", "a-first", add("first")))
	if !errors.Is(err, aggregate.ErrAlreadyExists) {
		t.Fatalf("a adds the node b added while a was active: err = %v, want ALREADY_EXISTS (a decided on a stale state)", err)
	}
	if n := a.Grains().Stats().AppendConflicts; n != 1 {
		t.Fatalf("a counted %d append conflicts, want 1", n)
	}

	// Both activations now take concurrent commands: unique nodes, and
	// nodes both try to add.
	const callers, perCaller, shared = 4, 40, 30
	type outcome struct {
		node           string
		ok, conflicted bool
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
		errs     = make(chan error, 2*callers*(perCaller+shared))
	)
	for e, eng := range engines {
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perCaller + shared {
					node := fmt.Sprintf("e%d-c%d-%d", e, c, i)
					if i >= perCaller {
						node = fmt.Sprintf("shared-%d-%d", c, i-perCaller)
					}
					_, err := eng.Execute(ctx, env("g", fmt.Sprintf("cmd-e%d-c%d-%d", e, c, i), add(node)))
					switch {
					case err == nil:
					case i >= perCaller && errors.Is(err, aggregate.ErrAlreadyExists):
					case errors.Is(err, aggregate.ErrConflict):
						// Answered CONFLICT: not applied, and not acknowledged.
					default:
						errs <- fmt.Errorf("engine %d, %s: %v", e, node, err)
						continue
					}
					mu.Lock()
					outcomes = append(outcomes, outcome{node, err == nil, errors.Is(err, aggregate.ErrConflict)})
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	acked := map[string]int{"first": 1}
	refused := 0
	for _, o := range outcomes {
		if o.ok {
			acked[o.node]++
		}
		if o.conflicted {
			refused++
		}
	}
	for c := range callers {
		for i := range shared {
			if n := acked[fmt.Sprintf("shared-%d-%d", c, i)]; n != 1 {
				t.Errorf("shared-%d-%d acknowledged %d times, want exactly once (one engine adds it, the other finds it)", c, i, n)
			}
		}
	}

	// The stream: a linear, verified chain holding every acknowledged node
	// once, and no other.
	res, err := a.Store().Verify(ctx, "g")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	stored := map[string]int{}
	chain := persistence.NewChain("g")
	last, err := a.Store().Read(ctx, "g", 1, func(r persistence.Record) error {
		evs, err := chain.Check(r.Seq, r.Tx)
		for _, ev := range evs {
			if n := ev.Event.GetNodeAdded(); n != nil {
				stored[n.GetNodeId()]++
			}
		}
		return err
	})
	if err != nil {
		t.Fatalf("read the chain: %v", err)
	}
	if res.Events != uint64(1+len(stored)) {
		t.Errorf("verify counts %d events, the chain holds %d nodes and the creation", res.Events, len(stored))
	}
	for node, n := range stored {
		if n != 1 || acked[node] != 1 {
			t.Errorf("node %s stored %d times, acknowledged %d times", node, n, acked[node])
		}
	}
	for node := range acked {
		if stored[node] == 0 {
			t.Errorf("acknowledged node %s is not stored", node)
		}
	}

	// Both read models agree with the stream.
	for i, eng := range engines {
		rep, err := eng.Query(ctx, statsQuery("g", last))
		if err != nil {
			t.Fatalf("engine %d: stats: %v", i, err)
		}
		if got := rep.GetStats().GetNodes(); got != uint64(len(stored)) {
			t.Errorf("engine %d's read model has %d nodes, the stream %d", i, got, len(stored))
		}
	}
	conflicts := a.Grains().Health().AppendConflicts + b.Grains().Health().AppendConflicts
	if conflicts < 2 {
		t.Errorf("%d append conflicts counted in all, want at least the forced one and some of the concurrent phase", conflicts)
	}
	t.Logf("%d commands, %d answered CONFLICT, %d nodes stored, %d append conflicts (a %d, b %d)", len(outcomes)+2, refused, len(stored), conflicts,
		a.Grains().Health().AppendConflicts, b.Grains().Health().AppendConflicts)
}
