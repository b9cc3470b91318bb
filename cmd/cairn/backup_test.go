package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/persistence"
)

// TestBackupRestore takes an online backup of a serve with snapshots,
// restores it into a new data directory and serves it with the old
// signing key: verify --trust passes, the log is byte-identical, queries
// answer the same and a new command continues the chain. It also checks
// the refusals: a non-empty --out, a corrupt file, streams that exist, and
// a restore into an external NATS (--nats).
func TestBackupRestore(t *testing.T) {
	start := time.Now()
	phase := func(name string) { t.Logf("%s: %s", name, time.Since(start).Round(time.Millisecond)) }
	flags := []string{"--snapshot-every", "5", "--snapshot-keep", "2", "--readmodel-snapshot-every", "10", "--snapshot-spacing", "0", "--shards", "2"}
	oldData := t.TempDir()
	url, stop := serveURL(t, oldData, flags...)
	reps := scriptGraph(t, url, "g")
	for i := range 8 {
		reps = append(reps, write(t, url, "node", "add", "g", fmt.Sprintf("m%d", i), "--component", fmt.Sprintf("rank=%d", i%3)))
		if i > 0 {
			reps = append(reps, write(t, url, "edge", "add", "g", fmt.Sprintf("f%d", i), fmt.Sprintf("m%d", i-1), fmt.Sprintf("m%d", i), "--type", "next"))
		}
	}
	last := reps[len(reps)-1].Seq
	waitSnapshots(t, url, "g")
	// A round's read-model snapshots are stored before its manifest: wait
	// for the round to end, so that the backup holds a manifest to
	// restore from.
	pollUntil(t, "a projection snapshot round", func() string {
		if h := health(t, url); h.Snapshots.Rounds == 0 {
			return fmt.Sprintf("snapshots %+v, want a round done", h.Snapshots)
		}
		return ""
	})
	queries := [][]string{{"stats", "g"}, {"node", "g", "n2"}, {"neighbors", "g", "m3", "--direction", "both"}, {"khop", "g", "m0", "--depth", "3"}}
	wantAnswers := answers(t, url, last, queries)
	wantLog := mustRun(t, "log", "g", "--json", "--server", url)
	phase("written")

	// The backup, with the engine running.
	dir := filepath.Join(t.TempDir(), "backup")
	r := runCLI(t, "backup", "--nats", url, "--out", dir, "--json")
	if r.err != nil {
		t.Fatalf("backup: %v\nstderr: %s", r.err, r.stderr)
	}
	var m backupManifest
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("backup --json: %v: %q", err, r.stdout)
	}
	if m.Keys == nil || !strings.HasPrefix(m.Keys.SigningKey, "N") {
		t.Errorf("backup --json: keys %+v, want the engine's signing key", m.Keys)
	}
	var names []string
	for _, s := range m.Streams {
		names = append(names, s.Name)
		if !strings.Contains(r.stderr, "backup "+s.Name+": ") {
			t.Errorf("backup's progress names no %s: %q", s.Name, r.stderr)
		}
		if s.Config != nil || s.SHA256 == "" || s.Size == 0 {
			t.Errorf("backup --json stream %+v: want a sha256 and size, no config", s)
		}
	}
	if want := []string{"OBJ_object-store", "KV_object-store-index", "event-store"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("backup streams %v, want %v (object store first, event stream last)", names, want)
	}
	if got := m.Streams[2].State.LastSeq; got != last {
		t.Errorf("backup of event-store: last seq %d, want %d", got, last)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("backup dir holds %d entries, want 3 snapshots and backup.json (no .partial-*): %v", len(entries), entries)
	}
	t.Logf("backup stderr:\n%s", r.stderr)
	phase("backed up")

	// Refusals: a non-empty --out, a file that is not what backup.json
	// says (nothing restored), no backup.json.
	if r := runCLI(t, "backup", "--nats", url, "--out", dir); r.code() != exitFailure || !strings.Contains(r.stderr, "not empty") {
		t.Errorf("backup into a non-empty dir: exit %d, stderr %q", r.code(), r.stderr)
	}
	corrupt := filepath.Join(t.TempDir(), "corrupt")
	copyDir(t, dir, corrupt)
	file := filepath.Join(corrupt, "event-store.tar.s2")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	notRestored := filepath.Join(t.TempDir(), "nothing")
	if r := runCLI(t, "restore", "--from", corrupt, "--data", notRestored); r.code() != exitFailure ||
		!strings.Contains(r.stderr, "stream event-store: ") || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("restore of a corrupt backup: exit %d, stderr %q", r.code(), r.stderr)
	}
	if _, err := os.Stat(notRestored); !os.IsNotExist(err) {
		t.Errorf("a refused restore made %s: %v", notRestored, err)
	}
	if err := os.Remove(filepath.Join(corrupt, backupFile)); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "restore", "--from", corrupt, "--data", notRestored); r.code() != exitFailure || !strings.Contains(r.stderr, "has no backup.json") {
		t.Errorf("restore of a dir without backup.json: exit %d, stderr %q", r.code(), r.stderr)
	}
	if r := runCLI(t, "restore", "--from", dir); r.code() != exitUsage {
		t.Errorf("restore without --data or --nats: exit %d, stderr %q", r.code(), r.stderr)
	}
	// Interrupted after the object store: no backup.json, no .partial-*.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cut := t.TempDir()
	if _, err := backup(ctx, nc, cut, nil, onWrite(func(line string) {
		if strings.HasPrefix(line, "backup OBJ_object-store: ") {
			cancel()
		}
	})); !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted backup: %v", err)
	}
	if entries, err := os.ReadDir(cut); err != nil || len(entries) != 0 {
		t.Errorf("an interrupted backup left %v (%v)", entries, err)
	}
	// An archive between the object store's copy and the event stream's
	// would leave the backup without what it moved: refused.
	var archived string
	_, err = backup(t.Context(), nc, t.TempDir(), nil, onWrite(func(line string) {
		if strings.HasPrefix(line, "backup KV_object-store-index: ") {
			archived = mustRun(t, "archive", "g", "--before", fmt.Sprint(last), "--server", url)
		}
	}))
	if !strings.Contains(archived, "archived") || err == nil || !regexp.MustCompile(`stream event-store lost [1-9][0-9]* messages while the backup ran`).MatchString(err.Error()) {
		t.Errorf("backup with an archive meanwhile: %v; archive: %q", err, archived)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	// Restore into a new data directory, with the old signing key.
	newData := filepath.Join(t.TempDir(), "restored")
	r = runCLI(t, "restore", "--from", dir, "--data", newData, "--json")
	if r.err != nil {
		t.Fatalf("restore: %v\nstderr: %s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "the history is signed with "+m.Keys.SigningKey) {
		t.Errorf("restore does not name the signing key %s:\n%s", m.Keys.SigningKey, r.stderr)
	}
	var restored struct {
		Streams []restoredStream `json:"streams"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &restored); err != nil || len(restored.Streams) != 3 {
		t.Fatalf("restore --json: %v: %q", err, r.stdout)
	}
	for _, s := range restored.Streams {
		if s.Restored.LastSeq != s.Backup.LastSeq || s.Restored.Messages != s.Backup.Messages {
			t.Errorf("restored %s: %+v, backup %+v", s.Name, s.Restored, s.Backup)
		}
	}
	if r := runCLI(t, "restore", "--from", dir, "--data", newData); r.code() != exitFailure ||
		!strings.Contains(r.stderr, "stream OBJ_object-store exists already") {
		t.Errorf("restore over existing streams: exit %d, stderr %q", r.code(), r.stderr)
	}
	for _, f := range []string{"signing.nk", unsignedThroughFile} {
		b, err := os.ReadFile(filepath.Join(oldData, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(newData, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("restore stderr:\n%s", r.stderr)
	phase("restored")
	url2, _ := serveURL(t, newData, flags...)
	// The projections resume from the restored read-model snapshots.
	var h api.ProjectionHealth
	pollUntil(t, "projections caught up after the restore", func() string {
		if h = health(t, url2); h.AppliedSeq < last {
			return fmt.Sprintf("health %+v, want applied seq %d", h, last)
		}
		return ""
	})
	if s := h.Snapshots; s.RestoredSeq == 0 || s.Fallbacks != 0 || h.Failures != 0 || h.ChainFailures != 0 || len(h.Stopped) != 0 {
		t.Errorf("after restore: health %+v, want restored from a read-model snapshot, no fallback, failure or quarantine", h)
	}
	trust := filepath.Join(t.TempDir(), "trust")
	if err := os.WriteFile(trust, []byte(mustRun(t, "keys", "show", filepath.Join(oldData, "signing.nk"))), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "verify", "g", "--trust", trust, "--server", url2)
	if got := mustRun(t, "log", "g", "--json", "--server", url2); got != wantLog {
		t.Errorf("log after restore differs:\n%s\nwant:\n%s", got, wantLog)
	}
	if got := answers(t, url2, last, queries); !reflect.DeepEqual(got, wantAnswers) {
		t.Errorf("answers after restore:\n%v\nwant:\n%v", got, wantAnswers)
	}
	next := write(t, url2, "node", "add", "g", "after-restore")
	if next.Seq != last+1 {
		t.Errorf("the first command after restore: seq %d, want %d", next.Seq, last+1)
	}
	var v verifyJSON
	if err := json.Unmarshal([]byte(mustRun(t, "verify", "g", "--trust", trust, "--json", "--server", url2)), &v); err != nil ||
		!v.OK || v.LastSeq != next.Seq || v.Head != next.HeadCID {
		t.Errorf("verify after a new command: %+v, %v; want head %s at seq %d", v, err, next.HeadCID, next.Seq)
	}
	if r := runCLI(t, "restore", "--from", dir, "--nats", url2); r.code() != exitFailure ||
		!strings.Contains(r.stderr, "stream OBJ_object-store exists already") {
		t.Errorf("restore --nats into a running engine: exit %d, stderr %q", r.code(), r.stderr)
	}
	phase("served")

	// Into an external NATS.
	ext := natstest.Start(t)
	r = runCLI(t, "restore", "--from", dir, "--nats", ext.ClientURL())
	if r.err != nil {
		t.Fatalf("restore --nats: %v\nstderr: %s", r.err, r.stderr)
	}
	info, err := ext.JetStream().Stream(t.Context(), persistence.DefaultStoreConfig().Stream)
	if err != nil || info.CachedInfo().State.LastSeq != last {
		t.Errorf("restore --nats: event-store %v, want last seq %d", err, last)
	}
	phase("restored --nats")
}

// copyDir copies the files of src into a new directory dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// onWrite is an io.Writer that calls f with each write.
type onWrite func(string)

func (f onWrite) Write(p []byte) (int, error) {
	f(string(p))
	return len(p), nil
}

// restoreKeys puts the unsigned-history bound of the backup's engine back
// into the data directory, unless one is there already.
func TestRestoreKeys(t *testing.T) {
	data := t.TempDir()
	var stderr strings.Builder
	if err := restoreKeys(data, &api.Keys{SigningKey: "NKEY", UnsignedThrough: 7}, &stderr); err != nil {
		t.Fatal(err)
	}
	if n, err := readUnsignedThrough(data); err != nil || n != 7 {
		t.Errorf("unsigned-through after restore: %d, %v; want 7", n, err)
	}
	if err := restoreKeys(data, &api.Keys{UnsignedThrough: 9}, &stderr); err != nil {
		t.Fatal(err)
	}
	if n, _ := readUnsignedThrough(data); n != 7 {
		t.Errorf("an existing bound was overwritten: %d", n)
	}
	if !strings.Contains(stderr.String(), "signed with NKEY") || !strings.Contains(stderr.String(), "left as it is (the backup says 9)") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	empty := t.TempDir()
	if err := restoreKeys(empty, &api.Keys{SigningKey: "NKEY"}, &stderr); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(empty, unsignedThroughFile)); !os.IsNotExist(err) {
		t.Errorf("a bound of 0 was written: %v", err)
	}
}
