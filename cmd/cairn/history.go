package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

const historyUsage = `Usage:
  cairn history <graph> [--from-seq N] [--limit N] [client flags]

history lists the graph's transactions oldest first, from stream sequence
--from-seq on (default 1), across the archive and the stream: the time the
stream stored the transaction (UTC; the time a time point is compared
with), its stream sequence, its id, the graph's head after it (the CID of
its last event), its number of events and a one-line summary of them:
  2026-11-27T20:43:12.123Z  seq 12  tx 4Xf...  head bafy...  3 events  add node n1, add edge e1 n1->n2, +1 more
A page holds --limit transactions (1-1000, default 50); when more remain it
ends with
  next: --from-seq 57
to pass for the next page. Any head it prints is a point for
'cairn diff' and 'cairn query ... --as-of'. --json prints one object:
  {"graph":..,"transactions":[{"time":..,"seq":..,"tx_id":..,"head":..,
   "position":..,"events":..,"summary":..},..],"next_from_seq":..}
(next_from_seq is 0 on the last page).

History flags:
  --from-seq N          first stream sequence to list (default 1)
  --limit N             transactions per page, 1-1000 (default 50)
`

// historyTx is one transaction as history prints it.
type historyTx struct {
	Time     string `json:"time"`
	Seq      uint64 `json:"seq"`
	TxID     string `json:"tx_id"`
	Head     string `json:"head"`
	Position uint64 `json:"position"`
	Events   int    `json:"events"`
	Summary  string `json:"summary"`
}

type historyJSON struct {
	Graph        string      `json:"graph"`
	Transactions []historyTx `json:"transactions"`
	NextFromSeq  uint64      `json:"next_from_seq"`
}

func runHistory(ctx context.Context, args []string, stdout, _ io.Writer) error {
	var fromSeq uint64
	var limit int
	r, ctx, done, err := openGraphReader(ctx, "history", args, func(fs *flag.FlagSet) {
		fs.Uint64Var(&fromSeq, "from-seq", 1, "first stream `seq` to list")
		fs.IntVar(&limit, "limit", 50, "transactions per page, `N` 1-1000")
		trustFlags(fs)
	})
	if err != nil {
		return err
	}
	defer done()
	if limit < 1 || limit > 1000 {
		return &usageError{topic: "history", err: fmt.Errorf("history: --limit %d is not in 1..1000", limit)}
	}
	graph := r.graph
	out := historyJSON{Graph: graph, Transactions: make([]historyTx, 0, min(limit, 64))}
	// Each transaction listed is checked as a piece of the chain, and
	// linked to the one before it (from the chain's start when the page
	// starts there); cairn verify checks the whole chain.
	var head persistence.Head
	linked := fromSeq <= 1
	last, err := r.store.Read(ctx, graph, max(fromSeq, 1), func(rec persistence.Record) error {
		if len(out.Transactions) == limit {
			out.NextFromSeq = rec.Seq
			return errStopRead
		}
		evs, prev, h, err := persistence.CheckStretch(graph, rec.Seq, rec.Tx, persistence.WithTrust(r.trust))
		if err == nil && linked {
			err = head.Links(graph, rec.Seq, prev)
		}
		if err != nil {
			return err
		}
		head, linked = h, true
		tx, err := newHistoryTx(rec, evs)
		if err != nil {
			return err
		}
		out.Transactions = append(out.Transactions, tx)
		return nil
	})
	switch {
	case errors.Is(err, errStopRead):
	case err != nil:
		return fmt.Errorf("history %s: %w", graph, r.timedOut(err))
	case last == 0:
		return fmt.Errorf("graph %s has no transactions", graph)
	case len(out.Transactions) == 0:
		return fmt.Errorf("graph %s has no transactions from seq %d on (its last is seq %d)", graph, fromSeq, last)
	}
	if r.json {
		return writeJSON(stdout, out)
	}
	var b strings.Builder
	for _, tx := range out.Transactions {
		noun := "events"
		if tx.Events == 1 {
			noun = "event"
		}
		fmt.Fprintf(&b, "%s  seq %d  tx %s  head %s  %d %s  %s\n", tx.Time, tx.Seq, tx.TxID, tx.Head, tx.Events, noun, tx.Summary)
	}
	if out.NextFromSeq != 0 {
		fmt.Fprintf(&b, "next: --from-seq %d\n", out.NextFromSeq)
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

// newHistoryTx decodes a stored transaction for history. It does not check
// the chain (verify does): a page starts anywhere.
func newHistoryTx(rec persistence.Record, checked []persistence.DecodedEvent) (historyTx, error) {
	tx := rec.Tx
	out := historyTx{Time: rec.Time.UTC().Format(time.RFC3339Nano), Seq: rec.Seq, TxID: tx.GetTxId(), Events: len(tx.GetEvents())}
	evs := make([]*cairnv1.Event, len(checked))
	for i, ev := range checked {
		evs[i] = ev.Event
		out.Position = ev.Envelope.N
	}
	if n := len(checked); n > 0 {
		out.Head = checked[n-1].CID.String()
	}
	out.Summary = historySummary(evs, 3)
	return out, nil
}

// historySummary describes events in one line: the first show of them,
// then how many more.
func historySummary(evs []*cairnv1.Event, show int) string {
	parts := make([]string, 0, min(len(evs), show)+1)
	for i, ev := range evs {
		if i == show {
			parts = append(parts, fmt.Sprintf("+%d more", len(evs)-show))
			break
		}
		parts = append(parts, eventPhrase(ev))
	}
	return strings.Join(parts, ", ")
}

// eventPhrase names what one event did, in a few words.
func eventPhrase(ev *cairnv1.Event) string {
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_GraphCreated:
		if t := k.GraphCreated.GetGraphType(); t != "" {
			return "create graph type " + t
		}
		return "create graph"
	case *cairnv1.Event_GraphDeleted:
		return "delete graph"
	case *cairnv1.Event_NodeAdded:
		return "add node " + k.NodeAdded.GetNodeId()
	case *cairnv1.Event_NodeComponentsChanged:
		c := k.NodeComponentsChanged
		var what []string
		for _, comp := range c.GetSet() {
			what = append(what, comp.GetType())
		}
		for _, t := range c.GetRemovedTypes() {
			what = append(what, "-"+t)
		}
		return "change node " + c.GetNodeId() + " (" + strings.Join(what, " ") + ")"
	case *cairnv1.Event_NodeRemoved:
		return "remove node " + k.NodeRemoved.GetNodeId()
	case *cairnv1.Event_EdgeAdded:
		e := k.EdgeAdded
		return "add edge " + e.GetEdgeId() + " " + e.GetSource() + "->" + e.GetTarget()
	case *cairnv1.Event_EdgeRemoved:
		return "remove edge " + k.EdgeRemoved.GetEdgeId()
	}
	return persistence.EventType(ev)
}
