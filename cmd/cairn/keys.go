package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/persistence"
)

const keysUsage = `Usage:
  cairn keys new --out FILE [--json]
  cairn keys show FILE [--json]
  cairn keys fetch [client flags]

The engine signs every transaction, snapshot and archive with an ed25519
key, an nkey: a seed file ("SN...", mode 0600) whose public key ("N...") is
the key id stored with each signature. cairn serve uses --signing-key FILE,
by default DATA/signing.nk, created on first start.

  new     creates a seed file (never overwrites one) and prints its public key
  show    prints the public key of a seed file
  fetch   asks the engine (cairn.keys) for the keys it signs with and trusts;
          prints one per line, the form --trust and --trust-keys read (as
          the engine says, so check them against keys you got out of band
          before trusting what they verify). --json prints
          {"signing_key":..,"trusted":[..],"unsigned_through":..}

new and show print the public key, with --json {"key_id":..,"file":..}.
`

func runKeys(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) == 0 {
		return &usageError{topic: "keys", err: errors.New("keys: want new, show or fetch")}
	}
	switch args[0] {
	case "new", "show":
		fs := newFlagSet("keys " + args[0])
		out := fs.String("out", "", "seed `file` to create")
		jsonOut := fs.Bool("json", false, "print JSON")
		var names []string
		if args[0] == "show" {
			names = []string{"file"}
		}
		pos, err := parseArgs(fs, "keys", args[1:], names...)
		if err != nil {
			return err
		}
		file := *out
		var s *persistence.Signer
		if args[0] == "new" {
			if file == "" {
				return &usageError{topic: "keys", err: errors.New("keys new: --out FILE is required")}
			}
			s, err = createSigningKey(file)
		} else {
			file = pos[0]
			s, err = persistence.LoadSigner(file)
		}
		if err != nil {
			return fmt.Errorf("keys %s: %w", args[0], err)
		}
		if *jsonOut {
			return writeJSON(stdout, struct {
				KeyID string `json:"key_id"`
				File  string `json:"file"`
			}{s.KeyID(), file})
		}
		_, err = fmt.Fprintln(stdout, s.KeyID())
		return err
	case "fetch":
		var c clientFlags
		fs := newFlagSet("keys fetch")
		c.register(fs, "keys", 10*time.Second)
		if _, err := parseArgs(fs, "keys", args[1:]); err != nil {
			return err
		}
		keys, err := c.fetchKeys(ctx)
		if err != nil {
			return fmt.Errorf("keys fetch: %w", err)
		}
		if c.json {
			return writeJSON(stdout, keys)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "# public keys of the Cairn engine at %s, as it reports them\n", c.server)
		for _, id := range keys.Trusted {
			b.WriteString(id)
			if id == keys.SigningKey {
				b.WriteString(" # signing key")
			}
			b.WriteString("\n")
		}
		if keys.UnsignedThrough > 0 {
			fmt.Fprintf(&b, "# the engine accepts unsigned transactions up to seq %d\n", keys.UnsignedThrough)
		}
		_, err = io.WriteString(stdout, b.String())
		return err
	}
	return &usageError{topic: "keys", err: fmt.Errorf("keys: unknown subcommand %q: want new, show or fetch", args[0])}
}

// fetchKeys asks the engine for its public keys.
func (c *clientFlags) fetchKeys(ctx context.Context) (api.Keys, error) {
	var keys api.Keys
	msg, err := c.requestRaw(ctx, api.KeysSubject, "keys request", nil, "")
	if err != nil {
		return keys, err
	}
	if err := json.Unmarshal(msg.Data, &keys); err != nil {
		return keys, fmt.Errorf("the engine's answer on %s is not its keys: %w", api.KeysSubject, err)
	}
	return keys, nil
}

// createSigningKey writes a fresh seed to path (mode 0600; an existing file
// is an error) and returns its signer.
func createSigningKey(path string) (*persistence.Signer, error) {
	seed, err := persistence.NewSigningKey()
	if err != nil {
		return nil, err
	}
	if err := writeSeed(path, seed); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%s exists: a signing key is never overwritten", path)
		}
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	return persistence.NewSigner(seed)
}

