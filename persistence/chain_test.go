package persistence_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

const chainGraph = "g-chain"

// chainSeq is the stream sequence the chain tests give transaction i; it is
// not i+1 so that a mix-up of sequence and position shows.
func chainSeq(i int) uint64 { return uint64(10 * (i + 1)) }

func nodeAdded(id string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{
		NodeId: id, Components: []*cairnv1.Component{{Type: "label", Value: []byte(id)}},
	}}}
}

// chainEvents are the events of a valid three-transaction chain: 2, 3 and 2
// events (positions 1-2, 3-5 and 6-7).
func chainEvents() [][]*cairnv1.Event {
	return [][]*cairnv1.Event{
		{
			{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{GraphId: chainGraph, GraphType: "test", Metadata: map[string]string{"b": "2", "a": "1"}}}},
			nodeAdded("a"),
		},
		{
			nodeAdded("b"),
			{Kind: &cairnv1.Event_EdgeAdded{EdgeAdded: &cairnv1.EdgeAdded{EdgeId: "e1", Source: "a", Target: "b", EdgeType: "knows"}}},
			{Kind: &cairnv1.Event_NodeComponentsChanged{NodeComponentsChanged: &cairnv1.NodeComponentsChanged{NodeId: "a", RemovedTypes: []string{"label"}}}},
		},
		{
			{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{EdgeId: "e1", Source: "a", Target: "b"}}},
			{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: "b"}}},
		},
	}
}

// commandSplits says how many events each command of transaction i made.
var commandSplits = [][]uint32{{2}, {1, 2}, {1, 1}}

// sealTx seals events onto head as one transaction with the given command
// split (nil: one command for all events).
func sealTx(graph, txID string, ts int64, head persistence.Head, events []*cairnv1.Event, split []uint32) (*cairnv1.Transaction, persistence.Head, error) {
	recs, head, err := persistence.Seal(graph, txID, ts, head, events)
	if err != nil {
		return nil, head, err
	}
	if split == nil {
		split = []uint32{uint32(len(events))}
	}
	tx := &cairnv1.Transaction{GraphId: graph, TxId: txID, TimestampUnixNano: ts, Events: recs}
	for i, n := range split {
		tx.Commands = append(tx.Commands, &cairnv1.CommandRecord{
			CommandId: fmt.Sprintf("%s-cmd-%d", txID, i), CorrelationId: "corr", Issuer: "test", EventCount: n,
		})
	}
	return tx, head, nil
}

// buildChain seals chainEvents into three transactions of graph. Their tx
// ids include graph: JetStream de-duplicates message ids stream-wide.
func buildChain(graph string) ([]*cairnv1.Transaction, []persistence.Head, error) {
	var head persistence.Head
	var txs []*cairnv1.Transaction
	var heads []persistence.Head
	for i, evs := range chainEvents() {
		tx, h, err := sealTx(graph, fmt.Sprintf("%s-tx-%d", graph, i), 1_700_000_000_000_000_000+int64(i), head, evs, commandSplits[i])
		if err != nil {
			return nil, nil, err
		}
		txs, heads, head = append(txs, tx), append(heads, h), h
	}
	return txs, heads, nil
}

func mustBuildChain(t testing.TB, graph string) ([]*cairnv1.Transaction, []persistence.Head) {
	t.Helper()
	txs, heads, err := buildChain(graph)
	if err != nil {
		t.Fatalf("build chain: %v", err)
	}
	return txs, heads
}

