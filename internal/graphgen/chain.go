package graphgen

import (
	"fmt"
	"strconv"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// Chain seals one graph's event batches into chained transactions, as a
// graph grain does before it appends them: persistence.Seal links each
// event's dag-cbor envelope to the previous one, and the transaction records
// one command for the whole batch. persistence.Chain.Check accepts what it
// makes.
type Chain struct {
	graph string
	head  persistence.Head
	txs   uint64
}

// NewChain starts graph's chain from its beginning.
func NewChain(graph string) *Chain { return &Chain{graph: graph} }

// Head returns the chain's last event.
func (c *Chain) Head() persistence.Head { return c.head }

// Seal returns the next transaction, holding events, stamped ts (Unix
// nanoseconds). Its id is "<graph>-<n>", n counting from 1.
func (c *Chain) Seal(events []*cairnv1.Event, ts int64) (*cairnv1.Transaction, error) {
	txID := c.graph + "-" + strconv.FormatUint(c.txs+1, 10)
	recs, head, err := persistence.Seal(c.graph, txID, ts, c.head, events)
	if err != nil {
		return nil, fmt.Errorf("graphgen: %w", err)
	}
	c.head = head
	c.txs++
	return &cairnv1.Transaction{
		GraphId: c.graph, TxId: txID, TimestampUnixNano: ts, Events: recs,
		Commands: []*cairnv1.CommandRecord{{CommandId: "cmd-" + txID, Issuer: "graphgen", EventCount: uint32(len(events))}},
	}, nil
}
