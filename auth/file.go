package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/cairn-graph/cairn/aggregate"
)

// Role is what a user may do.
type Role string

const (
	// Reader may query its graphs.
	Reader Role = "reader"
	// Writer may send commands to its graphs and query them.
	Writer Role = "writer"
	// Admin may use every API subject on every graph, and read (never
	// write, purge or delete) the event stream and the object store, as
	// log, verify, history and diff do.
	Admin Role = "admin"
	// Member is another engine of the cluster (cairn serve --nats URL
	// --cluster NAME) that logs in to this engine's NATS: it appends to
	// the event stream, keeps the buckets, answers the service's subjects
	// and the routed ones (cairn.member.>), so it has every right. Give it
	// to cairn serve processes only.
	Member Role = "member"
	// Adapter runs "cairn adapter run": it writes its graphs as a writer
	// does (commands and queries), consumes its source subjects through
	// its own streams and publishes its dead letters (User.Sources,
	// User.Streams, User.DeadLetters); nothing else of JetStream.
	Adapter Role = "adapter"
)

// AdapterKinds are the adapters an adapter user may run; its durable
// consumers are "adapter_<kind>_<graph>" for each of them and each of its
// graphs.
var AdapterKinds = []string{"people", "organisations", "locations"}

// File is a users file ("cairn serve --auth FILE").
type File struct {
	Users []User `json:"users"`
}

// User is one identity: a name, a role, and how it logs in.
type User struct {
	// Name is 1-64 letters, digits, '-' or '_': the user name of a
	// password login, and a label for an nkey login.
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Password is the bcrypt hash of the user's password (HashPassword);
	// empty: no password login. A plain password is refused.
	Password string `json:"password,omitempty"`
	// Nkey is the public key of the user's nkey (an 'U...' key, NewNkey);
	// empty: no nkey login.
	Nkey string `json:"nkey,omitempty"`
	// Graphs limits a reader or writer to these graphs; empty: every graph.
	// Only a user on every graph may use the deprecated un-graphed
	// subjects. An admin is on every graph.
	Graphs []string `json:"graphs,omitempty"`
	// Sources are the subjects an adapter consumes (its --from; wildcards
	// allowed): it may create durable consumers filtered on them. Only an
	// adapter has sources, and it needs at least one.
	Sources []string `json:"sources,omitempty"`
	// Streams are the JetStream streams an adapter may create, look up
	// and consume (its --stream). Default: "ADAPTER_<KIND>" of each
	// adapter kind, the streams "cairn adapter run" creates. A stream of
	// the engine is never one of them.
	Streams []string `json:"streams,omitempty"`
	// DeadLetters are the subjects an adapter may publish its dead
	// letters to (its --dead-letter). Default: "<source>.dead" of each
	// source without a wildcard.
	DeadLetters []string `json:"dead_letters,omitempty"`
}

// AdapterStreams returns the streams an adapter user may use: Streams, or
// the default ADAPTER_<KIND> names.
func (u User) AdapterStreams() []string {
	if len(u.Streams) > 0 {
		return u.Streams
	}
	out := make([]string, len(AdapterKinds))
	for i, k := range AdapterKinds {
		out[i] = "ADAPTER_" + strings.ToUpper(k)
	}
	return out
}

// AdapterDeadLetters returns the subjects an adapter user may publish
// dead letters to: DeadLetters, or "<source>.dead" of each source
// without a wildcard.
func (u User) AdapterDeadLetters() []string {
	if len(u.DeadLetters) > 0 {
		return u.DeadLetters
	}
	var out []string
	for _, s := range u.Sources {
		if !strings.ContainsAny(s, "*>") {
			out = append(out, s+".dead")
		}
	}
	return out
}

// AllGraphs reports whether u is on every graph.
func (u User) AllGraphs() bool { return len(u.Graphs) == 0 }

// Load reads and validates a users file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	f := &File{}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("users file %s: %w: %w", path, ErrInvalid, err)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return f, nil
}

