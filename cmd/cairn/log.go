package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

const logUsage = `Usage:
  cairn log <graph> [client flags]

log prints every transaction of the graph in stream order, checking the
chain as it goes: the stream sequence, the transaction's time and id, and for
each command its id and issuer and the events it produced, each with its
chain position n, type, a summary, its CID and the CID of the event before.
It stops with exit status 1 at the first break in the chain.

With --json it prints JSON lines: one object per transaction,
  {"seq":..,"time":..,"stored":..,"graph":..,"tx_id":..,
   "commands":[{"command_id":..,"issuer":..,"event_count":..},..],
   "events":[{"n":..,"type":..,"cid":..,"prev":..,"command_id":..,
              "event":{..cairn.v1.Event as protobuf JSON..}},..]}
so that "cairn log g --json | jq" works on graphs of any length. "time" is
the transaction's timestamp (part of every event's envelope), "stored" when
the stream stored it; component values are base64, as in protobuf JSON.
`

func runLog(ctx context.Context, args []string, stdout, _ io.Writer) error {
	r, ctx, done, err := openGraphReader(ctx, "log", args, trustFlags)
	if err != nil {
		return err
	}
	defer done()
	graph := r.graph
	chain := persistence.NewChain(graph, persistence.WithTrust(r.trust))
	n := 0
	last, err := r.store.Read(ctx, graph, 1, func(rec persistence.Record) error {
		evs, err := chain.Check(rec.Seq, rec.Tx)
		if err != nil {
			return err
		}
		if r.json {
			err = writeJSON(stdout, newTxJSON(rec, evs))
		} else {
			err = writeTxText(stdout, rec, evs, n > 0)
		}
		n++
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("log %s: %w", graph, r.timedOut(err))
	case last == 0:
		return fmt.Errorf("graph %s has no transactions", graph)
	}
	return nil
}

func txTime(tx *cairnv1.Transaction) string {
	return time.Unix(0, tx.GetTimestampUnixNano()).UTC().Format(time.RFC3339Nano)
}

// eventsByCommand pairs each event with the command that produced it.
func eventsByCommand(tx *cairnv1.Transaction, evs []persistence.DecodedEvent, fn func(cmd *cairnv1.CommandRecord, ev persistence.DecodedEvent)) {
	i := 0
	for _, cr := range tx.GetCommands() {
		for range cr.GetEventCount() {
			if i < len(evs) {
				fn(cr, evs[i])
			}
			i++
		}
	}
}

func writeTxText(w io.Writer, r persistence.Record, evs []persistence.DecodedEvent, blank bool) error {
	var b strings.Builder
	if blank {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "seq %d  %s  tx %s\n", r.Seq, txTime(r.Tx), r.Tx.GetTxId())
	var cur *cairnv1.CommandRecord
	eventsByCommand(r.Tx, evs, func(cr *cairnv1.CommandRecord, ev persistence.DecodedEvent) {
		if cr != cur {
			cur = cr
			fmt.Fprintf(&b, "  command %s", cr.GetCommandId())
			for _, kv := range [][2]string{{"issuer", cr.GetIssuer()}, {"correlation", cr.GetCorrelationId()}, {"causation", cr.GetCausationId()}} {
				if kv[1] != "" {
					fmt.Fprintf(&b, "  %s %s", kv[0], kv[1])
				}
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "    %d %s%s\n", ev.Envelope.N, ev.Envelope.Type, summary(ev.Event))
		fmt.Fprintf(&b, "      cid  %s\n", ev.CID)
		if ev.Envelope.Prev.Defined() {
			fmt.Fprintf(&b, "      prev %s\n", ev.Envelope.Prev)
		}
	})
	_, err := io.WriteString(w, b.String())
	return err
}

// summary describes an event's content in one line, after its type.
func summary(ev *cairnv1.Event) string {
	var b strings.Builder
	comps := func(label string, cs []*cairnv1.Component) {
		if len(cs) == 0 {
			return
		}
		b.WriteString("  " + label)
		for _, c := range cs {
			b.WriteString(" " + c.GetType() + "=" + value(c.GetValue()))
		}
	}
	list := func(label string, ss []string) {
		if len(ss) > 0 {
			b.WriteString("  " + label + " " + strings.Join(ss, " "))
		}
	}
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_GraphCreated:
		if t := k.GraphCreated.GetGraphType(); t != "" {
			fmt.Fprintf(&b, "  type %q", t)
		}
		meta := k.GraphCreated.GetMetadata()
		keys := make([]string, 0, len(meta))
		for key := range meta {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		for i, key := range keys {
			if i == 0 {
				b.WriteString("  meta")
			}
			b.WriteString(" " + key + "=" + value([]byte(meta[key])))
		}
	case *cairnv1.Event_NodeAdded:
		fmt.Fprintf(&b, "  node %q", k.NodeAdded.GetNodeId())
		comps("components", k.NodeAdded.GetComponents())
		list("categories", k.NodeAdded.GetCategories())
	case *cairnv1.Event_NodeComponentsChanged:
		fmt.Fprintf(&b, "  node %q", k.NodeComponentsChanged.GetNodeId())
		comps("set", k.NodeComponentsChanged.GetSet())
		list("removed", k.NodeComponentsChanged.GetRemovedTypes())
	case *cairnv1.Event_NodeRemoved:
		fmt.Fprintf(&b, "  node %q", k.NodeRemoved.GetNodeId())
	case *cairnv1.Event_EdgeAdded:
		e := k.EdgeAdded
		fmt.Fprintf(&b, "  edge %q  %q -> %q", e.GetEdgeId(), e.GetSource(), e.GetTarget())
		if e.GetEdgeType() != "" {
			fmt.Fprintf(&b, "  type %q", e.GetEdgeType())
		}
		comps("components", e.GetComponents())
	case *cairnv1.Event_EdgeRemoved:
		e := k.EdgeRemoved
		fmt.Fprintf(&b, "  edge %q  %q -> %q", e.GetEdgeId(), e.GetSource(), e.GetTarget())
	}
	return b.String()
}

// value shows a component value: quoted text, shortened past 60 bytes, or
// its length when it is not UTF-8.
func value(v []byte) string {
	if !utf8.Valid(v) {
		return fmt.Sprintf("<%d bytes>", len(v))
	}
	if len(v) > 60 {
		cut := 60
		for !utf8.RuneStart(v[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…(%d bytes)", v[:cut], len(v))
	}
	return fmt.Sprintf("%q", v)
}

type txJSON struct {
	Seq      uint64        `json:"seq"`
	Time     string        `json:"time"`
	Stored   string        `json:"stored"`
	Graph    string        `json:"graph"`
	TxID     string        `json:"tx_id"`
	Commands []commandJSON `json:"commands"`
	Events   []eventJSON   `json:"events"`
}

type commandJSON struct {
	CommandID     string `json:"command_id"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	Issuer        string `json:"issuer,omitempty"`
	EventCount    uint32 `json:"event_count"`
}

type eventJSON struct {
	N         uint64          `json:"n"`
	Type      string          `json:"type"`
	CID       string          `json:"cid"`
	Prev      string          `json:"prev,omitempty"`
	CommandID string          `json:"command_id"`
	Event     json.RawMessage `json:"event"`
}

func newTxJSON(r persistence.Record, evs []persistence.DecodedEvent) txJSON {
	out := txJSON{
		Seq: r.Seq, Time: txTime(r.Tx), Stored: r.Time.UTC().Format(time.RFC3339Nano),
		Graph: r.Tx.GetGraphId(), TxID: r.Tx.GetTxId(),
		Commands: make([]commandJSON, 0, len(r.Tx.GetCommands())),
		Events:   make([]eventJSON, 0, len(evs)),
	}
	for _, cr := range r.Tx.GetCommands() {
		out.Commands = append(out.Commands, commandJSON{
			CommandID: cr.GetCommandId(), CorrelationID: cr.GetCorrelationId(), CausationID: cr.GetCausationId(),
			Issuer: cr.GetIssuer(), EventCount: cr.GetEventCount(),
		})
	}
	eventsByCommand(r.Tx, evs, func(cr *cairnv1.CommandRecord, ev persistence.DecodedEvent) {
		body, err := protojson.Marshal(ev.Event)
		if err != nil {
			body, _ = json.Marshal(err.Error())
		}
		e := eventJSON{N: ev.Envelope.N, Type: ev.Envelope.Type, CID: ev.CID.String(), CommandID: cr.GetCommandId(), Event: body}
		if ev.Envelope.Prev.Defined() {
			e.Prev = ev.Envelope.Prev.String()
		}
		out.Events = append(out.Events, e)
	})
	return out
}
