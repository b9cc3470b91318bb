package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/snaptest"
	"github.com/cairn-graph/cairn/persistence"
)

// write runs a write command line with --json and returns its reply.
func write(t *testing.T, server string, args ...string) replyJSON {
	t.Helper()
	out := mustRun(t, append(args, "--server", server, "--json")...)
	var rep replyJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("cairn %s: %v: %q", strings.Join(args, " "), err, out)
	}
	return rep
}

// scriptGraph writes a small graph named graph, one transaction per
// command, and returns the replies (replies[i] is the transaction at seq
// replies[i].Seq).
func scriptGraph(t *testing.T, server, graph string) []replyJSON {
	t.Helper()
	lines := [][]string{
		{"graph", "create", graph},
		{"node", "add", graph, "n1", "--component", "v=1", "--category", "pkg"},
		{"node", "add", graph, "n2", "--component", "name=two"},
		{"edge", "add", graph, "e1", "n1", "n2", "--type", "dep", "--component", "w=3"},
		{"node", "set", graph, "n1", "--component", "v=2", "--component", "extra=x"},
		{"node", "add", graph, "n3", "--category", "person"},
		{"edge", "add", graph, "e2", "n2", "n3"},
		{"node", "set", graph, "n2", "--unset", "name"},
		{"node", "remove", graph, "n1"},
	}
	var reps []replyJSON
	for _, l := range lines {
		reps = append(reps, write(t, server, l...))
	}
	return reps
}

// run2 runs a command line against server.
func run2(t *testing.T, server string, args ...string) result {
	t.Helper()
	return runCLI(t, append(args, "--server", server)...)
}

func TestHistory(t *testing.T) {
	eng := openEngine(t)
	server := eng.ClientURL()
	reps := scriptGraph(t, server, "hist")

	var b strings.Builder
	from := "1"
	for page := 0; page < 10 && from != ""; page++ {
		out := mustRun(t, "history", "hist", "--limit", "4", "--from-seq", from, "--server", server)
		fmt.Fprintf(&b, "$ cairn history hist --limit 4 --from-seq %s\n%s", from, out)
		from = ""
		if i := strings.LastIndex(out, "next: --from-seq "); i >= 0 {
			from = strings.TrimSpace(out[i+len("next: --from-seq "):])
		}
	}
	golden(t, "history.golden", mask(b.String()))

	// JSON: every transaction, its head the write's head.
	out := mustRun(t, "history", "hist", "--limit", "5", "--json", "--server", server)
	var h historyJSON
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("history --json: %v: %q", err, out)
	}
	if len(h.Transactions) != 5 || h.NextFromSeq != reps[5].Seq {
		t.Fatalf("history --json: %d transactions, next %d; want 5, next %d", len(h.Transactions), h.NextFromSeq, reps[5].Seq)
	}
	out = mustRun(t, "history", "hist", "--from-seq", fmt.Sprint(h.NextFromSeq), "--json", "--server", server)
	var h2 historyJSON
	if err := json.Unmarshal([]byte(out), &h2); err != nil {
		t.Fatalf("history --json: %v: %q", err, out)
	}
	all := append(h.Transactions, h2.Transactions...)
	if len(all) != len(reps) || h2.NextFromSeq != 0 {
		t.Fatalf("history --json: %d transactions in all, last next %d; want %d, 0", len(all), h2.NextFromSeq, len(reps))
	}
	for i, tx := range all {
		if tx.Seq != reps[i].Seq || tx.Head != reps[i].HeadCID || tx.TxID != reps[i].TxID || tx.Position != reps[i].Position {
			t.Errorf("transaction %d: %+v; the write said %+v", i, tx, reps[i])
		}
		if _, err := time.Parse(time.RFC3339Nano, tx.Time); err != nil {
			t.Errorf("transaction %d: time %q: %v", i, tx.Time, err)
		}
	}
	if s := all[8].Summary; s != "remove edge e1, remove node n1" {
		t.Errorf("last summary %q", s)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"history", "nope"}, exitFailure, "graph nope has no transactions"},
		{[]string{"history", "hist", "--from-seq", "100"}, exitFailure, "graph hist has no transactions from seq 100 on (its last is seq 9)"},
		{[]string{"history", "hist", "--limit", "0"}, exitUsage, "--limit 0 is not in 1..1000"},
		{[]string{"history", "hist", "--limit", "1001"}, exitUsage, "--limit 1001 is not in 1..1000"},
		{[]string{"history"}, exitUsage, "want 1 argument"},
	} {
		r := run2(t, server, tc.args...)
		if r.code() != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("cairn %s: exit %d, stderr %q; want %d, %q", strings.Join(tc.args, " "), r.code(), r.stderr, tc.code, tc.msg)
		}
	}
}

