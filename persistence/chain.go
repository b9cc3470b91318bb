package persistence

import (
	"bytes"
	"fmt"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// EventType names an event's kind as it appears in the envelope's "type".
func EventType(ev *cairnv1.Event) string {
	switch ev.GetKind().(type) {
	case *cairnv1.Event_GraphCreated:
		return "GraphCreated"
	case *cairnv1.Event_NodeAdded:
		return "NodeAdded"
	case *cairnv1.Event_NodeComponentsChanged:
		return "NodeComponentsChanged"
	case *cairnv1.Event_NodeRemoved:
		return "NodeRemoved"
	case *cairnv1.Event_EdgeAdded:
		return "EdgeAdded"
	case *cairnv1.Event_EdgeRemoved:
		return "EdgeRemoved"
	case *cairnv1.Event_GraphDeleted:
		return "GraphDeleted"
	}
	return ""
}

// Head is the tip of a graph's chain: the position and CID of its last event.
type Head struct {
	N   uint64
	CID cid.Cid // cid.Undef when N is 0
}

// Seal links events onto the chain that ends at head: it encodes each event's
// envelope, computes its CID and returns the records to store with the new
// head. ts is the transaction timestamp in Unix nanoseconds. On error it
// returns the head it was given.
func Seal(graph, txID string, ts int64, head Head, events []*cairnv1.Event) ([]*cairnv1.EventRecord, Head, error) {
	start := head
	if len(events) == 0 {
		return nil, start, fmt.Errorf("seal %s: a transaction needs at least one event", graph)
	}
	var recs []*cairnv1.EventRecord
	if len(events) == 1 {
		// One allocation for the record and the slice (a transaction
		// of one event is the usual command's).
		one := new(sealedOne)
		one.ptrs[0] = &one.rec
		recs = one.ptrs[:]
	} else {
		recs = make([]*cairnv1.EventRecord, len(events))
		stored := make([]cairnv1.EventRecord, len(events)) // one allocation for the records
		for i := range recs {
			recs[i] = &stored[i]
		}
	}
	// Each event is marshalled straight into its envelope's encoding,
	// sized first (the marshal then reuses the size), and each envelope
	// links the previous one's CID by its bytes: the only CID parsed is
	// the new head's. One allocation holds every encoding, each followed
	// by its CID, at a bound of its size (the fixed part of an envelope is
	// under 100 bytes).
	sizer := proto.MarshalOptions{Deterministic: true}
	mo := proto.MarshalOptions{Deterministic: true, UseCachedSize: true}
	var sizes [16]int
	sz := sizes[:0]
	if len(events) > len(sizes) {
		sz = make([]int, 0, len(events))
	}
	total := 0
	for i, ev := range events {
		typ := EventType(ev)
		if typ == "" {
			return nil, start, fmt.Errorf("seal %s: event %d has no kind", graph, i)
		}
		sz = append(sz, sizer.Size(ev))
		total += envelopeBound(sz[i], graph, txID, typ)
	}
	buf := make([]byte, total)
	var prev []byte // the previous event's CID, once there is one in this transaction
	for i, ev := range events {
		typ := EventType(ev)
		bound := envelopeBound(sz[i], graph, txID, typ)
		enc := buf[:0:bound]
		buf = buf[bound:]
		enc = appendEnvelopeHead(enc, i > 0 || head.CID.Defined(), head.N+uint64(i)+1, EnvelopeVersion, ts, txID, sz[i])
		at := len(enc)
		enc, err := mo.MarshalAppend(enc, ev)
		if err != nil {
			return nil, start, fmt.Errorf("seal %s: marshal event %d: %w", graph, i, err)
		}
		if len(enc)-at != sz[i] {
			return nil, start, fmt.Errorf("seal %s: marshal event %d: %d bytes, sized %d (changed meanwhile)", graph, i, len(enc)-at, sz[i])
		}
		if i == 0 {
			enc = appendEnvelopeTail(enc, head.CID.KeyString(), typ, graph)
		} else {
			enc = appendEnvelopeTail(enc, prev, typ, graph)
		}
		c := appendEventCID(enc[len(enc):], enc)
		enc = enc[:len(enc):len(enc)]
		recs[i].Cid, recs[i].DagCbor = c, enc
		prev = c
	}
	_, parsed, err := cid.CidFromBytes(prev)
	if err != nil {
		return nil, start, fmt.Errorf("seal %s: %w", graph, err)
	}
	return recs, Head{N: head.N + uint64(len(events)), CID: parsed}, nil
}

// envelopeBound bounds the encoding of an envelope whose body is size
// bytes, and its CID after it: the fixed part is under 100 bytes, a prev
// link is a CID.
func envelopeBound(size int, graph, txID, typ string) int {
	return 96 + size + len(graph) + len(txID) + len(typ) + 2*CIDLen
}

// sealedOne is the record of a transaction of one event and the slice
// that holds it, allocated together.
type sealedOne struct {
	rec  cairnv1.EventRecord
	ptrs [1]*cairnv1.EventRecord
}

// Chain checks transactions of one graph in stream order: every CID, every
// prev link, every position and every transaction field that an envelope
// repeats and, given a Keyring (WithTrust), every transaction's signature.
// Its zero value is not usable; use NewChain.
type Chain struct {
	graph string
	head  Head
	trust *Keyring
}

// ChainOption is an optional behaviour of a Chain.
type ChainOption func(*Chain)

// WithTrust makes the chain check each transaction's signature against k:
// a transaction that is unsigned (at a sequence past
// k.AllowUnsignedThrough's), signed by a key k does not hold, or whose
// signature does not hold is a *ChainError whose Reason starts with
// "signature" and which wraps ErrSignature. A nil k checks no signatures,
// as a chain without the option does.
func WithTrust(k *Keyring) ChainOption { return func(c *Chain) { c.trust = k } }

// NewChain starts checking a graph's chain from its beginning.
func NewChain(graph string, opts ...ChainOption) *Chain {
	c := &Chain{graph: graph}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Head returns the last event checked so far.
func (c *Chain) Head() Head { return c.head }

// DecodedEvent is one checked event.
type DecodedEvent struct {
	// Envelope's Body shares the bytes of the transaction's record.
	Envelope Envelope
	CID      cid.Cid
	Event    *cairnv1.Event
}

// Check verifies the transaction stored at stream sequence seq and advances
// the chain. It returns the decoded events, or a *ChainError that wraps
// ErrChainBroken (and ErrSignature when only the signature failed); after
// an error the chain does not advance.
func (c *Chain) Check(seq uint64, tx *cairnv1.Transaction) ([]DecodedEvent, error) {
	fail := func(pos uint64, reason, want, got string, err error) error {
		return &ChainError{Graph: c.graph, Seq: seq, Position: pos, Reason: reason, Want: want, Got: got, Err: err}
	}
	if tx.GetGraphId() != c.graph {
		return nil, fail(0, "transaction graph id", c.graph, tx.GetGraphId(), nil)
	}
	if len(tx.GetEvents()) == 0 {
		return nil, fail(0, "transaction holds no events", "", "", nil)
	}
	var total uint64
	for _, cr := range tx.GetCommands() {
		total += uint64(cr.GetEventCount())
	}
	if total != uint64(len(tx.GetEvents())) {
		return nil, fail(0, "command event counts do not add up to the events", fmt.Sprint(len(tx.GetEvents())), fmt.Sprint(total), nil)
	}
	head := c.head
	out := make([]DecodedEvent, 0, len(tx.GetEvents()))
	decoded := make([]cairnv1.Event, len(tx.GetEvents())) // one allocation for the events
	for i, rec := range tx.GetEvents() {
		pos := head.N + 1
		var buf [CIDLen]byte
		sum := appendEventCID(buf[:0], rec.GetDagCbor())
		if !bytes.Equal(sum, rec.GetCid()) {
			// A copy, so that buf stays on the stack.
			return nil, fail(pos, "stored CID does not match the envelope bytes", cidString(bytes.Clone(sum)), cidString(rec.GetCid()), nil)
		}
		env, err := decodeEnvelope(rec.GetDagCbor(), expected{graph: c.graph, tx: tx.GetTxId(), prev: head.CID, aliasBody: true})
		if err != nil {
			return nil, fail(pos, "envelope does not decode", "", "", err)
		}
		switch {
		case env.Version != EnvelopeVersion:
			return nil, fail(pos, "envelope version", fmt.Sprint(EnvelopeVersion), fmt.Sprint(env.Version), nil)
		case env.Graph != c.graph:
			return nil, fail(pos, "envelope graph", c.graph, env.Graph, nil)
		case env.N != pos:
			return nil, fail(pos, "chain position", fmt.Sprint(pos), fmt.Sprint(env.N), nil)
		case env.Tx != tx.GetTxId():
			return nil, fail(pos, "envelope transaction id", tx.GetTxId(), env.Tx, nil)
		case env.TS != tx.GetTimestampUnixNano():
			return nil, fail(pos, "envelope timestamp", fmt.Sprint(tx.GetTimestampUnixNano()), fmt.Sprint(env.TS), nil)
		case !env.Prev.Equals(head.CID):
			return nil, fail(pos, "prev link", linkString(head.CID), linkString(env.Prev), nil)
		}
		ev := &decoded[i]
		if err := proto.Unmarshal(env.Body, ev); err != nil {
			return nil, fail(pos, "event body does not decode", "", "", fmt.Errorf("%w: %v", ErrMalformed, err))
		}
		typ := EventType(ev)
		if typ == "" {
			// Seal never stores one: an empty body or only unknown fields.
			return nil, fail(pos, "event body has no kind", "", "", nil)
		}
		if typ != env.Type {
			return nil, fail(pos, "envelope type does not match the event body", typ, env.Type, nil)
		}
		_, id, err := cid.CidFromBytes(rec.GetCid())
		if err != nil {
			return nil, fail(pos, "stored CID does not parse", "", "", err)
		}
		out = append(out, DecodedEvent{Envelope: env, CID: id, Event: ev})
		head = Head{N: pos, CID: id}
	}
	if c.trust != nil {
		// Last: the signature covers the head, which is now known to be
		// the CID of envelope bytes that chain onto the previous head.
		if reason := c.trust.checkTransaction(seq, tx); reason != "" {
			return nil, fail(head.N, reason, "", "", ErrSignature)
		}
	}
	c.head = head
	return out, nil
}

func cidString(b []byte) string {
	_, c, err := cid.CidFromBytes(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return c.String()
}

func linkString(c cid.Cid) string {
	if !c.Defined() {
		return "(none)"
	}
	return c.String()
}

// NewChainAt continues checking a graph's chain after head, which the caller
// has already verified.
func NewChainAt(graph string, head Head, opts ...ChainOption) *Chain {
	c := NewChain(graph, opts...)
	c.head = head
	return c
}
