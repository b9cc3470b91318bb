// Package importer loads a graph from a file: an edge list, CSV or JSON
// lines. It streams the file in constant memory, whatever its size, and
// sends its lines to the engine as command envelopes of up to 1,000
// commands (one transaction each, several committed together when they
// queue up), through an Executor: *cairn.Engine in process, or a NATS
// client of the "cairn" service ("cairn import").
//
// # Formats
//
// Edge list (the default): one edge a line, "source target [type]",
// fields separated by spaces or tabs; lines starting with "#" and blank
// lines are skipped. Ids are taken verbatim: every byte but space and tab
// belongs to the id (libstdc++6, python3.11, a:b/c@d+e, ü).
//
//	# package dependencies
//	python3.11 libc6
//	libstdc++6 libc6 depends
//
// CSV: an edges file with a header naming "source", "target" and,
// optionally, "id" and "type"; and optionally (Config.NodesFile) a nodes
// file, imported first, with "id" and optionally "category" or
// "categories" (several separated by ';'). Every other column is a
// component type, its cells the values; an empty cell is no component.
//
//	id,categories,version        source,target,type,weight
//	python3.11,lang;runtime,3.11 python3.11,libc6,depends,1
//
// JSON lines: one object a line, a node or an edge. A component value that
// is a JSON string is taken as its text, any other value as its JSON text.
//
//	{"node":"libc6","components":{"version":"2.39"},"categories":["lib"]}
//	{"edge":"e1","source":"python3.11","target":"libc6","type":"depends"}
//
// # What a line becomes
//
// A node line is an AddNode. An edge line is a ConnectNodes with
// create_missing set: a node named only by edges is created on the fly,
// with no components, so the importer need not remember which nodes it has
// seen. An edge without an id is named by EdgeID ("source->target"). A
// line whose node or edge exists already is counted as existing and
// skipped (importing a file twice changes nothing); a node line whose node
// an earlier edge created sets its components instead.
//
// # Bad lines
//
// A line that does not parse, or whose command the engine refuses (an id
// with a control character, longer than 256 bytes), is reported to
// Config.OnBadLine with its line number and skipped; the rest of its
// envelope is sent again. With Config.Strict the import stops at the first
// one with a *LineError.
//
// # Resuming
//
// Command ids derive from the file: "imp-", a hash of the graph, the
// format, the batch size and each file's size and first 64 KiB (a resumed
// import must be run with the same ones, else it starts from the top;
// nothing is added twice then either, see above), "-", then "e" (edges) or
// "n" (nodes) and the byte offset of the envelope's first line (plus
// "-strict" for the envelope that Config.Strict cuts short at a bad line,
// since the engine refuses an id reused for other commands). A
// checkpoint file (default FILE.cairn-import) records up to where every
// envelope was acknowledged. An interrupted import (ctx cancelled, or the
// process killed) run again resumes there; envelopes that were applied
// but not checkpointed come back as duplicates and are not applied again.
// The checkpoint is removed when the import completes.
//
// # Stopping and retrying
//
// When ctx ends, Run sends no new envelope and makes no retry; the
// envelopes in flight get Config.StopGrace (default 3 s) to be answered
// and checkpointed, then their requests are abandoned, and Run returns an
// error wrapping ErrInterrupted that names the line it stopped after and
// the checkpoint. An envelope whose outcome is unknown (no answer,
// UNAVAILABLE, DEADLINE_EXCEEDED) is sent again with the same command id,
// up to Config.Retries times within Config.RetryFor, backing off
// exponentially with jitter (internal/retry); then the import stops with
// the last failure and the number of tries. Other refusals,
// RESOURCE_EXHAUSTED and INVALID_ARGUMENT among them, are never retried.
//
// # Example
//
//	res, err := importer.Run(ctx, eng, "deps", "deps.txt", importer.DefaultConfig())
//	if err != nil { ... }
//	fmt.Println(res.Edges, "edges at", res.Rate, "edges/s")
package importer
