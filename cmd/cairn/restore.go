package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/persistence"
)

const restoreUsage = `Usage:
  cairn restore --from DIR --data DATA [--json]
  cairn restore --from DIR --nats URL [--creds F] [--user U --password P | --nkey F]
                [--tls-cert F --tls-key F] [--tls-ca F] [--timeout D] [--json]

restore puts the streams of a backup (cairn backup) back. With --data it
starts an embedded NATS server on the data directory DATA (made if
missing), restores into it and stops it, so that
  cairn serve --data DATA
then starts on the restored data; no engine runs meanwhile, and no other
process may use DATA. With --nats it restores into a running NATS with
JetStream (an external one; for serve --nats).

Before anything is restored it checks every file's SHA-256 against
backup.json and that none of the backup's streams exists at the target;
it refuses, naming the file or the stream, when one fails. After each
stream it checks that the restored stream holds what backup.json says:
the same last seq and message count, or a later last seq (messages stored
while the backup copied that stream); fewer is an error.

The backup holds no signing key. Before the first cairn serve --data
DATA, copy the old data directory's signing.nk (the key the history is
signed with, which restore names; without it serve makes a new key, and
the restored history is then signed by a key it does not trust) into
DATA, or give serve --signing-key and --trust-keys. With --data, restore
writes DATA/signing.unsigned-through from backup.json when the engine
accepted unsigned history (from before signing was turned on) up to a
sequence, unless DATA already has that file. Then check it: cairn verify
<graph> --trust KEYS.

Progress (bytes per stream) goes to stderr; stdout gets one line,
  ok restored=3 streams from DIR into TARGET
or, with --json, the streams with the state backup.json names and the
restored one.

Flags:
  --from DIR            the backup directory (required)
  --data DATA           restore into an embedded server on this data
                        directory
  --nats URL            restore into this NATS (not with --data)
  --creds, --user, --password, --nkey, --tls-cert, --tls-key, --tls-ca
                        credentials and TLS files to log in to --nats
  --timeout D           give up after D (default 1h)
  --json                print JSON
`

// restoredStream is one stream of restore's --json summary.
type restoredStream struct {
	Name     string                  `json:"name"`
	Backup   persistence.StreamState `json:"backup"`
	Restored persistence.StreamState `json:"restored"`
	Bytes    int64                   `json:"bytes"`
}

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) (retErr error) {
	fs := newFlagSet("restore")
	var c clientFlags
	c.register(fs, "restore", time.Hour)
	from := fs.String("from", "", "backup `directory`")
	data := fs.String("data", "", "data `directory` of an embedded server to restore into")
	natsURL := fs.String("nats", "", "NATS `URL` to restore into")
	if _, err := parseArgs(fs, "restore", args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	usage := func(format string, a ...any) error {
		return &usageError{topic: "restore", err: fmt.Errorf("restore: "+format, a...)}
	}
	switch {
	case *from == "":
		return usage("--from DIR is required")
	case (*data == "") == (*natsURL == ""):
		return usage("give one of --data DATA (an embedded server) and --nats URL")
	case given["server"]:
		return usage("--server: say --nats URL")
	case *data != "" && c.auth.set():
		return usage("--data restores into an embedded server of its own: no credentials or TLS")
	case c.timeout <= 0:
		return usage("--timeout must be positive, not %s", c.timeout)
	}
	m, err := readBackup(*from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var nc *nats.Conn
	target := *natsURL
	if *data != "" {
		dir, err := filepath.Abs(*data)
		if err != nil {
			return fmt.Errorf("restore: --data %s: %w", *data, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("restore: --data: %w", err)
		}
		srv, err := persistence.StartServer(persistence.ServerConfig{DataDir: dir, Listen: persistence.ListenNone})
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && retErr == nil {
				retErr = fmt.Errorf("restore: stop the embedded server: %w", err)
			}
		}()
		if nc, err = srv.Connect(nats.Name("cairn-restore")); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		target = "data " + dir
	} else {
		c.server = *natsURL
		if nc, err = c.connect(); err != nil {
			return err
		}
	}
	defer nc.Close()
	gctx, refused := c.guard(ctx) // nothing is refused to the embedded server's own connection
	out, err := restore(gctx, nc, *from, target, m, stderr)
	if denied := refused(); denied != nil {
		return fmt.Errorf("restore: refused, this login may not create streams: %w", denied)
	}
	if err != nil {
		return fmt.Errorf("restore: %w", c.timedOut(err))
	}
	if *data != "" {
		if err := restoreKeys(*data, m.Keys, stderr); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if c.json {
		return writeJSON(stdout, struct {
			From    string           `json:"from"`
			Target  string           `json:"target"`
			Streams []restoredStream `json:"streams"`
		}{*from, target, out})
	}
	_, err = fmt.Fprintf(stdout, "ok restored=%d streams from %s into %s\n", len(out), *from, target)
	return err
}

// restoreKeys writes DATA/signing.unsigned-through from the backup's keys
// (when the engine accepted unsigned history and DATA has no such file)
// and says on stderr which key the history is signed with.
func restoreKeys(data string, keys *api.Keys, stderr io.Writer) error {
	if keys == nil {
		fmt.Fprintln(stderr, "restore: backup.json names no keys (no engine answered the backup): put DATA/signing.nk and, if the engine had one, signing.unsigned-through back by hand")
		return nil
	}
	if keys.SigningKey != "" {
		fmt.Fprintf(stderr, "restore: the history is signed with %s: put its seed at %s before cairn serve, or give serve --signing-key\n",
			keys.SigningKey, filepath.Join(data, "signing.nk"))
	}
	if keys.UnsignedThrough == 0 {
		return nil
	}
	path := filepath.Join(data, unsignedThroughFile)
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(stderr, "restore: %s exists: left as it is (the backup says %d)\n", path, keys.UnsignedThrough)
		return nil
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", keys.UnsignedThrough)), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(stderr, "restore: wrote %s: unsigned transactions accepted up to seq %d, as the engine did\n", path, keys.UnsignedThrough)
	return nil
}

// readBackup reads dir's backup.json and checks every file it names
// against its size and SHA-256.
func readBackup(dir string) (*backupManifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, backupFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: not a backup, or one that did not finish", dir, backupFile)
	}
	if err != nil {
		return nil, err
	}
	var m backupManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, backupFile), err)
	}
	if m.Format != backupFormat {
		return nil, fmt.Errorf("%s: format %d, this cairn reads format %d", filepath.Join(dir, backupFile), m.Format, backupFormat)
	}
	if len(m.Streams) == 0 {
		return nil, fmt.Errorf("%s names no streams", filepath.Join(dir, backupFile))
	}
	for _, s := range m.Streams {
		if s.Name == "" || s.File != filepath.Base(s.File) || strings.HasPrefix(s.File, ".") || len(s.Config) == 0 {
			return nil, fmt.Errorf("%s: stream %q: no name, config or plain file name (%q)", filepath.Join(dir, backupFile), s.Name, s.File)
		}
		if err := checkSum(filepath.Join(dir, s.File), s); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// checkSum checks the file of stream s against its size and SHA-256.
func checkSum(path string, s backupStream) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.Name, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.Name, err)
	}
	if got := hexSum(h); n != s.Size || got != s.SHA256 {
		return fmt.Errorf("stream %s: %s is corrupt: %d bytes with SHA-256 %s, backup.json says %d bytes with %s",
			s.Name, path, n, got, s.Size, s.SHA256)
	}
	return nil
}