func TestDiff(t *testing.T) {
	eng := openEngine(t)
	server := eng.ClientURL()
	write(t, server, "graph", "create", "other")
	reps := scriptGraph(t, server, "dg")
	other := write(t, server, "node", "add", "other", "x")
	ctx := context.Background()
	stored := func(seq uint64) string {
		rec, err := eng.Store().Get(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Time.UTC().Format(time.RFC3339Nano)
	}
	// reps[1] is seq 3 (n1 added); reps[6] seq 8 (e2 added).
	bySeq := mustRun(t, "diff", "dg", "--from", fmt.Sprint(reps[1].Seq), "--to", fmt.Sprint(reps[6].Seq), "--server", server)
	golden(t, "diff.golden", mask(bySeq))
	byTime := mustRun(t, "diff", "dg", "--from", stored(reps[1].Seq), "--to", stored(reps[6].Seq), "--server", server)
	byCID := mustRun(t, "diff", "dg", "--from", reps[1].HeadCID, "--to", reps[6].HeadCID, "--server", server)
	if byTime != bySeq || byCID != bySeq {
		t.Errorf("diff by seq, time and CID differ:\n%s\n%s\n%s", bySeq, byTime, byCID)
	}

	// From the empty graph to the head, as JSON.
	out := mustRun(t, "diff", "dg", "--from", "0", "--to", reps[8].HeadCID, "--json", "--server", server)
	d := diffJSON{stateDiff: &stateDiff{}}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("diff --json: %v: %q", err, out)
	}
	if d.Graph != "dg" || d.From.Seq != 0 || d.From.Head != "" || d.To.Seq != reps[8].Seq || d.To.Head != reps[8].HeadCID ||
		d.To.Position != reps[8].Position || d.GraphChange != "created" || len(d.Nodes.Added) != 2 || len(d.Edges.Added) != 1 ||
		d.Summary != "graph created, nodes +2 -0 ~0, edges +1 -0 ~0" {
		t.Errorf("diff --json: %s", out)
	}
	// The same point twice: no changes.
	same := mustRun(t, "diff", "dg", "--from", "5", "--to", "5", "--server", server)
	if !strings.Contains(same, "no changes\nsummary: nodes +0 -0 ~0, edges +0 -0 ~0\n") {
		t.Errorf("diff of a point with itself: %q", same)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"diff", "dg", "--from", "8", "--to", "3"}, exitUsage, "--from 8 (seq 8) comes after --to 3 (seq 3)"},
		{[]string{"diff", "dg", "--from", reps[6].HeadCID, "--to", reps[1].HeadCID}, exitUsage, "comes after --to"},
		{[]string{"diff", "dg", "--from", "3"}, exitUsage, "give both --from and --to"},
		{[]string{"diff", "dg", "--from", "yesterday", "--to", "3"}, exitUsage, `--from "yesterday": want a stream sequence`},
		{[]string{"diff", "dg", "--from", "3", "--to", "99"}, exitFailure, "seq 99 is beyond graph dg's head (its last transaction is seq 10)"},
		{[]string{"diff", "dg", "--from", "1", "--to", "3"}, exitFailure, "seq 1 is before graph dg's first transaction (seq 2)"},
		{[]string{"diff", "dg", "--from", "2000-01-01T00:00:00Z", "--to", "3"}, exitFailure, "graph dg did not exist yet at 2000-01-01T00:00:00Z"},
		{[]string{"diff", "dg", "--from", other.HeadCID, "--to", "3"}, exitFailure, "event " + other.HeadCID + " is not in graph dg"},
		{[]string{"diff", "nope", "--from", "0", "--to", "3"}, exitFailure, "graph nope has no transactions"},
	} {
		r := run2(t, server, tc.args...)
		if r.code() != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("cairn %s: exit %d, stderr %q; want %d, %q", strings.Join(tc.args, " "), r.code(), r.stderr, tc.code, tc.msg)
		}
	}
}