// signingKey loads the seed at path, creating it first when create is set
// and it does not exist. created says whether it did.
func signingKey(path string, create bool) (s *persistence.Signer, created bool, err error) {
	s, err = persistence.LoadSigner(path)
	if create && errors.Is(err, fs.ErrNotExist) {
		s, err = createSigningKey(path)
		return s, err == nil, err
	}
	return s, false, err
}

// serveSigning sets cfg's signer and keyring from serve's flags: the seed
// at keyFile (default DataDir/signing.nk, created on first start), the
// keys in trustFile, and unsigned history up to unsignedThrough.
func serveSigning(cfg *cairn.Config, logger *slog.Logger, off bool, keyFile, trustFile string, unsignedThrough uint64,
	usage func(string, ...any) error) error {
	if off {
		if keyFile != "" || trustFile != "" || unsignedThrough != 0 {
			return usage("--no-signing goes with none of --signing-key, --trust-keys and --trust-unsigned-through")
		}
		logger.Warn("signing is off: transactions, snapshots and archives are neither signed nor checked")
		return nil
	}
	trust, err := persistence.NewKeyring()
	if err != nil {
		return err
	}
	if trustFile != "" {
		if trust, err = persistence.LoadKeyring(trustFile); err != nil {
			return fmt.Errorf("serve: --trust-keys: %w", err)
		}
	}
	create := false
	if keyFile == "" && cfg.DataDir != "" && unsignedThrough == 0 {
		// The default key in the data dir: the history written before it
		// existed (an engine from before signing) stays readable. The
		// first start adopts the stream's unsigned transactions and
		// remembers up to where (rememberUnsigned).
		switch n, err := readUnsignedThrough(cfg.DataDir); {
		case err == nil:
			unsignedThrough = n
		case errors.Is(err, fs.ErrNotExist):
			cfg.AdoptUnsignedHistory = true
		default:
			return fmt.Errorf("serve: %w", err)
		}
	}
	trust.AllowUnsignedThrough(unsignedThrough)
	cfg.Trust = trust
	if keyFile == "" {
		if cfg.DataDir == "" {
			logger.Warn("no --signing-key with --nats: transactions are not signed; signatures are checked against --trust-keys only",
				"trusted", len(trust.IDs()))
			return nil
		}
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return fmt.Errorf("serve: data dir: %w", err)
		}
		keyFile, create = filepath.Join(cfg.DataDir, "signing.nk"), true
	}
	s, created, err := signingKey(keyFile, create)
	if err != nil {
		return fmt.Errorf("serve: --signing-key: %w", err)
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("the signing key file can be read by others than its owner", "file", keyFile, "mode", fi.Mode().Perm().String())
	}
	cfg.Signer = s
	logger.Info("signing", "key_id", s.KeyID(), "file", keyFile, "created", created, "also_trusted", len(trust.IDs()),
		"unsigned_through", unsignedThrough)
	return nil
}

// unsignedThroughFile, in the data dir, holds the stream sequence up to
// which serve with its default key accepts unsigned transactions.
const unsignedThroughFile = "signing.unsigned-through"

func readUnsignedThrough(dataDir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, unsignedThroughFile))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: not a stream sequence: %w", filepath.Join(dataDir, unsignedThroughFile), err)
	}
	return n, nil
}

// rememberUnsigned writes the bound an engine opened with
// AdoptUnsignedHistory adopted, for the next starts.
func rememberUnsigned(cfg cairn.Config, eng *cairn.Engine) error {
	if !cfg.AdoptUnsignedHistory {
		return nil
	}
	path := filepath.Join(cfg.DataDir, unsignedThroughFile)
	data := []byte(strconv.FormatUint(eng.Trust().UnsignedThrough(), 10) + "\n")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("serve: remember the unsigned history: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("serve: remember the unsigned history: %w", err)
	}
	return nil
}