// restore checks that none of m's streams exists on nc's server, then
// restores each from dir and checks its state against m.
func restore(ctx context.Context, nc *nats.Conn, dir, target string, m *backupManifest, stderr io.Writer) ([]restoredStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	for _, s := range m.Streams {
		_, err := js.Stream(ctx, s.Name)
		switch {
		case err == nil:
			return nil, fmt.Errorf("stream %s exists already in %s: restore never overwrites a stream (restore into a new data directory, or delete the stream first); nothing was restored", s.Name, target)
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return nil, fmt.Errorf("stream %s in %s: %w", s.Name, target, err)
		}
	}
	var out []restoredStream
	for _, s := range m.Streams {
		got, err := restoreStreamFrom(ctx, nc, dir, s, stderr)
		if err != nil {
			return nil, err
		}
		want := s.State
		switch {
		case got.LastSeq == want.LastSeq && got.Messages == want.Messages:
		case got.LastSeq > want.LastSeq:
			fmt.Fprintf(stderr, "restore %s: last seq %d, %d messages; backup.json says %d and %d (messages stored while the backup copied it)\n",
				s.Name, got.LastSeq, got.Messages, want.LastSeq, want.Messages)
		default:
			return nil, fmt.Errorf("stream %s restored with last seq %d and %d messages, backup.json says %d and %d",
				s.Name, got.LastSeq, got.Messages, want.LastSeq, want.Messages)
		}
		out = append(out, restoredStream{Name: s.Name, Backup: want, Restored: got, Bytes: s.Size})
	}
	return out, nil
}

// restoreStreamFrom restores stream s from its file in dir.
func restoreStreamFrom(ctx context.Context, nc *nats.Conn, dir string, s backupStream, stderr io.Writer) (persistence.StreamState, error) {
	f, err := os.Open(filepath.Join(dir, s.File))
	if err != nil {
		return persistence.StreamState{}, err
	}
	defer f.Close()
	start := time.Now()
	next := int64(progressStep)
	snap := &persistence.StreamSnapshot{Config: s.Config, State: s.ServerState}
	got, err := persistence.RestoreStream(ctx, nc, s.Name, snap, f, func(n int64) {
		if n >= next {
			fmt.Fprintf(stderr, "restore %s: %s of %s\n", s.Name, byteSize(n), byteSize(s.Size))
			next = n + progressStep
		}
	})
	if err != nil {
		return got, err
	}
	fmt.Fprintf(stderr, "restore %s: %d messages, seq %d-%d, %s in %s\n", s.Name, got.Messages, got.FirstSeq, got.LastSeq,
		byteSize(s.Size), time.Since(start).Round(time.Millisecond))
	return got, nil
}
