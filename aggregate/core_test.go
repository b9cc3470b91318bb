package aggregate_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// stepper drives a Core as a grain does, with a fake store that is only a
// sequence number: the step API needs no I/O to be tested.
type stepper struct {
	t       *testing.T
	c       *aggregate.Core[string]
	seq     uint64
	pos     uint64
	batch   *aggregate.Batch[string]
	answers map[string]*cairnv1.CommandReply // by waiter
}

func newStepper(t *testing.T, cfg aggregate.Config) *stepper {
	t.Helper()
	c, err := aggregate.New[string](aggregate.NewState("g"), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := &stepper{t: t, c: c, answers: map[string]*cairnv1.CommandReply{}}
	st.propose("setup", cmdtest.Envelope("g", "setup", cmdtest.CreateGraph(), cmdtest.AddNode("a"), cmdtest.AddNode("b")))
	st.stored()
	return st
}

func (st *stepper) take(rd aggregate.Ready[string]) aggregate.Ready[string] {
	st.t.Helper()
	for _, a := range rd.Answers {
		for _, w := range a.To {
			if _, dup := st.answers[w]; dup {
				st.t.Fatalf("waiter %s answered twice", w)
			}
			st.answers[w] = a.Reply
		}
	}
	if rd.Append != nil {
		if st.batch != nil {
			st.t.Fatal("a second batch while one is in flight")
		}
		st.batch = rd.Append
	}
	return rd
}

func (st *stepper) propose(w string, env *cairnv1.CommandEnvelope) {
	st.t.Helper()
	st.take(st.c.Propose(env, w))
}

// stored acknowledges the batch in flight, then flushes.
func (st *stepper) stored() {
	st.t.Helper()
	b := st.batch
	if b == nil {
		st.t.Fatal("no batch in flight")
	}
	st.batch = nil
	st.seq++
	res := aggregate.AppendResult{Seq: st.seq, TxID: fmt.Sprint("tx", st.seq)}
	for _, c := range b.Commands {
		st.pos += uint64(c.GetEventCount())
		res.Heads = append(res.Heads, aggregate.Head{N: st.pos, CID: fmt.Sprint("cid", st.pos)})
	}
	st.take(st.c.Appended(res))
	st.take(st.c.Flush())
}

func (st *stepper) failed(res aggregate.AppendResult) aggregate.Ready[string] {
	st.t.Helper()
	if st.batch == nil {
		st.t.Fatal("no batch in flight")
	}
	st.batch = nil
	rd := st.take(st.c.Appended(res))
	if !rd.Reload {
		st.take(st.c.Flush())
	}
	return rd
}

func (st *stepper) want(w string, code cairnv1.ErrorCode) *cairnv1.CommandReply {
	st.t.Helper()
	rep, ok := st.answers[w]
	if !ok {
		st.t.Fatalf("%s: no answer", w)
	}
	if rep.GetError().GetCode() != code {
		st.t.Fatalf("%s: answer %v, want code %v", w, rep, code)
	}
	return rep
}

func (st *stepper) unanswered(ws ...string) {
	st.t.Helper()
	for _, w := range ws {
		if rep, ok := st.answers[w]; ok {
			st.t.Fatalf("%s answered too early: %v", w, rep)
		}
	}
}

func batchIDs(b *aggregate.Batch[string]) []string {
	var ids []string
	for _, c := range b.Commands {
		ids = append(ids, c.GetCommandId())
	}
	return ids
}

const ok = cairnv1.ErrorCode_ERROR_CODE_UNSPECIFIED

func TestCoreGroupCommit(t *testing.T) {
	st := newStepper(t, aggregate.DefaultConfig())
	st.propose("w1", cmdtest.Envelope("g", "c1", cmdtest.AddNode("x")))
	if got := batchIDs(st.batch); !slices.Equal(got, []string{"c1"}) {
		t.Fatalf("first batch %v, want [c1]", got)
	}
	// While c1 is in flight, the next ones queue.
	st.propose("w2", cmdtest.Envelope("g", "c2", cmdtest.AddNode("y")))
	st.propose("w3", cmdtest.Envelope("g", "c3", cmdtest.Connect("xy", "x", "y")))
	st.propose("w3b", cmdtest.Envelope("g", "c3", cmdtest.Connect("xy", "x", "y"))) // same id: one more waiter
	st.unanswered("w1", "w2", "w3", "w3b")
	if st.c.Queued() != 2 {
		t.Fatalf("queued %d, want 2", st.c.Queued())
	}
	st.stored()
	r1 := st.want("w1", ok)
	if r1.GetSeq() != 2 || r1.GetPosition() != 4 || r1.GetTxId() != "tx2" {
		t.Fatalf("c1 answered %v", r1)
	}
	// c2 and c3 go out together; c3 rests on c2's node.
	if got := batchIDs(st.batch); !slices.Equal(got, []string{"c2", "c3"}) {
		t.Fatalf("second batch %v, want [c2 c3]", got)
	}
	st.stored()
	r3, r3b := st.want("w3", ok), st.want("w3b", ok)
	if !proto.Equal(r3, r3b) || r3.GetPosition() != 6 {
		t.Fatalf("c3's waiters got %v and %v", r3, r3b)
	}
	// A retry gets the first answer again, marked as a duplicate.
	st.propose("w3c", cmdtest.Envelope("g", "c3", cmdtest.Connect("xy", "x", "y")))
	dup := st.want("w3c", ok)
	if !dup.GetDuplicate() || dup.GetSeq() != r3.GetSeq() || dup.GetHeadCid() != r3.GetHeadCid() {
		t.Fatalf("retry answered %v, want the first answer %v as a duplicate", dup, r3)
	}
	if st.batch != nil {
		t.Fatal("a duplicate started a batch")
	}
}

func TestCoreRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   *cairnv1.CommandEnvelope
		code  cairnv1.ErrorCode
		field string
	}{
		{"invalid envelope", cmdtest.Envelope("g", "", cmdtest.AddNode("x")), cmdtest.CodeInvalid, "command_id"},
		{"another graph", cmdtest.Envelope("h", "c", cmdtest.AddNode("x")), cmdtest.CodeInvalid, "graph_id"},
		{"exists", cmdtest.Envelope("g", "c", cmdtest.AddNode("a")), cmdtest.CodeExists, "commands[0].add_node.node_id"},
		{"all or nothing", cmdtest.Envelope("g", "c", cmdtest.AddNode("x"), cmdtest.RemoveNode("nobody")), cmdtest.CodeNotFound, "commands[1].remove_node.node_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStepper(t, aggregate.DefaultConfig())
			st.propose("w", tc.env)
			rep := st.want("w", tc.code)
			if rep.GetError().GetField() != tc.field {
				t.Fatalf("field %q, want %q", rep.GetError().GetField(), tc.field)
			}
			if st.batch != nil {
				t.Fatal("a refusal started a batch")
			}
			if st.c.State().HasNode("x") {
				t.Fatal("a refused envelope left a node behind")
			}
		})
	}
}