func TestChainCheckValid(t *testing.T) {
	txs, heads := mustBuildChain(t, chainGraph)
	evs := chainEvents()
	c := persistence.NewChain(chainGraph)
	if h := c.Head(); h.N != 0 || h.CID.Defined() {
		t.Fatalf("new chain head = %+v, want zero", h)
	}
	n := uint64(0)
	for i, tx := range txs {
		got, err := c.Check(chainSeq(i), tx)
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		if len(got) != len(evs[i]) {
			t.Fatalf("tx %d: %d decoded events, want %d", i, len(got), len(evs[i]))
		}
		for j, d := range got {
			n++
			if !proto.Equal(d.Event, evs[i][j]) {
				t.Errorf("tx %d event %d = %v, want %v", i, j, d.Event, evs[i][j])
			}
			if !bytes.Equal(d.CID.Bytes(), tx.Events[j].Cid) {
				t.Errorf("tx %d event %d CID = %s, want stored %s", i, j, d.CID, cidOf(t, tx.Events[j].Cid))
			}
			if d.Envelope.N != n || d.Envelope.Tx != tx.TxId || d.Envelope.Graph != chainGraph ||
				d.Envelope.TS != tx.TimestampUnixNano || d.Envelope.Type != persistence.EventType(evs[i][j]) {
				t.Errorf("tx %d event %d envelope = %+v", i, j, d.Envelope)
			}
		}
		if c.Head() != heads[i] {
			t.Errorf("after tx %d head = %+v, want Seal's %+v", i, c.Head(), heads[i])
		}
	}
	if c.Head().N != 7 {
		t.Errorf("head n = %d, want 7", c.Head().N)
	}

	// NewChainAt continues from a verified head.
	c2 := persistence.NewChainAt(chainGraph, heads[0])
	for i := 1; i < len(txs); i++ {
		if _, err := c2.Check(chainSeq(i), txs[i]); err != nil {
			t.Fatalf("NewChainAt: tx %d: %v", i, err)
		}
	}
	if c2.Head() != c.Head() {
		t.Errorf("NewChainAt head = %+v, want %+v", c2.Head(), c.Head())
	}
}

// reseal rewrites event j of tx with f applied to its envelope and a
// matching CID, as a forger who knows the format would.
func reseal(t testing.TB, tx *cairnv1.Transaction, j int, f func(*persistence.Envelope)) {
	t.Helper()
	rec := tx.Events[j]
	env, err := persistence.DecodeEnvelope(rec.DagCbor)
	if err != nil {
		t.Fatalf("reseal: %v", err)
	}
	f(&env)
	rec.DagCbor = env.AppendEncode(nil)
	rec.Cid = persistence.EventCID(rec.DagCbor)
}

func resealBytes(rec *cairnv1.EventRecord, f func([]byte)) {
	f(rec.DagCbor)
	rec.Cid = persistence.EventCID(rec.DagCbor)
}

func cidFromRec(t testing.TB, rec *cairnv1.EventRecord) cid.Cid { return mustCID(t, cidOf(t, rec.Cid)) }