// putAggregate stores graph's aggregate snapshot as of seq, as the engine
// would. mutate, when not nil, spoils it first.
func putAggregate(t *testing.T, eng *cairn.Engine, graph string, seq uint64, mutate func(*persistence.SnapshotInfo, *[]byte)) persistence.SnapshotInfo {
	t.Helper()
	ctx := context.Background()
	snaps := openSnaps(t, eng)
	st, head, last, err := actors.StateAt(ctx, eng.Store(), nil, graph, seq)
	if err != nil {
		t.Fatalf("state of %s at %d: %v", graph, seq, err)
	}
	data, err := aggregate.Marshal(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: graph, Seq: last, Position: head.N, Head: head.CID, Format: actors.AggregateSnapshotFormat}
	if mutate != nil {
		mutate(&info, &data)
	}
	info, err = snaps.Put(ctx, info, data)
	if err != nil {
		t.Fatalf("put snapshot: %v", err)
	}
	return info
}

func openSnaps(t *testing.T, eng *cairn.Engine) *persistence.Snapshots {
	t.Helper()
	js, err := jetstream.New(eng.Conn())
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := persistence.OpenSnapshots(context.Background(), js, persistence.DefaultSnapshotConfig())
	if err != nil {
		t.Fatalf("open snapshots: %v", err)
	}
	return snaps
}

func TestArchive(t *testing.T) {
	eng := openEngine(t)
	server := eng.ClientURL()
	reps := scriptGraph(t, server, "ar")

	r := run2(t, server, "archive", "ar", "--before", "7")
	if r.code() != exitFailure || !strings.Contains(r.stderr, "graph ar has no aggregate snapshot") {
		t.Fatalf("archive without a snapshot: exit %d, stderr %q", r.code(), r.stderr)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"archive", "ar"}, "give --before"},
		{[]string{"archive", "ar", "--before", "soon"}, `--before "soon"`},
	} {
		if r := run2(t, server, tc.args...); r.code() != exitUsage || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("cairn %s: exit %d, stderr %q", strings.Join(tc.args, " "), r.code(), r.stderr)
		}
	}

	logBefore := mustRun(t, "log", "ar", "--server", server)
	histBefore := mustRun(t, "history", "ar", "--server", server)
	diffBefore := mustRun(t, "diff", "ar", "--from", "2", "--to", "9", "--server", server)
	// The snapshot at seq 4 bounds the archive below 7.
	snap := putAggregate(t, eng, "ar", reps[3].Seq, nil)
	r = run2(t, server, "archive", "ar", "--before", "7")
	if r.err != nil {
		t.Fatalf("archive: %v\nstderr: %s", r.err, r.stderr)
	}
	t.Logf("archive:\n%s%s", r.stdout, r.stderr)
	want := fmt.Sprintf("graph ar: archived 3 transactions (seq < %d) in ", snap.Seq)
	whole := fmt.Sprintf("purged 3 messages\ngraph ar: chain whole: 9 transactions, %d events", reps[8].Position)
	if !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, whole) {
		t.Errorf("archive: stdout %q, want %q...", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "asking the engine to archive graph ar: transactions below seq 4 (asked 7, oldest aggregate snapshot seq 4)") {
		t.Errorf("archive: stderr %q", r.stderr)
	}
	// Nothing is lost: log, history and diff read across archive and stream.
	if got := mustRun(t, "log", "ar", "--server", server); got != logBefore {
		t.Errorf("log after archiving differs:\n%s", diff(logBefore, got))
	}
	if got := mustRun(t, "history", "ar", "--server", server); got != histBefore {
		t.Errorf("history after archiving differs:\n%s", diff(histBefore, got))
	}
	if got := mustRun(t, "diff", "ar", "--from", "2", "--to", "9", "--server", server); got != diffBefore {
		t.Errorf("diff after archiving differs:\n%s", diff(diffBefore, got))
	}
	// The archived messages are gone from the stream.
	js, err := jetstream.New(eng.Conn())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := js.Stream(context.Background(), "event-store")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.GetMsg(context.Background(), 2); err == nil {
		t.Errorf("seq 2 is still in the stream")
	}
	out := mustRun(t, "verify", "ar", "--json", "--server", server)
	var v verifyJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.OK || v.Transactions != 9 || len(v.Snapshots) == 0 || v.Snapshots[0].Name != snap.Name {
		t.Errorf("verify after archiving: %v %s", err, out)
	}
	for _, s := range v.Snapshots {
		if !s.OK {
			t.Errorf("verify after archiving: snapshot %s: %s", s.Name, s.Error)
		}
	}

	// --json, with a time bound past the snapshot: again bounded by it.
	r = run2(t, server, "archive", "ar", "--before", time.Now().UTC().Format(time.RFC3339Nano), "--json")
	var a archiveJSON
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || r.err != nil {
		t.Fatalf("archive --json: %v %v: %q %q", err, r.err, r.stdout, r.stderr)
	}
	if a.Graph != "ar" || a.Before != snap.Seq || a.OldestSnapshotSeq != snap.Seq || a.Verify == nil || !a.Verify.OK {
		t.Errorf("archive --json: %s", r.stdout)
	}
}

