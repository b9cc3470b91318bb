package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/persistence"
)

const backupUsage = `Usage:
  cairn backup --out DIR [--nats URL] [client flags]

backup copies every JetStream stream the engine keeps, online, while the
engine runs: the object-store bucket's stream OBJ_object-store (snapshots
and archives) first, then its snapshot index KV_object-store-index, and
the event stream event-store last. Snapshots and archives name stream
positions: a stream newer than its snapshots is fine (an activation
replays the tail), the reverse is not, hence the order. Each stream is a
JetStream stream snapshot ($JS.API.STREAM.SNAPSHOT, an s2-compressed tar,
consumers left out), written to DIR/<stream>.tar.s2, and DIR/backup.json
names the streams, their configs, their state when their snapshot began
(messages, bytes, first and last seq), the time, the cairn version and
each file's SHA-256. Messages stored while a stream is copied may or may
not be in it. A backup that finds that the event stream lost messages
while it ran (cairn archive or repair purging what it had already moved
or erased) fails: run it again.

DIR must be empty or not exist. The files are written into
DIR/.partial-*, moved into DIR and backup.json is written last, so that
an interrupted backup leaves no backup.json: cairn restore refuses such
a directory. Cluster membership buckets (cairn-members-*) are not backed
up: a restored engine joins its cluster afresh.

The signing key (DATA/signing.nk) is not in JetStream and not in the
backup: keep it apart, somewhere safe, and put it back into the data
directory of a restored engine (see cairn help restore). backup.json
records the engine's public keys and the stream sequence up to which it
accepts unsigned transactions (history from before signing was turned
on), asked of the engine (cairn keys fetch) as the backup begins; restore
--data writes that bound back as DATA/signing.unsigned-through.

Progress (bytes per stream) goes to stderr; stdout gets one line,
  ok backup=DIR streams=3 bytes=N event_store_last_seq=N
or, with --json, backup.json less the stream configs.

Flags:
  --out DIR             the backup directory (required)
  --nats URL            the engine's NATS, the same as --server
  --timeout D           give up after D (default 1h)

On an engine with users (serve --auth) a backup takes the admin role.
`

// backupManifest is DIR/backup.json.
type backupManifest struct {
	// Format is backupFormat.
	Format  int            `json:"format"`
	Created time.Time      `json:"created"`
	Version string         `json:"cairn_version"`
	Streams []backupStream `json:"streams"`
	// Keys is what the engine said of its keys when the backup began
	// (cairn keys fetch): the key its history is signed with, the keys it
	// trusts and the stream sequence up to which it accepts unsigned
	// transactions, which restore --data puts back into
	// DATA/signing.unsigned-through. Nil when no engine answered.
	Keys *api.Keys `json:"keys,omitempty"`
	// Dir is set in the --json summary only.
	Dir string `json:"dir,omitempty"`
}

// backupFormat is the version of backup.json's layout.
const backupFormat = 1

// backupStream is one stream of a backup.
type backupStream struct {
	Name string `json:"name"`
	// File is the snapshot's file name in the backup directory.
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// State is the stream's when its snapshot began.
	State persistence.StreamState `json:"state"`
	// Config and ServerState are the server's, as it gave them (restore
	// sends them back); left out of the --json summary.
	Config      json.RawMessage `json:"config,omitempty"`
	ServerState json.RawMessage `json:"server_state,omitempty"`
}

// backupFile is the manifest's name in a backup directory.
const backupFile = "backup.json"

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup")
	var c clientFlags
	c.register(fs, "backup", time.Hour)
	fs.StringVar(&c.server, "nats", defaultServer, "NATS `URL` of the engine (the same as --server)")
	out := fs.String("out", "", "backup `directory`")
	if _, err := parseArgs(fs, "backup", args); err != nil {
		return err
	}
	if *out == "" {
		return &usageError{topic: "backup", err: errors.New("backup: --out DIR is required")}
	}
	if err := emptyDir(*out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	nc, err := c.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	gctx, refused := c.guard(ctx)
	// The engine's keys first: the bound of its unsigned history lives in
	// its data directory, not in JetStream.
	var keys *api.Keys
	if k, err := c.fetchKeys(gctx); err == nil {
		keys = &k
	} else {
		fmt.Fprintf(stderr, "backup: the engine did not say its keys (%v): the backup holds no signing.unsigned-through bound; copy DATA/signing.unsigned-through apart if the engine has one\n", err)
	}
	m, err := backup(gctx, nc, *out, keys, stderr)
	if denied := refused(); denied != nil {
		return fmt.Errorf("backup: refused, this login may not (a backup takes the admin role): %w", denied)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", c.timedOut(err))
	}
	if c.json {
		m.Dir = *out
		for i := range m.Streams {
			m.Streams[i].Config, m.Streams[i].ServerState = nil, nil
		}
		return writeJSON(stdout, m)
	}
	var total int64
	var last uint64
	for _, s := range m.Streams {
		total += s.Size
		if s.Name == persistence.DefaultStoreConfig().Stream {
			last = s.State.LastSeq
		}
	}
	_, err = fmt.Fprintf(stdout, "ok backup=%s streams=%d bytes=%d event_store_last_seq=%d\n", *out, len(m.Streams), total, last)
	return err
}

