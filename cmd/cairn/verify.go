package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
)

const verifyUsage = `Usage:
  cairn verify <graph> [--trust FILE [--trust-unsigned-through SEQ]] [client flags]

verify reads every transaction of the graph, across archive and stream,
recomputes every event's CID from its stored dag-cbor envelope and checks
every prev link and chain position. It prints
  graph g: chain whole: 12 transactions, 40 events, head bafy... (seq 57)
and a line on signatures. With --trust FILE (trusted public keys, one per
line, # comments: see cairn help keys) it checks every transaction's
signature, and every archive's and snapshot's, against those keys: an
unsigned transaction (past --trust-unsigned-through SEQ, default 0), one
signed by another key or a forged one breaks the chain at its seq:
  signatures: 12 of 12 transactions signed by N..., checked against 2 trusted keys
Without --trust it says which keys signed, and that it checked them
against none:
  signatures: 12 of 12 transactions signed by N...; not checked against trusted keys (...)
Then it checks every snapshot it finds for the graph, aggregate and read
model: the object reads back whole, its payload's SHA-256 is the one its
metadata holds (and with --trust its signature holds), it decodes, has a
known format version, is of the graph, and its head is the event at its
position in the chain.
One line per snapshot, newest first:
  snapshot aggregate seq 1000 position 3000: ok
  snapshot readmodel seq 900 position 2700: head does not match the chain: ...
verify exits 0 only when the chain is whole and every snapshot is good;
the first break in the chain is printed to stderr, and with bad snapshots
the exit status is 1 too. --json prints one object:
  {"graph":..,"ok":..,"transactions":..,"events":..,"head":..,"last_seq":..,"error":..,
   "signed":..,"key_ids":[..],"signatures_checked":..,"trusted_keys":[..],
   "snapshots":[{"kind":..,"seq":..,"position":..,"head":..,"format":..,"name":..,
                 "size":..,"stored":..,"key_id":..,"ok":..,"error":..},..]}
`

type verifyJSON struct {
	Graph        string `json:"graph"`
	OK           bool   `json:"ok"`
	Transactions int    `json:"transactions"`
	Events       uint64 `json:"events"`
	Head         string `json:"head"`
	LastSeq      uint64 `json:"last_seq"`
	Error        string `json:"error,omitempty"`
	// Signed transactions and the keys that signed them; checked against
	// TrustedKeys only when SignaturesChecked.
	Signed            int            `json:"signed"`
	KeyIDs            []string       `json:"key_ids"`
	SignaturesChecked bool           `json:"signatures_checked"`
	TrustedKeys       []string       `json:"trusted_keys,omitempty"`
	Snapshots         []snapshotJSON `json:"snapshots"`
}