func TestChainCheckBreaks(t *testing.T) {
	type want struct {
		seq       uint64
		pos       uint64
		reason    string
		want, got string
		malformed bool // the cause also wraps ErrMalformed
	}
	cases := []struct {
		name   string
		mutate func(t *testing.T, txs []*cairnv1.Transaction) want
	}{
		{"wrong CID", func(t *testing.T, txs []*cairnv1.Transaction) want {
			rec := txs[1].Events[0]
			good := cidOf(t, rec.Cid)
			rec.Cid = txs[0].Events[1].Cid
			return want{20, 3, "stored CID does not match the envelope bytes", good, cidOf(t, rec.Cid), false}
		}},
		{"CID with another codec", func(t *testing.T, txs []*cairnv1.Transaction) want {
			rec := txs[1].Events[1]
			good := cidFromRec(t, rec)
			raw := cid.NewCidV1(cid.Raw, good.Hash())
			rec.Cid = raw.Bytes()
			return want{20, 4, "stored CID does not match the envelope bytes", good.String(), raw.String(), false}
		}},
		{"truncated CID", func(t *testing.T, txs []*cairnv1.Transaction) want {
			rec := txs[2].Events[0]
			good := cidOf(t, rec.Cid)
			rec.Cid = rec.Cid[:20]
			return want{30, 6, "stored CID does not match the envelope bytes", good, fmt.Sprintf("%x", rec.Cid), false}
		}},
		{"missing CID", func(t *testing.T, txs []*cairnv1.Transaction) want {
			rec := txs[0].Events[0]
			good := cidOf(t, rec.Cid)
			rec.Cid = nil
			return want{10, 1, "stored CID does not match the envelope bytes", good, "", false}
		}},
		{"flipped bit in dag_cbor", func(t *testing.T, txs []*cairnv1.Transaction) want {
			rec := txs[1].Events[1]
			stored := cidOf(t, rec.Cid)
			rec.DagCbor[len(rec.DagCbor)/2] ^= 0x04
			return want{20, 4, "stored CID does not match the envelope bytes", cidOf(t, persistence.EventCID(rec.DagCbor)), stored, false}
		}},
		{"dag_cbor with a trailing byte", func(t *testing.T, txs []*cairnv1.Transaction) want {
			rec := txs[0].Events[1]
			stored := cidOf(t, rec.Cid)
			rec.DagCbor = append(rec.DagCbor, 0)
			return want{10, 2, "stored CID does not match the envelope bytes", cidOf(t, persistence.EventCID(rec.DagCbor)), stored, false}
		}},
		{"resealed undecodable envelope", func(t *testing.T, txs []*cairnv1.Transaction) want {
			resealBytes(txs[1].Events[0], func(b []byte) { b[0] ^= 0x01 }) // map of 8 -> 9
			return want{20, 3, "envelope does not decode", "", "", true}
		}},
		{"wrong prev", func(t *testing.T, txs []*cairnv1.Transaction) want {
			head := cidFromRec(t, txs[0].Events[1])
			other := cidFromRec(t, txs[0].Events[0])
			reseal(t, txs[1], 0, func(e *persistence.Envelope) { e.Prev = other })
			return want{20, 3, "prev link", head.String(), other.String(), false}
		}},
		{"prev on the first event", func(t *testing.T, txs []*cairnv1.Transaction) want {
			p := mustCID(t, vectorCID1)
			reseal(t, txs[0], 0, func(e *persistence.Envelope) { e.Prev = p })
			return want{10, 1, "prev link", "(none)", vectorCID1, false}
		}},
		{"prev missing", func(t *testing.T, txs []*cairnv1.Transaction) want {
			head := cidFromRec(t, txs[1].Events[2])
			reseal(t, txs[2], 0, func(e *persistence.Envelope) { e.Prev = cid.Undef })
			return want{30, 6, "prev link", head.String(), "(none)", false}
		}},
		{"skipped n", func(t *testing.T, txs []*cairnv1.Transaction) want {
			reseal(t, txs[1], 0, func(e *persistence.Envelope) { e.N++ })
			return want{20, 3, "chain position", "3", "4", false}
		}},
		{"repeated n", func(t *testing.T, txs []*cairnv1.Transaction) want {
			reseal(t, txs[1], 1, func(e *persistence.Envelope) { e.N-- })
			return want{20, 4, "chain position", "4", "3", false}
		}},
		{"events swapped", func(t *testing.T, txs []*cairnv1.Transaction) want {
			ev := txs[1].Events
			ev[0], ev[1] = ev[1], ev[0]
			return want{20, 3, "chain position", "3", "4", false}
		}},
		{"transaction skipped", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[1] = txs[2]
			return want{20, 3, "chain position", "3", "6", false}
		}},
		{"transaction replayed", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[1] = proto.Clone(txs[0]).(*cairnv1.Transaction)
			return want{20, 3, "chain position", "3", "1", false}
		}},
		{"wrong graph in envelope", func(t *testing.T, txs []*cairnv1.Transaction) want {
			reseal(t, txs[2], 1, func(e *persistence.Envelope) { e.Graph = "other" })
			return want{30, 7, "envelope graph", chainGraph, "other", false}
		}},
		{"wrong graph id on transaction", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[1].GraphId = "other"
			return want{20, 0, "transaction graph id", chainGraph, "other", false}
		}},
		{"wrong tx id on transaction", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[1].TxId = "tx-forged"
			return want{20, 3, "envelope transaction id", "tx-forged", chainGraph + "-tx-1", false}
		}},
		{"wrong tx id in envelope", func(t *testing.T, txs []*cairnv1.Transaction) want {
			reseal(t, txs[1], 2, func(e *persistence.Envelope) { e.Tx = "tx-forged" })
			return want{20, 5, "envelope transaction id", chainGraph + "-tx-1", "tx-forged", false}
		}},
		{"wrong timestamp", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[0].TimestampUnixNano = -1
			return want{10, 1, "envelope timestamp", "-1", "1700000000000000000", false}
		}},
		{"envelope version 2", func(t *testing.T, txs []*cairnv1.Transaction) want {
			reseal(t, txs[0], 0, func(e *persistence.Envelope) { e.Version = 2 })
			return want{10, 1, "envelope version", "1", "2", false}
		}},
		{"event type does not match body", func(t *testing.T, txs []*cairnv1.Transaction) want {
			reseal(t, txs[1], 1, func(e *persistence.Envelope) { e.Type = "NodeRemoved" })
			return want{20, 4, "envelope type does not match the event body", "EdgeAdded", "NodeRemoved", false}
		}},
		{"event with no kind", func(t *testing.T, txs []*cairnv1.Transaction) want {
			reseal(t, txs[1], 0, func(e *persistence.Envelope) { e.Type, e.Body = "", nil })
			return want{20, 3, "event body has no kind", "", "", false}
		}},
		{"event of an unknown kind", func(t *testing.T, txs []*cairnv1.Transaction) want {
			// Field 99 is no Event kind: protobuf keeps it as an unknown field.
			reseal(t, txs[1], 0, func(e *persistence.Envelope) { e.Type, e.Body = "NodeAdded", []byte{0x9a, 0x06, 0x00} })
			return want{20, 3, "event body has no kind", "", "", false}
		}},
		{"event body does not decode", func(t *testing.T, txs []*cairnv1.Transaction) want {
			reseal(t, txs[2], 0, func(e *persistence.Envelope) { e.Body = []byte{0x0a, 0x05, 0x01} })
			return want{30, 6, "event body does not decode", "", "", true}
		}},
		{"command event_count too high", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[1].Commands[0].EventCount++
			return want{20, 0, "command event counts do not add up to the events", "3", "4", false}
		}},
		{"command event_count too low", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[2].Commands[1].EventCount = 0
			return want{30, 0, "command event counts do not add up to the events", "2", "1", false}
		}},
		{"no commands", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[0].Commands = nil
			return want{10, 0, "command event counts do not add up to the events", "2", "0", false}
		}},
		{"event dropped with its count", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[1].Events = txs[1].Events[1:]
			txs[1].Commands = txs[1].Commands[1:]
			return want{20, 3, "chain position", "3", "4", false}
		}},
		{"empty transaction", func(t *testing.T, txs []*cairnv1.Transaction) want {
			txs[1].Events, txs[1].Commands = nil, nil
			return want{20, 0, "transaction holds no events", "", "", false}
		}},
	}
	orig, heads := mustBuildChain(t, chainGraph)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			txs := make([]*cairnv1.Transaction, len(orig))
			for i, tx := range orig {
				txs[i] = proto.Clone(tx).(*cairnv1.Transaction)
			}
			w := tc.mutate(t, txs)
			c := persistence.NewChain(chainGraph)
			var err error
			var at int
			for at = range txs {
				before := c.Head()
				var got []persistence.DecodedEvent
				if got, err = c.Check(chainSeq(at), txs[at]); err != nil {
					if got != nil {
						t.Errorf("Check returned %d events with its error", len(got))
					}
					if c.Head() != before {
						t.Errorf("chain advanced to %+v on an error, was %+v", c.Head(), before)
					}
					break
				}
				if c.Head() != heads[at] {
					t.Fatalf("tx %d passed but head = %+v, want %+v", at, c.Head(), heads[at])
				}
			}
			if err == nil {
				t.Fatal("the broken chain passed Check")
			}
			if !errors.Is(err, persistence.ErrChainBroken) {
				t.Errorf("error %v does not wrap ErrChainBroken", err)
			}
			if errors.Is(err, persistence.ErrMalformed) != w.malformed {
				t.Errorf("errors.Is(err, ErrMalformed) = %v, want %v (err %v)", !w.malformed, w.malformed, err)
			}
			var ce *persistence.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not a *ChainError", err, err)
			}
			gotW := want{ce.Seq, ce.Position, ce.Reason, ce.Want, ce.Got, w.malformed}
			if ce.Graph != chainGraph || gotW != w {
				t.Errorf("ChainError = graph %q %+v\nwant       graph %q %+v", ce.Graph, gotW, chainGraph, w)
			}
			if ce.Seq != chainSeq(at) {
				t.Errorf("ChainError.Seq = %d but tx %d (seq %d) failed", ce.Seq, at, chainSeq(at))
			}
		})
	}
}