// A refusal decided on top of the batch's own commands waits for the batch:
// stored, it stands; failed, the envelope is decided again on the state as
// stored.
func TestCoreHeldRefusal(t *testing.T) {
	for _, outcome := range []string{"stored", "failed"} {
		t.Run(outcome, func(t *testing.T) {
			st := newStepper(t, aggregate.DefaultConfig())
			st.propose("w0", cmdtest.Envelope("g", "c0", cmdtest.AddNode("p")))
			st.propose("w1", cmdtest.Envelope("g", "c1", cmdtest.AddNode("x")))
			st.propose("w2", cmdtest.Envelope("g", "c2", cmdtest.AddNode("x"))) // refused on top of c1
			st.stored()
			if got := batchIDs(st.batch); !slices.Equal(got, []string{"c1"}) {
				t.Fatalf("batch %v, want [c1]", got)
			}
			st.unanswered("w2")
			if outcome == "stored" {
				st.stored()
				st.want("w1", ok)
				st.want("w2", cmdtest.CodeExists)
				return
			}
			st.failed(aggregate.AppendResult{Err: errors.New("nats: timeout")})
			st.want("w1", cmdtest.CodeUnavailable)
			st.unanswered("w2")
			// Decided again without c1: x does not exist, so c2 goes out.
			if got := batchIDs(st.batch); !slices.Equal(got, []string{"c2"}) {
				t.Fatalf("batch after the failure %v, want [c2]", got)
			}
			st.stored()
			st.want("w2", ok)
		})
	}
}