func TestVerifySnapshots(t *testing.T) {
	eng := openEngine(t)
	server := eng.ClientURL()
	reps := scriptGraph(t, server, "vs")
	good := putAggregate(t, eng, "vs", reps[2].Seq, nil)
	// Claims the head of an earlier event.
	wrongHead := putAggregate(t, eng, "vs", reps[4].Seq, func(info *persistence.SnapshotInfo, _ *[]byte) {
		c, err := cid.Decode(reps[1].HeadCID)
		if err != nil {
			t.Fatal(err)
		}
		info.Head = c
	})
	future := putAggregate(t, eng, "vs", reps[5].Seq, func(info *persistence.SnapshotInfo, _ *[]byte) { info.Format = 99 })
	garbage := putAggregate(t, eng, "vs", reps[6].Seq, func(_ *persistence.SnapshotInfo, data *[]byte) { *data = []byte("not a snapshot") })
	rm := snaptest.PutReadModel(t, eng.Store(), openSnaps(t, eng), "vs", reps[7].Seq)

	r := run2(t, server, "verify", "vs")
	// The engine may have written snapshots of its own: count only ours.
	if r.code() != exitFailure || !strings.Contains(r.stderr, "graph vs: 3 of ") {
		t.Errorf("verify: exit %d, stderr %q", r.code(), r.stderr)
	}
	for _, want := range []string{
		fmt.Sprintf("graph vs: chain whole: 9 transactions, %d events", reps[8].Position),
		fmt.Sprintf("snapshot aggregate seq %d position %d: ok\n", good.Seq, good.Position),
		fmt.Sprintf("snapshot aggregate seq %d position %d: snapshot %s is not on the chain: graph vs: chain broken at seq %d", wrongHead.Seq, wrongHead.Position, wrongHead.Name, wrongHead.Seq),
		fmt.Sprintf("snapshot aggregate seq %d position %d: invalid aggregate snapshot: %s has format version 99", future.Seq, future.Position, future.Name),
		fmt.Sprintf("snapshot aggregate seq %d position %d: snapshot %s: invalid aggregate snapshot: not an aggregate state encoding", garbage.Seq, garbage.Position, garbage.Name),
		fmt.Sprintf("snapshot readmodel seq %d position %d: ok\n", rm.Seq, rm.Position),
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify: stdout %q lacks %q", r.stdout, want)
		}
	}
	r = run2(t, server, "verify", "vs", "--json")
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("verify --json: %v: %q", err, r.stdout)
	}
	ok := map[string]bool{}
	for _, s := range v.Snapshots {
		ok[s.Name] = s.OK
	}
	for _, tc := range []struct {
		info persistence.SnapshotInfo
		ok   bool
	}{{good, true}, {wrongHead, false}, {future, false}, {garbage, false}, {rm, true}} {
		if got, found := ok[tc.info.Name]; !found || got != tc.ok {
			t.Errorf("verify --json: snapshot %s: listed %v, ok %v; want ok %v", tc.info.Name, found, got, tc.ok)
		}
	}
	if r.code() != exitFailure || v.OK || !strings.Contains(v.Error, "3 of ") {
		t.Errorf("verify --json: exit %d, %s", r.code(), r.stdout)
	}
}

