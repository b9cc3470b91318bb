package api

// RepairSubject takes a JSON RepairRequest and answers a JSON RepairReply:
// an admin's request to mend a quarantined graph (cairn repair).
const RepairSubject = "cairn.admin.repair"

// RepairRequest asks the engine to drop the message at stream sequence Seq
// that quarantined graph Graph, when it was never part of the graph's
// chain, and to resume the graph.
type RepairRequest struct {
	Graph string `json:"graph"`
	Seq   uint64 `json:"seq"`
}

// RepairResult is what a repair did.
type RepairResult struct {
	Graph string `json:"graph"`
	Seq   uint64 `json:"seq"`
	// Reason is why the message at Seq failed its check.
	Reason string `json:"reason,omitempty"`
	// Dropped: the message was erased from the stream. Resumed: the
	// graph's projection folded what it had skipped and serves again.
	Dropped bool `json:"dropped"`
	Resumed bool `json:"resumed"`
	// AppliedSeq is the graph's read-model point after resuming.
	AppliedSeq uint64 `json:"applied_seq,omitempty"`
}

// RepairReply is RepairResult on success, or Error (a message naming the
// problem) and Code ("NOT_FOUND", "FAILED_PRECONDITION", "UNAVAILABLE",
// ...).
type RepairReply struct {
	RepairResult
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}
