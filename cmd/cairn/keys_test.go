package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/api"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// serveURL starts serve in-process on dir with extra flags and returns its
// NATS URL.
func serveURL(t *testing.T, dir string, extra ...string) (string, func() error) {
	t.Helper()
	line, stop := serveInProcess(t, append([]string{"--data", dir, "--nats-listen", "127.0.0.1:0", "--json", "--log-level", "warn"}, extra...)...)
	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return ready.NATS, stop
}

// TestKeysCommands: keys new refuses to overwrite and writes mode 0600;
// show prints the same public key.
func TestKeysCommands(t *testing.T) {
	file := filepath.Join(t.TempDir(), "k.nk")
	var made struct {
		KeyID string `json:"key_id"`
		File  string `json:"file"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "new", "--out", file, "--json")), &made); err != nil || made.File != file || !strings.HasPrefix(made.KeyID, "N") {
		t.Fatalf("keys new --json: %+v, %v", made, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v, %v; want mode 0600", fi, err)
	}
	if got := strings.TrimSpace(mustRun(t, "keys", "show", file)); got != made.KeyID {
		t.Errorf("keys show: %q, want %q", got, made.KeyID)
	}
	if r := runCLI(t, "keys", "new", "--out", file); r.code() != exitFailure || !strings.Contains(r.err.Error(), "never overwritten") {
		t.Errorf("keys new over an existing file: exit %d, %v", r.code(), r.err)
	}
	if r := runCLI(t, "keys", "new"); r.code() != exitUsage {
		t.Errorf("keys new without --out: exit %d, %v", r.code(), r.err)
	}
}

// TestSignedServe is the signed history end to end through cairn serve:
// the key created on first start, published on cairn.keys, verify --trust
// passing on the engine's history and refusing a forged transaction (the
// "Forge" attack) naming its seq, a forged snapshot reported, and a key
// rotation with the old key kept trusted.
func TestSignedServe(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	url, stop := serveURL(t, dir)
	keyFile := filepath.Join(dir, "signing.nk")
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key on first start: %v, %v; want %s with mode 0600", fi, err, keyFile)
	}
	oldKey := strings.TrimSpace(mustRun(t, "keys", "show", keyFile))
	var keys api.Keys
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "fetch", "--server", url, "--json")), &keys); err != nil ||
		keys.SigningKey != oldKey || len(keys.Trusted) != 1 || keys.Trusted[0] != oldKey {
		t.Fatalf("keys fetch --json: %+v, %v; want signing and trusting %s", keys, err, oldKey)
	}
	trustOld := filepath.Join(t.TempDir(), "trusted")
	if err := os.WriteFile(trustOld, []byte(mustRun(t, "keys", "fetch", "--server", url)), 0o644); err != nil {
		t.Fatal(err)
	}
	reps := scriptGraph(t, url, "s")

	r := run2(t, url, "verify", "s", "--trust", trustOld)
	want := fmt.Sprintf("signatures: 9 of 9 transactions signed by %s, checked against 1 trusted keys\n", oldKey)
	if r.code() != exitOK || !strings.Contains(r.stdout, want) {
		t.Fatalf("verify --trust: exit %d, stdout %q, stderr %q; want %q", r.code(), r.stdout, r.stderr, want)
	}
	r = run2(t, url, "verify", "s")
	if r.code() != exitOK || !strings.Contains(r.stdout, "not checked against trusted keys") {
		t.Errorf("verify without --trust: exit %d, stdout %q", r.code(), r.stdout)
	}

	// Forged snapshot: signed by the engine's key, then its payload
	// replaced by an older state's with the metadata kept (the "Forged
	// snapshot" attack).
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := persistence.LoadSigner(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	scfg := persistence.DefaultSnapshotConfig()
	scfg.Signer = signer
	snaps, err := persistence.LookupSnapshots(ctx, js, scfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := persistence.LookupStore(ctx, js, persistence.DefaultStoreConfig())
	if err != nil {
		t.Fatal(err)
	}
	snapAt := func(seq uint64) (persistence.SnapshotInfo, []byte) {
		st, head, last, err := actors.StateAt(ctx, store, nil, "s", seq)
		if err != nil {
			t.Fatal(err)
		}
		data, err := aggregate.Marshal(st, nil)
		if err != nil {
			t.Fatal(err)
		}
		return persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: "s", Seq: last, Position: head.N, Head: head.CID, Format: actors.AggregateSnapshotFormat}, data
	}
	info, data := snapAt(reps[7].Seq)
	if info, err = snaps.Put(ctx, info, data); err != nil {
		t.Fatal(err)
	}
	_, older := snapAt(reps[2].Seq)
	if _, err := snaps.Put(ctx, persistence.SnapshotInfo{Kind: "scratch", Graph: "s", Seq: 1}, older); err != nil {
		t.Fatal(err)
	}
	forged, err := snaps.Objects().GetBytes(ctx, persistence.SnapshotName("scratch", "s", 1))
	if err != nil {
		t.Fatal(err)
	}
	oi, err := snaps.Objects().GetInfo(ctx, info.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.Objects().PutBytes(ctx, info.Name, forged); err != nil {
		t.Fatal(err)
	}
	// Kept but for the size, so that only the digest tells.
	oi.Metadata["size"] = fmt.Sprint(len(older))
	if err := snaps.Objects().UpdateMeta(ctx, info.Name, jetstream.ObjectMeta{Name: info.Name, Metadata: oi.Metadata}); err != nil {
		t.Fatal(err)
	}
	for _, trust := range [][]string{nil, {"--trust", trustOld}} {
		r = run2(t, url, append([]string{"verify", "s"}, trust...)...)
		bad := fmt.Sprintf("snapshot aggregate seq %d position %d: read snapshot %s: get snapshot %s: malformed data: the payload's SHA-256", info.Seq, info.Position, info.Name, info.Name)
		if r.code() != exitFailure || !strings.Contains(r.stdout, bad) {
			t.Errorf("verify %v with a forged snapshot: exit %d, stdout %q; want %q", trust, r.code(), r.stdout, bad)
		}
	}
	for _, name := range []string{info.Name, persistence.SnapshotName("scratch", "s", 1)} {
		if err := snaps.Delete(ctx, persistence.SnapshotInfo{Name: name}); err != nil {
			t.Fatal(err)
		}
	}

	// Forged transaction: a valid chain link, unsigned, on the stream.
	write(t, url, "graph", "create", "f")
	write(t, url, "node", "add", "f", "a")
	res, err := store.Verify(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().UnixNano()
	recs, _, err := persistence.Seal("f", "forged", ts, res.Head, []*cairnv1.Event{{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: "evil"}}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := proto.Marshal(&cairnv1.Transaction{GraphId: "f", TxId: "forged", TimestampUnixNano: ts, Events: recs,
		Commands: []*cairnv1.CommandRecord{{CommandId: "evil", Issuer: "attacker", EventCount: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, store.Subject("f"), raw)
	if err != nil {
		t.Fatal(err)
	}
	r = run2(t, url, "verify", "f", "--trust", trustOld)
	if wantErr := fmt.Sprintf("graph f: chain broken at seq %d (event 3): signature missing", ack.Sequence); r.code() != exitFailure || !strings.Contains(r.stderr, wantErr) {
		t.Errorf("verify --trust of a forged transaction: exit %d, stderr %q; want %q", r.code(), r.stderr, wantErr)
	}
	r = run2(t, url, "verify", "f", "--json")
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code() != exitOK || v.Signed != 2 || v.Transactions != 3 || v.SignaturesChecked {
		t.Errorf("verify --json without --trust: %+v, %v, exit %d; want 2 of 3 signed, not checked", v, err, r.code())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Rotation: a new key, the old one kept trusted.
	newFile := filepath.Join(t.TempDir(), "new.nk")
	newKey := strings.TrimSpace(mustRun(t, "keys", "new", "--out", newFile))
	url, stop = serveURL(t, dir, "--signing-key", newFile, "--trust-keys", trustOld)
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "fetch", "--server", url, "--json")), &keys); err != nil ||
		keys.SigningKey != newKey || len(keys.Trusted) != 2 {
		t.Fatalf("keys after the rotation: %+v, %v; want signing %s, trusting both", keys, err, newKey)
	}
	after := write(t, url, "node", "add", "s", "rotated")
	trustBoth := filepath.Join(t.TempDir(), "both")
	if err := os.WriteFile(trustBoth, []byte(mustRun(t, "keys", "fetch", "--server", url)), 0o644); err != nil {
		t.Fatal(err)
	}
	trustNew := filepath.Join(t.TempDir(), "new")
	if err := os.WriteFile(trustNew, []byte("# only the new key\n"+newKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Archive with the new key, over transactions checked against both
	// (without --signing-key the engine archives: TestServeAuth).
	r = run2(t, url, "archive", "s", "--before", fmt.Sprint(reps[5].Seq), "--signing-key", newFile, "--trust", trustOld)
	if r.code() != exitOK || !strings.Contains(r.stdout, "graph s: archived 5 transactions") {
		t.Fatalf("archive --signing-key: exit %d, stdout %q, stderr %q", r.code(), r.stdout, r.stderr)
	}
	r = run2(t, url, "verify", "s", "--trust", trustBoth, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code() != exitOK ||
		v.Signed != 10 || strings.Join(v.KeyIDs, " ") != strings.Join(mustKeyIDs(t, oldKey, newKey), " ") || v.LastSeq != after.Seq {
		t.Errorf("verify across the archive after the rotation with both keys: exit %d, %+v, %v", r.code(), v, err)
	}
	// The archive object is signed by the new key: trusting only the old
	// one refuses it.
	r = run2(t, url, "verify", "s", "--trust", trustOld)
	if r.code() != exitFailure || !strings.Contains(r.stderr, "signature by a key that is not trusted: "+newKey) {
		t.Errorf("verify with the old key only: exit %d, stderr %q", r.code(), r.stderr)
	}
	r = run2(t, url, "verify", "s", "--trust", trustNew)
	if wantErr := fmt.Sprintf("graph s: chain broken at seq %d (event 1): signature by a key that is not trusted: %s", reps[0].Seq, oldKey); r.code() != exitFailure || !strings.Contains(r.stderr, wantErr) {
		t.Errorf("verify with the new key only: exit %d, stderr %q; want %q", r.code(), r.stderr, wantErr)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// mustKeyIDs returns ids sorted as a keyring lists them.
func mustKeyIDs(t *testing.T, ids ...string) []string {
	t.Helper()
	k, err := persistence.NewKeyring(ids...)
	if err != nil {
		t.Fatal(err)
	}
	return k.IDs()
}

// An engine from before signing (here: --no-signing) leaves unsigned
// history; the first start with the default key adopts it, remembers up to
// where, and signs from then on: nothing is quarantined, and a later start
// still reads the old history.
func TestServeAdoptsUnsignedHistory(t *testing.T) {
	dir := t.TempDir()
	url, stop := serveURL(t, dir, "--no-signing")
	mustRun(t, "graph", "create", "old", "--server", url)
	mustRun(t, "node", "add", "old", "a", "--server", url)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, unsignedThroughFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for start := range 2 {
		url, stop = serveURL(t, dir)
		if n, err := readUnsignedThrough(dir); err != nil || n != 2 {
			t.Fatalf("start %d: %s holds %d, %v; want 2 (the unsigned history)", start, unsignedThroughFile, n, err)
		}
		var rep struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, "node", "add", "old", fmt.Sprintf("n%d", start), "--server", url, "--json")), &rep); err != nil {
			t.Fatal(err)
		}
		out := mustRun(t, "query", "stats", "old", "--server", url, "--json", "--min-seq", fmt.Sprint(rep.Seq))
		if !strings.Contains(out, fmt.Sprintf(`"nodes":"%d"`, start+2)) {
			t.Errorf("start %d: stats %s", start, out)
		}
		mustRun(t, "health", "--server", url)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}