func TestQueryAsOf(t *testing.T) {
	eng := openEngine(t)
	server := eng.ClientURL()
	reps := scriptGraph(t, server, "tt")
	last := reps[len(reps)-1]
	// Wait for the projection to catch up, then ask the past.
	mustRun(t, "query", "stats", "tt", "--min-seq", fmt.Sprint(last.Seq), "--server", server)
	r := run2(t, server, "query", "node", "tt", "n1", "--as-of", fmt.Sprint(reps[1].Seq))
	if strings.Contains(r.stderr, "time travel is off") {
		t.Skipf("the engine does not serve --as-of yet: %s", r.stderr)
	}
	if r.err != nil || r.stdout != fmt.Sprintf("as_of_seq=%d position=%d head=%s node n1 out=0 in=0\n  component v=1\n  category pkg\n", reps[1].Seq, reps[1].Position, reps[1].HeadCID) {
		t.Errorf("query --as-of seq: %v: %q %q", r.err, r.stdout, r.stderr)
	}
	ctx := context.Background()
	rec, err := eng.Store().Get(ctx, reps[4].Seq)
	if err != nil {
		t.Fatal(err)
	}
	at := rec.Time.UTC().Format(time.RFC3339Nano)
	r = run2(t, server, "query", "node", "tt", "n1", "--as-of", at)
	if r.err != nil || !strings.HasPrefix(r.stdout, fmt.Sprintf("as_of_seq=%d position=%d head=%s node n1 out=1 in=0\n", reps[4].Seq, reps[4].Position, reps[4].HeadCID)) ||
		!strings.Contains(r.stdout, "component v=2") {
		t.Errorf("query --as-of time: %v: %q %q", r.err, r.stdout, r.stderr)
	}
	// The first of the last transaction's two events removes e1: as of
	// it, n1 is still there without its edge.
	log := mustRun(t, "log", "tt", "--json", "--server", server)
	lines := strings.Split(strings.TrimSpace(log), "\n")
	var tx txJSON
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &tx); err != nil || len(tx.Events) != 2 {
		t.Fatalf("log --json: %v: %q", err, lines[len(lines)-1])
	}
	mid := tx.Events[0]
	out := mustRun(t, "query", "node", "tt", "n1", "--as-of", mid.CID, "--json", "--server", server)
	var rep struct {
		HeadCID  string `json:"head_cid"`
		Position string `json:"position"`
		Node     struct {
			NodeID    string `json:"node_id"`
			OutDegree uint32 `json:"out_degree"`
		} `json:"node"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.HeadCID != mid.CID || rep.Position != fmt.Sprint(mid.N) ||
		rep.Node.NodeID != "n1" || rep.Node.OutDegree != 0 {
		t.Errorf("query --as-of CID --json: %v: %q", err, out)
	}
	r = run2(t, server, "query", "node", "tt", "n1", "--as-of", fmt.Sprint(last.Seq))
	if r.code() != exitFailure || !strings.Contains(r.stderr, "NOT_FOUND") {
		t.Errorf("query --as-of head: node n1 was removed: exit %d, %q %q", r.code(), r.stdout, r.stderr)
	}
}
