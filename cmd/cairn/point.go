package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// pointUsage explains the forms a point in a graph's history takes, for the
// help of the commands that take one.
const pointUsage = `A point in a graph's history is one of
  a stream sequence     12 (every transaction of the graph up to seq 12)
  a time (RFC 3339)     2026-11-27T20:43:12Z or ...T20:43:12.5+01:00 (every
                        transaction stored at or before it)
  an event CID          bafy... (as a write's head= or cairn history prints it)
`

// point is a point in a graph's history as typed on the command line.
type point struct {
	text string
	seq  uint64    // when isSeq
	at   time.Time // when isTime
	cid  cid.Cid   // when isCID

	isSeq, isTime, isCID bool
}

// parsePoint reads a stream sequence (digits), an RFC 3339 time or an event
// CID. flag names the flag in errors.
func parsePoint(flag, s string) (point, error) {
	p := point{text: s}
	if s == "" {
		return p, fmt.Errorf("%s: empty: want a stream sequence, an RFC 3339 time or an event CID", flag)
	}
	if s[0] >= '0' && s[0] <= '9' && len(s) <= 20 {
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			p.seq, p.isSeq = n, true
			return p, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		p.at, p.isTime = t, true
		return p, nil
	}
	if c, err := cid.Decode(s); err == nil {
		p.cid, p.isCID = c, true
		return p, nil
	}
	return p, fmt.Errorf("%s %q: want a stream sequence (digits), an RFC 3339 time (2026-11-27T20:43:12Z) or an event CID (bafy...)", flag, s)
}

// asOf is the point as a query's as_of: the engine resolves it.
func (p point) asOf() *cairnv1.AsOf {
	switch {
	case p.isSeq:
		return &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: p.seq}}
	case p.isTime:
		return &cairnv1.AsOf{Point: &cairnv1.AsOf_TimeUnixNano{TimeUnixNano: p.at.UnixNano()}}
	}
	return &cairnv1.AsOf{Point: &cairnv1.AsOf_Cid{Cid: p.cid.String()}}
}

// resolved is a point resolved against the event store.
type resolved struct {
	Seq      uint64 // the stream sequence the point stands for
	FirstSeq uint64 // the graph's first transaction
	LastSeq  uint64 // the graph's last transaction (its head)
}

// errStopRead stops a Read early.
var errStopRead = errors.New("stop reading")

// resolver resolves points of one graph's history, looking up the graph's
// first and last transaction once.
type resolver struct {
	store       *persistence.Store
	graph       string
	first, last uint64
}

// bounds looks up the graph's first and last transaction, in the archive or
// the stream.
func (rv *resolver) bounds(ctx context.Context) error {
	if rv.last != 0 {
		return nil
	}
	last, err := rv.store.LastSeq(ctx, rv.graph)
	if err != nil {
		return err
	}
	if last == 0 {
		return fmt.Errorf("graph %s has no transactions", rv.graph)
	}
	// The first archive, when there is one, names it without reading it.
	archives, err := rv.store.Archives(ctx, rv.graph)
	if err != nil {
		return fmt.Errorf("list the archives of graph %s: %w", rv.graph, err)
	}
	if len(archives) > 0 {
		rv.first, rv.last = archives[0].FromSeq, last
		return nil
	}
	var first uint64
	_, err = rv.store.Read(ctx, rv.graph, 1, func(r persistence.Record) error {
		first = r.Seq
		return errStopRead
	})
	if err != nil && !errors.Is(err, errStopRead) {
		return fmt.Errorf("read graph %s: %w", rv.graph, err)
	}
	rv.first, rv.last = first, last
	return nil
}

// resolve turns p into a stream sequence of the graph: a time is the last
// transaction stored at or before it, a CID the transaction holding that
// event. Seq 0 is the empty graph, before its first transaction. A point
// before the graph existed (other than 0), past its head, or a CID that is
// not one of its events is an error that says so.
func (rv *resolver) resolve(ctx context.Context, p point) (resolved, error) {
	if err := rv.bounds(ctx); err != nil {
		return resolved{}, err
	}
	graph, first, last := rv.graph, rv.first, rv.last
	r := resolved{FirstSeq: first, LastSeq: last}
	switch {
	case p.isSeq:
		switch {
		case p.seq > last:
			return r, fmt.Errorf("seq %d is beyond graph %s's head (its last transaction is seq %d)", p.seq, graph, last)
		case p.seq != 0 && p.seq < first:
			return r, fmt.Errorf("seq %d is before graph %s's first transaction (seq %d); 0 stands for the empty graph", p.seq, graph, first)
		}
		r.Seq = p.seq
	case p.isTime:
		seq, err := rv.store.SeqAtTime(ctx, graph, p.at)
		if err != nil {
			return r, fmt.Errorf("graph %s at %s: %w", graph, p.text, err)
		}
		if seq == 0 || seq < first {
			return r, fmt.Errorf("graph %s did not exist yet at %s (its first transaction is seq %d)", graph, p.at.UTC().Format(time.RFC3339Nano), first)
		}
		r.Seq = min(seq, last)
	default:
		seq, _, err := rv.store.FindEvent(ctx, graph, p.cid)
		if errors.Is(err, persistence.ErrNotFound) {
			return r, fmt.Errorf("event %s is not in graph %s", p.cid, graph)
		}
		if err != nil {
			return r, fmt.Errorf("find event %s in graph %s: %w", p.cid, graph, err)
		}
		r.Seq = seq
	}
	return r, nil
}
