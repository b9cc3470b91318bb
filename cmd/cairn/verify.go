package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cairn-graph/cairn/persistence"
)

const verifyUsage = `Usage:
  cairn verify <graph> [client flags]

verify reads every transaction of the graph, recomputes every event's CID
from its stored dag-cbor envelope and checks every prev link and chain
position. It prints
  graph g: chain whole: 12 transactions, 40 events, head bafy... (seq 57)
and exits 0 only when the chain is whole; the first break is printed to
stderr with exit status 1. --json prints one object:
  {"graph":..,"ok":..,"transactions":..,"events":..,"head":..,"last_seq":..,"error":..}
`

type verifyJSON struct {
	Graph        string `json:"graph"`
	OK           bool   `json:"ok"`
	Transactions int    `json:"transactions"`
	Events       uint64 `json:"events"`
	Head         string `json:"head"`
	LastSeq      uint64 `json:"last_seq"`
	Error        string `json:"error,omitempty"`
}

func runVerify(ctx context.Context, args []string, stdout, _ io.Writer) error {
	r, ctx, done, err := openGraphReader(ctx, "verify", args)
	if err != nil {
		return err
	}
	defer done()
	graph := r.graph
	res, err := r.store.Verify(ctx, graph)
	var ce *persistence.ChainError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		err = ce
	case errors.Is(err, persistence.ErrNotFound) && res.LastSeq == 0:
		err = fmt.Errorf("graph %s has no transactions", graph)
	default:
		err = r.timedOut(err)
	}
	if r.json {
		out := verifyJSON{Graph: graph, OK: err == nil, Transactions: res.Transactions, Events: res.Events, LastSeq: res.LastSeq}
		if res.Head.CID.Defined() {
			out.Head = res.Head.CID.String()
		}
		if err != nil {
			out.Error = err.Error()
		}
		if jerr := writeJSON(stdout, out); jerr != nil {
			return errors.Join(err, jerr)
		}
		return err
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "graph %s: chain whole: %d transactions, %d events, head %s (seq %d)\n",
		graph, res.Transactions, res.Events, res.Head.CID, res.LastSeq)
	return err
}