func TestChainErrorMessage(t *testing.T) {
	cause := fmt.Errorf("%w: bad varint", persistence.ErrMalformed)
	err := error(&persistence.ChainError{Graph: "g", Seq: 7, Position: 3, Reason: "prev link", Want: "x", Got: "y", Err: cause})
	if got, want := err.Error(), "graph g: chain broken at seq 7 (event 3): prev link: want x, got y: malformed data: bad varint"; got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
	if !errors.Is(err, persistence.ErrChainBroken) || !errors.Is(err, persistence.ErrMalformed) {
		t.Errorf("%v does not wrap both ErrChainBroken and its cause", err)
	}
	bare := error(&persistence.ChainError{Graph: "g", Seq: 7, Reason: "transaction holds no events"})
	if got, want := bare.Error(), "graph g: chain broken at seq 7: transaction holds no events"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(bare, persistence.ErrChainBroken) || errors.Is(bare, persistence.ErrMalformed) {
		t.Errorf("bare ChainError unwraps wrongly")
	}
}

func TestSealRejectsEventWithoutKind(t *testing.T) {
	_, head, err := persistence.Seal(chainGraph, "tx", 1, persistence.Head{}, []*cairnv1.Event{nodeAdded("a"), {}})
	if err == nil {
		t.Fatal("Seal accepted an event with no kind")
	}
	if head.N != 0 {
		t.Errorf("Seal returned head %+v with its error, want the head it was given", head)
	}
}

