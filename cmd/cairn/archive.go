package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/persistence"
)

const archiveUsage = `Usage:
  cairn archive <graph> --before X [--signing-key FILE [--trust FILE]] [client flags]

archive moves the graph's oldest transactions out of the hot stream into
compressed archive objects in the object-store bucket, and then removes them
from the stream, so that the stream stays bounded. Nothing is lost: log,
history, diff, verify and a full replay read across archive and stream.

It archives the transactions before X, but never one that no aggregate
snapshot covers: the bound used is the lower of X and the stream sequence of
the graph's oldest kept aggregate snapshot that checks out (its head is the
event at its position). A graph without such a snapshot is refused (exit
1). X is a point of the graph's history: a stream sequence (the
transactions below it), a time (those stored at or before it) or an event
CID (those before the transaction holding it).

` + pointUsage + `
It is safe while the graph is being written to. Progress goes to stderr;
the result is one line, then the chain is verified across archive and
stream:
  graph g: archived 1200 transactions (seq < 1301) in 2 objects, 812345 bytes (301234 stored), purged 1200 messages
  graph g: chain whole: 1500 transactions, 4500 events, head bafy... (seq 1600)
and the exit status is 1 when the chain does not verify. --json prints one
object:
  {"graph":..,"asked":..,"oldest_snapshot_seq":..,"before":..,"transactions":..,
   "objects":[{"name":..,"from_seq":..,"to_seq":..,"from_n":..,"to_n":..,
               "transactions":..,"size":..,"stored":..}],
   "bytes":..,"stored":..,"purged":..,"verify":{..as cairn verify --json..}}

Without --signing-key, archive asks the engine to write the archive
objects and purge the stream (cairn.admin.archive, an admin's request):
the engine does it with its own rights and signs the objects with its own
key, so it works on an engine with --auth, where no login may write the
object store or purge the stream. Progress is not shown then. With
--signing-key FILE (the engine's seed, so run archive where the key is)
archive writes the objects itself, signed, after checking every
transaction's signature against the signing key and the keys in --trust
FILE (those of earlier rotations): only on an engine without --auth.

Archive flags:
  --before X            archive the transactions before this point (required)
  --signing-key FILE    the engine's signing key seed: sign the archive objects
  --trust FILE          public keys trusted besides the signing key
  --timeout D           as for the client flags, default 10m here
`

type archiveJSON struct {
	Graph             string              `json:"graph"`
	Asked             uint64              `json:"asked"`
	OldestSnapshotSeq uint64              `json:"oldest_snapshot_seq"`
	Before            uint64              `json:"before"`
	Transactions      int                 `json:"transactions"`
	Objects           []api.ArchiveObject `json:"objects"`
	Bytes             int64               `json:"bytes"`
	Stored            int64               `json:"stored"`
	Purged            uint64              `json:"purged"`
	Verify            *verifyJSON         `json:"verify,omitempty"`
}