// emptyDir makes dir or checks that it is an empty directory.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return fmt.Errorf("--out %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("--out %s is not empty (it holds %s): a backup goes into an empty or new directory", dir, entries[0].Name())
	}
	return nil
}

// backup writes every stream of persistence.BackupStreams into dir (see
// backupUsage) and returns the manifest it wrote.
func backup(ctx context.Context, nc *nats.Conn, dir string, keys *api.Keys, stderr io.Writer) (*backupManifest, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	store, snaps := persistence.DefaultStoreConfig(), persistence.DefaultSnapshotConfig()
	// The event stream's state before anything is copied: an archive that
	// purges it while the objects are copied would leave the backup
	// without the transactions it moved.
	events, err := js.Stream(ctx, store.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("no Cairn event store on %s (stream %s not found)", nc.ConnectedUrlRedacted(), store.Stream)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", store.Stream, err)
	}
	before := events.CachedInfo().State

	partial, err := os.MkdirTemp(dir, ".partial-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(partial) // empty once the backup is done
	m := &backupManifest{Format: backupFormat, Created: time.Now().UTC(), Version: cairn.Version(), Keys: keys}
	for _, name := range persistence.BackupStreams(store, snaps) {
		s, err := backupStreamTo(ctx, nc, partial, name, stderr)
		if errors.Is(err, persistence.ErrNotFound) && name != store.Stream {
			// An engine that never opened the bucket (--no-snapshots)
			// has none; a restored one makes it on its first start.
			fmt.Fprintf(stderr, "backup %s: not there, skipped\n", name)
			continue
		}
		if err != nil {
			return nil, err
		}
		m.Streams = append(m.Streams, s)
	}
	// Every message stored meanwhile has a new seq: any fewer messages
	// than that were removed, before or while the event stream was copied.
	info, err := events.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", store.Stream, err)
	}
	after := info.State
	if after.Msgs+before.LastSeq < before.Msgs+after.LastSeq {
		return nil, fmt.Errorf("stream %s lost %d messages while the backup ran (cairn archive or repair?): run the backup again",
			store.Stream, before.Msgs+after.LastSeq-before.LastSeq-after.Msgs)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeSynced(filepath.Join(partial, backupFile), data); err != nil {
		return nil, err
	}
	// The snapshots first, backup.json last: a directory without it is no
	// backup.
	for _, s := range m.Streams {
		if err := os.Rename(filepath.Join(partial, s.File), filepath.Join(dir, s.File)); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(filepath.Join(partial, backupFile), filepath.Join(dir, backupFile)); err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return m, nil
}

// backupStreamTo writes the snapshot of stream name into dir.
func backupStreamTo(ctx context.Context, nc *nats.Conn, dir, name string, stderr io.Writer) (backupStream, error) {
	s := backupStream{Name: name, File: name + ".tar.s2"}
	f, err := os.OpenFile(filepath.Join(dir, s.File), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return s, err
	}
	defer f.Close()
	h := sha256.New()
	start := time.Now()
	next := int64(progressStep)
	snap, err := persistence.SnapshotStream(ctx, nc, name, io.MultiWriter(f, h), func(n int64) {
		if n >= next {
			fmt.Fprintf(stderr, "backup %s: %s\n", name, byteSize(n))
			next = n + progressStep
		}
	})
	if err != nil {
		return s, err
	}
	if err := f.Sync(); err != nil {
		return s, err
	}
	if err := f.Close(); err != nil {
		return s, err
	}
	fi, err := os.Stat(f.Name())
	if err != nil {
		return s, err
	}
	s.Size, s.SHA256 = fi.Size(), hexSum(h)
	s.State, s.Config, s.ServerState = snap.StreamState, snap.Config, snap.State
	fmt.Fprintf(stderr, "backup %s: %d messages, seq %d-%d, %s in %s\n", name, s.State.Messages,
		s.State.FirstSeq, s.State.LastSeq, byteSize(s.Size), time.Since(start).Round(time.Millisecond))
	return s, nil
}

// progressStep is how many bytes of a stream pass between two progress
// lines.
const progressStep = 64 << 20

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// byteSize prints n bytes for a person.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// writeSynced writes data to a new file and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir syncs a directory, so that the renames into it last.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
