package api

// ArchiveSubject takes a JSON ArchiveRequest and answers a JSON
// ArchiveReply: an admin's request that the engine archive a graph's oldest
// transactions itself (cairn archive without --signing-key), with its own
// rights and signing key; no client login may write the object store or
// purge the stream.
const ArchiveSubject = "cairn.admin.archive"

// ArchiveRequest asks the engine to move graph Graph's transactions with
// stream sequences below Before into archive objects and purge them from
// the stream (persistence.Store.Archive). The client has resolved and
// bounded Before (cairn archive: never past the oldest trusted aggregate
// snapshot).
type ArchiveRequest struct {
	Graph  string `json:"graph"`
	Before uint64 `json:"before"`
}

// ArchiveObject is one archive object written.
type ArchiveObject struct {
	Name         string `json:"name"`
	FromSeq      uint64 `json:"from_seq"`
	ToSeq        uint64 `json:"to_seq"`
	FromN        uint64 `json:"from_n"`
	ToN          uint64 `json:"to_n"`
	Transactions int    `json:"transactions"`
	Size         int64  `json:"size"`
	Stored       int64  `json:"stored"`
}

// ArchiveReply is what the engine archived, or Error (a message naming the
// problem) and Code ("NOT_FOUND", "FAILED_PRECONDITION", "UNAVAILABLE",
// ...).
type ArchiveReply struct {
	Graph        string          `json:"graph"`
	Before       uint64          `json:"before"`
	Transactions int             `json:"transactions"`
	Purged       uint64          `json:"purged"`
	Objects      []ArchiveObject `json:"objects"`
	Code         string          `json:"code,omitempty"`
	Error        string          `json:"error,omitempty"`
}
