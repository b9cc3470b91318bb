package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	cairnauth "github.com/cairn-graph/cairn/auth"
)

const authUsage = `Usage:
  cairn auth add-user <file> <name> --role reader|writer|admin|member|adapter [--graph G]...
                      [--source SUBJECT]... [--stream NAME]... [--dead-letter SUBJECT]...
                      [--password-stdin] [--nkey-public KEY | --new-nkey SEEDFILE]
                      [--replace] [--json]
  cairn auth hash-password [--json]       (the password on stdin)
  cairn auth nkey --out SEEDFILE [--json]
  cairn auth list <file> [--json]

auth writes and reads the users file of 'cairn serve --auth FILE', so that
nobody computes a hash or a key by hand. Each user has a name (letters,
digits, '-' and '_'), a role, and a password, an nkey or both:
  reader   queries its graphs
  writer   commands and queries on its graphs
  admin    every graph, plus the read-only access to the event stream and
           the object store that log, verify, history and diff need
  member   another engine of the cluster, 'cairn serve --nats URL --cluster
           NAME --nkey SEEDFILE' (or --user/--password) logging in to this
           engine's NATS: every right, as the engine's own identity; give
           it to cairn serve processes only
  adapter  'cairn adapter run': a writer on its --graph graphs (at least
           one) that consumes its --source subjects (at least one; its
           --from) through its --stream streams (default ADAPTER_PEOPLE,
           ADAPTER_ORGANISATIONS, ADAPTER_LOCATIONS; the engine creates
           them at its request, capturing its sources only), with the durable
           consumers adapter_<kind>_<graph>, and publishes dead letters to
           its --dead-letter subjects (default SOURCE.dead); no other
           JetStream right (see docs/adapters.md, "On a secured engine")
--graph (repeatable) limits a reader or writer to those graphs; without it
the user is on every graph. Nobody but the engine itself may write or purge
the event stream or the object store, so 'cairn archive' cannot be run by
any user of an engine with --auth (see docs/security.md).

The file is JSON and keeps only a bcrypt hash of a password and the public
half of an nkey; it is written readable by its owner only. The engine reads
it at start: restart it after a change.

  add-user       adds the user to the file (created if missing), or with
                 --replace replaces the user of that name. --password-stdin
                 reads the password (at least 8 bytes) from the first line
                 of stdin; --new-nkey writes a fresh nkey seed to SEEDFILE
                 (it must not exist) for the user to log in with (--nkey
                 SEEDFILE on client commands); --nkey-public takes the public
                 key of an nkey made elsewhere.
  hash-password  prints the bcrypt hash of the first line of stdin.
  nkey           writes a fresh user nkey seed to SEEDFILE (mode 0600; it
                 must not exist) and prints its public key.
  list           checks the file and prints one line per user.

Clients log in with --user U --password P or --nkey SEEDFILE (and take
replies under their own inbox prefix, _INBOX.<user or public key>; the nats
CLI needs --inbox-prefix for that).
`

func runAuth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{topic: "auth", err: errors.New("auth: want add-user, hash-password, nkey or list")}
	}
	switch args[0] {
	case "add-user":
		return runAuthAddUser(args[1:], os.Stdin, stdout)
	case "hash-password":
		return runAuthHash(args[1:], os.Stdin, stdout)
	case "nkey":
		return runAuthNkey(args[1:], stdout)
	case "list":
		return runAuthList(args[1:], stdout)
	case "-h", "--help", "-help":
		return &helpRequest{topic: "auth"}
	}
	return &usageError{topic: "auth", err: fmt.Errorf("auth: unknown subcommand %q: want add-user, hash-password, nkey or list", args[0])}
}

type authUserJSON struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Password bool     `json:"password"`
	Nkey     string   `json:"nkey,omitempty"`
	Graphs   []string `json:"graphs,omitempty"`
	// An adapter's (role adapter) allowance, with the defaults filled.
	Sources     []string `json:"sources,omitempty"`
	Streams     []string `json:"streams,omitempty"`
	DeadLetters []string `json:"dead_letters,omitempty"`
	Replaced    bool     `json:"replaced,omitempty"`
	SeedFile    string   `json:"seed_file,omitempty"`
}

