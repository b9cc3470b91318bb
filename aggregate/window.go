package aggregate

import (
	"bytes"
	"crypto/sha256"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Window remembers the replies to the most recent command ids, oldest
// forgotten first, so that a retried command gets its first answer again.
// Each reply it keeps carries the content hash of its envelope
// (CommandReply.content_hash, see ContentHash), so that a command id reused
// for other content is noticed.
type Window struct {
	max   int
	m     map[string]*cairnv1.CommandReply
	order []string // ring of ids
	next  int
}

// NewWindow returns a window of max ids.
func NewWindow(max int) *Window {
	return &Window{max: max, m: make(map[string]*cairnv1.CommandReply)}
}

// Get returns the reply remembered for command id.
func (w *Window) Get(id string) (*cairnv1.CommandReply, bool) {
	r, ok := w.m[id]
	return r, ok
}

// Put remembers r under its command id.
func (w *Window) Put(r *cairnv1.CommandReply) {
	id := r.GetCommandId()
	if _, ok := w.m[id]; ok {
		w.m[id] = r
		return
	}
	if len(w.order) < w.max {
		w.order = append(w.order, id)
	} else {
		delete(w.m, w.order[w.next])
		w.order[w.next] = id
		w.next = (w.next + 1) % w.max
	}
	w.m[id] = r
}

// Len counts the replies remembered.
func (w *Window) Len() int { return len(w.order) }

// List returns the replies, oldest first.
func (w *Window) List() []*cairnv1.CommandReply {
	out := make([]*cairnv1.CommandReply, 0, len(w.order))
	for i := range w.order {
		out = append(out, w.m[w.order[(w.next+i)%len(w.order)]])
	}
	return out
}

// Load puts replies, oldest first, into the window; with more than it
// holds, the oldest are forgotten.
func (w *Window) Load(replies []*cairnv1.CommandReply) {
	for _, r := range replies {
		w.Put(r)
	}
}

// ContentHashSize is the length of a ContentHash.
const ContentHashSize = 16

// ContentHash is the idempotency fingerprint of env: the first 16 bytes of
// the SHA-256 of the deterministic protobuf encoding of a CommandEnvelope
// that holds only env's graph id and commands. The command id is the key
// it is kept under; the correlation id, causation id and issuer are left
// out, since a retry may legitimately carry other tracing ids.
func ContentHash(env *cairnv1.CommandEnvelope) []byte {
	var h hasher
	return h.contentHash(env)
}

// hasher computes ContentHash with an envelope and a marshal buffer of its
// own, used again by its next call: a Core keeps one, so a command's hash
// costs one allocation (the result) instead of four.
type hasher struct {
	env cairnv1.CommandEnvelope
	buf []byte
}

// maxHashBuffer is the largest marshal buffer a hasher keeps.
const maxHashBuffer = 64 << 10

func (h *hasher) contentHash(env *cairnv1.CommandEnvelope) []byte {
	h.env.GraphId, h.env.Commands = env.GetGraphId(), env.GetCommands()
	data, _ := proto.MarshalOptions{Deterministic: true}.MarshalAppend(h.buf[:0], &h.env) // an envelope always marshals
	h.env.GraphId, h.env.Commands = "", nil
	if cap(data) <= maxHashBuffer {
		h.buf = data
	}
	sum := sha256.Sum256(data)
	return append(make([]byte, 0, ContentHashSize), sum[:ContentHashSize]...)
}

// reused says whether an envelope whose content hash hash gives reuses the
// command id of remembered reply prev for other content. A reply without a
// hash (its transaction or snapshot predates content hashes) matches any
// content, as before, and hash is not called.
func reused(prev *cairnv1.CommandReply, hash func() []byte) bool {
	return len(prev.GetContentHash()) != 0 && !bytes.Equal(prev.GetContentHash(), hash())
}

// reusedID refuses an envelope whose command id is remembered, queued or in
// flight for other content.
func reusedID(id string) *CommandError {
	return failedPrecondition("command_id", "command id %q was already used for an envelope with other content; a retry must resend the same commands, and new commands need a new command id", id)
}
