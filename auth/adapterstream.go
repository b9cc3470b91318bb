package auth

import (
	"fmt"
	"slices"
	"strings"
)

// CheckAdapterStream says whether u may have the engine create stream
// capturing subjects (api.AdapterStreamSubject): u is an adapter, stream
// is one of its streams (User.AdapterStreams) and none of the engine's,
// and every subject is a client subject (none under "cairn.", "$" or
// "_INBOX"), overlaps none of the engine's streams' subjects and lies
// within one of u's sources (equal to it, or matched by its wildcards).
// It returns nil, or an error naming the first problem that wraps
// ErrBadSubject (a subject no client may capture) or ErrDenied (one u
// may not).
func (u User) CheckAdapterStream(stream string, subjects []string, s Streams) error {
	if u.Role != Adapter {
		return fmt.Errorf("%w: user %s has role %s: only a user of role adapter may have the engine create its stream", ErrDenied, u.Name, u.Role)
	}
	if len(subjects) == 0 {
		return fmt.Errorf("%w: stream %s: no subjects", ErrBadSubject, stream)
	}
	for i, subj := range subjects {
		if err := clientSubject(subj, true); err != nil {
			return fmt.Errorf("%w: subjects[%d]: %v", ErrBadSubject, i, err)
		}
		for _, engine := range []string{s.EventSubjects + ".>", "$O.>", "$KV.>"} {
			if subjectsOverlap(subj, engine) {
				return fmt.Errorf("%w: subjects[%d]: %q overlaps the engine's subjects %s", ErrBadSubject, i, subj, engine)
			}
		}
	}
	if slices.Contains(s.engineStreams(), stream) || !slices.Contains(u.AdapterStreams(), stream) {
		return fmt.Errorf("%w: stream %q is not one of adapter %s's streams (%s)", ErrDenied, stream, u.Name, strings.Join(u.AdapterStreams(), ", "))
	}
	for i, subj := range subjects {
		if !slices.ContainsFunc(u.Sources, func(src string) bool { return subjectWithin(subj, src) }) {
			return fmt.Errorf("%w: subjects[%d]: %q is not within adapter %s's sources (%s)", ErrDenied, i, subj, u.Name, strings.Join(u.Sources, ", "))
		}
	}
	return nil
}

// subjectWithin reports whether every subject the pattern subj matches is
// matched by the pattern src.
func subjectWithin(subj, src string) bool {
	a, b := strings.Split(subj, "."), strings.Split(src, ".")
	for i, t := range b {
		if t == ">" {
			return len(a) > i
		}
		if i >= len(a) || a[i] == ">" || (t != "*" && t != a[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// subjectsOverlap reports whether some subject is matched by both
// patterns.
func subjectsOverlap(x, y string) bool {
	a, b := strings.Split(x, "."), strings.Split(y, ".")
	for i := 0; ; i++ {
		switch {
		case i == len(a) || i == len(b):
			return len(a) == len(b)
		case a[i] == ">" || b[i] == ">":
			return true
		case a[i] != "*" && b[i] != "*" && a[i] != b[i]:
			return false
		}
	}
}