func runArchive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var beforeText string
	r, ctx, done, err := openGraphReader(ctx, "archive", args, func(fs *flag.FlagSet) {
		fs.StringVar(&beforeText, "before", "", "archive the transactions before this `point`: seq, RFC 3339 time or event CID")
		fs.String("signing-key", "", "the engine's signing key seed `file`")
		fs.String("trust", "", "`file` of public keys trusted besides the signing key")
		// Archiving a long history takes longer than reading it.
		_ = fs.Lookup("timeout").Value.Set("10m")
	})
	if err != nil {
		return err
	}
	defer done()
	graph := r.graph
	if beforeText == "" {
		return &usageError{topic: "archive", err: errors.New("archive: give --before")}
	}
	p, err := parsePoint("--before", beforeText)
	if err != nil {
		return &usageError{topic: "archive", err: fmt.Errorf("archive: %w", err)}
	}
	res, err := (&resolver{store: r.store, graph: graph}).resolve(ctx, p)
	if err != nil {
		return fmt.Errorf("archive --before %s: %w", beforeText, r.timedOut(err))
	}
	asked := res.Seq
	if p.isTime {
		asked++ // the transactions stored at or before the time
	}
	oldest, err := r.oldestTrustedSnapshot(ctx, stderr)
	if err != nil {
		return err
	}
	before := min(asked, oldest)
	out := archiveJSON{Graph: graph, Asked: asked, OldestSnapshotSeq: oldest, Before: before, Objects: []api.ArchiveObject{}}
	if before <= res.FirstSeq {
		return fmt.Errorf("graph %s: nothing to archive before seq %d (asked seq %d, oldest aggregate snapshot seq %d, first transaction seq %d)",
			graph, before, asked, oldest, res.FirstSeq)
	}
	var ar api.ArchiveReply
	if r.signer == nil {
		// The engine archives, with its own rights and signing key.
		fmt.Fprintf(stderr, "asking the engine to archive graph %s: transactions below seq %d (asked %d, oldest aggregate snapshot seq %d)\n", graph, before, asked, oldest)
		if ar, err = r.engineArchive(ctx, graph, before); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stderr, "archiving graph %s: transactions below seq %d (asked %d, oldest aggregate snapshot seq %d)\n", graph, before, asked, oldest)
		// On an engine with users no login may write the object store or
		// purge the stream: the server refuses, and archive stops at once.
		actx, refused := r.guard(ctx)
		res, err := r.store.Archive(actx, graph, before, func(pr persistence.ArchiveProgress) {
			fmt.Fprintf(stderr, "  %s, %s, %d bytes\n", plural(pr.Transactions, "transaction"), plural(pr.Objects, "object"), pr.Bytes)
		})
		if denied := refused(); denied != nil {
			return fmt.Errorf("archive graph %s: refused, this login may not write the object store or purge the stream (no login may on an engine with --auth; archive without --signing-key asks the engine): %w", graph, denied)
		}
		if err != nil {
			return fmt.Errorf("archive graph %s below seq %d: %w", graph, before, r.timedOut(err))
		}
		ar = api.ArchiveReply{Before: res.Before, Transactions: res.Transactions, Purged: res.Purged}
		for _, o := range res.Objects {
			ar.Objects = append(ar.Objects, api.ArchiveObject{Name: o.Name, FromSeq: o.FromSeq, ToSeq: o.ToSeq, FromN: o.FromN, ToN: o.ToN,
				Transactions: o.Transactions, Size: o.Size, Stored: o.Stored})
		}
	}
	if ar.Before != 0 {
		out.Before = ar.Before
	}
	out.Transactions, out.Purged = ar.Transactions, ar.Purged
	for _, o := range ar.Objects {
		out.Objects = append(out.Objects, o)
		out.Bytes += o.Size
		out.Stored += o.Stored
	}
	vr, verr := r.verifyChain(ctx)
	vr.Snapshots = []snapshotJSON{} // the chain only
	out.Verify = &vr
	if r.json {
		if err := writeJSON(stdout, out); err != nil {
			return errors.Join(verr, err)
		}
		return verr
	}
	fmt.Fprintf(stdout, "graph %s: archived %s (seq < %d) in %s, %d bytes (%d stored), purged %s\n",
		graph, plural(out.Transactions, "transaction"), out.Before, plural(len(out.Objects), "object"), out.Bytes, out.Stored, plural(int(out.Purged), "message"))
	if verr != nil {
		return fmt.Errorf("after archiving: %w", verr)
	}
	_, err = fmt.Fprintln(stdout, verifyLine(vr))
	return err
}

// oldestTrustedSnapshot returns the stream sequence of the graph's oldest
// aggregate snapshot whose head checks out against the chain. Snapshots that
// do not check out are named on stderr and skipped.
func (r *graphReader) oldestTrustedSnapshot(ctx context.Context, stderr io.Writer) (uint64, error) {
	infos, err := r.snaps.List(ctx, persistence.KindAggregate, r.graph)
	if err != nil {
		return 0, fmt.Errorf("list aggregate snapshots of graph %s: %w", r.graph, r.timedOut(err))
	}
	// Newest first: try the oldest first.
	for i := len(infos) - 1; i >= 0; i-- {
		info := infos[i]
		err := r.store.CheckHead(ctx, r.graph, info.Seq, persistence.Head{N: info.Position, CID: info.Head})
		if err == nil {
			return info.Seq, nil
		}
		if ctx.Err() != nil {
			return 0, r.timedOut(ctx.Err())
		}
		fmt.Fprintf(stderr, "skipping aggregate snapshot seq %d position %d: %v\n", info.Seq, info.Position, err)
	}
	if len(infos) == 0 {
		return 0, fmt.Errorf("graph %s has no aggregate snapshot: archive only moves transactions that a snapshot covers (the engine writes one every N events and when the graph goes idle)", r.graph)
	}
	return 0, fmt.Errorf("graph %s has no aggregate snapshot that checks out against its chain (%d found): nothing can be archived", r.graph, len(infos))
}

// plural counts n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// engineArchive asks the engine to archive graph below before
// (api.ArchiveSubject).
func (r *graphReader) engineArchive(ctx context.Context, graph string, before uint64) (api.ArchiveReply, error) {
	data, err := json.Marshal(api.ArchiveRequest{Graph: graph, Before: before})
	if err != nil {
		return api.ArchiveReply{}, err
	}
	msg, err := r.requestRaw(ctx, api.ArchiveSubject, "an archive request", data, "; the archive may still be running: see cairn log")
	if err != nil {
		return api.ArchiveReply{}, err
	}
	var rep api.ArchiveReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return rep, fmt.Errorf("the engine's archive answer is not JSON: %w", err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("archive graph %s below seq %d: %s: %s", graph, before, rep.Code, rep.Error)
	}
	return rep, nil
}