// A conflict asks for a reload; the commands are decided again on what the
// other writer stored, and a second conflict is answered as CONFLICT.
func TestCoreConflict(t *testing.T) {
	st := newStepper(t, aggregate.DefaultConfig())
	st.propose("w1", cmdtest.Envelope("g", "c1", cmdtest.AddNode("x")))
	st.propose("w2", cmdtest.Envelope("g", "c2", cmdtest.Connect("ax", "a", "x")))
	if rd := st.failed(aggregate.AppendResult{Conflict: true}); !rd.Reload || rd.Append != nil {
		t.Fatalf("conflict: %+v, want a reload and nothing to append", rd)
	}
	if st.c.State().HasNode("x") {
		t.Fatal("the conflicted batch was not rolled back")
	}
	// Proposals during the reload wait.
	st.propose("w3", cmdtest.Envelope("g", "c3", cmdtest.AddNode("q")))
	if st.batch != nil {
		t.Fatal("a batch started before the reload")
	}
	// The other writer stored node x (so c1 is now refused) and command c2.
	st.seq++
	st.pos++
	if err := st.c.Fold(aggregate.Stored{Seq: st.seq, TxID: "other", Commands: []*cairnv1.CommandRecord{{CommandId: "o1", EventCount: 1}},
		Events: []*cairnv1.Event{nodeAddedPlain("x")}, Heads: []aggregate.Head{{N: st.pos, CID: "cidx"}}}); err != nil {
		t.Fatal(err)
	}
	st.take(st.c.Reloaded(nil))
	st.want("w1", cmdtest.CodeExists)
	if got := batchIDs(st.batch); !slices.Equal(got, []string{"c2", "c3"}) {
		t.Fatalf("batch after the reload %v, want [c2 c3]", got)
	}
	// c2 and c3 meet their first conflict and go out again; a second one
	// refuses them as CONFLICT.
	st.failed(aggregate.AppendResult{Conflict: true})
	st.take(st.c.Reloaded(nil))
	if got := batchIDs(st.batch); !slices.Equal(got, []string{"c2", "c3"}) {
		t.Fatalf("batch after the second reload %v, want [c2 c3]", got)
	}
	st.unanswered("w2", "w3")
	st.failed(aggregate.AppendResult{Conflict: true})
	st.take(st.c.Reloaded(nil))
	st.want("w2", cmdtest.CodeConflict)
	st.want("w3", cmdtest.CodeConflict)
	if st.batch != nil || st.c.Busy() {
		t.Fatal("work left after the refusals")
	}
	st.propose("w4", cmdtest.Envelope("g", "c4", cmdtest.AddNode("q")))
	st.stored()
	st.want("w4", ok)
}

// When the other writer was an earlier activation that stored the very
// command, the reload answers it as a duplicate.
func TestCoreConflictWithOwnCommand(t *testing.T) {
	st := newStepper(t, aggregate.DefaultConfig())
	st.propose("w1", cmdtest.Envelope("g", "c1", cmdtest.AddNode("x")))
	st.failed(aggregate.AppendResult{Conflict: true})
	st.seq++
	if err := st.c.Fold(aggregate.Stored{Seq: st.seq, TxID: "earlier", Commands: []*cairnv1.CommandRecord{{CommandId: "c1", EventCount: 1}},
		Events: []*cairnv1.Event{nodeAddedPlain("x")}, Heads: []aggregate.Head{{N: 4, CID: "cid4"}}}); err != nil {
		t.Fatal(err)
	}
	st.take(st.c.Reloaded(nil))
	if rep := st.want("w1", ok); !rep.GetDuplicate() || rep.GetTxId() != "earlier" {
		t.Fatalf("c1 answered %v, want the earlier activation's answer as a duplicate", rep)
	}
}

