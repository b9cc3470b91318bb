// Package aggregate is the write side of a graph, without I/O: the state a
// graph grain decides commands on, the rules, the idempotency window, the
// group commit as a state machine, and the state's snapshot encoding. It
// starts no goroutine, reads no clock and imports neither NATS nor the actor
// system, so that clients (the importer, the CLI) can import its limits,
// validation and errors, and so that every decision can be tested as a
// plain table test.
//
// # Deciding
//
// ValidateEnvelope checks what does not depend on the state (ids, sizes,
// counts). Decide validates one command against a State and returns the
// events that record it; Apply folds an event into the State.
// DecideEnvelope decides an envelope's commands in order, all or nothing.
// Refusals are *CommandError values with a code, a field path
// ("commands[0].connect_nodes.source") and a message, matched with
// errors.Is against ErrNotFound, ErrAlreadyExists and the other sentinels.
//
// Invariants:
//   - the graph exists and is not deleted (NOT_FOUND, FAILED_PRECONDITION);
//     a deleted graph's id is never reused (ALREADY_EXISTS);
//   - node ids and edge ids are unique (ALREADY_EXISTS);
//   - edge endpoints exist (NOT_FOUND), or are created with
//     ConnectNodes.create_missing;
//   - removing a node removes its edges in the same transaction, in edge id
//     order;
//   - graph ids are 1-64 letters, digits, '-' and '_'; node ids, edge ids,
//     component types and categories are 1-256 bytes of printable UTF-8;
//     component values at most 64 KiB; 1-1,000 commands an envelope
//     (INVALID_ARGUMENT);
//   - a transaction's stored size is at most Config.MaxTxBytes
//     (RESOURCE_EXHAUSTED, naming both sizes).
//
// # Graph types
//
// A graph created with a registered graph_type (RegisterType; Types and
// LookupType read the registry) is decided under its type's TypeRules:
// Decide calls ValidateCreate for its CreateGraph and routes every later
// command through the rules' Decide, which gets the untyped decision as
// base and checks or extends its events. DeclaredRules enforces a
// cairn.v1.GraphType declaration (categories, required components, edge
// types and the categories they join, symmetric and inverse partner edges
// e + "/inverse" kept in the same transaction, workflow rules); Workflow
// and Relationship are the declarations registered as "workflow" and
// "relationship". Refusals are FAILED_PRECONDITION naming the rule:
//
//	workflow rule "acyclic": edge e3 from review to draft would close the cycle draft → review → draft
//
// Any other graph_type is a label of an untyped graph: one nil check on
// its path.
//
// # The state
//
// State holds no Go object per node or edge: ids live in intern tables
// (internal/intern) under dense indices; a node's components and
// categories are one reference to a shared attribute set, and so are an
// edge's type and components; each (type, value) component is stored once
// with a reference count; endpoints and the doubly linked incidence lists
// are packed arrays (internal/packed). A node removal costs time linear in
// its edges. On graphgen.Big (1M nodes, 3M edges, three components a
// node) it takes about 35 bytes a node and 30 an edge (BenchmarkStateMemory).
//
// Begin, Mark, Rollback and Commit make a batch of changes speculative: the
// undo log holds a small record per change, and indices and keys that
// removals free stay reserved until Commit.
//
// # The step API
//
// Core wraps a State with its window and queue, in the manner of etcd's
// raft: its owner calls Propose with each envelope, and each call returns a
// Ready with answers to send and at most one Batch to append. The owner
// seals and appends the batch (CIDs and I/O are its business), then calls
// Appended with the outcome: on success the batch is committed and its
// commands answered; on failure rolled back and answered UNAVAILABLE; on a
// conflict rolled back, and Ready.Reload asks the owner to Fold what the
// store holds now and call Reloaded, which decides the envelopes once more.
// Flush decides what queued meanwhile into the next batch:
//
//	core, _ := aggregate.New[reply](state, window, aggregate.DefaultConfig())
//	rd := core.Propose(env, from)
//	send(rd.Answers)
//	if rd.Append != nil {
//		seq, err := store.Append(seal(rd.Append))
//		send(core.Appended(aggregate.AppendResult{Seq: seq, ...}).Answers)
//		rd = core.Flush() // and so on
//	}
//
// A refusal decided on top of a batch's own commands is held until the
// batch is stored, and decided again if it is not. Batches are budgeted in
// commands and in estimated stored bytes (an upper bound of the sealed
// transaction's size).
//
// # Snapshots
//
// Freeze captures a state in time proportional to its pages: its packed
// arrays and intern tables are paged (internal/packed.Pages), and a page
// shared with a capture is copied before it is next written, so a Frozen
// state can be encoded on another goroutine while the state moves on.
// Marshal writes the arrays and tables as they are (format 3: format 2
// and the intern tables' hash tags) with
// the window and a CRC-32C; Unmarshal reads them back, checking the
// checksum, every bound and every reference count in one pass over the
// arrays, so that no method of a decoded state can panic or loop. Verify
// also walks every incidence list. Export gives a canonical message of a
// state, for comparing states in tests and tools.
package aggregate
