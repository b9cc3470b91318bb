package api

// AdapterStreamSubject takes a JSON AdapterStreamRequest and answers a JSON
// AdapterStreamReply: an adapter user's request that the engine create the
// JetStream stream its "cairn adapter run" reads (or confirm it exists).
// No client login may create streams itself: NATS permissions see only the
// subject $JS.API.STREAM.CREATE.<name>, not the subjects a stream would
// capture, which travel in the request body. The engine learns the asking
// user from the reply subject (IdentityOfReply) and creates the stream only
// when its name is one of the user's streams and every subject is within
// one of the user's sources.
const AdapterStreamSubject = "cairn.admin.adapter-stream"

// AdapterStreamRequest asks for stream Stream capturing Subjects.
type AdapterStreamRequest struct {
	Stream   string   `json:"stream"`
	Subjects []string `json:"subjects"`
}

// AdapterStreamConfig is what the engine created or found.
type AdapterStreamConfig struct {
	Name     string   `json:"name"`
	Subjects []string `json:"subjects"`
	// Storage is "file" or "memory".
	Storage     string `json:"storage"`
	Description string `json:"description,omitempty"`
}

// AdapterStreamReply says that the engine created the stream (Created) or
// found it with the same subjects (Existing), with its Config; or Error (a
// message naming the problem) and Code: "PERMISSION_DENIED" (the name is
// not one of the user's streams, a subject not within its sources, or the
// user is not an adapter), "INVALID_ARGUMENT" (a malformed request, a
// subject of the engine, of JetStream or of the inboxes),
// "FAILED_PRECONDITION" (the stream exists with other subjects; or, with
// Open set, the engine has no users, so the adapter creates its stream
// itself) or "UNAVAILABLE".
type AdapterStreamReply struct {
	Created  bool                 `json:"created,omitempty"`
	Existing bool                 `json:"existing,omitempty"`
	Config   *AdapterStreamConfig `json:"config,omitempty"`
	// Open: the engine has no users (cairn serve without --auth).
	Open  bool   `json:"open,omitempty"`
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}

// GetSubjects returns c's subjects, nil for a nil c.
func (c *AdapterStreamConfig) GetSubjects() []string {
	if c == nil {
		return nil
	}
	return c.Subjects
}