// fuzzChain is the chain FuzzChainCheck mutates.
type fuzzChain struct {
	txs  []*cairnv1.Transaction
	wire [][]byte // deterministic marshalling of txs
}

func newFuzzChain(f *testing.F) fuzzChain {
	txs, _, err := buildChain(chainGraph)
	if err != nil {
		f.Fatal(err)
	}
	fc := fuzzChain{txs: txs}
	for _, tx := range txs {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(tx)
		if err != nil {
			f.Fatal(err)
		}
		fc.wire = append(fc.wire, b)
	}
	return fc
}

// offset finds part in transaction i's wire bytes.
func (fc fuzzChain) offset(f *testing.F, i int, part []byte) uint32 {
	off := bytes.Index(fc.wire[i], part)
	if off < 0 {
		f.Fatalf("%x not in transaction %d", part, i)
	}
	return uint32(off)
}

// mustPass is the oracle: Check accepts the chain with transaction i
// replaced by m exactly when m repeats everything the chain covers (graph,
// tx id, timestamp, every event record's CID and bytes) and its commands
// count its events. The last transaction may lose trailing events: nothing
// after it could notice.
func (fc fuzzChain) mustPass(i int, m *cairnv1.Transaction) bool {
	o := fc.txs[i]
	if m.GraphId != o.GraphId || m.TxId != o.TxId || m.TimestampUnixNano != o.TimestampUnixNano {
		return false
	}
	if len(m.Events) == 0 || len(m.Events) > len(o.Events) || (i < len(fc.txs)-1 && len(m.Events) != len(o.Events)) {
		return false
	}
	for j, r := range m.Events {
		if !bytes.Equal(r.Cid, o.Events[j].Cid) || !bytes.Equal(r.DagCbor, o.Events[j].DagCbor) {
			return false
		}
	}
	var total uint64
	for _, c := range m.Commands {
		total += uint64(c.EventCount)
	}
	return total == uint64(len(m.Events))
}