func newAuthUserJSON(u cairnauth.User) authUserJSON {
	j := authUserJSON{Name: u.Name, Role: string(u.Role), Password: u.Password != "", Nkey: u.Nkey, Graphs: u.Graphs}
	if u.Role == cairnauth.Adapter {
		j.Sources, j.Streams, j.DeadLetters = u.Sources, u.AdapterStreams(), u.AdapterDeadLetters()
	}
	return j
}

func (u authUserJSON) String() string {
	var logins []string
	if u.Password {
		logins = append(logins, "password")
	}
	if u.Nkey != "" {
		logins = append(logins, "nkey "+u.Nkey)
	}
	graphs := "all graphs"
	if len(u.Graphs) > 0 {
		graphs = "graphs " + strings.Join(u.Graphs, ",")
	}
	if len(u.Sources) > 0 {
		graphs += fmt.Sprintf(" sources %s streams %s dead-letters %s",
			strings.Join(u.Sources, ","), strings.Join(u.Streams, ","), strings.Join(u.DeadLetters, ","))
	}
	return fmt.Sprintf("%s %s %s (%s)", u.Name, u.Role, graphs, strings.Join(logins, ", "))
}

func runAuthAddUser(args []string, stdin io.Reader, stdout io.Writer) error {
	fset := newFlagSet("auth add-user")
	role := fset.String("role", "", "reader, writer, admin, member or adapter")
	var graphs, sources, streams, deadLetters stringsFlag
	fset.Var(&graphs, "graph", "limit the user to this `graph` (repeatable)")
	fset.Var(&sources, "source", "an adapter's source `subject` (repeatable)")
	fset.Var(&streams, "stream", "a stream `name` an adapter may read, created by the engine at its request (repeatable; default ADAPTER_<KIND>)")
	fset.Var(&deadLetters, "dead-letter", "an adapter's dead-letter `subject` (repeatable; default SOURCE.dead)")
	pwStdin := fset.Bool("password-stdin", false, "read the password from stdin")
	nkeyPub := fset.String("nkey-public", "", "public `key` of the user's nkey")
	newNkey := fset.String("new-nkey", "", "write a new nkey seed to this `file`")
	replace := fset.Bool("replace", false, "replace the user of that name")
	jsonOut := fset.Bool("json", false, "print JSON")
	pos, err := parseArgs(fset, "auth", args, "file", "name")
	if err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		return &usageError{topic: "auth", err: fmt.Errorf("auth add-user: "+format, a...)}
	}
	if *nkeyPub != "" && *newNkey != "" {
		return usage("--nkey-public and --new-nkey: give one")
	}
	if !*pwStdin && *nkeyPub == "" && *newNkey == "" {
		return usage("the user needs a way to log in: --password-stdin, --nkey-public or --new-nkey")
	}
	path, name := pos[0], pos[1]
	f := &cairnauth.File{}
	switch loaded, err := cairnauth.Load(path); {
	case err == nil:
		f = loaded
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("auth add-user: %w", err)
	}
	u := cairnauth.User{Name: name, Role: cairnauth.Role(*role), Graphs: graphs, Nkey: *nkeyPub,
		Sources: sources, Streams: streams, DeadLetters: deadLetters}
	if *pwStdin {
		pw, err := readPassword(stdin)
		if err != nil {
			return fmt.Errorf("auth add-user: %w", err)
		}
		if u.Password, err = cairnauth.HashPassword(pw); err != nil {
			return fmt.Errorf("auth add-user: %w", err)
		}
	}
	var seed []byte
	if *newNkey != "" {
		if seed, u.Nkey, err = cairnauth.NewNkey(); err != nil {
			return fmt.Errorf("auth add-user: %w", err)
		}
	}
	for _, o := range f.Users {
		if o.Name == name && !*replace {
			return fmt.Errorf("auth add-user: %s already has a user %q (--replace replaces it)", path, name)
		}
	}
	replaced := f.Put(u)
	if err := f.Validate(); err != nil {
		return fmt.Errorf("auth add-user: %w", err)
	}
	if seed != nil {
		if err := writeSeed(*newNkey, seed); err != nil {
			return fmt.Errorf("auth add-user: %w", err)
		}
	}
	if err := f.Save(path); err != nil {
		return fmt.Errorf("auth add-user: %w", err)
	}
	out := newAuthUserJSON(u)
	out.Replaced, out.SeedFile = replaced, *newNkey
	if *jsonOut {
		return writeJSON(stdout, out)
	}
	verb := "added"
	if replaced {
		verb = "replaced"
	}
	_, err = fmt.Fprintf(stdout, "%s %s\n", verb, out)
	if err == nil && seed != nil {
		_, err = fmt.Fprintf(stdout, "nkey seed in %s: give it to the user (--nkey %s), keep it secret\n", *newNkey, *newNkey)
	}
	return err
}