// A command id reused for other content is refused as FAILED_PRECONDITION
// naming the id, wherever the first envelope is: remembered in the window
// (from an append, or folded from a transaction with or without a content
// hash), queued, or in flight; the same content is answered as before.
func TestCoreCommandIDReuse(t *testing.T) {
	first := cmdtest.Envelope("g", "c1", cmdtest.AddNode("x"))
	same := cmdtest.Envelope("g", "c1", cmdtest.AddNode("x"))
	same.CorrelationId, same.CausationId, same.Issuer = "other-trace", "other-cause", "other-issuer" // tracing may differ on a retry
	other := cmdtest.Envelope("g", "c1", cmdtest.AddNode("y"))
	more := cmdtest.Envelope("g", "c1", cmdtest.AddNode("x"), cmdtest.AddNode("y"))
	const refused = cmdtest.CodePrecondition
	// fold stores first as another activation would have, its command
	// record carrying hash.
	fold := func(st *stepper, hash []byte) {
		st.seq++
		st.pos++
		if err := st.c.Fold(aggregate.Stored{Seq: st.seq, TxID: "earlier", Commands: []*cairnv1.CommandRecord{{CommandId: "c1", EventCount: 1, ContentHash: hash}},
			Events: []*cairnv1.Event{nodeAddedPlain("x")}, Heads: []aggregate.Head{{N: st.pos, CID: "cidx"}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(st *stepper)
		retry *cairnv1.CommandEnvelope
		want  cairnv1.ErrorCode
		dup   bool // answered as a duplicate
	}{
		{"stored, same content", func(st *stepper) { st.propose("w0", first); st.stored() }, same, ok, true},
		{"stored, other content", func(st *stepper) { st.propose("w0", first); st.stored() }, other, refused, false},
		{"stored, more commands", func(st *stepper) { st.propose("w0", first); st.stored() }, more, refused, false},
		{"folded, same content", func(st *stepper) { fold(st, aggregate.ContentHash(first)) }, same, ok, true},
		{"folded, other content", func(st *stepper) { fold(st, aggregate.ContentHash(first)) }, other, refused, false},
		{"folded without a hash (older transaction), other content", func(st *stepper) { fold(st, nil) }, other, ok, true},
		{"in flight, other content", func(st *stepper) { st.propose("w0", first) }, other, refused, false},
		{"queued, other content", func(st *stepper) {
			st.propose("w-", cmdtest.Envelope("g", "c0", cmdtest.AddNode("q")))
			st.propose("w0", first)
		}, other, refused, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStepper(t, aggregate.DefaultConfig())
			tc.setup(st)
			st.propose("w", tc.retry)
			rep := st.want("w", tc.want)
			if rep.GetDuplicate() != tc.dup {
				t.Fatalf("answered %v, duplicate %v, want %v", rep, rep.GetDuplicate(), tc.dup)
			}
			if tc.want == refused && (rep.GetError().GetField() != "command_id" || !strings.Contains(rep.GetError().GetMessage(), `"c1"`)) {
				t.Fatalf("refusal %v does not name the command id", rep.GetError())
			}
			if len(rep.GetContentHash()) != 0 {
				t.Fatalf("a reply to a client carries the window's content hash: %v", rep)
			}
			if st.c.State().HasNode("y") {
				t.Fatal("the reused id's other content was applied")
			}
		})
	}
	// An envelope refused for reuse is not the original: the original's
	// waiters still get its answer.
	st := newStepper(t, aggregate.DefaultConfig())
	st.propose("w0", first)
	st.propose("w1", other)
	st.want("w1", refused)
	st.stored()
	if rep := st.want("w0", ok); rep.GetDuplicate() {
		t.Fatalf("original answered %v", rep)
	}
	if got := st.c.Window().List(); !bytes.Equal(got[len(got)-1].GetContentHash(), aggregate.ContentHash(first)) {
		t.Fatal("the window did not keep the original's content hash")
	}
}

// After a conflict, a queued envelope whose id the other writer stored
// with other content is refused, not answered as a duplicate.
func TestCoreConflictWithReusedID(t *testing.T) {
	st := newStepper(t, aggregate.DefaultConfig())
	st.propose("w1", cmdtest.Envelope("g", "c1", cmdtest.AddNode("y")))
	st.failed(aggregate.AppendResult{Conflict: true})
	st.seq++
	if err := st.c.Fold(aggregate.Stored{Seq: st.seq, TxID: "earlier", Commands: []*cairnv1.CommandRecord{{CommandId: "c1", EventCount: 1,
		ContentHash: aggregate.ContentHash(cmdtest.Envelope("g", "c1", cmdtest.AddNode("x")))}},
		Events: []*cairnv1.Event{nodeAddedPlain("x")}, Heads: []aggregate.Head{{N: 4, CID: "cid4"}}}); err != nil {
		t.Fatal(err)
	}
	st.take(st.c.Reloaded(nil))
	if rep := st.want("w1", cmdtest.CodePrecondition); rep.GetError().GetField() != "command_id" {
		t.Fatalf("c1 answered %v", rep)
	}
}

// The batch's command records carry each envelope's content hash, for the
// transaction to keep it.
func TestBatchRecordsContentHash(t *testing.T) {
	st := newStepper(t, aggregate.DefaultConfig())
	env := cmdtest.Envelope("g", "c1", cmdtest.AddNode("x"))
	st.propose("w", env)
	if got := st.batch.Commands[0].GetContentHash(); len(got) != aggregate.ContentHashSize || !bytes.Equal(got, aggregate.ContentHash(env)) {
		t.Fatalf("record hash %x, want %x", got, aggregate.ContentHash(env))
	}
}

func TestCoreReloadFails(t *testing.T) {
	st := newStepper(t, aggregate.DefaultConfig())
	st.propose("w1", cmdtest.Envelope("g", "c1", cmdtest.AddNode("x")))
	st.propose("w2", cmdtest.Envelope("g", "c2", cmdtest.AddNode("y")))
	st.failed(aggregate.AppendResult{Conflict: true})
	st.take(st.c.Reloaded(errors.New("nats: no responders")))
	st.want("w1", cmdtest.CodeUnavailable)
	st.want("w2", cmdtest.CodeUnavailable)
	if st.batch != nil || st.c.Busy() {
		t.Fatal("the core goes on after a failed reload")
	}
}

func TestCoreQueueFullAndStop(t *testing.T) {
	cfg := aggregate.DefaultConfig()
	cfg.MaxQueue = 2
	st := newStepper(t, cfg)
	st.propose("w1", cmdtest.Envelope("g", "c1", cmdtest.AddNode("x")))
	st.propose("w2", cmdtest.Envelope("g", "c2", cmdtest.AddNode("y")))
	st.propose("w3", cmdtest.Envelope("g", "c3", cmdtest.AddNode("z")))
	st.propose("w4", cmdtest.Envelope("g", "c4", cmdtest.AddNode("v")))
	st.want("w4", cmdtest.CodeUnavailable)
	st.take(st.c.Stop())
	st.want("w2", cmdtest.CodeUnavailable)
	st.want("w3", cmdtest.CodeUnavailable)
	st.unanswered("w1")
	st.propose("w5", cmdtest.Envelope("g", "c5", cmdtest.AddNode("u")))
	st.want("w5", cmdtest.CodeUnavailable)
	st.stored()
	st.want("w1", ok)
	if st.batch != nil {
		t.Fatal("a stopped core started a batch")
	}
}

// The group commit budgets bytes: envelopes that would make a batch too big
// wait for the next one; an envelope too big for any transaction is
// refused up front as RESOURCE_EXHAUSTED, naming the sizes.
func TestCoreByteBudget(t *testing.T) {
	cfg := aggregate.DefaultConfig()
	cfg.MaxBatchBytes = 20 << 10
	cfg.MaxTxBytes = 64 << 10
	st := newStepper(t, cfg)
	big := func(id string, kb int) *cairnv1.Command {
		var cs []*cairnv1.Component
		for i := 0; i < kb; i += 16 {
			cs = append(cs, cmdtest.Comp(fmt.Sprint("blob", i), strings.Repeat("x", min(16, kb-i)<<10)))
		}
		return cmdtest.AddNode(id, cs...)
	}
	st.propose("w0", cmdtest.Envelope("g", "c0", cmdtest.AddNode("p")))
	for i := range 4 {
		st.propose(fmt.Sprint("w", i+1), cmdtest.Envelope("g", fmt.Sprint("c", i+1), big(fmt.Sprint("n", i), 8)))
	}
	st.propose("huge", cmdtest.Envelope("g", "huge", big("h", 70)))
	st.stored()
	var batches [][]string
	for st.batch != nil {
		if st.batch.Bytes > cfg.MaxBatchBytes {
			t.Fatalf("a batch of %d bytes; the budget is %d", st.batch.Bytes, cfg.MaxBatchBytes)
		}
		batches = append(batches, batchIDs(st.batch))
		st.stored()
	}
	if fmt.Sprint(batches) != "[[c1 c2] [c3 c4]]" {
		t.Fatalf("batches %v, want [[c1 c2] [c3 c4]]", batches)
	}
	rep := st.want("huge", cairnv1.ErrorCode_ERROR_CODE_RESOURCE_EXHAUSTED)
	if msg := rep.GetError().GetMessage(); !strings.Contains(msg, "65536") || !strings.Contains(msg, "bytes") {
		t.Fatalf("refusal %q does not name the limit", msg)
	}
	if !errors.Is(aggregate.ErrorFromProto(rep.GetError()), aggregate.ErrResourceExhausted) {
		t.Fatal("the refusal does not match ErrResourceExhausted")
	}
	if st.c.State().HasNode("h") {
		t.Fatal("the refused envelope's node is in the state")
	}
}

// The estimate a batch is budgeted with bounds what the grain stores, and
// not by much.
func TestBatchEstimateBoundsStoredSize(t *testing.T) {
	st := newStepper(t, aggregate.DefaultConfig())
	st.propose("w0", cmdtest.Envelope("g", "c0", cmdtest.AddNode("p")))
	var cmds []*cairnv1.Command
	for i := range 300 {
		cmds = append(cmds, cmdtest.Connect(fmt.Sprint("e", i), "a", fmt.Sprint("m", i%7), cmdtest.Comp("w", fmt.Sprint(i))))
		cmds[i].GetConnectNodes().CreateMissing = true
	}
	st.propose("w1", cmdtest.Envelope("g", "c1", cmds[:150]...))
	st.propose("w2", cmdtest.Envelope("g", "c2", cmds[150:]...))
	st.stored()
	st.propose("w3", cmdtest.Envelope("g", "c3", cmdtest.RemoveNode("a")))
	for _, b := range []*aggregate.Batch[string]{st.batch} {
		checkEstimate(t, b)
	}
	st.stored()
	checkEstimate(t, st.batch)
}

func checkEstimate(t *testing.T, b *aggregate.Batch[string]) {
	t.Helper()
	if b == nil {
		t.Fatal("no batch")
	}
	recs, _, err := persistence.Seal("g", "0123456789abcdefghijkl", 1764000000000000000, persistence.Head{}, b.Events)
	if err != nil {
		t.Fatal(err)
	}
	size := proto.Size(&cairnv1.Transaction{GraphId: "g", TxId: "0123456789abcdefghijkl", TimestampUnixNano: 1764000000000000000, Events: recs, Commands: b.Commands})
	t.Logf("%d events: estimated %d bytes, stored %d", len(b.Events), b.Bytes, size)
	if b.Bytes < size || b.Bytes > size*5/4 {
		t.Fatalf("batch of %d events estimated at %d bytes; stored it takes %d", len(b.Events), b.Bytes, size)
	}
}

// Envelopes put back on the queue after the grain was asked to stop (held
// refusals of a failed batch, retries after a conflict) are refused, not
// left waiting.
func TestCoreStopRefusesRequeued(t *testing.T) {
	t.Run("held", func(t *testing.T) {
		st := newStepper(t, aggregate.DefaultConfig())
		st.propose("w0", cmdtest.Envelope("g", "c0", cmdtest.AddNode("p")))
		st.propose("w1", cmdtest.Envelope("g", "c1", cmdtest.AddNode("x")))
		st.propose("w2", cmdtest.Envelope("g", "c2", cmdtest.AddNode("x")))
		st.stored() // batch [c1], c2 held
		st.take(st.c.Stop())
		st.failed(aggregate.AppendResult{Err: errors.New("nats: timeout")})
		st.want("w1", cmdtest.CodeUnavailable)
		st.want("w2", cmdtest.CodeUnavailable)
		if st.batch != nil || st.c.Busy() {
			t.Fatal("work left after stopping")
		}
	})
	t.Run("conflict", func(t *testing.T) {
		st := newStepper(t, aggregate.DefaultConfig())
		st.propose("w1", cmdtest.Envelope("g", "c1", cmdtest.AddNode("x")))
		st.take(st.c.Stop())
		st.failed(aggregate.AppendResult{Conflict: true})
		st.take(st.c.Reloaded(nil))
		st.want("w1", cmdtest.CodeUnavailable)
		if st.batch != nil || st.c.Busy() {
			t.Fatal("work left after stopping")
		}
	})
}
