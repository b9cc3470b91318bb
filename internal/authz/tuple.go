package authz

import (
	"errors"
	"fmt"
	"strings"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// ErrSyntax is the sentinel of every text-form error.
var ErrSyntax = errors.New("authz: bad syntax")

// MaxNameLen bounds namespace and relation names; MaxIDLen an object id.
const (
	MaxNameLen = 64
	MaxIDLen   = 128
)

// Tuple is a relation tuple: Subject has Relation to Object. Subject is an
// object or a userset (SubjectRelation set).
type Tuple struct {
	Object          string // namespace:id
	Relation        string
	Subject         string // namespace:id
	SubjectRelation string // "" for an object subject
}

// String returns the canonical text, object#relation@subject.
func (t Tuple) String() string {
	return t.Object + "#" + t.Relation + "@" + FormatSubject(t.Subject, t.SubjectRelation)
}

// Proto returns t as a message.
func (t Tuple) Proto() *cairnv1.Tuple {
	return &cairnv1.Tuple{Object: t.Object, Relation: t.Relation, Subject: FormatSubject(t.Subject, t.SubjectRelation)}
}

// FormatSubject returns object, or object#relation for a userset.
func FormatSubject(object, relation string) string {
	if relation == "" {
		return object
	}
	return object + "#" + relation
}

// ParseTuple parses object#relation@subject.
func ParseTuple(s string) (Tuple, error) {
	hash := strings.IndexByte(s, '#')
	at := strings.IndexByte(s, '@')
	if hash < 0 || at < 0 || at < hash {
		return Tuple{}, fmt.Errorf("tuple %q is not object#relation@subject: %w", s, ErrSyntax)
	}
	return TupleOf(s[:hash], s[hash+1:at], s[at+1:])
}

// TupleOf checks and assembles a tuple from its three parts, as a Tuple
// message holds them.
func TupleOf(object, relation, subject string) (Tuple, error) {
	if err := CheckObject(object); err != nil {
		return Tuple{}, err
	}
	if err := CheckName("relation", relation); err != nil {
		return Tuple{}, err
	}
	so, sr, err := ParseSubject(subject)
	if err != nil {
		return Tuple{}, err
	}
	return Tuple{Object: object, Relation: relation, Subject: so, SubjectRelation: sr}, nil
}

// FromProto checks a Tuple message.
func FromProto(t *cairnv1.Tuple) (Tuple, error) {
	return TupleOf(t.GetObject(), t.GetRelation(), t.GetSubject())
}

// ParseSubject splits namespace:id[#relation].
func ParseSubject(s string) (object, relation string, err error) {
	object = s
	if i := strings.IndexByte(s, '#'); i >= 0 {
		object, relation = s[:i], s[i+1:]
		if err := CheckName("subject relation", relation); err != nil {
			return "", "", err
		}
	}
	if err := CheckObject(object); err != nil {
		return "", "", err
	}
	return object, relation, nil
}

// ParseObjectRelation splits object#relation (Expand's argument).
func ParseObjectRelation(s string) (object, relation string, err error) {
	i := strings.IndexByte(s, '#')
	if i < 0 {
		return "", "", fmt.Errorf("%q is not object#relation: %w", s, ErrSyntax)
	}
	if err := CheckObject(s[:i]); err != nil {
		return "", "", err
	}
	if err := CheckName("relation", s[i+1:]); err != nil {
		return "", "", err
	}
	return s[:i], s[i+1:], nil
}

// Namespace returns an object's namespace, the text before its first ':'.
func Namespace(object string) string {
	if i := strings.IndexByte(object, ':'); i >= 0 {
		return object[:i]
	}
	return object
}

// CheckObject checks namespace:id: a namespace name, ':', then 1-128 bytes
// of printable ASCII other than '#', '@' and space.
func CheckObject(s string) error {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return fmt.Errorf("object %q is not namespace:id: %w", s, ErrSyntax)
	}
	if err := CheckName("namespace", s[:i]); err != nil {
		return err
	}
	id := s[i+1:]
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("object %q: the id must be 1-%d bytes: %w", s, MaxIDLen, ErrSyntax)
	}
	for j := 0; j < len(id); j++ {
		if c := id[j]; c <= ' ' || c > '~' || c == '#' || c == '@' {
			return fmt.Errorf("object %q: the id holds %q; ids are printable ASCII without '#', '@' or space: %w", s, rune(c), ErrSyntax)
		}
	}
	return nil
}

// CheckName checks a namespace or relation name: 1-64 of a-z, 0-9 and '_',
// starting with a letter.
func CheckName(what, s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("%s %q must be 1-%d characters: %w", what, s, MaxNameLen, ErrSyntax)
	}
	for j := 0; j < len(s); j++ {
		c := s[j]
		if !(c >= 'a' && c <= 'z' || j > 0 && (c >= '0' && c <= '9' || c == '_')) {
			return fmt.Errorf("%s %q: names are a-z, then a-z, 0-9 or '_': %w", what, s, ErrSyntax)
		}
	}
	return nil
}