func runAuthHash(args []string, stdin io.Reader, stdout io.Writer) error {
	fset := newFlagSet("auth hash-password")
	jsonOut := fset.Bool("json", false, "print JSON")
	if _, err := parseArgs(fset, "auth", args); err != nil {
		return err
	}
	pw, err := readPassword(stdin)
	if err != nil {
		return fmt.Errorf("auth hash-password: %w", err)
	}
	h, err := cairnauth.HashPassword(pw)
	if err != nil {
		return fmt.Errorf("auth hash-password: %w", err)
	}
	if *jsonOut {
		return writeJSON(stdout, struct {
			Hash string `json:"hash"`
		}{h})
	}
	_, err = fmt.Fprintln(stdout, h)
	return err
}

func runAuthNkey(args []string, stdout io.Writer) error {
	fset := newFlagSet("auth nkey")
	out := fset.String("out", "", "seed `file` to write")
	jsonOut := fset.Bool("json", false, "print JSON")
	if _, err := parseArgs(fset, "auth", args); err != nil {
		return err
	}
	if *out == "" {
		return &usageError{topic: "auth", err: errors.New("auth nkey: --out SEEDFILE is required")}
	}
	seed, pub, err := cairnauth.NewNkey()
	if err != nil {
		return fmt.Errorf("auth nkey: %w", err)
	}
	if err := writeSeed(*out, seed); err != nil {
		return fmt.Errorf("auth nkey: %w", err)
	}
	if *jsonOut {
		return writeJSON(stdout, struct {
			Public   string `json:"public"`
			SeedFile string `json:"seed_file"`
		}{pub, *out})
	}
	_, err = fmt.Fprintln(stdout, pub)
	return err
}

func runAuthList(args []string, stdout io.Writer) error {
	fset := newFlagSet("auth list")
	jsonOut := fset.Bool("json", false, "print JSON")
	pos, err := parseArgs(fset, "auth", args, "file")
	if err != nil {
		return err
	}
	f, err := cairnauth.Load(pos[0])
	if err != nil {
		return fmt.Errorf("auth list: %w", err)
	}
	users := make([]authUserJSON, len(f.Users))
	for i, u := range f.Users {
		users[i] = newAuthUserJSON(u)
	}
	if *jsonOut {
		return writeJSON(stdout, struct {
			Users []authUserJSON `json:"users"`
		}{users})
	}
	for _, u := range users {
		if _, err := fmt.Fprintln(stdout, u); err != nil {
			return err
		}
	}
	return nil
}

// readPassword reads the first line of r, without its line end.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}

// writeSeed writes an nkey seed to a new file only its owner can read.
func writeSeed(path string, seed []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("nkey seed file: %w", err)
	}
	_, err = f.Write(append(seed, '\n'))
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("nkey seed file %s: %w", path, err)
	}
	return nil
}
