package persistence

import (
	"fmt"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// CheckStretch checks the transaction stored at seq as a stretch of graph's
// chain on its own, for a reader that does not know the head before it
// (time travel's prefetch, a page of history): everything Chain.Check
// checks (the signature with WithTrust), taking the first event's prev
// link and position as given. It
// returns the decoded events, the head the transaction links to (prev) and
// its own last event (head); the reader checks prev against the head it
// holds with Head.Links.
func CheckStretch(graph string, seq uint64, tx *cairnv1.Transaction, opts ...ChainOption) (events []DecodedEvent, prev, head Head, err error) {
	c := Chain{graph: graph}
	for _, o := range opts {
		o(&c)
	}
	return c.stretch(seq, tx)
}

// CheckStretchTrusting is CheckStretch(graph, seq, tx, WithTrust(trust))
// without an allocation for the option and the chain: the projections
// check every transaction they read so.
func CheckStretchTrusting(trust *Keyring, graph string, seq uint64, tx *cairnv1.Transaction) (events []DecodedEvent, prev, head Head, err error) {
	c := Chain{graph: graph, trust: trust}
	return c.stretch(seq, tx)
}

// stretch is CheckStretch on a chain that holds its options.
func (c *Chain) stretch(seq uint64, tx *cairnv1.Transaction) (events []DecodedEvent, prev, head Head, err error) {
	if recs := tx.GetEvents(); len(recs) > 0 {
		if env, err := decodeEnvelope(recs[0].GetDagCbor(), expected{graph: c.graph, tx: tx.GetTxId(), aliasBody: true}); err == nil && env.N > 0 {
			prev = Head{N: env.N - 1, CID: env.Prev}
		}
	}
	c.head = prev
	events, err = c.Check(seq, tx)
	if err != nil {
		return nil, Head{}, Head{}, err
	}
	return events, prev, c.Head(), nil
}

// Links returns nil when a transaction whose first event links to prev
// continues the chain that ends at h, and otherwise a *ChainError for the
// transaction at seq (a transaction missing, or out of place).
func (h Head) Links(graph string, seq uint64, prev Head) error {
	if prev.N == h.N && prev.CID.Equals(h.CID) {
		return nil
	}
	return &ChainError{Graph: graph, Seq: seq, Position: prev.N + 1, Reason: "prev link (a transaction missing or out of place)",
		Want: fmt.Sprintf("position %d after %s", h.N+1, linkString(h.CID)), Got: fmt.Sprintf("position %d after %s", prev.N+1, linkString(prev.CID))}
}