// Validate returns every problem with f, joined; each wraps ErrInvalid.
func (f *File) Validate() error {
	var errs []error
	bad := func(i int, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: users[%d]: %s", ErrInvalid, i, fmt.Sprintf(format, a...)))
	}
	if len(f.Users) == 0 {
		errs = append(errs, fmt.Errorf("%w: no users", ErrInvalid))
	}
	names, keys := map[string]int{}, map[string]int{}
	for i, u := range f.Users {
		if err := validName(u.Name); err != nil {
			bad(i, "%v", err)
		} else if j, dup := names[u.Name]; dup {
			bad(i, "name %q is users[%d]'s too", u.Name, j)
		} else {
			names[u.Name] = i
		}
		switch u.Role {
		case Reader, Writer:
		case Admin:
			if len(u.Graphs) > 0 {
				bad(i, "an admin reads the event stream, which holds every graph: it cannot be limited to graphs")
			}
		case Member:
			if len(u.Graphs) > 0 {
				bad(i, "a member is an engine of the cluster, which serves every graph: it cannot be limited to graphs")
			}
		case Adapter:
			validateAdapter(u, func(format string, a ...any) { bad(i, format, a...) })
		default:
			bad(i, "role %q: want reader, writer, admin, member or adapter", u.Role)
		}
		if u.Role != Adapter && (len(u.Sources) > 0 || len(u.Streams) > 0 || len(u.DeadLetters) > 0) {
			bad(i, "%q: only an adapter has sources, streams or dead_letters (role adapter)", u.Name)
		}
		if u.Password == "" && u.Nkey == "" {
			bad(i, "%q has neither a password nor an nkey", u.Name)
		}
		if u.Password != "" && !isBcrypt(u.Password) {
			bad(i, "%q: the password is not a bcrypt hash; make one with 'cairn auth hash-password'", u.Name)
		}
		if u.Nkey != "" {
			if !nkeys.IsValidPublicUserKey(u.Nkey) {
				bad(i, "%q: nkey %q is not a public user nkey ('U...'); make one with 'cairn auth nkey'", u.Name, u.Nkey)
			} else if j, dup := keys[u.Nkey]; dup {
				bad(i, "%q: nkey is users[%d]'s too", u.Name, j)
			} else {
				keys[u.Nkey] = i
			}
		}
		for k, g := range u.Graphs {
			if err := aggregate.ValidateGraphID(fmt.Sprintf("graphs[%d]", k), g); err != nil {
				bad(i, "%v", err)
			}
		}
	}
	// A name that is someone's public key would share its inbox prefix.
	for n, i := range names {
		if j, ok := keys[n]; ok {
			bad(i, "name %q is users[%d]'s nkey", n, j)
		}
	}
	return errors.Join(errs...)
}

// validateAdapter reports the problems of an adapter user to bad.
func validateAdapter(u User, bad func(format string, a ...any)) {
	if len(u.Graphs) == 0 {
		bad("adapter %q names no graphs: an adapter writes only the graphs it is given (graphs)", u.Name)
	}
	if len(u.Sources) == 0 {
		bad("adapter %q names no sources: give the subjects it reads (sources, its --from)", u.Name)
	}
	for k, s := range u.Sources {
		if err := clientSubject(s, true); err != nil {
			bad("sources[%d]: %v", k, err)
		}
	}
	for k, s := range u.DeadLetters {
		if err := clientSubject(s, false); err != nil {
			bad("dead_letters[%d]: %v", k, err)
		}
	}
	if len(u.Sources) > 0 && len(u.AdapterDeadLetters()) == 0 {
		bad("adapter %q: every source has a wildcard, so no dead-letter subject follows from them: name them (dead_letters)", u.Name)
	}
	for k, st := range u.Streams {
		switch {
		case st == "" || len(st) > 255 || strings.ContainsAny(st, ".*> \t\r\n/\\"):
			bad("streams[%d]: %q is not a stream name (no '.', '*', '>', '/', '\\' or spaces)", k, st)
		case strings.HasPrefix(st, "KV_") || strings.HasPrefix(st, "OBJ_"):
			bad("streams[%d]: %q is a key-value or object store's stream, which an adapter may not use", k, st)
		}
	}
}

// clientSubject checks a subject an adapter may consume (wild: with
// wildcards) or publish to: a NATS subject outside the engine's
// ("cairn."), JetStream's and the system's ("$") and the inboxes.
func clientSubject(s string, wild bool) error {
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "" || strings.ContainsAny(t, " \t\r\n"):
			return fmt.Errorf("%q is not a NATS subject", s)
		case t == "*" || (t == ">" && i == len(toks)-1):
			if !wild {
				return fmt.Errorf("%q has a wildcard", s)
			}
			if i == 0 {
				return fmt.Errorf("%q starts with a wildcard: it would match the engine's subjects", s)
			}
		case strings.ContainsAny(t, "*>"):
			return fmt.Errorf("%q is not a NATS subject", s)
		}
	}
	switch {
	case toks[0] == "cairn":
		return fmt.Errorf("%q is under cairn., the engine's subjects", s)
	case strings.HasPrefix(toks[0], "$"):
		return fmt.Errorf("%q is a JetStream or system subject", s)
	case toks[0] == "_INBOX":
		return fmt.Errorf("%q is under _INBOX, the replies to clients", s)
	}
	return nil
}

// validName checks a user name: one NATS subject token, as it becomes
// the user's inbox prefix.
func validName(n string) error {
	if n == "" || len(n) > 64 {
		return fmt.Errorf("name %q: want 1-64 characters", n)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("name %q has %q at byte %d; only letters, digits, '-' and '_' are allowed", n, rune(c), i)
		}
	}
	return nil
}

// Put adds u, or replaces the user of the same name; it reports whether
// one was replaced.
func (f *File) Put(u User) bool {
	i := slices.IndexFunc(f.Users, func(o User) bool { return o.Name == u.Name })
	if i < 0 {
		f.Users = append(f.Users, u)
		return false
	}
	f.Users[i] = u
	return true
}

// Save validates f and writes it to path, readable by its owner only,
// replacing the file at once (a rename).
func (f *File) Save(path string) error {
	if err := f.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode users file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*.json")
	if err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	err = errors.Join(err, tmp.Chmod(0o600), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write users file %s: %w", path, err)
	}
	return nil
}