// FuzzChainCheck XORs patch into transaction which's wire bytes at off and
// checks the chain: no panic, and a break is reported exactly when the
// mutation touched what the chain covers.
func FuzzChainCheck(f *testing.F) {
	fc := newFuzzChain(f)
	// Seeds: the byte-level forms of TestChainCheckBreaks' cases.
	f.Add(uint8(0), uint32(0), []byte{})                                                         // no change
	f.Add(uint8(1), fc.offset(f, 1, fc.txs[1].Events[0].Cid)+10, []byte{0x01})                   // wrong CID
	f.Add(uint8(1), fc.offset(f, 1, fc.txs[1].Events[1].DagCbor)+30, []byte{0x04})               // flipped bit in dag_cbor
	f.Add(uint8(2), fc.offset(f, 2, fc.txs[2].Events[1].DagCbor), []byte{0x01})                  // map of 8 -> 9
	f.Add(uint8(0), fc.offset(f, 0, []byte(chainGraph)), []byte{0x01})                           // wrong graph id
	f.Add(uint8(1), fc.offset(f, 1, []byte("tx-1")), []byte{0, 0, 0, 0x02})                      // wrong tx id
	f.Add(uint8(1), fc.offset(f, 1, []byte("tx-1-cmd-0")), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1}) // command id: not covered
	f.Add(uint8(2), uint32(len(fc.wire[2])-1), []byte{0xff})                                     // last byte
	f.Add(uint8(1), fc.offset(f, 1, fc.txs[1].Events[2].DagCbor)-4, bytes.Repeat([]byte{0x55}, 40))
	for i, tx := range fc.txs { // command event_count: tag 0x28 of CommandRecord.event_count
		for _, c := range tx.Commands {
			b, _ := proto.Marshal(c)
			f.Add(uint8(i), fc.offset(f, i, b)+uint32(len(b))-1, []byte{0x01})
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, off uint32, patch []byte) {
		i := int(which) % len(fc.wire)
		wire := bytes.Clone(fc.wire[i])
		if len(wire) > 0 {
			off %= uint32(len(wire))
		}
		for k, p := range patch {
			if int(off)+k >= len(wire) {
				break
			}
			wire[int(off)+k] ^= p
		}
		m := &cairnv1.Transaction{}
		if err := proto.Unmarshal(wire, m); err != nil {
			return // not a transaction: Store.Read reports ErrMalformed before Check
		}
		want := fc.mustPass(i, m)
		if rewire, _ := (proto.MarshalOptions{Deterministic: true}).Marshal(m); bytes.Equal(rewire, fc.wire[i]) && !want {
			t.Fatalf("oracle: an unchanged transaction must pass")
		}
		c := persistence.NewChain(chainGraph)
		var err error
		for k, tx := range fc.txs {
			if k == i {
				tx = m
			}
			if _, err = c.Check(chainSeq(k), tx); err != nil {
				break
			}
		}
		switch {
		case want && err != nil:
			t.Fatalf("tx %d mutated harmlessly, but Check failed: %v", i, err)
		case !want && err == nil:
			t.Fatalf("tx %d mutated to %v, but the chain passed", i, m)
		case err != nil:
			var ce *persistence.ChainError
			if !errors.Is(err, persistence.ErrChainBroken) || !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ChainError wrapping ErrChainBroken", err)
			}
			if ce.Seq < chainSeq(i) {
				t.Fatalf("tx %d was mutated but the chain broke earlier, at seq %d: %v", i, ce.Seq, err)
			}
		}
	})
}