// snapshotJSON is one snapshot's check.
type snapshotJSON struct {
	Kind     string `json:"kind"`
	Seq      uint64 `json:"seq"`
	Position uint64 `json:"position"`
	Head     string `json:"head,omitempty"`
	Format   uint32 `json:"format"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Stored   int64  `json:"stored"`
	KeyID    string `json:"key_id,omitempty"`
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
}

// trustFlags registers --trust and --trust-unsigned-through, which
// openGraphReader reads into graphReader.trust: the readers (log, history,
// diff, verify) then check every transaction's signature.
func trustFlags(fs *flag.FlagSet) {
	fs.String("trust", "", "`file` of trusted public keys: check every signature")
	fs.Uint64("trust-unsigned-through", 0, "accept unsigned transactions up to this stream `seq`")
}

func runVerify(ctx context.Context, args []string, stdout, _ io.Writer) error {
	r, ctx, done, err := openGraphReader(ctx, "verify", args, trustFlags)
	if err != nil {
		return err
	}
	defer done()
	graph := r.graph
	out, err := r.verifyChain(ctx)
	snaps, serr := r.checkSnapshots(ctx)
	bad := 0
	for _, s := range snaps {
		if !s.OK {
			bad++
		}
	}
	if serr == nil && bad > 0 {
		serr = fmt.Errorf("graph %s: %d of %d snapshots are bad", graph, bad, len(snaps))
	}
	if r.json {
		out.Snapshots = snaps
		if out.Snapshots == nil {
			out.Snapshots = []snapshotJSON{}
		}
		if err == nil && serr != nil {
			out.OK, out.Error = false, serr.Error()
		}
		if jerr := writeJSON(stdout, out); jerr != nil {
			return errors.Join(err, serr, jerr)
		}
		return errors.Join(err, serr)
	}
	var b strings.Builder
	if err == nil {
		b.WriteString(verifyLine(out) + "\n")
		b.WriteString(signaturesLine(out) + "\n")
	}
	for _, s := range snaps {
		fmt.Fprintf(&b, "snapshot %s seq %d position %d: ", s.Kind, s.Seq, s.Position)
		if s.OK {
			b.WriteString("ok\n")
		} else {
			b.WriteString(s.Error + "\n")
		}
	}
	if _, werr := io.WriteString(stdout, b.String()); werr != nil {
		return errors.Join(err, serr, werr)
	}
	return errors.Join(err, serr)
}

// verifyChain checks the graph's chain across archive and stream and returns
// the result as --json prints it, with the error that makes it not OK.
func (r *graphReader) verifyChain(ctx context.Context) (verifyJSON, error) {
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
	out := verifyJSON{Graph: graph, OK: err == nil, Transactions: res.Transactions, Events: res.Events, LastSeq: res.LastSeq,
		Signed: res.Signed, KeyIDs: strings.Fields(res.KeyIDs), SignaturesChecked: r.trust != nil, TrustedKeys: r.trust.IDs()}
	if out.KeyIDs == nil {
		out.KeyIDs = []string{}
	}
	if res.Head.CID.Defined() {
		out.Head = res.Head.CID.String()
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out, err
}

// verifyLine is verify's line for a whole chain.
func verifyLine(v verifyJSON) string {
	return fmt.Sprintf("graph %s: chain whole: %d transactions, %d events, head %s (seq %d)",
		v.Graph, v.Transactions, v.Events, v.Head, v.LastSeq)
}

// signaturesLine is verify's line on a whole chain's signatures.
func signaturesLine(v verifyJSON) string {
	s := fmt.Sprintf("signatures: %d of %d transactions signed", v.Signed, v.Transactions)
	if len(v.KeyIDs) > 0 {
		s += " by " + strings.Join(v.KeyIDs, ", ")
	}
	if !v.SignaturesChecked {
		return s + "; not checked against trusted keys (no --trust; cairn keys fetch prints the engine's)"
	}
	s += fmt.Sprintf(", checked against %d trusted keys", len(v.TrustedKeys))
	if v.Signed < v.Transactions {
		s += " (the unsigned ones are within --trust-unsigned-through)"
	}
	return s
}

// checkSnapshots checks every aggregate and read-model snapshot of the
// graph. The error is for a failure to list them, not for a bad one.
func (r *graphReader) checkSnapshots(ctx context.Context) ([]snapshotJSON, error) {
	var out []snapshotJSON
	for _, kind := range []persistence.SnapshotKind{persistence.KindAggregate, persistence.KindReadModel} {
		infos, err := r.snaps.List(ctx, kind, r.graph)
		if err != nil {
			return out, fmt.Errorf("list %s snapshots of graph %s: %w", kind, r.graph, r.timedOut(err))
		}
		for _, info := range infos {
			s := snapshotJSON{
				Kind: string(info.Kind), Seq: info.Seq, Position: info.Position, Format: info.Format,
				Name: info.Name, Size: info.Size, Stored: info.Stored, KeyID: info.KeyID,
			}
			if info.Head.Defined() {
				s.Head = info.Head.String()
			}
			if err := r.checkSnapshot(ctx, info); err != nil {
				if ctx.Err() != nil {
					return out, r.timedOut(ctx.Err())
				}
				if gone, lerr := r.snapshotGone(ctx, info); lerr == nil && gone {
					// Pruned by the engine between the list and the
					// read: not a bad snapshot, no snapshot at all.
					continue
				}
				s.Error = err.Error()
			} else {
				s.OK = true
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// snapshotGone reports whether info is no longer listed (the same name,
// created at the same time): a running engine prunes old snapshots as it
// writes new ones.
func (r *graphReader) snapshotGone(ctx context.Context, info persistence.SnapshotInfo) (bool, error) {
	infos, err := r.snaps.List(ctx, info.Kind, r.graph)
	if err != nil {
		return false, err
	}
	return !slices.ContainsFunc(infos, func(i persistence.SnapshotInfo) bool { return i.Name == info.Name && i.Created.Equal(info.Created) }), nil
}

// checkSnapshot says why one snapshot cannot be trusted, nil when it can.
func (r *graphReader) checkSnapshot(ctx context.Context, info persistence.SnapshotInfo) error {
	if info.Graph != r.graph {
		return fmt.Errorf("listed for graph %q", info.Graph)
	}
	if info.Kind == persistence.KindAggregate {
		// The grain's own checks, head included.
		return actors.CheckAggregateSnapshot(ctx, r.snaps, r.store, r.graph, info)
	}
	data, err := r.snaps.Get(ctx, info)
	if err != nil {
		return fmt.Errorf("does not read back: %w", err)
	}
	switch info.Kind {
	case persistence.KindReadModel:
		if !readmodel.ReadsFormat(info.Format) {
			return fmt.Errorf("unknown format version %d (this cairn reads up to %d)", info.Format, readmodel.SnapshotFormat)
		}
		g, err := readmodel.LoadSnapshot(data, readmodel.DefaultConfig())
		if err != nil {
			return fmt.Errorf("does not load: %w", err)
		}
		if g.ID() != r.graph {
			return fmt.Errorf("holds graph %q", g.ID())
		}
		if g.AsOf() != info.Seq {
			return fmt.Errorf("read model is as of seq %d, its metadata says seq %d", g.AsOf(), info.Seq)
		}
	default:
		return fmt.Errorf("unknown snapshot kind %q", info.Kind)
	}
	if err := r.store.CheckHead(ctx, r.graph, info.Seq, persistence.Head{N: info.Position, CID: info.Head}); err != nil {
		return fmt.Errorf("head does not match the chain: %w", err)
	}
	return nil
}
