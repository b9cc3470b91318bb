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
)

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
		default:
			bad(i, "role %q: want reader, writer, admin or member", u.Role)
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
